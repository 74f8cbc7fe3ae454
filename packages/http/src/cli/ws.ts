// `hyperwire ws URL`: an interactive WebSocket client. Each line typed is sent as a text message;
// each message received is printed on its own line. End of input closes the socket with 1000.
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { WebSocketError } from "@hyperwire/core";
import { type OpenOptions, open } from "@hyperwire/websockets";
import { parseHeaderLines, tlsOptions } from "./common.js";
import { EXIT, UsageError } from "./exit.js";
import type { CommandIO } from "./request.js";

export const WS_HELP = `usage: hyperwire ws URL [options]

Opens a WebSocket (ws:, wss:, http:, https:). Lines read from stdin are sent as text messages;
messages received are printed one per line (binary ones as '<binary N bytes: hex...>').
End of input (Ctrl-D) closes the connection normally.

  -H, --header 'Name: value'  add a handshake header (repeatable)
      --subprotocol NAME      offer this subprotocol (repeatable)
      --proxy URL             connect through this proxy
  -k, --insecure              do not verify the server's TLS certificate
      --cacert FILE           trust the CA certificates in FILE
  -h, --help                  this text

Exit status: 0 after a normal close (1000, 1001 or no code), 1 for any other close code,
the request codes (6, 7, 28, 35) when the handshake fails.`;

/** How many bytes of a binary message are shown in hex. */
const HEX_PREVIEW = 32;

/** Runs the interactive client; resolves to the exit code when the socket closed. */
export async function runWs(argv: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      header: { type: "string", short: "H", multiple: true },
      subprotocol: { type: "string", multiple: true },
      proxy: { type: "string" },
      insecure: { type: "boolean", short: "k" },
      cacert: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.stdout.write(`${WS_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError("give exactly one URL");
  const options: OpenOptions = { headers: parseHeaderLines(values.header) };
  if (values.subprotocol !== undefined) options.subprotocols = values.subprotocol;
  if (values.proxy !== undefined) options.proxy = values.proxy;
  const tls = tlsOptions(values.insecure, values.cacert);
  if (tls !== undefined) options.tls = tls;

  const ws = await open(positionals[0]!, options);
  const lines = createInterface({ input: io.stdin, crlfDelay: Number.POSITIVE_INFINITY, terminal: false });
  // Lines are sent in order; input ending closes the socket normally once they are all sent.
  let sending: Promise<void> = Promise.resolve();
  lines.on("line", (line) => {
    sending = sending
      .then(() => ws.send(line))
      .then(
        () => {},
        () => {},
      );
  });
  lines.once("close", () => {
    void sending.then(() => ws.close(1000));
  });
  try {
    for await (const message of ws) {
      io.stdout.write(`${typeof message === "string" ? message : describeBinary(message)}\n`);
    }
    return EXIT.ok;
  } catch (err) {
    if (err instanceof WebSocketError) {
      io.stderr.write(
        `hyperwire: the connection closed with ${err.closeCode}${err.reason ? ` (${err.reason})` : ""}\n`,
      );
      return EXIT.failure;
    }
    throw err;
  } finally {
    lines.close();
  }
}

function describeBinary(data: Uint8Array): string {
  const hex = Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, HEX_PREVIEW)).toString(
    "hex",
  );
  return `<binary ${data.byteLength} bytes: ${hex}${data.byteLength > HEX_PREVIEW ? "..." : ""}>`;
}
