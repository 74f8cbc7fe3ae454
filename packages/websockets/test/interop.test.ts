// Interop with another implementation: Python's `websockets` (Debian's python3-websockets 10.4, which
// loads only in /usr/bin/python3). Our server with its client, our client with its server.
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { WebSocketError } from "@hyperwire/core";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Message, open, serverAddr } from "../src/index.js";
import { checkUnhandledRejections, Resources, settle, waitFor, within } from "./helpers.js";

checkUnhandledRejections();
const res = new Resources();

const PYTHON = "/usr/bin/python3";

function pythonWebsockets(): { ok: boolean; detail: string } {
  const r = spawnSync(PYTHON, ["-c", "import websockets; print(websockets.__version__)"], {
    encoding: "utf8",
    timeout: 10_000,
  });
  if (r.error) return { ok: false, detail: String(r.error) };
  return { ok: r.status === 0, detail: (r.status === 0 ? r.stdout : r.stderr).trim() };
}

const available = pythonWebsockets();
const MISSING = `Python's websockets is not importable from ${PYTHON} (${available.detail}); install the Debian package python3-websockets (apt-get install python3-websockets)`;

function requirePython(): void {
  expect(available.ok, MISSING).toBe(true);
}

/** Runs an inline Python script with arguments; resolves with its stdout (rejects on failure). */
function runPython(script: string, args: string[], timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, ["-c", script, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

const PY_CLIENT = `
import asyncio, json, sys
import websockets

async def main(url):
    out = {}
    async with websockets.connect(url, subprotocols=["other", "chat"]) as ws:
        out["subprotocol"] = ws.subprotocol
        out["extensions"] = ws.response_headers.get("Sec-WebSocket-Extensions")
        await ws.send("hello from python")
        out["text"] = await ws.recv()
        await ws.send(bytes([1, 2, 3, 255]))
        b = await ws.recv()
        out["binary"] = list(b)
        out["binaryType"] = type(b).__name__
        big = "x" * 200000
        await ws.send(big)
        out["bigOk"] = (await ws.recv()) == big.upper()
        await ws.send("close please")
        try:
            await ws.recv()
            out["closed"] = None
        except websockets.ConnectionClosed as e:
            out["closed"] = [e.rcvd.code, e.rcvd.reason] if e.rcvd else None
    print(json.dumps(out), flush=True)

asyncio.run(main(sys.argv[1]))
`;

const PY_SERVER = `
import asyncio, sys
import websockets

async def echo(ws, path=None):
    async for m in ws:
        if m == "close with 4001":
            await ws.close(4001, "python says bye")
            return
        await ws.send(m)

async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, subprotocols=["chat"], max_size=2**20) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
`;

test("Python's websockets is importable from /usr/bin/python3", () => {
  requirePython();
});

describe("our server, Python's client", () => {
  for (const compress of [false, true]) {
    test(`text and binary echo, subprotocol, close code (compress: ${compress})`, async () => {
      requirePython();
      const outcomes: unknown[] = [];
      const server = await res.listen(
        async (ws) => {
          try {
            for await (const m of ws) {
              if (m === "close please") {
                await ws.close(4001, "bye python");
                break;
              }
              await ws.send(typeof m === "string" ? m.toUpperCase() : m);
            }
            outcomes.push(ws.closeCode);
          } catch (e) {
            outcomes.push(e);
          }
        },
        { subprotocols: ["chat"], compress },
      );
      const stdout = await runPython(PY_CLIENT, [`ws://${serverAddr(server)}/py`]);
      const out = JSON.parse(stdout.trim()) as Record<string, unknown>;
      expect(out.subprotocol).toBe("chat");
      if (compress) expect(out.extensions).toMatch(/permessage-deflate/);
      else expect(out.extensions).toBeNull();
      expect(out.text).toBe("HELLO FROM PYTHON");
      expect(out.binary).toEqual([1, 2, 3, 255]);
      expect(out.binaryType).toBe("bytes");
      expect(out.bigOk).toBe(true);
      expect(out.closed).toEqual([4001, "bye python"]);
      await waitFor(() => outcomes.length === 1, 3_000, "the session to end");
      expect(outcomes[0]).toBe(4001);
      await waitFor(() => server.sessionCount === 0, 3_000, "no session left");
    }, 30_000);
  }
});

describe("our client, Python's server", () => {
  let child: ChildProcess | undefined;
  let port = 0;
  let stderr = "";

  beforeAll(async () => {
    if (!available.ok) return;
    const proc = spawn(PYTHON, ["-c", PY_SERVER], { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    proc.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const firstLine = new Promise<string>((resolve, reject) => {
      let out = "";
      proc.stdout?.on("data", (c: Buffer) => {
        out += c.toString();
        const nl = out.indexOf("\n");
        if (nl >= 0) resolve(out.slice(0, nl));
      });
      proc.once("exit", (code) => reject(new Error(`the Python server exited (${code}): ${stderr}`)));
    });
    port = Number(await within(firstLine, 10_000, "the Python server's port"));
  }, 20_000);

  afterAll(async () => {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = new Promise<void>((r) => proc.once("exit", () => r()));
    proc.kill("SIGTERM");
    await within(exited, 5_000, "the Python server to exit").catch(() => proc.kill("SIGKILL"));
  });

  function url(): string {
    requirePython();
    expect(port, `the Python server did not start: ${stderr}`).toBeGreaterThan(0);
    return `ws://127.0.0.1:${port}/`;
  }

  for (const compress of [false, true]) {
    test(`text and binary echo (compress: ${compress})`, async () => {
      const got = await open(
        url(),
        async (ws) => {
          const out: Message[] = [];
          await ws.send("hello python");
          out.push(await ws.receive());
          await ws.send(new Uint8Array([0, 1, 2, 254, 255]));
          out.push(await ws.receive());
          await ws.send(["frag", "mented"]);
          out.push(await ws.receive());
          const big = "y".repeat(300_000);
          await ws.send(big);
          out.push((await ws.receive()) === big ? "big ok" : "big mismatch");
          return out;
        },
        { proxy: null, compress },
      );
      const out = got ?? [];
      expect(out[0]).toBe("hello python");
      expect(out[1]).toBeInstanceOf(Uint8Array);
      expect([...(out[1] as Uint8Array)]).toEqual([0, 1, 2, 254, 255]);
      expect(out[2]).toBe("fragmented");
      expect(out[3]).toBe("big ok");
    }, 20_000);
  }

  test("subprotocol chosen by the Python server, and none matching proceeds with null", async () => {
    const chat = await open(url(), { proxy: null, subprotocols: ["x", "chat"] });
    res.defer(() => chat.close());
    expect(chat.subprotocol).toBe("chat");
    const none = await open(url(), { proxy: null, subprotocols: ["x"] });
    res.defer(() => none.close());
    expect(none.subprotocol).toBeNull();
    await none.send("ok?");
    expect(await none.receive()).toBe("ok?");
  });

  test("the Python server's close code reaches our client", async () => {
    const ws = await open(url(), { proxy: null });
    res.defer(() => ws.terminate());
    await ws.send("close with 4001");
    const { error } = await settle(within(ws.receive(), 5_000, "the close"));
    expect(error).toBeInstanceOf(WebSocketError);
    expect((error as WebSocketError).closeCode).toBe(4001);
    expect((error as WebSocketError).reason).toBe("python says bye");
  });

  test("our close code and ping reach the Python server cleanly", async () => {
    const ws = await open(url(), { proxy: null });
    await within(ws.ping("are you there"), 3_000, "ping");
    await ws.send("still echoing");
    expect(await ws.receive()).toBe("still echoing");
    await within(ws.close(1000, "done"), 5_000, "the close handshake");
    expect(ws.closeCode).toBe(1000);
  });

  test("a message over the Python server's max_size closes with 1009", async () => {
    const ws = await open(url(), { proxy: null });
    res.defer(() => ws.terminate());
    await ws.send(new Uint8Array(2 * 1024 * 1024));
    const { error } = await settle(within(ws.receive(), 5_000, "the close"));
    expect((error as WebSocketError).closeCode).toBe(1009);
  });
});
