import { ArgumentError, type Request, type Response, toWebRequest } from "@hyperwire/core";

/** What a request handler may return: our `Response` or a WHATWG one (converted, body streamed). */
export type HandlerResult = Response | globalThis.Response;

/**
 * A request handler: gets the request with its body buffered, returns the response.
 *
 * ```ts
 * const hello: RequestHandler = (req) => new Response(200, { body: `hello ${req.target}` });
 * ```
 */
export type RequestHandler = (req: Request) => HandlerResult | Promise<HandlerResult>;

/** An object that handles requests (a `Router`, say). */
export interface RequestHandlerObject {
  handle(req: Request): HandlerResult | Promise<HandlerResult>;
}

/** An object with a WHATWG `fetch(request)` method (a Hono app, say). */
export interface FetchHandlerObject {
  fetch(request: globalThis.Request): globalThis.Response | Promise<globalThis.Response>;
}

/** Anything {@link serve} accepts as a handler. */
export type Handler = RequestHandler | RequestHandlerObject | FetchHandlerObject;

/**
 * The handler as a plain function. A `fetch` object gets a WHATWG `Request` whose URL is built from
 * `scheme`, the `Host` header and the target.
 */
export function toRequestHandler(handler: Handler, scheme: string): RequestHandler {
  if (typeof handler === "function") return handler;
  if (handler !== null && typeof handler === "object") {
    if (typeof (handler as RequestHandlerObject).handle === "function") {
      const h = handler as RequestHandlerObject;
      return (req) => h.handle(req);
    }
    if (typeof (handler as FetchHandlerObject).fetch === "function") {
      const h = handler as FetchHandlerObject;
      return (req) => h.fetch(toWebRequest(req, `${scheme}://${req.headers.get("host") ?? "localhost"}`));
    }
  }
  throw new ArgumentError(
    "handler must be a function, an object with handle(req), or one with fetch(request)",
  );
}
