// Response decompression (gzip, deflate, br) with a cap on the decoded size, for buffered bodies and
// for streamed ones (a responseStream, open()'s reads). Headers are left as they arrived.
import { type Transform, Writable } from "node:stream";
import zlib from "node:zlib";
import {
  ArgumentError,
  DecompressionLimitError,
  type Headers,
  type HTTPError,
  ParseError,
} from "@hyperwire/core";

/** The defaults of the decompression request options, in one place. */
export const DECOMPRESS_DEFAULTS = Object.freeze({
  decompress: true,
  /** 64 MiB. */
  maxDecompressedSize: 64 * 1024 * 1024,
});

/** The `Accept-Encoding` added to requests that set none. */
export const ACCEPT_ENCODING = "gzip, deflate, br";

/** A content coding we decode. */
export type Coding = "gzip" | "deflate" | "br";

/** Checks `decompress` and `maxDecompressedSize`; returns the limit (`0`: unlimited). Throws `ArgumentError`. */
export function decompressLimit(decompress: unknown, max: unknown): number {
  if (decompress !== undefined && typeof decompress !== "boolean") {
    throw new ArgumentError("decompress must be a boolean");
  }
  if (max === undefined) return DECOMPRESS_DEFAULTS.maxDecompressedSize;
  if (typeof max !== "number" || !Number.isInteger(max) || max < 0) {
    throw new ArgumentError(
      `maxDecompressedSize must be an integer ≥ 0 (bytes; 0: no limit), got ${String(max)}`,
    );
  }
  return max;
}

/**
 * The coding to undo for a response, or `null` to leave the body as it is: no body by definition
 * (HEAD, 1xx, 204, 304), no or `identity` coding, or a coding we do not know. A list of several
 * codings is left undecoded too (no server we know stacks them).
 */
export function codingOf(status: number, method: string, headers: Headers): Coding | null {
  if (status < 200 || status === 204 || status === 304 || method === "HEAD") return null;
  const raw = headers.get("content-encoding");
  if (raw === null || raw === undefined) return null;
  const v = raw.trim().toLowerCase();
  if (v === "gzip" || v === "x-gzip") return "gzip";
  if (v === "deflate" || v === "x-deflate") return "deflate";
  if (v === "br") return "br";
  return null;
}

/**
 * `deflate` is meant to be zlib-wrapped (RFC 9110 §8.4.1.2) but some servers send raw deflate: a
 * zlib stream starts with a CMF byte of method 8 whose 16-bit header is a multiple of 31.
 */
function isZlibWrapped(first: number, second: number | undefined): boolean {
  return (
    (first & 0x0f) === 8 && first >> 4 <= 7 && (second === undefined || ((first << 8) | second) % 31 === 0)
  );
}

type ZlibStream = zlib.Zlib & Transform;

function decoderFor(coding: Coding, first: number, second: number | undefined): ZlibStream {
  switch (coding) {
    case "gzip":
      // Members after the first are decoded too (as `gunzip` does); the wire form is one stream.
      return zlib.createGunzip();
    case "deflate":
      return isZlibWrapped(first, second) ? zlib.createInflate() : zlib.createInflateRaw();
    default:
      return zlib.createBrotliDecompress();
  }
}

/** Maps a zlib failure: past the limit → `DecompressionLimitError`, anything else → `ParseError`. */
export function decodeError(e: unknown, coding: Coding, limit: number): HTTPError {
  if ((e as { code?: string })?.code === "ERR_BUFFER_TOO_LARGE")
    return new DecompressionLimitError(limit, { cause: e });
  if (e instanceof DecompressionLimitError || e instanceof ParseError) return e;
  return new ParseError(
    `the ${coding}-encoded response body is corrupt: ${(e as Error)?.message ?? String(e)}`,
    {
      cause: e,
    },
  );
}

/**
 * Decodes a whole buffered body. zlib stops at `limit` decoded bytes (`maxOutputLength`), so no more
 * than that is ever held. Runs on the thread pool, not the event loop.
 */
export function decodeBuffered(body: Uint8Array, coding: Coding, limit: number): Promise<Uint8Array> {
  if (body.byteLength === 0) return Promise.resolve(body);
  const opts: zlib.ZlibOptions & zlib.BrotliOptions = limit > 0 ? { maxOutputLength: limit } : {};
  return new Promise<Uint8Array>((resolve, reject) => {
    const done = (err: Error | null, out: Buffer): void => {
      if (err) reject(decodeError(err, coding, limit));
      else if (limit > 0 && out.byteLength > limit) reject(new DecompressionLimitError(limit));
      else resolve(out);
    };
    if (coding === "gzip") zlib.gunzip(body, opts, done);
    else if (coding === "br") zlib.brotliDecompress(body, opts, done);
    else if (isZlibWrapped(body[0]!, body[1])) zlib.inflate(body, opts, done);
    else zlib.inflateRaw(body, opts, done);
  });
}

/**
 * A streaming decoder that counts what it produced: `push(chunk)` feeds wire bytes, decoded bytes go
 * to `out` (which returns false to ask for a pause), `end()` resolves once everything was decoded and
 * handed over. The first failure (corrupt data, past the limit) rejects `push`/`end` and is also given
 * to `onError`, so a running exchange can be stopped at once.
 */
export class StreamDecoder {
  readonly #coding: Coding;
  readonly #limit: number;
  readonly #out: (chunk: Uint8Array) => boolean | Promise<void>;
  readonly #onError: (e: HTTPError) => void;
  #z: ZlibStream | undefined;
  #produced = 0;
  #error: HTTPError | undefined;
  #ended: Promise<void> | undefined;

  constructor(
    coding: Coding,
    limit: number,
    out: (chunk: Uint8Array) => boolean | Promise<void>,
    onError: (e: HTTPError) => void,
  ) {
    this.#coding = coding;
    this.#limit = limit;
    this.#out = out;
    this.#onError = onError;
  }

  /** The first failure, if any. */
  get error(): HTTPError | undefined {
    return this.#error;
  }

  #fail(e: unknown): void {
    if (this.#error !== undefined) return;
    this.#error = decodeError(e, this.#coding, this.#limit);
    this.#z?.destroy();
    this.#onError(this.#error);
  }

  #decoder(first: number, second: number | undefined): ZlibStream {
    const z = decoderFor(this.#coding, first, second);
    z.on("error", (e: Error) => this.#fail(e));
    z.on("data", (chunk: Buffer) => {
      if (this.#error !== undefined) return;
      this.#produced += chunk.byteLength;
      if (this.#limit > 0 && this.#produced > this.#limit) {
        this.#fail(new DecompressionLimitError(this.#limit));
        return;
      }
      const r = this.#out(chunk);
      if (r === false) {
        // The consumer is full: stop decoding (zlib stops taking input too) until it drains.
        z.pause();
      } else if (r instanceof Promise) {
        z.pause();
        r.then(
          () => z.resume(),
          (e: unknown) => this.#fail(e),
        );
      }
    });
    this.#z = z;
    return z;
  }

  /** Resumes decoding after `out` asked for a pause. */
  resume(): void {
    this.#z?.resume();
  }

  /** Feeds wire bytes; resolves once zlib took them (so a slow consumer slows the caller). */
  push(chunk: Uint8Array): Promise<void> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (chunk.byteLength === 0) return Promise.resolve();
    const z = this.#z ?? this.#decoder(chunk[0]!, chunk[1]);
    return new Promise<void>((resolve, reject) => {
      z.write(chunk, (err) => {
        if (err || this.#error) reject(this.#error ?? decodeError(err, this.#coding, this.#limit));
        else resolve();
      });
    });
  }

  /** Ends the input; resolves once the last decoded byte was handed to `out`. */
  end(): Promise<void> {
    if (this.#ended !== undefined) return this.#ended;
    this.#ended = new Promise<void>((resolve, reject) => {
      if (this.#error !== undefined) {
        reject(this.#error);
        return;
      }
      const z = this.#z;
      if (z === undefined) {
        resolve();
        return;
      }
      z.once("end", () => (this.#error ? reject(this.#error) : resolve()));
      z.once("close", () => {
        if (this.#error) reject(this.#error);
        else if (!z.readableEnded)
          reject(new ParseError(`the ${this.#coding}-encoded response body ended early`));
      });
      z.end();
    });
    return this.#ended;
  }

  /** Stops decoding and frees zlib's memory. Idempotent. */
  destroy(): void {
    this.#z?.destroy();
  }
}

/**
 * Pull-side decoding for `open()`: `read()` returns the next decoded chunk or `null` at the end,
 * pulling wire chunks from `source` as needed.
 */
export class PullDecoder {
  readonly #source: () => Promise<Uint8Array | null>;
  readonly #queue: Uint8Array[] = [];
  readonly #decoder: StreamDecoder;
  #done = false;
  #wake: (() => void) | undefined;

  constructor(
    coding: Coding,
    limit: number,
    source: () => Promise<Uint8Array | null>,
    onError: (e: HTTPError) => void,
  ) {
    this.#source = source;
    this.#decoder = new StreamDecoder(
      coding,
      limit,
      (chunk) => {
        this.#queue.push(chunk);
        this.#wake?.();
        return true;
      },
      onError,
    );
  }

  async read(): Promise<Uint8Array | null> {
    // Each turn either returns or consumes one wire chunk, so the loop ends with the body.
    for (;;) {
      const next = this.#queue.shift();
      if (next !== undefined) return next;
      if (this.#decoder.error !== undefined) throw this.#decoder.error;
      if (this.#done) return null;
      const wire = await this.#source();
      if (wire === null) {
        await this.#decoder.end();
        this.#done = true;
      } else {
        await this.#decoder.push(wire);
      }
    }
  }

  destroy(): void {
    this.#decoder.destroy();
  }
}

/** Progress callback of `downloadProgress`: wire bytes so far, and Content-Length when known. */
export type DownloadProgress = (transferred: number, total: number | undefined) => void;

/** Content-Length as a number, when present and valid. */
export function contentLengthOf(headers: Headers): number | undefined {
  const v = headers.get("content-length");
  if (v === null || v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/**
 * The Writable an attempt's exchange writes its body into when the body needs more than a plain
 * copy: a response that may be followed or retried is held in memory until that is decided (the
 * caller's `responseStream` only ever sees the final response), a compressed one is decoded, and
 * `downloadProgress` is told about each chunk. Without a `target` the (wire) body is collected.
 */
export class ResponseSink extends Writable {
  readonly #target: Writable | undefined;
  readonly #progress: DownloadProgress | undefined;
  readonly #limit: number;
  #hold = false;
  /** Progress of a held response is told only if it turns out final. */
  #holdProgress = false;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #decoder: StreamDecoder | undefined;
  #transferred = 0;
  #total: number | undefined;
  #failure: HTTPError | undefined;
  #onFailure: ((e: HTTPError) => void) | undefined;
  #final = false;
  /** True once any byte went on to the caller's target (the attempt can no longer be repeated). */
  wroteToTarget = false;
  #pendingDrain: (() => void) | undefined;
  readonly #onTargetDrain = (): void => {
    const d = this.#pendingDrain;
    this.#pendingDrain = undefined;
    d?.();
    this.#decoder?.resume();
  };
  readonly #onTargetGone = (): void => {
    const t = this.#target!;
    this.destroy(t.errored ?? new Error("the responseStream was destroyed or ended"));
  };

  constructor(target: Writable | undefined, progress: DownloadProgress | undefined, limit: number) {
    super({ decodeStrings: false });
    this.#target = target;
    this.#progress = progress;
    this.#limit = limit;
    // After the exchange finished it stops listening; a late failure must not crash the process.
    this.on("error", () => {});
    if (target !== undefined) {
      target.on("error", this.#onTargetGone);
      target.on("close", this.#onTargetGone);
    }
  }

  /**
   * Called with the head, before any body byte: `hold` keeps the body in memory, `holdProgress`
   * defers progress calls too (a redirect that may be followed), `coding` decodes it on the way out.
   */
  head(headers: Headers, hold: boolean, holdProgress: boolean, coding: Coding | null): void {
    this.#hold = hold;
    this.#holdProgress = holdProgress;
    this.#total = contentLengthOf(headers);
    if (coding !== null && this.#target !== undefined) {
      this.#decoder = new StreamDecoder(
        coding,
        this.#limit,
        (chunk) => this.#emitOut(chunk),
        (e) => this.#fail(e),
      );
    }
  }

  /** Where a decoding failure goes while the exchange runs (it aborts the download). */
  set onFailure(f: (e: HTTPError) => void) {
    this.#onFailure = f;
    if (this.#failure !== undefined) f(this.#failure);
  }

  /** The wire body collected (no `target`) or held. */
  get collected(): Uint8Array {
    const held = this.#held;
    if (held.length === 1) return held[0]!;
    return held.length === 0 ? new Uint8Array(0) : Buffer.concat(held, this.#heldBytes);
  }

  /** The decoding failure, if one happened. */
  get failure(): HTTPError | undefined {
    return this.#failure;
  }

  #fail(e: HTTPError): void {
    if (this.#failure !== undefined) return;
    this.#failure = e;
    this.#onFailure?.(e);
  }

  #tell(bytes: number): void {
    if (this.#progress === undefined) return;
    this.#transferred += bytes;
    try {
      this.#progress(this.#transferred, this.#total);
    } catch (e) {
      // An observer must not change the outcome of the request it observes.
      process.emitWarning(`the downloadProgress callback threw: ${(e as Error)?.message ?? String(e)}`, {
        code: "HW_PROGRESS_CALLBACK",
      });
    }
  }

  #emitOut(chunk: Uint8Array): boolean {
    const target = this.#target!;
    this.wroteToTarget = true;
    if (target.write(chunk)) return true;
    target.once("drain", this.#onTargetDrain);
    return false;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#failure !== undefined) {
      cb();
      return;
    }
    if (!this.#holdProgress) this.#tell(chunk.byteLength);
    if (this.#hold || this.#target === undefined) {
      this.#held.push(chunk);
      this.#heldBytes += chunk.byteLength;
      cb();
      return;
    }
    this.#pass(chunk, cb);
  }

  #pass(chunk: Uint8Array, cb: (err?: Error | null) => void): void {
    const decoder = this.#decoder;
    if (decoder !== undefined) {
      // Failures reach the exchange through #fail; the write itself just moves on.
      decoder.push(chunk).then(
        () => cb(),
        () => cb(),
      );
      return;
    }
    this.wroteToTarget = true;
    if (this.#target!.write(chunk)) cb();
    else {
      this.#pendingDrain = () => cb();
      this.#target!.once("drain", this.#onTargetDrain);
    }
  }

  /**
   * After the exchange completed: `final` sends a held body on (decoded) and finishes the decoder;
   * otherwise the held body is dropped. Rejects with a decoding failure. The target is never ended.
   */
  settle(final: boolean): Promise<void> {
    this.#final = final;
    return new Promise<void>((resolve, reject) => {
      if (this.#failure !== undefined || this.destroyed) {
        this.#detach();
        reject(this.#failure ?? this.errored ?? new ParseError("the response body was abandoned"));
        return;
      }
      this.once("finish", () => {
        this.#detach();
        if (this.#failure !== undefined) reject(this.#failure);
        else resolve();
      });
      this.once("error", (e: Error) => {
        this.#detach();
        reject(this.#failure ?? e);
      });
      this.end();
    });
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#flush().then(
      () => cb(),
      (e: unknown) => cb(e as Error),
    );
  }

  async #flush(): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    if (!this.#final) return;
    if (this.#holdProgress) for (const chunk of this.#held) this.#tell(chunk.byteLength);
    if (this.#target !== undefined && this.#hold) {
      this.#hold = false;
      const held = this.#held;
      this.#held = [];
      for (const chunk of held) {
        await new Promise<void>((resolve) => this.#pass(chunk, () => resolve()));
        if (this.#failure !== undefined) throw this.#failure;
      }
    }
    if (this.#decoder !== undefined) await this.#decoder.end();
    if (this.#failure !== undefined) throw this.#failure;
  }

  #detach(): void {
    this.#decoder?.destroy();
    const t = this.#target;
    if (t !== undefined) {
      t.removeListener("error", this.#onTargetGone);
      t.removeListener("close", this.#onTargetGone);
      t.removeListener("drain", this.#onTargetDrain);
    }
  }

  /** Frees everything after a failed attempt. */
  discard(): void {
    this.#held = [];
    this.#detach();
    this.destroy();
  }
}
