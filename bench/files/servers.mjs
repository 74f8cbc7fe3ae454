// `node servers.mjs <hyperwire|node> <root>`: starts one file server on a free loopback port and prints
// the port. hyperwire serves `root` with `fileServer` (realpath + stat + checks per request, the
// file streamed through a FileHandle); node is the minimal correct raw server: `fs.stat` for the
// Content-Length, then `fs.createReadStream(file).pipe(res)`.
import fs from "node:fs";
import http from "node:http";
import path from "node:path";

/** The same listen backlog for both servers (see bench/server-h1/servers.mjs for why it is large). */
const BACKLOG = 4096;

const [kind, root] = process.argv.slice(2);

async function startHyperwire() {
  const { fileServer, serve } = await import("@hyperwire/server");
  const server = await serve(fileServer(root), { host: "127.0.0.1", port: 0, backlog: BACKLOG });
  return server.port;
}

function startNode() {
  const server = http.createServer((req, res) => {
    // The benchmark only asks for plain file names; anything else is refused, not resolved.
    const name = req.url.slice(1);
    if (!/^[\w.-]+$/.test(name) || name.startsWith(".")) {
      res.writeHead(400, { "Content-Length": 0 });
      res.end();
      return;
    }
    const file = path.join(root, name);
    fs.stat(file, (err, st) => {
      if (err || !st.isFile()) {
        res.writeHead(404, { "Content-Length": 0 });
        res.end();
        return;
      }
      res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": st.size });
      fs.createReadStream(file).pipe(res);
    });
  });
  server.keepAliveTimeout = 0;
  return new Promise((resolve) =>
    server.listen({ port: 0, host: "127.0.0.1", backlog: BACKLOG }, () => resolve(server.address().port)),
  );
}

const start = { hyperwire: startHyperwire, node: startNode }[kind];
if (!start || !root) {
  console.error("usage: node servers.mjs <hyperwire|node> <root directory>");
  process.exit(2);
}
console.log(await start());
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
