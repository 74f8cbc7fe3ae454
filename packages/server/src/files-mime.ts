// Content types for file serving: a fixed extension map (HTTP.jl's list), then a small sniffer over the
// first bytes for everything else. Kept deliberately small: a file server that guesses exotic types
// from content invites the browser to guess too, so anything unrecognised is text/plain when it is
// clean UTF-8 text and application/octet-stream otherwise.

/** How many leading bytes {@link sniffContentType} looks at. */
export const SNIFF_BYTES = 512;

const TEXT = "; charset=utf-8";

/** Extension (lower case, with the dot) → Content-Type. Text types carry `charset=utf-8`. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  ".html": `text/html${TEXT}`,
  ".htm": `text/html${TEXT}`,
  ".css": `text/css${TEXT}`,
  ".csv": `text/csv${TEXT}`,
  ".js": `text/javascript${TEXT}`,
  ".mjs": `text/javascript${TEXT}`,
  ".json": `application/json${TEXT}`,
  ".md": `text/markdown${TEXT}`,
  ".txt": `text/plain${TEXT}`,
  ".xml": `application/xml${TEXT}`,
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".ico": "image/x-icon",
  ".svg": "image/svg+xml",
  ".webp": "image/webp",
  ".pdf": "application/pdf",
  ".wasm": "application/wasm",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
});

/** The Content-Type for `name`'s extension (case-insensitive), or `undefined` when it is not in the map. */
export function contentTypeByName(name: string): string | undefined {
  const slash = Math.max(name.lastIndexOf("/"), name.lastIndexOf("\\"));
  const dot = name.lastIndexOf(".");
  if (dot <= slash + 1) return undefined; // no extension, or a dot file such as ".env"
  const ext = name.slice(dot).toLowerCase();
  return Object.hasOwn(CONTENT_TYPES, ext) ? CONTENT_TYPES[ext] : undefined;
}

// Tags that mark a document as HTML when it starts with one (after whitespace), as in the WHATWG
// MIME sniffing standard; each must be followed by a space or `>`.
const HTML_TAGS = [
  "<!doctype html",
  "<html",
  "<head",
  "<script",
  "<iframe",
  "<h1",
  "<div",
  "<font",
  "<table",
  "<a",
  "<style",
  "<title",
  "<b",
  "<body",
  "<br",
  "<p",
  "<!--",
];

function startsWithBytes(bytes: Uint8Array, at: number, prefix: readonly number[]): boolean {
  if (bytes.length - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[at + i] !== prefix[i]) return false;
  return true;
}

function isWhitespace(b: number): boolean {
  return b === 0x09 || b === 0x0a || b === 0x0c || b === 0x0d || b === 0x20;
}

function looksLikeHtml(bytes: Uint8Array): boolean {
  let i = 0;
  while (i < bytes.length && isWhitespace(bytes[i]!)) i++;
  for (const tag of HTML_TAGS) {
    if (bytes.length - i <= tag.length) continue;
    let match = true;
    for (let k = 0; k < tag.length; k++) {
      let b = bytes[i + k]!;
      if (b >= 0x41 && b <= 0x5a) b += 0x20; // ASCII lower case
      if (b !== tag.charCodeAt(k)) {
        match = false;
        break;
      }
    }
    const after = bytes[i + tag.length]!;
    if (match && (after === 0x20 || after === 0x3e)) return true;
  }
  return false;
}

/**
 * True when `bytes` is UTF-8 text: well-formed UTF-8 (a sequence cut off by the end of the sample is
 * allowed, since the sample is a prefix) with no "binary" control bytes (NUL, the C0 controls other
 * than tab, line feed, form feed, carriage return and escape).
 */
function looksLikeUtf8Text(bytes: Uint8Array): boolean {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0c && b !== 0x0d && b !== 0x1b) return false;
      i++;
      continue;
    }
    let need: number;
    let min: number;
    let cp: number;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
      cp = b & 0x1f;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
      cp = b & 0x0f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (i + need >= bytes.length) {
      // The sample ends inside this sequence: fine if the continuation bytes that are there are valid.
      for (let k = i + 1; k < bytes.length; k++) if ((bytes[k]! & 0xc0) !== 0x80) return false;
      return true;
    }
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k]!;
      if ((c & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += need + 1;
  }
  return true;
}

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG = [0xff, 0xd8, 0xff];
const GIF87 = [0x47, 0x49, 0x46, 0x38, 0x37, 0x61];
const GIF89 = [0x47, 0x49, 0x46, 0x38, 0x39, 0x61];
const PDF = [0x25, 0x50, 0x44, 0x46, 0x2d];
const RIFF = [0x52, 0x49, 0x46, 0x46];
const WEBP = [0x57, 0x45, 0x42, 0x50];

/**
 * Guesses a Content-Type from the first bytes of a body (only the first {@link SNIFF_BYTES} are
 * looked at): HTML, PNG, JPEG, GIF, PDF, WebP; otherwise `text/plain; charset=utf-8` when the bytes
 * are clean UTF-8 text (an empty body counts), else `application/octet-stream`.
 *
 * ```ts
 * sniffContentType(new TextEncoder().encode("<!DOCTYPE html><p>hi")); // "text/html; charset=utf-8"
 * ```
 */
export function sniffContentType(head: Uint8Array): string {
  const bytes = head.length > SNIFF_BYTES ? head.subarray(0, SNIFF_BYTES) : head;
  if (startsWithBytes(bytes, 0, PNG)) return "image/png";
  if (startsWithBytes(bytes, 0, JPEG)) return "image/jpeg";
  if (startsWithBytes(bytes, 0, GIF87) || startsWithBytes(bytes, 0, GIF89)) return "image/gif";
  if (startsWithBytes(bytes, 0, PDF)) return "application/pdf";
  if (startsWithBytes(bytes, 0, RIFF) && startsWithBytes(bytes, 8, WEBP)) return "image/webp";
  if (looksLikeHtml(bytes)) return `text/html${TEXT}`;
  if (looksLikeUtf8Text(bytes)) return `text/plain${TEXT}`;
  return "application/octet-stream";
}
