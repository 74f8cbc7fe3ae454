// @hyperwire/http: the umbrella. It re-exports the public API of every hyperwire package.
export * from "@hyperwire/client";
export * from "@hyperwire/core";
export * from "@hyperwire/server";
// WebSockets live under their namespace: their `open`, `listen` and `close` would shadow HTTP's.
export {
  type AcceptOptions as WebSocketAcceptOptions,
  type ListenOptions as WebSocketListenOptions,
  type Message as WebSocketMessage,
  type OpenOptions as WebSocketOpenOptions,
  WebSocket,
  WebSocketServer,
  WebSockets,
} from "@hyperwire/websockets";
