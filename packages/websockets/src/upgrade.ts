// WebSockets on an ordinary hyperwire server: `upgrade(req, handler)` inside a `serve` handler takes
// the connection over (a server mixing HTTP and WebSocket routes on one port).
import type { TLSSocket } from "node:tls";
import { type Request, Response } from "@hyperwire/core";
import { takeUpgrade } from "@hyperwire/server";
import type { WebSocketServer as WsServer } from "ws";
import {
  type AcceptOptions,
  refusal,
  refuse,
  runSession,
  type SessionHandler,
  wsServerFor,
} from "./listen.js";
import { WebSocket } from "./websocket.js";

const servers = new WeakMap<AcceptOptions, WsServer>();
const DEFAULT_OPTIONS: AcceptOptions = Object.freeze({});

/**
 * Upgrades a request to a WebSocket session run by `handler`, and returns the `Response` your
 * handler must return. A request that is not a WebSocket upgrade gets a 426 response to return
 * instead; a refused handshake (400, or 403 for a foreign Origin) is answered on the connection.
 *
 * ```ts
 * await serve((req) => {
 *   if (req.target === "/ws") return upgrade(req, async (ws) => { for await (const m of ws) await ws.send(m); });
 *   return new Response(200, { body: "hello" });
 * }, { port: 0 });
 * ```
 */
export function upgrade(
  req: Request,
  handler: SessionHandler,
  options: AcceptOptions = DEFAULT_OPTIONS,
): Response {
  let session: WebSocket | undefined;
  const taken = takeUpgrade(req, {
    // The HTTP server shuts down: a graceful close says 1001 to the session, a forced one drops it.
    onClose: (force) => {
      if (session === undefined) taken?.socket.destroy();
      else if (force) session.terminate();
      else session.close(1001, "server shutting down").catch(() => {});
    },
  });
  if (taken === null) {
    return new Response(426, {
      headers: { Upgrade: "websocket", Connection: "Upgrade", "Content-Type": "text/plain" },
      body: "websocket upgrade required\n",
    });
  }
  const { incoming, socket, head } = taken;
  const secure = (socket as TLSSocket).encrypted === true;
  let refused: [number, string] | null;
  try {
    refused = refusal(incoming, secure, options.checkOrigin);
  } catch {
    refused = [500, "origin check failed"];
  }
  if (refused !== null) {
    refuse(socket, refused[0], refused[1]);
  } else {
    let wss = servers.get(options);
    if (wss === undefined) {
      wss = wsServerFor(options);
      servers.set(options, wss);
    }
    wss.handleUpgrade(incoming, socket, head, (raw) => {
      session = new WebSocket(raw, incoming.url ?? "/", options);
      void runSession(session, handler);
    });
  }
  return new Response(101);
}
