// Static files: fileServer (a handler for a directory tree) and serveFile (one path). Both check the
// request path segment by segment after percent-decoding, redirect to canonical URLs, and hand the
// file to serveContent's machinery, which streams it from disk.
//
// Traversal is stopped twice. Lexically: a decoded segment that is `.` or `..`, or holds `/`, `\`,
// `:` or NUL, is a 400, so joining the segments onto the root cannot leave it. Physically: the joined
// path is resolved with realpath (every symlink followed) and must still be inside the real root, or
// it is treated as not there (404). The descriptor opened later must be the inode that was checked.
import type { Stats } from "node:fs";
import { realpathSync, statSync } from "node:fs";
import path from "node:path";
import { ArgumentError, Headers, type Request, Response, unescapeUri, validateHeader } from "@hyperwire/core";
import { FileBody, realpathNative, statFile } from "./files-body.js";
import { normalizeEtag } from "./files-conditional.js";
import { modifiedMillis, type Representation, respond } from "./files-content.js";
import type { RequestHandler } from "./handler.js";

/** How a file's ETag is made. */
export type EtagOption = "weak-stat" | string | ((path: string, stat: Stats) => string | null | undefined);

/** Options of {@link serveFile}. */
export interface ServeFileOptions {
  /** The file served for a directory. Default `"index.html"`. */
  indexFile?: string;
  /** Redirect (301) to the canonical URL: `dir` → `dir/`, `dir/index.html` → `dir/`, `file/` → `file`. Default `true`. */
  redirectCanonical?: boolean;
  /**
   * The ETag: none by default; `"weak-stat"` for `W/"<size>-<mtime ms>"`; a fixed tag; or a function
   * of the file's real path and stat returning a tag (or `null` for none).
   */
  etag?: EtagOption;
  /** The `Cache-Control` value sent with every file. Default none. */
  cacheControl?: string;
}

/** Options of {@link fileServer}. */
export interface FileServerOptions extends ServeFileOptions {
  /**
   * A file inside the root (a path relative to it, or absolute) served instead of a 404 when the last
   * path segment has no `.` (client-side routes of a single-page app). Default none.
   */
  spaFallback?: string;
}

/** The defaults of {@link FileServerOptions}. */
export const FILE_SERVER_DEFAULTS = Object.freeze({ indexFile: "index.html", redirectCanonical: true });

const ALLOW = "GET, HEAD";

interface ResolvedFileOptions {
  readonly indexFile: string;
  readonly redirectCanonical: boolean;
  readonly etag: EtagOption | undefined;
  readonly cacheControl: string | undefined;
}

/** A segment that is safe to join onto a directory; the reason it is not, otherwise. */
function segmentProblem(segment: string): string | undefined {
  if (segment === "." || segment === "..") return "is a dot segment";
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (c === 0x2f || c === 0x5c || c === 0x3a || c === 0) return "contains '/', '\\', ':' or NUL";
  }
  if (path.isAbsolute(segment)) return "is an absolute path";
  return undefined;
}

function resolveFileOptions(opts: ServeFileOptions): ResolvedFileOptions {
  const indexFile = opts.indexFile ?? FILE_SERVER_DEFAULTS.indexFile;
  if (typeof indexFile !== "string" || indexFile === "" || segmentProblem(indexFile) !== undefined) {
    throw new ArgumentError(`indexFile must be a plain file name, got ${JSON.stringify(indexFile)}`);
  }
  const redirectCanonical = opts.redirectCanonical ?? FILE_SERVER_DEFAULTS.redirectCanonical;
  if (typeof redirectCanonical !== "boolean") throw new ArgumentError("redirectCanonical must be a boolean");
  let etag = opts.etag;
  if (typeof etag === "string" && etag !== "weak-stat") etag = normalizeEtag(etag);
  else if (etag !== undefined && etag !== "weak-stat" && typeof etag !== "function") {
    throw new ArgumentError('etag must be "weak-stat", an entity tag, or a function (path, stat) => tag');
  }
  let cacheControl = opts.cacheControl;
  if (cacheControl !== undefined) {
    try {
      cacheControl = validateHeader("Cache-Control", String(cacheControl));
    } catch (err) {
      throw new ArgumentError(`cacheControl is not a valid header value: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return { indexFile, redirectCanonical, etag, cacheControl };
}

/** The request path, split and checked. */
interface RequestPath {
  /** The path as sent (still percent-encoded), always starting with `/`. */
  readonly raw: string;
  /** `?query` as sent, or `""`. */
  readonly query: string;
  /** The decoded non-empty segments. */
  readonly segments: readonly string[];
}

/** Splits the target into path and query and decodes the segments; `undefined` means 400. */
function parseRequestPath(target: string): RequestPath | undefined {
  let t = target;
  if (!t.startsWith("/")) {
    // Absolute form (a proxy-style request line): keep what follows the authority.
    const scheme = t.indexOf("://");
    if (scheme <= 0) return undefined;
    const slash = t.indexOf("/", scheme + 3);
    const query = t.indexOf("?", scheme + 3);
    if (slash < 0 || (query >= 0 && query < slash)) t = `/${query >= 0 ? t.slice(query) : ""}`;
    else t = t.slice(slash);
  }
  const hash = t.indexOf("#");
  if (hash >= 0) t = t.slice(0, hash);
  const q = t.indexOf("?");
  const raw = q < 0 ? t : t.slice(0, q);
  const query = q < 0 ? "" : t.slice(q);
  const segments: string[] = [];
  for (const part of raw.split("/")) {
    if (part === "") continue;
    const segment = unescapeUri(part);
    if (segmentProblem(segment) !== undefined) return undefined;
    segments.push(segment);
  }
  return { raw, query, segments };
}

/**
 * A `Location` for a redirect to `pathname` (+ `query`): leading slashes and backslashes collapse to
 * one `/`, so `//evil.example/` can never become a protocol-relative URL, and bytes a header cannot
 * carry are percent-encoded.
 */
function location(pathname: string, query: string): string {
  const safe = `/${pathname.replace(/^[/\\]+/, "")}${query}`;
  return safe.replace(/[^\x21-\x7e]/g, (c) => encodeURIComponent(c));
}

function redirect(pathname: string, query: string): Response {
  return new Response(301, { headers: { Location: location(pathname, query) } });
}

function status(code: number): Response {
  return new Response(code);
}

function methodNotAllowed(): Response {
  return new Response(405, { headers: { Allow: ALLOW } });
}

type Found = { kind: "file" | "dir"; real: string; stat: Stats } | { kind: "missing" };
const MISSING: Found = Object.freeze({ kind: "missing" });

/**
 * Resolves `p` (symlinks followed) and stats it. With `root`, a real path outside it counts as
 * missing. Anything that is neither a regular file nor a directory (a FIFO would block a read
 * forever, a device is not content) also counts as missing, as does any error looking it up.
 */
async function find(p: string, root: string | undefined): Promise<Found> {
  let real: string;
  let st: Stats;
  try {
    real = await realpathNative(p);
    if (
      root !== undefined &&
      real !== root &&
      !real.startsWith(root.endsWith(path.sep) ? root : root + path.sep)
    ) {
      return MISSING;
    }
    st = await statFile(real);
  } catch {
    return MISSING;
  }
  if (st.isFile()) return { kind: "file", real, stat: st };
  if (st.isDirectory()) return { kind: "dir", real, stat: st };
  return MISSING;
}

function etagFor(option: EtagOption | undefined, real: string, st: Stats): string | undefined {
  if (option === undefined) return undefined;
  if (option === "weak-stat") return `W/"${st.size}-${Math.floor(st.mtimeMs)}"`;
  if (typeof option === "string") return option;
  const tag = option(real, st);
  return tag === null || tag === undefined ? undefined : normalizeEtag(tag);
}

function fileRepresentation(real: string, st: Stats): Representation {
  // Made only when the Content-Type must be sniffed: the peeked bytes become the body's first chunk.
  let peeked: FileBody | undefined;
  return {
    size: st.size,
    head: (n) => {
      peeked = new FileBody(real, st, 0, st.size);
      return peeked.peek(n);
    },
    body: (start, end) =>
      peeked === undefined ? new FileBody(real, st, start, end) : peeked.narrow(start, end),
    dispose: () => peeked?.dispose(),
  };
}

/** Serves a regular file found by {@link find}; `name` picks the Content-Type by extension. */
function sendFile(req: Request, real: string, st: Stats, name: string, opts: ResolvedFileOptions) {
  const headers = new Headers();
  if (opts.cacheControl !== undefined) headers.set("Cache-Control", opts.cacheControl);
  return respond(req, fileRepresentation(real, st), {
    name,
    modified: modifiedMillis(st.mtimeMs),
    contentType: undefined,
    etag: etagFor(opts.etag, real, st),
    headers,
    allowRanges: true,
  });
}

/** The raw path with its last segment (and any trailing slashes) removed: `/a/index.html` → `/a/`. */
function parentOf(raw: string): string {
  const trimmed = raw.replace(/\/+$/, "");
  return trimmed.slice(0, trimmed.lastIndexOf("/") + 1);
}

/**
 * The shared part of fileServer and serveFile once the path is found: canonical redirects, the
 * index file of a directory, the file itself. Returns `undefined` for "not found" so the caller can
 * apply its own fallback.
 */
async function serveFound(
  req: Request,
  rp: RequestPath,
  found: Found,
  fsPath: string,
  root: string | undefined,
  opts: ResolvedFileOptions,
): Promise<Response | undefined> {
  if (found.kind === "missing") return undefined;
  const trailingSlash = rp.raw.endsWith("/");
  if (found.kind === "dir") {
    if (opts.redirectCanonical && !trailingSlash) return redirect(`${rp.raw}/`, rp.query);
    const index = await find(path.join(found.real, opts.indexFile), root);
    if (index.kind !== "file") return undefined;
    return sendFile(req, index.real, index.stat, opts.indexFile, opts);
  }
  if (opts.redirectCanonical) {
    const last = rp.segments[rp.segments.length - 1];
    if (last === opts.indexFile && path.basename(fsPath) === opts.indexFile) {
      return redirect(parentOf(rp.raw), rp.query);
    }
    if (trailingSlash && rp.segments.length > 0) return redirect(rp.raw.replace(/\/+$/, ""), rp.query);
  }
  return sendFile(req, found.real, found.stat, fsPath, opts);
}

/**
 * A request handler serving the files under `root`: GET and HEAD only (else 405 with
 * `Allow: GET, HEAD`), percent-decoded path segments checked (`.`, `..`, `/`, `\`, `:`, NUL → 400),
 * symlinks followed but never out of the root (404), directories redirected to `dir/` and answered
 * with their index file, `…/index.html` and `file/` redirected to their canonical URL, and each file
 * streamed with Content-Type, Last-Modified, optional ETag and Cache-Control, conditional requests
 * and single ranges (see {@link serveContent}). Throws `ArgumentError` when `root` is not an existing
 * directory, `spaFallback` is not a file inside it, or an option is invalid.
 *
 * ```ts
 * const server = await serve(fileServer("./public", { etag: "weak-stat", spaFallback: "index.html" }), { port: 0 });
 * ```
 */
export function fileServer(root: string, options: FileServerOptions = {}): RequestHandler {
  if (typeof root !== "string" || root === "")
    throw new ArgumentError("fileServer needs a root directory path");
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
    if (!statSync(realRoot).isDirectory()) throw new ArgumentError(`${root} is not a directory`);
  } catch (err) {
    if (err instanceof ArgumentError) throw err;
    throw new ArgumentError(`fileServer's root ${root} is not an existing directory`, { cause: err });
  }
  const opts = resolveFileOptions(options);
  let spa: { real: string; stat: Stats; name: string } | undefined;
  if (options.spaFallback !== undefined) {
    const given = options.spaFallback;
    if (typeof given !== "string" || given === "") throw new ArgumentError("spaFallback must be a file path");
    let real: string;
    try {
      real = realpathSync(path.resolve(realRoot, given));
    } catch (err) {
      throw new ArgumentError(`spaFallback ${given} does not exist`, { cause: err });
    }
    if (!real.startsWith(realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep)) {
      throw new ArgumentError(`spaFallback ${given} is not inside the root ${root}`);
    }
    if (!statSync(real).isFile()) throw new ArgumentError(`spaFallback ${given} is not a file`);
    spa = { real, stat: statSync(real), name: real };
  }
  return async (req: Request): Promise<Response> => {
    if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed();
    const rp = parseRequestPath(req.target);
    if (rp === undefined) return status(400);
    const fsPath = path.join(realRoot, ...rp.segments);
    const served = await serveFound(req, rp, await find(fsPath, realRoot), fsPath, realRoot, opts);
    if (served !== undefined) return served;
    const last = rp.segments[rp.segments.length - 1] ?? "";
    if (spa !== undefined && !last.includes(".")) {
      // Stat again: the fallback may have been rebuilt since the server started.
      const now = await find(spa.real, realRoot);
      if (now.kind === "file") return sendFile(req, now.real, now.stat, spa.name, opts);
    }
    return status(404);
  };
}

/**
 * Serves the file (or directory, through its index file) at `filePath` for `req`, with the same rules
 * as {@link fileServer}: 405 for methods other than GET/HEAD, 400 for a request path with bad
 * segments, canonical redirects based on the request path, 404 when there is nothing to serve. There
 * is no root: `filePath` is trusted.
 *
 * ```ts
 * router.register("GET", "/download/report", (req) => serveFile(req, "/srv/reports/latest.pdf", { etag: "weak-stat" }));
 * ```
 */
export async function serveFile(
  req: Request,
  filePath: string,
  options: ServeFileOptions = {},
): Promise<Response> {
  if (typeof filePath !== "string" || filePath === "") throw new ArgumentError("serveFile needs a file path");
  const opts = resolveFileOptions(options);
  if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed();
  const rp = parseRequestPath(req.target);
  if (rp === undefined) return status(400);
  const fsPath = path.resolve(filePath);
  return (await serveFound(req, rp, await find(fsPath, undefined), fsPath, undefined, opts)) ?? status(404);
}
