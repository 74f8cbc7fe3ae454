import { ParseError, ProtocolError, Response, SSEEvent, StatusError } from "@hyperwire/core";
import { sseResponse } from "@hyperwire/server";
import { afterEach, describe, expect, test } from "vitest";
import { sse } from "../src/index.js";
import { Resources, waitFor, within } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

/** Our server: /events sends three events then ends; /forever sends until the client leaves. */
async function eventServer(state: { left: boolean; accept?: string | null }) {
  return res.serve((req) => {
    state.accept = req.headers.get("accept");
    if (req.target === "/events") {
      return sseResponse(async (w) => {
        await w.write(new SSEEvent("one", { id: "1", event: "greet" }));
        await w.comment("ignored");
        await w.write("two\nlines");
        await w.write(new SSEEvent("three", { retry: 250 }));
      });
    }
    if (req.target === "/forever") {
      return sseResponse(async (w) => {
        for (let i = 0; !w.signal.aborted && i < 100_000; i++) {
          try {
            await w.write(String(i));
          } catch {
            break;
          }
        }
        state.left = true;
      });
    }
    if (req.target === "/plain")
      return new Response(200, { headers: { "Content-Type": "text/plain" }, body: "hi" });
    return new Response(500, { body: "boom" });
  });
}

describe("sse()", () => {
  test("yields the events of our server's sseResponse, with Accept: text/event-stream", async () => {
    const state: { left: boolean; accept?: string | null } = { left: false };
    const server = await eventServer(state);
    const client = res.client();
    const got: [string | undefined, string, string | undefined, number | undefined][] = [];
    for await (const ev of sse(`${server.url}/events`, { client }))
      got.push([ev.event, ev.data, ev.id, ev.retry]);
    expect(got).toEqual([
      ["greet", "one", "1", undefined],
      [undefined, "two\nlines", "1", undefined],
      [undefined, "three", "1", 250],
    ]);
    expect(state.accept).toBe("text/event-stream");
  });

  test("break closes the request and the server sees the client leave", async () => {
    const state = { left: false };
    const server = await eventServer(state);
    const client = res.client();
    let n = 0;
    for await (const ev of sse(`${server.url}/forever`, { client })) {
      expect(ev.data).toBe(String(n));
      if (++n === 3) break;
    }
    await waitFor(() => state.left, 5_000, "the producer to see the client leave");
    expect(client.transport.idleConnectionCount()).toBe(0);
  });

  test("a 500 is a StatusError with its body; a non-SSE content type a ProtocolError", async () => {
    const server = await eventServer({ left: false });
    const client = res.client();
    const drain = async (url: string) => {
      for await (const _ of sse(url, { client }));
    };
    const e = await drain(`${server.url}/fail`).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StatusError);
    expect((e as StatusError).response.status).toBe(500);
    expect(Buffer.from((e as StatusError<Response<Uint8Array>>).response.body).toString()).toBe("boom");
    await expect(drain(`${server.url}/plain`)).rejects.toBeInstanceOf(ProtocolError);
  });

  test("a raw node:http server: split chunks, CRLF, and the line limit", async () => {
    const server = await res.counting((req, response) => {
      response.writeHead(200, { "Content-Type": "Text/Event-Stream; charset=utf-8" });
      if (req.url === "/long") {
        response.end(`data: ${"x".repeat(5000)}\n\n`);
        return;
      }
      response.write("\uFEFFid: a\r\ndata: fi");
      response.write("rst\r");
      response.end("\n\r\ndata: second\n\ndata: unterminated");
    });
    const client = res.client();
    const got: string[] = [];
    for await (const ev of sse(server.url, { client })) got.push(`${ev.id}:${ev.data}`);
    expect(got).toEqual(["a:first", "a:second"]);
    const long = async () => {
      for await (const _ of sse(`${server.url}/long`, { client, maxSseLineBytes: 1000 }));
    };
    await expect(long()).rejects.toBeInstanceOf(ParseError);
  });
});

describe("onEvent", () => {
  test("awaits the callback per event and resolves with an empty-bodied response", async () => {
    const server = await eventServer({ left: false });
    const client = res.client();
    const got: string[] = [];
    const r = await client.get(`${server.url}/events`, {
      onEvent: async (ev, control) => {
        await new Promise((resolve) => setImmediate(resolve));
        got.push(ev.data);
        expect(control.response.status).toBe(200);
      },
    });
    expect(got).toEqual(["one", "two\nlines", "three"]);
    expect(r.status).toBe(200);
    expect(r.body.byteLength).toBe(0);
    expect(r.headers.get("content-type")).toMatch(/^text\/event-stream/);
  });

  test("control.close() stops early and closes the exchange", async () => {
    const state = { left: false };
    const server = await eventServer(state);
    const client = res.client();
    const got: string[] = [];
    const r = await within(
      client.post(`${server.url}/forever`, {
        body: "subscribe",
        onEvent: (ev, control) => {
          got.push(ev.data);
          if (got.length === 2) control.close();
        },
      }),
      10_000,
      "onEvent request",
    );
    expect(r.status).toBe(200);
    expect(got).toEqual(["0", "1"]);
    await waitFor(() => state.left, 5_000, "the producer to see the client leave");
  });

  test("failing statuses and non-SSE bodies reject; a throwing callback rejects with its error", async () => {
    const server = await eventServer({ left: false });
    const client = res.client();
    const onEvent = () => {};
    await expect(client.get(`${server.url}/fail`, { onEvent })).rejects.toBeInstanceOf(StatusError);
    await expect(client.get(`${server.url}/plain`, { onEvent })).rejects.toBeInstanceOf(ProtocolError);
    const r = await client.get(`${server.url}/fail`, { onEvent, statusException: false });
    expect(r.status).toBe(500);
    expect(Buffer.from(r.body).toString()).toBe("boom");
    const boom = new Error("callback failed");
    await expect(
      client.get(`${server.url}/events`, {
        onEvent: () => {
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
  });
});
