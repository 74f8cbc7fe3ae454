// One measurement in its own process: `node load.mjs <client> <origin> <cell> [seconds] [warmup]`.
// Runs CONCURRENCY (default 50) async loops, each sending one request at a time and reading the
// whole response body, for `warmup` seconds uncounted then `seconds` counted, and prints
// {"rps", "cpuRps", "count", "seconds"} on stdout: requests per wall-clock second and per second of
// this process's CPU time (user + system), the latter less skewed by other load on the machine. Only one client is ever loaded per process.
// Clients: hyperwire, undici, node:http, fetch. Cells: tiny (GET 11 B), large (GET 100 KB),
// post (POST 1 KB to /echo-size).
import { measureLoad } from "../lib.mjs";

const [clientName, origin, cellName, secondsArg = "3", warmupArg = "1"] = process.argv.slice(2);
const SECONDS = Number(secondsArg);
const WARMUP = Number(warmupArg);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 50);

const PAYLOAD = Buffer.alloc(1024, "p");
const CELLS = {
  tiny: { method: "GET", path: "/tiny", body: undefined, expect: 11 },
  large: { method: "GET", path: "/large", body: undefined, expect: 100 * 1024 },
  post: { method: "POST", path: "/echo-size", body: PAYLOAD, expect: String(PAYLOAD.length).length },
};
const cell = CELLS[cellName];
if (cell === undefined || origin === undefined) {
  console.error(`usage: node load.mjs <hyperwire|undici|node:http|fetch> <origin> <${Object.keys(CELLS)}>`);
  process.exit(2);
}
const url = `${origin}${cell.path}`;

/**
 * Each factory returns { one: () => Promise of a result, sizeOf?: (result) => body bytes read (default:
 * the result is the size), close }.
 */
const CLIENTS = {
  async hyperwire() {
    const { Client } = await import("@hyperwire/client");
    const client = new Client();
    const options = cell.body === undefined ? undefined : { body: cell.body };
    return {
      // The response itself, as a caller awaits it (a `.then` here would add a promise per request
      // that the other contenders do not pay); its body size is checked by sizeOf.
      one: () => client.request(cell.method, url, options),
      sizeOf: (res) => res.body.length,
      close: () => client.close(),
    };
  },

  async undici() {
    const { Pool } = await import("undici");
    const pool = new Pool(origin, { connections: CONCURRENCY });
    const options = { method: cell.method, path: cell.path, body: cell.body };
    return {
      one: async () => {
        const { statusCode, body } = await pool.request(options);
        const bytes = await body.arrayBuffer();
        if (statusCode !== 200) throw new Error(`status ${statusCode}`);
        return bytes.byteLength;
      },
      close: () => pool.close(),
    };
  },

  async "node:http"() {
    const http = await import("node:http");
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const { hostname, port } = new URL(origin);
    const options = {
      agent,
      host: hostname,
      port,
      method: cell.method,
      path: cell.path,
      headers: cell.body === undefined ? {} : { "content-length": cell.body.length },
    };
    const one = () =>
      new Promise((resolve, reject) => {
        const req = http.request(options, (res) => {
          const chunks = [];
          let size = 0;
          res.on("data", (chunk) => {
            chunks.push(chunk);
            size += chunk.length;
          });
          res.on("end", () => {
            if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
            else resolve((chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)).length);
          });
          res.on("error", reject);
        });
        req.on("error", reject);
        req.end(cell.body);
      });
    return { one, close: () => agent.destroy() };
  },

  async fetch() {
    const init = cell.body === undefined ? { method: cell.method } : { method: cell.method, body: cell.body };
    return {
      one: async () => {
        const res = await fetch(url, init);
        const bytes = await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        return bytes.byteLength;
      },
      close: () => {},
    };
  },
};

const factory = CLIENTS[clientName];
if (factory === undefined) {
  console.error(`load.mjs: unknown client ${clientName} (${Object.keys(CLIENTS).join(", ")})`);
  process.exit(2);
}
const { one, sizeOf, close } = await factory();

await measureLoad({
  one,
  sizeOf,
  expect: cell.expect,
  seconds: SECONDS,
  warmup: WARMUP,
  concurrency: CONCURRENCY,
  label: clientName,
});
await close();
// Keep-alive sockets and timers must not keep a measurement process around.
process.exit(0);
