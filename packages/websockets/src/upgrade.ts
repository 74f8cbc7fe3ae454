// WebSockets on an ordinary hyperwire server: `upgrade(req, handler)` inside a `serve` handler takes
// the connection over (a server mixing HTTP and WebSocket routes on one port). Over HTTP/2 it takes
// the stream of an extended CONNECT (RFC 8441) instead; the session and its other streams go on.
import type { IncomingMessage } from "node:http";
import http2, { type OutgoingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { TLSSocket } from "node:tls";
import { type Request, Response } from "@hyperwire/core";
import { connectProtocol, takeConnect, takeUpgrade } from "@hyperwire/server";
import type { WebSocketServer as WsServer } from "ws";
import {
  DEFLATE,
  type Deflate,
  formatDeflate,
  newDeflate,
  parseExtensions,
  wsOnStream,
} from "./h2-stream.js";
import {
  type AcceptOptions,
  LISTEN_DEFAULTS,
  refusal,
  refuse,
  runSession,
  type SessionHandler,
  wsServerFor,
} from "./listen.js";
import { fragmentLimit, WebSocket } from "./websocket.js";

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

const servers = new WeakMap<AcceptOptions, WsServer>();
const DEFAULT_OPTIONS: AcceptOptions = Object.freeze({});

/**
 * Upgrades a request to a WebSocket session run by `handler`, and returns the `Response` your
 * handler must return. A request that is not a WebSocket upgrade gets a 426 response to return
 * instead; a refused handshake (400, or 403 for a foreign Origin) is answered on the connection.
 * Over HTTP/2 the request is an extended CONNECT (RFC 8441, `:protocol: websocket`): the answer is a
 * 200 on its stream, and the WebSocket runs on that stream.
 *
 * ```ts
 * await serve((req) => {
 *   if (req.target === "/ws") return upgrade(req, async (ws) => { for await (const m of ws) await ws.send(m); });
 *   return new Response(200, { body: "hello" });
 * }, { port: 0 });
 * ```
 */
export function upgrade(
  req: Request,
  handler: SessionHandler,
  options: AcceptOptions = DEFAULT_OPTIONS,
): Response {
  if (req.method === "CONNECT" && connectProtocol(req) !== null) return upgradeStream(req, handler, options);
  let session: WebSocket | undefined;
  const taken = takeUpgrade(req, {
    // The HTTP server shuts down: a graceful close says 1001 to the session, a forced one drops it.
    onClose: (force) => {
      if (session === undefined) taken?.socket.destroy();
      else if (force) session.terminate();
      else session.close(1001, "server shutting down").catch(() => {});
    },
  });
  if (taken === null) {
    return new Response(426, {
      headers: { Upgrade: "websocket", Connection: "Upgrade", "Content-Type": "text/plain" },
      body: "websocket upgrade required\n",
    });
  }
  const { incoming, socket, head } = taken;
  const secure = (socket as TLSSocket).encrypted === true;
  let refused: [number, string] | null;
  try {
    refused = refusal(incoming, secure, options.checkOrigin);
  } catch {
    refused = [500, "origin check failed"];
  }
  if (refused !== null) {
    refuse(socket, refused[0], refused[1]);
  } else {
    let wss = servers.get(options);
    if (wss === undefined) {
      wss = wsServerFor(options);
      servers.set(options, wss);
    }
    wss.handleUpgrade(incoming, socket, head, (raw) => {
      session = new WebSocket(raw, incoming.url ?? "/", options);
      void runSession(session, handler);
    });
  }
  return new Response(101);
}

/** `upgrade` for an HTTP/2 extended CONNECT: the checks, the 200 and the session, on the stream. */
function upgradeStream(req: Request, handler: SessionHandler, options: AcceptOptions): Response {
  let session: WebSocket | undefined;
  const taken = takeConnect(req, {
    // The server shuts down: a graceful close says 1001 to the session, a forced one drops it.
    onClose: (force) => {
      if (session === undefined) taken?.stream.close(NGHTTP2_CANCEL);
      else if (force) session.terminate();
      else session.close(1001, "server shutting down").catch(() => {});
    },
  });
  if (taken === null) return new Response(400, { body: "websocket upgrade required\n" });
  const { stream, headers, secure } = taken;
  // OriginCheck is typed with node:http's IncomingMessage: over HTTP/2 it gets the same fields
  // (method, url, headers with Host from :authority, socket, httpVersion "2.0").
  const incoming = {
    method: "CONNECT",
    url: req.target,
    httpVersion: "2.0",
    headers: headers.host === undefined ? { ...headers, host: headers[":authority"] } : headers,
    socket: stream.session?.socket,
  } as unknown as IncomingMessage;
  let refused: [number, string] | null;
  try {
    refused = refusal(incoming, secure, options.checkOrigin);
  } catch {
    refused = [500, "origin check failed"];
  }
  const offered = refused === null ? parseTokens(headers["sec-websocket-protocol"]) : null;
  if (refused === null && offered === null) refused = [400, "invalid Sec-WebSocket-Protocol header"];
  const maxPayload = options.maxFrameSize ?? LISTEN_DEFAULTS.maxFrameSize;
  let deflate: Deflate | undefined;
  const ext = headers["sec-websocket-extensions"];
  if (refused === null && options.compress === true && typeof ext === "string") {
    try {
      const offers = parseExtensions(ext);
      const offer = offers[DEFLATE];
      if (offer !== undefined) {
        deflate = newDeflate(true, maxPayload);
        deflate.accept(offer);
      }
    } catch {
      refused = [400, "invalid or unacceptable Sec-WebSocket-Extensions header"];
    }
  }
  if (refused !== null) {
    refuseStream(stream, refused[0], refused[1]);
    return new Response(refused[0]);
  }
  let chosen: string | null = null;
  for (const p of options.subprotocols ?? []) {
    if (offered!.includes(p)) {
      chosen = p;
      break;
    }
  }
  const head: OutgoingHttpHeaders = { ":status": 200 };
  if (chosen !== null) head["sec-websocket-protocol"] = chosen;
  if (deflate !== undefined) head["sec-websocket-extensions"] = formatDeflate(deflate.params!);
  try {
    stream.respond(head);
  } catch {
    // The peer reset the stream while the handler ran.
    stream.close(NGHTTP2_CANCEL);
    return new Response(200);
  }
  session = new WebSocket(
    wsOnStream(stream, "server", maxPayload, fragmentLimit(options.maxFragmentation), deflate),
    req.target,
    options,
    chosen,
  );
  void runSession(session, handler);
  return new Response(200);
}

/** The comma-separated tokens of a Sec-WebSocket-Protocol value; `null` when one is not a token. */
function parseTokens(value: string | string[] | undefined): string[] | null {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const part of (typeof value === "string" ? value : value.join(",")).split(",")) {
    const token = part.trim();
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(token)) return null;
    out.push(token);
  }
  return out;
}

/** A refusal on a taken stream: the status and a short text, then the end of the request side too. */
function refuseStream(stream: ServerHttp2Stream, status: number, text: string): void {
  const body = `${text}\n`;
  try {
    stream.respond({
      ":status": status,
      "content-type": "text/plain",
      "content-length": Buffer.byteLength(body),
    });
    stream.end(body);
    // A CONNECT's request side stays open: RST_STREAM(NO_ERROR) once the answer is out stops it.
    stream.close(NGHTTP2_NO_ERROR);
  } catch {
    stream.close(NGHTTP2_CANCEL);
  }
}
