// From (method, url, options) to what goes on the wire: URL checks, query merge, headers with the
// client's defaults, basic auth precedence, User-Agent, body, timeouts, the origin and its pool key.
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import type tls from "node:tls";
import {
  ArgumentError,
  ClosedError,
  Headers,
  mergeDefaultQuery,
  mergeQuery,
  type ProxyConfig,
  proxyAuthorization,
  proxyPort,
  Request,
  type ResolvedTimeouts,
  redactProxyUrl,
  resolveTimeouts,
  unescapeUri,
} from "@hyperwire/core";
import type { HTTP2Settings } from "@hyperwire/h2";
import { type PreparedBody, prepareBody } from "./body.js";
import type { Client, ClientDefaults } from "./client.js";
import { cookieHeader, jarFor } from "./cookies.js";
import { ACCEPT_ENCODING, DECOMPRESS_DEFAULTS, decompressLimit } from "./decompress.js";
import type { RequestOptions } from "./options.js";
import { type Tracer, tracerFor } from "./trace.js";
import { type Origin, toProxyConfig } from "./transport.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };
/** The User-Agent sent when the caller sets none. */
export const USER_AGENT = `hyperwire/${version}`;

/** A request ready for its attempts. */
export interface Prepared {
  readonly client: Client;
  readonly method: string;
  readonly origin: Origin;
  /** The absolute URL without userinfo and fragment. */
  readonly url: string;
  /** Origin-form target. */
  readonly path: string;
  readonly headers: Headers;
  /** Fields sent besides `headers` on HTTP/1.1 only (a forward proxy's `Proxy-Authorization`). */
  readonly wireOnly: string[] | undefined;
  readonly body: Uint8Array | AsyncIterable<Uint8Array> | null;
  readonly timeouts: ResolvedTimeouts;
  readonly tracer: Tracer | null;
  readonly statusException: boolean;
  readonly request: Request;
  /** The URL's authority as written (default port omitted, IPv6 in brackets): the Host header. */
  readonly authority: string;
  /** The caller set `Expect: 100-continue`. */
  readonly expectContinue: boolean;
  /**
   * The wire protocol of the attempts: `h1`; `h2` (required: ALPN `h2` only, or h2c on `http:`); or
   * `auto` (https with HTTP/2 offered by ALPN, HTTP/1.1 when the server picks it).
   */
  readonly wire: "auto" | "h1" | "h2";
  /** The client's own HTTP/2 settings; `undefined`: the transport's. */
  readonly http2Settings: HTTP2Settings | undefined;
  /** Decode compressed response bodies. */
  readonly decompress: boolean;
  /** The decoded-size limit in bytes; `0`: none. */
  readonly maxDecompressedSize: number;
}

// One pool per distinct per-call TLS options object.
const tlsIds = new WeakMap<tls.ConnectionOptions, number>();
let nextTlsId = 1;

/** Validates and assembles a request. Throws `ArgumentError`/`ProtocolError`/`ClosedError` before anything is sent. */
export function prepare(
  client: Client,
  method: string,
  url: string | URL,
  options: RequestOptions,
  bodyAllowed: boolean,
): Prepared | Promise<Prepared> {
  if (!client.isOpen)
    throw new ClosedError("the client is closed; create a new Client to send more requests");
  if (typeof method !== "string" || method === "")
    throw new ArgumentError("method must be a non-empty string");
  method = method.toUpperCase();
  const t = targetOf(url);
  const u = t.url;
  const defaults = client.defaults;

  const query = mergeDefaultQuery(defaults.defaultQuery, options.query);
  const path = query === undefined ? t.path : mergeQuery(t.path, query);

  decompressLimit(options.decompress, options.maxDecompressedSize);
  // A call that sets no headers, credentials or `decompress`, to a URL without credentials (most
  // calls), starts from a copy of its client's usual head: the list requestHeaders would build.
  const headers =
    options.headers === undefined &&
    options.decompress === undefined &&
    options.basicAuth === undefined &&
    defaults.defaultBasicAuth === undefined &&
    !t.credentials
      ? new Headers(usualHeaders(defaults))
      : requestHeaders(options, defaults, u);
  // The first hop's cookies; later hops (redirects) build theirs from the caller's header again.
  const jar = jarFor(client, options);
  const callCookies = typeof options.cookies === "object" ? options.cookies : undefined;
  if (jar !== null || callCookies !== undefined) {
    const manual = headers.has("cookie") ? headers.getAll("cookie").join("; ") : null;
    const cookie = cookieHeader(jar, u, callCookies, manual);
    if (cookie !== null && cookie !== manual) headers.set("Cookie", cookie);
  }

  const timeouts = setsTimeout(options)
    ? resolveTimeouts(options, defaults.timeouts)
    : defaults.resolvedTimeouts;
  const tracer = tracerFor(options.verbose, options.trace);
  const r = route(client, options, t, path, headers);
  if (!bodyAllowed) return finish(client, method, r, headers, null, timeouts, tracer, options);
  // No closure here: it would put this function's variables in a heap context on every call.
  const body = prepareBody(options.body, options.json, options.uploadProgress);
  return body instanceof Promise
    ? withBodyLater(body, client, method, r, headers, timeouts, tracer, options)
    : withBody(body, client, method, r, headers, timeouts, tracer, options);
}

/**
 * The request headers before cookies: the call's, the client's defaults where the call has none,
 * basic credentials (the call's, the client's, the URL's), User-Agent and Accept-Encoding.
 */
function requestHeaders(options: RequestOptions, defaults: ClientDefaults, u: URL | undefined): Headers {
  const headers = new Headers(options.headers);
  if (defaults.defaultHeaders !== undefined) {
    for (const [name, value] of defaults.defaultHeaders) if (!headers.has(name)) headers.append(name, value);
  }
  if (!headers.get("authorization")) {
    const auth =
      options.basicAuth ?? defaults.defaultBasicAuth ?? (u === undefined ? undefined : urlCredentials(u));
    if (auth !== undefined) headers.set("Authorization", basicAuthorization(auth));
  }
  if (!headers.get("user-agent")) headers.set("User-Agent", USER_AGENT);
  if (options.decompress !== false && !headers.has("accept-encoding")) {
    headers.set("Accept-Encoding", ACCEPT_ENCODING);
  }
  return headers;
}

const usualOfClients = new WeakMap<ClientDefaults, Headers>();

/** What {@link requestHeaders} makes for a call that sets no header option and a URL without credentials; never handed out (copied). */
function usualHeaders(defaults: ClientDefaults): Headers {
  let usual = usualOfClients.get(defaults);
  if (usual === undefined) {
    usual = requestHeaders({}, defaults, undefined);
    usualOfClients.set(defaults, usual);
  }
  return usual;
}

/** The prepared request once its body is: Content-Type and Content-Length from the body unless set. */
function withBody(
  b: PreparedBody,
  client: Client,
  method: string,
  r: Route,
  headers: Headers,
  timeouts: ResolvedTimeouts,
  tracer: Tracer | null,
  options: RequestOptions,
): Prepared {
  if (b.contentType !== undefined && !headers.has("content-type")) headers.set("Content-Type", b.contentType);
  if (b.contentLength !== undefined && !headers.has("content-length"))
    headers.set("Content-Length", String(b.contentLength));
  return finish(client, method, r, headers, b.data, timeouts, tracer, options);
}

/** {@link withBody} for a body that is still being prepared (a Form reading file sizes, say). */
function withBodyLater(
  body: Promise<PreparedBody>,
  client: Client,
  method: string,
  r: Route,
  headers: Headers,
  timeouts: ResolvedTimeouts,
  tracer: Tracer | null,
  options: RequestOptions,
): Promise<Prepared> {
  return body.then((b) => withBody(b, client, method, r, headers, timeouts, tracer, options));
}

/** Where a request to `u` goes: its pool origin (direct, forward proxy or tunnel), URL and target. */
interface Route {
  origin: Origin;
  cleanUrl: string;
  /** The Host header's value for `cleanUrl`: its authority as written. */
  authority: string;
  target: string;
  wireOnly: string[] | undefined;
}

/**
 * What every request to one URL derives from it the same way. Made once per URL string (see
 * {@link targetOf}): WHATWG URL getters make a new string on every read, and a client sends to the
 * same URLs again and again.
 */
interface Target {
  readonly url: URL;
  readonly secure: boolean;
  /** Host name or IP literal, IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
  /** The pool key of a direct connection (per-call TLS options add a suffix). */
  readonly key: string;
  /** `scheme://authority`, the authority as written (default port omitted, IPv6 in brackets). */
  readonly base: string;
  readonly authority: string;
  /** The URL's origin-form target (`pathname + search`) and the clean URL with it. */
  readonly path: string;
  readonly cleanUrl: string;
  /** The URL has userinfo (basic credentials). */
  readonly credentials: boolean;
  /** The direct origin (no proxy, no per-call TLS options), made on first use. */
  direct: Origin | undefined;
}

function makeTarget(u: URL): Target {
  const secure = u.protocol === "https:";
  const hostname = u.hostname;
  const port = u.port === "" ? (secure ? 443 : 80) : Number(u.port);
  const base = `${u.protocol}//${u.host}`;
  const path = u.pathname + u.search;
  return {
    url: u,
    secure,
    host: hostname.startsWith("[") ? hostname.slice(1, -1) : hostname,
    port,
    key: `${u.protocol}//${hostname}:${port}`,
    base,
    authority: u.host,
    path,
    cleanUrl: base + path,
    credentials: u.username !== "" || u.password !== "",
    direct: undefined,
  };
}

/**
 * Derives the origin (pool key, TLS server name, proxy) of a request to `t`. Each redirect hop is
 * routed again from its own URL. Sets `Host` for a forward proxy when the headers have none.
 */
function route(client: Client, options: RequestOptions, t: Target, path: string, headers: Headers): Route {
  const { url: u, secure, host, port } = t;
  const callTls = options.tls;
  let tlsSuffix = "";
  if (callTls !== undefined) {
    let id = tlsIds.get(callTls);
    if (id === undefined) {
      id = nextTlsId++;
      tlsIds.set(callTls, id);
    }
    tlsSuffix = `#tls${id}`;
  }
  const key = t.key + tlsSuffix;
  const cleanUrl = path === t.path ? t.cleanUrl : t.base + path;
  const proxy = selectProxy(client, options, u);
  let origin: Origin;
  let target = path;
  let wireOnly: string[] | undefined;
  if (proxy === null) {
    if (callTls !== undefined) origin = { key, host, port, secure, tls: callTls };
    else {
      t.direct ??= { key, host, port, secure, tls: undefined };
      origin = t.direct;
    }
  } else if (!secure && (proxy.protocol === "http:" || proxy.protocol === "https:")) {
    // Plain http through an HTTP proxy: absolute-form target on a connection to the proxy, which any
    // origin can share.
    origin = {
      key: `${proxyIdentity(proxy)} (forward)${tlsSuffix}`,
      host: proxy.hostname.startsWith("[") ? proxy.hostname.slice(1, -1) : proxy.hostname,
      port: proxyPort(proxy),
      secure: proxy.protocol === "https:",
      tls: callTls,
      label: `proxy ${redactProxyUrl(proxy)}`,
      forward: true,
    };
    target = cleanUrl;
    if (!headers.has("host")) headers.set("Host", u.host);
    // On the wire only (as Go does): kept out of `headers`, so the credentials do not show in the
    // Request of responses, errors and trace events.
    const auth = proxyAuthorization(proxy);
    if (auth !== null && !headers.has("proxy-authorization")) wireOnly = ["Proxy-Authorization", auth];
  } else {
    origin = { key: `${key} via ${proxyIdentity(proxy)}`, host, port, secure, tls: callTls, tunnel: proxy };
  }
  return { origin, cleanUrl, authority: t.authority, target, wireOnly };
}

function finish(
  client: Client,
  method: string,
  r: Route,
  headers: Headers,
  body: Uint8Array | AsyncIterable<Uint8Array> | null,
  timeouts: ResolvedTimeouts,
  tracer: Tracer | null,
  options: RequestOptions,
): Prepared {
  const { origin, cleanUrl: url, target: path, wireOnly, authority } = r;
  const request = new Request(method, path, { headers, body, url, context: options.context });
  return {
    client,
    method,
    origin,
    url,
    path,
    headers,
    wireOnly,
    body,
    timeouts,
    tracer,
    statusException: options.statusException ?? client.defaults.statusException,
    request,
    authority,
    expectContinue: headers.get("expect")?.toLowerCase() === "100-continue",
    wire: wireFor(client, origin, options.protocol),
    http2Settings: client.http2Settings,
    decompress: options.decompress !== false,
    maxDecompressedSize: options.maxDecompressedSize ?? DECOMPRESS_DEFAULTS.maxDecompressedSize,
  };
}

/**
 * The request of a redirect hop: `prev` sent again to `next` with `method`, `headers` and `body`
 * (the redirect policy chose them). Routing (pool key, TLS server name, proxy) is derived from
 * `next`; timeouts, tracing and the rest carry over.
 */
export function prepareHop(
  prev: Prepared,
  options: RequestOptions,
  next: URL,
  method: string,
  headers: Headers,
  body: Uint8Array | null,
): Prepared {
  const t = makeTarget(next);
  const r = route(prev.client, options, t, t.path, headers);
  const hop = finish(prev.client, method, r, headers, body, prev.timeouts, prev.tracer, options);
  return { ...prev, ...hop };
}

/**
 * The wire protocol of a request: `protocol` validated (`ArgumentError` for anything but `auto`,
 * `h1`, `h2`), with `auto` resolved to `h1` where HTTP/2 is not offered: plain `http:`, a forward
 * proxy, `preferHttp2: false` on the client or its transport, or TLS options whose `ALPNProtocols`
 * leave out `h2`.
 */
function wireFor(client: Client, origin: Origin, protocol: unknown): "auto" | "h1" | "h2" {
  if (protocol === undefined || protocol === "auto") {
    if (!origin.secure || origin.forward === true) return "h1";
    const transport = client.transport;
    if (!client.preferHttp2 || !transport.preferHttp2) return "h1";
    return alpnAllowsH2(origin.tls ?? transport.tls) ? "auto" : "h1";
  }
  if (protocol === "h1") return "h1";
  if (protocol === "h2") {
    if (origin.forward === true) {
      throw new ArgumentError(
        "protocol: 'h2' cannot go through an HTTP forward proxy (plain http: URLs are forwarded as HTTP/1.1); use a SOCKS5 proxy, or https:",
      );
    }
    return "h2";
  }
  throw new ArgumentError(`protocol must be 'auto', 'h1' or 'h2', got ${JSON.stringify(protocol)}`);
}

/** False when TLS options carry a non-empty `ALPNProtocols` list without `h2` (the caller's choice). */
function alpnAllowsH2(options: tls.ConnectionOptions | undefined): boolean {
  const list = options?.ALPNProtocols;
  if (list === undefined || list === null) return true;
  const names: string[] = [];
  if (Array.isArray(list)) {
    for (const p of list)
      names.push(typeof p === "string" ? p : Buffer.from(p as Uint8Array).toString("latin1"));
  } else {
    // The wire form: length-prefixed names.
    const bytes = Buffer.from(list as Uint8Array);
    for (let i = 0; i < bytes.length; i += 1 + bytes[i]!)
      names.push(bytes.toString("latin1", i + 1, i + 1 + bytes[i]!));
  }
  return names.length === 0 || names.includes("h2");
}

/** Clients that are the process-wide default (the only ones a per-call `proxy` may go with). */
export const DEFAULT_CLIENTS = new WeakSet<Client>();

function selectProxy(client: Client, options: RequestOptions, u: URL): URL | null {
  let config: ProxyConfig | null;
  if (options.proxy !== undefined) {
    if (!DEFAULT_CLIENTS.has(client)) {
      throw new ArgumentError(
        "give a proxy either per call or to the client's Transport, not both: a call with an explicit client takes no proxy option",
      );
    }
    config = toProxyConfig(options.proxy);
  } else config = client.transport.proxy;
  return config === null ? null : config.proxyFor(u);
}

const identities = new WeakMap<URL, string>();

/** A proxy's pool identity: its URL without the password, plus a digest of the credentials. */
function proxyIdentity(proxy: URL): string {
  let id = identities.get(proxy);
  if (id === undefined) {
    id = redactProxyUrl(proxy);
    if (proxy.password !== "") {
      id += `#${createHash("sha256").update(`${proxy.username}:${proxy.password}`).digest("hex").slice(0, 12)}`;
    }
    identities.set(proxy, id);
  }
  return id;
}

/** True when the call sets any timeout (most calls set none and reuse the client's resolved set). */
function setsTimeout(o: RequestOptions): boolean {
  return (
    o.connectTimeout !== undefined ||
    o.requestTimeout !== undefined ||
    o.responseHeaderTimeout !== undefined ||
    o.readIdleTimeout !== undefined ||
    o.writeIdleTimeout !== undefined ||
    o.expectContinueTimeout !== undefined
  );
}

/**
 * Targets of URLs given as strings, by string: a client calls the same URLs again and again, and
 * WHATWG parsing is about a microsecond each time. The URL objects are only read, never changed or
 * handed out. Bounded: emptied when full.
 */
const targets = new Map<string, Target>();
const TARGETS_MAX = 1024;

/** The checked URL of a request and what its requests derive from it (a URL object given is not cached: its owner may change it). */
function targetOf(url: string | URL): Target {
  let u: URL;
  if (url instanceof URL) u = url;
  else if (typeof url === "string") {
    const known = targets.get(url);
    if (known !== undefined) return known;
    try {
      u = new URL(url);
    } catch (e) {
      throw new ArgumentError(
        `invalid URL ${JSON.stringify(url)}: give an absolute http:// or https:// URL`,
        {
          cause: e,
        },
      );
    }
  } else throw new ArgumentError("url must be a string or a URL");
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new ArgumentError(
      `unsupported URL scheme ${u.protocol} in ${u.href}: only http: and https: are requested`,
    );
  }
  if (u.hostname === "") throw new ArgumentError(`URL ${u.href} has no host`);
  const t = makeTarget(u);
  if (typeof url === "string") {
    if (targets.size >= TARGETS_MAX) targets.clear();
    targets.set(url, t);
  }
  return t;
}

function urlCredentials(u: URL): readonly [string, string] | undefined {
  if (u.username === "" && u.password === "") return undefined;
  return [unescapeUri(u.username), unescapeUri(u.password)];
}

/** `Basic base64(user:password)`, UTF-8. */
export function basicAuthorization(auth: readonly [string, string]): string {
  if (
    !Array.isArray(auth) ||
    auth.length !== 2 ||
    typeof auth[0] !== "string" ||
    typeof auth[1] !== "string"
  ) {
    throw new ArgumentError("basicAuth must be a [user, password] pair of strings");
  }
  if (auth[0].includes(":")) throw new ArgumentError("a basicAuth user name may not contain ':'");
  return `Basic ${Buffer.from(`${auth[0]}:${auth[1]}`, "utf8").toString("base64")}`;
}
