// A small HTTP/1.1 server with two routes and a plain request handler.
//   node examples/dist/server.js          serves on http://127.0.0.1:8080 (or the next free port)
//   node examples/dist/server.js --once   stops after answering one request
import { pathToFileURL } from "node:url";
import { type Request, Response } from "@hyperwire/http";
import { type Server, serve } from "@hyperwire/server";

/** Options of {@link main}. */
export interface ServerExampleOptions {
  /** Port to listen on; the next free one is taken when it is busy. Default 8080. */
  port?: number;
  /** Stop (gracefully) after the first request. Default false. */
  once?: boolean;
}

function route(req: Request): Response {
  const path = req.target.split("?")[0];
  if (req.method === "GET" && path === "/hello") {
    return new Response(200, {
      headers: { "Content-Type": "text/plain; charset=utf-8" },
      body: "hello, world\n",
    });
  }
  if (req.method === "POST" && path === "/echo") {
    return new Response(200, {
      headers: { "Content-Type": req.headers.get("content-type") ?? "application/octet-stream" },
      body: req.body,
    });
  }
  return new Response(404, { headers: { "Content-Type": "text/plain" }, body: "not found\n" });
}

/** Starts the example server and prints its URL; with `once`, it closes after one request. */
export async function main(options: ServerExampleOptions = {}): Promise<Server> {
  const server: Server = await serve(
    (req) => {
      // A graceful close lets this response finish (it goes out with Connection: close).
      if (options.once) void server.close();
      return route(req);
    },
    { host: "127.0.0.1", port: options.port ?? 8080, listenAny: true },
  );
  console.log(`listening on ${server.url} (try ${server.url}/hello)`);
  return server;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const server = await main({ once: process.argv.includes("--once") });
  await server.wait();
}
