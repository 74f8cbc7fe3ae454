// `hyperwire serve DIR`: a file server (HTTP/1.1 and HTTP/2) until interrupted.
import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import { fileServer, formatCombinedLog, type ServerOptions, serve } from "@hyperwire/server";
import { parseCount, readFileOption } from "./common.js";
import { UsageError } from "./exit.js";
import type { CommandIO } from "./request.js";

export const SERVE_HELP = `usage: hyperwire serve DIR [options]

Serves the files under DIR (index.html for directories, ranges, conditional requests) over
HTTP/1.1 and HTTP/2 until interrupted (Ctrl-C closes it gracefully).

      --port N           the port (default 8080; 0 picks a free one)
      --host ADDR        the address to bind (default 127.0.0.1; 0.0.0.0 or :: for every interface)
      --tls-cert FILE    serve HTTPS with this certificate chain (PEM) ...
      --tls-key FILE     ... and this private key (PEM)
      --access-log       print a combined-log line per request on stderr
  -h, --help             this text`;

/** Starts the file server; resolves to the exit code once a signal (or `stop`) closed it. */
export async function runServe(
  argv: readonly string[],
  io: CommandIO,
  stop: Promise<unknown> = onceInterrupted(),
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "access-log": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.stdout.write(`${SERVE_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("give exactly one directory to serve");
  const dir = positionals[0]!;
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new UsageError(`${dir} is not a directory`);
  const certFile = values["tls-cert"];
  const keyFile = values["tls-key"];
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  const options: ServerOptions = {
    host: values.host ?? "127.0.0.1",
    port: parseCount("port", values.port) ?? 8080,
  };
  if (certFile !== undefined && keyFile !== undefined) {
    options.tls = { cert: readFileOption("tls-cert", certFile), key: readFileOption("tls-key", keyFile) };
  }
  if (values["access-log"]) options.accessLog = (entry) => io.stderr.write(`${formatCombinedLog(entry)}\n`);
  const server = await serve(fileServer(dir), options);
  io.stderr.write(`serving ${dir} on ${server.url} (HTTP/1.1 and HTTP/2; Ctrl-C stops)\n`);
  await stop;
  await server.close();
  return 0;
}

/** Resolves on the first SIGINT or SIGTERM. */
function onceInterrupted(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string): void => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolve(signal);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}
