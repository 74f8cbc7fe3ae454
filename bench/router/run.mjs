// router: route lookup, hyperwire `Router.match(method, target)` vs find-my-way's `find(method, path)`
// (the router under fastify), both holding the same 1,000 routes, in one process. No sockets: this
// measures matching alone. The mix per resource (200 resources × 5 routes): `/res{i}` and
// `/res{i}/search/recent` (static), `/res{i}/{id}`, `/res{i}/{id}/posts/{postId}`, and one of
// `/res{i}/v/{n:[0-9]+}` (regex, 1 in 10), `/res{i}/files/**` (1 in 10) or `/res{i}/about` (static).
// Resource 0 is called `users`, so `/users/{id}` and `/users/{id}/posts/{postId}` are among them.
// find-my-way runs twice: with its defaults, and with `ignoreTrailingSlash` + `ignoreDuplicateSlashes`,
// which is what hyperwire always does (it drops empty segments). Both decode percent escapes in
// params and parse the query string (`searchParams`); hyperwire does neither (params are raw, the
// query is ignored), which is part of what is being compared.
// Every target is first checked to reach the same handler with the same params in every router.
// Each measurement is one batch of lookups over a case's targets; the contenders alternate, round by
// round, and the table shows medians. Env: BENCH_ROUNDS (default 15), BENCH_LOOKUPS (per
// measurement, default 200000). A full run takes about 30 s.
import FindMyWay from "find-my-way";
import { alternate, printTable } from "../lib.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const LOOKUPS = Number(process.env.BENCH_LOOKUPS ?? 200_000);
const RESOURCES = 200;

const { Router } = await import("@hyperwire/server");
const ours = new Router();
const fmwDefault = FindMyWay();
const fmwSame = FindMyWay({ ignoreTrailingSlash: true, ignoreDuplicateSlashes: true });

/** Registers one route in every router, with one shared handler so lookups can be compared. */
function route(method, pattern, fmwPattern) {
  const handler = () => pattern;
  ours.register(method, pattern, handler);
  fmwDefault.on(method, fmwPattern, handler);
  fmwSame.on(method, fmwPattern, handler);
}

const names = Array.from({ length: RESOURCES }, (_, i) => (i === 0 ? "users" : `res${i}`));
for (let i = 0; i < RESOURCES; i++) {
  const n = names[i];
  route("GET", `/${n}`, `/${n}`);
  route("GET", `/${n}/search/recent`, `/${n}/search/recent`);
  route("GET", `/${n}/{id}`, `/${n}/:id`);
  route("GET", `/${n}/{id}/posts/{postId}`, `/${n}/:id/posts/:postId`);
  if (i % 10 === 0) route("GET", `/${n}/v/{n:[0-9]+}`, `/${n}/v/:n(^\\d+$)`);
  else if (i % 10 === 1) route("GET", `/${n}/files/**`, `/${n}/files/*`);
  else route("GET", `/${n}/about`, `/${n}/about`);
}

/** Request targets per case; lookups cycle through them. */
const pick = (every, from, make) => names.filter((_, i) => i % every === from).map((n, k) => make(n, k));
const CASES = {
  static: pick(1, 0, (n, k) => (k % 2 ? `/${n}/search/recent` : `/${n}`)),
  "1 param": pick(1, 0, (n, k) => `/${n}/${1000 + k}`),
  "2 params": pick(1, 0, (n, k) => `/${n}/${1000 + k}/posts/${k * 7}`),
  regex: pick(10, 0, (n, k) => `/${n}/v/${k}42`),
  "**": pick(10, 1, (n, k) => `/${n}/files/dir${k}/sub/file.txt`),
  "miss (404)": pick(1, 0, (n, k) => `/nothing/${n}/${k}`),
  "mix + query": pick(
    1,
    0,
    (n, k) =>
      [`/${n}?page=2`, `/${n}/${k}`, `/${n}/${k}/posts/9?sort=new`, `/${n}/about`, `/${n}/search/recent`][
        k % 5
      ],
  ).concat(
    pick(10, 0, (n) => `/${n}/v/7`),
    pick(10, 1, (n) => `/${n}/files/a/b`),
  ),
};

/** What a lookup found, normalised for comparison: handler and params (find-my-way's `*` left out). */
function seen(result) {
  if (result === null || result === undefined) return "none";
  const params = { ...(result.params ?? {}) };
  delete params["*"];
  return `${result.handler()} ${JSON.stringify(params)}`;
}

for (const [name, targets] of Object.entries(CASES)) {
  for (const t of targets) {
    const a = seen(ours.match("GET", t));
    const b = seen(fmwDefault.find("GET", t));
    const c = seen(fmwSame.find("GET", t));
    if (a !== b || a !== c) throw new Error(`${name} ${t}: hyperwire ${a}, find-my-way ${b} / ${c}`);
    if (name !== "miss (404)" && a === "none") throw new Error(`${name} ${t}: no route`);
  }
}

let sink = 0;
/** Lookups per second for `lookup` over `targets`, `LOOKUPS` of them. */
function measure(lookup, targets) {
  const n = targets.length;
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < LOOKUPS; k++) {
    const r = lookup(targets[k % n]);
    if (r) sink++;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  return LOOKUPS / (ns / 1e9);
}

const lookups = {
  hyperwire: (t) => ours.match("GET", t),
  "find-my-way": (t) => fmwDefault.find("GET", t),
  "find-my-way (same normalisation)": (t) => fmwSame.find("GET", t),
};

// Warm-up: let every contender's code be optimised on every case before anything counts.
for (let w = 0; w < 3; w++) {
  for (const targets of Object.values(CASES)) for (const f of Object.values(lookups)) measure(f, targets);
}

const started = performance.now();
const rows = [];
for (const [name, targets] of Object.entries(CASES)) {
  const contenders = Object.fromEntries(
    Object.entries(lookups).map(([who, f]) => [who, async () => measure(f, targets)]),
  );
  rows.push({ name, results: await alternate(contenders, ROUNDS) });
}
printTable(
  `Route lookup, 1,000 routes (${RESOURCES} resources × 5), ${ROUNDS} alternating rounds of ${LOOKUPS.toLocaleString("en-US")} lookups, Node ${process.version}`,
  "lookups/s",
  rows,
);
console.log(
  `(${((performance.now() - started) / 1000).toFixed(1)} s measured; sink ${sink > 0 ? "ok" : "empty"})`,
);
