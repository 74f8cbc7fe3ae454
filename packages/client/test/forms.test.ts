import { createHash } from "node:crypto";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { ArgumentError, Form, Multipart, parseMultipart, Response } from "@hyperwire/core";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { Resources } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());
const dir = mkdtempSync(join(tmpdir(), "hw-forms-"));
// A collector to measure what is live rather than what is garbage not yet collected.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Seen {
  contentType: string;
  contentLength: string | null;
  transferEncoding: string | null;
  parts: { name: string; filename?: string; contentType?: string; text: string }[];
}

/** Our server, parsing the multipart body it received. */
async function multipartServer() {
  return res.serve((req) => {
    const ct = req.headers.get("content-type") ?? "";
    const body = req.body instanceof Uint8Array ? req.body : new Uint8Array(0);
    const seen: Seen = {
      contentType: ct,
      contentLength: req.headers.get("content-length"),
      transferEncoding: req.headers.get("transfer-encoding"),
      parts: parseMultipart(ct, body).map((p) => ({
        name: p.name,
        ...(p.filename !== undefined ? { filename: p.filename } : {}),
        ...(p.contentType !== undefined ? { contentType: p.contentType } : {}),
        text: Buffer.from(p.data).toString("utf8"),
      })),
    };
    return new Response(200, { headers: { "Content-Type": "application/json" }, body: JSON.stringify(seen) });
  });
}

describe("Form bodies", () => {
  test("client → server → parseMultipart round trip, with Content-Type and Content-Length", async () => {
    const server = await multipartServer();
    const client = res.client();
    const form = new Form({
      name: "Ada",
      note: new Multipart("dear diary", { filename: "n.txt", contentType: "text/plain" }),
      blob: new Blob(["{}"], { type: "application/json" }),
    });
    const r = await client.post(`${server.url}/upload`, { body: form });
    const seen = r.json() as Seen;
    expect(seen.contentType).toBe(form.contentType);
    expect(seen.contentLength).toBe(String(form.length));
    expect(seen.transferEncoding).toBeNull();
    expect(seen.parts).toEqual([
      { name: "name", text: "Ada" },
      { name: "note", filename: "n.txt", contentType: "text/plain", text: "dear diary" },
      { name: "blob", contentType: "application/json", text: "{}" },
    ]);
  });

  test("a caller's Content-Type wins", async () => {
    const server = await multipartServer();
    const form = new Form({ a: "1" }, { boundary: "fixed-boundary" });
    const r = await res.client().post(server.url, {
      body: form,
      headers: { "Content-Type": "multipart/form-data; charset=utf-8; boundary=fixed-boundary" },
    });
    expect((r.json() as Seen).contentType).toBe(
      "multipart/form-data; charset=utf-8; boundary=fixed-boundary",
    );
    expect((r.json() as Seen).parts).toEqual([{ name: "a", text: "1" }]);
  });

  test("a streamed part is sent chunked, once", async () => {
    const server = await multipartServer();
    const form = new Form({ s: Readable.from(["chunk 1, ", "chunk 2"]), t: "x" });
    expect(form.replayable).toBe(false);
    const r = await res.client().post(server.url, { body: form });
    const seen = r.json() as Seen;
    expect(seen.contentLength).toBeNull();
    expect(seen.transferEncoding).toBe("chunked");
    expect(seen.parts).toEqual([
      { name: "s", text: "chunk 1, chunk 2" },
      { name: "t", text: "x" },
    ]);
    await expect(res.client().post(server.url, { body: form })).rejects.toBeInstanceOf(ArgumentError);
  });

  test("multipart/mixed", async () => {
    const server = await multipartServer();
    const form = Form.mixed([new Multipart("a", { contentType: "text/plain" }), "b"]);
    const seen = (await res.client().post(server.url, { body: form })).json() as Seen;
    expect(seen.contentType).toMatch(/^multipart\/mixed; boundary=/);
    expect(seen.parts).toEqual([
      { name: "", contentType: "text/plain", text: "a" },
      { name: "", text: "b" },
    ]);
  });

  test("a 64 MiB file uploads with Content-Length while memory stays flat", async () => {
    const size = 64 * 1024 * 1024;
    const path = join(dir, "big.bin");
    const out = createWriteStream(path);
    const block = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < size / block.length; i++) {
      block.fill(i & 0xff);
      if (!out.write(Buffer.from(block))) await new Promise<void>((r) => out.once("drain", () => r()));
    }
    out.end();
    await finished(out);

    // A node:http server that hashes the body as it streams in (it keeps nothing).
    let received = 0;
    const hash = createHash("sha256");
    let headers: Record<string, string | string[] | undefined> = {};
    const server = await res.counting((req, response) => {
      headers = req.headers;
      req.on("data", (c: Buffer) => {
        received += c.length;
        hash.update(c);
      });
      req.on("end", () => response.end("ok"));
    });
    const form = new Form({ meta: "big", file: Form.file(path) });
    const expected = createHash("sha256");
    for await (const c of form) expected.update(c);

    gc();
    const base = process.memoryUsage();
    let peak = 0;
    let calls = 0;
    await res.client().post(server.url, {
      body: form,
      uploadProgress: () => {
        calls++;
        if (calls % 128 === 0) {
          gc();
          const m = process.memoryUsage();
          peak = Math.max(peak, m.heapUsed + m.arrayBuffers - (base.heapUsed + base.arrayBuffers));
        }
      },
    });
    expect(headers["content-length"]).toBe(String(form.length));
    expect(received).toBe(form.length);
    expect(hash.digest("hex")).toBe(expected.digest("hex"));
    // The file is read 64 KiB at a time: what is live stays a small fraction of the 64 MiB file.
    expect(peak).toBeLessThan(size / 4);
  }, 60_000);
});

describe("uploadProgress", () => {
  test("bytes: called once with the whole size; the body keeps its Content-Length", async () => {
    const server = await multipartServer();
    const calls: [number, number | undefined][] = [];
    const form = new Form({ a: "1" });
    const bytes: Uint8Array[] = [];
    for await (const c of form) bytes.push(c);
    const body = Buffer.concat(bytes);
    const r = await res.client().post(server.url, {
      body,
      headers: { "Content-Type": form.contentType },
      uploadProgress: (n, total) => calls.push([n, total]),
    });
    expect(calls).toEqual([[body.length, body.length]]);
    expect((r.json() as Seen).contentLength).toBe(String(body.length));
  });

  test("a sized form reports growing counts up to its length; a stream reports no total", async () => {
    const server = await multipartServer();
    const form = new Form({ a: "x".repeat(100_000), b: new Uint8Array(50_000) });
    const calls: [number, number | undefined][] = [];
    await res.client().post(server.url, { body: form, uploadProgress: (n, t) => calls.push([n, t]) });
    expect(calls.length).toBeGreaterThan(1);
    expect(calls.at(-1)).toEqual([form.length, form.length]);
    for (let i = 1; i < calls.length; i++) expect(calls[i]![0]).toBeGreaterThan(calls[i - 1]![0]);

    const streamed: [number, number | undefined][] = [];
    const plain = await res.serve(() => new Response(200, { body: "ok" }));
    await res.client().post(plain.url, {
      body: Readable.from([Buffer.from("ab"), Buffer.from("cde")]),
      headers: { "Content-Type": "text/plain" },
      uploadProgress: (n, t) => streamed.push([n, t]),
    });
    expect(streamed).toEqual([
      [2, undefined],
      [5, undefined],
    ]);
  });

  test("a non-function is an ArgumentError", async () => {
    const server = await multipartServer();
    await expect(
      res.client().post(server.url, { body: "x", uploadProgress: 5 as never }),
    ).rejects.toBeInstanceOf(ArgumentError);
  });
});
