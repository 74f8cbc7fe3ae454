// The public surface of @hyperwire/server. Re-exports only; nothing is defined here.
export { type AccessLogEntry, formatCombinedLog } from "./access-log.js";
export type {
  FetchHandlerObject,
  Handler,
  HandlerResult,
  RequestHandler,
  RequestHandlerObject,
} from "./handler.js";
export { listen, type StreamHandler, type StreamHandlerOptions, streamHandler } from "./listen.js";
export { DEFAULTS, LISTEN_ANY_ATTEMPTS, type ServerOptions } from "./options.js";
export { serve } from "./serve.js";
export { Server } from "./server.js";
export { type PeerAddr, ServerStream } from "./stream.js";
export { isUpgradeable, type TakeUpgradeOptions, takeUpgrade, type UpgradeConnection } from "./upgrade.js";
