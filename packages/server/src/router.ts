// The Router (HTTP.jl's Handlers.Router): a trie of path segments, walked once per request.
// Each level tries its children in a fixed order (exact, regex variables in registration order,
// `{name}`/`*`, then `**`) and backtracks when a branch fails deeper down. A trie node has one
// parent, so a lookup visits each node at most once: the cost follows the path's depth and the
// branches that match it, never the number of routes. Fully static routes are also kept in one Map
// keyed by their path, which answers the common case with a single lookup.
import { ArgumentError, isToken, type Request, Response } from "@hyperwire/core";
import type { HandlerResult, RequestHandler } from "./handler.js";
import type { StreamHandler } from "./listen.js";
import type { Middleware } from "./middleware.js";
import { ServerStream } from "./stream.js";

/** A handler a {@link Router} can dispatch to: a request handler or a stream handler. */
export type RouteHandler = RequestHandler | StreamHandler;

/** Options of {@link Router}. */
export interface RouterOptions<H extends RouteHandler = RequestHandler> {
  /**
   * Called when no route matches the path. Default: an empty `404` (for a stream: status 404,
   * `Content-Length: 0`, response ended).
   */
  notFound?: H;
  /**
   * Called when a route matches the path but not the method. Default: an empty `405` with an
   * `Allow` header listing the methods the path has. A custom handler's `Response` gets that `Allow`
   * header unless it set one (on a stream it is set before the handler runs).
   */
  methodNotAllowed?: H;
  /** Wraps each handler once, when it is registered; `notFound` and `methodNotAllowed` are not wrapped. */
  middleware?: Middleware<H>;
}

/** What {@link Router.match} found: the (wrapped) handler, the pattern it was registered with, the params. */
export interface RouteMatch<H extends RouteHandler = RequestHandler> {
  /** The registered handler, as the middleware wrapped it. */
  readonly handler: H;
  /** The pattern as registered, e.g. `"/users/{id}"`. */
  readonly route: string;
  /** The path variables, raw (not percent-decoded); `undefined` when the route has none. */
  readonly params: Readonly<Record<string, string>> | undefined;
}

/**
 * The most segments a registered pattern may have. Lookups recurse once per segment of the
 * deepest matching route, so this keeps the recursion far from the stack limit; request paths may
 * be any length.
 */
export const MAX_ROUTE_SEGMENTS = 1024;

/**
 * A function that reads a route's variables out of a matched target into an object literal with the
 * route's names as keys. A literal of fixed keys is a fast-properties object, where adding the keys
 * one by one made a dictionary per match (the difference is about a tenth of a param lookup). The
 * names are checked identifiers (never `__proto__`) and are written as JSON string literals.
 */
function paramsFactory(
  positions: readonly number[],
  names: readonly string[],
): (target: string, bounds: Int32Array) => Record<string, string> {
  const fields = positions.map(
    (p, k) => `${JSON.stringify(names[k])}: target.slice(bounds[${p * 2}], bounds[${p * 2 + 1}])`,
  );
  return new Function("target", "bounds", `return { ${fields.join(", ")} };`) as (
    target: string,
    bounds: Int32Array,
  ) => Record<string, string>;
}

/** One registered method + pattern. */
class Leaf<H extends RouteHandler> {
  readonly method: string;
  readonly route: string;
  readonly handler: H;
  /** Segment index of each variable, and its name at the same index of `names`. */
  readonly positions: readonly number[];
  readonly names: readonly string[];
  /** The match of a route without variables, made once and shared by every lookup. */
  readonly fixed: RouteMatch<H> | undefined;

  constructor(method: string, route: string, handler: H, positions: number[], names: string[]) {
    this.method = method;
    this.route = route;
    this.handler = handler;
    this.positions = positions;
    this.names = names;
    this.fixed = positions.length === 0 ? Object.freeze({ handler, route, params: undefined }) : undefined;
    this.#params = positions.length === 0 ? undefined : paramsFactory(positions, names);
  }

  /** Builds this route's params object: one literal, so every match of the route shares a shape. */
  readonly #params: ((target: string, bounds: Int32Array) => Record<string, string>) | undefined;

  /** The match for `target`, whose segment bounds the last {@link find} left in `BOUNDS`. */
  matchIn(target: string): RouteMatch<H> {
    if (this.fixed !== undefined) return this.fixed;
    return { handler: this.handler, route: this.route, params: this.#params!(target, BOUNDS) };
  }
}

/** A `{name:regex}` child: its pattern (anchored to the whole segment) and the subtree below it. */
interface PatternChild<H extends RouteHandler> {
  readonly source: string;
  readonly regex: RegExp;
  readonly node: TrieNode<H>;
}

class TrieNode<H extends RouteHandler> {
  exact: Map<string, TrieNode<H>> | undefined = undefined;
  /**
   * A filter on the exact children, to skip making the segment string and hashing it when no child
   * can match: bit `c % 32` of `exactFirst` is set for each child's first char code `c`, bit
   * `min(length, 31)` of `exactLength` for each child's length.
   */
  exactFirst = 0;
  exactLength = 0;
  patterns: PatternChild<H>[] | undefined = undefined;
  /** `{name}` and `*`: any one segment. */
  wildcard: TrieNode<H> | undefined = undefined;
  /** `**`: one or more segments, the rest of the path. */
  rest: TrieNode<H> | undefined = undefined;
  /** Leaves by exact method, in registration order. */
  methods: Map<string, Leaf<H>> | undefined = undefined;
  /** The leaf registered for any method (`"*"`). */
  any: Leaf<H> | undefined = undefined;

  leafFor(method: string): Leaf<H> | undefined {
    if (this.methods !== undefined) {
      const leaf = this.methods.get(method);
      if (leaf !== undefined) return leaf;
    }
    return this.any;
  }
}

/** A parsed pattern segment. */
type Segment =
  | { kind: "exact"; text: string }
  | { kind: "pattern"; name: string; source: string; regex: RegExp }
  | { kind: "wildcard"; name: string | undefined }
  | { kind: "rest" };

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function parseSegment(text: string, path: string): Segment {
  if (text === "*") return { kind: "wildcard", name: undefined };
  if (text === "**") return { kind: "rest" };
  if (text.startsWith("{") && text.endsWith("}") && text.length > 2) {
    const body = text.slice(1, -1);
    const colon = body.indexOf(":");
    const name = colon < 0 ? body : body.slice(0, colon);
    if (!VARIABLE_NAME.test(name) || name === "__proto__") {
      throw new ArgumentError(
        `route ${JSON.stringify(path)}: variable name ${JSON.stringify(name)} must be letters, digits, _ or - (not starting with a digit)`,
      );
    }
    if (colon < 0) return { kind: "wildcard", name };
    const source = body.slice(colon + 1);
    if (source === "") {
      throw new ArgumentError(
        `route ${JSON.stringify(path)}: {${name}:} has an empty pattern; use {${name}}`,
      );
    }
    let regex: RegExp;
    try {
      // Compiled alone first: a pattern that is valid on its own has balanced groups, so it cannot
      // close the anchoring group below and match only part of the segment (`a)|(b`).
      new RegExp(source);
      regex = new RegExp(`^(?:${source})$`);
    } catch (err) {
      throw new ArgumentError(
        `route ${JSON.stringify(path)}: {${name}:${source}} is not a valid regular expression`,
        { cause: err },
      );
    }
    return { kind: "pattern", name, source, regex };
  }
  if (text.includes("{") || text.includes("}")) {
    throw new ArgumentError(
      `route ${JSON.stringify(path)}: segment ${JSON.stringify(text)} mixes text and a variable; a variable is a whole segment ({name} or {name:regex}) and its pattern cannot contain "/"`,
    );
  }
  return { kind: "exact", text };
}

/**
 * Where the path of a request target starts: 0 for origin form (`/p?q`), after the authority for
 * absolute form (`http://h/p?q`); -1 when the target has no path (`*`, `host:port`). An absolute
 * target without a path (`http://h?q`) has the path `/`, which yields no segments either way.
 */
function pathStart(target: string): number {
  if (target.charCodeAt(0) === 47 /* / */) return 0;
  const scheme = target.indexOf("://");
  if (scheme <= 0) return -1;
  for (let i = scheme + 3; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 47 /* / */) return i;
    if (c === 63 /* ? */ || c === 35 /* # */) return target.length;
  }
  return target.length;
}

const NO_SEGMENTS: readonly string[] = Object.freeze([]);

/** The non-empty segments of the path that starts at `start`, up to the query or fragment. */
function segmentsOf(target: string, start: number): readonly string[] {
  const len = target.length;
  let segments: string[] | undefined;
  let from = start;
  let i = start;
  for (; i < len; i++) {
    const c = target.charCodeAt(i);
    if (c === 47 /* / */) {
      if (i > from) {
        segments ??= [];
        segments.push(target.slice(from, i));
      }
      from = i + 1;
    } else if (c === 63 /* ? */ || c === 35 /* # */) break;
  }
  if (i > from) {
    segments ??= [];
    segments.push(target.slice(from, i));
  }
  return segments ?? NO_SEGMENTS;
}

/**
 * The start and end of each path segment the last {@link find} walked through, two per segment.
 * Segment bounds depend only on the path, not on the branch being tried, so a lookup can write them
 * as it goes and a leaf reads its params from them afterwards. One array serves every router:
 * a lookup runs to its end without calling out (regexes cannot), so lookups never overlap.
 */
const BOUNDS = new Int32Array(2 * (MAX_ROUTE_SEGMENTS + 1));

/**
 * The leaf for `method` under `node` for the path in `target[pos, end)`, trying children in
 * precedence order; `depth` is the index of the segment at `pos`. The path is walked in place:
 * a segment becomes a string only where an exact child or a regex needs to look at it.
 */
function find<H extends RouteHandler>(
  node: TrieNode<H>,
  method: string,
  target: string,
  pos: number,
  end: number,
  depth: number,
): Leaf<H> | undefined {
  while (pos < end && target.charCodeAt(pos) === 47 /* / */) pos++;
  if (pos === end) return node.leafFor(method);
  let next = target.indexOf("/", pos);
  if (next < 0 || next > end) next = end;
  BOUNDS[depth * 2] = pos;
  BOUNDS[depth * 2 + 1] = next;
  let segment: string | undefined;
  if (
    node.exact !== undefined &&
    (node.exactFirst & (1 << (target.charCodeAt(pos) & 31))) !== 0 &&
    (node.exactLength & (1 << Math.min(next - pos, 31))) !== 0
  ) {
    segment = target.slice(pos, next);
    const child = node.exact.get(segment);
    if (child !== undefined) {
      const leaf = find(child, method, target, next, end, depth + 1);
      if (leaf !== undefined) return leaf;
    }
  }
  const patterns = node.patterns;
  if (patterns !== undefined) {
    segment ??= target.slice(pos, next);
    for (let k = 0; k < patterns.length; k++) {
      const p = patterns[k]!;
      if (p.regex.test(segment)) {
        const leaf = find(p.node, method, target, next, end, depth + 1);
        if (leaf !== undefined) return leaf;
      }
    }
  }
  if (node.wildcard !== undefined) {
    const leaf = find(node.wildcard, method, target, next, end, depth + 1);
    if (leaf !== undefined) return leaf;
  }
  // `**` takes every remaining segment (at least one: this one).
  if (node.rest !== undefined) return node.rest.leafFor(method);
  return undefined;
}

/** Where the path starting at `start` ends: at the query, the fragment or the end of `target`. */
function pathEnd(target: string, start: number): number {
  const query = target.indexOf("?", start);
  const end = query < 0 ? target.length : query;
  const fragment = target.indexOf("#", start);
  return fragment < 0 || fragment > end ? end : fragment;
}

/** The node for a parsed pattern, made (with the nodes above it) where missing. */
function insert<H extends RouteHandler>(root: TrieNode<H>, segments: readonly Segment[]): TrieNode<H> {
  let node = root;
  for (const seg of segments) {
    let next: TrieNode<H> | undefined;
    switch (seg.kind) {
      case "exact":
        node.exact ??= new Map();
        next = node.exact.get(seg.text);
        if (next === undefined) {
          next = new TrieNode<H>();
          node.exact.set(seg.text, next);
          node.exactFirst |= 1 << (seg.text.charCodeAt(0) & 31);
          node.exactLength |= 1 << Math.min(seg.text.length, 31);
        }
        break;
      case "pattern": {
        node.patterns ??= [];
        let child = node.patterns.find((p) => p.source === seg.source);
        if (child === undefined) {
          child = { source: seg.source, regex: seg.regex, node: new TrieNode<H>() };
          node.patterns.push(child);
        }
        next = child.node;
        break;
      }
      case "wildcard":
        node.wildcard ??= new TrieNode<H>();
        next = node.wildcard;
        break;
      case "rest":
        node.rest ??= new TrieNode<H>();
        next = node.rest;
        break;
    }
    node = next;
  }
  return node;
}

/** Adds to `into` every method registered on a node that `segments[i..]` reaches. */
function collectMethods<H extends RouteHandler>(
  node: TrieNode<H>,
  segments: readonly string[],
  i: number,
  into: Set<string>,
): void {
  if (i === segments.length) {
    if (node.methods !== undefined) for (const m of node.methods.keys()) into.add(m);
    return;
  }
  const segment = segments[i]!;
  const child = node.exact?.get(segment);
  if (child !== undefined) collectMethods(child, segments, i + 1, into);
  if (node.patterns !== undefined) {
    for (const p of node.patterns) if (p.regex.test(segment)) collectMethods(p.node, segments, i + 1, into);
  }
  if (node.wildcard !== undefined) collectMethods(node.wildcard, segments, i + 1, into);
  if (node.rest?.methods !== undefined) for (const m of node.rest.methods.keys()) into.add(m);
}

const kMatch = Symbol("hyperwire.route");

/** A request the router matched: the match is kept in a symbol slot, so no RequestContext is made. */
interface RoutedRequest extends Request {
  [kMatch]?: RouteMatch<RouteHandler>;
}

function matchOf(req: Request | ServerStream): RouteMatch<RouteHandler> | undefined {
  const r = (req instanceof ServerStream ? req.request : req) as RoutedRequest;
  return r[kMatch];
}

function withAllow(result: HandlerResult, allow: string): HandlerResult {
  if (result instanceof Response && !result.headers.has("allow")) result.headers.set("Allow", allow);
  return result;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null && typeof value === "object" && typeof (value as { then?: unknown }).then === "function"
  );
}

/**
 * Routes requests by method and path to registered handlers (HTTP.jl's `Router`). Patterns are
 * made of segments: exact text, `{name}` (any one segment, captured), `{name:regex}` (a segment the
 * regex matches whole, captured), `*` (any one segment) and `**` (one or more segments, only last).
 * At each level exact beats regex (in registration order) beats `{name}`/`*` beats `**`, and a
 * branch that fails deeper falls back to the next. Matching ignores the query, takes the path of an
 * absolute-form target and drops empty segments (`/a//b/` is `/a/b`). A path with no route gets
 * 404; a path whose routes lack the method gets 405 with `Allow`.
 *
 * Serve it with `serve(router)` (request handlers, `router.handle`) or `listen(router)` (stream
 * handlers, `router.handleStream`).
 *
 * ```ts
 * const router = new Router();
 * router.register("GET", "/users/{id:[0-9]+}", (req) => new Response(200, { body: getParam(req, "id") }));
 * router.register("/static/**", serveAssets); // any method
 * const server = await serve(router, { port: 0 });
 * ```
 */
export class Router<H extends RouteHandler = RequestHandler> {
  readonly #root = new TrieNode<H>();
  /** Nodes of fully static patterns by their normalized path (`/a/b`; the root is `/`). */
  readonly #static = new Map<string, TrieNode<H>>();
  /**
   * The lengths of the static paths, as bits (lengths of 256 and more share the last bit): a path of
   * a length no static route has skips the Map lookup, which on a miss costs as much as a short walk.
   */
  readonly #staticLengths = new Uint32Array(9);
  readonly #notFound: H | undefined;
  readonly #methodNotAllowed: H | undefined;
  readonly #middleware: Middleware<H> | undefined;

  constructor(options: RouterOptions<NoInfer<H>> = {}) {
    for (const key of ["notFound", "methodNotAllowed", "middleware"] as const) {
      const value = options[key];
      if (value !== undefined && typeof value !== "function") {
        throw new ArgumentError(`Router option ${key} must be a function, got ${typeof value}`);
      }
    }
    this.#notFound = options.notFound;
    this.#methodNotAllowed = options.methodNotAllowed;
    this.#middleware = options.middleware;
  }

  /**
   * Registers `handler` for `method` (matched exactly, case-sensitive; `"*"` for any) and `path`.
   * With two arguments the method is `"*"`. Registering the same method and pattern again replaces
   * the handler and emits a process warning (code `HW_ROUTE_REPLACED`). Bad patterns (`**` not
   * last, an invalid regex, a variable mixed with text, a repeated variable name) are an
   * `ArgumentError`. Returns the router, for chaining.
   *
   * ```ts
   * router.register("GET", "/users/{id}", getUser).register("DELETE", "/users/{id}", deleteUser);
   * ```
   */
  register(path: string, handler: H): this;
  register(method: string, path: string, handler: H): this;
  register(a: string, b: string | H, c?: H): this {
    if (c === undefined && typeof b === "string") {
      throw new ArgumentError(`route ${a} ${b}: register(method, path, handler) needs a handler`);
    }
    const method = c === undefined ? "*" : a;
    const path = c === undefined ? a : (b as string);
    const handler = c === undefined ? (b as H) : c;
    if (typeof method !== "string" || (method !== "*" && !isToken(method))) {
      throw new ArgumentError(
        `route method must be "*" or an HTTP method token, got ${JSON.stringify(method)}`,
      );
    }
    if (typeof path !== "string" || !path.startsWith("/")) {
      throw new ArgumentError(`route path must be a string starting with "/", got ${JSON.stringify(path)}`);
    }
    if (path.includes("?") || path.includes("#")) {
      throw new ArgumentError(
        `route ${JSON.stringify(path)}: a pattern matches the path only; remove the query`,
      );
    }
    if (typeof handler !== "function") {
      throw new ArgumentError(`route ${method} ${path}: the handler must be a function`);
    }
    const parts = segmentsOf(path, 0);
    if (parts.length > MAX_ROUTE_SEGMENTS) {
      throw new ArgumentError(
        `route ${JSON.stringify(path.slice(0, 50))}…: more than ${MAX_ROUTE_SEGMENTS} segments`,
      );
    }
    const segments = parts.map((s) => parseSegment(s, path));
    // Everything is checked before the trie changes, so a rejected route leaves no trace.
    const positions: number[] = [];
    const names: string[] = [];
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      if (seg.kind === "rest" && i !== segments.length - 1) {
        throw new ArgumentError(`route ${JSON.stringify(path)}: ** must be the last segment`);
      }
      if ((seg.kind === "wildcard" || seg.kind === "pattern") && seg.name !== undefined) {
        if (names.includes(seg.name)) {
          throw new ArgumentError(`route ${JSON.stringify(path)}: variable {${seg.name}} appears twice`);
        }
        positions.push(i);
        names.push(seg.name);
      }
    }
    let wrapped = handler;
    if (this.#middleware !== undefined) {
      wrapped = this.#middleware(handler);
      if (typeof wrapped !== "function") {
        throw new ArgumentError(
          `route ${method} ${path}: the middleware returned ${typeof wrapped}, not a handler`,
        );
      }
    }
    const node = insert(this.#root, segments);
    const leaf = new Leaf<H>(method, path, wrapped, positions, names);
    const previous = method === "*" ? node.any : node.methods?.get(method);
    if (previous !== undefined) {
      process.emitWarning(
        `replacing the route ${previous.method} ${JSON.stringify(previous.route)} with ${method} ${JSON.stringify(path)}`,
        { code: "HW_ROUTE_REPLACED" },
      );
    }
    if (method === "*") node.any = leaf;
    else {
      node.methods ??= new Map();
      node.methods.set(method, leaf);
    }
    const allExact = segments.every((seg) => seg.kind === "exact");
    if (allExact) {
      const key = parts.length === 0 ? "/" : `/${parts.join("/")}`;
      this.#static.set(key, node);
      const bit = Math.min(key.length, 256);
      this.#staticLengths[bit >> 5]! |= 1 << (bit & 31);
    }
    return this;
  }

  /**
   * The route for `method` and a request target (`/p?q` or `http://h/p?q`), or `undefined` when no
   * route has both (then {@link Router.allowedMethods} tells 404 from 405). Pure: it only looks.
   *
   * ```ts
   * router.match("GET", "/users/7?full=1"); // { handler, route: "/users/{id}", params: { id: "7" } }
   * ```
   */
  match(method: string, target: string): RouteMatch<H> | undefined {
    const start = pathStart(target);
    if (start < 0) return undefined;
    const end = pathEnd(target, start);
    // A fully static route: one Map lookup when the path is already in normal form. Anything else
    // (`//`, a trailing `/`, a method the node lacks) takes the trie walk, which is always right; a
    // hit here is exactly what the walk would find first, exact children coming first. The root's
    // filter of first chars spares hashing the whole path when no static route starts like it.
    const first = 1 << (target.charCodeAt(start + 1) & 31);
    const bit = Math.min(end - start, 256);
    if (
      (end - start <= 1 || (this.#root.exactFirst & first) !== 0) &&
      (this.#staticLengths[bit >> 5]! & (1 << (bit & 31))) !== 0
    ) {
      const key = start === 0 && end === target.length ? target : target.slice(start, end);
      const leaf = this.#static.get(key || "/")?.leafFor(method);
      if (leaf !== undefined) return leaf.fixed!;
    }
    return find(this.#root, method, target, start, end, 0)?.matchIn(target);
  }

  /**
   * The methods registered for the routes that match a target's path, in registration order
   * (`"*"` routes are not listed): empty when no route matches the path. The default 405 sends them
   * in `Allow`.
   *
   * ```ts
   * router.allowedMethods("/users/7"); // ["GET", "DELETE"]
   * ```
   */
  allowedMethods(target: string): string[] {
    const start = pathStart(target);
    if (start < 0) return [];
    const into = new Set<string>();
    collectMethods(this.#root, segmentsOf(target, start), 0, into);
    return [...into];
  }

  /**
   * Handles a request (the router as a request handler, which is what `serve(router)` calls): runs
   * the matched handler, the 404 or the 405 handler, and returns what it returns. The match is
   * recorded for {@link getRoute}, {@link getParams} and {@link getParam}.
   *
   * ```ts
   * const resp = await router.handle(new Request("GET", "/users/7"));
   * ```
   */
  handle(req: Request): HandlerResult | Promise<HandlerResult> {
    const m = this.match(req.method, req.target);
    if (m !== undefined) {
      (req as RoutedRequest)[kMatch] = m;
      return (m.handler as RequestHandler)(req);
    }
    const allowed = this.allowedMethods(req.target);
    if (allowed.length === 0) {
      const notFound = this.#notFound as RequestHandler | undefined;
      return notFound === undefined ? new Response(404) : notFound(req);
    }
    const allow = allowed.join(", ");
    const custom = this.#methodNotAllowed as RequestHandler | undefined;
    if (custom === undefined) return new Response(405, { headers: { Allow: allow } });
    const result = custom(req);
    if (isThenable(result)) return Promise.resolve(result).then((r) => withAllow(r, allow));
    return withAllow(result, allow);
  }

  /**
   * Handles a stream (the router as a stream handler, which is what `listen(router)` calls): runs
   * the matched stream handler, or answers 404 / 405 (with `Allow`) and ends the response. An unread
   * request body on a 404/405 closes the connection after the response.
   *
   * ```ts
   * const server = await listen(router, { port: 0 });
   * ```
   */
  handleStream(stream: ServerStream): void | Promise<void> {
    const req = stream.request;
    const m = this.match(req.method, req.target);
    if (m !== undefined) {
      (req as RoutedRequest)[kMatch] = m;
      return (m.handler as StreamHandler)(stream);
    }
    const allowed = this.allowedMethods(req.target);
    if (allowed.length === 0) {
      const notFound = this.#notFound as StreamHandler | undefined;
      return notFound === undefined ? endStream(stream, 404, undefined) : notFound(stream);
    }
    const allow = allowed.join(", ");
    const custom = this.#methodNotAllowed as StreamHandler | undefined;
    if (custom === undefined) return endStream(stream, 405, allow);
    stream.setHeader("Allow", allow);
    return custom(stream);
  }
}

async function endStream(stream: ServerStream, status: number, allow: string | undefined): Promise<void> {
  // Stop reading first, so that a pending body makes this response say Connection: close.
  stream.closeRead();
  stream.setStatus(status);
  if (allow !== undefined) stream.setHeader("Allow", allow);
  stream.setHeader("Content-Length", "0");
  await stream.closeWrite();
}

/**
 * The pattern of the route that matched `req` (or a stream's request), e.g. `"/users/{id}"`;
 * `undefined` when no router matched it.
 *
 * ```ts
 * router.register("GET", "/users/{id}", (req) => new Response(200, { body: getRoute(req) }));
 * ```
 */
export function getRoute(req: Request | ServerStream): string | undefined {
  return matchOf(req)?.route;
}

/**
 * The path variables of the route that matched `req` (raw, not percent-decoded), or `undefined`
 * when the route has none.
 *
 * ```ts
 * router.register("GET", "/users/{id}/posts/{post}", (req) =>
 *   new Response(200, { body: JSON.stringify(getParams(req)) }));
 * ```
 */
export function getParams(req: Request | ServerStream): Readonly<Record<string, string>> | undefined {
  return matchOf(req)?.params;
}

/**
 * One path variable of the route that matched `req` (raw, not percent-decoded), or `otherwise`
 * (default `undefined`) when there is no such variable.
 *
 * ```ts
 * const page = getParam(req, "page", "1");
 * ```
 */
export function getParam(req: Request | ServerStream, name: string): string | undefined;
export function getParam<D>(req: Request | ServerStream, name: string, otherwise: D): string | D;
export function getParam<D>(
  req: Request | ServerStream,
  name: string,
  otherwise?: D,
): string | D | undefined {
  const params = matchOf(req)?.params;
  return params !== undefined && Object.hasOwn(params, name) ? params[name] : otherwise;
}
