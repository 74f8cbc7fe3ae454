// A process that only accepts WebSockets does not load the HTTP client (undici, the cookie jar and its
// public-suffix list); the first open() loads it. Checked in a child process on the built package,
// since the module cache of the test runner already holds everything. A module-resolution hook in the
// child reports each module it loads: ES modules are not in `require.cache`, and the client loads
// undici only for HTTP/1.1 requests, which a WebSocket handshake does not make.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, test } from "vitest";

test("listen() alone does not load @hyperwire/client; the first open() does, and works", async () => {
  const dist = new URL("../dist/index.js", import.meta.url);
  if (!existsSync(dist)) {
    throw new Error(
      `${fileURLToPath(dist)} is missing: build first (pnpm --filter @hyperwire/websockets build)`,
    );
  }
  const script = `
    import { register } from "node:module";
    import { MessageChannel } from "node:worker_threads";
    const loaded = [];
    const { port1, port2 } = new MessageChannel();
    port1.on("message", (url) => loaded.push(url));
    port1.unref();
    const hooks = "let port; export function initialize(d) { port = d.port; } " +
      "export async function resolve(s, c, next) { const r = await next(s, c); port.postMessage(r.url); return r; }";
    register("data:text/javascript," + encodeURIComponent(hooks), { data: { port: port2 }, transferList: [port2] });
    const clientLoaded = async () => {
      await new Promise((r) => setTimeout(r, 100));
      return loaded.some((u) => /[\\\\/](client|tough-cookie|undici)[\\\\/]/.test(u));
    };
    const out = { atStart: await clientLoaded() };
    const { listen, open } = await import(${JSON.stringify(dist.href)});
    const server = await listen(async (ws) => { for await (const m of ws) await ws.send(m); }, { host: "127.0.0.1", port: 0 });
    out.afterListen = await clientLoaded();
    const ws = await open("ws://127.0.0.1:" + server.port + "/", { proxy: null });
    await ws.send("ping");
    out.echo = await ws.receive();
    out.afterOpen = await clientLoaded();
    await ws.close();
    await server.close();
    console.log(JSON.stringify(out));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], {
    timeout: 20_000,
  });
  expect(JSON.parse(stdout)).toEqual({ atStart: false, afterListen: false, echo: "ping", afterOpen: true });
});
