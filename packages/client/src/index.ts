// The public surface of @hyperwire/client. Re-exports only; nothing is defined here.
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
} from "./api.js";
export type { RequestBody } from "./body.js";
export { Client, type ClientOptions } from "./client.js";
export { type Dialed, type DialOptions, dial } from "./dial.js";
export type { BasicAuth, RequestOptions } from "./options.js";
export { USER_AGENT } from "./prepare.js";
export { ClientStream, type ClientStreamHandler } from "./stream.js";
export type { ClientEvent, DoneEvent, RequestEvent, ResponseHeadEvent, Verbosity } from "./trace.js";
export { TRANSPORT_DEFAULTS, Transport, type TransportOptions } from "./transport.js";
