// One measurement in its own process: `node load.mjs <client> <origin> [seconds] [warmup]`. Runs
// CONCURRENCY (default 100) async loops, each sending one GET /tiny at a time over ONE HTTP/2
// connection and reading the whole body, for `warmup` s uncounted then `seconds` s counted, and
// prints {"rps", "cpuRps", "count", "seconds"}. Clients: hyperwire, raw (node:http2 session.request),
// undici (Client with allowH2).
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { tls } from "../../fixtures/tls/index.mjs";
import { measureLoad } from "../lib.mjs";

const [clientName, origin, secondsArg = "3", warmupArg = "1.5"] = process.argv.slice(2);
const SECONDS = Number(secondsArg);
const WARMUP = Number(warmupArg);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 100);
const EXPECT = 11;
const secure = origin.startsWith("https:");
const url = `${origin}/tiny`;
// What hyperwire sends besides the pseudo-headers (its User-Agent and Accept-Encoding defaults); the
// other contenders send the same.
const { version } = JSON.parse(readFileSync(new URL("../../packages/client/package.json", import.meta.url)));
const SAME_HEADERS = { "user-agent": `hyperwire/${version}`, "accept-encoding": "gzip, deflate, br" };

const CLIENTS = {
  async hyperwire() {
    const { Client, Transport } = await import("@hyperwire/client");
    const client = new Client({ transport: new Transport({ tls: { ca: tls.ca } }) });
    // TLS: auto (ALPN picks h2); cleartext: h2c with prior knowledge.
    const options = secure ? undefined : { protocol: "h2" };
    return {
      // The response itself, as a caller awaits it (a `.then` here would add a promise per request
      // that the other contenders do not pay); its body size is checked by sizeOf.
      one: () => client.get(url, options),
      sizeOf: (res) => res.body.length,
      close: () => client.close(),
    };
  },

  async raw() {
    const session = http2.connect(origin, secure ? { ca: tls.ca } : {});
    session.on("error", () => {});
    // The same request head as hyperwire's (node adds :scheme and :authority): the reference does
    // the same work on the wire, so the ratio measures the client, not two header fields.
    const headers = { ":method": "GET", ":path": "/tiny", ...SAME_HEADERS };
    const one = () =>
      new Promise((resolve, reject) => {
        const req = session.request(headers);
        const chunks = [];
        let size = 0;
        let status = 0;
        req.on("response", (h) => {
          status = h[":status"];
        });
        req.on("data", (chunk) => {
          chunks.push(chunk);
          size += chunk.length;
        });
        req.on("end", () => {
          if (status !== 200) reject(new Error(`status ${status}`));
          else resolve((chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)).length);
        });
        req.on("error", reject);
      });
    return { one, close: () => session.close() };
  },

  async undici() {
    const { Client } = await import("undici");
    const client = new Client(origin, {
      allowH2: true,
      pipelining: CONCURRENCY,
      connect: secure ? { ca: tls.ca } : undefined,
    });
    return {
      one: async () => {
        const { statusCode, body } = await client.request({
          method: "GET",
          path: "/tiny",
          headers: SAME_HEADERS,
        });
        const bytes = await body.arrayBuffer();
        if (statusCode !== 200) throw new Error(`status ${statusCode}`);
        return bytes.byteLength;
      },
      close: () => client.close(),
    };
  },
};

const factory = CLIENTS[clientName];
if (factory === undefined || origin === undefined) {
  console.error(`usage: node load.mjs <${Object.keys(CLIENTS).join("|")}> <origin> [seconds] [warmup]`);
  process.exit(2);
}
const { one, sizeOf, close } = await factory();

await measureLoad({
  one,
  sizeOf,
  expect: EXPECT,
  seconds: SECONDS,
  warmup: WARMUP,
  concurrency: CONCURRENCY,
  label: clientName,
});
await close();
process.exit(0);
