// Dialing is ours, not the engine's: TCP, TLS with ALPN, the local address and the connect timeout
// live here so that HTTP/1.1, HTTP/2 and WebSockets share one dialer (and, later, proxies).
import net from "node:net";
import tls from "node:tls";
import {
  CanceledError,
  ConnectError,
  DNSError,
  type HTTPError,
  TimeoutError,
  TLSHandshakeError,
} from "@hyperwire/core";

/** Where and how to dial. */
export interface DialOptions {
  /** Host name or IP literal (IPv6 without brackets). */
  host: string;
  port: number;
  /** Wrap the connection in TLS. */
  secure: boolean;
  /** Node TLS options (`ca`, `rejectUnauthorized`, `cert`, ...), used when `secure`. */
  tls?: tls.ConnectionOptions | undefined;
  /** ALPN protocols to offer, most preferred first. Default `["http/1.1"]`. */
  alpn?: readonly string[] | undefined;
  /** Local address to bind before connecting. */
  localAddress?: string | undefined;
  /** DNS + TCP + TLS, in ms; `0` disables. */
  connectTimeout: number;
  /** Aborts the dial with a `CanceledError`. */
  signal?: AbortSignal | undefined;
}

/** A dialed connection: the socket and the protocol ALPN chose (`"http/1.1"` when none was). */
export interface Dialed {
  socket: net.Socket;
  protocol: string;
}

const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "EAI_NODATA"]);

/** The printable `host:port` of a dial, IPv6 in brackets. */
export function dialAddress(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Maps an error raised while connecting to the class a user catches: `DNSError` for a failed lookup,
 * `TLSHandshakeError` once TCP was up on a TLS dial, `ConnectError` for the rest.
 */
export function dialError(err: unknown, host: string, port: number, tlsStarted: boolean): HTTPError {
  const e = err as NodeJS.ErrnoException;
  if (e?.syscall === "getaddrinfo" || (e?.code !== undefined && DNS_CODES.has(e.code))) {
    return new DNSError(host, { cause: err });
  }
  if (tlsStarted) {
    return new TLSHandshakeError(
      `TLS handshake with ${dialAddress(host, port)} failed: ${e?.message ?? String(err)}`,
      { cause: err },
    );
  }
  return new ConnectError(dialAddress(host, port), { cause: err });
}

/**
 * Opens a TCP (or TLS) connection. Resolves once the connection is ready for bytes (after the TLS
 * handshake); rejects with `DNSError`, `ConnectError`, `TLSHandshakeError`, `TimeoutError`
 * (`connect` while connecting, `tls` during the handshake) or `CanceledError`. Nothing is left open
 * on failure.
 */
export function dial(options: DialOptions): Promise<Dialed> {
  return new Promise<Dialed>((resolve, reject) => {
    const { host, port, secure } = options;
    const started = performance.now();
    let tcpUp = false;
    let settled = false;
    let socket: net.Socket;

    const finish = (err: HTTPError | null): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      socket.removeListener("error", onError);
      if (err) {
        socket.destroy();
        reject(err);
        return;
      }
      // Until the engine attaches its own, an error (a reset right after connect) must not crash the
      // process; the engine then finds the socket destroyed and the exchange fails as stale.
      socket.on("error", noop);
      const protocol = secure ? (socket as tls.TLSSocket).alpnProtocol || "http/1.1" : "http/1.1";
      resolve({ socket, protocol });
    };
    const onError = (err: Error): void => finish(dialError(err, host, port, secure && tcpUp));
    const onAbort = (): void => finish(canceled(options.signal?.reason));

    if (secure) {
      const servername = net.isIP(host) === 0 ? host : undefined;
      socket = tls.connect({
        ...options.tls,
        host,
        port,
        ...(servername !== undefined ? { servername } : {}),
        ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
        ALPNProtocols: [...(options.alpn ?? ["http/1.1"])],
      });
      socket.once("connect", () => {
        tcpUp = true;
      });
      socket.once("secureConnect", () => finish(null));
    } else {
      socket = net.connect({
        host,
        port,
        noDelay: true,
        ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
      });
      socket.once("connect", () => finish(null));
    }
    socket.on("error", onError);
    socket.setNoDelay(true);

    const timer =
      options.connectTimeout > 0
        ? setTimeout(() => {
            finish(
              new TimeoutError(
                secure && tcpUp ? "tls" : "connect",
                options.connectTimeout,
                performance.now() - started,
              ),
            );
          }, options.connectTimeout)
        : undefined;
    timer?.unref();
    if (options.signal) {
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener("abort", onAbort, { once: true });
    }
  });
}

/** The `CanceledError` for an abort reason (kept when it already is one). */
export function canceled(reason: unknown): HTTPError {
  if (reason instanceof TimeoutError || reason instanceof CanceledError) return reason;
  const message = reason instanceof Error && reason.message ? reason.message : "request canceled";
  return new CanceledError(message, { cause: reason });
}

function noop(): void {}
