#!/usr/bin/env node
// The hyperwire command: requests (get, post, ...), a file server (serve) and a WebSocket client (ws).
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describeError, EXIT, exitCodeOf, UsageError } from "./exit.js";
import { type CommandIO, METHODS, REQUEST_HELP, runRequest } from "./request.js";
import { runServe, SERVE_HELP } from "./serve.js";
import { runWs, WS_HELP } from "./ws.js";

export const MAIN_HELP = `usage: hyperwire <command> [arguments]

commands:
  get|head|post|put|patch|delete|options|query URL   send a request, print the body
  serve DIR                                          serve files over HTTP/1.1 and HTTP/2
  ws URL                                             talk to a WebSocket server interactively
  help [command]                                     the options of a command

'hyperwire URL' is 'hyperwire get URL'. 'hyperwire <command> --help' shows a command's options.`;

const HELP: Record<string, string> = { serve: SERVE_HELP, ws: WS_HELP };

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: readonly string[], io: CommandIO): Promise<number> {
  const [first, ...rest] = argv;
  try {
    if (first === undefined || first === "-h" || first === "--help") {
      io.stdout.write(`${MAIN_HELP}\n`);
      return first === undefined ? EXIT.usage : EXIT.ok;
    }
    if (first === "help") {
      const topic = rest[0];
      io.stdout.write(`${topic === undefined ? MAIN_HELP : (HELP[topic] ?? REQUEST_HELP)}\n`);
      return EXIT.ok;
    }
    if (first === "serve") return await runServe(rest, io);
    if (first === "ws") return await runWs(rest, io);
    if (METHODS.has(first.toLowerCase())) return await runRequest(first, rest, io);
    if (/^https?:\/\//i.test(first)) return await runRequest("get", argv, io);
    throw new UsageError(`unknown command '${first}'`);
  } catch (err) {
    io.stderr.write(`${describeError(err)}\n`);
    if (err instanceof UsageError || isParseArgsError(err)) {
      io.stderr.write("run 'hyperwire --help' for usage\n");
      return EXIT.usage;
    }
    return exitCodeOf(err);
  }
}

/** node:util parseArgs' own errors (unknown option, missing value) are usage errors too. */
function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const io: CommandIO = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${describeError(err)}\n`);
      process.exitCode = EXIT.failure;
    },
  );
}
