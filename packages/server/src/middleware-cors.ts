// Cross-origin resource sharing (the Fetch standard's CORS protocol): answers preflight requests and
// adds the Access-Control-* headers to the responses of allowed origins.
import { ArgumentError, isToken, type Request, Response } from "@hyperwire/core";
import type { HandlerResult } from "./handler.js";
import { addVary, asResponse, type Middleware } from "./middleware.js";

/** Which origins may read responses: any (`"*"`), one, a list, or a predicate. */
export type CorsOrigins = string | readonly string[] | ((origin: string) => boolean);

/** Options of {@link cors}. */
export interface CorsOptions {
  /**
   * The origins allowed, compared exactly with the request's `Origin` (`"https://example.com"`, no
   * trailing slash); `"*"` (the default) allows any; a function decides per origin.
   */
  origins?: CorsOrigins;
  /** Methods a preflight allows. Default `GET, HEAD, PUT, PATCH, POST, DELETE`. */
  methods?: readonly string[];
  /**
   * Request headers a preflight allows. Default: the ones the preflight asks for
   * (`Access-Control-Request-Headers` is echoed).
   */
  allowedHeaders?: readonly string[];
  /** Response headers the page may read beyond the CORS-safelisted ones. Default none. */
  exposedHeaders?: readonly string[];
  /**
   * Whether the page may send cookies and read the response of a credentialed request
   * (`Access-Control-Allow-Credentials: true`). The origin is then echoed, never `*`. Default `false`.
   */
  credentials?: boolean;
  /** How long (seconds) a browser may cache a preflight answer. Default: no `Access-Control-Max-Age`. */
  maxAge?: number;
}

/** Defaults of {@link CorsOptions}. */
export const CORS_DEFAULTS = Object.freeze({
  origins: "*",
  methods: Object.freeze(["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]),
  exposedHeaders: Object.freeze([] as string[]),
  credentials: false,
});

function tokenList(what: string, list: unknown): string {
  if (!Array.isArray(list)) throw new ArgumentError(`cors ${what} must be an array of strings`);
  for (const item of list) {
    if (typeof item !== "string" || !isToken(item)) {
      throw new ArgumentError(`cors ${what}: ${JSON.stringify(item)} is not a valid token`);
    }
  }
  return list.join(", ");
}

/**
 * True for what a browser sends as `Origin`: printable ASCII without spaces (a serialized origin or
 * `null`). Anything else is never echoed back, so a hostile value cannot reach a response header.
 */
function isSerializedOrigin(origin: string): boolean {
  if (origin.length === 0) return false;
  for (let i = 0; i < origin.length; i++) {
    const c = origin.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

/** The origin check, and whether the answer depends on the origin at all. */
function originCheck(origins: unknown): { allowed: (origin: string) => boolean; any: boolean } {
  if (origins === "*") return { allowed: () => true, any: true };
  if (typeof origins === "string") {
    if (origins === "") throw new ArgumentError("cors origins must not be empty");
    return { allowed: (o) => o === origins, any: false };
  }
  if (typeof origins === "function") {
    const f = origins as (origin: string) => boolean;
    return { allowed: (o) => f(o) === true, any: false };
  }
  if (Array.isArray(origins)) {
    for (const o of origins) {
      if (typeof o !== "string" || o === "") {
        throw new ArgumentError(`cors origins: ${JSON.stringify(o)} is not an origin`);
      }
    }
    if (origins.includes("*")) return { allowed: () => true, any: true };
    const set = new Set<string>(origins as string[]);
    return { allowed: (o) => set.has(o), any: false };
  }
  throw new ArgumentError("cors origins must be a string, an array of strings or a function");
}

/**
 * CORS middleware. A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is
 * answered here with 204 and the `Access-Control-Allow-*` headers, without calling the handler. Other
 * requests from an allowed origin reach the handler and its response gets
 * `Access-Control-Allow-Origin` (plus `-Credentials` and `-Expose-Headers` when configured). An origin
 * that is not allowed gets no CORS headers (the browser then refuses the page access; a preflight is
 * still answered 204). Whenever the answer depends on `Origin`, the response says `Vary: Origin`.
 *
 * Bad options throw `ArgumentError` (a method or header name that is not a token, a negative maxAge).
 *
 * ```ts
 * const api = cors({ origins: ["https://app.example"], credentials: true, maxAge: 600 })(handler);
 * ```
 */
export function cors(options: CorsOptions = {}): Middleware {
  const { allowed, any } = originCheck(options.origins ?? CORS_DEFAULTS.origins);
  const methods = tokenList("methods", options.methods ?? CORS_DEFAULTS.methods);
  const allowHeaders =
    options.allowedHeaders === undefined ? undefined : tokenList("allowedHeaders", options.allowedHeaders);
  const expose = tokenList("exposedHeaders", options.exposedHeaders ?? CORS_DEFAULTS.exposedHeaders);
  const credentials = options.credentials ?? CORS_DEFAULTS.credentials;
  if (typeof credentials !== "boolean") throw new ArgumentError("cors credentials must be a boolean");
  const maxAge = options.maxAge;
  if (maxAge !== undefined && (!Number.isSafeInteger(maxAge) || maxAge < 0)) {
    throw new ArgumentError(`cors maxAge must be a non-negative integer of seconds, got ${maxAge}`);
  }
  // "*" cannot be combined with credentials (the browser refuses it), so the origin is echoed then.
  const wildcard = any && !credentials;
  const varies = !wildcard;

  /** The Access-Control-Allow-Origin value for this request, or undefined for none. */
  const allowOrigin = (origin: string | null): string | undefined => {
    if (origin === null) return undefined;
    if (wildcard) return "*";
    if (!isSerializedOrigin(origin)) return undefined;
    let ok = false;
    try {
      ok = allowed(origin);
    } catch {
      // A predicate that throws has not allowed the origin.
      ok = false;
    }
    return ok ? origin : undefined;
  };

  const preflight = (req: Request, origin: string): Response => {
    const res = new Response(204);
    const value = allowOrigin(origin);
    if (varies) addVary(res, "Origin");
    if (value === undefined) return res;
    const h = res.headers;
    h.set("Access-Control-Allow-Origin", value);
    if (credentials) h.set("Access-Control-Allow-Credentials", "true");
    h.set("Access-Control-Allow-Methods", methods);
    if (allowHeaders !== undefined) {
      if (allowHeaders !== "") h.set("Access-Control-Allow-Headers", allowHeaders);
    } else {
      const asked = req.headers.get("access-control-request-headers");
      addVary(res, "Access-Control-Request-Headers");
      if (asked !== null && asked.trim() !== "") h.set("Access-Control-Allow-Headers", asked);
    }
    if (maxAge !== undefined) h.set("Access-Control-Max-Age", String(maxAge));
    return res;
  };

  const decorate = (result: HandlerResult, origin: string | null): HandlerResult => {
    const res = asResponse(result);
    if (res === undefined) return result;
    if (varies) addVary(res, "Origin");
    const value = allowOrigin(origin);
    if (value === undefined) return res;
    const h = res.headers;
    h.set("Access-Control-Allow-Origin", value);
    if (credentials) h.set("Access-Control-Allow-Credentials", "true");
    if (expose !== "") h.set("Access-Control-Expose-Headers", expose);
    return res;
  };

  return (handler) => (req) => {
    const origin = req.headers.get("origin");
    if (origin !== null && req.method === "OPTIONS" && req.headers.has("access-control-request-method")) {
      return preflight(req, origin);
    }
    const result = handler(req);
    if (result instanceof Promise) return result.then((r) => decorate(r, origin));
    return decorate(result, origin);
  };
}
