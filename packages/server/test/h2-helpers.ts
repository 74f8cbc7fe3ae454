// HTTP/2 test helpers: one request over a node:http2 client session with everything collected, a
// session opener that is closed after each test, and a raw frame writer/reader for what node's
// client refuses to send (bad pseudo-headers, too many streams, DATA after END_STREAM).
import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";

/** What {@link h2get} got back. */
export interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders | undefined;
  body: Buffer;
}

/** Sends one request on `session` and reads the whole response (rejects on a stream error). */
export function h2get(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: string | Buffer,
): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let reply: Omit<H2Reply, "body"> | undefined;
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      reply = { status: Number(h[":status"]), headers: h, trailers: undefined };
    });
    req.on("trailers", (t) => {
      if (reply) reply.trailers = t;
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (reply) resolve({ ...reply, body: Buffer.concat(chunks) });
      else reject(new Error("stream ended without a response"));
    });
    req.on("error", reject);
    if (body !== undefined) req.end(body);
  });
}

/** Sessions opened by a test; `closeAll` closes them (and waits until they are). */
export class Sessions {
  readonly #open: http2.ClientHttp2Session[] = [];

  connect(url: string, options: http2.SecureClientSessionOptions = {}): http2.ClientHttp2Session {
    const s = http2.connect(url, options);
    s.on("error", () => {});
    this.#open.push(s);
    return s;
  }

  async closeAll(): Promise<void> {
    const all = this.#open.splice(0);
    await Promise.all(
      all.map(async (s) => {
        if (s.destroyed) return;
        const closed = once(s, "close");
        s.close();
        const t = setTimeout(() => s.destroy(), 2_000);
        await closed;
        clearTimeout(t);
      }),
    );
  }
}

// ---- raw frames ----

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
};
export const FLAG = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 };

/** One frame: 9-byte header and payload. */
export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** An HPACK block of literal fields without indexing and without Huffman coding (any name, any case). */
export function hpack(fields: [string, string][]): Buffer {
  const bytes: number[] = [];
  for (const [name, value] of fields) {
    bytes.push(0x00);
    const n = Buffer.from(name, "latin1");
    const v = Buffer.from(value, "latin1");
    bytes.push(...hpackInt(n.length, 7, 0), ...n);
    bytes.push(...hpackInt(v.length, 7, 0), ...v);
  }
  return Buffer.from(bytes);
}

/** A HEADERS frame (END_HEADERS set) with `fields`, END_STREAM when `end`. */
export function headersFrame(streamId: number, fields: [string, string][], end = true): Buffer {
  return frame(FRAME.HEADERS, FLAG.END_HEADERS | (end ? FLAG.END_STREAM : 0), streamId, hpack(fields));
}

/** A GET request's fields for `path`. */
export function getFields(path = "/", extra: [string, string][] = []): [string, string][] {
  return [[":method", "GET"], [":scheme", "http"], [":path", path], [":authority", "127.0.0.1"], ...extra];
}

/** A frame read back from the server. */
export interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/**
 * A raw HTTP/2 client connection: sends the preface and an empty SETTINGS, ACKs the server's
 * SETTINGS, and collects every frame it receives. `waitFor` waits (bounded) for a frame matching.
 */
export class RawH2 {
  readonly socket: net.Socket;
  readonly frames: RawFrame[] = [];
  closed = false;
  #buf = Buffer.alloc(0);
  #waiters: { match: (f: RawFrame) => boolean; resolve: (f: RawFrame) => void }[] = [];
  #closeWaiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      for (const w of this.#closeWaiters.splice(0)) w();
    });
  }

  /**
   * Connects, sends the preface, an empty SETTINGS and `first` in one write (before the server's
   * SETTINGS are acknowledged), and waits for the server's SETTINGS (which it then ACKs).
   */
  static async open(port: number, first: Buffer[] = []): Promise<RawH2> {
    const socket = net.connect(port, "127.0.0.1");
    await once(socket, "connect");
    const raw = new RawH2(socket);
    socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0), ...first]));
    await raw.waitFor((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0);
    return raw;
  }

  #onData(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    while (this.#buf.length >= 9) {
      const len = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + len) break;
      const f: RawFrame = {
        type: this.#buf[3]!,
        flags: this.#buf[4]!,
        streamId: this.#buf.readUInt32BE(5) & 0x7fffffff,
        payload: this.#buf.subarray(9, 9 + len),
      };
      this.#buf = this.#buf.subarray(9 + len);
      if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0)
        this.socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      this.frames.push(f);
      for (const w of [...this.#waiters]) {
        if (w.match(f)) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1);
          w.resolve(f);
        }
      }
    }
  }

  write(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }

  /** The first frame (already received or arriving within `timeoutMs`) that matches. */
  waitFor(match: (f: RawFrame) => boolean, timeoutMs = 3_000): Promise<RawFrame> {
    const found = this.frames.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("timed out waiting for a frame")), timeoutMs);
      this.#waiters.push({
        match,
        resolve: (f) => {
          clearTimeout(t);
          resolve(f);
        },
      });
    });
  }

  /** Resolves when the server closed the connection (bounded). */
  waitClosed(timeoutMs = 3_000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("timed out waiting for close")), timeoutMs);
      this.#closeWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** RST_STREAM's or GOAWAY's error code. */
  static code(f: RawFrame): number {
    return f.type === FRAME.GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0);
  }

  /** The `:status` of a HEADERS frame from the server, when it is the first field and indexed (HPACK static table). */
  static status(f: RawFrame): number | undefined {
    const STATIC: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };
    const b = f.payload[0]!;
    if (b & 0x80) return STATIC[b & 0x7f];
    // Literal with an indexed name (:status is index 8..14): the value follows as a plain string.
    const idx = b & 0x40 ? b & 0x3f : b & 0x0f;
    if (idx >= 8 && idx <= 14) {
      const len = f.payload[1]! & 0x7f;
      if (f.payload[1]! & 0x80) return undefined;
      return Number(f.payload.subarray(2, 2 + len).toString("latin1"));
    }
    return undefined;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
