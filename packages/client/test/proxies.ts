// Proxies for the proxy tests: the real ones from Debian packages (tinyproxy for HTTP forward and
// CONNECT, microsocks for SOCKS5) run as child processes on 127.0.0.1, a small HTTP/HTTPS proxy
// written here (forward + CONNECT, optional basic auth, TLS for the `https://` proxy mode), and a
// counting TCP relay to put in front of any of them. Everything listens on 127.0.0.1 only and every
// wait is bounded.
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type tls from "node:tls";
import { tls as fixtures } from "../../../fixtures/tls/index.mjs";

/** Credentials of a proxy: `[user, password]`, as the proxy expects them (not percent-encoded). */
export type Credentials = readonly [string, string];

/** A port nobody listens on right now (bound on 127.0.0.1, read, closed). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One TCP connection attempt to 127.0.0.1:`port`: true when it was accepted. */
function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.setTimeout(1_000, () => done(false));
  });
}

/**
 * Resolves once 127.0.0.1:`port` accepts TCP connections; rejects after `timeoutMs`, or at once when
 * `failed()` says the process that should listen is gone.
 */
export async function waitForPort(
  port: number,
  what: string,
  failed: () => string | undefined = () => undefined,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const why = failed();
    if (why !== undefined) throw new Error(`${what} did not start: ${why}`);
    if (await canConnect(port)) return;
    if (performance.now() > deadline)
      throw new Error(`${what} did not accept connections on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The absolute path of an executable, or an error that says which Debian package provides it. The
 * proxy tests fail (they do not skip) when a proxy is missing.
 */
export function requireBinary(name: string, debianPackage: string): string {
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter), "/usr/bin", "/usr/sbin", "/usr/local/bin"];
  for (const dir of dirs) {
    if (dir === "") continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  throw new Error(
    `the proxy tests need the real proxy "${name}", which is not installed: apt-get install ${debianPackage} (.ci/run installs it)`,
  );
}

/** A child process running a proxy; its output is kept for error messages. */
class ProxyProcess {
  readonly child: ChildProcess;
  output = "";
  exited: string | undefined;
  readonly #exit: Promise<void>;

  constructor(file: string, args: string[]) {
    this.child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout?.on("data", (c: Buffer) => {
      this.output += c.toString();
    });
    this.child.stderr?.on("data", (c: Buffer) => {
      this.output += c.toString();
    });
    this.#exit = new Promise<void>((resolve) => {
      this.child.once("error", (e) => {
        this.exited = `could not run ${file}: ${e.message}`;
        resolve();
      });
      this.child.once("exit", (code, signal) => {
        this.exited = `${file} exited (${signal ?? `code ${code}`}): ${this.output.trim().slice(0, 500)}`;
        resolve();
      });
    });
  }

  /** SIGTERM, then SIGKILL when it is still there after 2 s. */
  async stop(): Promise<void> {
    if (this.exited !== undefined) return;
    this.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const killed = await Promise.race([
      this.#exit.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), 2_000);
      }),
    ]);
    clearTimeout(timer);
    if (!killed) {
      this.child.kill("SIGKILL");
      await this.#exit;
    }
  }
}

/** Starts a proxy process on a free port, retrying on another port when the first was taken meanwhile. */
async function startOnFreePort(
  what: string,
  launch: (port: number) => ProxyProcess,
): Promise<{ process: ProxyProcess; port: number }> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const p = launch(port);
    try {
      await waitForPort(port, what, () => p.exited);
      return { process: p, port };
    } catch (e) {
      last = e;
      await p.stop();
    }
  }
  throw last;
}

/** `scheme://user:password@127.0.0.1:port` with the credentials percent-encoded (or none). */
export function proxyUrl(scheme: string, port: number, auth?: Credentials): string {
  const userinfo = auth ? `${encodeURIComponent(auth[0])}:${encodeURIComponent(auth[1])}@` : "";
  return `${scheme}://${userinfo}127.0.0.1:${port}`;
}

/** tinyproxy (Debian `tinyproxy-bin`): HTTP forward proxy and CONNECT tunnels, optional basic auth. */
export class Tinyproxy {
  readonly port: number;
  readonly auth: Credentials | undefined;
  readonly #process: ProxyProcess;
  readonly #dir: string;

  private constructor(port: number, auth: Credentials | undefined, p: ProxyProcess, dir: string) {
    this.port = port;
    this.auth = auth;
    this.#process = p;
    this.#dir = dir;
  }

  /** `auth`: plain alphanumerics (tinyproxy rejects a configuration whose password has `@`). */
  static async start(auth?: Credentials): Promise<Tinyproxy> {
    const file = requireBinary("tinyproxy", "tinyproxy-bin");
    const dir = mkdtempSync(path.join(os.tmpdir(), "hw-tinyproxy-"));
    try {
      const { process: p, port } = await startOnFreePort("tinyproxy", (port) => {
        const conf = path.join(dir, `tinyproxy-${port}.conf`);
        writeFileSync(
          conf,
          [
            `Port ${port}`,
            "Listen 127.0.0.1",
            "Timeout 30",
            "MaxClients 50",
            "Allow 127.0.0.1",
            ...(auth ? [`BasicAuth ${auth[0]} ${auth[1]}`] : []),
            "LogLevel Critical",
            "",
          ].join("\n"),
        );
        return new ProxyProcess(file, ["-d", "-c", conf]);
      });
      return new Tinyproxy(port, auth, p, dir);
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** The proxy URL with the given credentials (default: its own), percent-encoded. */
  url(auth: Credentials | null = this.auth ?? null): string {
    return proxyUrl("http", this.port, auth ?? undefined);
  }

  async close(): Promise<void> {
    await this.#process.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** microsocks (Debian `microsocks`): SOCKS5, optional user/password auth. */
export class Microsocks {
  readonly port: number;
  readonly auth: Credentials | undefined;
  readonly #process: ProxyProcess;

  private constructor(port: number, auth: Credentials | undefined, p: ProxyProcess) {
    this.port = port;
    this.auth = auth;
    this.#process = p;
  }

  static async start(auth?: Credentials): Promise<Microsocks> {
    const file = requireBinary("microsocks", "microsocks");
    const { process: p, port } = await startOnFreePort("microsocks", (port) => {
      const args = ["-i", "127.0.0.1", "-p", String(port)];
      if (auth) args.push("-u", auth[0], "-P", auth[1]);
      return new ProxyProcess(file, args);
    });
    return new Microsocks(port, auth, p);
  }

  /** `socks5://` (or `socks5h://`) URL with the given credentials (default: its own). */
  url(scheme: "socks5" | "socks5h" = "socks5", auth: Credentials | null = this.auth ?? null): string {
    return proxyUrl(scheme, this.port, auth ?? undefined);
  }

  async close(): Promise<void> {
    await this.#process.stop();
  }
}

/** Options of {@link TestProxy}. */
export interface TestProxyOptions {
  /** Serve the proxy over TLS (the fixture certificate, valid for localhost and 127.0.0.1). */
  tls?: boolean;
  /** Require `Proxy-Authorization: Basic` with these credentials (else 407). */
  auth?: Credentials;
  /** Where to really connect for a host name: `"name" → "127.0.0.1:port"` (for made-up names). */
  hosts?: Readonly<Record<string, string>>;
}

/**
 * A small HTTP proxy written with node:http / node:https: absolute-form requests are forwarded with
 * `http.request`, `CONNECT host:port` is piped to `net.connect`. Over TLS it is the `https://` proxy
 * mode. Records what it saw.
 */
export class TestProxy {
  readonly server: http.Server;
  readonly secure: boolean;
  readonly auth: Credentials | undefined;
  /** Client connections accepted (TLS handshakes completed, for the TLS proxy). */
  accepted = 0;
  /** `CONNECT` targets, in order. */
  readonly connects: string[] = [];
  /** Forwarded requests: `METHOD absolute-url`, in order. */
  readonly forwards: string[] = [];
  /** The `Proxy-Authorization` header of each CONNECT and forward request (undefined when absent). */
  readonly authorizations: (string | undefined)[] = [];
  /** SNI names of TLS client connections (`false`: none sent). */
  readonly servernames: (string | false)[] = [];
  readonly #sockets = new Set<net.Socket>();
  readonly #hosts: Readonly<Record<string, string>>;

  private constructor(options: TestProxyOptions) {
    this.secure = options.tls === true;
    this.auth = options.auth;
    this.#hosts = options.hosts ?? {};
    this.server = this.secure
      ? https.createServer({ key: fixtures.key, cert: fixtures.cert })
      : http.createServer();
    this.server.keepAliveTimeout = 60_000;
    const track = (socket: net.Socket): void => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
    };
    this.server.on("connection", track);
    if (this.secure) {
      this.server.on("secureConnection", (socket: tls.TLSSocket) => {
        this.accepted++;
        this.servernames.push(socket.servername ?? false);
      });
    } else {
      this.server.on("connection", () => {
        this.accepted++;
      });
    }
    this.server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) =>
      this.#forward(req, res, track),
    );
    this.server.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) =>
      this.#connect(req, socket, head, track),
    );
  }

  static async start(options: TestProxyOptions = {}): Promise<TestProxy> {
    const p = new TestProxy(options);
    await new Promise<void>((resolve, reject) => {
      p.server.once("error", reject);
      p.server.listen(0, "127.0.0.1", () => resolve());
    });
    return p;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The proxy URL with the given credentials (default: its own), percent-encoded. */
  url(auth: Credentials | null = this.auth ?? null): string {
    return proxyUrl(this.secure ? "https" : "http", this.port, auth ?? undefined);
  }

  #authorized(req: http.IncomingMessage): boolean {
    const header = req.headers["proxy-authorization"];
    this.authorizations.push(header);
    if (this.auth === undefined) return true;
    const expected = `Basic ${Buffer.from(`${this.auth[0]}:${this.auth[1]}`, "utf8").toString("base64")}`;
    return header === expected;
  }

  #where(host: string, port: number): { host: string; port: number } {
    const mapped = this.#hosts[host];
    if (mapped === undefined) return { host, port };
    const colon = mapped.lastIndexOf(":");
    return { host: mapped.slice(0, colon), port: Number(mapped.slice(colon + 1)) };
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse, track: (s: net.Socket) => void): void {
    this.forwards.push(`${req.method} ${req.url}`);
    if (!this.#authorized(req)) {
      res.writeHead(407, { "Proxy-Authenticate": 'Basic realm="test"', "Content-Length": "0" }).end();
      return;
    }
    let target: URL;
    try {
      target = new URL(req.url ?? "");
    } catch {
      res.writeHead(400, { "Content-Length": "0" }).end();
      return;
    }
    const headers = { ...req.headers };
    delete headers["proxy-authorization"];
    delete headers["proxy-connection"];
    const to = this.#where(target.hostname, target.port === "" ? 80 : Number(target.port));
    const upstream = http.request(
      {
        host: to.host,
        port: to.port,
        method: req.method,
        path: target.pathname + target.search,
        headers,
        agent: false,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("socket", track);
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502, { "Content-Length": "0" }).end();
      else res.destroy();
    });
    req.pipe(upstream);
  }

  #connect(
    req: http.IncomingMessage,
    socket: net.Socket,
    head: Buffer,
    track: (s: net.Socket) => void,
  ): void {
    this.connects.push(req.url ?? "");
    socket.on("error", () => {});
    if (!this.#authorized(req)) {
      socket.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n',
      );
      return;
    }
    const colon = (req.url ?? "").lastIndexOf(":");
    const to = this.#where(
      (req.url ?? "").slice(0, colon).replace(/^\[|\]$/g, ""),
      Number((req.url ?? "").slice(colon + 1)),
    );
    const upstream = net.connect({ host: to.host, port: to.port });
    track(upstream);
    let connected = false;
    upstream.once("connect", () => {
      connected = true;
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => {
      if (!connected) socket.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
      else socket.destroy();
    });
    upstream.on("close", () => socket.destroy());
    socket.on("close", () => upstream.destroy());
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A TCP relay on 127.0.0.1 in front of `targetPort`: pipes bytes both ways and counts the
 * connections it accepted, so a test can tell how many connections a (real) proxy got.
 */
export class Relay {
  readonly server: net.Server;
  accepted = 0;
  readonly #sockets = new Set<net.Socket>();

  private constructor(targetPort: number) {
    this.server = net.createServer((socket) => {
      this.accepted++;
      const upstream = net.connect({ host: "127.0.0.1", port: targetPort });
      for (const s of [socket, upstream]) {
        this.#sockets.add(s);
        s.on("close", () => this.#sockets.delete(s));
        s.on("error", () => {
          socket.destroy();
          upstream.destroy();
        });
      }
      socket.on("close", () => upstream.destroy());
      upstream.on("close", () => socket.destroy());
      socket.pipe(upstream);
      upstream.pipe(socket);
    });
  }

  static async start(targetPort: number): Promise<Relay> {
    const r = new Relay(targetPort);
    await new Promise<void>((resolve, reject) => {
      r.server.once("error", reject);
      r.server.listen(0, "127.0.0.1", () => resolve());
    });
    return r;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
