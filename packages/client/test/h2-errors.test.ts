// HTTP/2 failures in the client: timeouts by phase and cancellation reset one stream (RST_STREAM
// CANCEL) and leave the session to the others; GOAWAY and REFUSED_STREAM are retried for any method
// when the body can be sent again; other resets are not; hostile servers (PUSH_PROMISE, bad
// pseudo-headers, a Content-Length mismatch, no SETTINGS) give typed errors.
import http2 from "node:http2";
import { CanceledError, ParseError, ProtocolError, TimeoutError } from "@hyperwire/core";
import { H2GoAwayError, H2NegotiationError, H2StreamResetError } from "@hyperwire/h2";
import { afterEach, describe, expect, test } from "vitest";
import { Transport } from "../src/index.js";
import { frame, H2Server, RawH2Server, STATUS_200, type StreamHandler } from "./h2-servers.js";
import { Resources, rejectionOf, waitFor } from "./helpers.js";

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

const res = new Resources();
afterEach(() => res.closeAll());

async function h2(handler: StreamHandler, settings?: http2.Settings): Promise<H2Server> {
  return res.add(await H2Server.start(handler, settings === undefined ? {} : { settings }));
}

function client() {
  return res.client({ transport: res.add(new Transport()) });
}

/** Answers `/ok...` at once; leaves every other stream hanging (for the timeouts). */
const okOrHang: StreamHandler = (stream, headers) => {
  if (String(headers[":path"]).startsWith("/ok")) {
    stream.respond({ ":status": 200 });
    stream.end("fine");
  }
};

/** Resolves with the server stream's RST_STREAM code once it closed. */
function rstCodeOf(stream: http2.ServerHttp2Stream): Promise<number> {
  return waitFor(() => stream.closed, 5_000, "the server stream to close").then(() => stream.rstCode);
}

describe("timeouts and cancellation reset the stream, not the session", () => {
  test("responseHeaderTimeout", async () => {
    const server = await h2(okOrHang);
    const c = client();
    const err = await rejectionOf(
      c.get(`${server.url}/slow`, { protocol: "h2", responseHeaderTimeout: 100 }),
    );
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).phase).toBe("responseHeader");
    expect(await rstCodeOf(server.streams[0]!)).toBe(NGHTTP2_CANCEL);
    expect((await c.get(`${server.url}/ok`, { protocol: "h2" })).text()).toBe("fine");
    expect(server.sessions).toBe(1);
  });

  test("readIdleTimeout mid-body", async () => {
    const server = await h2((stream, headers) => {
      if (headers[":path"] === "/ok") return okOrHang(stream, headers, server);
      stream.respond({ ":status": 200 });
      stream.write("first part");
    });
    const c = client();
    const err = await rejectionOf(c.get(`${server.url}/stall`, { protocol: "h2", readIdleTimeout: 100 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).phase).toBe("readIdle");
    expect(await rstCodeOf(server.streams[0]!)).toBe(NGHTTP2_CANCEL);
    expect((await c.get(`${server.url}/ok`, { protocol: "h2" })).text()).toBe("fine");
    expect(server.sessions).toBe(1);
  });

  test("writeIdleTimeout when the server stops taking the upload", async () => {
    // The server never reads: once the stream's 64 KiB window is used up, writes stall.
    const server = await h2((stream, headers) => {
      if (headers[":path"] === "/ok") return okOrHang(stream, headers, server);
      stream.pause();
    });
    const c = client();
    async function* big(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 64; i++) yield Buffer.alloc(16 * 1024);
    }
    const err = await rejectionOf(
      c.post(`${server.url}/up`, { body: big(), protocol: "h2", writeIdleTimeout: 150 }),
    );
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).phase).toBe("writeIdle");
    expect((await c.get(`${server.url}/ok`, { protocol: "h2" })).text()).toBe("fine");
    expect(server.sessions).toBe(1);
  });

  test("requestTimeout", async () => {
    const server = await h2(okOrHang);
    const c = client();
    const err = await rejectionOf(c.get(`${server.url}/slow`, { protocol: "h2", requestTimeout: 100 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).phase).toBe("request");
    expect(await rstCodeOf(server.streams[0]!)).toBe(NGHTTP2_CANCEL);
  });

  test("a cancelled signal sends RST_STREAM CANCEL; other streams on the session go on", async () => {
    let answerOther: (() => void) | undefined;
    let cancelStream: http2.ServerHttp2Stream | undefined;
    const server = await h2((stream, headers) => {
      if (headers[":path"] === "/other") {
        answerOther = () => {
          stream.respond({ ":status": 200 });
          stream.end("other done");
        };
      } else cancelStream = stream;
    });
    const c = client();
    const other = c.get(`${server.url}/other`, { protocol: "h2" });
    const controller = new AbortController();
    const cancelled = c.get(`${server.url}/cancel`, { protocol: "h2", signal: controller.signal });
    await waitFor(() => cancelStream !== undefined && answerOther !== undefined, 5_000, "both streams");
    controller.abort();
    expect(await rejectionOf(cancelled)).toBeInstanceOf(CanceledError);
    expect(await rstCodeOf(cancelStream!)).toBe(NGHTTP2_CANCEL);
    answerOther!();
    expect((await other).text()).toBe("other done");
    expect(server.sessions).toBe(1);
  });

  test("connectTimeout covers the HTTP/2 preface: a peer that never sends SETTINGS", async () => {
    const silent = await res.raw(() => {});
    const c = client();
    const err = await rejectionOf(c.get(`${silent.url}/`, { protocol: "h2", connectTimeout: 150 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).phase).toBe("connect");
    await waitFor(() => silent.open === 0, 5_000, "the socket to close");
  });
});

describe("unprocessed streams are retried; others are not", () => {
  test("GOAWAY: a POST above its last stream id is retried on a new session", async () => {
    const bodies: string[] = [];
    const held: http2.ServerHttp2Stream[] = [];
    const answer = (stream: http2.ServerHttp2Stream): void => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        bodies.push(Buffer.concat(chunks).toString());
        stream.respond({ ":status": 201 });
        stream.end("created");
      });
    };
    const server = await h2((stream) => {
      if (server.sessions > 1) return answer(stream);
      // On the first session: once both streams arrived, GOAWAY with the first as the last one
      // processed. The second (id 3) was not processed: the client must send it again elsewhere.
      held.push(stream);
      if (held.length === 2) {
        stream.session!.goaway(0, held[0]!.id!);
        answer(held[0]!);
      }
    });
    const c = client();
    const [a, b] = await Promise.all([
      c.post(`${server.url}/a`, { body: Buffer.from("first"), protocol: "h2" }),
      c.post(`${server.url}/b`, { body: Buffer.from("second"), protocol: "h2" }),
    ]);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(bodies.sort()).toEqual(["first", "second"]);
    expect(server.sessions).toBe(2);
  });

  test("REFUSED_STREAM: a POST is retried", async () => {
    let refused = 0;
    const server = await h2((stream) => {
      if (refused === 0) {
        refused++;
        stream.close(NGHTTP2_REFUSED_STREAM);
        return;
      }
      stream.respond({ ":status": 200 });
      stream.end("second time");
    });
    const c = client();
    const r = await c.post(`${server.url}/p`, { body: "x", protocol: "h2" });
    expect(r.text()).toBe("second time");
    expect(server.streams).toHaveLength(2);
  });

  test("REFUSED_STREAM every time: at most 2 silent retries, then H2StreamResetError(7)", async () => {
    const server = await h2((stream) => stream.close(NGHTTP2_REFUSED_STREAM));
    const c = client();
    const err = await rejectionOf(c.post(`${server.url}/p`, { body: "x", protocol: "h2", retry: false }));
    expect(err).toBeInstanceOf(H2StreamResetError);
    expect((err as H2StreamResetError).errorCode).toBe(7);
    expect(server.streams).toHaveLength(3);
  });

  test("CANCEL from the server is not retried", async () => {
    const server = await h2((stream) => stream.close(NGHTTP2_CANCEL));
    const c = client();
    const err = await rejectionOf(c.post(`${server.url}/p`, { body: "x", protocol: "h2" }));
    expect(err).toBeInstanceOf(H2StreamResetError);
    expect((err as H2StreamResetError).codeName).toBe("CANCEL");
    expect(server.streams).toHaveLength(1);
  });

  test("a streamed (non-replayable) body is not retried", async () => {
    const server = await h2((stream) => stream.close(NGHTTP2_REFUSED_STREAM));
    const c = client();
    async function* once(): AsyncGenerator<string> {
      yield "only once";
    }
    const err = await rejectionOf(c.post(`${server.url}/p`, { body: once(), protocol: "h2" }));
    expect(err).toBeInstanceOf(H2StreamResetError);
    expect(server.streams).toHaveLength(1);
  });

  test("a GOAWAY with an error code fails the processed streams with a ProtocolError", async () => {
    const server = await h2((stream) => {
      stream.respond({ ":status": 200 });
      stream.write("part");
      stream.session!.goaway(http2.constants.NGHTTP2_INTERNAL_ERROR, stream.id);
      stream.session!.destroy();
    });
    const c = client();
    const err = await rejectionOf(c.get(`${server.url}/g`, { protocol: "h2" }));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err).not.toBeInstanceOf(H2GoAwayError);
  });

  test("a reset after the complete response is ignored", async () => {
    const server = await h2((stream) => {
      stream.respond({ ":status": 200 });
      stream.end("complete", () => stream.close(NGHTTP2_CANCEL));
    });
    const c = client();
    const r = await c.get(`${server.url}/r`, { protocol: "h2" });
    expect(r.text()).toBe("complete");
  });
});

describe("hostile servers", () => {
  test("PUSH_PROMISE is refused: a typed error, no crash", async () => {
    const server = res.add(
      await RawH2Server.start((socket, streamId) => {
        // PUSH_PROMISE (type 5, END_HEADERS) for stream 2: :method GET, :path /, :scheme http.
        const block = Buffer.from([0x82, 0x84, 0x86]);
        const promised = Buffer.alloc(4);
        promised.writeUInt32BE(2);
        socket.write(frame(5, 0x4, streamId, Buffer.concat([promised, block])));
      }),
    );
    const c = client();
    const err = await rejectionOf(c.get(`${server.url}/`, { protocol: "h2" }));
    expect(err).toBeInstanceOf(ProtocolError);
    await waitFor(() => server.open === 0, 5_000, "the connection to close");
  });

  test("a request pseudo-header in a response is a ProtocolError", async () => {
    const server = res.add(
      await RawH2Server.start((socket, streamId) => {
        // :status 200 and :path / (static index 4) in a response: malformed (RFC 9113 §8.3).
        socket.write(frame(1, 0x4 | 0x1, streamId, Buffer.concat([STATUS_200, Buffer.from([0x84])])));
      }),
    );
    const c = client();
    const err = await rejectionOf(c.get(`${server.url}/`, { protocol: "h2" }));
    expect(err).toBeInstanceOf(ProtocolError);
  });

  test("a response body longer than its Content-Length is a ParseError", async () => {
    const server = res.add(
      await RawH2Server.start((socket, streamId) => {
        // :status 200, content-length: 3 (literal with indexed name 28), then 10 bytes of DATA.
        const length = Buffer.from([0x0f, 0x0d, 0x01, 0x33]);
        socket.write(frame(1, 0x4, streamId, Buffer.concat([STATUS_200, length])));
        socket.write(frame(0, 0x1, streamId, Buffer.from("0123456789")));
      }),
    );
    const c = client();
    const err = await rejectionOf(c.get(`${server.url}/`, { protocol: "h2" }));
    expect(err).toBeInstanceOf(ParseError);
  });

  test("a peer that answers the preface with HTTP/1.1 is an H2NegotiationError", async () => {
    const server = await res.raw((conn) => {
      conn.write("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      conn.socket.end();
    });
    const c = client();
    const err = await rejectionOf(c.get(`${server.url}/`, { protocol: "h2" }));
    expect(err).toBeInstanceOf(H2NegotiationError);
  });
});
