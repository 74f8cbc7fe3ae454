// Request cookies: the `Cookie` header(s) parsed into name/value pairs by core's `cookies(req)`
// (RFC 6265 §4.2.1, read the lenient way Go's net/http and HTTP.jl do), and a middleware that parses
// them once per request.
import { cookies, type Request } from "@hyperwire/core";
import type { Middleware } from "./middleware.js";

/** One cookie the client sent: its name and its value as sent (not percent-decoded; outer quotes removed). */
export interface RequestCookie {
  readonly name: string;
  readonly value: string;
}

/** The request context metadata key {@link cookieMiddleware} stores the parsed cookies under. */
export const COOKIES_KEY = "cookies";

// What the middleware parsed, by request. Looked up here rather than in the context's metadata
// because reading `req.context` creates a RequestContext on a server request that has none yet.
const cachedCookies = new WeakMap<Request, readonly RequestCookie[]>();

/** The cookies of every `Cookie` header in `req`, in order, by core's parser (as HTTP.jl and Go read them). */
function parseRequestCookies(req: Request): RequestCookie[] {
  return cookies(req).map((c) => ({ name: c.name, value: c.value }));
}

/**
 * The cookies the client sent with `req`, in the order sent (a name may repeat; the first is the
 * most specific one by the browser's ordering). A bare `name` is a cookie with an empty value, as in
 * Go and HTTP.jl; pairs with a name that is not a token or a value no cookie may hold are skipped;
 * this never throws. Uses what {@link cookieMiddleware} stored when it
 * ran, and otherwise parses the headers.
 *
 * ```ts
 * const session = getCookies(req).find((c) => c.name === "session")?.value;
 * ```
 */
export function getCookies(req: Request): readonly RequestCookie[] {
  return cachedCookies.get(req) ?? parseRequestCookies(req);
}

/**
 * Middleware that parses the request's cookies once, before the handler runs, and stores them in
 * `req.context.metadata` under `"cookies"` (HTTP.jl's `req.context[:cookies]`); {@link getCookies}
 * then returns them without parsing again.
 *
 * ```ts
 * const app = cookieMiddleware((req) => new Response(200, { body: `${getCookies(req).length} cookies` }));
 * ```
 */
export const cookieMiddleware: Middleware = (handler) => (req) => {
  const cookies = Object.freeze(parseRequestCookies(req));
  cachedCookies.set(req, cookies);
  req.context.metadata.set(COOKIES_KEY, cookies);
  return handler(req);
};
