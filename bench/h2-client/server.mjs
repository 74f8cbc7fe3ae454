// The one server every h2-client contender talks to: raw node:http2 on the core `stream` API, in its
// own process. `node server.mjs h2c|tls`; prints its port on stdout. GET /tiny answers 11 bytes;
// GET /sessions answers the number of sessions accepted so far (to check that a client multiplexes).
import http2 from "node:http2";
import { tls } from "../../fixtures/tls/index.mjs";

const TINY = Buffer.from("hello world");
const mode = process.argv[2] ?? "h2c";
const server =
  mode === "tls" ? http2.createSecureServer({ key: tls.key, cert: tls.cert }) : http2.createServer();
let sessions = 0;
server.on("session", () => {
  sessions++;
});
server.on("stream", (stream, headers) => {
  stream.on("error", () => {});
  const body = headers[":path"] === "/sessions" ? Buffer.from(String(sessions)) : TINY;
  stream.respond({ ":status": 200, "content-type": "text/plain", "content-length": body.length });
  stream.end(body);
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
