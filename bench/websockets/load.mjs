// One client measurement in its own process: `node load.mjs <hyperwire|ws> <scenario> <ws://host:port>
// [seconds] [warmup]`. Runs `warmup` seconds uncounted, then `seconds` counted, and prints one JSON
// line on stdout. Scenarios:
//   echo1   one connection, sequential 16 B binary send → receive; {rate (msgs/s), cpuRate, p50, p99 (µs)}
//   echo8   the same on 8 connections in parallel; {rate, cpuRate}
//   send4k  4 KB binary messages client → server, back-pressure honoured; server counts the bytes
//   send1m  1 MiB binary messages the same way; {rate (MB/s, 10^6 B), cpuRate (MB per CPU-s)}
//   push    the server pushes 16 B binary messages, the client counts them; {rate (msgs/s), cpuRate}
//   idle    opens IDLE_CONNS (default 2500) connections, IDLE_BATCH (default 100) handshakes at a
//           time, and holds them; prints {rssBefore, rssAfter, heapBefore, heapAfter, seconds} after
//           GC (needs --expose-gc) and waits to be killed.
// cpuRate divides by the CPU time of this process plus the server's (reported by the server for the
// same window through text control messages "start"/"stop" on the connection).
// hyperwire is used idiomatically: `await ws.send(x)` (resolves once written) and `ws.receive()` /
// `for await`. ws is used as its users do: `send` without a callback while `bufferedAmount` is under
// HIGH_WATER, otherwise waiting for that send's callback; messages through a 'message' listener.
import { performance } from "node:perf_hooks";
import { ballast } from "../lib.mjs";

const [impl, scenario, base, secondsArg = "3", warmupArg = "2"] = process.argv.slice(2);
// An application-sized heap for both contenders (see ballast in ../lib.mjs); BENCH_HEAP_MB=0 for none.
ballast(Number(process.env.BENCH_HEAP_MB ?? 64));
const SECONDS = Number(secondsArg);
const WARMUP = Number(warmupArg);
const HIGH_WATER = 64 * 1024;
const MSG = Buffer.alloc(16, "m");
const SIZES = { send4k: 4096, send1m: 1024 * 1024 };
const PATHS = {
  echo1: "/echo",
  echo8: "/echo",
  send4k: "/sink",
  send1m: "/sink",
  push: "/push",
  idle: "/echo",
};
if (!(impl in { hyperwire: 1, ws: 1 }) || PATHS[scenario] === undefined || base === undefined) {
  console.error(`usage: node load.mjs <hyperwire|ws> <${Object.keys(PATHS).join("|")}> <ws://host:port>`);
  process.exit(2);
}
const url = `${base}${PATHS[scenario]}`;

/**
 * One connection behind a common face: `send(data)` (a Promise or undefined), `next()` (the next
 * message: a string for text, a Buffer/Uint8Array for binary), `onMessage(fn)` (ws only: a callback
 * per message, for push), `close()`.
 */
const IMPLS = {
  async hyperwire() {
    const { open } = await import("@hyperwire/websockets");
    // open() loads the HTTP client on its first call; loaded here, before any measurement starts, so
    // that the idle memory counts connections only (as the ws client's modules are loaded already).
    await import("@hyperwire/client");
    return async () => {
      const ws = await open(url, { proxy: null });
      return {
        send: (data) => ws.send(data),
        next: () => ws.receive(),
        messages: () => ws,
        close: () => ws.close(),
      };
    };
  },

  async ws() {
    const { WebSocket } = await import("ws");
    return async () => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.on("error", () => {});
      await new Promise((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", reject);
      });
      let waiter;
      let listener;
      const queue = [];
      ws.on("message", (data, isBinary) => {
        const m = isBinary ? data : data.toString();
        if (listener !== undefined) listener(m);
        else if (waiter !== undefined) {
          const w = waiter;
          waiter = undefined;
          w(m);
        } else queue.push(m);
      });
      return {
        // The idiomatic paced send: no callback until the buffer passes HIGH_WATER.
        send: (data) => {
          if (ws.bufferedAmount < HIGH_WATER) {
            ws.send(data);
            return undefined;
          }
          return new Promise((resolve, reject) => ws.send(data, (err) => (err ? reject(err) : resolve())));
        },
        next: () =>
          queue.length > 0
            ? Promise.resolve(queue.shift())
            : new Promise((resolve) => {
                waiter = resolve;
              }),
        onMessage: (fn) => {
          listener = fn;
        },
        close: () => ws.close(),
      };
    };
  },
};

const connect = await IMPLS[impl]();
const cpuSeconds = (cpu) => (cpu.user + cpu.system) / 1e6;

/** The next text message (binary ones skipped). */
async function nextText(conn) {
  for (;;) {
    const m = await conn.next();
    if (typeof m === "string") return m;
  }
}

/** Sends a control text and returns the first text message that comes back. */
async function control(conn, text) {
  await conn.send(text);
  return nextText(conn);
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function echo(conns) {
  const all = [];
  for (let i = 0; i < conns; i++) all.push(await connect());
  const t0 = performance.now();
  const warmEnd = t0 + WARMUP * 1000;
  const end = warmEnd + SECONDS * 1000;
  const samples = conns === 1 ? new Float64Array(4_000_000) : undefined;
  let n = 0;
  let count = 0;
  let cpu0;
  let cpu;
  const loop = async (conn, lead) => {
    let counting = false;
    for (;;) {
      const t = performance.now();
      if (t >= end) break;
      if (!counting && t >= warmEnd) {
        counting = true;
        if (lead) {
          await control(conn, "start");
          cpu0 = process.cpuUsage();
          continue;
        }
      }
      await conn.send(MSG);
      const reply = await conn.next();
      if (reply.length !== MSG.length) throw new Error(`echo: got ${reply.length} bytes`);
      if (counting) {
        count++;
        if (samples !== undefined && n < samples.length) samples[n++] = performance.now() - t;
      }
    }
    if (lead) cpu = process.cpuUsage(cpu0);
  };
  await Promise.all(all.map((conn, i) => loop(conn, i === 0)));
  const server = JSON.parse(await control(all[0], "stop"));
  const out = {
    rate: count / SECONDS,
    cpuRate: count / (cpuSeconds(cpu) + server.cpuSeconds),
    count,
    clientUs: (cpuSeconds(cpu) * 1e6) / count,
    serverUs: (server.cpuSeconds * 1e6) / count,
  };
  if (samples !== undefined) {
    const sorted = samples.subarray(0, n).sort();
    out.p50 = percentile(sorted, 50) * 1000;
    out.p99 = percentile(sorted, 99) * 1000;
  }
  return out;
}

async function send(size) {
  const conn = await connect();
  const payload = Buffer.alloc(size, "s");
  const t0 = performance.now();
  const warmEnd = t0 + WARMUP * 1000;
  const end = warmEnd + SECONDS * 1000;
  let counting = false;
  let cpu0;
  for (;;) {
    const t = performance.now();
    if (t >= end) break;
    if (!counting && t >= warmEnd) {
      counting = true;
      await control(conn, "start");
      cpu0 = process.cpuUsage();
    }
    await conn.send(payload);
  }
  const cpu = process.cpuUsage(cpu0);
  // In the same stream: the server answers after it has read everything sent before "stop".
  const server = JSON.parse(await control(conn, "stop"));
  const mb = server.bytes / 1e6;
  return {
    rate: mb / server.seconds,
    cpuRate: mb / (cpuSeconds(cpu) + server.cpuSeconds),
    bytes: server.bytes,
  };
}

async function push() {
  const conn = await connect();
  const t0 = performance.now();
  const warmEnd = t0 + WARMUP * 1000;
  const end = warmEnd + SECONDS * 1000;
  let count = 0;
  let counting = false;
  let cpu0;
  let cpu;
  // Counts binary messages; returns true once the window is over.
  const onPushed = () => {
    const t = performance.now();
    if (t >= end) {
      cpu = process.cpuUsage(cpu0);
      return true;
    }
    if (t >= warmEnd) {
      if (!counting) {
        counting = true;
        cpu0 = process.cpuUsage();
        Promise.resolve(conn.send("start")).catch(() => {});
      }
      count++;
    }
    return false;
  };
  if (impl === "hyperwire") {
    for await (const m of conn.messages()) {
      if (typeof m !== "string" && onPushed()) break;
    }
  } else {
    await new Promise((resolve) => {
      conn.onMessage((m) => {
        if (typeof m !== "string" && onPushed()) {
          conn.onMessage(undefined);
          resolve();
        }
      });
    });
  }
  // The answer to "stop" comes after the pushed messages still in flight; skip "ok" too.
  await conn.send("stop");
  let answer;
  do answer = await nextText(conn);
  while (answer === "ok");
  const server = JSON.parse(answer);
  return { rate: count / SECONDS, cpuRate: count / (cpuSeconds(cpu) + server.cpuSeconds), count };
}

async function idle() {
  const total = Number(process.env.IDLE_CONNS ?? 2500);
  const batch = Number(process.env.IDLE_BATCH ?? 100);
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      globalThis.gc?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    return process.memoryUsage();
  };
  const before = await settle();
  const held = [];
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next++;
      held.push(await connect());
    }
  };
  await Promise.all(Array.from({ length: Math.min(batch, total) }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const after = await settle();
  process.stdout.write(
    `${JSON.stringify({
      rssBefore: before.rss,
      rssAfter: after.rss,
      heapBefore: before.heapUsed,
      heapAfter: after.heapUsed,
      conns: held.length,
      seconds,
    })}\n`,
  );
  // Held until the parent kills this process.
  setInterval(() => held.length, 1 << 30);
  return undefined;
}

let result;
try {
  if (scenario === "echo1") result = await echo(1);
  else if (scenario === "echo8") result = await echo(8);
  else if (scenario === "push") result = await push();
  else if (scenario === "idle") result = await idle();
  else result = await send(SIZES[scenario]);
} catch (err) {
  console.error(err);
  process.exit(1);
}
if (result !== undefined) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // Open connections must not keep a measurement process around.
  process.exit(0);
}
