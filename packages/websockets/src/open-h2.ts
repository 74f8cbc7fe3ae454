// WebSockets over HTTP/2 (RFC 8441). The client side: `open(url, { protocol: "h2" })` dials the
// origin (through a proxy tunnel when one applies), runs an HTTP/2 session of its own on the
// connection, checks that the server allows the extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL),
// and sends `:method CONNECT` with `:protocol websocket`; a 200 turns the stream into the WebSocket.
import http2, {
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from "node:http2";
import type net from "node:net";
import {
  ArgumentError,
  Headers,
  type HTTPError,
  mergeQuery,
  TimeoutError,
  WebSocketError,
} from "@hyperwire/core";
import { httpClient } from "./client.js";
import { handshakeCookies, hopCookieHeader, storeHandshakeCookies } from "./cookies.js";
import {
  DEFLATE,
  type Deflate,
  formatDeflate,
  newDeflate,
  parseExtensions,
  wsOnStream,
} from "./h2-stream.js";
import { cancelError, OPEN_DEFAULTS, type OpenOptions, proxyConfig, wsUrl } from "./open.js";
import { fragmentLimit, WebSocket } from "./websocket.js";

const { NGHTTP2_CANCEL } = http2.constants;

/** Request fields HTTP/2 forbids (RFC 9113 §8.2.2) or that the handshake sets itself. */
const NOT_FORWARDED: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "host",
  "cookie",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
]);

/**
 * `open(url, { protocol: "h2" })`: the handshake over HTTP/2 (RFC 8441) on a session of its own,
 * which closes with the WebSocket. Proxies work as over HTTP/1.1 (the session runs in the tunnel);
 * redirects are not followed (a 3xx is a failed handshake with its status).
 */
export function openH2(url: string | URL, options: OpenOptions): Promise<WebSocket> {
  if (options.protocol !== "h2") {
    throw new ArgumentError(`protocol must be "h1" or "h2", not ${JSON.stringify(options.protocol)}`);
  }
  // open() checked the timeouts, maxFragmentation and the subprotocols.
  const offered = options.subprotocols ?? [];
  let target = wsUrl(url);
  if (options.query !== undefined)
    target = new URL(mergeQuery(target.pathname + target.search, options.query), target);
  // Through a proxy the session runs in a tunnel (HTTP CONNECT or SOCKS5), as HTTP/2 requests do.
  const httpTarget = new URL(target.href);
  httpTarget.protocol = target.protocol === "wss:" ? "https:" : "http:";
  const proxy = proxyConfig(options.proxy)?.proxyFor(httpTarget) ?? null;
  const headers = new Headers(options.headers);
  const cookies = handshakeCookies(options, headers);
  const maxFrameSize = options.maxFrameSize ?? OPEN_DEFAULTS.maxFrameSize;
  const maxFragments = fragmentLimit(options.maxFragmentation);
  const deflate = options.compress === true ? newDeflate(false, maxFrameSize) : undefined;
  const secure = target.protocol === "wss:";
  const host = target.hostname.startsWith("[") ? target.hostname.slice(1, -1) : target.hostname;
  const port = target.port === "" ? (secure ? 443 : 80) : Number(target.port);
  const request = connectHeaders(target, headers, offered, deflate, hopCookieHeader(cookies, target));
  const path = target.pathname + target.search;
  const connectTimeout = options.connectTimeout ?? OPEN_DEFAULTS.connectTimeout;
  const started = performance.now();
  const controller = new AbortController();
  const outer = [options.signal, options.context?.signal].filter((s): s is AbortSignal => s !== undefined);

  return new Promise<WebSocket>((resolve, reject) => {
    let settled = false;
    let socket: net.Socket | undefined;
    let session: http2.ClientHttp2Session | undefined;
    const timers: NodeJS.Timeout[] = [];
    const cleanups: (() => void)[] = [];
    const finish = (err: HTTPError | null, ws?: WebSocket): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      for (const f of cleanups) f();
      if (err === null) {
        resolve(ws!);
        return;
      }
      controller.abort(err);
      session?.destroy();
      socket?.destroy();
      reject(err);
    };
    const fail = (message: string, cause?: unknown): void =>
      finish(new WebSocketError(1002, `websocket handshake failed: ${message}`, { cause }));
    const deadline = (
      ms: number,
      phase: TimeoutError["phase"],
      from = performance.now(),
    ): NodeJS.Timeout | undefined => {
      if (ms <= 0) return undefined;
      const t = setTimeout(() => finish(new TimeoutError(phase, ms, performance.now() - from)), ms);
      t.unref();
      timers.push(t);
      return t;
    };
    const remaining = options.context?.remaining();
    const overall = options.requestTimeout ?? 0;
    const limit =
      remaining === undefined ? overall : overall === 0 ? remaining : Math.min(overall, remaining);
    deadline(limit - (performance.now() - started), "request", started);
    for (const signal of outer) {
      const onAbort = (): void => finish(cancelError(signal.reason));
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener("abort", onAbort, { once: true });
      cleanups.push(() => signal.removeEventListener("abort", onAbort));
    }

    // The stream is the WebSocket once a 200 arrives.
    const onResponse = (stream: ClientHttp2Stream, h: IncomingHttpHeaders): void => {
      storeHandshakeCookies(cookies.jar, target, h["set-cookie"]);
      const status = Number(h[":status"]);
      if (status !== 200) {
        stream.close(NGHTTP2_CANCEL);
        finish(new WebSocketError(1002, `websocket handshake failed: status ${status}`, { status }));
        return;
      }
      const picked = h["sec-websocket-protocol"];
      let chosen: string | null = null;
      if (picked !== undefined) {
        if (typeof picked !== "string" || !offered.includes(picked)) {
          fail(`the server chose subprotocol ${JSON.stringify(picked)}, which was not offered`);
          return;
        }
        chosen = picked;
      }
      let accepted: Deflate | undefined;
      const ext = h["sec-websocket-extensions"];
      if (ext !== undefined) {
        if (deflate === undefined || typeof ext !== "string") {
          fail("the server sent Sec-WebSocket-Extensions, but no extension was offered");
          return;
        }
        try {
          const answer = parseExtensions(ext);
          const names = Object.keys(answer);
          if (names.length !== 1 || names[0] !== DEFLATE)
            throw new Error(`unrequested extension ${names.join(", ")}`);
          deflate.accept(answer[DEFLATE]!);
          accepted = deflate;
        } catch (e) {
          fail(`invalid Sec-WebSocket-Extensions ${JSON.stringify(ext)}`, e);
          return;
        }
      }
      const raw = wsOnStream(stream, "client", maxFrameSize, maxFragments, accepted);
      // The session is this WebSocket's alone: it closes with it.
      const own = session!;
      raw.once("close", () => {
        if (!own.closed && !own.destroyed) own.close();
      });
      finish(null, new WebSocket(raw, path, options, chosen));
    };

    const notAllowed = (): void =>
      fail(
        'the server does not allow WebSockets over HTTP/2 (it did not send SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441); use protocol: "h1"',
      );
    let asked = false;
    let requested = false;
    const onSettings = (settings: http2.Settings): void => {
      if (settled || requested) return;
      clearTimeout(connecting);
      if (settings.enableConnectProtocol !== true) {
        // RFC 8441 lets the setting come in a later SETTINGS frame than the first. A PING's ACK
        // comes after every frame the server sent before it: if the setting has not come by then,
        // the server does not allow the extended CONNECT.
        if (asked) return;
        asked = true;
        try {
          session!.ping((err) => {
            if (!requested && !settled) {
              if (err) fail("the HTTP/2 connection failed", err);
              else notAllowed();
            }
          });
        } catch (e) {
          fail("the HTTP/2 connection failed", e);
        }
        return;
      }
      requested = true;
      let stream: ClientHttp2Stream;
      try {
        stream = session!.request(request, { endStream: false });
      } catch (e) {
        fail(`the HTTP/2 connection refused the request (${(e as Error).message})`, e);
        return;
      }
      // Errors end the stream; 'close' reports them.
      stream.on("error", noop);
      const header = options.responseHeaderTimeout ?? 0;
      deadline(
        header > 0 ? header : (options.readIdleTimeout ?? 0),
        header > 0 ? "responseHeader" : "readIdle",
      );
      stream.once("response", (h: IncomingHttpHeaders) => onResponse(stream, h));
      stream.once("close", () => {
        if (!settled) fail(`the server reset the HTTP/2 stream (code ${stream.rstCode ?? 0})`);
      });
    };

    // Connecting is dial + the peer's first SETTINGS, within connectTimeout.
    const connecting = deadline(connectTimeout, "connect", started);
    const { dial } = httpClient();
    dial({
      host,
      port,
      secure,
      tls: options.tls,
      alpn: ["h2"],
      connectTimeout,
      signal: controller.signal,
      proxy,
    }).then(
      (d) => {
        if (settled) {
          d.socket.destroy();
          return;
        }
        socket = d.socket;
        if (secure && d.protocol !== "h2") {
          fail(
            `${target.host} did not negotiate HTTP/2 by ALPN (it chose ${d.protocol}); use protocol: "h1"`,
          );
          return;
        }
        const s = http2.connect(`${secure ? "https" : "http"}://${target.host}`, {
          createConnection: () => d.socket,
          settings: { enablePush: false },
        });
        session = s;
        // Session errors come before its 'close', which reports them; without a listener node throws.
        let sessionError: Error | undefined;
        s.on("error", (e: Error) => {
          sessionError ??= e;
        });
        s.once("close", () => {
          d.socket.destroy();
          if (!settled) {
            fail(
              `${target.host} closed the connection before the HTTP/2 handshake completed${secure ? "" : " (does it speak HTTP/2 with prior knowledge, h2c?)"}`,
              sessionError,
            );
          }
        });
        s.on("remoteSettings", onSettings);
      },
      (e: unknown) => finish(e as HTTPError),
    );
  });
}

/** The extended CONNECT's header block (RFC 8441 §4, §5): pseudo-headers, then the caller's fields. */
function connectHeaders(
  target: URL,
  headers: Headers,
  offered: readonly string[],
  deflate: Deflate | undefined,
  cookie: string | null,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ":method": "CONNECT",
    ":protocol": "websocket",
    ":scheme": target.protocol === "wss:" ? "https" : "http",
    ":path": target.pathname + target.search,
    ":authority": headers.get("host") ?? target.host,
  };
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (NOT_FORWARDED.has(lower)) continue;
    const prior = out[lower];
    if (prior === undefined) out[lower] = value;
    else if (Array.isArray(prior)) prior.push(value);
    else out[lower] = [String(prior), value];
  }
  out["sec-websocket-version"] = "13";
  if (offered.length > 0) out["sec-websocket-protocol"] = offered.join(", ");
  if (deflate !== undefined) out["sec-websocket-extensions"] = formatDeflate(deflate.offer());
  if (cookie !== null) out.cookie = cookie;
  return out;
}

function noop(): void {}
