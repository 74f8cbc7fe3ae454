// The client side of server-sent events: a streaming parser of `text/event-stream` bytes, per the
// WHATWG HTML "event stream interpretation" (§9.2.6). Chunks may split anywhere (inside a UTF-8
// sequence, between the CR and LF of a CRLF); an event is dispatched only by its blank line, so an
// unterminated event at the end of the stream is dropped, as the spec says.
import { ArgumentError, ParseError } from "./errors.js";
import { SSEEvent, type SSEEventInit } from "./sse.js";

/** Options of {@link SSEParser}. */
export interface SSEParserOptions {
  /** The longest line accepted, in bytes (UTF-8). `0`: no limit. Default 1 MiB. */
  maxLineBytes?: number;
  /** The largest event accepted (its data), in bytes (UTF-8). `0`: no limit. Default 16 MiB. */
  maxEventBytes?: number;
}

/** Defaults of {@link SSEParserOptions}. */
export const SSE_PARSER_DEFAULTS: Readonly<Required<SSEParserOptions>> = Object.freeze({
  maxLineBytes: 1024 * 1024,
  maxEventBytes: 16 * 1024 * 1024,
});

const NO_EVENTS: readonly SSEEvent[] = Object.freeze([]);

function checkLimit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ArgumentError(`${name} must be a non-negative integer of bytes (0: no limit), got ${value}`);
  }
  return value;
}

/** UTF-8 size of `s` is above `max` (0: no limit), without encoding it when the length alone decides. */
function tooBig(s: string, max: number): boolean {
  if (max === 0 || s.length * 3 <= max) return false;
  if (s.length > max) return true;
  return Buffer.byteLength(s, "utf8") > max;
}

/**
 * Turns the bytes of an event stream into {@link SSEEvent}s. Feed chunks with {@link push}, which
 * returns the events they completed; call {@link end} at the end of the body. A leading BOM is
 * removed; lines end at CR, LF or CRLF; `data` lines are joined with LF; `id` (ignored when it holds
 * NUL) and `retry` (digits only) persist across events; comments and unknown fields are skipped
 * (unknown fields are kept in the event's `fields`). A line or event over its limit throws
 * `ParseError`.
 *
 * ```ts
 * const parser = new SSEParser();
 * for await (const chunk of body) for (const ev of parser.push(chunk)) console.log(ev.event, ev.data);
 * parser.end();
 * ```
 */
export class SSEParser {
  readonly #maxLine: number;
  readonly #maxEvent: number;
  // Strips one BOM at the start of the stream (ignoreBOM false) and keeps split UTF-8 sequences.
  readonly #decoder = new TextDecoder("utf-8");
  /** The unterminated end of the text seen so far. */
  #rest = "";
  /** The last chunk ended with CR: an LF starting the next one belongs to the same line end. */
  #skipLF = false;
  #data = "";
  #hasData = false;
  #eventType = "";
  #lastEventId = "";
  #retry: number | undefined;
  /** Fields other than data/event/id/retry seen in the current event, if any. */
  #extra: Map<string, string> | undefined;
  #ended = false;

  constructor(options: SSEParserOptions = {}) {
    this.#maxLine = checkLimit("maxLineBytes", options.maxLineBytes, SSE_PARSER_DEFAULTS.maxLineBytes);
    this.#maxEvent = checkLimit("maxEventBytes", options.maxEventBytes, SSE_PARSER_DEFAULTS.maxEventBytes);
  }

  /** The id of the last event that set one (what a reconnecting client sends as `Last-Event-ID`). */
  get lastEventId(): string {
    return this.#lastEventId;
  }

  /** The reconnection time the stream asked for with `retry:`, in ms, or `undefined`. */
  get retry(): number | undefined {
    return this.#retry;
  }

  /** Parses one chunk and returns the events it completed (often none). */
  push(chunk: Uint8Array): readonly SSEEvent[] {
    if (this.#ended) throw new ParseError("push() after end() on an SSE parser");
    const text = this.#decoder.decode(chunk, { stream: true });
    return text === "" ? NO_EVENTS : this.#lines(text);
  }

  /**
   * Ends the stream. An event without its closing blank line is discarded (the spec's rule), so this
   * returns no events; it exists to flush the decoder and to refuse later pushes.
   */
  end(): readonly SSEEvent[] {
    if (this.#ended) return NO_EVENTS;
    this.#ended = true;
    this.#decoder.decode();
    this.#rest = "";
    this.#data = "";
    this.#extra = undefined;
    return NO_EVENTS;
  }

  #lines(text: string): readonly SSEEvent[] {
    let s = this.#rest === "" ? text : this.#rest + text;
    this.#rest = "";
    let start = 0;
    if (this.#skipLF) {
      this.#skipLF = false;
      if (s.charCodeAt(0) === 0x0a) start = 1;
    }
    let events: SSEEvent[] | undefined;
    const n = s.length;
    let lf = s.indexOf("\n", start);
    let cr = s.indexOf("\r", start);
    for (let guard = 0; guard <= n; guard++) {
      if (lf < 0 && cr < 0) break;
      const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      const ev = this.#line(s.slice(start, end));
      if (ev !== undefined) {
        if (events === undefined) events = [];
        events.push(ev);
      }
      if (end === cr) {
        if (end + 1 === n) {
          this.#skipLF = true;
          start = n;
        } else start = s.charCodeAt(end + 1) === 0x0a ? end + 2 : end + 1;
      } else start = end + 1;
      if (lf >= 0 && lf < start) lf = s.indexOf("\n", start);
      if (cr >= 0 && cr < start) cr = s.indexOf("\r", start);
    }
    if (start < n) {
      s = s.slice(start);
      if (tooBig(s, this.#maxLine)) throw this.#lineError();
      this.#rest = s;
    }
    return events ?? NO_EVENTS;
  }

  #lineError(): ParseError {
    return new ParseError(
      `an event-stream line is longer than maxSseLineBytes (${this.#maxLine} bytes); raise the limit or set it to 0`,
    );
  }

  /** Processes one complete line; returns the event a blank line dispatched. */
  #line(line: string): SSEEvent | undefined {
    if (line === "") return this.#dispatch();
    if (tooBig(line, this.#maxLine)) throw this.#lineError();
    if (line.charCodeAt(0) === 0x3a) return undefined; // a comment
    const colon = line.indexOf(":");
    let name: string;
    let value: string;
    if (colon < 0) {
      name = line;
      value = "";
    } else {
      name = line.slice(0, colon);
      value = line.charCodeAt(colon + 1) === 0x20 ? line.slice(colon + 2) : line.slice(colon + 1);
    }
    switch (name) {
      case "data":
        this.#data = this.#hasData ? `${this.#data}\n${value}` : value;
        this.#hasData = true;
        if (tooBig(this.#data, this.#maxEvent)) {
          throw new ParseError(
            `an event is larger than maxSseEventBytes (${this.#maxEvent} bytes); raise the limit or set it to 0`,
          );
        }
        break;
      case "event":
        this.#eventType = value;
        break;
      case "id":
        if (value.indexOf("\0") < 0) this.#lastEventId = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) {
          const ms = Number(value);
          if (Number.isSafeInteger(ms)) this.#retry = ms;
        }
        break;
      default: {
        if (this.#extra === undefined) this.#extra = new Map();
        const extra = this.#extra;
        const prev = extra.get(name);
        extra.set(name, prev === undefined ? value : `${prev}\n${value}`);
      }
    }
    return undefined;
  }

  #dispatch(): SSEEvent | undefined {
    const type = this.#eventType;
    const extra = this.#extra;
    this.#eventType = "";
    this.#extra = undefined;
    if (!this.#hasData) {
      this.#data = "";
      return undefined;
    }
    const data = this.#data;
    this.#data = "";
    this.#hasData = false;
    if (type.indexOf("\0") >= 0) {
      throw new ParseError("an event type holds NUL, which an SSEEvent cannot carry");
    }
    const init: SSEEventInit = {};
    if (type !== "") init.event = type;
    if (this.#lastEventId !== "") init.id = this.#lastEventId;
    if (this.#retry !== undefined) init.retry = this.#retry;
    if (extra !== undefined) init.fields = extra;
    return new SSEEvent(data, init);
  }
}
