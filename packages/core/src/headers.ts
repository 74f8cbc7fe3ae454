import { ProtocolError } from "./errors.js";

/**
 * Anything a {@link Headers} can be built from: another `Headers` (ours or WHATWG's), a plain object
 * whose values are a string or an array of strings (`undefined` values are skipped), an array of
 * `[name, value]` pairs, or a `Map`.
 */
export type HeadersInit =
  | Headers
  | globalThis.Headers
  | Readonly<Record<string, string | number | readonly string[] | undefined>>
  | Iterable<readonly [string, string]>;

// RFC 9110 §5.6.2 token characters, as a lookup table indexed by char code.
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN[c.charCodeAt(0)] = 1;
}

/** True when `name` is a valid RFC 9110 field name (a non-empty token). */
export function isToken(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128 || TOKEN[c] === 0) return false;
  }
  return true;
}

/**
 * Checks a header name and value about to be sent, and returns the value with surrounding
 * whitespace trimmed. Throws {@link ProtocolError} for a name that is not a token, or a value with
 * CR, LF, NUL or another control character (header injection is refused, never rewritten), or a
 * character Node cannot send (above U+00FF).
 */
export function validateHeader(name: string, value: string): string {
  if (!isToken(name)) {
    throw new ProtocolError(
      `invalid header name ${JSON.stringify(name)}: a header name must be an RFC 9110 token`,
      {
        code: "HW_INVALID_HEADER",
      },
    );
  }
  const trimmed = trimOws(value);
  for (let i = 0; i < trimmed.length; i++) {
    const c = trimmed.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) {
      const what =
        c === 0x0d ? "CR" : c === 0x0a ? "LF" : c === 0 ? "NUL" : `control character 0x${c.toString(16)}`;
      throw new ProtocolError(
        `invalid value for header ${name}: it contains ${what}; header values may not contain CR, LF, NUL or control characters`,
        { code: "HW_INVALID_HEADER" },
      );
    }
    if (c > 0xff) {
      throw new ProtocolError(
        `invalid value for header ${name}: character U+${c.toString(16).toUpperCase().padStart(4, "0")} is not Latin-1; percent-encode it (RFC 8187)`,
        { code: "HW_INVALID_HEADER" },
      );
    }
  }
  return trimmed;
}

/** Lower-case forms of names seen with upper-case letters, so that each is made once, not per use. */
const lowerNames = new Map<string, string>();
/** Bounds on {@link lowerNames}: a peer sending made-up names fills it once and no further. */
const LOWER_NAMES_MAX = 512;
const LOWER_NAME_MAX_LENGTH = 64;

/**
 * `name` in lower case. A name that is lower case already (as HTTP/2 requires, and as many are
 * written) is returned as it is, and a name like `Content-Type` comes from a small cache:
 * `toLowerCase` would make a new string for either on every call.
 */
function lowerName(name: string): string {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a) || c > 0x7f) {
      let lower = lowerNames.get(name);
      if (lower === undefined) {
        lower = name.toLowerCase();
        if (lowerNames.size < LOWER_NAMES_MAX && name.length <= LOWER_NAME_MAX_LENGTH) {
          lowerNames.set(name, lower);
        }
      }
      return lower;
    }
  }
  return name;
}

function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isOws(value.charCodeAt(start))) start++;
  while (end > start && isOws(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * `x-foo-BAR` → `X-Foo-Bar`: the first letter and each letter after `-` upper case, the rest lower
 * case. Does not validate.
 */
export function canonicalHeaderKey(name: string): string {
  let out = "";
  let upper = true;
  for (const ch of name) {
    out += upper ? ch.toUpperCase() : ch.toLowerCase();
    upper = ch === "-";
  }
  return out;
}

/**
 * An ordered, case-insensitive, multi-valued header list that keeps the case each name was given.
 * Names and values are validated when set (see {@link validateHeader}).
 *
 * ```ts
 * const h = new Headers({ "Content-Type": "text/plain" });
 * h.append("Set-Cookie", "a=1"); h.append("Set-Cookie", "b=2");
 * h.get("content-type"); // "text/plain"
 * h.getAll("set-cookie"); // ["a=1", "b=2"]
 * ```
 */
export class Headers implements Iterable<[string, string]> {
  // One list, three slots per entry: the name as given, its lower-case form for lookups, the value.
  // One array rather than three parallel ones: a small Headers is two allocations, not four.
  #list: string[] = [];

  constructor(init?: HeadersInit) {
    if (init !== undefined && init !== null) this.#fill(init);
  }

  /**
   * Builds headers from a flat `[name, value, name, value, ...]` list that a parser has already
   * validated (Node's `rawHeaders`), without checking them again. Do not pass caller input here.
   * `skipPseudo`: leave out HTTP/2 pseudo-headers (names starting with `:`), so node:http2's raw
   * header list can be given as it is.
   */
  static fromTrusted(flat: readonly string[], skipPseudo = false): Headers {
    const h = new Headers();
    const list = new Array<string>((flat.length >> 1) * 3);
    let w = 0;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const name = flat[i]!;
      if (skipPseudo && name.charCodeAt(0) === 58 /* ":" */) continue;
      list[w++] = name;
      list[w++] = lowerName(name);
      list[w++] = flat[i + 1]!;
    }
    if (w !== list.length) list.length = w;
    h.#list = list;
    return h;
  }

  #fill(init: HeadersInit): void {
    if (init instanceof Headers) {
      this.#list = init.#list.slice();
      return;
    }
    if (isIterable(init)) {
      for (const pair of init as Iterable<readonly [string, string]>) {
        if (!Array.isArray(pair) || pair.length !== 2) {
          throw new ProtocolError("header pairs must be [name, value] arrays", { code: "HW_INVALID_HEADER" });
        }
        this.append(String(pair[0]), String(pair[1]));
      }
      return;
    }
    // A record: its own keys, then a lookup each (Object.entries would make an array per entry).
    // for-in over an object literal uses V8's enumeration cache and allocates nothing; the list is
    // made at its final size when every value is a single string.
    const record = init as Readonly<Record<string, string | readonly string[] | undefined>>;
    let n = 0;
    for (const name in record) if (hasOwn.call(record, name)) n++;
    const list: string[] = n === 0 ? [] : new Array<string>(3 * n);
    let w = 0;
    for (const name in record) {
      if (!hasOwn.call(record, name)) continue;
      const value = record[name];
      if (value === undefined) continue;
      if (Array.isArray(value)) {
        for (const v of value as readonly string[]) {
          list[w++] = name;
          list[w++] = lowerName(name);
          list[w++] = validateHeader(name, String(v));
        }
      } else {
        list[w++] = name;
        list[w++] = lowerName(name);
        list[w++] = validateHeader(name, String(value));
      }
    }
    // Shorter only when a value was undefined (setting the length is not free even when equal).
    if (w !== list.length) list.length = w;
    this.#list = list;
  }

  /** The number of entries (a multi-valued name counts once per value). */
  get size(): number {
    return this.#list.length / 3;
  }

  /** The slot of the first entry named `name` (any case) at or after slot `from`, or -1. */
  #index(name: string, from = 0): number {
    const key = lowerName(name);
    const list = this.#list;
    for (let i = from; i < list.length; i += 3) if (list[i + 1] === key) return i;
    return -1;
  }

  /** The first value of `name`, or `null` when absent. */
  get(name: string): string | null {
    const i = this.#index(name);
    return i < 0 ? null : this.#list[i + 2]!;
  }

  /** Every value of `name`, in the order they were added. */
  getAll(name: string): string[] {
    const key = lowerName(name);
    const list = this.#list;
    const out: string[] = [];
    for (let i = 0; i < list.length; i += 3) if (list[i + 1] === key) out.push(list[i + 2]!);
    return out;
  }

  /** True when `name` is present, even with an empty value. */
  has(name: string): boolean {
    return this.#index(name) >= 0;
  }

  /** Replaces every value of `name` with `value`, keeping the position of the first one. */
  set(name: string, value: string): this {
    const v = validateHeader(name, value);
    const i = this.#index(name);
    if (i < 0) {
      this.#list.push(name, lowerName(name), v);
      return this;
    }
    const list = this.#list;
    list[i] = name;
    list[i + 2] = v;
    this.#deleteFrom(list[i + 1]!, i + 3);
    return this;
  }

  /** Adds one more entry for `name` (a new line on the wire, never joined). */
  append(name: string, value: string): this {
    const v = validateHeader(name, value);
    this.#list.push(name, lowerName(name), v);
    return this;
  }

  /** Removes every value of `name`. Returns true when something was removed. */
  delete(name: string): boolean {
    const before = this.#list.length;
    this.#deleteFrom(lowerName(name), 0);
    return this.#list.length !== before;
  }

  /** Removes the entries whose lower-case name is `key`, from slot `from` on. */
  #deleteFrom(key: string, from: number): void {
    const list = this.#list;
    let w = from;
    for (let r = from; r < list.length; r += 3) {
      if (list[r + 1] === key) continue;
      if (w !== r) {
        list[w] = list[r]!;
        list[w + 1] = list[r + 1]!;
        list[w + 2] = list[r + 2]!;
      }
      w += 3;
    }
    list.length = w;
  }

  /** HTTP.jl's `appendheader`: joins with the last entry when it has the same name (not Set-Cookie). */
  appendJoined(name: string, value: string): this {
    const v = validateHeader(name, value);
    const list = this.#list;
    const last = list.length - 3;
    const key = lowerName(name);
    if (last >= 0 && list[last + 1] === key && key !== "set-cookie") {
      list[last + 2] = `${list[last + 2]},${v}`;
    } else {
      list.push(name, key, v);
    }
    return this;
  }

  /** A copy that can be changed independently. */
  clone(): Headers {
    return new Headers(this);
  }

  /** `[name, value]` pairs in insertion order, with the case they were given. */
  *entries(): IterableIterator<[string, string]> {
    const list = this.#list;
    for (let i = 0; i < list.length; i += 3) yield [list[i]!, list[i + 2]!];
  }

  /** The names in insertion order (repeated for multi-valued names). */
  *keys(): IterableIterator<string> {
    const list = this.#list;
    for (let i = 0; i < list.length; i += 3) yield list[i]!;
  }

  /** The values in insertion order. */
  *values(): IterableIterator<string> {
    const list = this.#list;
    for (let i = 2; i < list.length; i += 3) yield list[i]!;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  forEach(fn: (value: string, name: string, headers: this) => void): void {
    const list = this.#list;
    for (let i = 0; i < list.length; i += 3) fn(list[i + 2]!, list[i]!, this);
  }

  /**
   * The flat `[name, value, ...]` list Node's `writeHead` and `http2` accept (names as given),
   * followed by `more` (flat pairs as well, not validated: headers the caller adds on the way out).
   * The list is made at its final size, where pushing onto it would grow it.
   *
   * ```ts
   * new Headers({ "Content-Type": "text/plain" }).toFlat(["Content-Length", "5"]);
   * // ["Content-Type", "text/plain", "Content-Length", "5"]
   * ```
   */
  toFlat(more?: readonly string[]): string[] {
    const list = this.#list;
    const n = (list.length / 3) * 2;
    const out = new Array<string>(more === undefined ? n : n + more.length);
    for (let i = 0, o = 0; i < list.length; i += 3, o += 2) {
      out[o] = list[i]!;
      out[o + 1] = list[i + 2]!;
    }
    if (more !== undefined) for (let i = 0; i < more.length; i++) out[n + i] = more[i]!;
    return out;
  }

  /** Shows the entries in `console.log` and `util.inspect` (names as given, values in order). */
  [Symbol.for("nodejs.util.inspect.custom")](
    depth: number,
    options: object,
    inspect: (value: unknown, options: object) => string,
  ): string {
    return `Headers ${inspect([...this.entries()], { ...options, depth: depth < 0 ? null : depth })}`;
  }

  /** A plain object: lower-case names, a string for one value, an array for several. */
  toObject(): Record<string, string | string[]> {
    return this.addTo(Object.create(null));
  }

  /**
   * Adds the entries to `out` the way node's header objects hold them: lower-case names, a string
   * for one value, an array for several (joined with what `out` already has under that name).
   * Entries whose lower-case name `skip` accepts are left out. Returns `out`.
   *
   * ```ts
   * new Headers({ "Content-Type": "text/plain" }).addTo({ ":status": 200 });
   * // { ":status": 200, "content-type": "text/plain" }
   * ```
   */
  addTo<T extends Record<string, unknown>>(out: T, skip?: (key: string) => boolean): T {
    const list = this.#list;
    const o = out as Record<string, unknown>;
    for (let i = 0; i < list.length; i += 3) {
      const key = list[i + 1]!;
      if (skip?.(key)) continue;
      const value = list[i + 2]!;
      const prev = o[key];
      if (prev === undefined) o[key] = value;
      else if (Array.isArray(prev)) prev.push(value);
      else o[key] = [String(prev), value];
    }
    return out;
  }

  toJSON(): [string, string][] {
    return [...this.entries()];
  }

  /** A WHATWG `Headers` with the same entries (multiple values are appended, as WHATWG joins them). */
  toWeb(): globalThis.Headers {
    const h = new globalThis.Headers();
    const list = this.#list;
    for (let i = 0; i < list.length; i += 3) h.append(list[i]!, list[i + 2]!);
    return h;
  }

  get [Symbol.toStringTag](): string {
    return "Headers";
  }
}

const hasOwn = Object.prototype.hasOwnProperty;

function isIterable(x: unknown): boolean {
  return (
    typeof x === "object" && x !== null && typeof (x as Iterable<unknown>)[Symbol.iterator] === "function"
  );
}

/** Anything that carries headers: a `Headers`, or a message with a `headers` field. */
export type HeaderCarrier = Headers | { readonly headers: Headers };

function headersOf(h: HeaderCarrier): Headers {
  return h instanceof Headers ? h : h.headers;
}

/** The first value of `name`, or `fallback` (default `""`). HTTP.jl's `header`. */
export function header(msg: HeaderCarrier, name: string, fallback = ""): string {
  return headersOf(msg).get(name) ?? fallback;
}

/**
 * With two arguments: true when the first value of `name` is non-empty (HTTP.jl's `hasheader`; use
 * `headers.has` to test presence). With a value: true when any value equals it, ASCII case-insensitively.
 */
export function hasHeader(msg: HeaderCarrier, name: string, value?: string): boolean {
  const h = headersOf(msg);
  if (value === undefined) return (h.get(name) ?? "") !== "";
  const want = value.toLowerCase();
  return h.getAll(name).some((v) => v.toLowerCase() === want);
}

/**
 * True when a comma-separated value of `name` contains `token` (OWS trimmed, case-insensitive),
 * e.g. `headerContains(req, "Connection", "close")`.
 */
export function headerContains(msg: HeaderCarrier, name: string, token: string): boolean {
  const want = token.toLowerCase();
  for (const v of headersOf(msg).getAll(name)) {
    for (const part of v.split(",")) if (trimOws(part).toLowerCase() === want) return true;
  }
  return false;
}

/** Replaces every value of `name` (HTTP.jl's `setheader`). */
export function setHeader(msg: HeaderCarrier, name: string, value: string): void {
  headersOf(msg).set(name, value);
}

/** HTTP.jl's `appendheader`: joins with `","` when the last entry has the same name (not Set-Cookie). */
export function appendHeader(msg: HeaderCarrier, name: string, value: string): void {
  headersOf(msg).appendJoined(name, value);
}

/** Removes every value of `name`. */
export function removeHeader(msg: HeaderCarrier, name: string): void {
  headersOf(msg).delete(name);
}

/** Sets `name` only when it is absent (HTTP.jl's `defaultheader!`). */
export function defaultHeader(msg: HeaderCarrier, name: string, value: string): void {
  const h = headersOf(msg);
  if (!h.has(name)) h.append(name, value);
}

/** A `Headers` from any {@link HeadersInit}; `undefined`/`null` give an empty one. */
export function toHeaders(init?: HeadersInit | null): Headers {
  return init instanceof Headers ? init : new Headers(init ?? undefined);
}
