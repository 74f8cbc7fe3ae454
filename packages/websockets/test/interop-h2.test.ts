// Interop of WebSockets over HTTP/2 (RFC 8441) with an independent implementation: Python peers on
// Debian's python3-h2 (HTTP/2, extended CONNECT) and python3-websockets' frame codec, which load only
// in /usr/bin/python3 (test/peers/h2_ws_client.py, h2_ws_server.py, h2_ws_common.py; they share no
// code with ours). Our serve() + upgrade() with the Python client, over h2c and TLS; our
// open(url, { protocol: "h2" }) with the Python server, over h2c and TLS. Python runs with -B so the
// peers' shared module leaves no __pycache__ in the test folder.
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import http2, { type IncomingHttpHeaders } from "node:http2";
import { fileURLToPath } from "node:url";
import { type Request, Response, WebSocketError } from "@hyperwire/core";
import { connectProtocol, serve } from "@hyperwire/server";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { tls as fixtures } from "../../../fixtures/tls/index.mjs";
import { type Message, open, upgrade } from "../src/index.js";
import {
  checkUnhandledRejections,
  frame,
  parseFrames,
  Resources,
  settle,
  waitFor,
  within,
} from "./helpers.js";

checkUnhandledRejections();
const res = new Resources();

const PYTHON = "/usr/bin/python3";
const peer = (name: string): string => fileURLToPath(new URL(`./peers/${name}`, import.meta.url));
const fixture = (name: string): string =>
  fileURLToPath(new URL(`../../../fixtures/tls/${name}`, import.meta.url));
const CLIENT = peer("h2_ws_client.py");
const SERVER = peer("h2_ws_server.py");

function pythonH2(): { ok: boolean; detail: string } {
  const r = spawnSync(
    PYTHON,
    ["-c", "import h2, websockets; print(h2.__version__, websockets.__version__)"],
    {
      encoding: "utf8",
      timeout: 10_000,
    },
  );
  if (r.error) return { ok: false, detail: String(r.error) };
  return { ok: r.status === 0, detail: (r.status === 0 ? r.stdout : r.stderr).trim() };
}

const available = pythonH2();
const MISSING = `python-h2 or Python's websockets is not importable from ${PYTHON} (${available.detail}); install the Debian packages python3-h2 and python3-websockets (apt-get install python3-h2 python3-websockets)`;

function requirePython(): void {
  expect(available.ok, MISSING).toBe(true);
}

/** What the Python client prints (see h2_ws_client.py). */
interface ClientReport {
  error?: string;
  alpn?: string;
  settings: Record<string, number>;
  enableConnectProtocol: number;
  before: { stream: number; status: number; body: string };
  after: { stream: number; status: number; body: string };
  connect: { stream: number; status: number; subprotocol: string | null; accept: string | null };
  echoes: { type: string; ok: boolean; text?: string; hex?: string; length?: number; sentFrames: number }[];
  pongs: string[];
  close: [number, string];
  serverEndStream: boolean;
  framesAfterClose: number;
  reset: number | null;
  goaway: number | null;
}

/** Runs the Python client against 127.0.0.1:port; resolves with its JSON line, rejects (with it) on failure. */
function runClient(port: number, args: string[]): Promise<ClientReport> {
  return new Promise((resolve, reject) => {
    execFile(
      PYTHON,
      ["-B", CLIENT, String(port), "--timeout", "15", ...args],
      { timeout: 30_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`the Python client failed: ${err.message}\n${stdout}\n${stderr}`));
        else resolve(JSON.parse(stdout.trim().split("\n").at(-1) as string) as ClientReport);
      },
    );
  });
}

/** A WebSocket session as the Python server reports it (see h2_ws_server.py). */
interface SessionReport {
  event: "session";
  path: string;
  offered: string[];
  subprotocol: string | null;
  messages: { type: string; frames: number; length: number; text?: string; hex?: string }[];
  pings: string[];
  masked: boolean;
  error: string | null;
  closeReceived: [number, string] | null;
  closeSent: [number, string] | null;
  framesAfterClose: number;
  clientEndStream: boolean;
  reset: number | null;
}

/** A running Python server: its port, the JSON lines it printed, its stderr. */
interface PyServer {
  proc: ChildProcess;
  port: number;
  events: Record<string, unknown>[];
  stderr: string;
}

/** Starts the Python server and waits for its "listening on PORT" line. */
async function startServer(args: string[]): Promise<PyServer> {
  const proc = spawn(PYTHON, ["-B", SERVER, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const server: PyServer = { proc, port: 0, events: [], stderr: "" };
  proc.stderr?.on("data", (c: Buffer) => {
    server.stderr += c.toString();
  });
  const listening = new Promise<number>((resolve, reject) => {
    let pending = "";
    proc.stdout?.on("data", (c: Buffer) => {
      pending += c.toString();
      for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const m = /^listening on (\d+)$/.exec(line);
        if (m) resolve(Number(m[1]));
        else server.events.push(JSON.parse(line) as Record<string, unknown>);
      }
    });
    proc.once("exit", (code) => reject(new Error(`the Python server exited (${code}): ${server.stderr}`)));
  });
  try {
    server.port = await within(listening, 10_000, "the Python server's port");
  } catch (e) {
    proc.kill("SIGKILL");
    throw e;
  }
  return server;
}

async function stopServer(server: PyServer | undefined): Promise<void> {
  const proc = server?.proc;
  if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  proc.kill("SIGTERM");
  await within(exited, 5_000, "the Python server to exit").catch(() => proc.kill("SIGKILL"));
}

/** The Python server's report of the session on `path`, once the session is over. */
async function sessionReport(server: PyServer, path: string): Promise<SessionReport> {
  const find = () => server.events.find((e) => e.event === "session" && e.path === path);
  await waitFor(() => find() !== undefined, 5_000, `the Python server's report on ${path}`);
  return find() as unknown as SessionReport;
}

test("python-h2 and Python's websockets are importable from /usr/bin/python3", () => {
  requirePython();
});

describe("our serve() + upgrade(), the Python client (python-h2)", () => {
  for (const secure of [false, true]) {
    test(`${secure ? "TLS (ALPN h2)" : "h2c"}: SETTINGS, GET, extended CONNECT, echo, close 1000, END_STREAM, GET`, async () => {
      requirePython();
      const requests: { method: string; target: string; version: string; protocol: string | null }[] = [];
      const received: { type: string; value: string | number }[] = [];
      const closes: (number | undefined)[] = [];
      const server = await serve(
        (req: Request) => {
          requests.push({
            method: req.method,
            target: req.target,
            version: req.version,
            protocol: connectProtocol(req),
          });
          if (req.target === "/plain") return new Response(200, { body: `plain ${req.target}` });
          return upgrade(
            req,
            async (ws) => {
              try {
                for await (const m of ws) {
                  received.push(
                    typeof m === "string" ? { type: "text", value: m } : { type: "binary", value: m.length },
                  );
                  await ws.send(m);
                }
              } finally {
                closes.push(ws.closeCode);
              }
            },
            { subprotocols: ["chat"] },
          );
        },
        {
          host: "127.0.0.1",
          port: 0,
          ...(secure ? { tls: { key: fixtures.key, cert: fixtures.cert } } : {}),
        },
      );
      res.defer(() => server.forceClose());

      const out = await runClient(server.port, [
        "--path",
        "/ws/py?x=1",
        "--get",
        "/plain",
        "--protocols",
        "other,chat",
        "--messages",
        "6",
        ...(secure ? ["--ca", fixture("ca.pem")] : []),
      ]);
      expect(out.error).toBeUndefined();
      if (secure) expect(out.alpn).toBe("h2");
      // Our first SETTINGS frame allows the extended CONNECT.
      expect(out.settings.ENABLE_CONNECT_PROTOCOL).toBe(1);
      expect(out.enableConnectProtocol).toBe(1);
      // One connection, three streams: GET, the WebSocket, GET.
      expect(out.before).toEqual({ stream: 1, status: 200, body: "plain /plain" });
      expect(out.connect).toEqual({ stream: 3, status: 200, subprotocol: "chat", accept: null });
      expect(out.after).toEqual({ stream: 5, status: 200, body: "plain /plain" });
      expect(out.echoes.map((e) => e.ok)).toEqual([true, true, true, true, true, true]);
      expect(out.echoes[0]).toMatchObject({ type: "text", text: "hello from python-h2 \u2713" });
      expect(out.echoes[1]).toMatchObject({ type: "binary", hex: "0001027f80feff" });
      expect(out.echoes[2]).toMatchObject({
        type: "text",
        text: "fragmented \u2713 message, in three frames",
        sentFrames: 3,
      });
      expect(out.echoes[3]).toMatchObject({ type: "binary", length: 200_000 });
      expect(out.pongs).toEqual(["are you there"]);
      // The close handshake over the stream, then END_STREAM, no RST_STREAM, no GOAWAY.
      expect(out.close).toEqual([1000, "done"]);
      expect(out.serverEndStream).toBe(true);
      expect(out.framesAfterClose).toBe(0);
      expect(out.reset).toBeNull();
      expect(out.goaway).toBeNull();

      expect(requests).toEqual([
        { method: "GET", target: "/plain", version: "2", protocol: null },
        { method: "CONNECT", target: "/ws/py?x=1", version: "2", protocol: "websocket" },
        { method: "GET", target: "/plain", version: "2", protocol: null },
      ]);
      // The fragmented message (its UTF-8 cut inside a character) arrived whole.
      expect(received).toEqual([
        { type: "text", value: "hello from python-h2 \u2713" },
        { type: "binary", value: 7 },
        { type: "text", value: "fragmented \u2713 message, in three frames" },
        { type: "binary", value: 200_000 },
        { type: "text", value: "message 4" },
        { type: "binary", value: 6 },
      ]);
      await waitFor(() => closes.length === 1, 3_000, "the WebSocket handler to end");
      expect(closes).toEqual([1000]);
      await waitFor(() => server.connections === 0, 3_000, "the Python client's connection to close");
    }, 40_000);
  }
});

describe("our open(url, { protocol: 'h2' }), the Python server (python-h2)", () => {
  let plain: PyServer | undefined;
  let secure: PyServer | undefined;

  beforeAll(async () => {
    if (!available.ok) return;
    plain = await startServer([]);
    secure = await startServer(["--cert", fixture("server.pem"), "--key", fixture("server.key")]);
  }, 20_000);

  afterAll(async () => {
    await stopServer(plain);
    await stopServer(secure);
  });

  function running(server: PyServer | undefined): PyServer {
    requirePython();
    expect(server?.port, `the Python server did not start: ${server?.stderr}`).toBeGreaterThan(0);
    return server as PyServer;
  }

  test("h2c: text, binary, 3 fragments, a message over the flow-control window, ping, close 1000", async () => {
    const py = running(plain);
    const ws = await open(`ws://127.0.0.1:${py.port}/echo/h2c`, {
      protocol: "h2",
      subprotocols: ["superchat", "chat"],
    });
    res.defer(() => ws.terminate());
    // The Python server picks the first subprotocol offered.
    expect(ws.subprotocol).toBe("superchat");
    const got: Message[] = [];
    await ws.send("hello python-h2 \u2713");
    got.push(await ws.receive());
    await ws.send(new Uint8Array([0, 1, 2, 254, 255]));
    got.push(await ws.receive());
    await ws.send(["frag", "men", "ted"]);
    got.push(await ws.receive());
    const big = new Uint8Array(300_000).map((_, i) => (i * 7) % 256);
    await ws.send(big);
    got.push(await ws.receive());
    await within(ws.ping("are you there"), 3_000, "the ping");
    await within(ws.close(1000, "done"), 5_000, "the close handshake");
    expect(ws.closeCode).toBe(1000);

    expect(got[0]).toBe("hello python-h2 \u2713");
    expect([...(got[1] as Uint8Array)]).toEqual([0, 1, 2, 254, 255]);
    expect(got[2]).toBe("fragmented");
    expect(Buffer.from(got[3] as Uint8Array).equals(Buffer.from(big))).toBe(true);

    const report = await sessionReport(py, "/echo/h2c");
    expect(report).toMatchObject({
      offered: ["superchat", "chat"],
      subprotocol: "superchat",
      // Every frame we sent was masked (the Python server checks each one).
      masked: true,
      error: null,
      pings: ["are you there"],
      closeReceived: [1000, "done"],
      closeSent: [1000, "done"],
      framesAfterClose: 0,
      // We ended our side of the stream after the close handshake, without a reset.
      clientEndStream: true,
      reset: null,
    });
    expect(report.messages).toEqual([
      { type: "text", frames: 1, length: 17, text: "hello python-h2 \u2713" },
      { type: "binary", frames: 1, length: 5, hex: "000102feff" },
      { type: "text", frames: 3, length: 10, text: "fragmented" },
      { type: "binary", frames: 1, length: 300_000 },
    ]);
  });

  test("TLS (ALPN h2, verified with the test CA): echo, no subprotocol offered, close 1000", async () => {
    const py = running(secure);
    const ws = await open(`wss://localhost:${py.port}/echo/tls`, {
      protocol: "h2",
      tls: { ca: fixtures.ca },
    });
    res.defer(() => ws.terminate());
    expect(ws.subprotocol).toBeNull();
    await ws.send("over tls");
    expect(await ws.receive()).toBe("over tls");
    await ws.send(new Uint8Array([9, 8, 7]));
    expect([...((await ws.receive()) as Uint8Array)]).toEqual([9, 8, 7]);
    await within(ws.close(1000, "done"), 5_000, "the close handshake");
    expect(ws.closeCode).toBe(1000);
    const report = await sessionReport(py, "/echo/tls");
    expect(report).toMatchObject({
      offered: [],
      subprotocol: null,
      masked: true,
      error: null,
      closeReceived: [1000, "done"],
      clientEndStream: true,
      reset: null,
    });
    expect(report.messages.map((m) => m.type)).toEqual(["text", "binary"]);
  });

  test("the Python server closes first (4001): our client answers the close and ends the stream", async () => {
    const py = running(plain);
    const ws = await open(`ws://127.0.0.1:${py.port}/echo/server-closes`, { protocol: "h2" });
    res.defer(() => ws.terminate());
    await ws.send("please close");
    const { error } = await settle(within(ws.receive(), 5_000, "the Python server's close"));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(4001);
    expect((error as WebSocketError).reason).toBe("python says bye");
    const report = await sessionReport(py, "/echo/server-closes");
    expect(report).toMatchObject({
      masked: true,
      error: null,
      closeSent: [4001, "python says bye"],
      closeReceived: [4001, "python says bye"],
      clientEndStream: true,
      reset: null,
    });
  });

  test("the Python server does check masking: an unmasked frame gets close 1002 and RST_STREAM(CANCEL)", async () => {
    // This checks the peer, not our code: the `masked: true` above means something only if it can fail.
    const py = running(plain);
    const session = http2.connect(`http://127.0.0.1:${py.port}`);
    session.on("error", () => {});
    res.defer(() => session.destroy());
    const stream = session.request(
      {
        ":method": "CONNECT",
        ":protocol": "websocket",
        ":scheme": "http",
        ":path": "/echo/unmasked",
        ":authority": `127.0.0.1:${py.port}`,
        "sec-websocket-version": "13",
      },
      { endStream: false },
    );
    stream.on("error", () => {});
    const head = await within(
      new Promise<IncomingHttpHeaders>((resolve) => stream.once("response", resolve)),
      3_000,
      "the CONNECT's answer",
    );
    expect(head[":status"]).toBe(200);
    let bytes = Buffer.alloc(0);
    stream.on("data", (c: Buffer) => {
      bytes = Buffer.concat([bytes, c]);
    });
    const closed = new Promise<void>((r) => stream.once("close", () => r()));
    stream.write(frame(0x1, "not masked", { mask: false }));
    await within(closed, 3_000, "the stream to close");
    expect(stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    const [close] = parseFrames(bytes).frames;
    expect(close?.opcode).toBe(0x8);
    expect(close?.payload.readUInt16BE(0)).toBe(1002);
    const report = await sessionReport(py, "/echo/unmasked");
    expect(report).toMatchObject({ masked: false, error: "incorrect masking", messages: [] });
  });
});
