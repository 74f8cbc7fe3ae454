// One WebSocket server in its own process: `node server.mjs <hyperwire|ws>`. Prints {"port"} as its
// first stdout line. Paths: /echo sends every binary message back, /sink counts the bytes of binary
// messages, /push sends 16-byte binary messages as fast as the connection takes them (honouring
// back-pressure, and yielding to the event loop every PUSH_BATCH messages: a write that completes at
// once calls back before any I/O runs, so a bare send loop never reads the client's "stop"). On every path a text message is a control message, answered in the same stream:
// "start" marks the measurement window (time, CPU, bytes), "stop" answers
// {"bytes", "seconds", "cpuSeconds"} since the mark. A "mem" line on stdin answers (on stdout)
// {"rss", "heapUsed", "sessions"} after garbage collection (needs --expose-gc).
// hyperwire is `listen(handler)` with the idiomatic `for await` + `await ws.send`; ws is a plain
// `WebSocketServer` with 'message' listeners, its push loop sending until `bufferedAmount` passes
// HIGH_WATER and then waiting for a send callback.
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { ballast } from "../lib.mjs";

const impl = process.argv[2];
// An application-sized heap for both contenders (see ballast in ../lib.mjs); BENCH_HEAP_MB=0 for none.
ballast(Number(process.env.BENCH_HEAP_MB ?? 64));
const HOST = "127.0.0.1";
const HIGH_WATER = 64 * 1024;
const PUSHED = Buffer.alloc(16, "p");
const PUSH_BATCH = 128;
const yieldToEventLoop = () => new Promise((resolve) => setImmediate(resolve));

let bytes = 0;
let mark = { t: performance.now(), cpu: process.cpuUsage(), bytes: 0 };

function control(text) {
  if (text === "start") {
    mark = { t: performance.now(), cpu: process.cpuUsage(), bytes };
    return "ok";
  }
  if (text === "stop") {
    const cpu = process.cpuUsage(mark.cpu);
    return JSON.stringify({
      bytes: bytes - mark.bytes,
      seconds: (performance.now() - mark.t) / 1000,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    });
  }
  return "?";
}

const SERVERS = {
  async hyperwire() {
    const { listen } = await import("@hyperwire/websockets");
    const push = async (ws) => {
      try {
        for (;;) {
          for (let i = 0; i < PUSH_BATCH; i++) await ws.send(PUSHED);
          await yieldToEventLoop();
        }
      } catch {
        // Closed by the client: the push ends.
      }
    };
    const server = await listen(
      async (ws) => {
        const path = ws.target;
        if (path === "/push") void push(ws);
        const sink = path === "/sink";
        for await (const m of ws) {
          if (typeof m === "string") await ws.send(control(m));
          else if (sink) bytes += m.byteLength;
          else await ws.send(m);
        }
      },
      { host: HOST, port: 0 },
    );
    return { port: server.port, sessions: () => server.sessionCount };
  },

  async ws() {
    const { WebSocketServer } = await import("ws");
    const wss = new WebSocketServer({ host: HOST, port: 0, perMessageDeflate: false });
    const pump = (ws) => {
      const go = (err) => {
        if (err || ws.readyState !== 1) return;
        for (let i = 0; i < PUSH_BATCH; i++) {
          if (ws.bufferedAmount >= HIGH_WATER) {
            ws.send(PUSHED, go);
            return;
          }
          ws.send(PUSHED);
        }
        setImmediate(go);
      };
      go();
    };
    wss.on("connection", (ws, req) => {
      ws.on("error", noop);
      const sink = req.url === "/sink";
      ws.on("message", (data, isBinary) => {
        if (!isBinary) ws.send(control(data.toString()));
        else if (sink) bytes += data.length;
        else ws.send(data);
      });
      if (req.url === "/push") pump(ws);
    });
    await new Promise((resolve) => wss.once("listening", resolve));
    return { port: wss.address().port, sessions: () => wss.clients.size };
  },
};

function noop() {}

const factory = SERVERS[impl];
if (factory === undefined) {
  console.error(`usage: node server.mjs <${Object.keys(SERVERS).join("|")}>`);
  process.exit(2);
}
const { port, sessions } = await factory();
process.stdout.write(`${JSON.stringify({ port })}\n`);

// A normal exit on SIGTERM, so that `--cpu-prof` writes its profile (profile.mjs).
process.on("SIGTERM", () => process.exit(0));
createInterface({ input: process.stdin }).on("line", async (line) => {
  if (line.trim() !== "mem") return;
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, sessions: sessions() })}\n`);
});
