import diagnostics from "node:diagnostics_channel";
import net from "node:net";
import { ArgumentError, ConnectError, Request, Response, StatusError } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import type { ClientEvent, DoneEvent, RequestEvent, ResponseHeadEvent, Verbosity } from "../src/index.js";
import { type RawConn, Resources, rejectionOf, reply, requestCount } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

/** Runs `body` with process.stderr.write captured (and restored afterwards). */
async function captureStderr(body: () => Promise<unknown>): Promise<string> {
  const original = process.stderr.write;
  let text = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    text += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    await body();
  } finally {
    process.stderr.write = original;
  }
  return text;
}

describe("the trace callback", () => {
  test("gets request, responseHead and done, in order", async () => {
    const server = await res.serve(() => new Response(200, { body: "traced" }));
    const client = res.client();
    const events: ClientEvent[] = [];
    const r = await client.get(`${server.url}/t`, { trace: (e) => events.push(e) });
    expect(events.map((e) => e.type)).toEqual(["request", "responseHead", "done"]);

    const req = events[0] as RequestEvent;
    expect(req.attempt).toBe(1);
    expect(req.protocol).toBe("h1");
    expect(req.redirectCount).toBe(0);
    expect(req.url).toBe(`${server.url}/t`);
    expect(req.request).toBeInstanceOf(Request);
    expect(req.request.method).toBe("GET");

    const head = events[1] as ResponseHeadEvent;
    expect(head.attempt).toBe(1);
    expect(head.response.status).toBe(200);
    expect(head.url).toBe(`${server.url}/t`);

    const done = events[2] as DoneEvent;
    expect(done.error).toBeNull();
    expect(done.response).toBe(r);
    expect(done.response?.text()).toBe("traced");
  });

  test("done carries the error of a failed request", async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const client = res.client();
    const events: ClientEvent[] = [];
    const err = await rejectionOf(
      client.get(`http://127.0.0.1:${port}/`, { trace: (e) => events.push(e), retry: false }),
    );
    expect(err).toBeInstanceOf(ConnectError);
    expect(events.map((e) => e.type)).toEqual(["request", "done"]);
    const done = events[1] as DoneEvent;
    expect(done.error).toBe(err);
    expect(done.response).toBeNull();
  });

  test("done of a StatusError carries the error and the response", async () => {
    const server = await res.serve(() => new Response(404, { body: "no" }));
    const client = res.client();
    const events: ClientEvent[] = [];
    const err = await rejectionOf(client.get(server.url, { trace: (e) => events.push(e) }));
    expect(err).toBeInstanceOf(StatusError);
    const done = events.at(-1) as DoneEvent;
    expect(done.type).toBe("done");
    expect(done.error).toBe(err);
    expect(done.response?.status).toBe(404);
  });

  test("the stale-connection retry shows as attempt 2", async () => {
    const raw = await res.raw((conn: RawConn) => {
      if (conn.index === 1) {
        conn.onHead(1, () => conn.write(reply("first")));
        conn
          .until((t) => requestCount(t) >= 2, 60_000)
          .then(
            () => conn.socket.destroy(),
            () => {},
          );
      } else conn.onHead(1, () => conn.write(reply("fresh")));
    });
    const client = res.client();
    await client.get(raw.url);
    const events: ClientEvent[] = [];
    await client.get(raw.url, { trace: (e) => events.push(e) });
    expect(events.map((e) => (e.type === "done" ? "done" : `${e.type}#${e.attempt}`))).toEqual([
      "request#1",
      "request#2",
      "responseHead#2",
      "done",
    ]);
  });

  test("a trace that is not a function is an ArgumentError", async () => {
    const raw = await res.raw();
    const client = res.client();
    const err = await rejectionOf(client.get(raw.url, { trace: "log" as unknown as () => void }));
    expect(err).toBeInstanceOf(ArgumentError);
    expect(raw.accepted).toBe(0);
  });

  test("open() reports its events too", async () => {
    const server = await res.serve(() => new Response(200, { body: "streamed" }));
    const client = res.client();
    const events: ClientEvent[] = [];
    await client.open(
      "GET",
      server.url,
      async (s) => {
        for await (const _ of s);
      },
      { trace: (e) => events.push(e) },
    );
    expect(events.map((e) => e.type)).toEqual(["request", "responseHead", "done"]);
  });
});

describe("verbose", () => {
  test("1 prints one [http] line per event", async () => {
    const server = await res.serve(() => new Response(200, { body: "12345" }));
    const client = res.client();
    const text = await captureStderr(() => client.get(`${server.url}/v`, { verbose: 1 }));
    const lines = text.trimEnd().split("\n");
    expect(lines).toEqual([
      `[http] request attempt 1 GET ${server.url}/v (h1)`,
      `[http] response attempt 1 200 OK ${server.url}/v`,
      `[http] done ${server.url}/v 200 (5 bytes)`,
    ]);
  });

  test("true is the same as 1", async () => {
    const server = await res.serve(() => new Response(200, { body: "x" }));
    const client = res.client();
    const text = await captureStderr(() => client.get(server.url, { verbose: true }));
    expect(text.trimEnd().split("\n")).toHaveLength(3);
  });

  test("2 also prints the heads", async () => {
    const server = await res.serve(() => new Response(200, { headers: { "X-Reply": "r" }, body: "x" }));
    const client = res.client();
    const text = await captureStderr(() =>
      client.get(server.url, { verbose: 2, headers: { "X-Request": "q" } }),
    );
    for (const line of text.trimEnd().split("\n")) expect(line.startsWith("[http] ")).toBe(true);
    expect(text).toContain("[http]   > X-Request: q\n");
    expect(text).toMatch(/\[http\] {3}> User-Agent: hyperwire\//);
    expect(text.toLowerCase()).toContain("[http]   < x-reply: r\n");
  });

  test("a failure is printed with its error", async () => {
    const raw = await res.raw((conn) => conn.onHead(1, () => conn.socket.destroy()));
    const client = res.client();
    const text = await captureStderr(() => client.get(raw.url, { verbose: 1 }).catch(() => {}));
    expect(text).toMatch(/\[http\] done .* error ProtocolError: /);
  });

  test("0 and false print nothing", async () => {
    const server = await res.serve(() => new Response(200, { body: "x" }));
    const client = res.client();
    const text = await captureStderr(async () => {
      await client.get(server.url, { verbose: 0 });
      await client.get(server.url, { verbose: false });
      await client.get(server.url);
    });
    expect(text).toBe("");
  });

  test.each([3, -1, "1", 1.5])("%s is an ArgumentError", async (v) => {
    const raw = await res.raw();
    const client = res.client();
    const err = await rejectionOf(client.get(raw.url, { verbose: v as Verbosity }));
    expect(err).toBeInstanceOf(ArgumentError);
    expect(raw.accepted).toBe(0);
  });
});

describe("node:diagnostics_channel", () => {
  test("hyperwire:client:request, responseHead and done receive the events", async () => {
    const server = await res.serve(() => new Response(200, { body: "dc" }));
    const client = res.client();
    const seen: string[] = [];
    const events: ClientEvent[] = [];
    const handlers = {
      request: (m: unknown) => {
        seen.push("request");
        events.push(m as ClientEvent);
      },
      responseHead: (m: unknown) => {
        seen.push("responseHead");
        events.push(m as ClientEvent);
      },
      done: (m: unknown) => {
        seen.push("done");
        events.push(m as ClientEvent);
      },
    };
    for (const [name, h] of Object.entries(handlers)) diagnostics.subscribe(`hyperwire:client:${name}`, h);
    let r: Response<Uint8Array>;
    try {
      r = await client.get(`${server.url}/dc`);
    } finally {
      for (const [name, h] of Object.entries(handlers))
        diagnostics.unsubscribe(`hyperwire:client:${name}`, h);
    }
    expect(seen).toEqual(["request", "responseHead", "done"]);
    expect(events.map((e) => e.type)).toEqual(seen);
    expect((events[0] as RequestEvent).url).toBe(`${server.url}/dc`);
    expect((events[2] as DoneEvent).response).toBe(r);

    // Unsubscribed: nothing more arrives.
    await client.get(server.url);
    expect(seen).toHaveLength(3);
  });

  test("a trace callback and a channel subscriber both get the events", async () => {
    const server = await res.serve(() => new Response(200, { body: "both" }));
    const client = res.client();
    const fromChannel: string[] = [];
    const onDone = (m: unknown) => fromChannel.push((m as ClientEvent).type);
    diagnostics.subscribe("hyperwire:client:done", onDone);
    const fromTrace: string[] = [];
    try {
      await client.get(server.url, { trace: (e) => fromTrace.push(e.type) });
    } finally {
      diagnostics.unsubscribe("hyperwire:client:done", onDone);
    }
    expect(fromTrace).toEqual(["request", "responseHead", "done"]);
    expect(fromChannel).toEqual(["done"]);
  });
});
