// Request cookies: the `Cookie` header(s) parsed into name/value pairs (RFC 6265 §4.2.1, read the
// lenient way browsers and Go's net/http do), and a middleware that parses them once per request.
import { isToken, type Request } from "@hyperwire/core";
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

/**
 * The cookie value without its optional surrounding quotes, or `undefined` when it has a byte no
 * cookie value may have. Spaces and commas are accepted inside (browsers send them), as in Go.
 */
function cookieValue(raw: string): string | undefined {
  let value = raw;
  if (value.length >= 2 && value.charCodeAt(0) === 0x22 && value.charCodeAt(value.length - 1) === 0x22) {
    value = value.slice(1, -1);
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f || c === 0x22 || c === 0x3b || c === 0x5c) return undefined;
  }
  return value;
}

function parseInto(header: string, out: RequestCookie[]): void {
  for (const part of header.split(";")) {
    const pair = part.trim();
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    // A pair without "=" is not a cookie we can name; skipped like any other malformed pair.
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    // RFC 6265 cookie-name: an RFC 9110 token.
    if (!isToken(name)) continue;
    const value = cookieValue(pair.slice(eq + 1).trim());
    if (value !== undefined) out.push({ name, value });
  }
}

/** The cookies of every `Cookie` header in `req`, in order; malformed pairs skipped. Never throws. */
function parseRequestCookies(req: Request): RequestCookie[] {
  const out: RequestCookie[] = [];
  // HTTP/2 clients may send one Cookie field per cookie; HTTP/1 ones join them with "; ".
  for (const header of req.headers.getAll("cookie")) parseInto(header, out);
  return out;
}

/**
 * The cookies the client sent with `req`, in the order sent (a name may repeat; the first is the
 * most specific one by the browser's ordering). Pairs that are not `name=value` with a token name and
 * a valid value are skipped; this never throws. Uses what {@link cookieMiddleware} stored when it
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
