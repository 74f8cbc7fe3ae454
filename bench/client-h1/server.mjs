// The one server every client-h1 contender talks to: raw node:http, in its own process so that it
// does not share an event loop with the client being measured. Prints its port on stdout.
// Routes: GET /tiny (11 bytes), GET /large (100 KB, preallocated), POST /echo-size (reads the body,
// answers its length), GET /conns (connections accepted so far, to see whether a client churns).
import http from "node:http";

const TINY = Buffer.from("hello world");
const LARGE = Buffer.alloc(100 * 1024, "x");
let connections = 0;

function reply(res, body) {
  res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
  res.end(body);
}

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  switch (req.url) {
    case "/tiny":
      return reply(res, TINY);
    case "/large":
      return reply(res, LARGE);
    case "/echo-size": {
      let size = 0;
      req.on("data", (chunk) => {
        size += chunk.length;
      });
      req.on("end", () => reply(res, Buffer.from(String(size))));
      return;
    }
    case "/conns":
      return reply(res, Buffer.from(String(connections)));
    default:
      res.writeHead(404, { "content-length": 0 });
      res.end();
  }
});
server.on("connection", () => {
  connections++;
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
