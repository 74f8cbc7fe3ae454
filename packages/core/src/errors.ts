/**
 * The error classes every hyperwire package throws. Each has a stable string `code`, a message that
 * says what happened and what to do, and the underlying error in `cause`.
 *
 * ```ts
 * try { await get(url); } catch (e) { if (e instanceof TimeoutError) console.log(e.phase); }
 * ```
 */

/** Options every hyperwire error accepts. */
export interface HTTPErrorOptions {
  /** The underlying error (a Node system error, a TLS error, a nested hyperwire error). */
  cause?: unknown;
}

/** The base class of every error hyperwire throws to a user. */
export class HTTPError extends Error {
  /** A stable machine-readable code, e.g. `"HW_TIMEOUT"`. */
  readonly code: string;

  constructor(message: string, code = "HW_HTTP_ERROR", options: HTTPErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** A value given by the caller is not acceptable (a bad option, URL or argument). */
export class ArgumentError extends HTTPError {
  constructor(message: string, options: HTTPErrorOptions = {}) {
    super(message, "HW_ARGUMENT", options);
  }
}

/** Something that only makes sense on an open object was done after it was closed. */
export class ClosedError extends HTTPError {
  constructor(message: string, options: HTTPErrorOptions = {}) {
    super(message, "HW_CLOSED", options);
  }
}

/** Bytes from the peer could not be parsed as HTTP. */
export class ParseError extends HTTPError {
  constructor(message: string, options: HTTPErrorOptions = {}) {
    super(message, "HW_PARSE", options);
  }
}

/**
 * A protocol rule was broken: a header that would allow injection, a Content-Length mismatch,
 * a proxy that refused CONNECT, an h2 error on the connection.
 */
export class ProtocolError extends HTTPError {
  constructor(message: string, options: HTTPErrorOptions & { code?: string } = {}) {
    super(message, options.code ?? "HW_PROTOCOL", options);
  }
}

/** The request was cancelled by its `signal` or `RequestContext`. */
export class CanceledError extends HTTPError {
  constructor(message = "request canceled", options: HTTPErrorOptions = {}) {
    super(message, "HW_CANCELED", options);
  }
}

/** The phase of an exchange a {@link TimeoutError} fired in. */
export type TimeoutPhase =
  | "connect"
  | "tls"
  | "request"
  | "responseHeader"
  | "readIdle"
  | "writeIdle"
  | "expectContinue"
  | "websocketHandshake";

/** A timeout fired. `phase` says which one; `timeoutMs` its setting; `elapsedMs` how long it ran. */
export class TimeoutError extends HTTPError {
  readonly phase: TimeoutPhase;
  readonly timeoutMs: number;
  readonly elapsedMs: number;

  constructor(phase: TimeoutPhase, timeoutMs: number, elapsedMs: number, options: HTTPErrorOptions = {}) {
    super(
      `${phase} timeout: no progress within ${timeoutMs} ms (elapsed ${Math.round(elapsedMs)} ms); raise the ${phase}Timeout option if the peer is slow`,
      "HW_TIMEOUT",
      options,
    );
    this.phase = phase;
    this.timeoutMs = timeoutMs;
    this.elapsedMs = elapsedMs;
  }

  /** HTTP.jl's name for the phase. */
  get operation(): TimeoutPhase {
    return this.phase;
  }
}

/** HTTP.jl's name for {@link TimeoutError}. */
export const HTTPTimeoutError = TimeoutError;
/** HTTP.jl's name for {@link TimeoutError}. */
export type HTTPTimeoutError = TimeoutError;

/** The connection to `address` could not be made (refused, unreachable, reset while connecting). */
export class ConnectError extends HTTPError {
  readonly address: string;

  constructor(address: string, options: HTTPErrorOptions & { message?: string } = {}) {
    super(
      options.message ??
        `could not connect to ${address}${causeSuffix(options.cause)}; check that the server is running and reachable`,
      "HW_CONNECT",
      options,
    );
    this.address = address;
  }
}

/** The host name could not be resolved. */
export class DNSError extends HTTPError {
  readonly hostname: string;

  constructor(hostname: string, options: HTTPErrorOptions = {}) {
    super(`could not resolve host ${hostname}${causeSuffix(options.cause)}`, "HW_DNS", options);
    this.hostname = hostname;
  }
}

/** The TLS handshake failed (certificate not trusted, name mismatch, no shared protocol...). */
export class TLSHandshakeError extends HTTPError {
  constructor(message: string, options: HTTPErrorOptions = {}) {
    super(message, "HW_TLS", options);
  }
}

/** A server could not bind because the address is taken. */
export class AddressInUseError extends HTTPError {
  readonly address: string;

  constructor(address: string, options: HTTPErrorOptions = {}) {
    super(
      `address ${address} is already in use; pick another port, use port 0, or set listenAny`,
      "HW_ADDRESS_IN_USE",
      options,
    );
    this.address = address;
  }
}

/** Anything with a numeric status, the shape {@link StatusError} needs of a response. */
export interface StatusCarrier {
  readonly status: number;
}

/** The response status is one the caller asked to be treated as an error (`statusException`). */
export class StatusError<R extends StatusCarrier = StatusCarrier> extends HTTPError {
  readonly status: number;
  readonly response: R;

  constructor(
    response: R,
    options: HTTPErrorOptions & { method?: string; url?: string; retries?: number } = {},
  ) {
    const what = options.method && options.url ? `${options.method} ${options.url}` : "request";
    const retried = options.retries ? ` after ${options.retries} retries` : "";
    super(`${what} failed with status ${response.status}${retried}`, "HW_STATUS", options);
    this.status = response.status;
    this.response = response;
  }
}

/** More redirects were offered than `redirectLimit` allows. `response` is the last 3xx. */
export class TooManyRedirectsError<R extends StatusCarrier = StatusCarrier> extends HTTPError {
  readonly limit: number;
  readonly response: R;

  constructor(limit: number, response: R, options: HTTPErrorOptions = {}) {
    super(
      `too many redirects (limit ${limit}); raise redirectLimit or check for a redirect loop`,
      "HW_REDIRECTS",
      options,
    );
    this.limit = limit;
    this.response = response;
  }
}

/** Wraps the error of a failed attempt, as given to `retryIf`. The attempt's error is `cause`. */
export class RequestRetryError extends HTTPError {
  constructor(cause: unknown) {
    super(`request attempt failed${causeSuffix(cause)}`, "HW_RETRY", { cause });
  }

  /** HTTP.jl's name for the wrapped error. */
  get err(): unknown {
    return this.cause;
  }
}

/** A compressed body decoded to more than `maxDecompressedSize` bytes. */
export class DecompressionLimitError extends HTTPError {
  readonly limit: number;

  constructor(limit: number, options: HTTPErrorOptions = {}) {
    super(
      `decompressed body is larger than maxDecompressedSize (${limit} bytes); raise the limit or set decompress: false`,
      "HW_DECOMPRESSION_LIMIT",
      options,
    );
    this.limit = limit;
  }
}

/** A WebSocket failed its handshake or closed with a code that is not a normal closure. */
export class WebSocketError extends HTTPError {
  /** The close code (RFC 6455 §7.4), e.g. 1002 for a failed handshake, 1006 for an abnormal close. */
  readonly closeCode: number;
  readonly reason: string;
  /** The HTTP status of a failed handshake, when there was one. */
  readonly status: number | undefined;

  constructor(closeCode: number, reason: string, options: HTTPErrorOptions & { status?: number } = {}) {
    super(`websocket closed with code ${closeCode}${reason ? `: ${reason}` : ""}`, "HW_WEBSOCKET", options);
    this.closeCode = closeCode;
    this.reason = reason;
    this.status = options.status;
  }
}

function causeSuffix(cause: unknown): string {
  if (cause instanceof Error && cause.message) return ` (${cause.message})`;
  return "";
}
