// Dialing is ours, not the engine's: TCP, TLS with ALPN, the local address, the connect timeout and
// proxy tunnels (HTTP CONNECT over an http: or https: proxy, SOCKS5) live here, so that HTTP/1.1,
// HTTP/2 and WebSockets share one dialer.
import net from "node:net";
import tls from "node:tls";
import {
  CanceledError,
  ConnectError,
  DNSError,
  HTTPError,
  ProtocolError,
  proxyAuthorization,
  proxyPort,
  redactProxyUrl,
  TimeoutError,
  TLSHandshakeError,
  unescapeUri,
} from "@hyperwire/core";

/** Where and how to dial. */
export interface DialOptions {
  /** Host name or IP literal (IPv6 without brackets) of the origin. */
  host: string;
  port: number;
  /** Wrap the connection to the origin in TLS. */
  secure: boolean;
  /** Node TLS options (`ca`, `rejectUnauthorized`, `cert`, ...), for the origin and for an https: proxy. */
  tls?: tls.ConnectionOptions | undefined;
  /** ALPN protocols to offer, most preferred first. Default `["http/1.1"]`. */
  alpn?: readonly string[] | undefined;
  /** Local address to bind before connecting. */
  localAddress?: string | undefined;
  /** DNS + TCP + proxy handshake + TLS, in ms; `0` disables. */
  connectTimeout: number;
  /** Aborts the dial with a `CanceledError`. */
  signal?: AbortSignal | undefined;
  /**
   * Reach the origin through a tunnel of this proxy: `http:`/`https:` (CONNECT) or
   * `socks5:`/`socks5h:` (both send the host name to the proxy). `null`/absent: direct.
   */
  proxy?: URL | null | undefined;
  /** How errors name the peer when it is not the origin (a forward proxy): `"proxy http://u:***@p:3128"`. */
  label?: string | undefined;
}

/** A dialed connection: the socket and the protocol ALPN chose (`"http/1.1"` when none was). */
export interface Dialed {
  socket: net.Socket;
  protocol: string;
}

const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "EAI_NODATA"]);
/** The longest CONNECT reply head we read. */
const MAX_CONNECT_REPLY = 16 * 1024;

/** The printable `host:port` of a dial, IPv6 in brackets. */
export function dialAddress(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Maps an error raised while connecting to the class a user catches: `DNSError` for a failed lookup,
 * `TLSHandshakeError` once TCP was up on a TLS dial, `ConnectError` for the rest.
 */
export function dialError(
  err: unknown,
  host: string,
  port: number,
  tlsStarted: boolean,
  what?: string,
): HTTPError {
  if (err instanceof HTTPError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.syscall === "getaddrinfo" || (e?.code !== undefined && DNS_CODES.has(e.code))) {
    return new DNSError(host, { cause: err });
  }
  if (tlsStarted) {
    return new TLSHandshakeError(
      `TLS handshake with ${what ?? dialAddress(host, port)} failed: ${e?.message ?? String(err)}`,
      { cause: err },
    );
  }
  return new ConnectError(what ?? dialAddress(host, port), { cause: err });
}

/** The `CanceledError` for an abort reason (kept when it already is one, or a timeout). */
export function canceled(reason: unknown): HTTPError {
  if (reason instanceof TimeoutError || reason instanceof CanceledError) return reason;
  const message = reason instanceof Error && reason.message ? reason.message : "request canceled";
  return new CanceledError(message, { cause: reason });
}

/**
 * Opens a connection to the origin, directly or through a proxy tunnel. Resolves once it is ready
 * for bytes (after the TLS handshake with the origin); rejects with `DNSError`, `ConnectError`,
 * `TLSHandshakeError`, `ProtocolError` (a proxy refused the tunnel), `TimeoutError` (`connect`, or
 * `tls` during the origin's handshake) or `CanceledError`. Nothing is left open on failure.
 */
export async function dial(options: DialOptions): Promise<Dialed> {
  const started = performance.now();
  const controller = new AbortController();
  const signal = controller.signal;
  let phase: "connect" | "tls" = "connect";
  const timer =
    options.connectTimeout > 0
      ? setTimeout(() => {
          controller.abort(new TimeoutError(phase, options.connectTimeout, performance.now() - started));
        }, options.connectTimeout)
      : undefined;
  timer?.unref();
  const outer = options.signal;
  const onAbort = (): void => controller.abort(canceled(outer?.reason));
  if (outer) {
    if (outer.aborted) onAbort();
    else outer.addEventListener("abort", onAbort, { once: true });
  }
  try {
    const { host, port, secure, proxy } = options;
    let socket: net.Socket;
    if (proxy === undefined || proxy === null) {
      if (secure) {
        socket = await tlsConnect(
          undefined,
          host,
          port,
          options,
          signal,
          // A forward proxy's TLS handshake is part of the proxy handshake: still the connect phase.
          options.label === undefined
            ? () => {
                phase = "tls";
              }
            : undefined,
          options.label,
        );
      } else {
        socket = await tcpConnect(host, port, options.localAddress, signal, options.label);
      }
    } else {
      socket = await proxyConnect(proxy, options, signal);
      if (secure) {
        phase = "tls";
        socket = await tlsConnect(socket, host, port, options, signal, undefined);
      }
    }
    // Until the engine attaches its own, an error (a reset right after connect) must not crash the
    // process; the engine then finds the socket destroyed and the exchange fails as stale.
    socket.on("error", noop);
    const protocol = secure ? (socket as tls.TLSSocket).alpnProtocol || "http/1.1" : "http/1.1";
    return { socket, protocol };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    outer?.removeEventListener("abort", onAbort);
  }
}

/** A socket to the proxy (TLS for an https: proxy), with the tunnel to the origin opened through it. */
async function proxyConnect(proxy: URL, options: DialOptions, signal: AbortSignal): Promise<net.Socket> {
  const what = `proxy ${redactProxyUrl(proxy)}`;
  const proxyHost = proxy.hostname.startsWith("[") ? proxy.hostname.slice(1, -1) : proxy.hostname;
  const port = proxyPort(proxy);
  let socket: net.Socket =
    proxy.protocol === "https:"
      ? await tlsConnect(
          undefined,
          proxyHost,
          port,
          { ...options, alpn: ["http/1.1"] },
          signal,
          undefined,
          what,
        )
      : await tcpConnect(proxyHost, port, options.localAddress, signal, what);
  if (proxy.protocol === "socks5:" || proxy.protocol === "socks5h:") {
    socket = await socks5Connect(socket, options.host, options.port, proxy, signal, what);
  } else {
    socket = await httpConnect(socket, options.host, options.port, proxy, signal, what);
  }
  return socket;
}

/**
 * Runs one dial step on `socket`: `start` is called with a `done` callback; errors, an early close
 * and an abort reject (mapped by `mapError`) and destroy the socket.
 */
function step<T>(
  socket: net.Socket,
  signal: AbortSignal,
  mapError: (err: Error) => HTTPError,
  start: (done: (value: T) => void, fail: (err: HTTPError) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const cleanup = (): void => {
      settled = true;
      socket.removeListener("error", onError);
      socket.removeListener("close", onClose);
      signal.removeEventListener("abort", onAbort);
    };
    const fail = (err: HTTPError): void => {
      if (settled) return;
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error): void => fail(mapError(err));
    const onClose = (): void => fail(mapError(new Error("the connection was closed during the handshake")));
    const onAbort = (): void => fail(signal.reason as HTTPError);
    socket.on("error", onError);
    socket.on("close", onClose);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    start((value) => {
      if (settled) return;
      cleanup();
      resolve(value);
    }, fail);
  });
}

function tcpConnect(
  host: string,
  port: number,
  localAddress: string | undefined,
  signal: AbortSignal,
  what: string | undefined,
): Promise<net.Socket> {
  const socket = net.connect({
    host,
    port,
    noDelay: true,
    ...(localAddress !== undefined ? { localAddress } : {}),
  });
  // Between two handshake steps nobody else listens: an error then must not crash the process.
  socket.on("error", noop);
  return step(
    socket,
    signal,
    (err) => dialError(err, host, port, false, what),
    (done) => socket.once("connect", () => done(socket)),
  );
}

/** TLS to `host`: over `over` (a tunnel) or over a new TCP connection (`onTcpUp` marks the handshake's start). */
function tlsConnect(
  over: net.Socket | undefined,
  host: string,
  port: number,
  options: Pick<DialOptions, "tls" | "alpn" | "localAddress">,
  signal: AbortSignal,
  onTcpUp: (() => void) | undefined,
  what?: string,
): Promise<net.Socket> {
  const servername = net.isIP(host) === 0 ? host : undefined;
  const socket = tls.connect({
    ...options.tls,
    ...(over !== undefined
      ? { socket: over }
      : {
          host,
          port,
          ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
        }),
    ...(servername !== undefined ? { servername } : {}),
    ALPNProtocols: [...(options.alpn ?? ["http/1.1"])],
  });
  socket.on("error", noop);
  let tcpUp = over !== undefined;
  if (!tcpUp) {
    socket.once("connect", () => {
      tcpUp = true;
      onTcpUp?.();
    });
  }
  socket.setNoDelay(true);
  return step(
    socket,
    signal,
    (err) => dialError(err, host, port, tcpUp, what),
    (done) => socket.once("secureConnect", () => done(socket)),
  );
}

/** Reads from a socket during a handshake: exact byte counts, or up to a delimiter. */
class HandshakeReader {
  #buffer: Buffer = Buffer.alloc(0);
  #want: (() => void) | undefined;
  readonly #socket: net.Socket;
  readonly #onData = (chunk: Buffer): void => {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const w = this.#want;
    this.#want = undefined;
    w?.();
  };

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", this.#onData);
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  /** Resolves when `ready()` holds; the step's own close/error/abort handling rejects meanwhile. */
  async until(ready: () => boolean): Promise<void> {
    while (!ready()) {
      await new Promise<void>((resolve) => {
        this.#want = resolve;
      });
    }
  }

  take(n: number): Buffer {
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  peek(): Buffer {
    return this.#buffer;
  }

  /** Stops reading and gives back what came after the handshake. */
  release(): void {
    this.#socket.removeListener("data", this.#onData);
    this.#socket.pause();
    if (this.#buffer.length > 0) this.#socket.unshift(this.#buffer);
    this.#buffer = Buffer.alloc(0);
  }
}

/** `CONNECT host:port` through an HTTP proxy; a 2xx answer makes the socket a tunnel. */
function httpConnect(
  socket: net.Socket,
  host: string,
  port: number,
  proxy: URL,
  signal: AbortSignal,
  what: string,
): Promise<net.Socket> {
  const authority = dialAddress(host, port);
  const auth = proxyAuthorization(proxy);
  return step(
    socket,
    signal,
    (err) => new ConnectError(what, { cause: err }),
    (done, fail) => {
      const reader = new HandshakeReader(socket);
      socket.write(
        `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth !== null ? `Proxy-Authorization: ${auth}\r\n` : ""}\r\n`,
      );
      let end = -1;
      reader
        .until(() => {
          end = reader.peek().indexOf("\r\n\r\n");
          return end >= 0 || reader.buffered > MAX_CONNECT_REPLY;
        })
        .then(() => {
          if (end < 0) {
            fail(new ProtocolError(`the ${what} sent a CONNECT reply head over ${MAX_CONNECT_REPLY} bytes`));
            return;
          }
          const head = reader.take(end + 4).toString("latin1");
          const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
          const status = match ? Number(match[1]) : 0;
          if (status < 200 || status > 299) {
            fail(
              new ProtocolError(
                match
                  ? `proxy CONNECT to ${authority} failed with status ${status} (${what})${status === 407 ? "; check the proxy credentials" : ""}`
                  : `the ${what} answered CONNECT with something that is not HTTP`,
                { code: "HW_PROXY_CONNECT" },
              ),
            );
            return;
          }
          reader.release();
          done(socket);
        }, fail);
    },
  );
}

const SOCKS_REPLIES: Readonly<Record<number, string>> = {
  1: "general SOCKS server failure",
  2: "connection not allowed by ruleset",
  3: "network unreachable",
  4: "host unreachable",
  5: "connection refused",
  6: "TTL expired",
  7: "command not supported",
  8: "address type not supported",
};

/** The SOCKS5 handshake (RFC 1928, user/password per RFC 1929); the host name goes to the proxy. */
function socks5Connect(
  socket: net.Socket,
  host: string,
  port: number,
  proxy: URL,
  signal: AbortSignal,
  what: string,
): Promise<net.Socket> {
  const user = unescapeUri(proxy.username);
  const password = unescapeUri(proxy.password);
  const withAuth = user !== "" || password !== "";
  return step(
    socket,
    signal,
    (err) => new ConnectError(what, { cause: err }),
    (done, fail) => {
      const reader = new HandshakeReader(socket);
      const refuse = (message: string): void =>
        fail(new ConnectError(what, { message: `${message} (${what})` }));
      const run = async (): Promise<void> => {
        socket.write(withAuth ? Buffer.from([5, 2, 0, 2]) : Buffer.from([5, 1, 0]));
        await reader.until(() => reader.buffered >= 2);
        const [version, method] = reader.take(2);
        if (version !== 5) return refuse("the proxy does not speak SOCKS5");
        if (method === 2) {
          const u = Buffer.from(user, "utf8");
          const p = Buffer.from(password, "utf8");
          if (u.length > 255 || p.length > 255)
            return refuse("SOCKS5 user names and passwords are at most 255 bytes");
          socket.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
          await reader.until(() => reader.buffered >= 2);
          if (reader.take(2)[1] !== 0)
            return refuse("SOCKS5 authentication failed: check the proxy credentials");
        } else if (method !== 0) {
          return refuse("the SOCKS5 proxy accepted none of our authentication methods (none, user/password)");
        }
        socket.write(
          Buffer.concat([Buffer.from([5, 1, 0]), socksAddress(host), Buffer.from([port >> 8, port & 255])]),
        );
        await reader.until(() => reader.buffered >= 5);
        const head = reader.peek();
        if (head[1] !== 0) {
          return refuse(
            `the SOCKS5 proxy could not connect to ${dialAddress(host, port)}: ${SOCKS_REPLIES[head[1]!] ?? `reply ${head[1]}`}`,
          );
        }
        const atyp = head[3];
        const addressLength = atyp === 1 ? 4 : atyp === 4 ? 16 : atyp === 3 ? 1 + head[4]! : -1;
        if (addressLength < 0) return refuse("the SOCKS5 proxy sent a malformed reply");
        await reader.until(() => reader.buffered >= 4 + addressLength + 2);
        reader.take(4 + addressLength + 2);
        reader.release();
        done(socket);
      };
      run().catch((e: unknown) => fail(e instanceof HTTPError ? e : new ConnectError(what, { cause: e })));
    },
  );
}

/** ATYP + address: IP literals as such, names as names (socks5 and socks5h alike, as Go does). */
function socksAddress(host: string): Buffer {
  if (net.isIPv4(host)) return Buffer.from([1, ...host.split(".").map(Number)]);
  if (net.isIPv6(host)) {
    const full = new URL(`http://[${host}]/`).hostname.slice(1, -1);
    const [head = "", tail] = full.includes("::") ? full.split("::") : [full, undefined];
    const left = head ? head.split(":") : [];
    const right = tail ? tail.split(":") : [];
    const groups =
      tail === undefined ? left : [...left, ...new Array(8 - left.length - right.length).fill("0"), ...right];
    const out = Buffer.alloc(17);
    out[0] = 4;
    groups.forEach((g, i) => {
      out.writeUInt16BE(Number.parseInt(g, 16), 1 + i * 2);
    });
    return out;
  }
  const name = Buffer.from(host, "utf8");
  if (name.length > 255)
    throw new ConnectError(host, { message: `host name ${host} is too long for SOCKS5` });
  return Buffer.concat([Buffer.from([3, name.length]), name]);
}

function noop(): void {}
