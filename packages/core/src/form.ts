// multipart/form-data (RFC 7578, HTML's form encoding) and multipart/mixed (RFC 2046) request
// bodies, streamed: the form is an async iterable of chunks, files are read in chunks as they are
// sent, never whole. Its length is known when every part's size is, and it can be sent again when
// no part is a one-shot stream.
import { randomBytes } from "node:crypto";
import { createReadStream, statSync } from "node:fs";
import { basename } from "node:path";
import { ArgumentError, ParseError } from "./errors.js";
import { isToken } from "./headers.js";

/** A file on disk, read in chunks each time the form is sent. */
export class FileSource {
  constructor(
    readonly path: string,
    readonly size: number,
  ) {}
}

/** What one part's content may be. */
export type PartData = string | Uint8Array | Blob | AsyncIterable<Uint8Array | string>;

/** Options of {@link Multipart} and {@link Form.file}. */
export interface MultipartInit {
  /** The part's file name (`filename=` in its Content-Disposition). Default: none (a `File`'s name, a path's base name). */
  filename?: string;
  /** The part's Content-Type. Default: a Blob's type; `application/octet-stream` for files; none for text. */
  contentType?: string;
  /** A `Content-Transfer-Encoding` header for the part (multipart/mixed uses it). Default: none. */
  contentTransferEncoding?: string;
}

/**
 * One part with its own file name and content type (HTTP.jl's `Multipart`). Plain values given to a
 * {@link Form} become parts without them.
 *
 * ```ts
 * new Form({ avatar: new Multipart(pngBytes, { filename: "me.png", contentType: "image/png" }) });
 * ```
 */
export class Multipart {
  readonly data: PartData | FileSource;
  readonly filename: string | undefined;
  readonly contentType: string | undefined;
  readonly contentTransferEncoding: string | undefined;
  #consumed = false;

  constructor(data: PartData, init: MultipartInit = {}) {
    if (!isPartData(data)) {
      throw new ArgumentError(
        `a form part must be a string, bytes, a Blob, a Readable or an async iterable of chunks, got ${Object.prototype.toString.call(data)}`,
      );
    }
    this.data = data;
    const fileName = typeof File !== "undefined" && data instanceof File ? data.name : undefined;
    const blobType = data instanceof Blob && data.type !== "" ? data.type : undefined;
    this.filename = checkText("filename", init.filename ?? fileName);
    this.contentType = checkText("contentType", init.contentType ?? blobType);
    this.contentTransferEncoding = checkText("contentTransferEncoding", init.contentTransferEncoding);
  }

  /** @internal A part read from a file path. */
  static fromFile(path: string, init: MultipartInit): Multipart {
    const part = new Multipart("", init);
    (part as { data: PartData | FileSource }).data = new FileSource(path, statSync(path).size);
    return part;
  }

  /** The content's size in bytes, or `undefined` for a stream. */
  get size(): number | undefined {
    const d = this.data;
    if (typeof d === "string") return Buffer.byteLength(d, "utf8");
    if (d instanceof Uint8Array) return d.byteLength;
    if (d instanceof Blob || d instanceof FileSource) return d.size;
    return undefined;
  }

  /** True unless the content is a stream, which can be read only once. */
  get replayable(): boolean {
    return this.size !== undefined;
  }

  /** @internal The content as chunks; a stream part refuses a second reading. */
  async *chunks(): AsyncGenerator<Uint8Array> {
    const d = this.data;
    if (typeof d === "string") {
      if (d !== "") yield Buffer.from(d, "utf8");
    } else if (d instanceof Uint8Array) {
      if (d.byteLength > 0) yield d;
    } else if (d instanceof FileSource) {
      yield* bytesOf(createReadStream(d.path, { highWaterMark: 64 * 1024 }));
    } else if (d instanceof Blob) {
      yield* bytesOf(d.stream() as unknown as AsyncIterable<Uint8Array>);
    } else {
      if (this.#consumed) {
        throw new ArgumentError(
          "a form with a stream part can be sent only once; build a new Form to send it again",
        );
      }
      this.#consumed = true;
      yield* bytesOf(d);
    }
  }
}

async function* bytesOf(source: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (chunk instanceof Uint8Array) {
      if (chunk.byteLength > 0) yield chunk;
    } else if (typeof chunk === "string") {
      if (chunk !== "") yield Buffer.from(chunk, "utf8");
    } else {
      throw new ArgumentError(
        `a form part stream yielded ${Object.prototype.toString.call(chunk)}; chunks must be strings or Uint8Arrays`,
      );
    }
  }
}

function isPartData(v: unknown): v is PartData {
  return (
    typeof v === "string" ||
    v instanceof Uint8Array ||
    v instanceof Blob ||
    (typeof v === "object" &&
      v !== null &&
      typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function")
  );
}

/** A header parameter or value given by the caller: a string without CR, LF or NUL. */
function checkText(what: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new ArgumentError(`${what} must be a string`);
  if (what !== "filename" && /[\r\n\0]/.test(v)) {
    throw new ArgumentError(`${what} ${JSON.stringify(v)} contains CR, LF or NUL`);
  }
  return v;
}

/** Options of {@link Form}. */
export interface FormOptions {
  /**
   * The boundary: 1–70 characters of RFC 2046's bchars (letters, digits, `'()+_,-./:=?` and space),
   * not ending in a space. Default: 56 random letters and digits (they cannot occur in the parts by chance).
   */
  boundary?: string;
  /** `"form-data"` (default) or `"mixed"` (multipart/mixed, HTTP.jl's `Batch`). */
  subtype?: "form-data" | "mixed";
}

/** Defaults of {@link FormOptions}. */
export const FORM_DEFAULTS = Object.freeze({ subtype: "form-data" as const, boundaryLength: 56 });

/** One form entry value: a part, or content that becomes a part. */
export type FormValue = PartData | Multipart;

/** The entries of a form: an object (array values repeat the name) or `[name, value]` pairs in order. */
export type FormEntries =
  | Record<string, FormValue | readonly FormValue[]>
  | Iterable<readonly [string, FormValue]>;

const BCHARS = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

function randomBoundary(): string {
  const bytes = randomBytes(FORM_DEFAULTS.boundaryLength);
  let out = "";
  // 256 = 4·62 + 8: the slight bias toward the first letters does not matter for a boundary.
  for (const b of bytes) out += ALPHABET[b % ALPHABET.length];
  return out;
}

/** HTML's escaping of a name or file name inside the quoted Content-Disposition parameters. */
function escapeName(s: string): string {
  return s.replace(/\r\n|\r|\n/g, "%0D%0A").replace(/"/g, "%22");
}

const CRLF = Buffer.from("\r\n", "latin1");

/**
 * A multipart body: `multipart/form-data` from named entries, or `multipart/mixed`. Values are
 * strings, bytes, Blobs/Files, Node Readables, async iterables of chunks, or {@link Multipart} parts
 * (file name and content type of their own); {@link Form.file} adds a file by path, read in chunks
 * when sent. The form is an async iterable of its encoded bytes; `length` is its size when every
 * part's is known (the client then sends Content-Length, else chunked); `replayable` is false when a
 * part is a stream.
 *
 * ```ts
 * const form = new Form({ title: "report", doc: Form.file("./report.pdf", { contentType: "application/pdf" }) });
 * await post("http://127.0.0.1:8080/upload", { body: form });
 * ```
 */
export class Form implements AsyncIterable<Uint8Array> {
  /** The boundary between parts. */
  readonly boundary: string;
  /** `multipart/form-data; boundary=...` (or `multipart/mixed; ...`). */
  readonly contentType: string;
  readonly parts: readonly (readonly [name: string, part: Multipart])[];
  readonly #subtype: "form-data" | "mixed";
  readonly #heads: Buffer[];
  readonly #close: Buffer;

  constructor(entries: FormEntries, options: FormOptions = {}) {
    const subtype = options.subtype ?? FORM_DEFAULTS.subtype;
    if (subtype !== "form-data" && subtype !== "mixed") {
      throw new ArgumentError(`subtype must be "form-data" or "mixed", got ${JSON.stringify(subtype)}`);
    }
    const boundary = options.boundary ?? randomBoundary();
    if (typeof boundary !== "string" || !BCHARS.test(boundary)) {
      throw new ArgumentError(
        `invalid multipart boundary ${JSON.stringify(boundary)}: give 1-70 characters of letters, digits and '()+_,-./:=? or space, not ending in a space (RFC 2046)`,
      );
    }
    this.#subtype = subtype;
    this.boundary = boundary;
    this.contentType = `multipart/${subtype}; boundary=${isToken(boundary) ? boundary : `"${boundary}"`}`;
    const parts: (readonly [string, Multipart])[] = [];
    for (const [name, value] of entriesOf(entries)) {
      if (typeof name !== "string") throw new ArgumentError("form entry names must be strings");
      parts.push([name, value instanceof Multipart ? value : new Multipart(value)]);
    }
    this.parts = parts;
    this.#heads = parts.map(([name, part], i) => this.#head(name, part, i === 0));
    this.#close = Buffer.from(`${parts.length === 0 ? "" : "\r\n"}--${boundary}--\r\n`, "latin1");
  }

  /**
   * A part read from the file at `path` when the form is sent (in 64 KiB chunks). Its size is taken
   * now (a synchronous `stat`), so a missing file fails here. File name default: the path's base
   * name; content type default: `application/octet-stream`.
   *
   * ```ts
   * new Form({ upload: Form.file("/tmp/data.csv", { contentType: "text/csv" }) });
   * ```
   */
  static file(path: string, init: MultipartInit = {}): Multipart {
    if (typeof path !== "string" || path === "") throw new ArgumentError("Form.file takes a file path");
    let part: Multipart;
    try {
      part = Multipart.fromFile(path, {
        filename: init.filename ?? basename(path),
        contentType: init.contentType ?? "application/octet-stream",
        ...(init.contentTransferEncoding !== undefined
          ? { contentTransferEncoding: init.contentTransferEncoding }
          : {}),
      });
    } catch (e) {
      if (e instanceof ArgumentError) throw e;
      throw new ArgumentError(`cannot read form file ${path}: ${(e as Error).message}`, { cause: e });
    }
    return part;
  }

  /**
   * A `multipart/mixed` body of unnamed parts (HTTP.jl's `Batch`).
   *
   * ```ts
   * const batch = Form.mixed([new Multipart('{"op":1}', { contentType: "application/json" })]);
   * ```
   */
  static mixed(parts: readonly FormValue[], options: Omit<FormOptions, "subtype"> = {}): Form {
    if (!Array.isArray(parts)) throw new ArgumentError("Form.mixed takes an array of parts");
    return new Form(
      parts.map((p) => ["", p] as const),
      { ...options, subtype: "mixed" },
    );
  }

  /** The encoded size in bytes, or `undefined` when a part is a stream. */
  get length(): number | undefined {
    let total = this.#close.byteLength;
    for (let i = 0; i < this.parts.length; i++) {
      const size = this.parts[i]![1].size;
      if (size === undefined) return undefined;
      total += this.#heads[i]!.byteLength + size;
    }
    return total;
  }

  /** True when the form can be sent again (no part is a one-shot stream). */
  get replayable(): boolean {
    for (const [, part] of this.parts) if (!part.replayable) return false;
    return true;
  }

  /** The encoded form, chunk by chunk. Each call starts from the beginning. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < this.parts.length; i++) {
      yield this.#heads[i]!;
      yield* this.parts[i]![1].chunks();
    }
    yield this.#close;
  }

  #head(name: string, part: Multipart, first: boolean): Buffer {
    let head = `${first ? "" : "\r\n"}--${this.boundary}\r\n`;
    if (this.#subtype === "form-data") {
      head += `Content-Disposition: form-data; name="${escapeName(name)}"`;
      if (part.filename !== undefined) head += `; filename="${escapeName(part.filename)}"`;
      head += "\r\n";
    } else if (part.filename !== undefined) {
      head += `Content-Disposition: attachment; filename="${escapeName(part.filename)}"\r\n`;
    }
    if (part.contentType !== undefined) head += `Content-Type: ${part.contentType}\r\n`;
    if (part.contentTransferEncoding !== undefined) {
      head += `Content-Transfer-Encoding: ${part.contentTransferEncoding}\r\n`;
    }
    return Buffer.concat([Buffer.from(head, "utf8"), CRLF]);
  }
}

function* entriesOf(entries: FormEntries): Generator<readonly [string, FormValue]> {
  if (typeof entries !== "object" || entries === null) {
    throw new ArgumentError("Form takes an object of entries or an iterable of [name, value] pairs");
  }
  if (typeof (entries as Iterable<unknown>)[Symbol.iterator] === "function") {
    for (const pair of entries as Iterable<readonly [string, FormValue]>) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new ArgumentError("Form entries given as an iterable must be [name, value] pairs");
      }
      yield pair;
    }
    return;
  }
  for (const [name, value] of Object.entries(entries as Record<string, FormValue | readonly FormValue[]>)) {
    if (Array.isArray(value)) for (const v of value) yield [name, v];
    else yield [name, value as FormValue];
  }
}

/** One part of a parsed multipart body. */
export interface ParsedPart {
  /** The `name` parameter of its Content-Disposition (`""` when absent, as in multipart/mixed). */
  readonly name: string;
  /** The `filename` parameter, or `undefined`. */
  readonly filename: string | undefined;
  /** Its Content-Type, or `undefined` when it has none. */
  readonly contentType: string | undefined;
  /** All its header fields (lower-cased names), in order. */
  readonly headers: ReadonlyMap<string, string>;
  /** Its content (a view into the body given to {@link parseMultipart}). */
  readonly data: Uint8Array;
}

/** A parsed media type: `type/subtype` in lower case and its parameters (names lower case, values unquoted). */
interface MediaType {
  readonly type: string;
  readonly params: Map<string, string>;
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** RFC 9110 §8.3.1 media type with parameters; quoted-string values with backslash escapes. */
function parseMediaType(value: string): MediaType {
  const semi = value.indexOf(";");
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const slash = type.indexOf("/");
  if (slash <= 0 || !TOKEN_RE.test(type.slice(0, slash)) || !TOKEN_RE.test(type.slice(slash + 1))) {
    throw new ParseError(`malformed media type ${JSON.stringify(value)}`);
  }
  const params = parseParams(semi < 0 ? "" : value.slice(semi), `media type ${JSON.stringify(value)}`);
  return { type, params };
}

/** `; name=value; name="quoted"` parameters (names lower-cased). */
function parseParams(s: string, what: string): Map<string, string> {
  const params = new Map<string, string>();
  let i = 0;
  const n = s.length;
  for (let guard = 0; guard <= n && i < n; guard++) {
    while (i < n && (s[i] === " " || s[i] === "\t")) i++;
    if (i >= n) break;
    if (s[i] !== ";") throw new ParseError(`malformed parameters in ${what}`);
    i++;
    while (i < n && (s[i] === " " || s[i] === "\t")) i++;
    if (i >= n) break; // a trailing ";" is tolerated, as browsers do
    const eq = s.indexOf("=", i);
    if (eq < 0) throw new ParseError(`a parameter without a value in ${what}`);
    const name = s.slice(i, eq).trim().toLowerCase();
    if (!TOKEN_RE.test(name)) throw new ParseError(`malformed parameter name in ${what}`);
    i = eq + 1;
    let value = "";
    if (s[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = s[i]!;
        if (c === "\\" && i + 1 < n) {
          value += s[i + 1];
          i += 2;
        } else if (c === '"') {
          closed = true;
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) throw new ParseError(`an unterminated quoted string in ${what}`);
    } else {
      const start = i;
      while (i < n && s[i] !== ";" && s[i] !== " " && s[i] !== "\t") i++;
      value = s.slice(start, i);
    }
    if (!params.has(name)) params.set(name, value);
  }
  return params;
}

/** Undoes {@link escapeName} (what HTML form encoding does to names and file names). */
function unescapeName(s: string): string {
  return s.indexOf("%") < 0 ? s : s.replace(/%0D%0A/gi, "\r\n").replace(/%22/gi, '"');
}

/**
 * Parses a multipart body (form-data, mixed, or any `multipart/*`) given its Content-Type header
 * value: the boundary is read with a real media-type parser (case-insensitive names, quoted values).
 * Returns the parts with their name, file name, content type, headers and data (views into `body`,
 * no copies). Anything malformed (not multipart, a missing or bad boundary, no closing delimiter, a
 * part without its blank line) throws `ParseError`. Names and file names escaped by HTML form
 * encoding (`%22`, `%0D%0A`) are unescaped.
 *
 * ```ts
 * const parts = parseMultipart(req.headers.get("content-type") ?? "", req.body);
 * const file = parts.find((p) => p.name === "upload");
 * ```
 */
export function parseMultipart(contentType: string, body: Uint8Array): ParsedPart[] {
  if (typeof contentType !== "string")
    throw new ParseError("parseMultipart needs the Content-Type header value");
  const media = parseMediaType(contentType);
  if (!media.type.startsWith("multipart/")) {
    throw new ParseError(`not a multipart body: Content-Type is ${media.type}`);
  }
  const boundary = media.params.get("boundary");
  if (boundary === undefined || !BCHARS.test(boundary)) {
    throw new ParseError(
      `multipart Content-Type without a valid boundary (1-70 characters of RFC 2046 bchars): ${JSON.stringify(contentType)}`,
    );
  }
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const dash = Buffer.from(`--${boundary}`, "latin1");
  const delimiter = Buffer.from(`\r\n--${boundary}`, "latin1");
  // The first delimiter may start the body or follow a preamble (which ends with CRLF).
  let pos: number;
  if (buf.subarray(0, dash.length).equals(dash)) pos = dash.length;
  else {
    const at = buf.indexOf(delimiter);
    if (at < 0) throw new ParseError("multipart body without its opening boundary");
    pos = at + delimiter.length;
  }
  const parts: ParsedPart[] = [];
  for (let guard = 0; guard <= buf.length; guard++) {
    // After a delimiter: "--" closes the body; else optional transport padding, then CRLF.
    if (buf[pos] === 0x2d && buf[pos + 1] === 0x2d) return parts;
    while (buf[pos] === 0x20 || buf[pos] === 0x09) pos++;
    if (buf[pos] !== 0x0d || buf[pos + 1] !== 0x0a) throw new ParseError("malformed multipart boundary line");
    pos += 2;
    const next = buf.indexOf(delimiter, pos);
    if (next < 0) throw new ParseError("multipart body without its closing boundary");
    parts.push(parsePart(buf.subarray(pos, next)));
    pos = next + delimiter.length;
  }
  throw new ParseError("multipart body without its closing boundary");
}

function parsePart(raw: Buffer): ParsedPart {
  let headEnd: number;
  let dataStart: number;
  if (raw[0] === 0x0d && raw[1] === 0x0a) {
    headEnd = 0;
    dataStart = 2;
  } else {
    headEnd = raw.indexOf("\r\n\r\n");
    if (headEnd < 0) throw new ParseError("a multipart part without the blank line after its headers");
    dataStart = headEnd + 4;
  }
  const headers = new Map<string, string>();
  if (headEnd > 0) {
    for (const line of raw.subarray(0, headEnd).toString("utf8").split("\r\n")) {
      const colon = line.indexOf(":");
      const name = colon < 0 ? "" : line.slice(0, colon).trim().toLowerCase();
      if (!TOKEN_RE.test(name))
        throw new ParseError(`malformed multipart part header ${JSON.stringify(line)}`);
      const value = line.slice(colon + 1).trim();
      const prev = headers.get(name);
      headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
    }
  }
  let name = "";
  let filename: string | undefined;
  const disposition = headers.get("content-disposition");
  if (disposition !== undefined) {
    const semi = disposition.indexOf(";");
    const params = parseParams(semi < 0 ? "" : disposition.slice(semi), "Content-Disposition");
    name = unescapeName(params.get("name") ?? "");
    const fn = params.get("filename");
    filename = fn === undefined ? undefined : unescapeName(fn);
  }
  return { name, filename, contentType: headers.get("content-type"), headers, data: raw.subarray(dataStart) };
}
