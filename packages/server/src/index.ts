// The public surface of @hyperwire/server. Re-exports only; nothing is defined here.
export { type AccessLogEntry, formatCombinedLog } from "./access-log.js";
export {
  type EtagOption,
  FILE_SERVER_DEFAULTS,
  type FileServerOptions,
  fileServer,
  type ServeFileOptions,
  serveFile,
} from "./files.js";
export type { ContentReader } from "./files-body.js";
export {
  type ContentSource,
  SERVE_CONTENT_DEFAULTS,
  type ServeContentOptions,
  serveContent,
} from "./files-content.js";
export type {
  FetchHandlerObject,
  Handler,
  HandlerResult,
  RequestHandler,
  RequestHandlerObject,
} from "./handler.js";
export {
  listen,
  type StreamHandler,
  type StreamHandlerObject,
  type StreamHandlerOptions,
  streamHandler,
} from "./listen.js";
export {
  compose,
  HANDLER_TIMEOUT_DEFAULTS,
  type HandlerTimeoutOptions,
  handlerTimeout,
  type Middleware,
} from "./middleware.js";
export {
  COMPRESSION_DEFAULTS,
  type CompressionEncoding,
  type CompressionOptions,
  compression,
  isCompressibleType,
  negotiateEncoding,
} from "./middleware-compression.js";
export { COOKIES_KEY, cookieMiddleware, getCookies, type RequestCookie } from "./middleware-cookies.js";
export { CORS_DEFAULTS, type CorsOptions, type CorsOrigins, cors } from "./middleware-cors.js";
export { DEFAULTS, LISTEN_ANY_ATTEMPTS, type ServerOptions } from "./options.js";
export {
  getParam,
  getParams,
  getRoute,
  MAX_ROUTE_SEGMENTS,
  type RouteHandler,
  type RouteMatch,
  Router,
  type RouterOptions,
} from "./router.js";
export { serve } from "./serve.js";
export { Server } from "./server.js";
export {
  SSE_DEFAULTS,
  type SSEProducer,
  type SSEResponseOptions,
  type SSEWriter,
  sseResponse,
} from "./sse.js";
export { type PeerAddr, ServerStream } from "./stream.js";
export {
  type ConnectStream,
  connectProtocol,
  isUpgradeable,
  type TakeUpgradeOptions,
  takeConnect,
  takeUpgrade,
  type UpgradeConnection,
} from "./upgrade.js";
