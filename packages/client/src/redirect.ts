// The redirect policy: whether a 3xx is followed, and the method, body and headers of the next hop.
import { ArgumentError, Headers, ProtocolError, type Request, type Response } from "@hyperwire/core";

/** Statuses that are followed. */
export const FOLLOWED_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Methods `redirectMethod` may name (besides `'same'`). */
export const REDIRECT_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "POST",
  "PUT",
  "DELETE",
  "HEAD",
  "OPTIONS",
  "PATCH",
  "QUERY",
]);

/** The defaults of the redirect options, in one place. */
export const REDIRECT_DEFAULTS = Object.freeze({
  redirect: true,
  /** `Client.maxRedirects`' default. */
  maxRedirects: 10,
  forwardHeaders: true,
});

/** `(response, request, location) => boolean`: `false` returns the 3xx instead of following it. */
export type CheckRedirect = (response: Response<Uint8Array>, request: Request, location: string) => boolean;

/** The redirect settings of one call, checked once. */
export interface RedirectPolicy {
  /** Redirects followed at most; `0` returns every 3xx. */
  readonly limit: number;
  /** For 301/302: `'same'` keeps the method, a method name replaces it, `undefined` is the default rule. */
  readonly method: string | undefined;
  readonly forwardHeaders: boolean;
  readonly check: CheckRedirect | undefined;
}

/** What the request options say about redirects. */
export interface RedirectOptionsIn {
  redirect?: boolean | undefined;
  redirectLimit?: number | undefined;
  redirectMethod?: string | undefined;
  forwardHeaders?: boolean | undefined;
}

/** Checks a redirect limit (an integer ≥ 0). */
export function checkRedirectLimit(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new ArgumentError(`${name} must be an integer ≥ 0, got ${String(v)}`);
  }
  return v;
}

/** Checks the redirect options against the client's `maxRedirects` and `checkRedirect`. Throws `ArgumentError`. */
export function redirectPolicy(
  o: RedirectOptionsIn,
  maxRedirects: number,
  check: CheckRedirect | undefined,
): RedirectPolicy {
  const redirect = o.redirect ?? REDIRECT_DEFAULTS.redirect;
  if (typeof redirect !== "boolean") throw new ArgumentError("redirect must be a boolean");
  const limit =
    o.redirectLimit === undefined ? maxRedirects : checkRedirectLimit("redirectLimit", o.redirectLimit);
  let method = o.redirectMethod;
  if (method !== undefined) {
    if (typeof method !== "string") throw new ArgumentError("redirectMethod must be 'same' or a method name");
    if (method !== "same") {
      method = method.toUpperCase();
      if (!REDIRECT_METHODS.has(method)) {
        throw new ArgumentError(
          `redirectMethod must be 'same' or one of ${[...REDIRECT_METHODS].join(", ")}, got ${JSON.stringify(o.redirectMethod)}`,
        );
      }
    }
  }
  const forwardHeaders = o.forwardHeaders ?? REDIRECT_DEFAULTS.forwardHeaders;
  if (typeof forwardHeaders !== "boolean") throw new ArgumentError("forwardHeaders must be a boolean");
  return { limit: redirect ? limit : 0, method, forwardHeaders, check };
}

/**
 * The URL a 3xx points to, or `null` when it is not followed: not a followed status, no
 * `Location`, or a `Location` that is not a valid http(s) URL (the 3xx is then returned as the
 * answer). A relative `Location` is resolved against `from`.
 */
export function locationOf(status: number, headers: Headers, from: string): URL | null {
  if (!FOLLOWED_STATUSES.has(status)) return null;
  const location = headers.get("location");
  if (location === null || location === undefined || location.trim() === "") return null;
  let next: URL;
  try {
    next = new URL(location.trim(), from);
  } catch {
    return null;
  }
  if ((next.protocol !== "http:" && next.protocol !== "https:") || next.hostname === "") return null;
  return next;
}

/**
 * The method of the next hop: 303 turns everything but HEAD into GET; 301/302 turn POST into GET
 * (as browsers and fetch do; HEAD, QUERY, PUT and the rest are kept) unless `redirectMethod` says
 * otherwise; 307/308 keep the method.
 */
export function nextMethod(status: number, method: string, policy: RedirectPolicy): string {
  if (status === 303) return method === "HEAD" ? "HEAD" : "GET";
  if (status === 301 || status === 302) {
    if (policy.method === "same") return method;
    if (policy.method !== undefined) return policy.method;
    return method === "POST" ? "GET" : method;
  }
  return method;
}

/** True when `a` and `b` differ in scheme, host or port (credentials must not follow). */
export function crossOrigin(a: URL, b: URL): boolean {
  return a.protocol !== b.protocol || a.hostname !== b.hostname || effectivePort(a) !== effectivePort(b);
}

function effectivePort(u: URL): string {
  return u.port !== "" ? u.port : u.protocol === "https:" ? "443" : "80";
}

// Headers that describe the body: dropped with it (fetch's "request-body-header names").
const BODY_HEADERS = [
  "content-type",
  "content-length",
  "content-encoding",
  "content-language",
  "content-location",
  "transfer-encoding",
];
// Credentials that must not reach another origin.
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];

/**
 * The headers of the next hop: the previous hop's (or none with `forwardHeaders: false`), without
 * `Host` (re-derived from the new URL), without body headers when the body is dropped, without
 * credentials across origins, and with `Referer` set to the previous URL unless that would leak an
 * https URL to http.
 */
export function nextHeaders(
  previous: Headers,
  from: URL,
  to: URL,
  keepBody: boolean,
  forward: boolean,
  implicit: readonly (readonly [string, string])[],
): Headers {
  if (!forward) {
    const h = new Headers();
    for (const [k, v] of implicit) h.set(k, v);
    return h;
  }
  const h = new Headers(previous);
  h.delete("host");
  if (!keepBody) for (const name of BODY_HEADERS) h.delete(name);
  if (crossOrigin(from, to)) for (const name of CREDENTIAL_HEADERS) h.delete(name);
  if (from.protocol === "https:" && to.protocol === "http:") h.delete("referer");
  else h.set("Referer", refererOf(from));
  return h;
}

/** A URL as a Referer: no userinfo, no fragment. */
function refererOf(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname}${u.search}`;
}

/** Runs the client's `checkRedirect`; anything but a boolean is a `ProtocolError`. */
export function allowedByCheck(
  policy: RedirectPolicy,
  response: Response<Uint8Array>,
  request: Request,
  location: string,
): boolean {
  if (policy.check === undefined) return true;
  const verdict: unknown = policy.check(response, request, location);
  if (typeof verdict !== "boolean") {
    throw new ProtocolError(`checkRedirect must return a boolean, got ${typeof verdict}`);
  }
  return verdict;
}
