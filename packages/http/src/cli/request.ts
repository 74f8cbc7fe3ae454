// `hyperwire get|head|post|... URL`: one request, the body to stdout (or a file), curl's exit codes.
import { createReadStream, createWriteStream, statSync } from "node:fs";
import type { Readable } from "node:stream";
import { Writable } from "node:stream";
import { finished } from "node:stream/promises";
import type { WriteStream } from "node:tty";
import { parseArgs } from "node:util";
import { type ClientEvent, type RequestOptions, request } from "@hyperwire/client";
import { parseCount, parseHeaderLines, tlsOptions } from "./common.js";
import { exitCodeOfStatus, UsageError } from "./exit.js";
import { ProgressBar } from "./progress.js";

/** The methods the command takes as its first word. */
export const METHODS: ReadonlySet<string> = new Set([
  "get",
  "head",
  "post",
  "put",
  "patch",
  "delete",
  "options",
  "query",
]);

export const REQUEST_HELP = `usage: hyperwire <method> URL [options]
       hyperwire URL [options]            (GET)

methods: get head post put patch delete options query

  -H, --header 'Name: value'  add a request header (repeatable)
  -d, --data BODY             send BODY; @FILE sends a file, @- sends stdin
      --json                  send -d as JSON (checked) and ask for JSON; pretty-print a JSON reply
  -i, --include               print the status line and headers before the body
  -o, --output FILE           write the body to FILE instead of stdout
  -v, --verbose               print each request and response event on stderr (-vv: with heads)
      --http1                 use HTTP/1.1 only
      --http2                 require HTTP/2 (h2 by ALPN on https:, prior knowledge on http:)
      --proxy URL             send through this proxy (http://, https://, socks5://, socks5h://)
      --timeout MS            give up after MS milliseconds in all
  -k, --insecure              do not verify the server's TLS certificate
      --cacert FILE           trust the CA certificates in FILE
  -h, --help                  this text

A progress bar is drawn on stderr when it is a terminal and the body goes to a file or a pipe.
Exit status: 0 for a status below 400, 4 for 4xx, 5 for 5xx, 2 for a bad command line,
6 DNS failure, 7 connection failure, 28 timeout, 35 TLS failure, 1 anything else.`;

/** What a request command writes to; the tests give their own. */
export interface CommandIO {
  stdin: Readable;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** Runs one request command; resolves to the exit code. */
export async function runRequest(method: string, argv: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      header: { type: "string", short: "H", multiple: true },
      data: { type: "string", short: "d" },
      json: { type: "boolean" },
      include: { type: "boolean", short: "i" },
      output: { type: "string", short: "o" },
      verbose: { type: "boolean", short: "v", multiple: true },
      http1: { type: "boolean" },
      http2: { type: "boolean" },
      proxy: { type: "string" },
      timeout: { type: "string" },
      insecure: { type: "boolean", short: "k" },
      cacert: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.stdout.write(`${REQUEST_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("give exactly one URL");
  if (values.http1 && values.http2) throw new UsageError("--http1 and --http2 exclude each other");
  const url = positionals[0]!;
  const headers = parseHeaderLines(values.header);
  const has = (name: string): boolean => headers.some(([k]) => k.toLowerCase() === name);
  const options: RequestOptions = { headers, statusException: false };
  const verbosity = values.verbose?.length ?? 0;
  if (verbosity > 0) options.verbose = verbosity >= 2 ? 2 : 1;
  if (values.http1) options.protocol = "h1";
  if (values.http2) options.protocol = "h2";
  if (values.proxy !== undefined) options.proxy = values.proxy;
  const timeout = parseCount("timeout", values.timeout);
  if (timeout !== undefined) options.requestTimeout = timeout;
  const tls = tlsOptions(values.insecure, values.cacert);
  if (tls !== undefined) options.tls = tls;

  if (values.json && !has("accept")) headers.push(["Accept", "application/json"]);
  if (values.data !== undefined) {
    const data = values.data;
    if (data === "@-") options.body = io.stdin;
    else if (data.startsWith("@")) {
      const path = data.slice(1);
      let size: number;
      try {
        size = statSync(path).size;
      } catch (err) {
        throw new UsageError(`-d ${data}: cannot read ${path}: ${(err as Error).message}`);
      }
      options.body = createReadStream(path);
      if (!has("content-length")) headers.push(["Content-Length", String(size)]);
    } else {
      if (values.json) {
        try {
          JSON.parse(data);
        } catch {
          throw new UsageError("--json: the -d body is not valid JSON");
        }
      }
      options.body = data;
    }
    if (values.json && !has("content-type")) headers.push(["Content-Type", "application/json"]);
  }

  const toFile = values.output !== undefined;
  const sink = toFile ? createWriteStream(values.output!) : io.stdout;
  const showProgress = io.stderr.isTTY === true && (toFile || io.stdout.isTTY !== true) && !values.json;
  const bar = showProgress ? new ProgressBar(io.stderr as WriteStream) : undefined;
  if (bar !== undefined || values.include) {
    // The head is printed (and the bar sized) as it arrives, before the body streams out.
    options.trace = (event: ClientEvent) => {
      if (event.type !== "responseHead") return;
      const response = event.response;
      if (values.include) {
        let head = `HTTP/${response.version} ${response.status} ${response.reason}\n`;
        for (const [k, v] of response.headers) head += `${k}: ${v}\n`;
        io.stdout.write(`${head}\n`);
      }
      if (bar !== undefined) {
        const length = response.headers.get("content-length");
        bar.total = length === null ? undefined : Number(length);
      }
    };
  }
  // --json buffers the reply so it can be pretty-printed; everything else streams it out.
  const counting = values.json ? undefined : countingWriter(sink, bar);
  if (counting !== undefined) options.responseStream = counting;

  const response = await request(method.toUpperCase(), url, options);
  bar?.finish();
  if (values.json) {
    sink.write(prettyJson(response.body));
  }
  if (toFile) {
    (sink as NodeJS.WritableStream & { end(): void }).end();
    await finished(sink as NodeJS.WritableStream);
  }
  return exitCodeOfStatus(response.status);
}

/** The body as pretty JSON when it parses, else as it came. */
function prettyJson(body: Uint8Array): Uint8Array | string {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
  try {
    return `${JSON.stringify(JSON.parse(text), null, 2)}\n`;
  } catch {
    return body;
  }
}

/** A Writable that passes chunks on to `out` (with its back-pressure) and counts them for the bar. */
function countingWriter(out: NodeJS.WritableStream, bar: ProgressBar | undefined): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      bar?.add(chunk.length);
      if (out.write(chunk)) callback();
      else out.once("drain", () => callback());
    },
  });
}
