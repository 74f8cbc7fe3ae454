import net from "node:net";
import tlsNet from "node:tls";
import { AddressInUseError, ArgumentError, ConnectError, ProtocolError, Response } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import { tls } from "../../../fixtures/tls/index.mjs";
import { type AccessLogEntry, formatCombinedLog, LISTEN_ANY_ATTEMPTS, listen, serve } from "../src/index.js";
import { deferred, get, raw, Servers, statuses, waitFor } from "./helpers.js";

const servers = new Servers();
afterEach(() => servers.closeAll());

const ok = () => new Response(200, { body: "ok" });

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => resolve(s));
    s.on("error", reject);
  });
}

function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once("close", () => resolve());
  });
}

function closeListener(h: net.Server): Promise<void> {
  return new Promise<void>((r) => h.close(() => r()));
}

/** Binds `count` consecutive loopback ports with plain TCP listeners (held[i] holds first + i). */
async function occupyPorts(count: number): Promise<{ first: number; held: net.Server[] }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = 20_000 + Math.floor(Math.random() * 30_000);
    const held: net.Server[] = [];
    try {
      for (let p = first; p < first + count; p++) {
        const h = net.createServer();
        await new Promise<void>((resolve, reject) => {
          h.once("error", reject);
          h.listen(p, "127.0.0.1", () => resolve());
        });
        held.push(h);
      }
      return { first, held };
    } catch {
      await Promise.all(held.map(closeListener));
    }
  }
  throw new Error(`could not find ${count} consecutive free ports`);
}

function warningsOf(type: string): { list: Error[]; stop: () => void } {
  const list: Error[] = [];
  const on = (w: Error) => {
    if (w.name === type) list.push(w);
  };
  process.on("warning", on);
  return { list, stop: () => process.off("warning", on) };
}

describe("Server: addresses", () => {
  test("port, address and url report the bound address", async () => {
    const s = servers.add(await serve(ok, { port: 0 }));
    expect(s.port).toBeGreaterThan(0);
    expect(s.address).toBe(`127.0.0.1:${s.port}`);
    expect(s.url).toBe(`http://127.0.0.1:${s.port}`);
    expect(s.isOpen).toBe(true);
  });

  test("an IPv6 address is bracketed", async () => {
    const s = servers.add(await serve(ok, { host: "::1", port: 0 }));
    expect(s.address).toBe(`[::1]:${s.port}`);
    expect((await get(`${s.url}/`)).status).toBe(200);
  });

  test("a taken port is an AddressInUseError; listenAny moves on", async () => {
    const a = servers.add(await serve(ok, { port: 0 }));
    const err = await serve(ok, { port: a.port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AddressInUseError);
    expect((err as AddressInUseError).address).toBe(`127.0.0.1:${a.port}`);
    const b = servers.add(await serve(ok, { port: a.port, listenAny: true }));
    expect(b.port).not.toBe(a.port);
    expect(b.port === 0).toBe(false);
    expect(LISTEN_ANY_ATTEMPTS).toBeGreaterThan(1);
    expect((await get(b.url)).status).toBe(200);
  });

  test("listenAny takes the asked port when it is free, and any port when the next ones are all taken", async () => {
    // One port more than listenAny tries, so the port after its run is taken as well.
    const { first, held } = await occupyPorts(LISTEN_ANY_ATTEMPTS + 1);
    try {
      const fallback = servers.add(await serve(ok, { port: first, listenAny: true }));
      expect(fallback.port < first || fallback.port > first + LISTEN_ANY_ATTEMPTS).toBe(true);
      const reply = await raw(fallback.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      expect(statuses(reply.text)).toEqual([200]);
      // Free the last port of the run: that is the one taken.
      const last = first + LISTEN_ANY_ATTEMPTS - 1;
      await closeListener(held[LISTEN_ANY_ATTEMPTS - 1]!);
      const next = servers.add(await serve(ok, { port: first, listenAny: true }));
      expect(next.port).toBe(last);
    } finally {
      await Promise.all(held.filter((h) => h.listening).map(closeListener));
    }
    const free = servers.add(await serve(ok, { port: 0 }));
    const port = free.port;
    await free.close();
    const again = servers.add(await serve(ok, { port, listenAny: true }));
    expect(again.port).toBe(port);
  });

  test("a taken port is an AddressInUseError from listen() too, with the system error as cause", async () => {
    const a = servers.add(await serve(ok, { port: 0 }));
    const err = await listen(async () => {}, { port: a.port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AddressInUseError);
    expect((err as AddressInUseError).code).toBe("HW_ADDRESS_IN_USE");
    expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe("EADDRINUSE");
  });

  test("an address that cannot be bound is a ConnectError", async () => {
    const err = await serve(ok, { host: "203.0.113.7", port: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
  });

  test("invalid options are an ArgumentError", async () => {
    await expect(serve(ok, { readTimeout: -1 })).rejects.toBeInstanceOf(ArgumentError);
    await expect(serve(ok, { maxHeaderBytes: 0 })).rejects.toBeInstanceOf(ArgumentError);
    await expect(serve(ok, { backlog: 0 })).rejects.toBeInstanceOf(ArgumentError);
    await expect(serve(ok, { port: 70_000 })).rejects.toBeInstanceOf(ArgumentError);
    await expect(serve(ok, { reuseAddr: false })).rejects.toBeInstanceOf(ArgumentError);
    await expect(serve({} as unknown as () => Response, { port: 0 })).rejects.toBeInstanceOf(ArgumentError);
  });
});

describe("Server: lifecycle", () => {
  test("close() finishes in-flight requests, closes idle connections and refuses new ones", async () => {
    const release = deferred();
    const entered = deferred();
    const shutdowns: string[] = [];
    const s = await serve(
      async (req) => {
        if (req.target === "/slow") {
          entered.resolve();
          await release.promise;
        }
        return new Response(200, { body: req.target });
      },
      { port: 0, onShutdown: [() => void shutdowns.push("a"), async () => void shutdowns.push("b")] },
    );
    const idle = await connect(s.port);
    const idleClosed = closed(idle);
    await waitFor(() => s.connections === 2 || s.connections === 1, 1_000, "the idle connection");
    const slow = get(`${s.url}/slow`);
    await entered.promise;
    const closing = s.close();
    expect(s.close()).toBe(closing);
    expect(s.isOpen).toBe(false);
    await idleClosed;
    const refused = await get(`${s.url}/new`).catch((e: unknown) => e);
    expect((refused as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
    release.resolve();
    const r = await slow;
    expect([r.status, r.body.toString(), r.headers.connection]).toEqual([200, "/slow", "close"]);
    await closing;
    await s.wait();
    expect(shutdowns).toEqual(["a", "b"]);
    expect(s.connections).toBe(0);
    expect(() => s.address).toThrow(ProtocolError);
  });

  test("close() lets a keep-alive connection finish its response, then closes it", async () => {
    const release = deferred();
    const entered = deferred();
    const s = await serve(
      async () => {
        entered.resolve();
        await release.promise;
        return new Response(200, { body: "done" });
      },
      { port: 0 },
    );
    const reply = raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await entered.promise;
    const closing = s.close();
    release.resolve();
    const r = await reply;
    expect(statuses(r.text)).toEqual([200]);
    expect(r.text.endsWith("done")).toBe(true);
    expect(r.closed).toBe(true);
    await closing;
  });

  test("a second close() waits for the same shutdown: neither resolves before the in-flight response", async () => {
    const release = deferred();
    const entered = deferred();
    const s = await serve(
      async () => {
        entered.resolve();
        await release.promise;
        return new Response(200, { body: "late" });
      },
      { port: 0 },
    );
    const reply = raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await entered.promise;
    const settled: string[] = [];
    const first = s.close().then(() => settled.push("first"));
    const second = s.close().then(() => settled.push("second"));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toEqual([]);
    expect(s.connections).toBe(1);
    release.resolve();
    const r = await reply;
    expect(statuses(r.text)).toEqual([200]);
    expect(r.text.endsWith("late")).toBe(true);
    await Promise.all([first, second]);
    expect(settled.sort()).toEqual(["first", "second"]);
    expect(s.connections).toBe(0);
  });

  test("after close() resolves no connection is counted: idle HTTP/1.1, HTTP/2 sessions, TLS", async () => {
    const http2 = await import("node:http2");
    for (const secure of [false, true]) {
      // A few rounds: the listener reports closed when its last socket is destroyed, and the
      // socket's own 'close' comes a moment later.
      for (let round = 0; round < 5; round++) {
        const s = await serve(ok, { port: 0, ...(secure ? { tls: { key: tls.key, cert: tls.cert } } : {}) });
        const origin = `${secure ? "https" : "http"}://127.0.0.1:${s.port}`;
        const session = http2.connect(origin, secure ? { ca: tls.ca, servername: "localhost" } : {});
        session.on("error", () => {});
        await new Promise<void>((resolve, reject) => {
          const req = session.request({ ":path": "/" });
          req.on("error", reject);
          req.resume();
          req.on("end", () => resolve());
        });
        const idle = secure
          ? tlsNet.connect({ port: s.port, host: "127.0.0.1", ca: tls.ca, servername: "localhost" })
          : net.connect(s.port, "127.0.0.1");
        idle.on("error", () => {});
        await waitFor(() => s.connections === 2, 2_000, "both connections");
        await s.close();
        expect(s.connections).toBe(0);
        session.destroy();
        idle.destroy();
      }
    }
  });

  test("forceClose() during a graceful close drops the busy connection and ends both", async () => {
    const entered = deferred();
    let shutdowns = 0;
    const s = await serve(
      () => {
        entered.resolve();
        return new Promise<Response>(() => {});
      },
      { port: 0, onShutdown: () => void shutdowns++ },
    );
    const reply = raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await entered.promise;
    const graceful = s.close();
    const forced = s.forceClose();
    expect(forced).toBe(graceful);
    await graceful;
    const r = await reply;
    expect(r.closed).toBe(true);
    expect(r.text).toBe("");
    expect(s.connections).toBe(0);
    expect(shutdowns).toBe(1);
  });

  test("onShutdown: callbacks run once, in order; a throwing one is reported and the rest still run", async () => {
    const ran: string[] = [];
    const warnings = warningsOf("Error");
    try {
      const s = await serve(ok, {
        port: 0,
        onShutdown: [
          () => void ran.push("a"),
          () => {
            throw new Error("shutdown hook failed");
          },
          async () => void ran.push("c"),
        ],
      });
      const reply = await raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", {
        until: (t) => t.endsWith("ok"),
      });
      expect(statuses(reply.text)).toEqual([200]);
      expect(ran).toEqual([]);
      await Promise.all([s.close(), s.close(), s.forceClose()]);
      await s.close();
      await new Promise((r) => setImmediate(r));
      expect(ran).toEqual(["a", "c"]);
      expect(warnings.list.map((w) => w.message)).toEqual(["shutdown hook failed"]);
    } finally {
      warnings.stop();
    }
  });

  test("close() does not wait for a TLS client stuck in its handshake, and lets a TLS request finish", async () => {
    const release = deferred();
    const entered = deferred();
    const s = await serve(
      async () => {
        entered.resolve();
        await release.promise;
        return new Response(200, { body: "secure" });
      },
      { port: 0, tls: { key: tls.key, cert: tls.cert } },
    );
    // A TCP connection that never starts its TLS handshake.
    const stuck = net.connect(s.port, "127.0.0.1");
    stuck.on("error", () => {});
    await new Promise((r) => stuck.once("connect", r));
    const stuckClosed = new Promise((r) => stuck.once("close", r));
    // A TLS request in flight.
    const secure = tlsNet.connect({ port: s.port, host: "127.0.0.1", servername: "localhost", ca: tls.ca });
    secure.on("error", () => {});
    let text = "";
    secure.on("data", (c: Buffer) => {
      text += c.toString();
    });
    const secureClosed = new Promise((r) => secure.once("close", r));
    secure.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await entered.promise;
    await waitFor(() => s.connections === 2, 2_000, "both connections");
    const closing = s.close();
    await stuckClosed;
    expect(s.connections).toBe(1);
    release.resolve();
    await closing;
    await secureClosed;
    expect(statuses(text)).toEqual([200]);
    expect(text.endsWith("secure")).toBe(true);
    expect(text.toLowerCase()).toContain("connection: close");
  });

  test("forceClose() drops every connection now and aborts the handler's signal", async () => {
    const entered = deferred();
    let aborted: Promise<void> | undefined;
    const s = await serve(
      (req) => {
        aborted = new Promise((resolve) => req.signal.addEventListener("abort", () => resolve()));
        entered.resolve();
        return new Promise<Response>(() => {});
      },
      { port: 0, onShutdown: () => undefined },
    );
    const reply = raw(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await entered.promise;
    await s.forceClose();
    const r = await reply;
    expect(r.closed).toBe(true);
    expect(r.text).toBe("");
    await aborted;
    expect(s.connections).toBe(0);
    expect(s.activeRequests).toBe(0);
  });

  test("await using closes the server", async () => {
    let url = "";
    {
      await using s = await serve(ok, { port: 0 });
      url = s.url;
      expect((await get(url)).status).toBe(200);
    }
    const err = await get(url).catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
  });

  test("listen() servers have the same lifecycle", async () => {
    const s = await listen(async (stream) => stream.write("streamed"), { port: 0 });
    expect((await get(s.url)).body.toString()).toBe("streamed");
    await s.close();
    expect(s.isOpen).toBe(false);
  });
});

describe("Server: access log", () => {
  test("a function receives one structured entry per request", async () => {
    const entries: AccessLogEntry[] = [];
    const s = servers.add(await serve(ok, { port: 0, accessLog: (e) => entries.push(e) }));
    await get(`${s.url}/logged?x=1`, { headers: { "User-Agent": "tester", Referer: "http://r/" } });
    expect(entries).toHaveLength(1);
    const e = entries[0]!;
    expect([e.method, e.target, e.status, e.bytes, e.userAgent, e.referer, e.version]).toEqual([
      "GET",
      "/logged?x=1",
      200,
      2,
      "tester",
      "http://r/",
      "1.1",
    ]);
    expect(e.remoteAddress).toBe("127.0.0.1");
    expect(e.durationMs).toBeGreaterThanOrEqual(0);
  });

  test("true prints a combined-log-format line to stdout", async () => {
    const lines: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      const s = servers.add(await serve(ok, { port: 0, accessLog: true }));
      await get(`${s.url}/p`, { headers: { "User-Agent": 'say "hi"' } });
    } finally {
      process.stdout.write = write;
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "GET \/p HTTP\/1\.1" 200 2 "-" "say \\x22hi\\x22"\n$/,
    );
  });

  test("requests refused before the handler and failed ones are logged with their status", async () => {
    const entries: AccessLogEntry[] = [];
    const log = (e: AccessLogEntry) => entries.push(e);
    const s = servers.add(
      await serve(
        (req) => {
          if (req.target === "/throw") throw new Error("boom");
          return new Response(200, { body: "ok" });
        },
        { port: 0, maxBodyBytes: 4, accessLog: log },
      ),
    );
    await raw(s.port, "GET /dup HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    await raw(s.port, "POST /big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    await raw(s.port, "POST /big2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
    await raw(s.port, "GET /throw HTTP/1.1\r\nHost: x\r\n\r\n");
    await raw(s.port, `GET /${"l".repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(entries.map((e) => [e.method, e.target.slice(0, 6), e.status])).toEqual([
      ["GET", "/dup", 400],
      ["POST", "/big", 413],
      ["POST", "/big2", 413],
      ["GET", "/throw", 500],
      ["GET", "/lllll", 431],
    ]);
  });

  test("stream handlers log one entry per request, failures and timeouts included", async () => {
    const entries: AccessLogEntry[] = [];
    const s = servers.add(
      await listen(
        async (stream) => {
          if (stream.request.target === "/throw") throw new Error("boom");
          if (stream.request.target === "/late") {
            await stream.write("partial");
            throw new Error("late boom");
          }
          for await (const _ of stream);
          stream.setStatus(201);
          await stream.write("four");
        },
        { port: 0, readTimeout: 100, accessLog: (e) => entries.push(e) },
      ),
    );
    await raw(s.port, "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    await raw(s.port, "GET /throw HTTP/1.1\r\nHost: x\r\n\r\n");
    await raw(s.port, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n");
    await raw(s.port, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    await waitFor(() => entries.length === 4, 2_000, "four entries");
    expect(entries.map((e) => [e.target, e.status, e.bytes])).toEqual([
      ["/ok", 201, 4],
      ["/throw", 500, 0],
      ["/late", 200, 7],
      ["/slow", 408, 0],
    ]);
  });

  test("formatCombinedLog formats a fixed entry", () => {
    const line = formatCombinedLog({
      remoteAddress: "10.0.0.1",
      time: new Date(Date.UTC(2026, 10, 25, 6, 45, 0)),
      method: "POST",
      target: "/x",
      version: "1.0",
      status: 201,
      bytes: 0,
      referer: "",
      userAgent: "curl/8",
      durationMs: 1,
    });
    expect(line).toBe('10.0.0.1 - - [25/Nov/2026:06:45:00 +0000] "POST /x HTTP/1.0" 201 - "-" "curl/8"');
  });
});
