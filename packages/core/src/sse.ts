// The server-sent events model (WHATWG HTML §9.2, "event streams"): one event and its wire encoding.
// Both sides share it: a server writes SSEEvents, a client parses the stream back into them.
import { ArgumentError } from "./errors.js";

/** Options of {@link SSEEvent}. */
export interface SSEEventInit {
  /** The event type (`event:` field). No CR, LF or NUL. Absent: the client's default, `"message"`. */
  event?: string;
  /** The event id (`id:` field), which the client sends back as `Last-Event-ID`. No CR, LF or NUL. */
  id?: string;
  /** The reconnection time the client should use, in milliseconds (`retry:` field). A non-negative integer. */
  retry?: number;
  /**
   * Every field a parser saw for this event, repeated ones joined with `"\n"` (HTTP.jl's `fields`).
   * `data`, `event`, `id` and `retry` are filled in from the other options when missing here.
   * Extra entries are kept for the reader; {@link formatEvent} does not write them.
   */
  fields?: Iterable<readonly [string, string]>;
}

/** Checks a field that must stay on one line (`event`, `id`) and returns it. */
function checkLineField(name: "event" | "id", value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") {
    throw new ArgumentError(`SSE ${name} must be a string, got ${typeof value}`);
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    // CR or LF would end the field and let the rest of the value inject fields or whole events; the
    // client ignores an id with NUL, so refusing it here says so at the place the mistake is made.
    if (c === 0x0d || c === 0x0a || c === 0) {
      const what = c === 0x0d ? "CR" : c === 0x0a ? "LF" : "NUL";
      throw new ArgumentError(
        `SSE ${name} ${JSON.stringify(value)} contains ${what}; an ${name} field is one line without CR, LF or NUL`,
      );
    }
  }
  return value;
}

/**
 * One server-sent event: its data and the optional `event`, `id` and `retry` fields. The fields that
 * must stay on one line (`event`, `id`) are checked here, so an event that exists can always be written
 * safely; `data` may hold any text, line breaks included (each line becomes its own `data:` line).
 *
 * Bad values throw {@link ArgumentError}: `event` or `id` with CR, LF or NUL, a `retry` that is not a
 * non-negative integer.
 *
 * ```ts
 * const ev = new SSEEvent('{"price": 42}', { event: "tick", id: "17" });
 * formatEvent(ev); // 'event: tick\nid: 17\ndata: {"price": 42}\n\n'
 * ```
 */
export class SSEEvent {
  /** The event's data (lines joined with `"\n"`). */
  readonly data: string;
  /** The event type, or `undefined` for the default (`"message"`). */
  readonly event: string | undefined;
  /** The event id, or `undefined` when the event sets none. */
  readonly id: string | undefined;
  /** The reconnection time in milliseconds, or `undefined`. */
  readonly retry: number | undefined;
  /** Every field of the event by name (see {@link SSEEventInit.fields}). */
  readonly fields: ReadonlyMap<string, string>;

  constructor(data: string, init: SSEEventInit = {}) {
    if (typeof data !== "string") {
      throw new ArgumentError(`SSE data must be a string, got ${typeof data}; JSON.stringify objects first`);
    }
    const retry = init.retry;
    if (retry !== undefined && (!Number.isSafeInteger(retry) || retry < 0)) {
      throw new ArgumentError(`SSE retry must be a non-negative integer of milliseconds, got ${retry}`);
    }
    this.data = data;
    this.event = checkLineField("event", init.event);
    this.id = checkLineField("id", init.id);
    this.retry = retry;
    const fields = new Map<string, string>(init.fields ?? []);
    if (!fields.has("data")) fields.set("data", data);
    if (this.event !== undefined && !fields.has("event")) fields.set("event", this.event);
    if (this.id !== undefined && !fields.has("id")) fields.set("id", this.id);
    if (retry !== undefined && !fields.has("retry")) fields.set("retry", String(retry));
    this.fields = fields;
  }
}

const LINE_BREAK = /\r\n|\r|\n/;

/**
 * The event in the `text/event-stream` format: `event:`, `id:` and `retry:` lines when set, one
 * `data:` line per line of the data (CRLF, CR and LF all split), then the blank line that dispatches
 * the event. Lines end with LF. A client decodes it back to the same `data`, `event`, `id` and `retry`.
 *
 * ```ts
 * formatEvent(new SSEEvent("a\nb")); // "data: a\ndata: b\n\n"
 * ```
 */
export function formatEvent(event: SSEEvent): string {
  let out = "";
  if (event.event !== undefined) out += `event: ${event.event}\n`;
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  if (event.retry !== undefined) out += `retry: ${event.retry}\n`;
  const data = event.data;
  // The common single-line event skips the split; the client strips one space after the colon, so a
  // line that itself starts with a space keeps it.
  if (data.indexOf("\n") < 0 && data.indexOf("\r") < 0) return `${out}data: ${data}\n\n`;
  for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`;
  return `${out}\n`;
}
