// The client's cookie jar: RFC 6265bis storage and retrieval on top of tough-cookie (public-suffix
// list, domain and path matching, expiry, ordering, JSON), plus the 6265bis rules tough-cookie
// leaves out or applies differently: a public-suffix Domain equal to the host makes a host-only
// cookie, the `__Secure-`/`__Host-` prefixes are matched case-insensitively, a plain-http response
// cannot replace a Secure cookie, the size limits of §5.6/§5.7, and only http/https URLs.
import { ArgumentError } from "@hyperwire/core";
import {
  Cookie,
  canonicalDomain,
  domainMatch,
  getPublicSuffix,
  MemoryCookieStore,
  pathMatch,
  type SerializedCookie,
  type SerializedCookieJar,
  CookieJar as ToughJar,
} from "tough-cookie";

/** One cookie held by a {@link CookieJar}, as {@link CookieJar.cookies} lists it. */
export interface StoredCookie {
  readonly name: string;
  readonly value: string;
  /** The host (host-only cookies) or the domain the cookie was set for, lower case, no leading dot. */
  readonly domain: string;
  readonly path: string;
  /** True when the cookie goes back only to the exact host that set it (no `Domain` attribute). */
  readonly hostOnly: boolean;
  /** Sent only over https. */
  readonly secure: boolean;
  /** Not readable by scripts in a browser; kept and sent like any other cookie here. */
  readonly httpOnly: boolean;
  /** The `SameSite` attribute as set (lower case), or `undefined` when absent. Kept, not enforced. */
  readonly sameSite: "strict" | "lax" | "none" | undefined;
  /** When the cookie expires, or `undefined` for a session cookie (kept until the jar is cleared). */
  readonly expires: Date | undefined;
  readonly creation: Date;
}

/** What {@link CookieJar.toJSON} returns and {@link CookieJar.fromJSON} takes (tough-cookie's serialized jar). */
export type CookieJarData = SerializedCookieJar | { readonly cookies: readonly SerializedCookie[] };

/** RFC 6265bis §5.6: a cookie whose name and value together exceed this many bytes is ignored. */
const MAX_NAME_VALUE_BYTES = 4096;
/** RFC 6265bis §5.6: an attribute value longer than this many bytes is ignored (the attribute, not the cookie). */
const MAX_ATTRIBUTE_BYTES = 1024;

function newToughJar(): ToughJar {
  return new ToughJar(new MemoryCookieStore(), {
    rejectPublicSuffixes: true,
    looseMode: false,
    prefixSecurity: "strict",
    // Secure means https, as in Go and HTTP.jl: loopback http is not a secure origin for a client
    // that is not a browser.
    allowSecureOnLocal: false,
  });
}

function isWebUrl(u: URL): boolean {
  return u.protocol === "http:" || u.protocol === "https:";
}

function toUrl(url: string | URL): URL {
  if (url instanceof URL) return url;
  if (typeof url !== "string") throw new ArgumentError("url must be a string or a URL");
  try {
    return new URL(url);
  } catch (e) {
    throw new ArgumentError(`invalid URL ${JSON.stringify(url)}`, { cause: e });
  }
}

function stored(c: Cookie): StoredCookie {
  const expiry = c.expiryTime();
  return {
    name: c.key,
    value: c.value,
    domain: c.domain ?? "",
    path: c.path ?? "/",
    hostOnly: c.hostOnly === true,
    secure: c.secure,
    httpOnly: c.httpOnly,
    sameSite:
      c.sameSite === "strict" || c.sameSite === "lax" || c.sameSite === "none" ? c.sameSite : undefined,
    expires: expiry === undefined || expiry === Number.POSITIVE_INFINITY ? undefined : new Date(expiry),
    creation: c.creation instanceof Date ? c.creation : new Date(0),
  };
}

/**
 * An in-memory cookie jar following RFC 6265bis: host-only and domain cookies, a `Domain` that is a
 * public suffix (`co.uk`, `github.io`) refused unless it is the host itself, Secure cookies stored
 * and sent only over https, the `__Secure-` and `__Host-` prefixes, `Max-Age`/`Expires`, path
 * matching, replacement by (name, domain, path), and cookies sent longest path first, then oldest
 * first. Every `Client` has its own jar unless given one (`cookieJar`) or none (`cookieJar: null`).
 *
 * ```ts
 * const jar = new CookieJar();
 * const client = new Client({ cookieJar: jar });
 * await client.get("https://example.com/login");
 * const saved = JSON.stringify(jar);          // later: CookieJar.fromJSON(JSON.parse(saved))
 * ```
 */
export class CookieJar {
  #jar: ToughJar = newToughJar();
  /** False until a cookie was stored: a jar that never held one answers lookups without searching. */
  #used = false;

  /** A jar holding the cookies of `data` (from {@link toJSON}), or an empty one. */
  constructor(data?: CookieJarData) {
    if (data !== undefined) this.#import(data);
  }

  /** A jar restored from {@link toJSON}'s output (an object, or its JSON text). Bad data: `ArgumentError`. */
  static fromJSON(data: CookieJarData | string): CookieJar {
    if (typeof data === "string") {
      try {
        return new CookieJar(JSON.parse(data) as CookieJarData);
      } catch (e) {
        if (e instanceof ArgumentError) throw e;
        throw new ArgumentError("CookieJar.fromJSON: the text is not JSON", { cause: e });
      }
    }
    return new CookieJar(data);
  }

  /**
   * Stores the cookie of one `Set-Cookie` field value received from `url`. Returns the stored cookie,
   * or `null` when the rules refuse it (as a browser ignores such a cookie; nothing is thrown).
   */
  setCookie(setCookie: string, url: string | URL): StoredCookie | null {
    const u = toUrl(url);
    if (!isWebUrl(u) || typeof setCookie !== "string") return null;
    const cookie = Cookie.parse(setCookie, { loose: false });
    if (cookie === undefined || cookie.key === "") return null;
    if (Buffer.byteLength(cookie.key) + Buffer.byteLength(cookie.value) > MAX_NAME_VALUE_BYTES) return null;
    if (cookie.path !== null && cookie.path !== undefined && cookie.path.length > MAX_ATTRIBUTE_BYTES)
      cookie.path = null;
    const host = canonicalDomain(u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname) ?? "";
    if (typeof cookie.domain === "string") {
      const domain = cookie.cdomain() ?? "";
      if (cookie.domain.length > MAX_ATTRIBUTE_BYTES) cookie.domain = null;
      // §5.7 step 9: a public-suffix Domain is accepted only as the host itself, and then the cookie
      // is host-only.
      else if (domain === host && (getPublicSuffix(domain) ?? null) === null) cookie.domain = null;
    }
    if (!this.#prefixesAllow(cookie)) return null;
    const secureUrl = u.protocol === "https:";
    if (!cookie.secure && !secureUrl && this.#shadowsSecure(cookie, host, u)) return null;
    let result: Cookie | undefined;
    try {
      result = this.#jar.setCookieSync(cookie, u, { ignoreError: true });
    } catch {
      return null;
    }
    if (result === undefined) return null;
    this.#used = true;
    return stored(result);
  }

  /** The `Cookie` header value for a request to `url` (`""` when no cookie matches). */
  cookieHeader(url: string | URL): string {
    if (!this.#used) return "";
    const u = toUrl(url);
    if (!isWebUrl(u)) return "";
    const found = this.#jar.getCookiesSync(u);
    let out = "";
    for (const c of found) out += out === "" ? `${c.key}=${c.value}` : `; ${c.key}=${c.value}`;
    return out;
  }

  /**
   * The cookies a request to `url` would send, in sending order; without `url`, every cookie held
   * (expired ones are dropped first).
   */
  cookies(url?: string | URL): StoredCookie[] {
    if (!this.#used) return [];
    if (url !== undefined) {
      const u = toUrl(url);
      if (!isWebUrl(u)) return [];
      return this.#jar.getCookiesSync(u).map(stored);
    }
    const now = Date.now();
    const out: StoredCookie[] = [];
    for (const c of this.#all()) {
      const expiry = c.expiryTime();
      if (expiry !== undefined && expiry <= now) {
        this.#remove(c);
        continue;
      }
      out.push(stored(c));
    }
    return out;
  }

  /** Removes every cookie. */
  clear(): void {
    this.#jar = newToughJar();
    this.#used = false;
  }

  /** The jar as plain data (tough-cookie's serialized format): `JSON.stringify(jar)` works. */
  toJSON(): SerializedCookieJar {
    const data = this.#jar.serializeSync();
    if (data === undefined) throw new ArgumentError("the cookie store cannot be serialized synchronously");
    return data;
  }

  /** §4.1.3: a `__Secure-` cookie needs Secure; a `__Host-` one also no Domain and `Path=/`. Any case. */
  #prefixesAllow(cookie: Cookie): boolean {
    const name = cookie.key.slice(0, 9).toLowerCase();
    if (name.startsWith("__secure-")) return cookie.secure;
    if (name.startsWith("__host-")) {
      return cookie.secure && (cookie.domain === null || cookie.domain === undefined) && cookie.path === "/";
    }
    return true;
  }

  /**
   * §5.7 step 16 ("leave Secure cookies alone"): a cookie from plain http may not replace or shadow
   * a Secure cookie of the same name whose domain matches its own (either way) and whose path its
   * path matches.
   */
  #shadowsSecure(cookie: Cookie, host: string, u: URL): boolean {
    if (!this.#used) return false;
    const domain = cookie.domain === null || cookie.domain === undefined ? host : (cookie.cdomain() ?? host);
    const path = cookie.path ?? defaultPath(u.pathname);
    for (const c of this.#all()) {
      if (!c.secure || c.key !== cookie.key || c.domain === null || c.path === null) continue;
      if (!(domainMatch(domain, c.domain, false) || domainMatch(c.domain, domain, false))) continue;
      if (pathMatch(path, c.path)) return true;
    }
    return false;
  }

  #all(): Cookie[] {
    let all: Cookie[] = [];
    // The memory store answers synchronously; the callback runs before getAllCookies returns.
    void this.#jar.store.getAllCookies((err, cookies) => {
      if (!err && cookies) all = cookies;
    });
    return all;
  }

  #remove(c: Cookie): void {
    void this.#jar.store.removeCookie(c.domain, c.path, c.key, () => {});
  }

  #import(data: CookieJarData): void {
    const list = (data as { cookies?: unknown } | null)?.cookies;
    if (typeof data !== "object" || data === null || !Array.isArray(list)) {
      throw new ArgumentError(
        "cookie jar data must be an object with a cookies array (see CookieJar.toJSON)",
      );
    }
    for (const entry of list) {
      const c = Cookie.fromJSON(entry);
      if (c === undefined || typeof c.domain !== "string" || typeof c.path !== "string" || c.key === "") {
        throw new ArgumentError(
          `cookie jar data holds an entry that is not a cookie with a name, domain and path: ${JSON.stringify(entry)}`,
        );
      }
      void this.#jar.store.putCookie(c, () => {});
      this.#used = true;
    }
  }
}

/** RFC 6265 §5.1.4 default-path of a request path. */
function defaultPath(path: string): string {
  if (!path.startsWith("/")) return "/";
  const last = path.lastIndexOf("/");
  return last <= 0 ? "/" : path.slice(0, last);
}
