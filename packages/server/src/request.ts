// The server's Request objects. They are core `Request`s (instanceof holds, every field and method is
// there), built without running the constructor so that the two parts most handlers never touch are
// made on first use: the RequestContext (an AbortController, an EventTarget and three Maps) and the
// empty trailers. That is most of a request's allocations on the hot path. Node has already validated
// what the constructor would check (a non-empty upper-case method and target).
import type { Socket } from "node:net";
import { Headers, Request, RequestContext } from "@hyperwire/core";

const kContext = Symbol("hyperwire.context");
const kTrailers = Symbol("hyperwire.trailers");
const kSocket = Symbol("hyperwire.socket");
const kDone = Symbol("hyperwire.done");

/** A request made by {@link makeRequest}: its lazily made parts live in symbol slots. */
export interface ServerRequest extends Request {
  [kContext]: RequestContext | undefined;
  [kTrailers]: Headers | undefined;
  [kSocket]: Socket;
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

/** A `Request` for a parsed head (`method` and `target` as node:http validated them). */
export function makeRequest(
  method: string,
  target: string,
  headers: Headers,
  version: "1.0" | "1.1",
  socket: Socket,
): ServerRequest {
  const req = Object.create(proto) as ServerRequest;
  // Same field order every time, so every request shares one hidden class.
  (req as { method: string }).method = method;
  req.target = target;
  req.headers = headers;
  req.body = EMPTY;
  req.version = version;
  req.url = undefined;
  req[kContext] = undefined;
  req[kTrailers] = undefined;
  req[kSocket] = socket;
  req[kDone] = false;
  return req;
}

/** Cancels the request's context if a handler made one (one made later is born cancelled). */
export function cancelRequest(req: ServerRequest, message: string): void {
  req[kContext]?.cancel(message);
}

/** The response ended: a context made from now on is not cancelled by the connection closing. */
export function finishRequest(req: ServerRequest): void {
  req[kDone] = true;
}
