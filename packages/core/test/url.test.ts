import { describe, expect, test } from "vitest";
import {
  buildQuery,
  escapeUri,
  mergeDefaultQuery,
  mergeQuery,
  parseQuery,
  parseQueryPairs,
  unescapeUri,
} from "../src/index.js";

/** Runs `fn` and returns how long it took, in ms. */
function timed(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

describe("escapeUri", () => {
  test("keeps only A-Za-z0-9-._ (so ~ and space are encoded)", () => {
    expect(escapeUri("a b/c")).toBe("a%20b%2Fc");
    expect(escapeUri("AZaz09-._")).toBe("AZaz09-._");
    expect(escapeUri("~")).toBe("%7E");
    expect(escapeUri("a+b=c&d?e#f%")).toBe("a%2Bb%3Dc%26d%3Fe%23f%25");
    expect(escapeUri("")).toBe("");
  });

  test("encodes non-ASCII as UTF-8 bytes", () => {
    expect(escapeUri("é")).toBe("%C3%A9");
    expect(escapeUri("€")).toBe("%E2%82%AC");
    expect(escapeUri("😀")).toBe("%F0%9F%98%80");
    expect(escapeUri("\0\r\n")).toBe("%00%0D%0A");
  });

  test("pairs and records build k=v&k2=v2 in the order given (records are not sorted)", () => {
    expect(escapeUri({ q: "x y" })).toBe("q=x%20y");
    expect(escapeUri({ b: 1, a: "~" })).toBe("b=1&a=%7E");
    expect(
      escapeUri([
        ["z", "1"],
        ["a b", "2"],
        ["z", "3"],
      ]),
    ).toBe("z=1&a%20b=2&z=3");
    expect(escapeUri({ k: [1, 2], skip: null, also: undefined })).toBe("k=1&k=2");
  });

  test("round trips through unescapeUri", () => {
    for (const s of ["a b/c~", "ünïcødé €", "%41 literal", "+&=?#", "😀", ""]) {
      expect(unescapeUri(escapeUri(s))).toBe(s);
    }
  });
});

describe("unescapeUri", () => {
  test("decodes %XX as UTF-8, either hex case", () => {
    expect(unescapeUri("a%20b")).toBe("a b");
    expect(unescapeUri("%C3%A9%c3%a9")).toBe("éé");
    expect(unescapeUri("%E2%82%AC")).toBe("€");
    expect(unescapeUri("plain")).toBe("plain");
  });

  test("+ is a space only when asked", () => {
    expect(unescapeUri("a+b")).toBe("a+b");
    expect(unescapeUri("a+b", true)).toBe("a b");
    expect(unescapeUri("a%2Bb", true)).toBe("a+b");
  });

  test("malformed escapes are kept as they are, never throwing", () => {
    expect(unescapeUri("%zz")).toBe("%zz");
    expect(unescapeUri("%")).toBe("%");
    expect(unescapeUri("a%")).toBe("a%");
    expect(unescapeUri("%4")).toBe("%4");
    expect(unescapeUri("%4g")).toBe("%4g");
    expect(unescapeUri("100%")).toBe("100%");
    expect(unescapeUri("%%41")).toBe("%A");
    expect(unescapeUri("%41%")).toBe("A%");
  });

  test("bytes that are not valid UTF-8 become U+FFFD", () => {
    const truncated = unescapeUri("%E0%A4");
    expect(truncated).toContain("\ufffd");
    expect(truncated).not.toContain("%");
    expect(unescapeUri("%FF")).toBe("\ufffd");
    expect(unescapeUri("a%C3b")).toBe("a\ufffdb");
    expect(unescapeUri("%E0%A4x%41")).toMatch(/^\ufffd+xA$/);
    // Overlong encoding of "/" must not decode to "/".
    expect(unescapeUri("%C0%AF")).not.toContain("/");
  });
});

describe("buildQuery", () => {
  test("a string is used verbatim, without a leading ?", () => {
    expect(buildQuery("b=2&a=1")).toBe("b=2&a=1");
    expect(buildQuery("?x=%20y")).toBe("x=%20y");
    expect(buildQuery("not encoded at all")).toBe("not encoded at all");
    expect(buildQuery("")).toBe("");
  });

  test("a record is sorted by key", () => {
    expect(buildQuery({ b: 2, a: "x y", c: true })).toBe("a=x%20y&b=2&c=true");
  });

  test("pairs, a Map and URLSearchParams keep their order", () => {
    const pairs: [string, unknown][] = [
      ["b", 2],
      ["a", 1],
      ["b", 3],
    ];
    expect(buildQuery(pairs)).toBe("b=2&a=1&b=3");
    expect(buildQuery(new Map(pairs))).toBe("b=3&a=1");
    expect(buildQuery(new URLSearchParams("z=1&a=2&z=3"))).toBe("z=1&a=2&z=3");
  });

  test("an array value repeats the key; null and undefined are skipped", () => {
    expect(buildQuery({ tag: ["a", "b", null, "c"], none: null, undef: undefined })).toBe(
      "tag=a&tag=b&tag=c",
    );
    expect(buildQuery([["k", ["1", "2"]]])).toBe("k=1&k=2");
    expect(buildQuery({})).toBe("");
  });

  test("keeps unreserved characters (~ too) and %-encodes everything else (space is %20)", () => {
    expect(buildQuery({ k: "a-b_c.d~e" })).toBe("k=a-b_c.d~e");
    expect(buildQuery({ "a&b": "c=d e+f/é" })).toBe("a%26b=c%3Dd%20e%2Bf%2F%C3%A9");
  });

  test("values are stringified", () => {
    expect(
      buildQuery([
        ["n", 1.5],
        ["b", false],
        ["z", 0],
      ]),
    ).toBe("n=1.5&b=false&z=0");
  });
});

describe("mergeQuery", () => {
  test("appends with ? or &", () => {
    expect(mergeQuery("/search", { q: "hi" })).toBe("/search?q=hi");
    expect(mergeQuery("/search?x=1", { q: "hi" })).toBe("/search?x=1&q=hi");
    expect(mergeQuery("/search?", { q: "hi" })).toBe("/search?q=hi");
    expect(mergeQuery("/search?x=1&", { q: "hi" })).toBe("/search?x=1&q=hi");
    expect(mergeQuery("http://h.example/p", "a=1")).toBe("http://h.example/p?a=1");
  });

  test("an empty or absent query leaves the target as it is", () => {
    expect(mergeQuery("/p?x=1", undefined)).toBe("/p?x=1");
    expect(mergeQuery("/p", null)).toBe("/p");
    expect(mergeQuery("/p", {})).toBe("/p");
    expect(mergeQuery("/p", "")).toBe("/p");
    expect(mergeQuery("/p", { a: null })).toBe("/p");
  });

  test("a fragment is dropped, never left in front of the query", () => {
    expect(mergeQuery("/p#frag", { a: 1 })).toBe("/p?a=1");
    expect(mergeQuery("/p?x=1#frag", { a: 1 })).toBe("/p?x=1&a=1");
  });
});

describe("mergeDefaultQuery", () => {
  test("defaults minus every key the call sets, then the call's pairs", () => {
    const merged = mergeDefaultQuery({ a: 1, b: 2, c: 3 }, { b: 9, d: 4 });
    expect(buildQuery(merged!)).toBe("a=1&c=3&b=9&d=4");
  });

  test("either side absent gives the other", () => {
    expect(mergeDefaultQuery(undefined, { a: 1 })).toEqual({ a: 1 });
    expect(mergeDefaultQuery({ a: 1 }, null)).toEqual({ a: 1 });
    expect(mergeDefaultQuery(null, undefined)).toBeUndefined();
  });

  test("a string call query replaces the defaults; a string default is kept before the call's pairs", () => {
    expect(mergeDefaultQuery({ a: 1 }, "raw=1")).toBe("raw=1");
    expect(mergeDefaultQuery("d=1", { c: "x y" })).toBe("d=1&c=x%20y");
    expect(mergeDefaultQuery("d=1", {})).toBe("d=1");
    expect(mergeDefaultQuery("", { c: 1 })).toBe("c=1");
  });
});

describe("parseQueryPairs", () => {
  test("ordered pairs, repeats kept, + and %XX decoded", () => {
    expect(parseQueryPairs("a=1&b=2&a=3")).toEqual([
      ["a", "1"],
      ["b", "2"],
      ["a", "3"],
    ]);
    expect(parseQueryPairs("q=x+y%20z&k%C3%A9=%E2%82%AC")).toEqual([
      ["q", "x y z"],
      ["ké", "€"],
    ]);
  });

  test('"a=b=c" gives the value "b" (the rest after a second = is dropped)', () => {
    expect(parseQueryPairs("a=b=c")).toEqual([["a", "b"]]);
    expect(parseQueryPairs("a=b=c&d=e")).toEqual([
      ["a", "b"],
      ["d", "e"],
    ]);
  });

  test("a key without = gets an empty value; empty segments are skipped", () => {
    expect(parseQueryPairs("flag&x=1")).toEqual([
      ["flag", ""],
      ["x", "1"],
    ]);
    expect(parseQueryPairs("&&a=1&&")).toEqual([["a", "1"]]);
    expect(parseQueryPairs("=v")).toEqual([["", "v"]]);
    expect(parseQueryPairs("k=")).toEqual([["k", ""]]);
    expect(parseQueryPairs("")).toEqual([]);
    expect(parseQueryPairs("?")).toEqual([]);
  });

  test("a leading ?, a target or a whole URL is fine; the fragment is ignored", () => {
    expect(parseQueryPairs("?a=1")).toEqual([["a", "1"]]);
    expect(parseQueryPairs("/p?a=1#b=2")).toEqual([["a", "1"]]);
    expect(parseQueryPairs("https://h.example/p?a=1&b=2#frag")).toEqual([
      ["a", "1"],
      ["b", "2"],
    ]);
    expect(parseQueryPairs(new URL("https://h.example/p?x=%20y#z=1"))).toEqual([["x", " y"]]);
  });

  test("a whole URL without a query gives no pairs", () => {
    expect(parseQueryPairs("https://h.example/path")).toEqual([]);
    expect(parseQueryPairs("http://h.example/#a=1")).toEqual([]);
    expect(parseQueryPairs(new URL("https://h.example/"))).toEqual([]);
    expect(parseQuery("https://example.com/")).toEqual({});
  });

  test("malformed escapes are kept, not thrown", () => {
    expect(parseQueryPairs("a=%zz&b=%&c=%E0%A4&%=1")).toEqual([
      ["a", "%zz"],
      ["b", "%"],
      ["c", unescapeUri("%E0%A4")],
      ["%", "1"],
    ]);
  });
});

describe("parseQuery", () => {
  test("a record where the last repeated key wins", () => {
    const q = parseQuery("?a=1&b=2&a=3");
    expect(q).toEqual({ a: "3", b: "2" });
    expect(Object.keys(q)).toEqual(["a", "b"]);
  });

  test("the record has no prototype", () => {
    const q = parseQuery("a=1");
    expect(Object.getPrototypeOf(q)).toBeNull();
  });
});

describe("hostile queries", () => {
  test("__proto__, constructor and prototype are plain entries and do not pollute Object.prototype", () => {
    const q = parseQuery("__proto__=x&constructor=y&prototype=z&__proto__[polluted]=1&toString=t");
    expect(Object.hasOwn(q, "__proto__")).toBe(true);
    expect(Object.getOwnPropertyDescriptor(q, "__proto__")?.value).toBe("x");
    expect(q.constructor).toBe("y");
    expect(q.prototype).toBe("z");
    expect(q["__proto__[polluted]"]).toBe("1");
    expect(q.toString).toBe("t");
    expect(Object.getPrototypeOf(q)).toBeNull();
    const fresh: Record<string, unknown> = {};
    expect(fresh.polluted).toBeUndefined();
    expect(fresh.x).toBeUndefined();
    expect(fresh.constructor).toBe(Object);
    expect(typeof fresh.toString).toBe("function");
    expect(Object.prototype).not.toHaveProperty("polluted");
  });

  test("encoded __proto__ keys are plain entries too", () => {
    const q = parseQuery("%5F%5Fproto%5F%5F=x&__pro%74o__=y");
    expect(Object.getOwnPropertyDescriptor(q, "__proto__")?.value).toBe("y");
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  test("a 1 MB query string of pairs parses quickly", () => {
    const s = "key=value&".repeat(100_000);
    expect(s.length).toBe(1_000_000);
    let pairs: [string, string][] = [];
    const ms = timed(() => {
      pairs = parseQueryPairs(s);
    });
    expect(pairs).toHaveLength(100_000);
    expect(ms).toBeLessThan(2_000);
  });

  test("100 000 distinct params parse into a record", () => {
    const s = Array.from({ length: 100_000 }, (_, i) => `p${i}=${i}`).join("&");
    let q: Record<string, string> = {};
    const ms = timed(() => {
      q = parseQuery(s);
    });
    expect(Object.keys(q)).toHaveLength(100_000);
    expect(q.p99999).toBe("99999");
    expect(ms).toBeLessThan(3_000);
  });

  test("100 000 repeats of one key: the last wins", () => {
    const s = Array.from({ length: 100_000 }, (_, i) => `k=${i}`).join("&");
    expect(parseQuery(s)).toEqual({ k: "99999" });
    expect(parseQueryPairs(s)).toHaveLength(100_000);
  });

  test("keys without = do not make parsing quadratic", () => {
    // 4 MB of `a&`: linear parsing takes well under a second, a rescan per key takes minutes.
    const s = "a&".repeat(2_000_000);
    let n = 0;
    const ms = timed(() => {
      n = parseQueryPairs(s).length;
    });
    expect(n).toBe(2_000_000);
    expect(ms).toBeLessThan(8_000);
  });

  test("one = followed by many keys without = does not make parsing quadratic", () => {
    const s = `a=1&${"b&".repeat(1_000_000)}`;
    let n = 0;
    const ms = timed(() => {
      n = parseQueryPairs(s).length;
    });
    expect(n).toBe(1_000_001);
    expect(ms).toBeLessThan(8_000);
  });

  test("1 MB of malformed escapes and of valid escapes decode without throwing", () => {
    const bad = "%".repeat(1_000_000);
    expect(unescapeUri(bad)).toBe(bad);
    const badPairs = `x=${"%zz".repeat(300_000)}&y=%`;
    expect(parseQuery(badPairs).y).toBe("%");
    const good = "%C3%A9".repeat(150_000);
    expect(unescapeUri(good)).toBe("é".repeat(150_000));
    const invalidUtf8 = "%FF".repeat(300_000);
    expect(unescapeUri(invalidUtf8)).toBe("\ufffd".repeat(300_000));
  });
});
