// Importing the client does not load undici: its HTTP/1.1 engine comes with the first HTTP/1.1
// connection. Checked in a child process on the built package, since the module cache of the test
// runner already holds everything.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, test } from "vitest";

test("import loads no undici; the first HTTP/1.1 request does, and works", async () => {
  const dist = new URL("../dist/index.js", import.meta.url);
  if (!existsSync(dist)) {
    throw new Error(`${fileURLToPath(dist)} is missing: build first (pnpm --filter @hyperwire/client build)`);
  }
  const script = `
    import http from "node:http";
    import { createRequire } from "node:module";
    const cache = createRequire(import.meta.url).cache;
    const undiciLoaded = () => Object.keys(cache).some((k) => /[\\\\/]undici[\\\\/]/.test(k));
    const { Client } = await import(${JSON.stringify(dist.href)});
    const out = { afterImport: undiciLoaded() };
    const server = http.createServer((req, res) => res.end("hi " + req.url));
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    const client = new Client({ proxy: null });
    out.afterClient = undiciLoaded();
    const res = await client.get("http://127.0.0.1:" + server.address().port + "/x");
    out.body = new TextDecoder().decode(res.body);
    out.afterRequest = undiciLoaded();
    await client.close();
    server.close();
    console.log(JSON.stringify(out));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], {
    timeout: 20_000,
  });
  expect(JSON.parse(stdout)).toEqual({
    afterImport: false,
    afterClient: false,
    body: "hi /x",
    afterRequest: true,
  });
});
