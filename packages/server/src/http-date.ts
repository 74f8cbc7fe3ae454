// The Date header's value (RFC 9110 §6.6.1), formatted at most once a second, as node:http caches
// its own.

let cached: string | undefined;

function forget(): void {
  cached = undefined;
}

/** The current time as an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`), cached until the next second. */
export function httpDate(): string {
  if (cached === undefined) {
    const now = new Date();
    cached = now.toUTCString();
    setTimeout(forget, 1000 - now.getMilliseconds()).unref();
  }
  return cached;
}
