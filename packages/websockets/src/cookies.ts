// Cookies on each hop of a WebSocket handshake, with the HTTP client's meaning: which jar applies
// (the call's, else the default client's, the one `get`/`post` use), the Cookie header of a hop,
// and storing the Set-Cookie fields of every handshake response (3xx, refusal, 101). The HTTP/1.1
// handshake (open.ts) and the HTTP/2 one call the same functions.
import type { CookieJar } from "@hyperwire/client";
import { ArgumentError, type Headers } from "@hyperwire/core";
import { httpClient } from "./client.js";

/** The cookie options of a handshake, as `OpenOptions` has them. */
export interface HandshakeCookieOptions {
  /** `true` (default): the jar's cookies. `false`: no jar. A record: extra cookies plus the jar's. */
  cookies?: boolean | Record<string, string>;
  /** The jar; `null`: none. Default: the default client's jar. */
  cookieJar?: CookieJar | null;
}

/**
 * The cookie state of one handshake across its hops. Made once by {@link handshakeCookies}; a
 * redirect updates it with {@link redirectCookies}.
 */
export interface HandshakeCookies {
  /** The jar cookies are read from and stored in; `null` with `cookies: false` or `cookieJar: null`. */
  readonly jar: CookieJar | null;
  /** The call's record; dropped after a cross-origin redirect. */
  callCookies: Record<string, string> | undefined;
  /** The caller's own Cookie header; dropped after a cross-origin redirect or with `forwardHeaders: false`. */
  manual: string | null;
}

/**
 * Checks the `cookies` and `cookieJar` options and picks the jar: none with `cookies: false`, else
 * `cookieJar` when given (`null`: none), else the default client's jar. `headers` are the caller's
 * handshake headers; their Cookie fields become the manual header merged on each hop. A bad option
 * or a bad cookie in the record is an `ArgumentError` ("invalid cookie ..."), before anything is sent.
 *
 * ```ts
 * const state = handshakeCookies({ cookies: { theme: "dark" } }, new Headers({ Cookie: "lang=en" }));
 * ```
 */
export function handshakeCookies(options: HandshakeCookieOptions, headers: Headers): HandshakeCookies {
  // The HTTP client's choice and checks of the two options, with the default client's jar.
  const { cookieHeader, getDefaultClient, jarFor } = httpClient();
  const jar = jarFor(getDefaultClient(), options);
  const cookies = options.cookies;
  const callCookies = typeof cookies === "object" ? cookies : undefined;
  if (callCookies !== undefined) {
    // The client's rules for a record, checked now so that a bad cookie fails before any dial.
    try {
      cookieHeader(null, CHECK_URL, callCookies, null);
    } catch (e) {
      if (!(e instanceof ArgumentError)) throw e;
      throw new ArgumentError(`invalid cookie: ${e.message}`, { cause: e });
    }
  }
  const fields = headers.getAll("cookie");
  return { jar, callCookies, manual: fields.length === 0 ? null : fields.join("; ") };
}

/**
 * The Cookie header of the hop to `url` (`ws:`/`wss:` are matched as `http:`/`https:`, so Secure
 * cookies go only to `wss:`): the manual header merged with the jar's cookies for `url` and the
 * record, de-duplicated by name (the record wins over the jar, the jar over the manual header).
 * `null`: send no Cookie header.
 *
 * ```ts
 * const cookie = hopCookieHeader(state, new URL("wss://example.com/chat")); // "sid=1" or null
 * if (cookie === null) headers.delete("cookie"); else headers.set("Cookie", cookie);
 * ```
 */
export function hopCookieHeader(state: HandshakeCookies, url: URL): string | null {
  return httpClient().cookieHeader(state.jar, httpUrl(url), state.callCookies, state.manual);
}

/**
 * Stores the Set-Cookie fields of a handshake response from `url` (a 3xx, a refusal or the 101) in
 * `jar`; `setCookie` is the response's field values as node gives them (`IncomingMessage.headers`
 * or HTTP/2 headers). Nothing for a `null` jar; a field the rules refuse is ignored, as browsers do.
 *
 * ```ts
 * storeHandshakeCookies(state.jar, url, res.headers["set-cookie"]);
 * ```
 */
export function storeHandshakeCookies(
  jar: CookieJar | null,
  url: URL,
  setCookie: string | readonly string[] | undefined,
): void {
  if (jar === null || setCookie === undefined) return;
  const target = httpUrl(url);
  const fields = typeof setCookie === "string" ? [setCookie] : setCookie;
  for (const field of fields) {
    try {
      jar.setCookie(field, target);
    } catch {
      // A field the cookie library cannot handle is ignored like any other refused cookie.
    }
  }
}

/**
 * Updates the state for a redirect from `from` to `to`: across origins the record and the manual
 * header are dropped; with `forwardHeaders` false the manual header is dropped (the caller's
 * headers are not forwarded). The jar's cookies are computed again for the new hop.
 *
 * ```ts
 * redirectCookies(state, new URL("ws://a.example/"), new URL("ws://b.example/"), true);
 * ```
 */
export function redirectCookies(state: HandshakeCookies, from: URL, to: URL, forwardHeaders: boolean): void {
  if (from.origin !== to.origin) {
    state.callCookies = undefined;
    state.manual = null;
  } else if (!forwardHeaders) state.manual = null;
}

/** Any http URL: the jar is not consulted while a record is only being checked. */
const CHECK_URL = new URL("http://localhost/");

/** The http(s) URL cookies are matched against for a ws(s) URL. */
function httpUrl(url: URL): URL {
  if (url.protocol !== "ws:" && url.protocol !== "wss:") return url;
  const u = new URL(url.href);
  u.protocol = url.protocol === "wss:" ? "https:" : "http:";
  return u;
}
