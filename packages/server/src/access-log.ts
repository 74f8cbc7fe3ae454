/**
 * One served request, as the `accessLog` option receives it.
 *
 * ```ts
 * await serve(handler, { accessLog: (e) => console.log(e.method, e.target, e.status, e.durationMs) });
 * ```
 */
export interface AccessLogEntry {
  /** The peer's IP address. */
  readonly remoteAddress: string;
  /** When the request head arrived. */
  readonly time: Date;
  readonly method: string;
  /** The request target as sent. */
  readonly target: string;
  /** `"1.0"`, `"1.1"` or `"2.0"`. */
  readonly version: string;
  readonly status: number;
  /** Response body bytes handed to the socket. */
  readonly bytes: number;
  /** The `Referer` request header, or `""`. */
  readonly referer: string;
  /** The `User-Agent` request header, or `""`. */
  readonly userAgent: string;
  /** From the head's arrival to the end of the response, in milliseconds. */
  readonly durationMs: number;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function quote(s: string): string {
  return s.replace(/["\\\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/**
 * The entry as one line of the combined log format (Apache/nginx), in UTC:
 * `127.0.0.1 - - [25/Nov/2026:06:45:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.5.0"`.
 *
 * ```ts
 * formatCombinedLog(entry); // '127.0.0.1 - - [25/Nov/2026:06:45:00 +0000] "GET / HTTP/1.1" 200 5 "-" "-"'
 * ```
 */
export function formatCombinedLog(e: AccessLogEntry): string {
  const t = e.time;
  const date = `${pad(t.getUTCDate())}/${MONTHS[t.getUTCMonth()]}/${t.getUTCFullYear()}:${pad(t.getUTCHours())}:${pad(
    t.getUTCMinutes(),
  )}:${pad(t.getUTCSeconds())} +0000`;
  const bytes = e.bytes > 0 ? String(e.bytes) : "-";
  return `${e.remoteAddress || "-"} - - [${date}] "${quote(e.method)} ${quote(e.target)} HTTP/${e.version}" ${e.status} ${bytes} "${quote(e.referer || "-")}" "${quote(e.userAgent || "-")}"`;
}
