// Server-sent events on the client: `sse(url)` as an async iterable of events, and the `onEvent`
// request option. Both run on the streaming `open()` path: the head arrives first, so a failing
// status or a body that is not an event stream is refused before any byte is parsed, and the body
// is pulled, so a slow consumer stops the reading (and the socket) instead of queueing events.
import {
  ArgumentError,
  Headers,
  ProtocolError,
  type Response,
  type SSEEvent,
  SSEParser,
  StatusError,
} from "@hyperwire/core";
import { prepareBody, type RequestBody } from "./body.js";
import type { Client } from "./client.js";
import { isFailingStatus, type RequestOptions } from "./options.js";
import { type ClientStream, open } from "./stream.js";

/** What an `onEvent` callback gets besides the event. */
export interface SSEControl {
  /** Stops reading after this callback: the exchange is closed and the request resolves with the response. */
  close(): void;
  /** True once {@link close} was called. */
  readonly closed: boolean;
  /** The response head (its body stays empty). */
  readonly response: Response<Uint8Array>;
}

/** Options of {@link sse}: the request options, without the ones that take the body elsewhere. */
export type SSEOptions = Omit<RequestOptions, "onEvent" | "responseStream" | "body" | "json">;

/** How much of a failing response's body is kept for its `StatusError`, in bytes. */
const ERROR_BODY_LIMIT = 1024 * 1024;

function withAccept(init: RequestOptions["headers"]): Headers {
  const headers = new Headers(init);
  if (!headers.has("accept")) headers.set("Accept", "text/event-stream");
  return headers;
}

/** The media type of a Content-Type value, lower case, without parameters. */
function mediaType(value: string | null): string {
  if (value === null) return "";
  const semi = value.indexOf(";");
  return (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
}

/**
 * After the head: a failing status is read (up to 1 MiB of its body) and becomes `StatusError`, or,
 * with `statusException: false`, the plain answer (`false`: no events to read); a response that is
 * not `text/event-stream` is a `ProtocolError`. The stream is closed in those cases.
 */
async function checkHead(
  stream: ClientStream,
  res: Response<Uint8Array>,
  statusException: boolean,
  method: string,
): Promise<boolean> {
  if (isFailingStatus(res.status)) {
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for (let chunk = await stream.read(); chunk !== null; chunk = await stream.read()) {
        chunks.push(chunk);
        size += chunk.byteLength;
        if (size >= ERROR_BODY_LIMIT) break;
      }
    } catch {
      // The error body is a courtesy; the status is what gets reported.
    }
    await stream.close();
    res.body = size === 0 ? res.body : Buffer.concat(chunks, size);
    if (statusException) throw new StatusError(res, { method, url: res.url ?? "" });
    return false;
  }
  // No body to read as events (a redirect that was not followed).
  if (res.status === 204 || (res.status >= 300 && res.status < 400)) {
    await stream.close();
    return false;
  }
  const type = mediaType(res.headers.get("content-type"));
  if (type !== "text/event-stream") {
    await stream.close();
    throw new ProtocolError(
      `the response is not an event stream: Content-Type is ${type === "" ? "missing" : JSON.stringify(type)}, expected text/event-stream`,
    );
  }
  return true;
}

/**
 * Opens `url` as a server-sent events stream and yields its events. `Accept: text/event-stream` is
 * sent unless set. Leaving the loop (`break`, `return`, an exception) closes the request. A failing
 * status throws `StatusError` (unless `statusException: false`), a response that is not
 * `text/event-stream` a `ProtocolError`, a line or event over `maxSseLineBytes`/`maxSseEventBytes` a
 * `ParseError`.
 *
 * ```ts
 * for await (const ev of sse("http://127.0.0.1:8080/events")) {
 *   if (ev.event === "done") break;
 *   console.log(ev.id, ev.data);
 * }
 * ```
 */
export async function* sseOn(
  client: Client,
  url: string | URL,
  options: SSEOptions = {},
): AsyncGenerator<SSEEvent> {
  const parser = new SSEParser({
    maxLineBytes: options.maxSseLineBytes,
    maxEventBytes: options.maxSseEventBytes,
  });
  const stream = (await open(client, "GET", url, {
    ...options,
    headers: withAccept(options.headers),
  })) as ClientStream;
  try {
    const res = await stream.startRead();
    if (!(await checkHead(stream, res, options.statusException ?? client.defaults.statusException, "GET")))
      return;
    for (let chunk = await stream.read(); chunk !== null; chunk = await stream.read()) {
      const events = parser.push(chunk);
      for (let i = 0; i < events.length; i++) yield events[i]!;
    }
    parser.end();
  } finally {
    await stream.close();
  }
}

/**
 * The `onEvent` path of `request`: opens the exchange, sends the body, checks the head like
 * {@link sseOn}, then awaits `onEvent` for each event until the stream ends or `control.close()`.
 * Resolves with the response (empty body).
 */
export async function requestEvents(
  client: Client,
  method: string,
  url: string | URL,
  options: Omit<RequestOptions, "client">,
): Promise<Response<Uint8Array>> {
  const onEvent = options.onEvent;
  if (typeof onEvent !== "function") throw new ArgumentError("onEvent must be a function");
  if (options.responseStream !== undefined) {
    throw new ArgumentError("give either onEvent or responseStream, not both");
  }
  const parser = new SSEParser({
    maxLineBytes: options.maxSseLineBytes,
    maxEventBytes: options.maxSseEventBytes,
  });
  const { body, json, onEvent: _onEvent, uploadProgress: _progress, ...rest } = options;
  const headers = withAccept(options.headers);
  const prepared =
    body !== undefined || json !== undefined ? await prepareBody(body as RequestBody, json) : null;
  if (prepared !== null) {
    if (prepared.contentType !== undefined && !headers.has("content-type")) {
      headers.set("Content-Type", prepared.contentType);
    }
    if (prepared.data instanceof Uint8Array && !headers.has("content-length")) {
      headers.set("Content-Length", String(prepared.data.byteLength));
    }
  }
  const stream = (await open(client, method, url, { ...rest, headers })) as ClientStream;
  let stopped = false;
  try {
    const data = prepared?.data ?? null;
    if (data instanceof Uint8Array) {
      if (data.byteLength > 0) await stream.write(data);
    } else if (data !== null) {
      for await (const chunk of data) await stream.write(chunk);
    }
    const res = await stream.startRead();
    if (!(await checkHead(stream, res, options.statusException ?? client.defaults.statusException, method))) {
      return res;
    }
    const control: SSEControl = {
      close() {
        stopped = true;
      },
      get closed() {
        return stopped;
      },
      response: res,
    };
    // Bounded by the body: each turn consumes one chunk, and the loop ends at its end or at close().
    while (!stopped) {
      const chunk = await stream.read();
      if (chunk === null) {
        parser.end();
        break;
      }
      const events = parser.push(chunk);
      for (let i = 0; i < events.length && !stopped; i++) await onEvent(events[i]!, control);
    }
    return res;
  } finally {
    await stream.close();
  }
}
