// The public surface of @hyperwire/client. Re-exports only; nothing is defined here.

// A client alone is a full client, HTTP/2 included: its settings and errors come with it.
export {
  H2GoAwayError,
  H2NegotiationError,
  H2StreamResetError,
  HTTP2Settings,
  type HTTP2SettingsInit,
} from "@hyperwire/h2";
export {
  closeIdleConnections,
  del,
  del as delete,
  get,
  getDefaultClient,
  head,
  open,
  options,
  patch,
  post,
  put,
  query,
  request,
  sse,
} from "./api.js";
export type { RequestBody } from "./body.js";
export { Client, type ClientDefaults, type ClientOptions } from "./client.js";
export { CookieJar, type CookieJarData, type StoredCookie } from "./cookie-jar.js";
export { cookieHeader, jarFor } from "./cookies.js";
export type { DownloadProgress } from "./decompress.js";
export { type Dialed, type DialOptions, dial } from "./dial.js";
export type { BasicAuth, RequestOptions } from "./options.js";
export { USER_AGENT } from "./prepare.js";
export type { CheckRedirect } from "./redirect.js";
export {
  isRecoverable,
  RETRY_BUCKET_DEFAULTS,
  RetryBucket,
  type RetryBucketOptions,
  type RetryIf,
  type RetryToken,
  retryAttempts,
} from "./retry.js";
export type { SSEControl, SSEOptions } from "./sse.js";
export { ClientStream, type ClientStreamHandler } from "./stream.js";
export type {
  ClientEvent,
  DoneEvent,
  RedirectEvent,
  RequestEvent,
  ResponseHeadEvent,
  RetryEvent,
  Verbosity,
  WireProtocol,
} from "./trace.js";
export { TRANSPORT_DEFAULTS, Transport, type TransportOptions } from "./transport.js";
