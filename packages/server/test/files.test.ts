import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ArgumentError, Request, type Response } from "@hyperwire/core";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { fileServer, serveFile } from "../src/files.js";
import { FileBody } from "../src/files-body.js";
import { parseHttpDate, resolveRange } from "../src/files-conditional.js";
import { serveContent } from "../src/files-content.js";
import { sniffContentType } from "../src/files-mime.js";
import { serve } from "../src/serve.js";
import { raw, Servers, waitFor } from "./helpers.js";

const servers = new Servers();
afterEach(() => servers.closeAll());

// Fixtures: a fresh directory per test file, with a root to serve and a secret next to it.
let base: string;
let root: string;
let secretPath: string;
const SECRET = "TOP SECRET: must never be served";
const HELLO = "hello world\n";
/** 64 MiB, mostly a sparse hole: too big to vanish into socket buffers, cheap to create. */
const HUGE = 64 * 1024 * 1024;
/** 1 MiB with a byte pattern, to check ranges against. */
const PATTERN = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 31 + (i >> 8)) & 0xff));
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);

beforeAll(() => {
  base = realpathSync(mkdtempSync(path.join(os.tmpdir(), "hw-files-")));
  root = path.join(base, "root");
  secretPath = path.join(base, "secret.txt");
  writeFileSync(secretPath, SECRET);
  mkdirSync(path.join(base, "outside-dir"));
  writeFileSync(path.join(base, "outside-dir", "x.txt"), SECRET);
  mkdirSync(root);
  const files: Record<string, string | Buffer> = {
    "hello.txt": HELLO,
    "index.html": "<h1>home</h1>",
    "style.css": "p{}",
    "data.json": '{"a":1}',
    "UPPER.HTM": "<p>upper</p>",
    "logo.png": PNG_MAGIC,
    "noext-html": "\n  <!DOCTYPE html><title>t</title>",
    "noext-png": PNG_MAGIC,
    "noext-text": "just some text, ünïcödé too\n",
    "noext-bin": Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    "noext-empty": "",
    "pattern.bin": PATTERN,
    "docs/index.html": "<h1>docs</h1>",
    "docs/guide.txt": "guide",
    "evil.com/index.html": "<p>not evil</p>",
    "app/spa.html": "<div id=app></div>",
    "empty-dir/.keep": "",
  };
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), content);
  }
  writeFileSync(path.join(root, "huge.bin"), "start");
  truncateSync(path.join(root, "huge.bin"), HUGE);
  symlinkSync(secretPath, path.join(root, "link-out"));
  symlinkSync(path.join(base, "outside-dir"), path.join(root, "dir-link-out"));
  symlinkSync(path.join(root, "hello.txt"), path.join(root, "link-in"));
  execFileSync("mkfifo", [path.join(root, "fifo")]);
  // A fixed modification time, with milliseconds, so Last-Modified flooring is visible.
  utimesSync(path.join(root, "hello.txt"), 1_700_000_000.75, 1_700_000_000.75);
});

afterAll(() => {
  rmSync(base, { recursive: true, force: true });
});

/** A response read off a raw socket: status, lower-cased headers, body bytes. */
interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  head: string;
}

/** Sends one request on a fresh connection (`Connection: close`) and parses the reply. */
async function ask(
  port: number,
  target: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const extra = Object.entries(opts.headers ?? {})
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  const reply = await raw(
    port,
    `${opts.method ?? "GET"} ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${extra}\r\n`,
  );
  expect(reply.closed).toBe(true);
  const end = reply.text.indexOf("\r\n\r\n");
  expect(end).toBeGreaterThan(0);
  const head = reply.text.slice(0, end);
  const [statusLine, ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return {
    status: Number(statusLine!.split(" ")[1]),
    headers,
    body: Buffer.from(reply.text.slice(end + 4), "latin1"),
    head,
  };
}

async function startFiles(opts: Parameters<typeof fileServer>[1] = {}): Promise<number> {
  const s = servers.add(await serve(fileServer(root, opts), { port: 0 }));
  return s.port;
}

async function startContent(handler: (req: Request) => Promise<Response> | Response): Promise<number> {
  const s = servers.add(await serve(handler, { port: 0 }));
  return s.port;
}

/** Descriptors of this process that point into the fixture directory (Linux /proc). */
function openFixtureFds(): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(base)) n++;
    } catch {
      // The descriptor closed while we looked (readdir's own, say).
    }
  }
  return n;
}

describe("fileServer: construction", () => {
  test("root must be an existing directory", () => {
    expect(() => fileServer(path.join(base, "nope"))).toThrow(ArgumentError);
    expect(() => fileServer(secretPath)).toThrow(ArgumentError);
    expect(() => fileServer("")).toThrow(ArgumentError);
  });

  test("spaFallback must be an existing file inside the root", () => {
    expect(() => fileServer(root, { spaFallback: "missing.html" })).toThrow(ArgumentError);
    expect(() => fileServer(root, { spaFallback: "../secret.txt" })).toThrow(ArgumentError);
    expect(() => fileServer(root, { spaFallback: secretPath })).toThrow(ArgumentError);
    expect(() => fileServer(root, { spaFallback: "link-out" })).toThrow(ArgumentError);
    expect(() => fileServer(root, { spaFallback: "docs" })).toThrow(ArgumentError);
    expect(() => fileServer(root, { spaFallback: "app/spa.html" })).not.toThrow();
    expect(() => fileServer(root, { spaFallback: path.join(root, "index.html") })).not.toThrow();
  });

  test("bad options are ArgumentErrors", () => {
    expect(() => fileServer(root, { etag: 'a"b' })).toThrow(ArgumentError);
    expect(() => fileServer(root, { etag: "" })).toThrow(ArgumentError);
    expect(() => fileServer(root, { etag: 42 as unknown as string })).toThrow(ArgumentError);
    expect(() => fileServer(root, { indexFile: "../x.html" })).toThrow(ArgumentError);
    expect(() => fileServer(root, { indexFile: "a/b.html" })).toThrow(ArgumentError);
    expect(() => fileServer(root, { cacheControl: "max-age=1\r\nX-Evil: 1" })).toThrow(ArgumentError);
    expect(() => fileServer(root, { redirectCanonical: "yes" as unknown as boolean })).toThrow(ArgumentError);
  });
});

describe("fileServer: files", () => {
  test("a GET gets the file with type, length, Last-Modified floored to seconds, ranges and caching headers", async () => {
    const port = await startFiles({ etag: "weak-stat", cacheControl: "public, max-age=60" });
    const r = await ask(port, "/hello.txt");
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(HELLO);
    expect(r.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(r.headers["content-length"]).toBe(String(HELLO.length));
    expect(r.headers["transfer-encoding"]).toBeUndefined();
    expect(r.headers["last-modified"]).toBe("Tue, 14 Nov 2023 22:13:20 GMT");
    expect(r.headers["accept-ranges"]).toBe("bytes");
    expect(r.headers["cache-control"]).toBe("public, max-age=60");
    const st = statSync(path.join(root, "hello.txt"));
    expect(r.headers.etag).toBe(`W/"${HELLO.length}-${Math.floor(st.mtimeMs)}"`);
  });

  test("HEAD gets the same headers, Content-Length included, and no body", async () => {
    const port = await startFiles();
    const r = await ask(port, "/pattern.bin", { method: "HEAD" });
    expect(r.status).toBe(200);
    expect(r.headers["content-length"]).toBe(String(PATTERN.length));
    expect(r.headers["content-type"]).toBe("application/octet-stream");
    expect(r.body.length).toBe(0);
  });

  test("content types come from the extension (any case), then from sniffing the first bytes", async () => {
    const port = await startFiles();
    const cases: [string, string][] = [
      ["/style.css", "text/css; charset=utf-8"],
      ["/data.json", "application/json; charset=utf-8"],
      ["/UPPER.HTM", "text/html; charset=utf-8"],
      ["/logo.png", "image/png"],
      ["/noext-html", "text/html; charset=utf-8"],
      ["/noext-png", "image/png"],
      ["/noext-text", "text/plain; charset=utf-8"],
      ["/noext-bin", "application/octet-stream"],
      ["/noext-empty", "text/plain; charset=utf-8"],
    ];
    for (const [target, type] of cases) {
      const r = await ask(port, target);
      expect([target, r.status, r.headers["content-type"]]).toEqual([target, 200, type]);
    }
  });

  test("the sniffer knows HTML, PNG, JPEG, GIF, PDF, WebP, UTF-8 text and binary", () => {
    const b = (...xs: (number | string)[]) =>
      Buffer.concat(xs.map((x) => (typeof x === "string" ? Buffer.from(x, "latin1") : Buffer.from([x]))));
    expect(sniffContentType(b("<HTML><body>"))).toBe("text/html; charset=utf-8");
    expect(sniffContentType(b(" \t<!-- c -->"))).toBe("text/html; charset=utf-8");
    expect(sniffContentType(b(0xff, 0xd8, 0xff, 0xe0))).toBe("image/jpeg");
    expect(sniffContentType(b("GIF89a..."))).toBe("image/gif");
    expect(sniffContentType(b("%PDF-1.7"))).toBe("application/pdf");
    expect(sniffContentType(b("RIFF", 1, 2, 3, 4, "WEBPVP8 "))).toBe("image/webp");
    expect(sniffContentType(b("RIFF", 1, 2, 3, 4, "WAVEfmt "))).toBe("application/octet-stream");
    expect(sniffContentType(Buffer.from("€ and 🌍"))).toBe("text/plain; charset=utf-8");
    // A multi-byte character cut off by the 512-byte sample is still text.
    const cut = Buffer.concat([Buffer.alloc(511, "a"), Buffer.from("€")]);
    expect(sniffContentType(cut)).toBe("text/plain; charset=utf-8");
    expect(sniffContentType(b("abc", 0xc3, "x"))).toBe("application/octet-stream");
    expect(sniffContentType(b("abc", 0, "def"))).toBe("application/octet-stream");
    expect(sniffContentType(b(0xed, 0xa0, 0x80))).toBe("application/octet-stream"); // a surrogate
  });

  test("methods other than GET and HEAD get 405 with Allow: GET, HEAD", async () => {
    const port = await startFiles();
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      const r = await ask(port, "/hello.txt", { method, headers: { "Content-Length": "0" } });
      expect([method, r.status, r.headers.allow]).toEqual([method, 405, "GET, HEAD"]);
    }
  });

  test("missing files, directories without an index, FIFOs and devices are 404", async () => {
    const port = await startFiles();
    for (const target of ["/nope.txt", "/docs/nope", "/empty-dir/", "/fifo", "/hello.txt/x"]) {
      const r = await ask(port, target);
      expect([target, r.status]).toEqual([target, 404]);
    }
  });

  test("a symlink inside the root to a file inside it is served", async () => {
    const port = await startFiles();
    const r = await ask(port, "/link-in");
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(HELLO);
  });

  test("a file is streamed from disk with Content-Length (not chunked) and arrives intact", async () => {
    const port = await startFiles();
    const reply = await raw(port, "GET /pattern.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {
      timeoutMs: 10_000,
    });
    const end = reply.text.indexOf("\r\n\r\n");
    const head = reply.text.slice(0, end).toLowerCase();
    expect(head).toContain(`content-length: ${PATTERN.length}`);
    expect(head).not.toContain("transfer-encoding");
    expect(Buffer.from(reply.text.slice(end + 4), "latin1").equals(PATTERN)).toBe(true);
  });
});

describe("fileServer: canonical redirects", () => {
  test("a directory without a trailing slash redirects to dir/, keeping the query", async () => {
    const port = await startFiles();
    let r = await ask(port, "/docs");
    expect([r.status, r.headers.location]).toEqual([301, "/docs/"]);
    r = await ask(port, "/docs?x=1&y=%20");
    expect([r.status, r.headers.location]).toEqual([301, "/docs/?x=1&y=%20"]);
    r = await ask(port, "/docs/");
    expect([r.status, r.body.toString(), r.headers["content-type"]]).toEqual([
      200,
      "<h1>docs</h1>",
      "text/html; charset=utf-8",
    ]);
    r = await ask(port, "/");
    expect([r.status, r.body.toString()]).toEqual([200, "<h1>home</h1>"]);
  });

  test("…/index.html redirects to the directory; a file with a trailing slash to the file", async () => {
    const port = await startFiles();
    const cases: [string, string][] = [
      ["/docs/index.html", "/docs/"],
      ["/docs/index.html?q=1", "/docs/?q=1"],
      ["/index.html", "/"],
      ["/docs/index%2Ehtml", "/docs/"],
      ["/hello.txt/", "/hello.txt"],
      ["/docs/guide.txt//?a", "/docs/guide.txt?a"],
    ];
    for (const [target, loc] of cases) {
      const r = await ask(port, target);
      expect([target, r.status, r.headers.location]).toEqual([target, 301, loc]);
      expect(r.body.length).toBe(0);
    }
  });

  test("with redirectCanonical false, the same paths are served directly", async () => {
    const port = await startFiles({ redirectCanonical: false });
    expect((await ask(port, "/docs")).body.toString()).toBe("<h1>docs</h1>");
    expect((await ask(port, "/docs/index.html")).body.toString()).toBe("<h1>docs</h1>");
    expect((await ask(port, "/hello.txt/")).body.toString()).toBe(HELLO);
  });

  test("a custom indexFile is used for directories and for the canonical redirect", async () => {
    const port = await startFiles({ indexFile: "guide.txt" });
    expect((await ask(port, "/docs/")).body.toString()).toBe("guide");
    const r = await ask(port, "/docs/guide.txt");
    expect([r.status, r.headers.location]).toEqual([301, "/docs/"]);
    expect((await ask(port, "/")).status).toBe(404);
  });

  test("open-redirect guard: a Location never starts with // or /\\", async () => {
    const port = await startFiles();
    const cases: [string, string][] = [
      ["//evil.com", "/evil.com/"],
      ["///evil.com?next=1", "/evil.com/?next=1"],
      ["//evil.com/index.html", "/evil.com/"],
      ["//evil.com//", "/evil.com/"],
    ];
    for (const [target, loc] of cases) {
      const r = await ask(port, target);
      if (r.status === 301) expect([target, r.headers.location]).toEqual([target, loc]);
      else expect([target, r.status]).toEqual([target, 200]);
      expect(r.headers.location ?? "/").not.toMatch(/^[/\\][/\\]/);
    }
    expect((await ask(port, "/%5cevil.com")).status).toBe(400);
    expect((await ask(port, "/%2fevil.com")).status).toBe(400);
  });
});

describe("fileServer: path traversal", () => {
  const attempts = [
    "/../secret.txt",
    "/../../../../etc/passwd",
    "/%2e%2e/secret.txt",
    "/%2E%2E%2Fsecret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/..\\secret.txt",
    "/%5c..%5csecret.txt",
    "/..%5c..%5csecret.txt",
    "/.%2e/secret.txt",
    "/docs/../../secret.txt",
    "/docs/%2e%2e/%2e%2e/secret.txt",
    "/./hello.txt",
    "/%2e/hello.txt",
    "/hello.txt%00.png",
    "/%00",
    "/C:/secret.txt",
    "/c%3a%5csecret.txt",
    "/%2Fetc%2Fpasswd",
  ];

  test.each(attempts)("%s is 400 and never the secret", async (target) => {
    const port = await startFiles();
    const r = await ask(port, target);
    expect(r.status).toBe(400);
    expect(r.body.toString("latin1")).not.toContain("TOP SECRET");
  });

  test("an absolute path through empty segments stays in the root (404)", async () => {
    const port = await startFiles();
    for (const target of ["//etc/passwd", `/${secretPath}`, `//${secretPath}`]) {
      const r = await ask(port, target);
      expect([target, r.status]).toEqual([target, 404]);
      expect(r.body.toString("latin1")).not.toContain("TOP SECRET");
    }
  });

  test("symlinks that lead out of the root are 404", async () => {
    const port = await startFiles();
    for (const target of ["/link-out", "/dir-link-out/x.txt", "/dir-link-out/", "/dir-link-out"]) {
      const r = await ask(port, target);
      expect([target, r.status]).toEqual([target, 404]);
      expect(r.body.toString("latin1")).not.toContain("TOP SECRET");
    }
  });

  test("absolute-form request targets are checked the same way", async () => {
    const port = await startFiles();
    expect((await ask(port, "http://x/hello.txt")).body.toString()).toBe(HELLO);
    expect((await ask(port, "http://x/%2e%2e/secret.txt")).status).toBe(400);
    const r = await ask(port, "http://x/docs?a=1");
    expect([r.status, r.headers.location]).toEqual([301, "/docs/?a=1"]);
  });
});

describe("fileServer: SPA fallback", () => {
  test("a 404 whose last segment has no dot serves the fallback file", async () => {
    const port = await startFiles({ spaFallback: "app/spa.html", cacheControl: "no-cache" });
    for (const target of ["/some/client/route", "/users/42?tab=1", "/empty-dir/", "/link-out"]) {
      const r = await ask(port, target);
      expect([target, r.status, r.body.toString()]).toEqual([target, 200, "<div id=app></div>"]);
      expect(r.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(r.headers["cache-control"]).toBe("no-cache");
    }
    expect((await ask(port, "/missing.js")).status).toBe(404);
    expect((await ask(port, "/assets/app.css")).status).toBe(404);
    expect((await ask(port, "/%2e%2e/secret")).status).toBe(400);
    // Existing paths are served (and redirected) as usual.
    expect((await ask(port, "/docs")).status).toBe(301);
    expect((await ask(port, "/hello.txt")).body.toString()).toBe(HELLO);
    const head = await ask(port, "/route", { method: "HEAD" });
    expect([head.status, head.headers["content-length"], head.body.length]).toEqual([200, "18", 0]);
  });

  test("an index.html fallback is served, not redirected", async () => {
    const port = await startFiles({ spaFallback: "index.html" });
    const r = await ask(port, "/deep/route");
    expect([r.status, r.body.toString()]).toEqual([200, "<h1>home</h1>"]);
  });
});

describe("fileServer: etag option", () => {
  test("none by default; a fixed tag is quoted once; a function sees the real path and stat", async () => {
    let port = await startFiles();
    expect((await ask(port, "/hello.txt")).headers.etag).toBeUndefined();
    port = await startFiles({ etag: "v1" });
    expect((await ask(port, "/hello.txt")).headers.etag).toBe('"v1"');
    port = await startFiles({ etag: 'W/"v2"' });
    expect((await ask(port, "/hello.txt")).headers.etag).toBe('W/"v2"');
    const seen: string[] = [];
    port = await startFiles({
      etag: (p, st) => {
        seen.push(p);
        return p.endsWith(".txt") ? `sz${st.size}` : null;
      },
    });
    expect((await ask(port, "/link-in")).headers.etag).toBe(`"sz${HELLO.length}"`);
    expect((await ask(port, "/style.css")).headers.etag).toBeUndefined();
    expect(seen).toEqual([path.join(root, "hello.txt"), path.join(root, "style.css")]);
  });

  test("an ETag from the file server makes If-None-Match a 304 without body headers", async () => {
    const port = await startFiles({ etag: "weak-stat", cacheControl: "max-age=5" });
    const first = await ask(port, "/hello.txt");
    const r = await ask(port, "/hello.txt", { headers: { "If-None-Match": first.headers.etag! } });
    expect(r.status).toBe(304);
    expect(r.body.length).toBe(0);
    expect(r.headers.etag).toBe(first.headers.etag);
    expect(r.headers["cache-control"]).toBe("max-age=5");
    expect(r.headers["content-type"]).toBeUndefined();
    expect(r.headers["content-length"]).toBeUndefined();
    expect(r.headers["last-modified"]).toBeUndefined();
  });

  test("If-Modified-Since against the file's floored mtime", async () => {
    const port = await startFiles();
    const lm = "Tue, 14 Nov 2023 22:13:20 GMT";
    let r = await ask(port, "/hello.txt", { headers: { "If-Modified-Since": lm } });
    expect([r.status, r.headers["last-modified"], r.headers["content-length"]]).toEqual([304, lm, undefined]);
    r = await ask(port, "/hello.txt", { headers: { "If-Modified-Since": "Tue, 14 Nov 2023 22:13:19 GMT" } });
    expect(r.status).toBe(200);
  });
});

describe("serveContent: preconditions", () => {
  const BODY = Buffer.from("0123456789");
  const MODTIME = 1_700_000_000_999; // Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT
  const LM = "Tue, 14 Nov 2023 22:13:20 GMT";
  const before = "Tue, 14 Nov 2023 22:13:19 GMT";
  const after = "Tue, 14 Nov 2023 22:13:21 GMT";

  async function start(opts: Parameters<typeof serveContent>[2] = {}): Promise<number> {
    return startContent((req) =>
      serveContent(req, BODY, {
        name: "digits.txt",
        etag: "v1",
        modtime: new Date(MODTIME),
        headers: { "Content-Encoding": "identity", "Cache-Control": "max-age=9" },
        ...opts,
      }),
    );
  }

  test("the 200 carries ETag, Last-Modified floored to seconds, and the given headers", async () => {
    const port = await start();
    const r = await ask(port, "/");
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe("0123456789");
    expect(r.headers.etag).toBe('"v1"');
    expect(r.headers["last-modified"]).toBe(LM);
    expect(r.headers["content-encoding"]).toBe("identity");
    expect(r.headers["content-type"]).toBe("text/plain; charset=utf-8");
  });

  test("If-None-Match (weak comparison, lists, *) gives 304 for GET and HEAD, 412 for others", async () => {
    const port = await start();
    for (const value of ['"v1"', 'W/"v1"', '"a", W/"v1"', "*", ' "x" ,"v1" ']) {
      for (const method of ["GET", "HEAD"]) {
        const r = await ask(port, "/", { method, headers: { "If-None-Match": value } });
        expect([value, method, r.status]).toEqual([value, method, 304]);
        expect(r.headers.etag).toBe('"v1"');
        expect(r.headers["cache-control"]).toBe("max-age=9");
        for (const gone of ["content-type", "content-length", "content-encoding", "last-modified"]) {
          expect(r.headers[gone]).toBeUndefined();
        }
      }
      const post = await ask(port, "/", {
        method: "POST",
        headers: { "If-None-Match": value, "Content-Length": "0" },
      });
      expect([value, post.status]).toEqual([value, 412]);
    }
    for (const value of ['"v2"', 'W/"v"', "garbage", '"unterminated', "v1", ""]) {
      const r = await ask(port, "/", { headers: { "If-None-Match": value } });
      expect([value, r.status]).toEqual([value, 200]);
    }
  });

  test("without an ETag a 304 keeps Last-Modified", async () => {
    const port = await startContent((req) => serveContent(req, BODY, { modtime: MODTIME }));
    const r = await ask(port, "/", { headers: { "If-Modified-Since": LM } });
    expect([r.status, r.headers["last-modified"], r.headers.etag]).toEqual([304, LM, undefined]);
  });

  test("If-Match uses strong comparison; * passes; garbage and no ETag fail with 412", async () => {
    const port = await start();
    for (const [value, status] of [
      ['"v1"', 200],
      ['"x", "v1"', 200],
      ["*", 200],
      ['W/"v1"', 412],
      ['"v2"', 412],
      ["garbage", 412],
    ] as const) {
      const r = await ask(port, "/", { headers: { "If-Match": value } });
      expect([value, r.status]).toEqual([value, status]);
      if (status === 412) expect(r.body.length).toBe(0);
    }
    const untagged = await startContent((req) => serveContent(req, BODY));
    expect((await ask(untagged, "/", { headers: { "If-Match": '"v1"' } })).status).toBe(412);
    expect((await ask(untagged, "/", { headers: { "If-Match": "*" } })).status).toBe(200);
  });

  test("If-Unmodified-Since: 412 when modified after; ignored when garbage or when If-Match is present", async () => {
    const port = await start();
    expect((await ask(port, "/", { headers: { "If-Unmodified-Since": before } })).status).toBe(412);
    expect((await ask(port, "/", { headers: { "If-Unmodified-Since": LM } })).status).toBe(200);
    expect((await ask(port, "/", { headers: { "If-Unmodified-Since": "yesterday" } })).status).toBe(200);
    const both = { "If-Match": '"v1"', "If-Unmodified-Since": before };
    expect((await ask(port, "/", { headers: both })).status).toBe(200);
  });

  test("If-Modified-Since: 304 when not modified since (GET/HEAD only); ignored with If-None-Match or garbage", async () => {
    const port = await start({ etag: undefined, headers: {} });
    expect((await ask(port, "/", { headers: { "If-Modified-Since": LM } })).status).toBe(304);
    expect((await ask(port, "/", { headers: { "If-Modified-Since": after } })).status).toBe(304);
    expect((await ask(port, "/", { method: "HEAD", headers: { "If-Modified-Since": LM } })).status).toBe(304);
    expect((await ask(port, "/", { headers: { "If-Modified-Since": before } })).status).toBe(200);
    for (const garbage of ["1", "yesterday", "Tue, 31 Feb 2023 00:00:00 GMT", "2023-11-14T22:13:20Z"]) {
      const r = await ask(port, "/", { headers: { "If-Modified-Since": garbage } });
      expect([garbage, r.status]).toEqual([garbage, 200]);
    }
    const post = await ask(port, "/", {
      method: "POST",
      headers: { "If-Modified-Since": LM, "Content-Length": "0" },
    });
    expect(post.status).toBe(200);
    const tagged = await start();
    const r = await ask(tagged, "/", { headers: { "If-None-Match": '"other"', "If-Modified-Since": LM } });
    expect(r.status).toBe(200);
  });

  test("HTTP dates: IMF-fixdate, RFC 850 and asctime parse; anything else is NaN", () => {
    const t = Date.UTC(1994, 10, 6, 8, 49, 37);
    expect(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT")).toBe(t);
    expect(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT")).toBe(t);
    expect(parseHttpDate("Sun Nov  6 08:49:37 1994")).toBe(t);
    for (const bad of [
      "",
      "1",
      "2024-01-01",
      "Sun, 06 Nov 1994 08:49:37 UTC",
      "Xyz, 06 Nov 1994 08:49:37 GMT",
    ]) {
      expect(parseHttpDate(bad)).toBeNaN();
    }
    expect(parseHttpDate("Sun, 06 Nov 1994 25:49:37 GMT")).toBeNaN();
  });
});

describe("serveContent: ranges", () => {
  const BODY = Buffer.from("0123456789");

  async function start(opts: Parameters<typeof serveContent>[2] = {}): Promise<number> {
    return startContent((req) =>
      serveContent(req, BODY, { etag: "v1", modtime: 1_700_000_000_000, ...opts }),
    );
  }

  test("single ranges a-b, a-, -n give 206 with Content-Range; the end is clamped", async () => {
    const port = await start();
    const cases: [string, string, string][] = [
      ["bytes=0-4", "01234", "bytes 0-4/10"],
      ["bytes=5-", "56789", "bytes 5-9/10"],
      ["bytes=-3", "789", "bytes 7-9/10"],
      ["bytes=-20", "0123456789", "bytes 0-9/10"],
      ["bytes=8-100", "89", "bytes 8-9/10"],
      ["bytes=9-9", "9", "bytes 9-9/10"],
      ["bytes=0-99999999999999999999999999", "0123456789", "bytes 0-9/10"],
      ["BYTES= 2 - 3 ", "23", "bytes 2-3/10"],
    ];
    for (const [range, body, contentRange] of cases) {
      const r = await ask(port, "/", { headers: { Range: range } });
      expect([range, r.status, r.body.toString(), r.headers["content-range"]]).toEqual([
        range,
        206,
        body,
        contentRange,
      ]);
      expect(r.headers["content-length"]).toBe(String(body.length));
    }
  });

  test("bytes=-0 and an empty Range give 200 with the whole body", async () => {
    const port = await start();
    for (const range of ["bytes=-0", ""]) {
      const r = await ask(port, "/", { headers: { Range: range } });
      expect([range, r.status, r.body.toString()]).toEqual([range, 200, "0123456789"]);
      expect(r.headers["content-range"]).toBeUndefined();
    }
  });

  test("several, malformed or out-of-range ranges give 416 with Content-Range: bytes */size", async () => {
    const port = await start();
    const many = `bytes=${Array.from({ length: 10_000 }, (_, i) => `${i}-${i}`).join(",")}`;
    for (const range of [
      "bytes=10-",
      "bytes=10-20",
      "bytes=5-1",
      "bytes=0-1,3-4",
      "bytes=0-1,",
      "bytes=99999999999999999999999-",
      "bytes=",
      "bytes=-",
      "bytes=a-b",
      "bytes=1-2-3",
      "bytes=-1-2",
      "bytes=0x1-2",
      "bytes=+1-2",
      "items=0-1",
      "garbage",
      many,
    ]) {
      const r = await ask(port, "/", { headers: { Range: range } });
      expect([range.slice(0, 40), r.status]).toEqual([range.slice(0, 40), 416]);
      expect(r.headers["content-range"]).toBe("bytes */10");
      expect(r.body.length).toBe(0);
    }
  });

  test("If-Range: a strong matching ETag or the exact date keeps the range; anything else gets the whole body", async () => {
    const port = await start();
    const lm = "Tue, 14 Nov 2023 22:13:20 GMT";
    for (const [ifRange, status] of [
      ['"v1"', 206],
      [lm, 206],
      ['W/"v1"', 200],
      ['"v2"', 200],
      ["Tue, 14 Nov 2023 22:13:21 GMT", 200],
      ["garbage", 200],
    ] as const) {
      const r = await ask(port, "/", { headers: { Range: "bytes=0-1", "If-Range": ifRange } });
      expect([ifRange, r.status]).toEqual([ifRange, status]);
      expect(r.body.toString()).toBe(status === 206 ? "01" : "0123456789");
    }
    // A failed If-Range even overrides a malformed Range: the whole body, not 416.
    const r = await ask(port, "/", { headers: { Range: "bytes=5-1", "If-Range": '"v2"' } });
    expect(r.status).toBe(200);
  });

  test("HEAD with a range gets the 206 headers only; other methods and allowRanges false ignore Range", async () => {
    let port = await start();
    const head = await ask(port, "/", { method: "HEAD", headers: { Range: "bytes=2-5" } });
    expect([
      head.status,
      head.headers["content-length"],
      head.headers["content-range"],
      head.body.length,
    ]).toEqual([206, "4", "bytes 2-5/10", 0]);
    const post = await ask(port, "/", {
      method: "POST",
      headers: { Range: "bytes=2-5", "Content-Length": "0" },
    });
    expect([post.status, post.body.toString()]).toEqual([200, "0123456789"]);
    port = await start({ allowRanges: false });
    const r = await ask(port, "/", { headers: { Range: "bytes=2-5" } });
    expect([r.status, r.headers["accept-ranges"], r.body.toString()]).toEqual([200, undefined, "0123456789"]);
  });

  test("an empty body is always served whole", async () => {
    const port = await startContent((req) => serveContent(req, new Uint8Array(0)));
    const r = await ask(port, "/", { headers: { Range: "bytes=0-" } });
    expect([r.status, r.headers["content-length"], r.body.length]).toEqual([200, "0", 0]);
    expect((await ask(port, "/", { headers: { Range: "bytes=5-1" } })).status).toBe(416);
  });

  test("resolveRange on its own", () => {
    expect(resolveRange("bytes=0-0", 1)).toEqual({ kind: "partial", start: 0, end: 0 });
    expect(resolveRange("bytes=1-", 1)).toEqual({ kind: "unsatisfiable" });
    expect(resolveRange("bytes=-5", 3)).toEqual({ kind: "partial", start: 0, end: 2 });
    expect(resolveRange("bytes=0-", 0)).toEqual({ kind: "full" });
  });

  test("ranges of a file are read from the right offsets", async () => {
    const port = await startFiles({ etag: "weak-stat" });
    const cases: [string, number, number][] = [
      ["bytes=1000-1099", 1000, 1100],
      ["bytes=131071-131073", 131071, 131074],
      ["bytes=-70000", PATTERN.length - 70000, PATTERN.length],
      ["bytes=300000-", 300000, PATTERN.length],
    ];
    for (const [range, from, to] of cases) {
      const r = await ask(port, "/pattern.bin", { headers: { Range: range } });
      expect([range, r.status, r.headers["content-range"]]).toEqual([
        range,
        206,
        `bytes ${from}-${to - 1}/${PATTERN.length}`,
      ]);
      expect(r.body.equals(PATTERN.subarray(from, to))).toBe(true);
    }
    const r = await ask(port, "/pattern.bin", { headers: { Range: `bytes=${PATTERN.length}-` } });
    expect([r.status, r.headers["content-range"]]).toEqual([416, `bytes */${PATTERN.length}`]);
  });
});

describe("serveContent: sources and arguments", () => {
  test("a reader source is read by position, in chunks, and supports ranges and sniffing", async () => {
    const data = Buffer.concat([Buffer.from("<!doctype html>"), Buffer.alloc(300_000, "x")]);
    const reads: [number, number][] = [];
    const reader = {
      size: data.length,
      read: async (position: number, length: number) => {
        reads.push([position, length]);
        return data.subarray(position, position + length);
      },
    };
    const port = await startContent((req) => serveContent(req, reader));
    let r = await ask(port, "/");
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(r.body.equals(data)).toBe(true);
    expect(reads[0]).toEqual([0, 512]); // the sniff
    expect(reads.length).toBeGreaterThan(2); // streamed in chunks, not read whole
    reads.length = 0;
    r = await ask(port, "/", { headers: { Range: "bytes=100-199" } });
    expect([r.status, r.body.equals(data.subarray(100, 200))]).toEqual([206, true]);
    expect(reads.at(-1)).toEqual([100, 100]);
  });

  test("a reader that returns more than asked is cut; its size may come from the options", async () => {
    const port = await startContent((req) =>
      serveContent(req, { read: async () => Buffer.from("abcdefgh") }, { size: 5, contentType: "text/x" }),
    );
    const r = await ask(port, "/");
    expect([r.status, r.body.toString(), r.headers["content-type"]]).toEqual([200, "abcde", "text/x"]);
  });

  test("a reader shorter than its size ends the connection instead of sending a short body", async () => {
    const port = await startContent((req) =>
      serveContent(
        req,
        { size: 100, read: async (pos) => (pos === 0 ? Buffer.alloc(10, "a") : Buffer.alloc(0)) },
        {
          contentType: "text/plain",
        },
      ),
    );
    // Keep-alive: only a failure closes the connection, and the 100 promised bytes never all arrive.
    const reply = await raw(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(reply.closed).toBe(true);
    const end = reply.text.indexOf("\r\n\r\n");
    if (end >= 0) expect(reply.text.length - end - 4).toBeLessThan(100);
  });

  test("bad sources and options are rejected with ArgumentError", async () => {
    const req = new Request("GET", "/");
    await expect(serveContent(req, "text" as unknown as Uint8Array)).rejects.toThrow(ArgumentError);
    await expect(serveContent(req, null as unknown as Uint8Array)).rejects.toThrow(ArgumentError);
    await expect(serveContent(req, { read: async () => new Uint8Array(1) })).rejects.toThrow(ArgumentError);
    await expect(serveContent(req, { size: -1, read: async () => new Uint8Array(1) })).rejects.toThrow(
      ArgumentError,
    );
    await expect(serveContent(req, { size: 1.5, read: async () => new Uint8Array(1) })).rejects.toThrow(
      ArgumentError,
    );
    await expect(serveContent(req, new Uint8Array(1), { modtime: new Date("nope") })).rejects.toThrow(
      ArgumentError,
    );
    await expect(serveContent(req, new Uint8Array(1), { etag: "a b" })).rejects.toThrow(ArgumentError);
    await expect(serveFile(req, "")).rejects.toThrow(ArgumentError);
    await expect(serveFile(req, secretPath, { indexFile: ".." })).rejects.toThrow(ArgumentError);
  });
});

describe("serveFile", () => {
  test("serves a trusted path (no root) for any request path, with the same method and path rules", async () => {
    const port = await startContent((req) => serveFile(req, secretPath, { etag: "v9" }));
    let r = await ask(port, "/download/anything");
    expect([r.status, r.body.toString(), r.headers.etag]).toEqual([200, SECRET, '"v9"']);
    expect(r.headers["content-type"]).toBe("text/plain; charset=utf-8");
    r = await ask(port, "/download", { method: "PUT", headers: { "Content-Length": "0" } });
    expect([r.status, r.headers.allow]).toEqual([405, "GET, HEAD"]);
    expect((await ask(port, "/%2e%2e/x")).status).toBe(400);
    r = await ask(port, "/download/");
    expect([r.status, r.headers.location]).toEqual([301, "/download"]);
  });

  test("a directory path redirects to dir/ and serves its index; a missing path is 404", async () => {
    const docs = path.join(root, "docs");
    const port = await startContent((req) =>
      serveFile(req, req.target.startsWith("/gone") ? path.join(root, "gone") : docs),
    );
    let r = await ask(port, "/manual?v=2");
    expect([r.status, r.headers.location]).toEqual([301, "/manual/?v=2"]);
    r = await ask(port, "/manual/");
    expect([r.status, r.body.toString()]).toEqual([200, "<h1>docs</h1>"]);
    expect((await ask(port, "/gone")).status).toBe(404);
  });
});

describe("file handles", () => {
  test("a client that leaves mid-body gets its file handle closed", async () => {
    const port = await startFiles();
    const baseline = openFixtureFds();
    // Bounded: three clients, one after the other.
    for (let round = 0; round < 3; round++) {
      const socket = net.connect(port, "127.0.0.1");
      socket.on("error", () => {});
      let received = 0;
      socket.on("data", (chunk: Buffer) => {
        received += chunk.length;
        // Stop reading: the server fills the socket buffers and waits with the file open.
        if (received > 100_000) socket.pause();
      });
      socket.write("GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n");
      await waitFor(() => received > 100_000, 5_000, "the first part of the body");
      await waitFor(() => openFixtureFds() > baseline, 5_000, "the file to be open mid-body");
      socket.destroy();
      await waitFor(() => openFixtureFds() === baseline, 5_000, "the file handle to be closed");
    }
  });

  test("responses that never read the body (HEAD, 304, 416, redirects) open no file", async () => {
    const port = await startFiles({ etag: "v1" });
    const baseline = openFixtureFds();
    await ask(port, "/huge.bin", { method: "HEAD" });
    await ask(port, "/huge.bin", { headers: { "If-None-Match": '"v1"' } });
    await ask(port, "/huge.bin", { headers: { Range: "bytes=5-1" } });
    await ask(port, "/docs");
    await ask(port, "/hello.txt", { headers: { Range: "bytes=0-3" } });
    expect(openFixtureFds()).toBe(baseline);
  });

  test("a file replaced between its stat and its open is refused, and its descriptor closed", async () => {
    const file = path.join(root, "hello.txt");
    const other = statSync(path.join(root, "style.css"));
    const baseline = openFixtureFds();
    const body = new FileBody(file, { dev: other.dev, ino: other.ino }, 0, HELLO.length);
    await expect(body.next()).rejects.toMatchObject({ code: "HW_FILE_CHANGED" });
    expect(openFixtureFds()).toBe(baseline);
    expect(await body.next()).toEqual({ done: true, value: undefined });
  });

  test("a peeked body narrowed to a range yields exactly that range, from the peeked chunk and beyond", async () => {
    const file = path.join(root, "pattern.bin");
    const st = statSync(file);
    const baseline = openFixtureFds();
    for (const [from, to] of [
      [0, PATTERN.length],
      [10, 20],
      [200_000, 300_000],
      [600_000, PATTERN.length],
    ] as const) {
      const body = new FileBody(file, st, 0, st.size);
      expect(Buffer.from(await body.peek(4)).equals(PATTERN.subarray(0, 4))).toBe(true);
      const chunks: Uint8Array[] = [];
      for await (const chunk of body.narrow(from, to)) chunks.push(chunk);
      expect([from, Buffer.concat(chunks).equals(PATTERN.subarray(from, to))]).toEqual([from, true]);
      expect(() => body.narrow(0, 1)).toThrow();
    }
    const unused = new FileBody(file, st, 0, st.size);
    await unused.peek(512);
    expect(openFixtureFds()).toBe(baseline + 1);
    await unused.dispose();
    expect(openFixtureFds()).toBe(baseline);
  });

  test("a file truncated while it is being served ends the connection and closes the handle", async () => {
    const victim = path.join(root, "shrinking.bin");
    writeFileSync(victim, "x");
    truncateSync(victim, 16 * 1024 * 1024);
    const port = await startFiles();
    const baseline = openFixtureFds();
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => {});
    let received = 0;
    let closed = false;
    let pausedOnce = false;
    socket.on("close", () => {
      closed = true;
    });
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length;
      if (received > 100_000 && !pausedOnce) {
        pausedOnce = true;
        socket.pause();
      }
    });
    socket.write("GET /shrinking.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor(() => socket.isPaused(), 5_000, "the first part of the body");
    truncateSync(victim, 1024 * 1024);
    socket.resume();
    await waitFor(() => closed, 10_000, "the server to close the connection");
    expect(received).toBeLessThan(16 * 1024 * 1024);
    await waitFor(() => openFixtureFds() === baseline, 5_000, "the file handle to be closed");
    rmSync(victim);
  });
});
