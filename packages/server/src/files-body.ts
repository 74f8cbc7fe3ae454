// Streamed response bodies for file serving. A file is never read whole: FileBody reads it in chunks,
// one chunk ahead of the socket (the next read runs on the thread pool while the current chunk is
// being written, as fs.ReadStream does for a pipe). It uses the callback fs API on a plain descriptor:
// per request, fs.promises' FileHandle objects cost several times more main-thread time than the
// system calls they wrap.
//
// The descriptor is opened on the first `next()` (a body that is never iterated never holds one), or
// earlier by `peek()` when the Content-Type has to be sniffed, in which case the bytes read are the
// first chunk of the body. It is closed when the last chunk is handed out, when a read fails, when the
// consumer stops early (`return()`: the server's `for await` calls it when the client goes away
// mid-body), by `dispose()` when the response does not carry the body after all, and, as a last
// resort, when the body is garbage collected without any of these having happened.
import fs from "node:fs";
import { HTTPError, ProtocolError } from "@hyperwire/core";

/**
 * Bytes per read. Four times fs.ReadStream's 64 KiB: per chunk the read, the await and the socket
 * write each cost a round trip, and on the files benchmark 64 KiB chunks reach 0.76× a raw pipe, 256 KiB
 * 1.04–1.21×. The price is memory: up to two chunks (one being written, one read ahead) per download.
 */
export const CHUNK_BYTES = 256 * 1024;

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });
const EMPTY = Buffer.alloc(0);

function noop(): void {}

// Closes the descriptor of a FileBody dropped unfinished (a response that was built but never sent).
// Every FileBody unregisters before closing its descriptor itself, so a number reused by a later
// open is never closed by mistake.
const unclosed = new FinalizationRegistry<number>((fd) => fs.close(fd, noop));

/** The identity of a file as stat saw it: a descriptor opened later must point at the same inode. */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

/** `fs.realpath.native` (one system call on the thread pool, unlike the JS `fs.realpath`) as a promise. */
export function realpathNative(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    fs.realpath.native(path, (err, real) => (err ? reject(err) : resolve(real)));
  });
}

/** `fs.stat` as a promise (the callback API: cheaper per call than fs.promises). */
export function statFile(path: string): Promise<fs.Stats> {
  return new Promise((resolve, reject) => {
    fs.stat(path, (err, st) => (err ? reject(err) : resolve(st)));
  });
}

function openFd(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.open(path, "r", (err, fd) => (err ? reject(err) : resolve(fd)));
  });
}

function fstatFd(fd: number): Promise<fs.Stats> {
  return new Promise((resolve, reject) => {
    fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st)));
  });
}

function readFd(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

function closeFd(fd: number): Promise<void> {
  return new Promise((resolve) => fs.close(fd, () => resolve()));
}

function readError(path: string, err: unknown): Error {
  if (err instanceof HTTPError) return err;
  const code = (err as { code?: string }).code ?? "error";
  return new HTTPError(`reading ${path} failed (${code})`, "HW_FILE_READ", { cause: err });
}

/** Reads exactly `length` bytes at `position`; fails when the file ends first (it was truncated). */
async function readExactly(fd: number, path: string, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let filled = 0;
  // Bounded: every turn either adds bytes or throws.
  while (filled < length) {
    const n = await readFd(fd, buf, filled, length - filled, position + filled);
    if (n === 0) {
      throw new ProtocolError(
        `${path} ended at byte ${position + filled}, short of the bytes its response declared; was it truncated while being served?`,
        { code: "HW_FILE_CHANGED" },
      );
    }
    filled += n;
  }
  return buf;
}

/**
 * Bytes `start` (inclusive) to `end` (exclusive) of the file at `path`, as a single-use async
 * iterable of chunks. Opening checks that the descriptor is the file that was stat'ed (same device
 * and inode), so a path swapped for a symlink or another file in between is refused, not served.
 */
export class FileBody implements AsyncIterableIterator<Uint8Array> {
  readonly #path: string;
  readonly #identity: FileIdentity;
  #pos: number;
  #end: number;
  #fd = -1;
  /** A first chunk read ahead by peek(), covering bytes `#firstAt` up to `#pos`. */
  #first: Buffer | undefined;
  #firstAt = 0;
  #pending: Promise<Buffer> | undefined;
  #started = false;
  #done = false;

  constructor(path: string, identity: FileIdentity, start: number, end: number) {
    this.#path = path;
    this.#identity = identity;
    this.#pos = start;
    this.#end = end;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Up to the first `n` bytes of the range, read ahead: they stay the body's first chunk, so sniffing
   * a Content-Type costs no extra open or read. Opens the file.
   */
  async peek(n: number): Promise<Uint8Array> {
    if (this.#first === undefined) {
      if (this.#pos >= this.#end) return EMPTY;
      try {
        if (this.#fd < 0) await this.#open();
        this.#firstAt = this.#pos;
        this.#first = await this.#read();
      } catch (err) {
        await this.#release();
        throw readError(this.#path, err);
      }
    }
    return this.#first.subarray(0, n);
  }

  /**
   * Narrows the range to `start`..`end` (exclusive) before iteration begins, keeping whatever part of
   * a peeked chunk falls inside it.
   */
  narrow(start: number, end: number): this {
    if (this.#started) throw new ProtocolError("a FileBody cannot be narrowed once it is being read");
    const first = this.#first;
    if (first !== undefined) {
      const from = start - this.#firstAt;
      const to = Math.min(end, this.#pos) - this.#firstAt;
      this.#first = from >= 0 && from < first.length && to > from ? first.subarray(from, to) : undefined;
    }
    this.#pos = this.#first === undefined ? start : Math.min(end, this.#pos);
    this.#firstAt = start;
    this.#end = end;
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#done) return DONE;
    this.#started = true;
    try {
      let chunk = this.#first;
      this.#first = undefined;
      if (chunk === undefined && this.#pending === undefined) {
        if (this.#pos >= this.#end) {
          await this.#release();
          return DONE;
        }
        if (this.#fd < 0) await this.#open();
        // return() may have run while the file was opening.
        if (this.#done) {
          await this.#release();
          return DONE;
        }
      }
      if (chunk === undefined) chunk = await (this.#pending ?? this.#read());
      this.#pending = this.#pos < this.#end ? this.#read() : undefined;
      if (this.#pending === undefined) await this.#release();
      return { done: false, value: chunk };
    } catch (err) {
      await this.#release();
      throw readError(this.#path, err);
    }
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    await this.#release();
    return DONE;
  }

  async throw(err?: unknown): Promise<IteratorResult<Uint8Array>> {
    await this.#release();
    throw err;
  }

  /** Closes the file without reading further (the response went out without this body). */
  dispose(): Promise<void> {
    return this.#release();
  }

  async #open(): Promise<void> {
    const fd = await openFd(this.#path);
    if (this.#done) {
      // Released while the open was in flight: nobody else will close this descriptor.
      await closeFd(fd);
      return;
    }
    this.#fd = fd;
    unclosed.register(this, fd, this);
    const st = await fstatFd(fd);
    if (st.dev !== this.#identity.dev || st.ino !== this.#identity.ino) {
      throw new ProtocolError(`${this.#path} was replaced between its stat and its open; not serving it`, {
        code: "HW_FILE_CHANGED",
      });
    }
  }

  #read(): Promise<Buffer> {
    const length = Math.min(CHUNK_BYTES, this.#end - this.#pos);
    const position = this.#pos;
    this.#pos += length;
    const p = readExactly(this.#fd, this.#path, position, length);
    // A read-ahead that fails while nobody awaits it must not count as an unhandled rejection; the
    // failure is still seen by the next() that awaits it.
    p.catch(noop);
    return p;
  }

  /** Marks the body finished and closes the descriptor once any read in flight has settled. */
  async #release(): Promise<void> {
    this.#done = true;
    this.#first = undefined;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending !== undefined) await pending.catch(noop);
    const fd = this.#fd;
    this.#fd = -1;
    if (fd >= 0) {
      unclosed.unregister(this);
      await closeFd(fd);
    }
  }
}

/** A source of bytes by position, as {@link serveContent} accepts it. */
export interface ContentReader {
  /** The total size in bytes; may instead be given as the `size` option. */
  readonly size?: number;
  /** Reads up to `length` bytes at `position`. Fewer bytes are fine; none before the end is an error. */
  read(position: number, length: number): Promise<Uint8Array>;
}

/** Bytes `start` (inclusive) to `end` (exclusive) of a {@link ContentReader}, in chunks. */
export async function* readerBody(
  reader: ContentReader,
  start: number,
  end: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  let pos = start;
  // Bounded: every turn advances `pos` or throws.
  while (pos < end) {
    const want = Math.min(CHUNK_BYTES, end - pos);
    const got = await reader.read(pos, want);
    if (!(got instanceof Uint8Array) || got.byteLength === 0) {
      throw new ProtocolError(
        `the content source returned no bytes at position ${pos} of ${end}; it is shorter than its size`,
        { code: "HW_CONTENT_SHORT" },
      );
    }
    const chunk = got.byteLength > want ? got.subarray(0, want) : got;
    pos += chunk.byteLength;
    yield chunk;
  }
}
