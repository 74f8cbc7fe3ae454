// The HTTP/2 errors a user can meet (through `retryIf`, `isRecoverable` or a failed request). They
// extend core's classes, so `instanceof ProtocolError` still catches them.
import { ProtocolError } from "@hyperwire/core";

/** RFC 9113 §7 error code names, by code. */
const ERROR_CODE_NAMES: readonly string[] = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

/** The RFC 9113 name of an HTTP/2 error code (`7` → `"REFUSED_STREAM"`), or `"UNKNOWN_<n>"`. */
export function h2ErrorCodeName(code: number): string {
  return ERROR_CODE_NAMES[code] ?? `UNKNOWN_${code}`;
}

/** The RST_STREAM code that says the server did not process the stream (RFC 9113 §8.7). */
export const REFUSED_STREAM = 7;
/** The GOAWAY code a server sends to a peer it considers abusive. */
export const ENHANCE_YOUR_CALM = 11;

/**
 * The server did not agree to HTTP/2 where it was required (`protocol: 'h2'` on `https:` and ALPN
 * chose something else), or the connection preface failed.
 *
 * ```ts
 * try { await get(url, { protocol: "h2" }); } catch (e) { if (e instanceof H2NegotiationError) ... }
 * ```
 */
export class H2NegotiationError extends ProtocolError {
  /** What ALPN chose instead (`"http/1.1"`, or `""` when nothing was chosen). */
  readonly negotiated: string;

  constructor(message: string, negotiated: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, code: "HW_H2_NEGOTIATION" });
    this.negotiated = negotiated;
  }
}

/**
 * The server sent GOAWAY before it processed this stream (its id was above the GOAWAY's last stream
 * id). The request never reached the application, so it is retried for any method when its body
 * can be sent again.
 */
export class H2GoAwayError extends ProtocolError {
  /** The GOAWAY's error code (0 = NO_ERROR, a graceful shutdown). */
  readonly errorCode: number;
  readonly lastStreamId: number;

  constructor(errorCode: number, lastStreamId: number, options: { cause?: unknown } = {}) {
    super(
      `the server sent GOAWAY (${h2ErrorCodeName(errorCode)}, last stream ${lastStreamId}) before processing the request`,
      { ...options, code: "HW_H2_GOAWAY" },
    );
    this.errorCode = errorCode;
    this.lastStreamId = lastStreamId;
  }
}

/**
 * The peer reset the stream with RST_STREAM. `REFUSED_STREAM` (7) means the request was not
 * processed and is retried for any method; other codes are not retried.
 */
export class H2StreamResetError extends ProtocolError {
  /** The RST_STREAM error code. */
  readonly errorCode: number;
  /** Its RFC 9113 name, e.g. `"REFUSED_STREAM"`. */
  readonly codeName: string;

  constructor(errorCode: number, options: { cause?: unknown } = {}) {
    const codeName = h2ErrorCodeName(errorCode);
    super(`the peer reset the HTTP/2 stream (${codeName})`, { ...options, code: "HW_H2_STREAM_RESET" });
    this.errorCode = errorCode;
    this.codeName = codeName;
  }

  /** True for REFUSED_STREAM: the server did not process the request, so any method may be retried. */
  get refused(): boolean {
    return this.errorCode === REFUSED_STREAM;
  }
}
