// Servers for the HTTP/2 client tests: raw node:http2 servers (h2c, TLS with or without an
// HTTP/1.1 fallback) that count sessions and streams and record what ALPN offers they saw, a TLS
// server that speaks HTTP/1.1 only, and a raw TCP server that writes HTTP/2 frames by hand for the
// hostile cases. All listen on 127.0.0.1, port 0, and close every connection on close().
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import type tls from "node:tls";
import { tls as fixtures } from "../../../fixtures/tls/index.mjs";

/** What an {@link H2Server} does with each stream. */
export type StreamHandler = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  server: H2Server,
) => void;

/** Options of {@link H2Server.start}. */
export interface H2ServerOptions {
  /** TLS with the fixture certificate (ALPN `h2`); default false (h2c). */
  tls?: boolean;
  /** With TLS: also serve HTTP/1.1 to clients that do not offer `h2`. */
  allowHTTP1?: boolean;
  /** SETTINGS the server sends (e.g. `maxConcurrentStreams`). */
  settings?: http2.Settings;
}

/** Answers `GET /...` with `ok <path>`, and echoes request bodies of other methods. */
export const echoStream: StreamHandler = (stream, headers) => {
  const method = headers[":method"];
  if (method === "GET" || method === "HEAD") {
    stream.respond({ ":status": 200, "content-type": "text/plain" });
    stream.end(`ok ${headers[":path"]}`);
    return;
  }
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  stream.on("end", () => {
    if (stream.destroyed) return;
    stream.respond({
      ":status": 200,
      "x-content-length": String(headers["content-length"] ?? "none"),
    });
    stream.end(Buffer.concat(chunks));
  });
};

/** A raw node:http2 server that counts sessions and streams. */
export class H2Server {
  readonly server: http2.Http2Server | http2.Http2SecureServer;
  readonly secure: boolean;
  /** Sessions ever accepted. */
  sessions = 0;
  /** Streams ever opened, in order. */
  readonly streams: http2.ServerHttp2Stream[] = [];
  /** HTTP/1.1 requests served (allowHTTP1). */
  h1Requests = 0;
  /** ALPN lists the clients offered, one per TLS connection. */
  readonly offers: string[][] = [];
  readonly #open = new Set<http2.ServerHttp2Session>();
  readonly #sockets = new Set<net.Socket>();
  handler: StreamHandler;

  private constructor(handler: StreamHandler, options: H2ServerOptions) {
    this.handler = handler;
    this.secure = options.tls === true;
    const settings = options.settings ?? {};
    if (this.secure) {
      this.server = http2.createSecureServer({
        key: fixtures.key,
        cert: fixtures.cert,
        allowHTTP1: options.allowHTTP1 === true,
        settings,
        ALPNCallback: ({ protocols }: { protocols: string[] }) => {
          this.offers.push([...protocols]);
          if (protocols.includes("h2")) return "h2";
          return options.allowHTTP1 === true && protocols.includes("http/1.1") ? "http/1.1" : undefined;
        },
      } as http2.SecureServerOptions);
    } else {
      this.server = http2.createServer({ settings });
    }
    this.server.on("connection", (socket: net.Socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    this.server.on("session", (session: http2.ServerHttp2Session) => {
      this.sessions++;
      this.#open.add(session);
      session.on("close", () => this.#open.delete(session));
      session.on("error", () => {});
    });
    this.server.on("stream", (stream, headers) => {
      this.streams.push(stream);
      // A client that resets is part of several tests; never let it crash the run.
      stream.on("error", () => {});
      this.handler(stream, headers, this);
    });
    if (options.allowHTTP1 === true) {
      // Only here: a 'request' listener puts node's compatibility layer on every HTTP/2 stream too.
      this.server.on("request", (req, res) => {
        if (req.httpVersion === "2.0") return;
        this.h1Requests++;
        res.end(`h1 ${req.url}`);
      });
    }
  }

  static async start(handler: StreamHandler = echoStream, options: H2ServerOptions = {}): Promise<H2Server> {
    const s = new H2Server(handler, options);
    await new Promise<void>((resolve, reject) => {
      s.server.once("error", reject);
      s.server.listen(0, "127.0.0.1", () => resolve());
    });
    return s;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `${this.secure ? "https" : "http"}://127.0.0.1:${this.port}`;
  }

  /** Sessions open now. */
  get openSessions(): number {
    return this.#open.size;
  }

  async close(): Promise<void> {
    for (const s of this.#open) s.destroy();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** An HTTPS server that offers only `http/1.1` by ALPN, recording the offers and connections. */
export class H1TlsServer {
  readonly server: https.Server;
  readonly offers: string[][] = [];
  accepted = 0;
  readonly #sockets = new Set<net.Socket>();

  private constructor(closeEach: boolean) {
    this.server = https.createServer({
      key: fixtures.key,
      cert: fixtures.cert,
      ALPNCallback: ({ protocols }: { protocols: string[] }) => {
        this.offers.push([...protocols]);
        return protocols.includes("http/1.1") ? "http/1.1" : undefined;
      },
    } as https.ServerOptions);
    this.server.keepAliveTimeout = 60_000;
    this.server.on("secureConnection", (socket: tls.TLSSocket) => {
      this.accepted++;
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    });
    this.server.on("request", (req, res) => {
      if (closeEach) res.setHeader("connection", "close");
      res.end(`h1 ${req.url}`);
    });
  }

  /** `closeEach`: answer every request with `Connection: close` (each request dials anew). */
  static async start(closeEach = false): Promise<H1TlsServer> {
    const s = new H1TlsServer(closeEach);
    await new Promise<void>((resolve, reject) => {
      s.server.once("error", reject);
      s.server.listen(0, "127.0.0.1", () => resolve());
    });
    return s;
  }

  get url(): string {
    return `https://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** One HTTP/2 frame: 9-byte header and payload. */
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

/** HPACK: `:status 200` (static index 8). */
export const STATUS_200 = Buffer.from([0x88]);

/**
 * A TCP server that speaks HTTP/2 by hand (h2c, prior knowledge): it answers the preface with an
 * empty SETTINGS and a SETTINGS ACK, then calls `onHeaders(socket, streamId)` for each HEADERS frame
 * the client sends.
 */
export class RawH2Server {
  readonly server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  private constructor(onHeaders: (socket: net.Socket, streamId: number) => void) {
    this.server = net.createServer((socket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.on("error", () => {});
      let buf = Buffer.alloc(0);
      let prefaceSeen = false;
      socket.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (!prefaceSeen) {
          if (buf.length < 24) return;
          buf = buf.subarray(24);
          prefaceSeen = true;
          socket.write(Buffer.concat([frame(4, 0, 0), frame(4, 1, 0)]));
        }
        while (buf.length >= 9) {
          const length = buf.readUIntBE(0, 3);
          if (buf.length < 9 + length) return;
          const type = buf[3]!;
          const streamId = buf.readUInt32BE(5) & 0x7fffffff;
          buf = buf.subarray(9 + length);
          if (type === 1) onHeaders(socket, streamId);
        }
      });
    });
  }

  static async start(onHeaders: (socket: net.Socket, streamId: number) => void): Promise<RawH2Server> {
    const s = new RawH2Server(onHeaders);
    await new Promise<void>((resolve, reject) => {
      s.server.once("error", reject);
      s.server.listen(0, "127.0.0.1", () => resolve());
    });
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Connections open now. */
  get open(): number {
    return this.#sockets.size;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
