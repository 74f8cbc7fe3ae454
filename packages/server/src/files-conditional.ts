// Validators and the request headers that test them (RFC 9110 §8.8, §13, §14): HTTP dates, entity
// tags, the precondition order, If-Range and the Range header. Pure functions over strings, so every
// odd input can be reasoned about (and tested) without a file in sight. Malformed input never throws:
// a date that does not parse is ignored, a list of entity tags that does not parse matches nothing.
import { ArgumentError } from "@hyperwire/core";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

// The three HTTP-date forms a recipient must accept (RFC 9110 §5.6.7), matched exactly: Date.parse
// accepts far too much ("1" is the year 2001), and a garbage date must be ignored, not guessed at.
const IMF_FIXDATE = /^([A-Z][a-z]{2}), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC850_DATE = /^([A-Z][a-z]{5,8}), (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ASCTIME_DATE = /^([A-Z][a-z]{2}) ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

function toMillis(
  year: number,
  monthName: string,
  day: number,
  hour: number,
  minute: number,
  second: number,
): number {
  const month = MONTHS.indexOf(monthName);
  if (month < 0 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return Number.NaN;
  const ms = Date.UTC(year, month, day, hour, minute, second);
  // Rejects 31 Feb and the like, which Date.UTC would roll over into the next month.
  return new Date(ms).getUTCDate() === day ? ms : Number.NaN;
}

/**
 * Parses an HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms) into milliseconds
 * since the epoch; `NaN` for anything else.
 *
 * ```ts
 * parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"); // 784111777000
 * ```
 */
export function parseHttpDate(value: string): number {
  const s = value.trim();
  let m = IMF_FIXDATE.exec(s);
  if (m !== null) {
    if (!DAYS.includes(m[1]!)) return Number.NaN;
    return toMillis(Number(m[4]), m[3]!, Number(m[2]), Number(m[5]), Number(m[6]), Number(m[7]));
  }
  m = RFC850_DATE.exec(s);
  if (m !== null) {
    if (!LONG_DAYS.includes(m[1]!)) return Number.NaN;
    // Two-digit years: RFC 9110 says a year that looks more than 50 years ahead is in the past.
    let year = 2000 + Number(m[4]);
    if (year > new Date().getUTCFullYear() + 50) year -= 100;
    return toMillis(year, m[3]!, Number(m[2]), Number(m[5]), Number(m[6]), Number(m[7]));
  }
  m = ASCTIME_DATE.exec(s);
  if (m !== null) {
    if (!DAYS.includes(m[1]!)) return Number.NaN;
    return toMillis(Number(m[7]), m[2]!, Number(m[3]!.trim()), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  return Number.NaN;
}

/** `ms` floored to whole seconds, formatted as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`). */
export function formatHttpDate(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toUTCString();
}

/** One entity tag: its opaque part (quotes included) and whether it is weak. */
interface EntityTag {
  readonly weak: boolean;
  readonly opaque: string;
}

function isEtagChar(c: number): boolean {
  return c === 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

/** Parses one entity tag that spans the whole of `s`; `undefined` when it is not one. */
function parseEntityTag(s: string): EntityTag | undefined {
  const weak = s.startsWith("W/");
  const opaque = weak ? s.slice(2) : s;
  if (opaque.length < 2 || opaque[0] !== '"' || opaque[opaque.length - 1] !== '"') return undefined;
  for (let i = 1; i < opaque.length - 1; i++) if (!isEtagChar(opaque.charCodeAt(i))) return undefined;
  return { weak, opaque };
}

/**
 * Checks an ETag value given by the caller and returns it as an entity tag: a value already in the
 * `"…"` or `W/"…"` form is kept, a bare value is put in quotes. Throws `ArgumentError` for a value
 * that cannot be an entity tag (empty, or with a quote, space or control character inside).
 */
export function normalizeEtag(value: string): string {
  if (parseEntityTag(value) !== undefined) return value;
  const quoted = `"${value}"`;
  if (value.length === 0 || parseEntityTag(quoted) === undefined) {
    throw new ArgumentError(
      `etag ${JSON.stringify(value)} is not a valid entity tag; use printable ASCII without quotes or spaces`,
    );
  }
  return quoted;
}

/**
 * The entity tags of an If-Match / If-None-Match value: `"*"`, a list of tags, or `undefined` when the
 * value does not parse (a recipient cannot tell what it was meant to match, so it matches nothing).
 */
function parseTagList(value: string): "*" | EntityTag[] | undefined {
  const s = value.trim();
  if (s === "*") return "*";
  const tags: EntityTag[] = [];
  // Bounded: each turn consumes at least one character of `s`.
  let i = 0;
  while (i < s.length) {
    while (i < s.length && (s[i] === " " || s[i] === "\t" || s[i] === ",")) i++;
    if (i >= s.length) break;
    const start = i;
    if (s.startsWith("W/", i)) i += 2;
    if (s[i] !== '"') return undefined;
    const close = s.indexOf('"', i + 1);
    if (close < 0) return undefined;
    const tag = parseEntityTag(s.slice(start, close + 1));
    if (tag === undefined) return undefined;
    tags.push(tag);
    i = close + 1;
    while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
    if (i < s.length && s[i] !== ",") return undefined;
  }
  return tags.length > 0 ? tags : undefined;
}

/** Strong comparison: both tags strong and the same opaque part. */
function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** True when the If-Match value lets the request through (`*` always does: the resource exists). */
function ifMatchPasses(header: string, etag: EntityTag | undefined): boolean {
  const list = parseTagList(header);
  if (list === "*") return true;
  if (list === undefined || etag === undefined) return false;
  return list.some((t) => strongMatch(t, etag));
}

/** True when the If-None-Match value matches the current tag (weak comparison; `*` always does). */
function ifNoneMatchMatches(header: string, etag: EntityTag | undefined): boolean {
  const list = parseTagList(header);
  if (list === "*") return true;
  if (list === undefined || etag === undefined) return false;
  return list.some((t) => t.opaque === etag.opaque);
}

/** The validators of the representation being served. */
export interface Validators {
  /** The ETag header value, if any. */
  readonly etag: string | undefined;
  /** Last-Modified in milliseconds, already floored to seconds; `NaN` when unknown. */
  readonly modified: number;
}

/** Request headers the preconditions read, `null` when absent. */
export interface ConditionalHeaders {
  readonly ifMatch: string | null;
  readonly ifUnmodifiedSince: string | null;
  readonly ifNoneMatch: string | null;
  readonly ifModifiedSince: string | null;
}

/**
 * Evaluates the preconditions in RFC 9110 §13.2.2 order: If-Match (strong) or else
 * If-Unmodified-Since → 412; then If-None-Match (weak) → 304 for GET/HEAD, 412 otherwise; or else
 * If-Modified-Since (GET/HEAD only) → 304. Returns the status to answer with, or 0 to go on.
 */
export function evaluatePreconditions(method: string, h: ConditionalHeaders, v: Validators): 0 | 304 | 412 {
  const tag = v.etag === undefined ? undefined : parseEntityTag(v.etag);
  const safe = method === "GET" || method === "HEAD";
  if (h.ifMatch !== null) {
    if (!ifMatchPasses(h.ifMatch, tag)) return 412;
  } else if (h.ifUnmodifiedSince !== null && !Number.isNaN(v.modified)) {
    const since = parseHttpDate(h.ifUnmodifiedSince);
    if (!Number.isNaN(since) && v.modified > since) return 412;
  }
  if (h.ifNoneMatch !== null) {
    if (ifNoneMatchMatches(h.ifNoneMatch, tag)) return safe ? 304 : 412;
  } else if (safe && h.ifModifiedSince !== null && !Number.isNaN(v.modified)) {
    const since = parseHttpDate(h.ifModifiedSince);
    if (!Number.isNaN(since) && v.modified <= since) return 304;
  }
  return 0;
}

/**
 * True when a Range may be honoured under `If-Range`: its value is a strong ETag equal to the current
 * one (strong comparison), or an HTTP-date exactly equal to Last-Modified. Anything else, including a
 * weak tag or garbage, means "send the whole representation".
 */
export function ifRangePasses(value: string, v: Validators): boolean {
  const s = value.trim();
  if (s.startsWith('"') || s.startsWith("W/")) {
    const given = parseEntityTag(s);
    const current = v.etag === undefined ? undefined : parseEntityTag(v.etag);
    return given !== undefined && current !== undefined && strongMatch(given, current);
  }
  const date = parseHttpDate(s);
  return !Number.isNaN(date) && !Number.isNaN(v.modified) && date === v.modified;
}

/** What a Range header asks for, against a representation of `size` bytes. */
export type RangeResult =
  /** Serve the whole representation (200). */
  | { readonly kind: "full" }
  /** Serve bytes `start` to `end` inclusive (206). */
  | { readonly kind: "partial"; readonly start: number; readonly end: number }
  /** 416 Range Not Satisfiable. */
  | { readonly kind: "unsatisfiable" };

const FULL: RangeResult = Object.freeze({ kind: "full" });
const UNSATISFIABLE: RangeResult = Object.freeze({ kind: "unsatisfiable" });
const DIGITS = /^\d+$/;

/**
 * Resolves a Range header against `size` bytes. Only one `bytes=` range is served: `a-b` (the end is
 * clamped to the size), `a-` and `-n` (the last n bytes; `-0` means the whole body). Several ranges,
 * anything that does not parse (another unit included), `a > b`, or a start at or past the end of a
 * non-empty representation are unsatisfiable. An empty representation is always served whole.
 */
export function resolveRange(header: string, size: number): RangeResult {
  const value = header.trim();
  if (value.length < 6 || value.slice(0, 6).toLowerCase() !== "bytes=") return UNSATISFIABLE;
  const spec = value.slice(6).trim();
  // One range only: a comma means several (a list with empty elements included).
  if (spec.includes(",")) return UNSATISFIABLE;
  const dash = spec.indexOf("-");
  if (dash < 0) return UNSATISFIABLE;
  const first = spec.slice(0, dash).trim();
  const last = spec.slice(dash + 1).trim();
  if (first === "") {
    // Suffix range: the last `n` bytes.
    if (!DIGITS.test(last)) return UNSATISFIABLE;
    const n = Number(last);
    if (n === 0 || size === 0) return FULL;
    const start = n >= size ? 0 : size - n;
    return { kind: "partial", start, end: size - 1 };
  }
  if (!DIGITS.test(first) || (last !== "" && !DIGITS.test(last))) return UNSATISFIABLE;
  // Numbers past 2^53 lose precision but keep their order, which is all that is compared here.
  const start = Number(first);
  const end = last === "" ? Number.POSITIVE_INFINITY : Number(last);
  if (start > end) return UNSATISFIABLE;
  if (size === 0) return FULL;
  if (start >= size) return UNSATISFIABLE;
  return { kind: "partial", start, end: Math.min(end, size - 1) };
}
