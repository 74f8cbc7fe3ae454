/** A query given as a string (used verbatim), a record (sorted by key), or pairs (kept in order). */
export type QueryInit =
  | string
  | Readonly<Record<string, unknown>>
  | Iterable<readonly [string, unknown]>
  | URLSearchParams;

const HEX = "0123456789ABCDEF";

// Bytes kept as they are: RFC 3986 unreserved (`~` too) for queries; HTTP.jl's escapeuri also encodes `~`.
const UNRESERVED = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
  UNRESERVED[c.charCodeAt(0)] = 1;
const URI_SAFE = UNRESERVED.slice();
URI_SAFE["~".charCodeAt(0)] = 0;

function encode(s: string, keep: Uint8Array): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || keep[c] === 0) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  let out = "";
  for (const byte of Buffer.from(s, "utf8")) {
    if (byte < 128 && keep[byte] === 1) out += String.fromCharCode(byte);
    else out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/**
 * Percent-decodes `s` (and `+` as a space when `plus` is true). A malformed escape is kept as it is;
 * bytes that are not valid UTF-8 become U+FFFD. Never throws.
 */
export function unescapeUri(s: string, plus = false): string {
  if (s.indexOf("%") < 0 && (!plus || s.indexOf("+") < 0)) return s;
  const bytes: number[] = [];
  let out = "";
  const flush = () => {
    if (bytes.length > 0) {
      out += Buffer.from(bytes).toString("utf8");
      bytes.length = 0;
    }
  };
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 /* % */ && i + 2 < s.length) {
      const hi = hexValue(s.charCodeAt(i + 1));
      const lo = hexValue(s.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        bytes.push(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    flush();
    out += plus && c === 43 /* + */ ? " " : s[i];
  }
  flush();
  return out;
}

/**
 * Percent-encodes a string the way HTTP.jl's `escapeuri` does: only `A-Za-z0-9-._` are kept (so `~`
 * and space are encoded, as `%7E` and `%20`). Given pairs or a record, builds `k=v&k2=v2`.
 *
 * ```ts
 * escapeUri("a b/c"); // "a%20b%2Fc"
 * escapeUri({ q: "x y" }); // "q=x%20y"
 * ```
 */
export function escapeUri(
  s: string | Readonly<Record<string, unknown>> | Iterable<readonly [string, unknown]>,
): string {
  if (typeof s === "string") return encode(s, URI_SAFE);
  return joinPairs(toPairs(s, false), URI_SAFE);
}

function joinPairs(pairs: Iterable<readonly [string, unknown]>, keep: Uint8Array): string {
  const parts: string[] = [];
  for (const [k, v] of pairs) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) {
      for (const item of v)
        if (item !== undefined && item !== null)
          parts.push(`${encode(k, keep)}=${encode(String(item), keep)}`);
    } else {
      parts.push(`${encode(k, keep)}=${encode(String(v), keep)}`);
    }
  }
  return parts.join("&");
}

function isPlainRecord(x: object): x is Readonly<Record<string, unknown>> {
  return typeof (x as Iterable<unknown>)[Symbol.iterator] !== "function";
}

function toPairs(q: Exclude<QueryInit, string>, sortRecords: boolean): [string, unknown][] {
  if (q instanceof URLSearchParams) return [...q.entries()];
  if (isPlainRecord(q)) {
    const keys = Object.keys(q);
    if (sortRecords) keys.sort();
    return keys.map((k) => [k, q[k]]);
  }
  const pairs: [string, unknown][] = [];
  for (const pair of q) pairs.push([String(pair[0]), pair[1]]);
  return pairs;
}

/**
 * Builds a query string (without `?`) with HTTP.jl's `query=` rules: a string is used verbatim, a
 * record is sorted by key, pairs (an array or a `Map`) keep their order; an array value repeats the
 * key; `null`/`undefined` values are skipped; unreserved characters (`A-Za-z0-9-._~`) are kept and
 * everything else is `%XX` (space is `%20`).
 *
 * ```ts
 * buildQuery({ b: 2, a: "x y" }); // "a=x%20y&b=2"
 * ```
 */
export function buildQuery(params: QueryInit): string {
  if (typeof params === "string") return params.startsWith("?") ? params.slice(1) : params;
  return joinPairs(toPairs(params, true), UNRESERVED);
}

/**
 * Appends a query to a request target, joining with `&` when it already has a `?`; an empty query
 * leaves the target as it is.
 *
 * ```ts
 * mergeQuery("/search?x=1", { q: "hi" }); // "/search?x=1&q=hi"
 * ```
 */
export function mergeQuery(target: string, query: QueryInit | undefined | null): string {
  if (query === undefined || query === null) return target;
  const q = buildQuery(query);
  if (q === "") return target;
  const hash = target.indexOf("#");
  const base = hash >= 0 ? target.slice(0, hash) : target;
  if (base.indexOf("?") < 0) return `${base}?${q}`;
  return base.endsWith("?") || base.endsWith("&") ? `${base}${q}` : `${base}&${q}`;
}

/**
 * Merges a client's default query with a call's (HTTP.jl's rule): the defaults minus every key the
 * call sets, then the call's pairs. A string on either side cannot be merged by key: a string call
 * query replaces the defaults, a string default is kept before the call's pairs.
 */
export function mergeDefaultQuery(
  defaults: QueryInit | undefined | null,
  call: QueryInit | undefined | null,
): QueryInit | undefined {
  if (defaults === undefined || defaults === null) return call ?? undefined;
  if (call === undefined || call === null) return defaults;
  if (typeof call === "string") return call;
  const callPairs = toPairs(call, true);
  if (typeof defaults === "string") {
    const rest = buildQuery(callPairs);
    return rest ? (defaults ? `${defaults}&${rest}` : rest) : defaults;
  }
  const overridden = new Set(callPairs.map(([k]) => k));
  return [...toPairs(defaults, true).filter(([k]) => !overridden.has(k)), ...callPairs];
}

function queryPart(q: string | URL): string {
  if (q instanceof URL) return q.search.slice(1);
  const hash = q.indexOf("#");
  const s = hash >= 0 ? q.slice(0, hash) : q;
  const mark = s.indexOf("?");
  if (mark >= 0) return s.slice(mark + 1);
  // An absolute URL without `?` has no query (its text is not one).
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? "" : s;
}

/**
 * Parses a query string (a leading `?` or a whole URL is fine) into ordered pairs, repeats kept.
 * `+` and `%XX` are decoded; `"a=b=c"` gives `["a", "b"]` (HTTP.jl drops what follows a second `=`);
 * a key without `=` gets `""`. Linear time; never throws.
 *
 * ```ts
 * parseQueryPairs("a=1&b=2&a=3"); // [["a","1"],["b","2"],["a","3"]]
 * ```
 */
export function parseQueryPairs(q: string | URL): [string, string][] {
  const s = queryPart(q);
  const out: [string, string][] = [];
  let start = 0;
  while (start <= s.length) {
    let end = s.indexOf("&", start);
    if (end < 0) end = s.length;
    if (end > start) {
      // Search for `=` within this pair only: searching the rest of the string is quadratic.
      const part = s.slice(start, end);
      const eq = part.indexOf("=");
      if (eq < 0) {
        out.push([unescapeUri(part, true), ""]);
      } else {
        const second = part.indexOf("=", eq + 1);
        const valueEnd = second >= 0 ? second : part.length;
        out.push([unescapeUri(part.slice(0, eq), true), unescapeUri(part.slice(eq + 1, valueEnd), true)]);
      }
    }
    start = end + 1;
  }
  return out;
}

/**
 * Parses a query string into a record; when a key repeats, the last value wins. The record has no
 * prototype, so keys like `__proto__` are plain entries.
 *
 * ```ts
 * parseQuery("?a=1&b=2&a=3"); // { a: "3", b: "2" }
 * ```
 */
export function parseQuery(q: string | URL): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of parseQueryPairs(q)) out[k] = v;
  return out;
}
