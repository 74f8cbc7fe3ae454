// A ws WebSocket on an HTTP/2 stream (RFC 8441), for both sides (open-h2.ts for the client,
// upgrade.ts for the server), and ws's permessage-deflate negotiation done by hand, since the
// handshake is not ws's own here.
import http2 from "node:http2";
import type { Duplex } from "node:stream";
import * as wsModule from "ws";
import { WebSocket as WsSocket } from "ws";

const { NGHTTP2_CANCEL } = http2.constants;

/** The extension name both sides negotiate. */
export const DEFLATE = "permessage-deflate";

/** ws's permessage-deflate object (not declared by @types/ws). */
export interface Deflate {
  offer(): Record<string, unknown>;
  accept(configurations: unknown[]): Record<string, unknown>;
  readonly params: Record<string, unknown> | null;
}

interface WsExtras {
  PerMessageDeflate: new (options: { isServer: boolean; maxPayload: number }) => Deflate;
  extension: {
    parse(header: string): Record<string, unknown[]>;
    format(extensions: Record<string, unknown>): string;
  };
}

// ws's public entry exports its permessage-deflate class and the Sec-WebSocket-Extensions parser
// (index.js and wrapper.mjs both do); @types/ws does not declare them.
const { PerMessageDeflate, extension } = wsModule as unknown as WsExtras;

/** A new permessage-deflate negotiation for one side, limited to `maxPayload` bytes per message. */
export function newDeflate(isServer: boolean, maxPayload: number): Deflate {
  return new PerMessageDeflate({ isServer, maxPayload });
}

/** Parses a Sec-WebSocket-Extensions value (throws on a malformed one). */
export function parseExtensions(header: string): Record<string, unknown[]> {
  return extension.parse(header);
}

/** The Sec-WebSocket-Extensions value for an accepted permessage-deflate. */
export function formatDeflate(params: Record<string, unknown>): string {
  return extension.format({ [DEFLATE]: [params] });
}

/** ws's fields we set on a socket made for a stream (see {@link wsOnStream}). */
interface WsInternals {
  _isServer: boolean;
  _extensions: Record<string, Deflate>;
  setSocket(socket: Duplex, head: Buffer, options: Record<string, unknown>): void;
}

/** What ws gives every socket it makes itself (its WebSocketServer's and its client's defaults). */
const WS_OPTIONS = Object.freeze({ autoPong: true, maxPendingAutoPongs: 60, closeTimeout: 30_000 });
const EMPTY = Buffer.alloc(0);

/**
 * Resets the stream with CANCEL where ws would destroy it (terminate, a close that timed out): RFC
 * 8441 §5.1 maps an abrupt close to RST_STREAM(CANCEL), and node's plain destroy() sends NO_ERROR.
 * Once the stream is closed, the prototype's destroy() runs as usual.
 */
function destroyWithCancel(this: http2.Http2Stream, err?: Error | null): http2.Http2Stream {
  if (err == null && !this.closed && !this.destroyed) {
    this.close(NGHTTP2_CANCEL);
    return this;
  }
  delete (this as Partial<http2.Http2Stream>).destroy;
  return this.destroy(err ?? undefined);
}

/**
 * A ws WebSocket running on an HTTP/2 stream, in the client role (masked frames out) or the server
 * role. This is where we reach into ws: a socket made with a `null` address is in the server role
 * (what ws's own WebSocketServer does), `_isServer = false` turns it into a client, an accepted
 * permessage-deflate goes into `_extensions` before `setSocket` (as ws's handshakes do), and
 * `setSocket` takes any Duplex (it guards the socket-only calls). The stream ends (END_STREAM) after
 * the close handshake and is reset with CANCEL when the WebSocket is dropped.
 */
export function wsOnStream(
  stream: http2.Http2Stream,
  role: "client" | "server",
  maxPayload: number,
  maxFragments: number,
  deflate: Deflate | undefined,
): WsSocket {
  const raw = new (
    WsSocket as unknown as new (
      address: null,
      protocols: undefined,
      options: object,
    ) => WsSocket
  )(null, undefined, WS_OPTIONS);
  const internals = raw as unknown as WsInternals;
  if (role === "client") internals._isServer = false;
  if (deflate !== undefined) internals._extensions[DEFLATE] = deflate;
  (stream as { destroy: unknown }).destroy = destroyWithCancel;
  internals.setSocket(stream, EMPTY, {
    allowSynchronousEvents: true,
    maxBufferedChunks: 256 * 1024,
    maxFragments,
    maxPayload,
    skipUTF8Validation: false,
  });
  return raw;
}
