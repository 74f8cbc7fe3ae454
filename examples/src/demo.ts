// The README's demo: starts a hyperwire server on loopback, queries it, and prints what actually
// happened. Until the hyperwire client lands, the queries go through Node's built-in fetch.
import { buildQuery, Headers, ProtocolError, Response, statusText } from "@hyperwire/core";
import { serve } from "@hyperwire/server";

interface Row {
  what: string;
  status: string;
  bytes: number;
  ms: number;
}

async function main(): Promise<number> {
  const server = await serve(
    (req) => {
      if (req.method === "POST") {
        return new Response(200, { headers: { "Content-Type": "application/json" }, body: req.body });
      }
      return new Response(200, {
        headers: { "Content-Type": "text/plain" },
        body: `hello from ${req.target}`,
      });
    },
    { host: "127.0.0.1", port: 0, maxBodyBytes: 1024 },
  );
  const rows: Row[] = [];
  const timed = async (what: string, init: RequestInit & { path: string }) => {
    const start = performance.now();
    const res = await fetch(`${server.url}${init.path}`, init);
    const body = new Uint8Array(await res.arrayBuffer());
    rows.push({
      what,
      status: `${res.status} ${statusText(res.status)}`,
      bytes: body.byteLength,
      ms: performance.now() - start,
    });
    return res.status;
  };
  try {
    console.log(`server listening on ${server.url}`);
    const a = await timed("GET /hello", { path: `/hello?${buildQuery({ b: "2", a: "1 2" })}` });
    const b = await timed("POST /echo (json)", {
      path: "/echo",
      method: "POST",
      body: JSON.stringify({ hello: "world" }),
    });
    const c = await timed("POST 4 KiB (maxBodyBytes 1 KiB)", {
      path: "/big",
      method: "POST",
      body: "x".repeat(4096),
    });
    console.table(rows.map((r) => ({ ...r, ms: Math.round(r.ms * 10) / 10 })));
    let rejected = false;
    try {
      new Headers({ "X-Evil": "a\r\nSet-Cookie: b" });
    } catch (e) {
      rejected = e instanceof ProtocolError;
      console.log(`header injection attempt: ${(e as Error).name}: ${(e as Error).message}`);
    }
    const ok = a === 200 && b === 200 && c === 413 && rejected;
    console.log(
      ok ? "demo: every exchange behaved as expected" : "demo: something did not behave as expected",
    );
    return ok ? 0 : 1;
  } finally {
    await server.close();
  }
}

process.exitCode = await main();
