// The HTTP/2 engine: node:http2 sessions on connections the Server hands over (a cleartext socket
// that opened with the HTTP/2 preface, or a TLS socket whose ALPN chose `h2`). Built on the core
// `stream` event, not on node's (req, res) compatibility layer, which costs about 40 % of the speed.
// Each stream becomes an H2Exchange, which looks enough like node:http's IncomingMessage for the
// request objects and the access log to take it as it is.
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { Socket } from "node:net";
import type { Headers } from "@hyperwire/core";
import { ServerSession } from "@hyperwire/h2";
import { httpDate } from "./http-date.js";
import type { ResolvedServerOptions } from "./options.js";
import { cancelRequest, finishRequest, type ServerRequest } from "./request.js";

const { NGHTTP2_NO_ERROR, NGHTTP2_PROTOCOL_ERROR, NGHTTP2_INTERNAL_ERROR, NGHTTP2_CANCEL } = http2.constants;

/**
 * A response that has ended with at most this many bytes still queued on its stream is counted off
 * its session at once (see {@link H2Exchange.finish}): one default flow-control window, which the
 * peer takes without having to send WINDOW_UPDATE first.
 */
const SMALL_REST = 65_535;

/**
 * One session's view of its streams: a stream is counted off (for the idle timer, graceful close
 * and `activeRequests`) when its response ends with little left to send, else when it closes.
 * Streams that must wait for their close have it reported to one listener per session, and those
 * whose response still runs are in `open` with their exchange: a peer reset cancels the request.
 * Most responses (a handler that answers at once, a small body) end inside the stream's event and
 * never need the listener. The listener and the map are there only for the others: adding a 'close'
 * listener to a node:http2 stream costs about 3 % of a small response's instructions, and a
 * property on node's stream object would give every stream a second hidden class halfway through
 * its life, which node's stream code, optimised for the first, then handles polymorphically.
 */
class H2Streams {
  readonly session: ServerSession;
  readonly open = new Map<ServerHttp2Stream, H2Exchange>();
  readonly onClose: (this: ServerHttp2Stream) => void;

  constructor(session: ServerSession) {
    this.session = session;
    const open = this.open;
    this.onClose = function (this: ServerHttp2Stream): void {
      const ex = open.get(this);
      if (ex !== undefined) open.delete(this);
      streamClosed(session, ex);
    };
  }
}

/** What runs a request stream once the engine accepted it. */
export type H2Runner = (exchange: H2Exchange) => void;

/**
 * One HTTP/2 request stream: the request head as node:http2 gave it, the response state the runners
 * share, and the fields `makeRequest` and `logAccess` read (so they take it like an IncomingMessage).
 */
export class H2Exchange {
  readonly stream: ServerHttp2Stream;
  /** node:http2's header object (lower-case names, pseudo-headers included). */
  readonly headers: IncomingHttpHeaders;
  readonly method: string;
  /** The request target: `:path`, or `:authority` for a plain CONNECT (one without `:protocol`). */
  readonly url: string;
  readonly #raw: string[];
  #flat: string[] | undefined;
  readonly #streams: H2Streams;
  /** LISTENING: the session's close listener reports this stream; COUNTED: counted off already. */
  #state = 0;
  /** The request made for this stream (set by the runner). */
  request: ServerRequest | undefined;
  /** When the stream arrived (`performance.now()`), for the access log; `0` without one. */
  t0 = 0;
  /** True once our response ended (so a reset from now on is not the peer abandoning it). */
  ended = false;
  /** True when we reset the stream ourselves. */
  resetByUs = false;
  /** The `:protocol` of an extended CONNECT (RFC 8441), else `undefined`. */
  protocol: string | undefined = undefined;
  /** True once `takeConnect` gave the stream to a tunnel (a WebSocket): the runner writes nothing. */
  taken = false;
  /** The engine, set for extended CONNECT streams only (a taken stream is closed on its shutdown). */
  engine: Http2Engine | undefined = undefined;

  constructor(
    stream: ServerHttp2Stream,
    streams: H2Streams,
    headers: IncomingHttpHeaders,
    method: string,
    url: string,
    raw: string[],
  ) {
    this.stream = stream;
    this.headers = headers;
    this.method = method;
    this.url = url;
    this.#raw = raw;
    this.#flat = undefined;
    this.#streams = streams;
  }

  /** The session the stream belongs to. */
  get session(): ServerSession {
    return this.#streams.session;
  }

  /** HTTP/2 as the access log writes it. */
  get httpVersion(): string {
    return "2.0";
  }

  /** The connection's socket (for the peer's address). */
  get socket(): Socket {
    return this.session.socket;
  }

  /**
   * The request's header fields as HTTP/1.1 would have them, made on first use: no pseudo-headers,
   * `Host` from `:authority` when the request has none, and Cookie fields joined with `"; "`
   * (RFC 9113 §8.2.3 lets clients split them).
   */
  get rawHeaders(): string[] {
    if (this.#flat === undefined) this.#flat = flattenRequestHeaders(this.#raw);
    return this.#flat;
  }

  /** True once the request body arrived in full (END_STREAM). */
  get complete(): boolean {
    return this.stream.readableEnded || this.stream.endAfterHeaders;
  }

  /** True once the stream is closed (either way). */
  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  /** Resets the stream (CANCEL). */
  destroy(): void {
    this.reset(NGHTTP2_CANCEL);
  }

  /**
   * Resets the stream with `code` (RST_STREAM), unless it is closed already. While the response is
   * open and nothing is queued, node's `close(code)` would first end the writable side, and the
   * END_STREAM it sends would make a cut-short response look complete (the RST then comes too late
   * to count); destroying the stream with an error sends RST_STREAM(INTERNAL_ERROR) alone.
   */
  reset(code: number): void {
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    this.resetByUs = true;
    resetOpen(stream, code);
  }

  /**
   * The response ended (complete, or reset by us). An unread rest of the request body is refused
   * with RST_STREAM(NO_ERROR) once the response is flushed, so the peer stops sending it. The
   * stream is counted off its session now when at most {@link SMALL_REST} bytes are left to send,
   * else when it closes; either way the exchange, its request and the request's header lists die
   * young instead of living as long as the stream.
   */
  finish(): void {
    this.ended = true;
    if (this.request !== undefined) finishRequest(this.request);
    const stream = this.stream;
    if (!stream.readableEnded && !stream.endAfterHeaders && !stream.closed) {
      this.resetByUs = true;
      stream.close(NGHTTP2_NO_ERROR);
    }
    // An extended CONNECT's exchange stays: its tunnel is the engine's until the stream closes.
    if (this.engine !== undefined || (this.#state & COUNTED) !== 0) return;
    const streams = this.#streams;
    if ((this.#state & LISTENING) !== 0) streams.open.delete(stream);
    else if (stream.writableLength <= SMALL_REST || stream.destroyed) {
      this.#state |= COUNTED;
      streams.session.streamClosed(false);
    } else this.#listen(false);
  }

  /**
   * After the runner's first call: a stream not counted off yet is reported by the session's close
   * listener from now on, with its exchange while the response runs.
   */
  awaitClose(): void {
    if ((this.#state & (COUNTED | LISTENING)) === 0) this.#listen(!this.ended || this.engine !== undefined);
  }

  /** The session's close listener reports this stream; `withExchange`: a peer reset finds this exchange. */
  #listen(withExchange: boolean): void {
    this.#state |= LISTENING;
    const streams = this.#streams;
    if (withExchange) streams.open.set(this.stream, this);
    this.stream.on("close", streams.onClose);
  }
}

const LISTENING = 1;
const COUNTED = 2;

/** See {@link H2Exchange.reset} (`stream` is neither closed nor destroyed). */
function resetOpen(stream: ServerHttp2Stream, code: number): void {
  if (!stream.writableEnded && stream.writableLength === 0) {
    stream.destroy(new Error(`the response was abandoned (${code})`));
  } else stream.close(code);
}

function flattenRequestHeaders(raw: string[]): string[] {
  const out: string[] = [];
  let authority: string | undefined;
  let hasHost = false;
  let cookie: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* ":" */) {
      if (name === ":authority") authority = value;
      continue;
    }
    if (name === "cookie") {
      cookie = cookie === undefined ? value : `${cookie}; ${value}`;
      continue;
    }
    if (name === "host") hasHost = true;
    out.push(name, value);
  }
  if (!hasHost && authority !== undefined) out.unshift("host", authority);
  if (cookie !== undefined) out.push("cookie", cookie);
  return out;
}

/** Response header fields node:http2 refuses (RFC 9113 §8.2.2): dropped from what a handler set. */
function isConnectionSpecific(name: string): boolean {
  switch (name.length) {
    case 7:
      return name === "upgrade";
    case 10:
      return name === "connection" || name === "keep-alive";
    case 16:
      return name === "proxy-connection";
    case 17:
      return name === "transfer-encoding";
    default:
      return false;
  }
}

/**
 * The HTTP/2 header object for a response: `:status`, lower-case names, several values as an
 * array, connection-specific fields dropped, and `date` unless the handler set one. A plain object
 * literal (not a dictionary) keeps node's header serialisation on its fast path; `date` is in it so
 * that every header object takes one shape. The Date is ours because node:http2's own store of it
 * took about 5 % of a small response's CPU in this server (cause not pinned down: bench/README.md,
 * h2-server, session 11).
 */
export function responseHeaders(headers: Headers, status: number): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = { ":status": status, date: undefined };
  if (headers.size !== 0) headers.addTo(out, isConnectionSpecific);
  if (out.date === undefined) out.date = httpDate();
  return out;
}

/** The HTTP/2 header object for trailers (lower-case names, connection-specific fields dropped). */
export function trailerHeaders(trailers: Headers): http2.OutgoingHttpHeaders {
  return trailers.addTo({}, isConnectionSpecific);
}

/**
 * What node:http2 (nghttp2) lets through that a request must not have: a `:path` that is neither
 * origin-form (`/…`) nor `*` for OPTIONS. Everything else in RFC 9113 §8.3 (missing, repeated or
 * unknown pseudo-headers, upper-case names, connection-specific fields, CONNECT without
 * `:authority`, Content-Length against DATA, DATA after END_STREAM) nghttp2 already refuses.
 */
function invalidTarget(method: string, path: string | undefined): boolean {
  if (method === "CONNECT") return false;
  if (path === undefined || path === "") return true;
  if (path.charCodeAt(0) === 47 /* "/" */) return false;
  return !(path === "*" && method === "OPTIONS");
}

function ignore(): void {}

/**
 * A stream closed. `ex` is its exchange when the stream closed before its response ended (or it is
 * a tunnel); `undefined` when the response ended first (see H2Exchange.finish).
 */
function streamClosed(session: ServerSession, ex: H2Exchange | undefined): void {
  if (ex === undefined) {
    session.streamClosed(false);
    return;
  }
  const peerReset = !ex.ended && !ex.resetByUs;
  if (!ex.ended) {
    ex.ended = true;
    // The peer reset the stream (or the session ended) before the response did.
    if (ex.request !== undefined) cancelRequest(ex.request, "the peer reset the HTTP/2 stream");
  }
  session.streamClosed(peerReset);
}

/**
 * The HTTP/2 engine of a {@link Server}: runs a session on each connection it is given, turns each
 * request stream into an {@link H2Exchange} for the runner, and closes sessions on shutdown.
 */
export class Http2Engine {
  readonly sessions = new Set<ServerSession>();
  readonly #options: ResolvedServerOptions;
  readonly #run: H2Runner;
  /** Set by {@link beginClose}: new connections are refused. */
  closing = false;
  /** Streams taken over by `takeConnect` (WebSockets), each with what asks it to finish on shutdown. */
  readonly tunnels = new Map<H2Exchange, (force: boolean) => void>();

  constructor(options: ResolvedServerOptions, run: H2Runner) {
    this.#options = options;
    this.#run = run;
  }

  /** Takes a connection whose first bytes are the HTTP/2 preface (or a TLS socket that chose `h2`). */
  accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const o = this.#options;
    const session = new ServerSession(socket, {
      settings: o.http2Settings,
      maxConcurrentStreams: o.maxConcurrentStreams,
      maxHeaderListSize: 2 * o.maxHeaderBytes,
      firstStreamTimeout: o.readHeaderTimeout,
      idleTimeout: o.idleTimeout,
    });
    this.sessions.add(session);
    socket.once("close", () => {
      this.sessions.delete(session);
      if (!session.session.destroyed) session.session.destroy();
    });
    const streams = new H2Streams(session);
    session.session.on(
      "stream",
      (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) =>
        this.#onStream(streams, stream, headers, raw),
    );
  }

  #onStream(
    streams: H2Streams,
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    raw: string[],
  ): void {
    // A stream error (the peer's RST_STREAM, a session torn down) is reported by 'close'; without an
    // 'error' listener node would throw it.
    stream.on("error", ignore);
    streams.session.streamOpened();
    const method = headers[":method"] as string;
    const path = headers[":path"];
    // An extended CONNECT (RFC 8441, `:protocol` present) targets `:path`; a plain one `:authority`.
    const protocol = method === "CONNECT" ? headers[":protocol"] : undefined;
    const ex = new H2Exchange(
      stream,
      streams,
      headers,
      method,
      method === "CONNECT" && protocol === undefined ? (headers[":authority"] ?? "") : (path ?? ""),
      raw,
    );
    if (protocol !== undefined) {
      ex.protocol = protocol as string;
      ex.engine = this;
    }
    if (invalidTarget(method, path)) ex.reset(NGHTTP2_PROTOCOL_ERROR);
    else this.#run(ex);
    // Still in the stream's event: its 'close' comes on a later tick.
    ex.awaitClose();
  }

  /** Streams open on every session. */
  get activeRequests(): number {
    let n = 0;
    for (const s of this.sessions) n += s.active;
    return n;
  }

  /** Graceful shutdown: GOAWAY on every session; each closes once its open streams are done. */
  beginClose(): void {
    this.closing = true;
    // Tunnels are asked to finish (a WebSocket says 1001); their sessions close when they have.
    for (const onClose of [...this.tunnels.values()]) onClose(false);
    for (const s of this.sessions) s.close();
  }

  /** Every session, now. */
  destroyAll(): void {
    this.closing = true;
    for (const onClose of [...this.tunnels.values()]) onClose(true);
    for (const s of this.sessions) s.destroy();
  }
}

/** Resets a stream whose writes stalled past `writeTimeout` (CANCEL): the stream, not the session. */
export function resetStalled(ex: H2Exchange): void {
  ex.reset(NGHTTP2_CANCEL);
}

/**
 * {@link resetStalled} for a response that has ended: takes the stream, so that a pending
 * `writeTimeout` does not keep the exchange and its request alive while the rest drains.
 */
export function resetUnflushed(stream: ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.closed) resetOpen(stream, NGHTTP2_CANCEL);
}

/** RST_STREAM codes the runners use. */
export const RESET = Object.freeze({
  internalError: NGHTTP2_INTERNAL_ERROR,
  cancel: NGHTTP2_CANCEL,
  noError: NGHTTP2_NO_ERROR,
});
