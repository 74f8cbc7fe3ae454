// `node servers.mjs <hyperwire|node|fastify>`: starts one benchmark server on a free loopback port
// and prints the port. Routes: /tiny (11 bytes), /json (~1 KB object serialised per request),
// /large (100 KB).
import http from "node:http";

/**
 * Every server gets the same listen backlog, large enough that the 512 connections wrk opens at once
 * never overflow the accept queue. With the defaults (Node and fastify 511, hyperwire 128, HTTP.jl's),
 * a burst that lands while the server is still busy with the previous run's connections overflows it
 * now and then, and the dropped handshakes come back after 1–3 s of SYN retransmission: a latency
 * tail that measures the kernel, not the server.
 */
const BACKLOG = 4096;

const kind = process.argv[2];
const TINY = Buffer.from("hello world");
const LARGE = Buffer.alloc(100 * 1024, "x");
const ITEMS = Array.from({ length: 15 }, (_, i) => ({
  id: i,
  name: `item-${i}`,
  tags: ["a", "b"],
  price: i * 1.25,
  ok: true,
}));
const doc = () => ({ now: 1764050700000, items: ITEMS, note: "hyperwire benchmark payload" });

async function startHyperwire() {
  const { serve } = await import("@hyperwire/server");
  // As the README's server example has it. From the umbrella (@hyperwire/http) it is the same class,
  // but the umbrella loads the client as well; see bench/README.md (server-h1, session 9).
  const { Response } = await import("@hyperwire/core");
  const server = await serve(
    (req) => {
      switch (req.target) {
        case "/tiny":
          return new Response(200, { headers: { "Content-Type": "text/plain" }, body: TINY });
        case "/json":
          return new Response(200, {
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(doc()),
          });
        case "/large":
          return new Response(200, { headers: { "Content-Type": "application/octet-stream" }, body: LARGE });
        default:
          return new Response(404);
      }
    },
    { host: "127.0.0.1", port: 0, backlog: BACKLOG },
  );
  return server.port;
}

function startNode() {
  const server = http.createServer((req, res) => {
    switch (req.url) {
      case "/tiny":
        res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": TINY.length });
        res.end(TINY);
        return;
      case "/json": {
        const body = JSON.stringify(doc());
        res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      case "/large":
        res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": LARGE.length });
        res.end(LARGE);
        return;
      default:
        res.writeHead(404, { "Content-Length": 0 });
        res.end();
    }
  });
  // The same idle policy as hyperwire's default (keep-alive connections stay open).
  server.keepAliveTimeout = 0;
  return new Promise((resolve) =>
    server.listen({ port: 0, host: "127.0.0.1", backlog: BACKLOG }, () => resolve(server.address().port)),
  );
}

async function startFastify() {
  const { default: Fastify } = await import("fastify");
  const app = Fastify({ logger: false });
  app.get("/tiny", (_req, reply) => reply.type("text/plain").send(TINY));
  app.get("/json", (_req, reply) => reply.send(doc()));
  app.get("/large", (_req, reply) => reply.type("application/octet-stream").send(LARGE));
  await app.listen({ host: "127.0.0.1", port: 0, backlog: BACKLOG });
  return app.server.address().port;
}

const start = { hyperwire: startHyperwire, node: startNode, fastify: startFastify }[kind];
if (!start) {
  console.error(`unknown server kind ${kind}; use hyperwire, node or fastify`);
  process.exit(2);
}
console.log(await start());
// Exit cleanly on a signal so `node --cpu-prof servers.mjs …` writes its profile.
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
