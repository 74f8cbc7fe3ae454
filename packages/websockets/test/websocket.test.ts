// The WebSocket a user holds: messages, send/receive, the close handshake and its codes, ping/pong,
// subprotocols, compression, liveness timeouts, and the handler form of open.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { ArgumentError, ProxyConfig, WebSocketError } from "@hyperwire/core";
import { describe, expect, test } from "vitest";
import { WebSocketServer as WsServer, WebSocket as WsSocket } from "ws";
import {
  type Message,
  type OpenOptions,
  open,
  serverAddr,
  type WebSocket,
  type WebSocketServer,
  WebSockets,
} from "../src/index.js";
import {
  checkUnhandledRejections,
  deferred,
  Resources,
  rawClosed,
  settle,
  waitFor,
  within,
} from "./helpers.js";

checkUnhandledRejections();
const res = new Resources();

/** An echo server (messages sent back as they came). */
function echoServer(options: Parameters<Resources["listen"]>[1] = {}): Promise<WebSocketServer> {
  return res.listen(async (ws) => {
    for await (const msg of ws) await ws.send(msg);
  }, options);
}

function urlOf(server: WebSocketServer, path = "/"): string {
  return `ws://${serverAddr(server)}${path}`;
}

/** `open` without a handler, closed after the test. */
async function client(url: string, options: OpenOptions = {}): Promise<WebSocket> {
  const ws = await open(url, { proxy: null, ...options });
  res.defer(() => (ws.isClosed ? undefined : ws.close()));
  return ws;
}

/** A raw `ws` server on 127.0.0.1:0, closed after the test. */
async function rawServer(
  options: ConstructorParameters<typeof WsServer>[0] = {},
): Promise<{ server: WsServer; url: string; connection: Promise<WsSocket> }> {
  const server = new WsServer({ host: "127.0.0.1", port: 0, ...options });
  const connection = new Promise<WsSocket>((resolve) => {
    server.on("connection", (ws) => {
      ws.on("error", () => {});
      resolve(ws);
    });
  });
  await new Promise<void>((r) => server.once("listening", () => r()));
  res.defer(
    () =>
      new Promise<void>((resolve) => {
        for (const c of server.clients) c.terminate();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as { port: number };
  return { server, url: `ws://127.0.0.1:${port}/`, connection };
}

/** Busy for `ms`: the event loop does not run (everything in it happens in one tick). */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy
  }
}

/**
 * A raw reader in its own process (so it reads while this one is busy): it connects to the server,
 * sends "go" after the handshake, and reads until `bytes` bytes of frames have come. Returns the size
 * of each read, the wall-clock time (Date.now()) of the first, and the total.
 */
async function readInAnotherProcess(
  port: number,
  bytes: number,
): Promise<{ reads: number[]; first: number; total: number }> {
  const reader = `
    const s = require("node:net").connect(Number(process.argv[1]), "127.0.0.1");
    const want = Number(process.argv[2]);
    let head = Buffer.alloc(0), upgraded = false, total = 0, first = 0;
    const reads = [];
    s.write("GET /c HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n");
    s.on("data", (d) => {
      if (!upgraded) {
        head = Buffer.concat([head, d]);
        const end = head.indexOf("\\r\\n\\r\\n");
        if (end < 0) return;
        upgraded = true;
        d = head.subarray(end + 4);
        s.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0x67, 0x6f])); // "go", masked with 0
        if (d.length === 0) return;
      }
      if (first === 0) first = Date.now();
      reads.push(d.length);
      total += d.length;
      if (total >= want) { console.log(JSON.stringify({ reads, first, total })); s.destroy(); }
    });`;
  const { stdout } = await within(
    promisify(execFile)(process.execPath, ["-e", reader, String(port), String(bytes)], { timeout: 10_000 }),
    12_000,
    "the reader process",
  );
  return JSON.parse(stdout);
}

describe("the API.md example", () => {
  test("runs as written and replies HELLO", async () => {
    const HTTP = { WebSockets, ProxyConfig };
    // --- verbatim from API.md ---
    const server = await HTTP.WebSockets.listen(
      async (ws) => {
        for await (const msg of ws) {
          await HTTP.WebSockets.send(ws, String(msg).toUpperCase());
        }
      },
      { host: "127.0.0.1", port: 0 },
    );

    const url = "ws://" + HTTP.WebSockets.serverAddr(server) + "/echo";
    const reply = await HTTP.WebSockets.open(
      url,
      async (ws) => {
        await HTTP.WebSockets.send(ws, "hello");
        return HTTP.WebSockets.receive(ws);
      },
      { proxy: new HTTP.ProxyConfig() },
    );
    await HTTP.WebSockets.forceClose(server);
    // --- end ---
    expect(reply).toBe("HELLO");
    expect(server.isOpen).toBe(false);
    expect(server.sessionCount).toBe(0);
  });
});

describe("messages", () => {
  test("text arrives as a string, binary as a Uint8Array", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    await ws.send("héllo ✓");
    const text = await ws.receive();
    expect(text).toBe("héllo ✓");
    await ws.send(new Uint8Array([0, 1, 2, 255]));
    const bin = await ws.receive();
    expect(bin).toBeInstanceOf(Uint8Array);
    expect([...(bin as Uint8Array)]).toEqual([0, 1, 2, 255]);
    await ws.send(new Uint8Array([7, 8]).buffer);
    const fromArrayBuffer = await ws.receive();
    expect(fromArrayBuffer).toBeInstanceOf(Uint8Array);
    expect([...(fromArrayBuffer as Uint8Array)]).toEqual([7, 8]);
    await ws.send("");
    expect(await ws.receive()).toBe("");
  });

  test("the module functions mirror the methods", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    expect(await WebSockets.send(ws, "x")).toBe(1);
    expect(await WebSockets.receive(ws)).toBe("x");
    await WebSockets.ping(ws);
    await WebSockets.pong(ws);
    await WebSockets.close(ws, 1000, "bye");
    expect(ws.isClosed).toBe(true);
    expect(ws.closeCode).toBe(1000);
  });

  test("the server handler sees the path and query it was asked for", async () => {
    const target = deferred<string>();
    const server = await res.listen(async (ws) => {
      target.resolve(ws.target);
    });
    await client(urlOf(server, "/chat/room?x=1"));
    expect(await within(target.promise, 3_000, "the session")).toBe("/chat/room?x=1");
  });

  test("messages come in the order they were sent, and many of them are not lost", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    const n = 2_000;
    const sending = (async () => {
      for (let i = 0; i < n; i++) await ws.send(`m${i}`);
    })();
    const got: Message[] = [];
    for (let i = 0; i < n; i++) got.push(await within(ws.receive(), 5_000, `message ${i}`));
    await sending;
    expect(got).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
  });

  test("a 4 MiB binary message makes the round trip intact", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    const big = new Uint8Array(4 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    expect(await ws.send(big)).toBe(big.length);
    const back = (await within(ws.receive(), 10_000, "the echo")) as Uint8Array;
    expect(back.length).toBe(big.length);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(big))).toBe(0);
  });
});

describe("fragmented send", () => {
  async function recorder() {
    const got: Message[] = [];
    const server = await res.listen(async (ws) => {
      for await (const msg of ws) got.push(msg);
    });
    return { got, server };
  }

  test("an iterable of strings is one text message", async () => {
    const { got, server } = await recorder();
    const ws = await client(urlOf(server));
    expect(await ws.send(["ab", "cd", "é"])).toBe(6);
    await ws.send("after");
    await waitFor(() => got.length === 2, 3_000, "two messages");
    expect(got).toEqual(["abcdé", "after"]);
  });

  test("an iterable of bytes is one binary message", async () => {
    const { got, server } = await recorder();
    const ws = await client(urlOf(server));
    expect(await ws.send([new Uint8Array([1, 2]), new Uint8Array([3]), new Uint8Array([4, 5, 6])])).toBe(6);
    await waitFor(() => got.length === 1, 3_000, "one message");
    expect(got[0]).toBeInstanceOf(Uint8Array);
    expect([...(got[0] as Uint8Array)]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test("an async iterable is one message, sent as it is produced", async () => {
    const { got, server } = await recorder();
    const ws = await client(urlOf(server));
    async function* chunks() {
      for (const c of ["one ", "two ", "three"]) {
        await new Promise((r) => setImmediate(r));
        yield c;
      }
    }
    expect(await ws.send(chunks())).toBe(13);
    await ws.send(
      (async function* () {
        yield new Uint8Array([9]);
        yield new Uint8Array([10]);
      })(),
    );
    await waitFor(() => got.length === 2, 3_000, "two messages");
    expect(got[0]).toBe("one two three");
    expect([...(got[1] as Uint8Array)]).toEqual([9, 10]);
  });

  test("a fragmented message whose source fails halfway closes the connection with 1011", async () => {
    const got: Message[] = [];
    const server = await res.listen(async (ws) => {
      for await (const m of ws) got.push(m);
    });
    const ws = await client(urlOf(server));
    async function* failing() {
      yield "a";
      yield "b";
      throw new RangeError("source broke");
    }
    const { error } = await settle(ws.send(failing()));
    expect(error).toBeInstanceOf(RangeError);
    await within(ws.closed(), 3_000, "the close");
    expect(ws.closeCode).toBe(1011);
    expect(got).toEqual([]);
  });

  test("a generator's chunks that are not strings or bytes are an ArgumentError", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    await expect(ws.send([1, 2] as unknown as string[])).rejects.toBeInstanceOf(ArgumentError);
    await expect(ws.send(42 as unknown as string)).rejects.toBeInstanceOf(ArgumentError);
  });
});

describe("send resolves with the byte count", () => {
  test("payload bytes, UTF-8 for text", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    expect(await ws.send("hello")).toBe(5);
    expect(await ws.send("é✓")).toBe(5);
    expect(await ws.send(new Uint8Array(1000))).toBe(1000);
    expect(await ws.send(["a", "bb", "ccc"])).toBe(6);
  });
});

describe("closing", () => {
  test("receive after the peer closed returns buffered messages first, then throws with the close code", async () => {
    const server = await res.listen(async (ws) => {
      await ws.send("one");
      await ws.send("two");
      await ws.close(4001, "go away");
    });
    const ws = await client(urlOf(server));
    await within(ws.closed(), 3_000, "the server's close");
    expect(ws.isClosed).toBe(true);
    expect(ws.isReady).toBe(true);
    expect(ws.bufferedMessages).toBe(2);
    expect(await ws.receive()).toBe("one");
    expect(await ws.receive()).toBe("two");
    const { error } = await settle(ws.receive());
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(4001);
    expect((error as WebSocketError).reason).toBe("go away");
    expect(ws.closeCode).toBe(4001);
    expect(ws.closeReason).toBe("go away");
  });

  test("a receive that is waiting when the peer closes throws", async () => {
    const server = await res.listen(async (ws) => {
      await ws.receive();
      await ws.close(4002);
    });
    const ws = await client(urlOf(server));
    const waiting = settle(ws.receive());
    await ws.send("close please");
    const { error } = await within(waiting, 3_000, "receive to settle");
    expect((error as WebSocketError).closeCode).toBe(4002);
  });

  for (const code of [1000, 1001]) {
    test(`iteration ends quietly when the server closes with ${code}, after the buffered messages`, async () => {
      const server = await res.listen(async (ws) => {
        await ws.send("a");
        await ws.send("b");
        await ws.close(code);
      });
      const ws = await client(urlOf(server));
      await within(ws.closed(), 3_000, "the close");
      const got: Message[] = [];
      for await (const m of ws) got.push(m);
      expect(got).toEqual(["a", "b"]);
      expect(ws.closeCode).toBe(code);
    });
  }

  test("iteration ends quietly on 1005 (a close frame without a code)", async () => {
    const { server, url } = await rawServer();
    server.on("connection", (peer) => {
      peer.send("a");
      peer.close();
    });
    const ws = await client(url);
    const got: Message[] = [];
    for await (const m of ws) got.push(m);
    expect(got).toEqual(["a"]);
    expect(ws.closeCode).toBe(1005);
  });

  for (const code of [4001, 1011, 3000]) {
    test(`iteration throws WebSocketError when the server closes with ${code}`, async () => {
      const server = await res.listen(async (ws) => {
        await ws.send("before");
        await ws.close(code, "because");
      });
      const ws = await client(urlOf(server));
      const got: Message[] = [];
      const { error } = await settle(
        (async () => {
          for await (const m of ws) got.push(m);
        })(),
      );
      expect(got).toEqual(["before"]);
      expect(error).toBeInstanceOf(WebSocketError);
      expect((error as WebSocketError).closeCode).toBe(code);
      expect((error as WebSocketError).reason).toBe("because");
    });
  }

  test("close(code, reason) reaches the peer, and the handshake completes", async () => {
    const seen = deferred<unknown>();
    const server = await res.listen(async (ws) => {
      try {
        for await (const _ of ws) {
          // drain
        }
        seen.resolve("ended quietly");
      } catch (e) {
        seen.resolve(e);
      }
    });
    const ws = await client(urlOf(server));
    await within(ws.close(4321, "done here"), 3_000, "close()");
    expect(ws.isClosed).toBe(true);
    expect(ws.closeCode).toBe(4321);
    const e = await within(seen.promise, 3_000, "the server's iteration to end");
    expect(e).toBeInstanceOf(WebSocketError);
    expect((e as WebSocketError).closeCode).toBe(4321);
    expect((e as WebSocketError).reason).toBe("done here");
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
  });

  test("close() is idempotent and a second call shares the first", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    const a = ws.close(1000);
    const b = ws.close(4000);
    await within(Promise.all([a, b]), 3_000, "close()");
    expect(ws.closeCode).toBe(1000);
    await ws.close();
  });

  test("an invalid close code or a reason over 123 bytes is an ArgumentError, and the socket stays open", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 1000.5, Number.NaN]) {
      const { error } = await settle((async () => ws.close(code))());
      expect(error, `code ${code}`).toBeInstanceOf(ArgumentError);
    }
    for (const reason of ["x".repeat(124), "é".repeat(62)]) {
      const { error } = await settle((async () => ws.close(1000, reason))());
      expect(error).toBeInstanceOf(ArgumentError);
    }
    expect(ws.isClosed).toBe(false);
    await ws.send("still open");
    expect(await ws.receive()).toBe("still open");
    await ws.close(1000, "x".repeat(123));
    expect(ws.closeCode).toBe(1000);
  });

  test("send after our close is a WebSocketError with the close code", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    await ws.close(1000);
    const { error } = await settle(ws.send("late"));
    expect(error).toBeInstanceOf(WebSocketError);
    expect([1000, 1006]).toContain((error as WebSocketError).closeCode);
    const ping = await settle(ws.ping());
    expect(ping.error).toBeInstanceOf(WebSocketError);
  });

  test("send after the peer closed is a WebSocketError with the peer's code", async () => {
    const server = await res.listen(async (ws) => {
      await ws.close(4003);
    });
    const ws = await client(urlOf(server));
    await within(ws.closed(), 3_000, "the close");
    const { error } = await settle(ws.send("late"));
    expect(error).toBeInstanceOf(WebSocketError);
    expect([4003, 1006]).toContain((error as WebSocketError).closeCode);
  });

  test("await using closes the socket with 1000", async () => {
    const ended = deferred<number | undefined>();
    const server = await res.listen(async (ws) => {
      for await (const _ of ws) {
        // drain
      }
      ended.resolve(ws.closeCode);
    });
    let inner: WebSocket | undefined;
    {
      await using ws = await open(urlOf(server), { proxy: null });
      inner = ws;
      await ws.send("hi");
    }
    expect(inner.isClosed).toBe(true);
    expect(inner.closeCode).toBe(1000);
    expect(await within(ended.promise, 3_000, "the session")).toBe(1000);
  });

  test("await using closes a server", async () => {
    let addr = "";
    {
      await using server = await WebSockets.listen(async () => {}, { host: "127.0.0.1", port: 0 });
      addr = serverAddr(server);
      expect(server.isOpen).toBe(true);
    }
    const { error } = await settle(open(`ws://${addr}/`, { proxy: null }));
    expect(error).toBeDefined();
  });
});

describe("concurrency and back-pressure", () => {
  test("concurrent receive() calls each get a message, in order", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    const first = ws.receive();
    const second = ws.receive();
    const third = ws.receive();
    await ws.send("m1");
    await ws.send("m2");
    await ws.send("m3");
    expect(await within(Promise.all([first, second, third]), 3_000, "three messages")).toEqual([
      "m1",
      "m2",
      "m3",
    ]);
  });

  test("receive() and for-await readers waiting together each get their message in their own form, in order", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    const iterator = ws[Symbol.asyncIterator]();
    // The first waiting reader is kept apart from those after it: both orders of the two kinds.
    const got = [ws.receive(), iterator.next(), ws.receive(), iterator.next(), iterator.next(), ws.receive()];
    for (const m of ["m1", "m2", "m3", "m4", "m5", "m6"]) await ws.send(m);
    expect(await within(Promise.all(got), 3_000, "six messages")).toEqual([
      "m1",
      { done: false, value: "m2" },
      "m3",
      { done: false, value: "m4" },
      { done: false, value: "m5" },
      "m6",
    ]);
  });

  test("sends not awaited one by one keep their order past the 64 KiB mark, and each resolves with its size", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    const body = "x".repeat(1000);
    // 300 KB in one go: the first sends are taken at once, the later ones wait for their write.
    const sizes = await within(
      Promise.all(Array.from({ length: 300 }, (_, i) => ws.send(`${String(i).padStart(3, "0")}${body}`))),
      5_000,
      "300 sends",
    );
    expect(sizes.every((n) => n === 1003)).toBe(true);
    for (let i = 0; i < 300; i++) {
      const m = (await within(ws.receive(), 3_000, `echo ${i}`)) as string;
      expect(m.slice(0, 3)).toBe(String(i).padStart(3, "0"));
    }
  });

  test("frames sent in one tick leave in one write: a reader in another process gets them in one read", async () => {
    // The handler spends 50 ms between its three sends, all in one tick. Written one by one, the
    // reader (its own process) would get the first frame alone; held to the end of the tick, the
    // three 4-byte frames arrive as one 12-byte read.
    const server = await res.listen(async (ws) => {
      await ws.receive();
      for (let i = 0; i < 3; i++) {
        void ws.send(`m${i}`);
        spin(50);
      }
      for await (const _ of ws) {
        // until the reader goes
      }
    });
    const { reads } = await readInAnotherProcess(server.port, 12);
    expect(reads).toEqual([12]);
  });

  test("a long burst in one tick is not all held to its end: 64 KiB at a time goes out", async () => {
    // 100 sends of 1 KiB, 10 ms apart, in one tick (about 1 s). Past 64 KiB held, what is held is
    // written: the reader gets its first bytes some 350 ms before the loop ends, not after it.
    let loopEnd = 0;
    const server = await res.listen(async (ws) => {
      await ws.receive();
      const kib = new Uint8Array(1024);
      for (let i = 0; i < 100; i++) {
        void ws.send(kib);
        spin(10);
      }
      loopEnd = Date.now();
      for await (const _ of ws) {
        // until the reader goes
      }
    });
    const { first, total } = await readInAnotherProcess(server.port, 100 * (1024 + 4));
    expect(total).toBe(100 * (1024 + 4));
    expect(loopEnd - first).toBeGreaterThan(150);
  });

  test("frames sent in the tick of a terminate() still reach the peer before the connection drops", async () => {
    const server = await res.listen(async (ws) => {
      await ws.receive();
      void ws.send("last");
      void ws.send(new Uint8Array([1, 2, 3]));
      ws.terminate();
    });
    const peer = await res.rawClient(urlOf(server));
    const got: string[] = [];
    peer.on("message", (data, isBinary) =>
      got.push(isBinary ? `bytes:${[...(data as Buffer)]}` : String(data)),
    );
    const closed = rawClosed(peer);
    peer.send("go");
    const [code] = await within(closed, 3_000, "the drop");
    expect(code).toBe(1006);
    expect(got).toEqual(["last", "bytes:1,2,3"]);
  });

  test("a for-await loop and a receive() waiting together: iteration ends on 1000, receive throws", async () => {
    const release = deferred();
    const server = await res.listen(async (ws) => {
      await release.promise;
      await ws.close(1000, "bye");
    });
    const ws = await client(urlOf(server));
    const iterated = (async () => {
      const got: Message[] = [];
      for await (const m of ws) got.push(m);
      return got;
    })();
    const received = settle(ws.receive());
    release.resolve();
    expect(await within(iterated, 3_000, "the iteration")).toEqual([]);
    const { error } = await within(received, 3_000, "the receive");
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1000);
  });

  test("concurrent receive() calls all throw when the peer closes", async () => {
    const server = await res.listen(async (ws) => {
      await ws.receive();
      await ws.close(4005);
    });
    const ws = await client(urlOf(server));
    const waiting = [settle(ws.receive()), settle(ws.receive())];
    await ws.send("go");
    const results = await within(Promise.all(waiting), 3_000, "both receives to settle");
    for (const r of results) expect((r.error as WebSocketError).closeCode).toBe(4005);
  });

  test("a message sent while a fragmented message is in flight does not corrupt it", async () => {
    const got: Message[] = [];
    const outcome = deferred<unknown>();
    const server = await res.listen(async (ws) => {
      try {
        for await (const m of ws) got.push(m);
        outcome.resolve("ended quietly");
      } catch (e) {
        outcome.resolve(e);
      }
    });
    const ws = await client(urlOf(server));
    const release = deferred();
    async function* slow() {
      yield "part 1, ";
      yield "part 2, ";
      await release.promise;
      yield "part 3";
    }
    const fragmented = ws.send(slow());
    // Let the first fragment go out, then send a whole message in the middle.
    await new Promise((r) => setImmediate(r));
    const whole = ws.send("whole");
    release.resolve();
    await within(Promise.all([fragmented, whole]), 3_000, "both sends");
    await ws.send("last");
    await waitFor(() => got.length === 3 || ws.isClosed, 3_000, "three messages or a close");
    expect(ws.isClosed).toBe(false);
    expect(got).toEqual(["part 1, part 2, part 3", "whole", "last"]);
  });

  test("awaited sends stall when the peer does not read (back-pressure), instead of buffering without bound", async () => {
    const sent = { count: 0 };
    const stop = deferred();
    const server = await res.listen(async (ws) => {
      const chunk = new Uint8Array(1024 * 1024);
      while (sent.count < 256) {
        const r = await Promise.race([ws.send(chunk).then(() => "sent"), stop.promise.then(() => "stop")]);
        if (r === "stop") return;
        sent.count++;
      }
    });
    res.defer(() => stop.resolve());
    const peer = await res.rawClient(urlOf(server));
    // The peer stops reading from its socket.
    (peer as unknown as { _socket: import("node:net").Socket })._socket.pause();
    let last = -1;
    // Wait until the count stops growing for 300 ms.
    for (let i = 0; i < 40 && sent.count !== last; i++) {
      last = sent.count;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(sent.count).toBe(last);
    expect(sent.count).toBeLessThan(64);
  });

  test("a slow consumer is not taken for a silent peer by readIdleTimeout", async () => {
    const server = await res.listen(
      async (ws) => {
        for (let i = 0; i < 600; i++) await ws.send(`m${i}`);
        await ws.closed();
      },
      { pingInterval: 50 },
    );
    const ws = await client(urlOf(server), { readIdleTimeout: 300 });
    // Read nothing for a while: more than 256 messages wait, so reading pauses, and the server's
    // pings keep coming. The peer is not silent; we are slow.
    await waitFor(() => ws.bufferedMessages >= 256, 3_000, "the queue to fill");
    await new Promise((r) => setTimeout(r, 900));
    const got: Message[] = [];
    for (let i = 0; i < 600; i++) got.push(await within(ws.receive(), 3_000, `message ${i}`));
    expect(got[599]).toBe("m599");
    expect(ws.isClosed).toBe(false);
  });
});

describe("ping and pong", () => {
  test("a ping or pong payload over 125 bytes is an ArgumentError", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    const ping = await settle((async () => ws.ping("x".repeat(126)))());
    expect(ping.error).toBeInstanceOf(ArgumentError);
    const pong = await settle((async () => ws.pong(new Uint8Array(200)))());
    expect(pong.error).toBeInstanceOf(ArgumentError);
    await ws.ping("x".repeat(125));
    expect(ws.isClosed).toBe(false);
  });

  test("our ping reaches a raw ws peer, which answers it; pings are not messages", async () => {
    const { url, connection } = await rawServer();
    const ws = await client(url);
    const peer = await connection;
    const gotPing = new Promise<string>((r) => peer.once("ping", (d: Buffer) => r(d.toString())));
    await within(ws.ping("abc"), 3_000, "ping()");
    expect(await within(gotPing, 3_000, "the peer to see the ping")).toBe("abc");
    peer.send("after");
    expect(await ws.receive()).toBe("after");
  });

  test("pings from the peer are answered automatically and not delivered", async () => {
    const server = await echoServer();
    const peer = await res.rawClient(urlOf(server));
    const gotPong = new Promise<string>((r) => peer.once("pong", (d: Buffer) => r(d.toString())));
    peer.ping("xyz");
    expect(await within(gotPong, 3_000, "the pong")).toBe("xyz");
    const msg = new Promise<string>((r) => peer.once("message", (d: Buffer) => r(d.toString())));
    peer.send("m");
    expect(await within(msg, 3_000, "the echo")).toBe("m");
  });

  test("our client answers a server's ping, and pong() sends an unsolicited pong", async () => {
    const { url, connection } = await rawServer();
    const ws = await client(url);
    const peer = await connection;
    const answered = new Promise<string>((r) => peer.once("pong", (d: Buffer) => r(d.toString())));
    peer.ping("p1");
    expect(await within(answered, 3_000, "the automatic pong")).toBe("p1");
    const unsolicited = new Promise<string>((r) => peer.once("pong", (d: Buffer) => r(d.toString())));
    await ws.pong("u");
    expect(await within(unsolicited, 3_000, "the unsolicited pong")).toBe("u");
    expect(ws.bufferedMessages).toBe(0);
  });
});

describe("subprotocols", () => {
  test("the server's list order wins", async () => {
    const chosen = deferred<string | null>();
    const server = await res.listen(
      async (ws) => {
        chosen.resolve(ws.subprotocol);
      },
      { subprotocols: ["chat.v2", "chat.v1"] },
    );
    const ws = await client(urlOf(server), { subprotocols: ["chat.v1", "chat.v2"] });
    expect(ws.subprotocol).toBe("chat.v2");
    expect(await chosen.promise).toBe("chat.v2");
  });

  test("with none matching, the connection proceeds with subprotocol null", async () => {
    const chosen = deferred<string | null>();
    const server = await res.listen(
      async (ws) => {
        chosen.resolve(ws.subprotocol);
        for await (const m of ws) await ws.send(m);
      },
      { subprotocols: ["a"] },
    );
    const ws = await client(urlOf(server), { subprotocols: ["x", "y"] });
    expect(ws.subprotocol).toBeNull();
    expect(await chosen.promise).toBeNull();
    await ws.send("works");
    expect(await ws.receive()).toBe("works");
  });

  test("without subprotocols on either side it is null", async () => {
    const server = await echoServer();
    const ws = await client(urlOf(server));
    expect(ws.subprotocol).toBeNull();
  });

  test("a subprotocol that is not an HTTP token is an ArgumentError", async () => {
    const server = await echoServer();
    for (const bad of ["two words", "", "a,b"]) {
      const { error } = await settle(open(urlOf(server), { proxy: null, subprotocols: [bad] }));
      expect(error, JSON.stringify(bad)).toBeInstanceOf(ArgumentError);
    }
  });

  test("a server that picks a subprotocol the client did not offer fails the handshake", async () => {
    const { url } = await rawServer({ handleProtocols: () => "evil" });
    const { error } = await settle(open(url, { proxy: null, subprotocols: ["good"] }));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1002);
  });
});

describe("compression", () => {
  test("compress: true on both sides negotiates permessage-deflate and round-trips", async () => {
    const server = await echoServer({ compress: true });
    const ws = await client(urlOf(server), { compress: true });
    const text = "compressible ".repeat(10_000);
    await ws.send(text);
    expect(await ws.receive()).toBe(text);
    expect(await ws.send(["frag", "mented ", "and compressed"])).toBe(25);
    expect(await ws.receive()).toBe("fragmented and compressed");
    const bin = new Uint8Array(100_000).fill(7);
    await ws.send(bin);
    expect(Buffer.compare(Buffer.from((await ws.receive()) as Uint8Array), Buffer.from(bin))).toBe(0);
  });

  test("our server accepts a compressing peer only with compress: true", async () => {
    const on = await echoServer({ compress: true });
    const off = await echoServer();
    const a = await res.rawClient(urlOf(on), { perMessageDeflate: true });
    const b = await res.rawClient(urlOf(off), { perMessageDeflate: true });
    expect(a.extensions).toContain("permessage-deflate");
    expect(b.extensions).toBe("");
  });

  test("our client offers permessage-deflate only with compress: true", async () => {
    const offers: (string | undefined)[] = [];
    const { server, url } = await rawServer({ perMessageDeflate: true });
    server.on("connection", (_ws, req) => offers.push(req.headers["sec-websocket-extensions"]));
    await client(url, { compress: true });
    await client(url);
    await waitFor(() => offers.length === 2, 3_000, "two connections");
    expect(offers[0]).toContain("permessage-deflate");
    expect(offers[1]).toBeUndefined();
  });
});

describe("liveness", () => {
  test("readIdleTimeout after the upgrade closes with 1006 when the server is silent", async () => {
    const server = await res.listen(async (ws) => {
      await ws.closed();
    });
    const started = performance.now();
    const ws = await client(urlOf(server), { readIdleTimeout: 200 });
    const { error } = await settle(
      within(
        (async () => {
          for await (const _ of ws) {
            // nothing arrives
          }
        })(),
        3_000,
        "the read idle timeout",
      ),
    );
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1006);
    expect((error as WebSocketError).reason).toMatch(/idle/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);
    await waitFor(() => server.sessionCount === 0, 3_000, "the server session to end");
  });

  test("readIdleTimeout on the server closes a silent client with 1006", async () => {
    const seen = deferred<unknown>();
    const server = await res.listen(
      async (ws) => {
        try {
          for await (const _ of ws) {
            // nothing arrives
          }
          seen.resolve("ended quietly");
        } catch (e) {
          seen.resolve(e);
        }
      },
      { readIdleTimeout: 200 },
    );
    const ws = await client(urlOf(server));
    const e = await within(seen.promise, 3_000, "the server's read idle timeout");
    expect((e as WebSocketError).closeCode).toBe(1006);
    await within(ws.closed(), 3_000, "the client to see the drop");
    expect(ws.closeCode).toBe(1006);
  });

  test("messages and pings keep a readIdleTimeout from firing", async () => {
    const server = await res.listen(
      async (ws) => {
        for await (const m of ws) await ws.send(m);
      },
      { pingInterval: 50 },
    );
    const ws = await client(urlOf(server), { readIdleTimeout: 250 });
    // Four times the idle timeout with no message: the server's pings keep the connection alive.
    const window = new Promise((r) => setTimeout(r, 1_000));
    await within(Promise.race([ws.closed().then(() => "closed"), window]), 3_000, "the window");
    expect(ws.isClosed).toBe(false);
    await ws.send("alive");
    expect(await ws.receive()).toBe("alive");
  });

  test("pingInterval + pongTimeout on the server close with 1006 when the peer stops answering", async () => {
    const seen = deferred<unknown>();
    const server = await res.listen(
      async (ws) => {
        try {
          for await (const _ of ws) {
            // nothing
          }
          seen.resolve("ended quietly");
        } catch (e) {
          seen.resolve(e);
        }
      },
      { pingInterval: 50, pongTimeout: 150 },
    );
    const peer = await res.rawClient(urlOf(server), { autoPong: false });
    let pings = 0;
    peer.on("ping", () => pings++);
    const peerClosed = rawClosed(peer);
    const e = await within(seen.promise, 3_000, "the pong timeout");
    expect(e).toBeInstanceOf(WebSocketError);
    expect((e as WebSocketError).closeCode).toBe(1006);
    expect((e as WebSocketError).reason).toMatch(/pong/);
    expect(pings).toBeGreaterThanOrEqual(1);
    expect((await within(peerClosed, 3_000, "the peer to see the drop"))[0]).toBe(1006);
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to be freed");
  });

  test("a peer that answers pings stays connected", async () => {
    const server = await echoServer({ pingInterval: 50, pongTimeout: 100 });
    const peer = await res.rawClient(urlOf(server));
    let pings = 0;
    peer.on("ping", () => pings++);
    await new Promise((r) => setTimeout(r, 600));
    expect(pings).toBeGreaterThanOrEqual(3);
    expect(peer.readyState).toBe(WsSocket.OPEN);
    const msg = new Promise<string>((r) => peer.once("message", (d: Buffer) => r(d.toString())));
    peer.send("still here");
    expect(await within(msg, 3_000, "the echo")).toBe("still here");
  });

  test("pingInterval + pongTimeout on the client close with 1006 when the server stops answering", async () => {
    const { url } = await rawServer({ autoPong: false });
    const ws = await client(url, { pingInterval: 50, pongTimeout: 150 });
    const { error } = await settle(within(ws.receive(), 3_000, "the pong timeout"));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1006);
  });
});

describe("the handler form of open", () => {
  test("returns the handler's value and closes with 1000", async () => {
    const ended = deferred<number | undefined>();
    const server = await res.listen(async (ws) => {
      for await (const m of ws) await ws.send(m);
      ended.resolve(ws.closeCode);
    });
    let held: WebSocket | undefined;
    const value = await open(
      urlOf(server),
      async (ws) => {
        held = ws;
        await ws.send("q");
        return { answer: await ws.receive() };
      },
      { proxy: null },
    );
    expect(value).toEqual({ answer: "q" });
    expect(held?.isClosed).toBe(true);
    expect(held?.closeCode).toBe(1000);
    expect(await within(ended.promise, 3_000, "the session")).toBe(1000);
  });

  for (const code of [1000, 1001]) {
    test(`a WebSocketError with ${code} inside the handler resolves to undefined`, async () => {
      const server = await res.listen(async (ws) => {
        await ws.close(code);
      });
      const value = await open(
        urlOf(server),
        async (ws) => {
          await ws.receive();
          return "unreachable";
        },
        { proxy: null },
      );
      expect(value).toBeUndefined();
    });
  }

  test("a WebSocketError with 1005 inside the handler resolves to undefined", async () => {
    const { server, url } = await rawServer();
    server.on("connection", (peer) => peer.close());
    const value = await open(url, (ws) => ws.receive(), { proxy: null });
    expect(value).toBeUndefined();
  });

  test("a WebSocketError with another code rejects open", async () => {
    const server = await res.listen(async (ws) => {
      await ws.close(4001, "nope");
    });
    const { error } = await settle(open(urlOf(server), (ws) => ws.receive(), { proxy: null }));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(4001);
  });

  test("an error thrown by the handler rejects open and still closes the socket", async () => {
    const ended = deferred<number | undefined>();
    const server = await res.listen(async (ws) => {
      for await (const _ of ws) {
        // drain
      }
      ended.resolve(ws.closeCode);
    });
    let held: WebSocket | undefined;
    const { error } = await settle(
      open(
        urlOf(server),
        (ws) => {
          held = ws;
          throw new RangeError("mine");
        },
        { proxy: null },
      ),
    );
    expect(error).toBeInstanceOf(RangeError);
    expect(held?.isClosed).toBe(true);
    expect(await within(ended.promise, 3_000, "the session")).toBeDefined();
  });
});

describe("server sessions", () => {
  test("a handler that throws closes the session with 1011", async () => {
    const server = await res.listen(async (ws) => {
      await ws.receive();
      throw new Error("boom");
    });
    const ws = await client(urlOf(server));
    await ws.send("trigger");
    const { error } = await settle(
      within(
        (async () => {
          for await (const _ of ws) {
            // nothing
          }
        })(),
        3_000,
        "the close",
      ),
    );
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(1011);
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
  });

  test("a handler that returns closes the session with 1000", async () => {
    const server = await res.listen(async (ws) => {
      await ws.send("bye");
    });
    const ws = await client(urlOf(server));
    const got: Message[] = [];
    for await (const m of ws) got.push(m);
    expect(got).toEqual(["bye"]);
    expect(ws.closeCode).toBe(1000);
  });

  test("a handler that throws before it returns a promise closes the session with 1011", async () => {
    const server = await res.listen(() => {
      throw new Error("boom");
    });
    const ws = await client(urlOf(server));
    const { error } = await settle(within(ws.receive(), 3_000, "the close"));
    expect((error as WebSocketError).closeCode).toBe(1011);
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
  });

  test("a handler that is not async closes the session with 1000 once it returns", async () => {
    const server = await res.listen((ws) => {
      void ws.send("bye");
      return "not a promise";
    });
    const ws = await client(urlOf(server));
    expect(await within(ws.receive(), 3_000, "the message")).toBe("bye");
    await within(ws.closed(), 3_000, "the close");
    expect(ws.closeCode).toBe(1000);
    await waitFor(() => server.sessionCount === 0, 3_000, "the session to end");
  });

  test("forceClose does not wait for a handler that is still busy; wait() does", async () => {
    const release = deferred();
    let finished = false;
    const server = await res.listen(async (ws) => {
      await ws.closed();
      await release.promise; // e.g. flushing something after the session
      finished = true;
    });
    res.defer(() => release.resolve());
    const ws = await client(urlOf(server));
    await waitFor(() => server.sessionCount === 1, 3_000, "the session");
    await within(server.forceClose(), 3_000, "forceClose to return");
    expect(ws.isClosed).toBe(true);
    expect(finished).toBe(false);
    let waited = false;
    const waiting = server.wait().then(() => {
      waited = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(waited).toBe(false);
    release.resolve();
    await within(waiting, 3_000, "wait()");
    expect(finished).toBe(true);
  });

  test("forceClose sends 1001 to every session, and the server stops accepting", async () => {
    const server = await echoServer();
    const url = urlOf(server);
    const a = await client(url);
    const b = await client(url);
    await waitFor(() => server.sessionCount === 2, 3_000, "two sessions");
    await within(WebSockets.forceClose(server), 5_000, "forceClose");
    await within(Promise.all([a.closed(), b.closed()]), 3_000, "both clients to close");
    expect(a.closeCode).toBe(1001);
    expect(b.closeCode).toBe(1001);
    expect(a.closeReason).toBe("server shutting down");
    expect(server.sessionCount).toBe(0);
    await within(server.wait(), 3_000, "wait()");
    const { error } = await settle(open(url, { proxy: null }));
    expect(error).toBeDefined();
  });
});
