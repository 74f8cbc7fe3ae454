// The client side: the opening handshake over hyperwire's dialer (TCP, TLS, proxies), handshake
// timeouts with named phases, redirects, and the handler form that closes for you.
import type { ClientRequest, IncomingMessage } from "node:http";
import type net from "node:net";
import type tls from "node:tls";
import type { CookieJar } from "@hyperwire/client";
import {
  ArgumentError,
  CanceledError,
  checkTimeout,
  Headers,
  type HeadersInit,
  type HTTPError,
  mergeQuery,
  ProxyConfig,
  type ProxyInit,
  type QueryInit,
  type RequestContext,
  TimeoutError,
  TooManyRedirectsError,
  WebSocketError,
} from "@hyperwire/core";
import { WebSocket as WsSocket } from "ws";
import { httpClient, loadClient } from "./client.js";
import {
  type HandshakeCookies,
  handshakeCookies,
  hopCookieHeader,
  redirectCookies,
  storeHandshakeCookies,
} from "./cookies.js";
import { openH2 } from "./open-h2.js";
import { fragmentLimit, type SessionOptions, WebSocket } from "./websocket.js";

/** Options of {@link open}. Durations in ms; `0` disables. */
export interface OpenOptions extends SessionOptions {
  /** Extra handshake headers (no User-Agent or Origin is added for you). */
  headers?: HeadersInit;
  /**
   * Cookies, as in HTTP requests. `true` (default): every handshake hop sends the jar's cookies for
   * its URL (`ws:` matched as `http:`, `wss:` as `https:`, so Secure cookies go only to `wss:`) and
   * stores the Set-Cookie fields of every handshake response (a redirect, a refusal, the 101).
   * `false`: no jar at all (a `Cookie` header you set is sent verbatim). A record: extra cookies for
   * this call on top of the jar's; the record wins over the jar, the jar over your own `Cookie`
   * header. The record and your `Cookie` header are dropped after a cross-origin redirect.
   */
  cookies?: boolean | Record<string, string>;
  /**
   * The jar of this handshake; `null`: none. Default: the default client's jar
   * (`getDefaultClient().defaults.cookieJar`), the one the top-level `get`/`post` use.
   */
  cookieJar?: CookieJar | null;
  /**
   * Send your `headers` again on a redirect hop. Default true (`Authorization` and your cookies are
   * still dropped across origins). `false`: a redirect hop carries only the handshake's own headers
   * and the jar's cookies.
   */
  forwardHeaders?: boolean;
  /** Added to the URL's query (HTTP's rules: a string verbatim, an object sorted by key, pairs in order). */
  query?: QueryInit;
  /** Subprotocols to offer, most preferred first. */
  subprotocols?: readonly string[];
  /** Negotiate permessage-deflate. Default false. */
  compress?: boolean;
  /** Largest message accepted (larger: closed with 1009). Default 16 MiB. */
  maxFrameSize?: number;
  /** Follow redirects of the handshake. Default true. */
  redirect?: boolean;
  /** At most this many redirects. Default 10. */
  redirectLimit?: number;
  /** The proxy: a URL, a `ProxyConfig` or `null` (direct). Default: the environment's. */
  proxy?: ProxyInit;
  /**
   * The HTTP version of the handshake. `"h1"` (default, as HTTP.jl): an HTTP/1.1 Upgrade on a
   * connection of its own. `"h2"`: RFC 8441's extended CONNECT on an HTTP/2 session of its own
   * (TLS with ALPN `h2` for `wss:`, prior-knowledge h2c for `ws:`), which closes with the WebSocket;
   * the server must send SETTINGS_ENABLE_CONNECT_PROTOCOL, else the handshake fails (1002). Over
   * `"h2"` redirects are not followed (a 3xx fails with its status); proxies work as over HTTP/1.1.
   */
  protocol?: "h1" | "h2";
  /** Node TLS options for `wss:` (`ca`, `rejectUnauthorized`, ...). */
  tls?: tls.ConnectionOptions;
  /** DNS + TCP + proxy + TLS. Default 30 000. */
  connectTimeout?: number;
  /** The whole handshake. Default 0. */
  requestTimeout?: number;
  /** Request sent → 101 response. Default 0 (`readIdleTimeout` covers it when set). */
  responseHeaderTimeout?: number;
  /** Aborts the handshake (a `CanceledError`). */
  signal?: AbortSignal;
  /** Cancellation and deadline of the handshake. */
  context?: RequestContext;
}

/** The defaults of {@link OpenOptions}, in one place. */
export const OPEN_DEFAULTS = Object.freeze({
  maxFrameSize: 16 * 1024 * 1024,
  redirectLimit: 10,
  connectTimeout: 30_000,
});

/** The callback form of {@link open}. */
export type WebSocketHandler<T> = (ws: WebSocket) => T | Promise<T>;

let envProxy: ProxyConfig | undefined;

/** An HTTP token (RFC 9110 §5.6.2): what a subprotocol name must be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Opens a WebSocket (`ws:`, `wss:`, `http:` or `https:` URL). Without a handler it resolves to the
 * `WebSocket`. With one, it resolves to the handler's value and closes the socket with 1000 after it
 * (a `WebSocketError` with code 1000, 1001 or 1005 inside the handler resolves to `undefined`).
 * A failed handshake is a `WebSocketError` (1002) carrying the HTTP `status`.
 *
 * ```ts
 * const reply = await open("ws://127.0.0.1:8080/echo", async (ws) => {
 *   await ws.send("hello");
 *   return ws.receive();
 * });
 * ```
 */
export function open(url: string | URL, options?: OpenOptions): Promise<WebSocket>;
export function open<T>(
  url: string | URL,
  handler: WebSocketHandler<T>,
  options?: OpenOptions,
): Promise<T | undefined>;
export async function open<T>(
  url: string | URL,
  handlerOrOptions?: WebSocketHandler<T> | OpenOptions,
  maybeOptions?: OpenOptions,
): Promise<WebSocket | T | undefined> {
  const handler = typeof handlerOrOptions === "function" ? handlerOrOptions : undefined;
  const options = (typeof handlerOrOptions === "function" ? maybeOptions : handlerOrOptions) ?? {};
  const ws = await handshake(url, options);
  if (handler === undefined) return ws;
  try {
    return await handler(ws);
  } catch (e) {
    if (
      e instanceof WebSocketError &&
      (e.closeCode === 1000 || e.closeCode === 1001 || e.closeCode === 1005)
    ) {
      return undefined;
    }
    throw e;
  } finally {
    if (!ws.isClosed) await ws.close(1000);
  }
}

/** Normalises the URL: `http:` → `ws:`, `https:` → `wss:`; anything else is an `ArgumentError`. */
export function wsUrl(url: string | URL): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch (e) {
    throw new ArgumentError(`invalid WebSocket URL ${JSON.stringify(String(url))}`, { cause: e });
  }
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new ArgumentError(`a WebSocket URL is ws:, wss:, http: or https:, not ${u.protocol}`);
  }
  u.hash = "";
  return u;
}

/** The proxy configuration of a handshake: `null` for direct; the environment's when not given. */
export function proxyConfig(init: ProxyInit | undefined): ProxyConfig | null {
  if (init === null) return null;
  if (init === undefined) {
    envProxy ??= ProxyConfig.fromEnv();
    return envProxy.isDirect ? null : envProxy;
  }
  if (init instanceof ProxyConfig) return init.isDirect ? null : init;
  return ProxyConfig.fromUrl(init);
}

/** The checks of the options both handshakes (HTTP/1.1 and HTTP/2) make before anything is dialed. */
function checkOptions(options: OpenOptions): void {
  for (const name of [
    "connectTimeout",
    "requestTimeout",
    "responseHeaderTimeout",
    "writeIdleTimeout",
    "readIdleTimeout",
  ] as const) {
    if (options[name] !== undefined) checkTimeout(name, options[name]);
  }
  fragmentLimit(options.maxFragmentation);
  for (const p of options.subprotocols ?? []) {
    if (!TOKEN.test(p))
      throw new ArgumentError(`invalid subprotocol ${JSON.stringify(p)}: it must be an HTTP token`);
  }
}

async function handshake(url: string | URL, options: OpenOptions): Promise<WebSocket> {
  await loadClient();
  checkOptions(options);
  if (options.protocol !== undefined && options.protocol !== "h1") return openH2(url, options);
  const o = { ...OPEN_DEFAULTS, ...definedOnly(options) };
  const proxies = proxyConfig(options.proxy);
  let headers = new Headers(options.headers);
  const cookies = handshakeCookies(options, headers);
  const started = performance.now();
  let target = wsUrl(url);
  if (options.query !== undefined) {
    const merged = mergeQuery(target.pathname + target.search, options.query);
    target = new URL(merged, target);
  }
  const limit = options.redirect === false ? 0 : o.redirectLimit;
  for (let redirects = 0; ; redirects++) {
    // Each hop sends the jar's cookies for its own URL.
    const cookie = hopCookieHeader(cookies, target);
    if (cookie === null) headers.delete("cookie");
    else headers.set("Cookie", cookie);
    const outcome = await attempt(
      target,
      options,
      o.connectTimeout,
      o.maxFrameSize,
      headers,
      proxies,
      started,
      cookies,
    );
    if (outcome instanceof WebSocket) return outcome;
    // A redirect: `outcome` is the Location, resolved against the URL that answered.
    if (redirects >= limit) {
      throw new TooManyRedirectsError(limit, { status: outcome.status });
    }
    const next = wsUrl(new URL(outcome.location, target.href.replace(/^ws/, "http")));
    redirectCookies(cookies, target, next, options.forwardHeaders !== false);
    // HTTP.jl's forwardheaders=false: the next hop starts without the caller's headers.
    if (options.forwardHeaders === false) headers = new Headers();
    else if (next.origin !== target.origin) headers.delete("authorization");
    target = next;
  }
}

interface Redirect {
  status: number;
  location: string;
}

function attempt(
  url: URL,
  options: OpenOptions,
  connectTimeout: number,
  maxFrameSize: number,
  headers: Headers,
  proxies: ProxyConfig | null,
  started: number,
  cookies: HandshakeCookies,
): Promise<WebSocket | Redirect> {
  const secure = url.protocol === "wss:";
  const httpUrl = new URL(url.href);
  httpUrl.protocol = secure ? "https:" : "http:";
  const proxy = proxies?.proxyFor(httpUrl) ?? null;
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === "" ? (secure ? 443 : 80) : Number(url.port);
  const controller = new AbortController();
  const outer = [options.signal, options.context?.signal].filter((s): s is AbortSignal => s !== undefined);

  return new Promise<WebSocket | Redirect>((resolve, reject) => {
    let settled = false;
    const timers: NodeJS.Timeout[] = [];
    const cleanups: (() => void)[] = [];
    const finish = (err: HTTPError | null, value?: WebSocket | Redirect): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      for (const f of cleanups) f();
      if (err) {
        controller.abort(err);
        raw.terminate();
        reject(err);
      } else resolve(value!);
    };
    const deadline = (ms: number, phase: TimeoutError["phase"], from = performance.now()): void => {
      if (ms <= 0) return;
      const t = setTimeout(() => finish(new TimeoutError(phase, ms, performance.now() - from)), ms);
      t.unref();
      timers.push(t);
    };
    const remaining = options.context?.remaining();
    const overall = options.requestTimeout ?? 0;
    const limit =
      remaining === undefined ? overall : overall === 0 ? remaining : Math.min(overall, remaining);
    deadline(limit - (performance.now() - started), "request", started);

    // The offer is sent as a header rather than through ws, whose client fails the handshake when the
    // server picks none of the offered subprotocols; RFC 6455 lets the connection proceed then.
    const offered = options.subprotocols ?? [];
    const wsHeaders = Object.fromEntries(groupHeaders(headers));
    if (offered.length > 0) wsHeaders["Sec-WebSocket-Protocol"] = offered.join(", ");
    let chosen: string | null = null;
    const raw: WsSocket = new WsSocket(url, [], {
      headers: wsHeaders,
      perMessageDeflate: options.compress === true,
      maxPayload: maxFrameSize,
      maxFragments: fragmentLimit(options.maxFragmentation),
      followRedirects: false,
      // Our dialer: TCP/TLS, proxies and the connect timeout, shared with the HTTP client.
      createConnection: ((_opts: unknown, callback: (err: Error | null, socket?: net.Socket) => void) => {
        const { dial } = httpClient();
        dial({
          host,
          port,
          secure,
          tls: options.tls,
          alpn: ["http/1.1"],
          connectTimeout,
          signal: controller.signal,
          // Through an HTTP proxy a WebSocket always tunnels (CONNECT), as browsers do: an Upgrade
          // cannot travel in absolute form.
          proxy,
        }).then(
          (d) => {
            onConnected();
            callback(null, d.socket);
            // A proxy tunnel comes back paused (the dialer stopped reading after the proxy's reply),
            // and node:http only adds a 'data' listener, which does not resume a paused socket.
            // By the next turn node:http is listening.
            setImmediate(() => d.socket.resume());
          },
          (e: unknown) => finish(e as HTTPError),
        );
        return undefined;
      }) as never,
    });
    raw.on("error", (err: Error) =>
      finish(new WebSocketError(1002, `websocket handshake failed: ${err.message}`, { cause: err })),
    );

    const onConnected = (): void => {
      const header = options.responseHeaderTimeout ?? 0;
      deadline(
        header > 0 ? header : (options.readIdleTimeout ?? 0),
        header > 0 ? "responseHeader" : "readIdle",
      );
    };
    raw.on("redirect", noop);
    raw.on("unexpected-response", (_req: ClientRequest, res: IncomingMessage) => {
      // A redirect's or a refusal's cookies are kept, as an HTTP response's are.
      storeHandshakeCookies(cookies.jar, url, res.headers["set-cookie"]);
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      res.resume();
      if (status >= 300 && status < 400 && location !== undefined && options.redirect !== false) {
        finish(null, { status, location });
        raw.terminate();
        return;
      }
      finish(new WebSocketError(1002, `websocket handshake failed: status ${status}`, { status }));
    });
    raw.on("upgrade", (res: IncomingMessage) => {
      storeHandshakeCookies(cookies.jar, url, res.headers["set-cookie"]);
      const picked = res.headers["sec-websocket-protocol"];
      if (picked === undefined) return;
      // Hidden from ws, which would reject any subprotocol since it offered none itself.
      delete res.headers["sec-websocket-protocol"];
      if (offered.includes(picked)) {
        chosen = picked;
        return;
      }
      res.socket.destroy();
      finish(
        new WebSocketError(
          1002,
          `websocket handshake failed: the server chose subprotocol ${JSON.stringify(picked)}, which was not offered`,
        ),
      );
    });
    raw.once("open", () => finish(null, new WebSocket(raw, url.pathname + url.search, options, chosen)));

    for (const signal of outer) {
      const onAbort = (): void => finish(cancelError(signal.reason));
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener("abort", onAbort, { once: true });
        cleanups.push(() => signal.removeEventListener("abort", onAbort));
      }
    }
  });
}

/** The error a handshake aborted by a signal fails with (a deadline's TimeoutError as it is). */
export function cancelError(reason: unknown): HTTPError {
  if (reason instanceof TimeoutError || reason instanceof CanceledError) return reason;
  const message = reason instanceof Error && reason.message ? reason.message : "websocket handshake canceled";
  return new CanceledError(message, { cause: reason });
}

/** Headers as a record for ws (repeated names joined with ", "). */
function groupHeaders(headers: Headers): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of headers) {
    const prior = out.get(name);
    out.set(name, prior === undefined ? value : `${prior}, ${value}`);
  }
  return out;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function noop(): void {}
