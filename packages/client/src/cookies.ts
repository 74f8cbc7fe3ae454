// Cookies on each hop of a request: which jar applies, the Cookie header to send, and storing the
// response's Set-Cookie fields. The request pipeline calls these three per hop (redirects included).
import { ArgumentError, type Headers, isToken } from "@hyperwire/core";
import type { Client } from "./client.js";
import type { CookieJar } from "./cookie-jar.js";
import type { RequestOptions } from "./options.js";

/**
 * The jar a request uses: none with `cookies: false`; else the call's `cookieJar` (`null`: none);
 * else the client's (`null` when the client was made with `cookieJar: null`). Checks the two
 * options and throws `ArgumentError` for anything else.
 *
 * ```ts
 * const jar = jarFor(client, { cookies: { session: "abc" } }); // client.defaults.cookieJar
 * ```
 */
export function jarFor(
  client: Client,
  options: Pick<RequestOptions, "cookies" | "cookieJar">,
): CookieJar | null {
  const cookies = options.cookies;
  if (cookies !== undefined && typeof cookies !== "boolean" && !isPlainRecord(cookies)) {
    throw new ArgumentError("cookies must be true, false or an object of cookie names to values");
  }
  const own = options.cookieJar;
  if (own !== undefined && own !== null && !isJar(own)) {
    throw new ArgumentError("cookieJar must be a CookieJar or null");
  }
  if (cookies === false) return null;
  if (own !== undefined) return own;
  return client.defaults.cookieJar;
}

/**
 * The `Cookie` header value of one hop: the caller's own `Cookie` header (`manual`) merged with the
 * jar's cookies for `url` and the call's `cookies` record, de-duplicated by name (the record wins
 * over the jar, the jar over the manual header). `url` is `http:` or `https:` (the jar matches no
 * other scheme). `null` when there is nothing to send. Without a jar and without a record (the
 * `cookies: false` case), the manual header is returned verbatim. A bad record is an `ArgumentError`.
 *
 * `manual` must be the caller's header, not one this function built for an earlier hop: that one
 * holds the earlier host's jar cookies.
 *
 * ```ts
 * cookieHeader(jar, new URL("https://example.com/"), { theme: "dark" }, "lang=en"); // "lang=en; sid=1; theme=dark"
 * ```
 */
export function cookieHeader(
  jar: CookieJar | null,
  url: URL,
  callCookies: Record<string, string> | undefined,
  manual: string | null,
): string | null {
  const fromJar = jar === null ? "" : jar.cookieHeader(url);
  if (callCookies === undefined && fromJar === "") return manual === "" ? null : manual;
  const call: [string, string][] = [];
  const winners = new Set<string>();
  if (callCookies !== undefined) {
    for (const name of Object.keys(callCookies)) {
      const value = callCookies[name];
      checkCookie(name, value);
      call.push([name, value as string]);
      winners.add(name);
    }
  }
  // The jar's own list may repeat a name (one per matching path, most specific first): all of them
  // are sent, as a browser does, unless the call's record names it.
  let jarPart = "";
  if (fromJar !== "") {
    const jarNames: string[] = [];
    for (const pair of fromJar.split("; ")) {
      const eq = pair.indexOf("=");
      const name = eq < 0 ? pair : pair.slice(0, eq);
      jarNames.push(name);
      if (!winners.has(name)) jarPart += jarPart === "" ? pair : `; ${pair}`;
    }
    for (const name of jarNames) winners.add(name);
  }
  let out = "";
  if (manual !== null && manual !== "") {
    const seen = new Set<string>();
    for (const raw of manual.split(";")) {
      const pair = raw.trim();
      if (pair === "") continue;
      const eq = pair.indexOf("=");
      const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
      if (winners.has(name) || seen.has(name)) continue;
      seen.add(name);
      out += out === "" ? pair : `; ${pair}`;
    }
  }
  if (jarPart !== "") out += out === "" ? jarPart : `; ${jarPart}`;
  for (const [name, value] of call) out += out === "" ? `${name}=${value}` : `; ${name}=${value}`;
  return out === "" ? null : out;
}

/**
 * Stores every `Set-Cookie` field of a response from `url` in `jar` (nothing for a `null` jar). A
 * field the rules refuse or cannot parse is ignored, as browsers do.
 *
 * ```ts
 * storeCookies(jar, new URL(res.url), res.headers);
 * ```
 */
export function storeCookies(jar: CookieJar | null, url: URL, headers: Headers): void {
  if (jar === null) return;
  const fields = headers.getAll("set-cookie");
  for (let i = 0; i < fields.length; i++) {
    try {
      jar.setCookie(fields[i]!, url);
    } catch {
      // A field the cookie library cannot handle is ignored like any other refused cookie.
    }
  }
}

/** A cookie given in the `cookies` record: a token name and a value of RFC 6265 cookie-octets (quotes allowed around it). */
function checkCookie(name: string, value: unknown): void {
  if (!isToken(name)) {
    throw new ArgumentError(`cookie name ${JSON.stringify(name)} is not a token (RFC 6265 §4.1.1)`);
  }
  if (typeof value !== "string") {
    throw new ArgumentError(`the value of cookie ${name} must be a string, got ${typeof value}`);
  }
  const inner =
    value.length >= 2 && value.charCodeAt(0) === 0x22 && value.charCodeAt(value.length - 1) === 0x22
      ? value.slice(1, -1)
      : value;
  for (let i = 0; i < inner.length; i++) {
    const c = inner.charCodeAt(i);
    // cookie-octet: visible US-ASCII except DQUOTE, comma, semicolon and backslash.
    if (c <= 0x20 || c >= 0x7f || c === 0x22 || c === 0x2c || c === 0x3b || c === 0x5c) {
      throw new ArgumentError(
        `the value of cookie ${name} has a character a cookie value may not hold (${JSON.stringify(inner[i])}); percent-encode it`,
      );
    }
  }
}

function isPlainRecord(v: unknown): v is Record<string, string> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isJar(v: unknown): v is CookieJar {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as CookieJar).cookieHeader === "function" &&
    typeof (v as CookieJar).setCookie === "function"
  );
}
