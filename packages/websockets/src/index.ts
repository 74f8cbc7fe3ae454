// The public surface of @hyperwire/websockets. Re-exports only; nothing is defined here.
export { close, forceClose, ping, pong, receive, send, serverAddr } from "./functions.js";
export {
  type AcceptOptions,
  isUpgradeRequest as isUpgrade,
  LISTEN_DEFAULTS,
  type ListenOptions,
  listen,
  type OriginCheck,
  type SessionHandler,
  WebSocketServer,
} from "./listen.js";
export { WebSockets } from "./namespace.js";
export { OPEN_DEFAULTS, type OpenOptions, open, type WebSocketHandler } from "./open.js";
export { upgrade } from "./upgrade.js";
export {
  CLOSE_WAIT_MS,
  isValidCloseCode,
  type Message,
  SEND_HIGH_WATER,
  type SendData,
  type SessionOptions,
  WebSocket,
} from "./websocket.js";
