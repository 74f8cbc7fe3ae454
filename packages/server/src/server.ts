import net, { type AddressInfo, type Socket } from "node:net";
import tls from "node:tls";
import { AddressInUseError, ConnectError, ProtocolError } from "@hyperwire/core";
import type { Http1Engine } from "./http1.js";
import type { Http2Engine } from "./http2.js";
import { LISTEN_ANY_ATTEMPTS, type ResolvedServerOptions } from "./options.js";

type State = "initial" | "running" | "closing" | "closed";

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function bindOnce(listener: net.Server, host: string, port: number, backlog: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      listener.off("listening", onListening);
      reject(err);
    };
    const onListening = (): void => {
      listener.off("error", onError);
      resolve();
    };
    listener.once("error", onError);
    listener.once("listening", onListening);
    listener.listen({ host, port, backlog });
  });
}

/**
 * The TCP socket under a server-side TLS socket. Node keeps it as `_parent` on every TLSSocket it
 * wraps around an accepted connection; there is no public accessor.
 */
function tcpSocketOf(socket: tls.TLSSocket): Socket | undefined {
  return (socket as tls.TLSSocket & { _parent?: Socket })._parent;
}

function bindError(err: unknown, host: string, port: number): Error {
  const code = (err as { code?: string }).code;
  const address = hostPort(host, port);
  if (code === "EADDRINUSE") return new AddressInUseError(address, { cause: err });
  return new ConnectError(address, {
    cause: err,
    message: `could not listen on ${address} (${code ?? String(err)}); check the host and port`,
  });
}

/**
 * A running HTTP server, as {@link serve} and {@link listen} return it. It owns the listening
 * socket and every connection; `close()` is graceful, `forceClose()` is not.
 *
 * ```ts
 * await using server = await serve(() => new Response(200, { body: "hi" }), { port: 0 });
 * console.log(server.url); // http://127.0.0.1:41234
 * ```
 */
export class Server {
  readonly #options: ResolvedServerOptions;
  readonly #engine: Http1Engine;
  readonly #h2: Http2Engine | undefined;
  readonly #listener: net.Server;
  readonly #sockets = new Set<Socket>();
  /** Connections not yet handed to an engine, so idle: TLS connections still in their handshake. */
  readonly #handshaking = new Set<Socket>();
  #state: State = "initial";
  #bound: AddressInfo | undefined;
  #closing: Promise<void> | undefined;
  readonly #done: Promise<void>;
  #resolveDone!: () => void;

  /** @internal Made by {@link serve} and {@link listen}. */
  constructor(options: ResolvedServerOptions, engine: Http1Engine, h2?: Http2Engine) {
    this.#options = options;
    this.#engine = engine;
    this.#h2 = h2;
    this.#done = new Promise<void>((resolve) => {
      this.#resolveDone = resolve;
    });
    const track = (socket: Socket): void => {
      this.#sockets.add(socket);
      socket.once("close", () => {
        this.#sockets.delete(socket);
        this.#handshaking.delete(socket);
      });
    };
    if (options.tls) {
      const alpn = h2 === undefined ? ["http/1.1"] : ["h2", "http/1.1"];
      const listener = tls.createServer({ ALPNProtocols: alpn, ...options.tls, noDelay: true });
      listener.on("connection", (socket: Socket) => {
        track(socket);
        this.#handshaking.add(socket);
      });
      listener.on("secureConnection", (socket: tls.TLSSocket) => {
        const tcp = tcpSocketOf(socket);
        if (tcp !== undefined) this.#handshaking.delete(tcp);
        if (h2 !== undefined && socket.alpnProtocol === "h2") h2.accept(socket);
        else engine.accept(socket);
      });
      listener.on("tlsClientError", (_err: Error, socket: tls.TLSSocket) => socket.destroy());
      this.#listener = listener;
    } else {
      // Every cleartext connection starts as HTTP/1.1: node:http's parser reads it natively, and the
      // h2c prior-knowledge preface, which it stops at, hands the connection to the HTTP/2 engine.
      if (h2 !== undefined) engine.onPreface = (socket) => h2.accept(socket);
      this.#listener = net.createServer({ noDelay: true }, (socket) => {
        track(socket);
        engine.accept(socket);
      });
    }
  }

  /** @internal Binds the listener (trying further ports with `listenAny`). */
  async start(): Promise<this> {
    if (this.#state !== "initial") {
      throw new ProtocolError("a server cannot be started twice; make a new one with serve() or listen()");
    }
    const { host, port, backlog, listenAny } = this.#options;
    const ports = [port];
    if (listenAny && port !== 0) {
      for (let i = 1; i < LISTEN_ANY_ATTEMPTS && port + i <= 65535; i++) ports.push(port + i);
      ports.push(0);
    }
    let lastError: unknown;
    for (const p of ports) {
      try {
        await bindOnce(this.#listener, host, p, backlog);
        lastError = undefined;
        break;
      } catch (err) {
        lastError = err;
        if ((err as { code?: string }).code !== "EADDRINUSE") break;
      }
    }
    if (lastError !== undefined) {
      this.#state = "closed";
      this.#resolveDone();
      throw bindError(lastError, host, port);
    }
    this.#bound = this.#listener.address() as AddressInfo;
    this.#listener.on("error", (err) => process.emitWarning(err));
    this.#state = "running";
    return this;
  }

  /** The bound port (or the configured one before the server listens). */
  get port(): number {
    return this.#bound?.port ?? this.#options.port;
  }

  /**
   * `"host:port"` of the address actually bound, IPv6 in brackets (`"[::1]:8080"`). A server that is
   * not listening gives a `ProtocolError`.
   */
  get address(): string {
    if (this.#bound === undefined || this.#state === "closed") {
      throw new ProtocolError("the server is not listening");
    }
    return hostPort(this.#bound.address, this.#bound.port);
  }

  /** `http://host:port` (or `https://`) of the bound address. */
  get url(): string {
    return `${this.#options.tls ? "https" : "http"}://${this.address}`;
  }

  /** True until `close()` or `forceClose()` is called. */
  get isOpen(): boolean {
    return this.#state === "initial" || this.#state === "running";
  }

  /** Open connections (TCP sockets, TLS handshakes included). */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Requests whose response has not ended yet (HTTP/2: streams still open). */
  get activeRequests(): number {
    return this.#engine.activeRequests + (this.#h2?.activeRequests ?? 0);
  }

  /** Resolves when the server has shut down (after `close()` or `forceClose()`). */
  wait(): Promise<void> {
    return this.#done;
  }

  /**
   * Graceful shutdown: stops accepting, closes idle keep-alive connections now and busy ones after
   * their in-flight response (which says `Connection: close` if it had not started), sends GOAWAY on
   * every HTTP/2 session and closes each once its open streams are done, runs the
   * `onShutdown` callbacks and resolves. There is no timeout: follow with `forceClose()` if needed.
   * A second call returns the same promise.
   *
   * ```ts
   * await server.close();
   * ```
   */
  close(): Promise<void> {
    if (this.#closing === undefined) this.#closing = this.#shutdown(false);
    return this.#closing;
  }

  /** Closes the listener and every connection immediately, then runs the `onShutdown` callbacks. */
  forceClose(): Promise<void> {
    if (this.#closing === undefined) this.#closing = this.#shutdown(true);
    else this.#destroyAll();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #destroyAll(): void {
    this.#engine.destroyAll();
    this.#h2?.destroyAll();
    for (const socket of this.#sockets) socket.destroy();
  }

  async #shutdown(force: boolean): Promise<void> {
    const wasRunning = this.#state === "running";
    this.#state = "closing";
    const listenerClosed = new Promise<void>((resolve) => {
      if (!wasRunning) resolve();
      else this.#listener.close(() => resolve());
    });
    if (force) this.#destroyAll();
    else {
      this.#engine.beginClose();
      this.#h2?.beginClose();
      // A handshake that never completes would otherwise hold close() until the TLS handshake timeout.
      for (const socket of this.#handshaking) socket.destroy();
    }
    await listenerClosed;
    // The listener reports closed once its last connection is destroyed; that socket's own 'close'
    // (which takes it off `connections`) comes a moment later. Shut down means none is counted.
    if (this.#sockets.size > 0) {
      await Promise.all(
        [...this.#sockets].map((socket) => new Promise((resolve) => socket.once("close", resolve))),
      );
    }
    for (const fn of this.#options.onShutdown) {
      try {
        await fn();
      } catch (err) {
        process.emitWarning(err instanceof Error ? err : new Error(String(err)));
      }
    }
    this.#state = "closed";
    this.#resolveDone();
  }
}
