// The server's Request objects. They are core `Request`s (instanceof holds, every field and method is
// there), built without running the constructor so that the parts many handlers never touch are made
// on first use: the RequestContext (an AbortController, an EventTarget and three Maps), the empty
// trailers, and the Headers (three arrays and a lower-cased copy of every name, built from node's
// already validated rawHeaders). That is most of a request's allocations on the hot path. Node has
// already validated what the constructor would check (a non-empty upper-case method and target).
import { Headers, type HTTPVersion, Request, RequestContext } from "@hyperwire/core";

const kHeaders = Symbol("hyperwire.headers");
const kContext = Symbol("hyperwire.context");
const kTrailers = Symbol("hyperwire.trailers");
const kSocket = Symbol("hyperwire.socket");
const kBody = Symbol("hyperwire.body");
const kDone = Symbol("hyperwire.done");

/**
 * Where a request's head and body come from: node:http's `IncomingMessage`, or the HTTP/2 server's
 * per-stream exchange (which has the same fields).
 */
export interface RequestSource {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  /** The header fields as a flat `[name, value, ...]` list, already validated by the parser. */
  readonly rawHeaders: string[];
  /** True once the body arrived in full. */
  readonly complete: boolean;
  readonly destroyed: boolean;
  destroy(): void;
}

/** What the request lives on (the socket, or the HTTP/2 stream): destroyed means the peer left. */
export interface RequestCarrier {
  readonly destroyed: boolean;
}

/** A request made by {@link makeRequest}: its lazily made parts live in symbol slots. */
export interface ServerRequest extends Request {
  [kHeaders]: Headers | undefined;
  [kContext]: RequestContext | undefined;
  [kTrailers]: Headers | undefined;
  [kSocket]: RequestCarrier;
  [kBody]: RequestSource;
  [kDone]: boolean;
}

function contextOf(req: ServerRequest): RequestContext {
  let ctx = req[kContext];
  if (ctx === undefined) {
    ctx = new RequestContext();
    // Made after the peer left in the middle of the exchange: it is born cancelled.
    if (!req[kDone] && req[kSocket].destroyed) ctx.cancel("the peer closed the connection");
    req[kContext] = ctx;
  }
  return ctx;
}

const proto: object = Object.create(Request.prototype, {
  headers: {
    get(this: ServerRequest): Headers {
      let h = this[kHeaders];
      if (h === undefined) {
        h = Headers.fromTrusted(this[kBody].rawHeaders);
        this[kHeaders] = h;
      }
      return h;
    },
    set(this: ServerRequest, value: Headers) {
      this[kHeaders] = value;
    },
    enumerable: true,
    configurable: true,
  },
  context: {
    get(this: ServerRequest): RequestContext {
      return contextOf(this);
    },
    set(this: ServerRequest, value: RequestContext) {
      this[kContext] = value;
    },
    enumerable: true,
    configurable: true,
  },
  trailers: {
    get(this: ServerRequest): Headers {
      let t = this[kTrailers];
      if (t === undefined) {
        t = new Headers();
        this[kTrailers] = t;
      }
      return t;
    },
    set(this: ServerRequest, value: Headers) {
      this[kTrailers] = value;
    },
    enumerable: true,
    configurable: true,
  },
});

const EMPTY = new Uint8Array(0);

/**
 * The constructor behind {@link makeRequest}: a plain function with `proto` as its prototype, so
 * that V8 gives every request its fields in the object itself (one allocation, one hidden class),
 * where `Object.create` and eleven assignments would grow a separate property store several times.
 */
interface ServerRequestConstructor {
  new (incoming: RequestSource, version: HTTPVersion, socket: RequestCarrier): ServerRequest;
}

const ServerRequestObject = function (
  this: ServerRequest,
  incoming: RequestSource,
  version: HTTPVersion,
  socket: RequestCarrier,
): void {
  // Same field order every time, so every request shares one hidden class.
  (this as { method: string }).method = incoming.method!;
  this.target = incoming.url!;
  this[kHeaders] = undefined;
  this.body = EMPTY;
  this.version = version;
  this.url = undefined;
  this[kContext] = undefined;
  this[kTrailers] = undefined;
  this[kSocket] = socket;
  this[kBody] = incoming;
  this[kDone] = false;
} as unknown as ServerRequestConstructor;
ServerRequestObject.prototype = proto as ServerRequest;

/**
 * A `Request` for the head node:http parsed (`method`, `target` and headers as it validated them);
 * `incoming` is where its body arrives.
 */
export function makeRequest(
  incoming: RequestSource,
  version: HTTPVersion,
  socket: RequestCarrier,
): ServerRequest {
  return new ServerRequestObject(incoming, version, socket);
}

/**
 * The connection closed under the request: cancels its context if a handler made one (one made
 * later is born cancelled) and ends a body still arriving. node:http stops feeding a body once its
 * response has ended (a 408 sent mid-body, say), and a read waiting on it would otherwise never end.
 */
export function cancelRequest(req: ServerRequest, message: string): void {
  req[kContext]?.cancel(message);
  const body = req[kBody];
  if (!body.complete && !body.destroyed) body.destroy();
}

/** The response ended: a context made from now on is not cancelled by the connection closing. */
export function finishRequest(req: ServerRequest): void {
  req[kDone] = true;
}
