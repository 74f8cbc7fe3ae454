import { isIP } from "node:net";
import { ArgumentError } from "./errors.js";
import { unescapeUri } from "./url.js";

/** What a proxy option takes: a proxy URL, a {@link ProxyConfig}, or `null` for direct. */
export type ProxyInit = string | URL | ProxyConfig | null;

const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  "http:": 80,
  "https:": 443,
  "socks5:": 1080,
  "socks5h:": 1080,
};

/** `[::1]` → `::1`, lower case, trailing dots stripped. */
function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  while (h.endsWith(".")) h = h.slice(0, -1);
  return h;
}

/** One textual form per IP address (`0:0::1` and `::1` are the same); `null` when not an IP literal. */
function canonicalIp(host: string): string | null {
  const family = isIP(host);
  if (family === 4) return host;
  if (family === 6) return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  return null;
}

function ipv4ToBigInt(ip: string): bigint {
  return ip.split(".").reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function ipv6ToBigInt(ip: string): bigint {
  // `ip` is canonical (from the URL parser), so `::` appears at most once and there is no dotted tail
  // except an IPv4-mapped one, which the URL parser turns into hex groups.
  const [head, tail] = ip.includes("::") ? ip.split("::") : [ip, undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups =
    tail === undefined ? left : [...left, ...new Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

function ipToBigInt(ip: string): { family: 4 | 6; value: bigint } {
  return isIP(ip) === 4 ? { family: 4, value: ipv4ToBigInt(ip) } : { family: 6, value: ipv6ToBigInt(ip) };
}

interface CidrRule {
  family: 4 | 6;
  network: bigint;
  mask: bigint;
}

interface HostRule {
  /** A canonical IP, or a domain without a leading dot. */
  host: string;
  isIp: boolean;
  /** Only subdomains match (`.example.com`, `*.example.com`). */
  subdomainsOnly: boolean;
  /** Only this port matches; `undefined` for any port. */
  port: number | undefined;
}

const DOMAIN_CHARS = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

function parsePort(s: string): number | undefined {
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * A `NO_PROXY` list: hosts that are reached directly. Entries are comma-separated (or an array);
 * empty or invalid ones are ignored, never an error.
 *
 * - `*` matches every host;
 * - `example.com` matches itself and its subdomains; `.example.com` and `*.example.com` only subdomains;
 * - an IP literal matches that address; `10.0.0.0/8` and `fd00::/8` match a range;
 * - `host:port` and `[v6]:port` match that port only.
 *
 * Matching is case-insensitive and ignores trailing dots.
 *
 * ```ts
 * new NoProxy("internal.example, 10.0.0.0/8").matches("api.internal.example", 443); // true
 * ```
 */
export class NoProxy {
  readonly #matchAll: boolean;
  readonly #hosts: HostRule[] = [];
  readonly #cidrs: CidrRule[] = [];
  /** The entries as given, after trimming. */
  readonly entries: readonly string[];

  constructor(spec: string | readonly string[] = []) {
    let list: readonly string[];
    if (typeof spec === "string") list = spec.split(",");
    else if (Array.isArray(spec) && spec.every((e) => typeof e === "string")) list = spec;
    else throw new ArgumentError("NoProxy takes a comma-separated string or an array of strings");
    const entries: string[] = [];
    let all = false;
    for (const raw of list) {
      const entry = raw.trim();
      if (entry === "") continue;
      entries.push(entry);
      if (entry === "*") all = true;
      else this.#add(entry.toLowerCase());
    }
    this.#matchAll = all;
    this.entries = Object.freeze(entries);
  }

  #add(entry: string): void {
    const slash = entry.indexOf("/");
    if (slash >= 0) {
      this.#addCidr(entry.slice(0, slash), entry.slice(slash + 1));
      return;
    }
    let host = entry;
    let port: number | undefined;
    if (host.startsWith("[")) {
      const close = host.indexOf("]");
      if (close < 0) return;
      const rest = host.slice(close + 1);
      host = host.slice(1, close);
      if (rest !== "") {
        if (!rest.startsWith(":")) return;
        port = parsePort(rest.slice(1));
        if (port === undefined) return;
      }
      if (isIP(host) !== 6) return;
    } else {
      const colon = host.indexOf(":");
      if (colon >= 0 && host.indexOf(":", colon + 1) < 0) {
        port = parsePort(host.slice(colon + 1));
        if (port === undefined) return;
        host = host.slice(0, colon);
      }
    }
    const ip = canonicalIp(host);
    if (ip !== null) {
      this.#hosts.push({ host: ip, isIp: true, subdomainsOnly: false, port });
      return;
    }
    let subdomainsOnly = false;
    if (host.startsWith("*.")) {
      host = host.slice(2);
      subdomainsOnly = true;
    } else if (host.startsWith(".")) {
      host = host.slice(1);
      subdomainsOnly = true;
    }
    host = normalizeHost(host);
    if (!DOMAIN_CHARS.test(host)) return;
    this.#hosts.push({ host, isIp: false, subdomainsOnly, port });
  }

  #addCidr(addr: string, prefixText: string): void {
    const ip = canonicalIp(normalizeHost(addr));
    if (ip === null || !/^\d{1,3}$/.test(prefixText)) return;
    const { family, value } = ipToBigInt(ip);
    const bits = family === 4 ? 32 : 128;
    const prefix = Number(prefixText);
    if (prefix > bits) return;
    const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
    this.#cidrs.push({ family, network: value & mask, mask });
  }

  /** True when no entry was valid (and the list is not `*`). */
  get isEmpty(): boolean {
    return !this.#matchAll && this.#hosts.length === 0 && this.#cidrs.length === 0;
  }

  /** True when `host` (optionally on `port`) should be reached directly. `[v6]` is accepted. */
  matches(host: string, port?: number): boolean {
    if (this.#matchAll) return true;
    const h = normalizeHost(host);
    const ip = canonicalIp(h);
    for (const rule of this.#hosts) {
      if (rule.port !== undefined && rule.port !== port) continue;
      if (rule.isIp) {
        if (ip === rule.host) return true;
      } else if (ip === null) {
        if (h.endsWith(`.${rule.host}`) || (!rule.subdomainsOnly && h === rule.host)) return true;
      }
    }
    if (ip !== null && this.#cidrs.length > 0) {
      const { family, value } = ipToBigInt(ip);
      for (const c of this.#cidrs) if (c.family === family && (value & c.mask) === c.network) return true;
    }
    return false;
  }
}

/** True for `localhost`, `*.localhost`, 127.0.0.0/8 and ::1. */
export function isLoopbackHost(host: string): boolean {
  const h = normalizeHost(host);
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  const ip = canonicalIp(h);
  if (ip === null) return false;
  if (isIP(ip) === 4) return ip.startsWith("127.");
  // IPv4-mapped loopback (::ffff:127.x.y.z, canonically ::ffff:7fxx:xxxx) is loopback too, as in Go.
  return ip === "::1" || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(ip);
}

/**
 * `user:secret@` → `user:***@`, for error messages and logs. Works on URLs that do not parse too.
 */
export function redactProxyUrl(url: URL | string): string {
  if (url instanceof URL) {
    if (!url.password) return url.href;
    const copy = new URL(url.href);
    copy.password = "***";
    return copy.href;
  }
  return url.replace(/^([^/]*\/\/[^:@/]*:)[^/]*@/, "$1***@").replace(/^([^/:@]*:)[^/]*@/, "$1***@");
}

/**
 * Parses a proxy URL: `http://`, `https://`, `socks5://` or `socks5h://` (no scheme means `http://`).
 * A socks URL without a port gets 1080. Anything else is an `ArgumentError` that names the value with
 * its password masked.
 */
export function parseProxyUrl(value: string | URL): URL {
  if (value instanceof URL) return checkProxyUrl(new URL(value.href), value.href);
  const text = value.trim();
  if (text === "") throw new ArgumentError("proxy URL is empty");
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch (e) {
    // Node's ERR_INVALID_URL keeps the raw input, password included, where util.inspect prints it.
    if (typeof e === "object" && e !== null && "input" in e)
      (e as { input: unknown }).input = redactProxyUrl(withScheme);
    throw new ArgumentError(`invalid proxy URL ${JSON.stringify(redactProxyUrl(text))}`, { cause: e });
  }
  return checkProxyUrl(url, text);
}

function checkProxyUrl(url: URL, original: string): URL {
  const shown = JSON.stringify(redactProxyUrl(original));
  if (!(url.protocol in DEFAULT_PORTS)) {
    throw new ArgumentError(
      `unsupported proxy scheme ${url.protocol.slice(0, -1)} in ${shown}; use http, https, socks5 or socks5h`,
    );
  }
  if (url.hostname === "") throw new ArgumentError(`proxy URL ${shown} has no host`);
  if ((url.pathname !== "" && url.pathname !== "/") || url.search || url.hash) {
    throw new ArgumentError(`proxy URL ${shown} must not have a path, query or fragment`);
  }
  if (url.port === "" && (url.protocol === "socks5:" || url.protocol === "socks5h:")) url.port = "1080";
  return url;
}

/** The port a proxy URL points at, defaults filled in (80, 443, 1080). */
export function proxyPort(url: URL): number {
  return url.port ? Number(url.port) : (DEFAULT_PORTS[url.protocol] ?? 80);
}

/**
 * `Basic base64(user:password)` from the proxy URL's percent-decoded userinfo, or `null` when it
 * has none. Sent as `Proxy-Authorization` to HTTP proxies.
 */
export function proxyAuthorization(url: URL): string | null {
  if (!url.username && !url.password) return null;
  const credentials = `${unescapeUri(url.username)}:${unescapeUri(url.password)}`;
  return `Basic ${Buffer.from(credentials, "utf8").toString("base64")}`;
}

/** Options of {@link ProxyConfig}. Each proxy is a URL (string or `URL`); see {@link parseProxyUrl}. */
export interface ProxyConfigOptions {
  /** The proxy for `http:` (and `ws:`) requests. Falls back to `all`. */
  http?: string | URL | null;
  /** The proxy for `https:` (and `wss:`) requests. Falls back to `all`. */
  https?: string | URL | null;
  /** The proxy for any request the scheme-specific ones do not cover. */
  all?: string | URL | null;
  /** Hosts reached directly. */
  noProxy?: string | readonly string[] | NoProxy | null;
}

/** Set only by {@link ProxyConfig.fromEnv}; the symbol is not exported, so callers cannot pass it. */
const fromEnvKey = Symbol("hyperwire.proxyFromEnv");

interface EnvState {
  /** `REQUEST_METHOD` is set and the http proxy came from `HTTP_PROXY`/`http_proxy`. */
  cgiGuard: boolean;
}

type InternalOptions = ProxyConfigOptions & { [fromEnvKey]?: EnvState };

/**
 * Which proxy, if any, a request goes through. `new ProxyConfig()` is direct.
 *
 * ```ts
 * const cfg = new ProxyConfig({ https: "http://proxy.internal:3128", noProxy: ".internal" });
 * cfg.proxyFor("https://example.com")?.href; // "http://proxy.internal:3128/"
 * cfg.proxyFor("https://api.internal"); // null: direct
 * ```
 */
export class ProxyConfig {
  readonly http: URL | null;
  readonly https: URL | null;
  readonly all: URL | null;
  readonly noProxy: NoProxy | null;
  /** True when this configuration was read from the environment; loopback hosts then always go direct. */
  readonly fromEnvironment: boolean;
  readonly #env: EnvState | undefined;

  constructor(options: ProxyConfigOptions = {}) {
    const env = (options as InternalOptions)[fromEnvKey];
    this.http = options.http ? parseProxyUrl(options.http) : null;
    this.https = options.https ? parseProxyUrl(options.https) : null;
    this.all = options.all ? parseProxyUrl(options.all) : null;
    const np = options.noProxy;
    this.noProxy = np === undefined || np === null ? null : np instanceof NoProxy ? np : new NoProxy(np);
    this.fromEnvironment = env !== undefined;
    this.#env = env;
  }

  /**
   * One proxy for every scheme (HTTP.jl's `ProxyConfig(url)`).
   *
   * ```ts
   * ProxyConfig.fromUrl("socks5h://127.0.0.1:1080", { noProxy: "localhost" });
   * ```
   */
  static fromUrl(url: string | URL, options: { noProxy?: ProxyConfigOptions["noProxy"] } = {}): ProxyConfig {
    return new ProxyConfig({ all: url, noProxy: options.noProxy ?? null });
  }

  /**
   * Reads `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` once, upper case first (an empty
   * value moves on to the lower-case name; an unparsable one means no proxy for that scheme).
   * `NO_PROXY` wins over `no_proxy` when set, even empty. Loopback hosts always go direct (our
   * decision, as Go does). In a CGI environment (`REQUEST_METHOD` set) an `HTTP_PROXY` value is
   * refused for plain-http requests, since a client can set it through a `Proxy:` header.
   *
   * ```ts
   * const cfg = ProxyConfig.fromEnv({ HTTPS_PROXY: "http://proxy:3128" });
   * ```
   */
  static fromEnv(env: Readonly<Record<string, string | undefined>> = process.env): ProxyConfig {
    const http = envProxy(env, "HTTP_PROXY");
    const noProxy = env.NO_PROXY !== undefined ? env.NO_PROXY : env.no_proxy;
    const options: InternalOptions = {
      http,
      https: envProxy(env, "HTTPS_PROXY"),
      all: envProxy(env, "ALL_PROXY"),
      noProxy: noProxy ?? null,
      [fromEnvKey]: { cgiGuard: Boolean(env.REQUEST_METHOD?.trim()) && http !== null },
    };
    return new ProxyConfig(options);
  }

  /** True when every request goes direct. */
  get isDirect(): boolean {
    return this.http === null && this.https === null && this.all === null;
  }

  /**
   * The proxy URL for a request to `url`, or `null` to go direct. `ws:` follows `http:`, `wss:`
   * follows `https:`.
   */
  proxyFor(url: string | URL): URL | null {
    let target: URL;
    try {
      target = typeof url === "string" ? new URL(url) : url;
    } catch {
      // Node's error repeats the raw URL (password included), so it is not kept as the cause.
      throw new ArgumentError(`invalid URL ${JSON.stringify(redactProxyUrl(url))}`);
    }
    if (this.isDirect) return null;
    const secure = target.protocol === "https:" || target.protocol === "wss:";
    const port = target.port ? Number(target.port) : secure ? 443 : 80;
    if (this.noProxy?.matches(target.hostname, port)) return null;
    // Loopback goes direct for environment configs (our decision) and, as in HTTP.jl, whenever a
    // NoProxy list exists.
    if ((this.fromEnvironment || this.noProxy !== null) && isLoopbackHost(target.hostname)) return null;
    const specific = secure ? this.https : this.http;
    if (!secure && specific !== null && this.#env?.cgiGuard) {
      throw new ArgumentError(
        "refusing to use HTTP_PROXY value in CGI environment (REQUEST_METHOD is set); see https://httpoxy.org — set the proxy explicitly instead",
      );
    }
    return specific ?? this.all;
  }
}

function envProxy(env: Readonly<Record<string, string | undefined>>, upper: string): URL | null {
  for (const name of [upper, upper.toLowerCase()]) {
    const value = env[name];
    if (value === undefined || value.trim() === "") continue;
    try {
      return parseProxyUrl(value);
    } catch {
      return null;
    }
  }
  return null;
}

/** HTTP.jl's `ProxyURL`: the same as {@link ProxyConfig.fromUrl}. */
export function proxyUrl(
  url: string | URL,
  options: { noProxy?: ProxyConfigOptions["noProxy"] } = {},
): ProxyConfig {
  return ProxyConfig.fromUrl(url, options);
}

/** HTTP.jl's `ProxyFromEnvironment`: the same as {@link ProxyConfig.fromEnv}. */
export function proxyFromEnvironment(env?: Readonly<Record<string, string | undefined>>): ProxyConfig {
  return ProxyConfig.fromEnv(env);
}
