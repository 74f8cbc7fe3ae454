// HTTP.jl's module functions (`WebSockets.send(ws, x)`, ...), mirroring the methods.
import type { WebSocketServer } from "./listen.js";
import type { Message, SendData, WebSocket } from "./websocket.js";

/** `ws.send(data)`. */
export function send(ws: WebSocket, data: SendData): Promise<number> {
  return ws.send(data);
}

/** `ws.receive()`. */
export function receive(ws: WebSocket): Promise<Message> {
  return ws.receive();
}

/** `ws.ping(data)`. */
export function ping(ws: WebSocket, data?: Uint8Array | string): Promise<void> {
  return ws.ping(data);
}

/** `ws.pong(data)`. */
export function pong(ws: WebSocket, data?: Uint8Array | string): Promise<void> {
  return ws.pong(data);
}

/** `ws.close(code, reason)`. */
export function close(ws: WebSocket, code?: number, reason?: string): Promise<void> {
  return ws.close(code, reason);
}

/**
 * The address a client on this machine dials: `host:port`, where a wildcard bind (`0.0.0.0`, `::`)
 * reads as loopback (`127.0.0.1`, `[::1]`).
 */
export function serverAddr(server: WebSocketServer): string {
  const address = server.address;
  if (address.startsWith("0.0.0.0:")) return `127.0.0.1:${server.port}`;
  if (address.startsWith("[::]:")) return `[::1]:${server.port}`;
  return address;
}

/** `server.forceClose()`: 1001 to every session, then every socket. */
export function forceClose(server: WebSocketServer): Promise<void> {
  return server.forceClose();
}
