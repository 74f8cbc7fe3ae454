// The top-level helpers: `request`, the verbs and `open`, on the given client or a process-wide
// default client created on first use.
import type { Response, SSEEvent } from "@hyperwire/core";
import { Client } from "./client.js";
import type { RequestOptions } from "./options.js";
import { DEFAULT_CLIENTS } from "./prepare.js";
import { type SSEOptions, sseOn } from "./sse.js";
import { type ClientStream, type ClientStreamHandler, open as openOn } from "./stream.js";

let defaultClient: Client | undefined;

/** The process-wide client the helpers use when no `client` option is given (created on first use). */
export function getDefaultClient(): Client {
  if (defaultClient === undefined || !defaultClient.isOpen) {
    defaultClient = new Client();
    DEFAULT_CLIENTS.add(defaultClient);
  }
  return defaultClient;
}

type NoBody = Omit<RequestOptions, "body" | "json">;

function clientOf(options: RequestOptions | undefined): Client {
  return options?.client ?? getDefaultClient();
}

/**
 * Sends a request and resolves with the response, body read. Throws `StatusError` for failing
 * statuses unless `statusException: false`.
 *
 * ```ts
 * const res = await request("POST", "http://127.0.0.1:8080/items", { json: { name: "a" } });
 * res.json();
 * ```
 */
export function request(
  method: string,
  url: string | URL,
  options?: RequestOptions,
): Promise<Response<Uint8Array>> {
  return clientOf(options).request(method, url, options);
}

/** `GET`. */
export function get(url: string | URL, options?: NoBody): Promise<Response<Uint8Array>> {
  return clientOf(options).request("GET", url, options);
}
/** `HEAD`. */
export function head(url: string | URL, options?: NoBody): Promise<Response<Uint8Array>> {
  return clientOf(options).request("HEAD", url, options);
}
/** `OPTIONS`. */
export function options(url: string | URL, opts?: NoBody): Promise<Response<Uint8Array>> {
  return clientOf(opts).request("OPTIONS", url, opts);
}
/** `POST`. */
export function post(url: string | URL, options?: RequestOptions): Promise<Response<Uint8Array>> {
  return clientOf(options).request("POST", url, options);
}
/** `PUT`. */
export function put(url: string | URL, options?: RequestOptions): Promise<Response<Uint8Array>> {
  return clientOf(options).request("PUT", url, options);
}
/** `PATCH`. */
export function patch(url: string | URL, options?: RequestOptions): Promise<Response<Uint8Array>> {
  return clientOf(options).request("PATCH", url, options);
}
/** `DELETE` (also exported as `delete`). */
export function del(url: string | URL, options?: RequestOptions): Promise<Response<Uint8Array>> {
  return clientOf(options).request("DELETE", url, options);
}
/** The `QUERY` method: safe and idempotent, with a body. */
export function query(url: string | URL, options?: RequestOptions): Promise<Response<Uint8Array>> {
  return clientOf(options).request("QUERY", url, options);
}

/**
 * A streaming exchange. Without a handler: resolves to the `ClientStream`. With one: resolves to
 * the final `Response` after the handler returns (see `ClientStream`).
 */
export function open(method: string, url: string | URL, options?: RequestOptions): Promise<ClientStream>;
export function open(
  method: string,
  url: string | URL,
  handler: ClientStreamHandler,
  options?: RequestOptions,
): Promise<Response<Uint8Array>>;
export function open(
  method: string,
  url: string | URL,
  handlerOrOptions?: ClientStreamHandler | RequestOptions,
  maybeOptions?: RequestOptions,
): Promise<ClientStream | Response<Uint8Array>> {
  const opts = typeof handlerOrOptions === "function" ? maybeOptions : handlerOrOptions;
  return openOn(clientOf(opts), method, url, handlerOrOptions, maybeOptions);
}

/**
 * Server-sent events from `url`, as an async iterable of `SSEEvent`; leaving the loop closes the
 * request (see the client's `sseOn`).
 *
 * ```ts
 * for await (const ev of sse("http://127.0.0.1:8080/events")) console.log(ev.data);
 * ```
 */
export function sse(url: string | URL, options?: SSEOptions): AsyncGenerator<SSEEvent> {
  return sseOn(clientOf(options), url, options);
}

/** Closes the idle connections of `target`, or of the default client when it exists. */
export function closeIdleConnections(target?: { closeIdleConnections(): void }): void {
  if (target !== undefined) target.closeIdleConnections();
  else defaultClient?.closeIdleConnections();
}
