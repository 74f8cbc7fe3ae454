// The cookie model (RFC 6265): one cookie, its two wire forms (the `Cookie` request header and the
// `Set-Cookie` response header), and reading and adding cookies on a message. Storing cookies between
// requests (domain and path matching, expiry, the public-suffix list) is the client's cookie jar.
import { isIPv4 } from "node:net";
import { ArgumentError } from "./errors.js";
import { isToken } from "./headers.js";
import { Request, Response } from "./messages.js";

/** The `SameSite` attribute of a cookie (RFC 6265bis §5.4.7); absent means the browser's default. */
export type CookieSameSite = "strict" | "lax" | "none";

/** Options of {@link Cookie}: its attributes. */
export interface CookieInit {
  /** The `Path` attribute. Default: absent (the user agent uses the request path's directory). */
  path?: string;
  /** The `Domain` attribute; a leading `.` is ignored when sent. Default: absent (a host-only cookie). */
  domain?: string;
  /** The `Expires` attribute, an instant (sent as an IMF-fixdate in GMT). Default: absent (a session cookie). */
  expires?: Date;
  /**
   * The `Max-Age` attribute, in seconds, an integer. `undefined` (the default): no `Max-Age`;
   * `> 0`: expires that many seconds after it is received; `<= 0`: delete the cookie now (sent as
   * `Max-Age=0`).
   */
  maxAge?: number;
  /** The `Secure` attribute: send only over https. Default `false`. */
  secure?: boolean;
  /** The `HttpOnly` attribute: hidden from scripts in a browser. Default `false`. */
  httpOnly?: boolean;
  /** The `SameSite` attribute. Default: absent. */
  sameSite?: CookieSameSite;
}

const DEFAULTS = Object.freeze({ secure: false, httpOnly: false });

// The bytes Go and HTTP.jl accept in a cookie value: RFC 6265's cookie-octets, loosened to allow a
// space and a comma (common in real values, golang.org/issue/7243). A value holding either is sent
// quoted. Everything else (controls, `"`, `;`, `\`, non-ASCII) could end the value or the header.
function isCookieValueByte(c: number): boolean {
  return c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x3b && c !== 0x5c;
}

function invalidValueIndex(value: string): number {
  for (let i = 0; i < value.length; i++) if (!isCookieValueByte(value.charCodeAt(i))) return i;
  return -1;
}

function checkName(name: unknown): string {
  if (typeof name !== "string" || !isToken(name)) {
    throw new ArgumentError(
      `invalid cookie name ${JSON.stringify(name)}: a cookie name must be a non-empty RFC 6265 token (no spaces, separators or control characters)`,
    );
  }
  return name;
}

function checkValue(name: string, value: unknown): string {
  if (typeof value !== "string") {
    throw new ArgumentError(`the value of cookie ${name} must be a string, got ${typeof value}`);
  }
  const bad = invalidValueIndex(value);
  if (bad >= 0) {
    const c = value.charCodeAt(bad);
    throw new ArgumentError(
      `invalid value for cookie ${name}: character ${JSON.stringify(value[bad])} (0x${c.toString(16)}) may not appear in a cookie value; encode the value (e.g. encodeURIComponent) first`,
    );
  }
  return value;
}

/**
 * One HTTP cookie (HTTP.jl's `Cookie`): a name, a value and the attributes a `Set-Cookie` header
 * carries. The model is mutable. The name must be an RFC 6265 token and the value may hold only
 * cookie octets plus space and comma (sent quoted); both are checked when set, so a cookie can never
 * inject an attribute or a header. Other attributes are checked when the cookie is written: an
 * invalid one is left out (see {@link stringifyCookie}).
 *
 * Throws {@link ArgumentError} for a bad name or value, an `expires` that is not a valid `Date`, a
 * `maxAge` that is not an integer, or an unknown `sameSite`.
 *
 * ```ts
 * const c = new Cookie("session", "abc123", { path: "/", httpOnly: true, sameSite: "lax" });
 * c.toString(); // "session=abc123; Path=/; HttpOnly; SameSite=Lax"
 * ```
 */
export class Cookie {
  #name: string;
  #value: string;
  /** The `Path` attribute, or `undefined`. */
  path: string | undefined;
  /** The `Domain` attribute, or `undefined`. */
  domain: string | undefined;
  /** The `Expires` attribute, or `undefined`. */
  expires: Date | undefined;
  /** The `Max-Age` attribute in seconds (`<= 0`: delete now), or `undefined`. See {@link CookieInit.maxAge}. */
  maxAge: number | undefined;
  /** The `Secure` attribute. */
  secure: boolean;
  /** The `HttpOnly` attribute. */
  httpOnly: boolean;
  /** The `SameSite` attribute, or `undefined`. */
  sameSite: CookieSameSite | undefined;

  constructor(name: string, value: string, init: CookieInit = {}) {
    this.#name = checkName(name);
    this.#value = checkValue(name, value);
    const { expires, maxAge, sameSite } = init;
    if (expires !== undefined && !(expires instanceof Date && !Number.isNaN(expires.getTime()))) {
      throw new ArgumentError(`cookie ${name}: expires must be a valid Date`);
    }
    if (maxAge !== undefined && !Number.isSafeInteger(maxAge)) {
      throw new ArgumentError(`cookie ${name}: maxAge must be an integer number of seconds, got ${maxAge}`);
    }
    if (sameSite !== undefined && sameSite !== "strict" && sameSite !== "lax" && sameSite !== "none") {
      throw new ArgumentError(
        `cookie ${name}: sameSite must be "strict", "lax" or "none", got ${JSON.stringify(sameSite)}`,
      );
    }
    this.path = init.path;
    this.domain = init.domain;
    this.expires = expires;
    this.maxAge = maxAge;
    this.secure = init.secure ?? DEFAULTS.secure;
    this.httpOnly = init.httpOnly ?? DEFAULTS.httpOnly;
    this.sameSite = sameSite;
  }

  /** The cookie's name, an RFC 6265 token (checked when set). */
  get name(): string {
    return this.#name;
  }

  set name(name: string) {
    this.#name = checkName(name);
  }

  /** The cookie's value, unquoted (checked when set). */
  get value(): string {
    return this.#value;
  }

  set value(value: string) {
    this.#value = checkValue(this.#name, value);
  }

  /**
   * True when `other` names the same cookie: the same name, path and domain (HTTP.jl's `isequal`; an
   * absent path or domain equals an empty one). The value and other attributes are not compared.
   *
   * ```ts
   * new Cookie("a", "1", { path: "/" }).equals(new Cookie("a", "2", { path: "/" })); // true
   * ```
   */
  equals(other: Cookie): boolean {
    return (
      this.#name === other.#name &&
      (this.path ?? "") === (other.path ?? "") &&
      (this.domain ?? "") === (other.domain ?? "")
    );
  }

  /**
   * The cookie as text: by default the `Set-Cookie` form with its attributes; with `isRequest` true,
   * the `name=value` form of a `Cookie` header. See {@link stringifyCookie}.
   *
   * ```ts
   * new Cookie("a", "1", { maxAge: 60 }).toString(); // "a=1; Max-Age=60"
   * ```
   */
  toString(isRequest = false): string {
    return stringifyCookie(this, isRequest);
  }

  /** Shows the name, value and attributes in `console.log` and `util.inspect`. */
  [Symbol.for("nodejs.util.inspect.custom")](
    depth: number,
    options: object,
    inspect: (value: unknown, options: object) => string,
  ): string {
    const shown = {
      name: this.#name,
      value: this.#value,
      path: this.path,
      domain: this.domain,
      expires: this.expires,
      maxAge: this.maxAge,
      secure: this.secure,
      httpOnly: this.httpOnly,
      sameSite: this.sameSite,
    };
    return `Cookie ${inspect(shown, { ...options, depth: depth < 0 ? null : depth })}`;
  }
}

// ---------------------------------------------------------------------------------------------------
// Writing

function quoteValue(value: string): string {
  return value.includes(" ") || value.includes(",") ? `"${value}"` : value;
}

// Go's sanitizeCookiePath: a path keeps only printable ASCII without `;`, so a path can end neither
// the attribute nor the header.
function sanitizePath(path: string): string {
  let out = "";
  let start = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f || c === 0x3b) {
      out += path.slice(start, i);
      start = i + 1;
    }
  }
  return start === 0 ? path : out + path.slice(start);
}

// Go's isCookieDomainName: letters, digits, `_` and `-` in dot-separated labels of 1 to 63 characters,
// no label starting or ending with `-`, at most 255 characters, and at least one letter.
function isCookieDomainName(s: string): boolean {
  if (s.length === 0 || s.length > 255) return false;
  let last = 0x2e;
  let letter = false;
  let labelLength = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f) {
      letter = true;
      labelLength++;
    } else if (c >= 0x30 && c <= 0x39) {
      labelLength++;
    } else if (c === 0x2d) {
      if (last === 0x2e) return false;
      labelLength++;
    } else if (c === 0x2e) {
      if (last === 0x2e || last === 0x2d || labelLength > 63) return false;
      labelLength = 0;
    } else {
      return false;
    }
    last = c;
  }
  return last !== 0x2d && labelLength <= 63 && letter;
}

// The domain to send, without a leading dot, or undefined when it is neither a domain name nor an
// IPv4 address (Go drops such a Domain attribute; an IPv6 literal is dropped too).
function domainToSend(domain: string): string | undefined {
  const d = domain.charCodeAt(0) === 0x2e ? domain.slice(1) : domain;
  return isCookieDomainName(d) || isIPv4(d) ? d : undefined;
}

// RFC 6265 §5.1.1 refuses years before 1601, and an IMF-fixdate has a four-digit year.
function isSendableDate(d: Date): boolean {
  const t = d.getTime();
  if (Number.isNaN(t)) return false;
  const year = d.getUTCFullYear();
  return year >= 1601 && year <= 9999;
}

const SAME_SITE_TEXT: Readonly<Record<CookieSameSite, string>> = Object.freeze({
  strict: "Strict",
  lax: "Lax",
  none: "None",
});

/**
 * The cookie as header text. With `isRequest` true (the default) the `Cookie` header form
 * `name=value`; otherwise the `Set-Cookie` form with `Path`, `Domain`, `Expires` (IMF-fixdate),
 * `Max-Age`, `HttpOnly`, `Secure` and `SameSite=Strict|Lax|None`, in that order. A value with a
 * space or a comma is quoted.
 *
 * Attributes that cannot be written safely are handled as Go's `net/http` does: bytes other than
 * printable ASCII and `;` are removed from `path`; a `domain` that is not a domain name or an IPv4
 * address is left out; an `expires` that is not a valid date from year 1601 to 9999 is left out; a
 * `maxAge` that is not an integer is left out, one `<= 0` is written `Max-Age=0`; a `sameSite` other
 * than the three known ones is left out.
 *
 * ```ts
 * const c = new Cookie("id", "a b", { path: "/", secure: true });
 * stringifyCookie(c);        // 'id="a b"'
 * stringifyCookie(c, false); // 'id="a b"; Path=/; Secure'
 * ```
 */
export function stringifyCookie(cookie: Cookie, isRequest = true): string {
  let out = `${cookie.name}=${quoteValue(cookie.value)}`;
  if (isRequest) return out;
  if (typeof cookie.path === "string") {
    const path = sanitizePath(cookie.path);
    if (path !== "") out += `; Path=${path}`;
  }
  if (typeof cookie.domain === "string" && cookie.domain !== "") {
    const domain = domainToSend(cookie.domain);
    if (domain !== undefined) out += `; Domain=${domain}`;
  }
  const expires = cookie.expires;
  if (expires instanceof Date && isSendableDate(expires)) out += `; Expires=${expires.toUTCString()}`;
  const maxAge = cookie.maxAge;
  if (Number.isSafeInteger(maxAge)) out += `; Max-Age=${Math.max(maxAge!, 0)}`;
  if (cookie.httpOnly === true) out += "; HttpOnly";
  if (cookie.secure === true) out += "; Secure";
  const sameSite = cookie.sameSite;
  if (sameSite === "strict" || sameSite === "lax" || sameSite === "none") {
    out += `; SameSite=${SAME_SITE_TEXT[sameSite]}`;
  }
  return out;
}

/**
 * Several cookies as one `Cookie` request header value, `name=value` pairs joined with `"; "`.
 *
 * ```ts
 * stringifyCookies([new Cookie("a", "1"), new Cookie("b", "2")]); // "a=1; b=2"
 * ```
 */
export function stringifyCookies(cookies: Iterable<Cookie>): string {
  let out = "";
  for (const c of cookies) out += out === "" ? stringifyCookie(c, true) : `; ${stringifyCookie(c, true)}`;
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Reading

function trimSpace(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && (s.charCodeAt(start) === 0x20 || s.charCodeAt(start) === 0x09)) start++;
  while (end > start && (s.charCodeAt(end - 1) === 0x20 || s.charCodeAt(end - 1) === 0x09)) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

// Go's parseCookieValue: one pair of surrounding double quotes may be removed (cookie values only,
// not attribute values), then every byte must be a cookie-value byte; undefined when one is not.
function parseValue(raw: string, allowQuotes: boolean): string | undefined {
  let v = raw;
  if (allowQuotes && v.length > 1 && v.charCodeAt(0) === 0x22 && v.charCodeAt(v.length - 1) === 0x22) {
    v = v.slice(1, -1);
  }
  return invalidValueIndex(v) < 0 ? v : undefined;
}

const MONTHS: Readonly<Record<string, number>> = Object.freeze({
  jan: 0,
  feb: 1,
  mar: 2,
  apr: 3,
  may: 4,
  jun: 5,
  jul: 6,
  aug: 7,
  sep: 8,
  oct: 9,
  nov: 10,
  dec: 11,
});

// RFC 6265 §5.1.1 delimiters: HTAB, SP to `/`, `;` to `@`, `[` to `` ` ``, `{` to `~`.
function isDateDelimiter(c: number): boolean {
  return (
    c === 0x09 ||
    (c >= 0x20 && c <= 0x2f) ||
    (c >= 0x3b && c <= 0x40) ||
    (c >= 0x5b && c <= 0x60) ||
    (c >= 0x7b && c <= 0x7e)
  );
}

function leadingDigits(token: string, from: number): number {
  let n = 0;
  while (from + n < token.length) {
    const c = token.charCodeAt(from + n);
    if (c < 0x30 || c > 0x39) break;
    n++;
  }
  return n;
}

// `hh:mm:ss` with one or two digits per field, optionally followed by a non-digit and anything.
function parseTime(token: string): [number, number, number] | undefined {
  const out: [number, number, number] = [0, 0, 0];
  let i = 0;
  for (let field = 0; field < 3; field++) {
    const n = leadingDigits(token, i);
    if (n < 1 || n > 2) return undefined;
    out[field] = Number(token.slice(i, i + n));
    i += n;
    if (field < 2) {
      if (token.charCodeAt(i) !== 0x3a) return undefined;
      i++;
    }
  }
  return out;
}

/**
 * Parses a cookie date with the algorithm of RFC 6265 §5.1.1, which reads the IMF-fixdate
 * (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and
 * asctime (`Sun Nov  6 08:49:37 1994`) forms, and the Netscape form (`Sun, 06-Nov-1994 08:49:37 GMT`).
 * Returns undefined for anything else.
 */
function parseCookieDate(text: string): Date | undefined {
  let time: [number, number, number] | undefined;
  let day: number | undefined;
  let month: number | undefined;
  let year: number | undefined;
  let i = 0;
  while (i < text.length) {
    while (i < text.length && isDateDelimiter(text.charCodeAt(i))) i++;
    const start = i;
    while (i < text.length && !isDateDelimiter(text.charCodeAt(i))) i++;
    if (i === start) break;
    const token = text.slice(start, i);
    const digits = leadingDigits(token, 0);
    if (time === undefined) {
      const t = parseTime(token);
      if (t !== undefined) {
        time = t;
        continue;
      }
    }
    if (day === undefined && digits >= 1 && digits <= 2) {
      day = Number(token.slice(0, digits));
      continue;
    }
    if (month === undefined && token.length >= 3) {
      const m = MONTHS[token.slice(0, 3).toLowerCase()];
      if (m !== undefined) {
        month = m;
        continue;
      }
    }
    if (year === undefined && digits >= 2 && digits <= 4) {
      year = Number(token.slice(0, digits));
    }
  }
  if (time === undefined || day === undefined || month === undefined || year === undefined) return undefined;
  if (year >= 70 && year <= 99) year += 1900;
  else if (year <= 69) year += 2000;
  const [hour, minute, second] = time;
  if (day < 1 || day > 31 || year < 1601 || hour > 23 || minute > 59 || second > 59) return undefined;
  const d = new Date(Date.UTC(year, month, day, hour, minute, second));
  // Date.UTC rolls 31 Feb over into March; such a date does not exist.
  return d.getUTCDate() === day ? d : undefined;
}

// `Max-Age` digits with an optional leading `-`. Like Go, a non-zero value with a leading zero is
// refused, and a value too large for an exact integer is ignored rather than rounded.
function parseMaxAge(text: string): number | undefined {
  const neg = text.charCodeAt(0) === 0x2d;
  const from = neg ? 1 : 0;
  const n = leadingDigits(text, from);
  if (n === 0 || from + n !== text.length) return undefined;
  if (n > 1 && text.charCodeAt(from) === 0x30) return undefined;
  const secs = Number(text);
  return Number.isSafeInteger(secs) ? secs : undefined;
}

/** One `Set-Cookie` field value as a Cookie, or undefined when its first pair is not `name=value`. */
function parseSetCookie(line: string): Cookie | undefined {
  const firstEnd = line.indexOf(";");
  const first = firstEnd < 0 ? line : line.slice(0, firstEnd);
  const eq = first.indexOf("=");
  if (eq < 0) return undefined;
  const name = trimSpace(first.slice(0, eq));
  if (!isToken(name)) return undefined;
  const value = parseValue(trimSpace(first.slice(eq + 1)), true);
  if (value === undefined) return undefined;
  const cookie = new Cookie(name, value);
  let pos = firstEnd;
  while (pos >= 0) {
    const next = line.indexOf(";", pos + 1);
    const part = trimSpace(next < 0 ? line.slice(pos + 1) : line.slice(pos + 1, next));
    pos = next;
    if (part === "") continue;
    const at = part.indexOf("=");
    const attr = (at < 0 ? part : trimSpace(part.slice(0, at))).toLowerCase();
    const val = parseValue(at < 0 ? "" : trimSpace(part.slice(at + 1)), false);
    // Like Go, an attribute whose value holds a byte no cookie value may hold is ignored whole.
    if (val === undefined) continue;
    switch (attr) {
      case "secure":
        cookie.secure = true;
        break;
      case "httponly":
        cookie.httpOnly = true;
        break;
      case "path":
        cookie.path = val;
        break;
      case "domain":
        // RFC 6265 §5.2.3: a leading dot is ignored and the domain compares case-insensitively.
        if (val !== "") cookie.domain = (val.charCodeAt(0) === 0x2e ? val.slice(1) : val).toLowerCase();
        break;
      case "max-age": {
        const secs = parseMaxAge(val);
        if (secs !== undefined) cookie.maxAge = secs;
        break;
      }
      case "expires": {
        const date = parseCookieDate(val);
        if (date !== undefined) cookie.expires = date;
        break;
      }
      case "samesite": {
        const lower = val.toLowerCase();
        if (lower === "strict" || lower === "lax" || lower === "none") cookie.sameSite = lower;
        else cookie.sameSite = undefined;
        break;
      }
      default:
        // Unknown attributes (Priority, Partitioned, extensions) are not part of the model.
        break;
    }
  }
  return cookie;
}

/** The name/value pairs of one `Cookie` header value; malformed pairs are skipped. */
function parseCookieHeader(line: string, into: Cookie[]): void {
  let pos = -1;
  while (pos < line.length) {
    let next = line.indexOf(";", pos + 1);
    if (next < 0) next = line.length;
    const part = trimSpace(line.slice(pos + 1, next));
    pos = next;
    if (part === "") continue;
    // As in Go and HTTP.jl, a bare `name` is a cookie with an empty value.
    const eq = part.indexOf("=");
    const name = eq < 0 ? part : trimSpace(part.slice(0, eq));
    if (!isToken(name)) continue;
    const value = eq < 0 ? "" : parseValue(trimSpace(part.slice(eq + 1)), true);
    if (value === undefined) continue;
    into.push(new Cookie(name, value));
  }
}

/**
 * The cookies a message carries (HTTP.jl's `cookies`). For a {@link Request}: the name/value pairs of
 * its `Cookie` header(s), in order; a malformed pair (a name that is not a token, a value with a byte
 * no cookie value may hold) is skipped. For a {@link Response}: one Cookie per `Set-Cookie` field,
 * with its attributes (names case-insensitive; `Expires` in the IMF-fixdate, RFC 850, asctime and
 * Netscape forms; `Max-Age` digits with an optional `-`; unknown attributes and attributes with bad
 * values ignored); a field whose first pair has no `=` or a bad name or value is skipped. Never throws
 * for what a peer sent.
 *
 * ```ts
 * cookies(req);  // [Cookie { name: "session", value: "abc" }, ...]
 * cookies(resp).find((c) => c.name === "session")?.maxAge;
 * ```
 */
export function cookies(message: Request | Response): Cookie[] {
  const out: Cookie[] = [];
  if (message instanceof Response) {
    for (const line of message.headers.getAll("set-cookie")) {
      const c = parseSetCookie(line);
      if (c !== undefined) out.push(c);
    }
  } else if (message instanceof Request) {
    for (const line of message.headers.getAll("cookie")) parseCookieHeader(line, out);
  } else {
    throw new ArgumentError("cookies() takes a Request or a Response");
  }
  return out;
}

/**
 * Adds a cookie to a message (HTTP.jl's `addcookie!`). On a {@link Request} its `name=value` joins
 * the `Cookie` header, which stays one field (`"; "`-joined, several `Cookie` fields merged into the
 * first). On a {@link Response} a `Set-Cookie` field with the cookie's attributes is appended.
 *
 * ```ts
 * addCookie(res, new Cookie("session", id, { httpOnly: true, secure: true, sameSite: "lax" }));
 * addCookie(req, new Cookie("theme", "dark")); // Cookie: theme=dark
 * ```
 */
export function addCookie(message: Request | Response, cookie: Cookie): void {
  if (!(cookie instanceof Cookie)) throw new ArgumentError("addCookie() takes a Cookie");
  if (message instanceof Response) {
    message.headers.append("Set-Cookie", stringifyCookie(cookie, false));
  } else if (message instanceof Request) {
    const pair = stringifyCookie(cookie, true);
    let joined = "";
    for (const v of message.headers.getAll("cookie")) {
      // A trailing `;` on what is there already would otherwise give an empty pair.
      let prev = trimSpace(v);
      while (prev.endsWith(";")) prev = trimSpace(prev.slice(0, -1));
      if (prev !== "") joined += `${prev}; `;
    }
    message.headers.set("Cookie", joined + pair);
  } else {
    throw new ArgumentError("addCookie() takes a Request or a Response");
  }
}
