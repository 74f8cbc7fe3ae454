import net from "node:net";
import { AddressInUseError, ArgumentError, ConnectError, ProtocolError, Response } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
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
