import { describe, expect, test } from "vitest";
import {
  appendHeader,
  canonicalHeaderKey,
  defaultHeader,
  Headers,
  hasHeader,
  header,
  headerContains,
  isToken,
  Request,
  Response,
  removeHeader,
  setHeader,
  toHeaders,
  validateHeader,
} from "../src/index.js";

describe("Headers basics", () => {
  test("lookups are case-insensitive and names keep the case they were given", () => {
    const h = new Headers();
    h.append("Content-Type", "text/plain");
    h.append("x-LOWER-upper", "1");
    expect(h.get("content-type")).toBe("text/plain");
    expect(h.get("CONTENT-TYPE")).toBe("text/plain");
    expect(h.get("X-Lower-Upper")).toBe("1");
    expect(h.has("X-LOWER-UPPER")).toBe(true);
    expect([...h.keys()]).toEqual(["Content-Type", "x-LOWER-upper"]);
  });

  test("get returns null for an absent name, has is true even for an empty value", () => {
    const h = new Headers({ Empty: "" });
    expect(h.get("missing")).toBeNull();
    expect(h.has("missing")).toBe(false);
    expect(h.has("empty")).toBe(true);
    expect(h.get("empty")).toBe("");
  });

  test("multiple values keep their order; get is the first, getAll is every one", () => {
    const h = new Headers();
    h.append("Set-Cookie", "a=1");
    h.append("Accept", "text/html");
    h.append("set-cookie", "b=2");
    h.append("SET-COOKIE", "c=3");
    expect(h.get("Set-Cookie")).toBe("a=1");
    expect(h.getAll("set-cookie")).toEqual(["a=1", "b=2", "c=3"]);
    expect(h.getAll("missing")).toEqual([]);
    expect(h.size).toBe(4);
  });

  test("iteration yields [name, value] pairs in insertion order, one per value", () => {
    const h = new Headers([
      ["B", "1"],
      ["a", "2"],
      ["b", "3"],
    ]);
    expect([...h]).toEqual([
      ["B", "1"],
      ["a", "2"],
      ["b", "3"],
    ]);
    expect([...h.entries()]).toEqual([...h]);
    expect([...h.values()]).toEqual(["1", "2", "3"]);
    const seen: string[] = [];
    h.forEach((value, name, self) => {
      expect(self).toBe(h);
      seen.push(`${name}=${value}`);
    });
    expect(seen).toEqual(["B=1", "a=2", "b=3"]);
    expect(h.toJSON()).toEqual([
      ["B", "1"],
      ["a", "2"],
      ["b", "3"],
    ]);
    expect(h.toFlat()).toEqual(["B", "1", "a", "2", "b", "3"]);
    expect(h.toFlat(["Content-Length", "0"])).toEqual(["B", "1", "a", "2", "b", "3", "Content-Length", "0"]);
    expect(new Headers().toFlat(["X", "y"])).toEqual(["X", "y"]);
    // the headers themselves are not changed by what was added on the way out
    expect(h.size).toBe(3);
  });

  test("names match in any case, for more distinct names than the lower-case cache keeps", () => {
    const h = new Headers();
    for (let i = 0; i < 700; i++) h.append(`X-Name-${i}`, String(i));
    h.append(`X-${"Long".repeat(30)}`, "long");
    for (let i = 0; i < 700; i += 7) {
      expect(h.get(`x-name-${i}`)).toBe(String(i));
      expect(h.get(`X-NAME-${i}`)).toBe(String(i));
    }
    expect(h.get(`x-${"long".repeat(30)}`)).toBe("long");
    expect(h.has("x-name-699")).toBe(true);
    h.delete("X-NAME-699");
    expect(h.has("x-name-699")).toBe(false);
    // one already in lower case is matched as it is
    expect(new Headers({ "content-type": "a" }).get("Content-Type")).toBe("a");
  });

  test("set replaces every value at the position of the first, with the new case", () => {
    const h = new Headers([
      ["X-A", "1"],
      ["Other", "o"],
      ["x-a", "2"],
      ["Last", "l"],
      ["X-a", "3"],
    ]);
    h.set("x-A", "new");
    expect([...h]).toEqual([
      ["x-A", "new"],
      ["Other", "o"],
      ["Last", "l"],
    ]);
    h.set("Added", "z");
    expect([...h.keys()]).toEqual(["x-A", "Other", "Last", "Added"]);
    expect(h.set("Chain", "1")).toBe(h);
  });

  test("append never joins values", () => {
    const h = new Headers();
    h.append("Accept", "a").append("Accept", "b");
    expect(h.getAll("accept")).toEqual(["a", "b"]);
    expect(h.size).toBe(2);
  });

  test("delete removes every value and says whether anything was removed", () => {
    const h = new Headers([
      ["A", "1"],
      ["B", "2"],
      ["a", "3"],
    ]);
    expect(h.delete("A")).toBe(true);
    expect([...h]).toEqual([["B", "2"]]);
    expect(h.delete("a")).toBe(false);
    expect(h.size).toBe(1);
  });

  test("values have surrounding spaces and tabs trimmed, inner ones kept", () => {
    const h = new Headers();
    h.set("X", " \t a \t b \t ");
    expect(h.get("x")).toBe("a \t b");
    expect(validateHeader("X", "  v  ")).toBe("v");
  });

  test("Latin-1 (obs-text) values are accepted", () => {
    const h = new Headers({ "X-Name": "café ÿ" });
    expect(h.get("x-name")).toBe("café ÿ");
  });

  test("toObject has lower-case names, a string for one value and an array for several", () => {
    const h = new Headers([
      ["Content-Type", "text/plain"],
      ["Set-Cookie", "a=1"],
      ["set-cookie", "b=2"],
    ]);
    const o = h.toObject();
    expect(o).toEqual({ "content-type": "text/plain", "set-cookie": ["a=1", "b=2"] });
    expect(Object.getPrototypeOf(o)).toBeNull();
  });

  test("addTo writes node-style fields into an existing object, leaving out what skip accepts", () => {
    const h = new Headers([
      ["Content-Type", "text/plain"],
      ["Connection", "close"],
      ["Vary", "a"],
      ["vary", "b"],
      ["X-Three", "1"],
      ["x-three", "2"],
      ["X-THREE", "3"],
    ]);
    const out: Record<string, unknown> = { ":status": 200, "x-three": "0" };
    const got = h.addTo(out, (key) => key === "connection");
    expect(got).toBe(out);
    expect(out).toEqual({
      ":status": 200,
      "content-type": "text/plain",
      vary: ["a", "b"],
      "x-three": ["0", "1", "2", "3"],
    });
    expect(Object.keys(out)[0]).toBe(":status");
  });

  test("entries survive set and delete in the middle of the list, in order", () => {
    const h = new Headers([
      ["A", "1"],
      ["B", "2"],
      ["a", "3"],
      ["C", "4"],
      ["A", "5"],
    ]);
    h.set("a", "x");
    expect([...h]).toEqual([
      ["a", "x"],
      ["B", "2"],
      ["C", "4"],
    ]);
    expect(h.delete("B")).toBe(true);
    expect(h.delete("B")).toBe(false);
    expect(h.size).toBe(2);
    expect([...h.keys()]).toEqual(["a", "C"]);
    expect([...h.values()]).toEqual(["x", "4"]);
    expect(h.toFlat()).toEqual(["a", "x", "C", "4"]);
  });

  test("toWeb gives a WHATWG Headers with every entry, Set-Cookie kept separate", () => {
    const h = new Headers([
      ["Content-Type", "text/plain"],
      ["Set-Cookie", "a=1"],
      ["Set-Cookie", "b=2"],
      ["Accept", "x"],
      ["accept", "y"],
    ]);
    const web = h.toWeb();
    expect(web).toBeInstanceOf(globalThis.Headers);
    expect(web.get("content-type")).toBe("text/plain");
    expect(web.getSetCookie()).toEqual(["a=1", "b=2"]);
    expect(web.get("accept")).toBe("x, y");
  });

  test("clone is independent of the original", () => {
    const h = new Headers({ A: "1" });
    const c = h.clone();
    c.set("A", "2");
    c.append("B", "3");
    expect(h.get("a")).toBe("1");
    expect(h.has("b")).toBe(false);
    expect(c.get("a")).toBe("2");
  });

  test("toStringTag is Headers", () => {
    expect(Object.prototype.toString.call(new Headers())).toBe("[object Headers]");
  });
});

describe("Headers constructors", () => {
  test("from a plain object: string, number and array values; undefined skipped", () => {
    const h = new Headers({
      "Content-Type": "text/plain",
      "Content-Length": 42,
      "Set-Cookie": ["a=1", "b=2"],
      Skipped: undefined,
    });
    expect([...h]).toEqual([
      ["Content-Type", "text/plain"],
      ["Content-Length", "42"],
      ["Set-Cookie", "a=1"],
      ["Set-Cookie", "b=2"],
    ]);
    expect(h.has("skipped")).toBe(false);
  });

  test("from an array of pairs, keeping order and repeats", () => {
    const h = new Headers([
      ["X-B", "1"],
      ["X-A", "2"],
      ["x-b", "3"],
    ]);
    expect(h.getAll("x-b")).toEqual(["1", "3"]);
    expect([...h.keys()]).toEqual(["X-B", "X-A", "x-b"]);
  });

  test("an entry that is not a [name, value] pair is a ProtocolError", () => {
    const bad = [["A", "1", "extra"]] as unknown as [string, string][];
    expect(() => new Headers(bad)).toThrow(expect.objectContaining({ code: "HW_INVALID_HEADER" }));
  });

  test("from a Map", () => {
    const h = new Headers(
      new Map([
        ["Accept", "text/html"],
        ["X-Id", "7"],
      ]),
    );
    expect([...h]).toEqual([
      ["Accept", "text/html"],
      ["X-Id", "7"],
    ]);
  });

  test("from a WHATWG Headers, Set-Cookie values kept apart", () => {
    const web = new globalThis.Headers();
    web.append("Content-Type", "text/plain");
    web.append("Set-Cookie", "a=1");
    web.append("Set-Cookie", "b=2");
    const h = new Headers(web);
    expect(h.get("content-type")).toBe("text/plain");
    expect(h.getAll("set-cookie")).toEqual(["a=1", "b=2"]);
  });

  test("from another Headers: a copy, not a shared list", () => {
    const a = new Headers({ A: "1" });
    const b = new Headers(a);
    b.append("A", "2");
    expect(a.getAll("a")).toEqual(["1"]);
    expect(b.getAll("a")).toEqual(["1", "2"]);
  });

  test("no argument, undefined and null give empty headers", () => {
    expect(new Headers().size).toBe(0);
    expect(new Headers(undefined).size).toBe(0);
    expect(toHeaders(null).size).toBe(0);
    expect(toHeaders(undefined).size).toBe(0);
  });

  test("toHeaders returns the same Headers, or builds one", () => {
    const h = new Headers({ A: "1" });
    expect(toHeaders(h)).toBe(h);
    const built = toHeaders({ B: "2" });
    expect(built).toBeInstanceOf(Headers);
    expect(built.get("b")).toBe("2");
  });

  test("fromTrusted with skipPseudo leaves out HTTP/2 pseudo-headers, wherever they are", () => {
    const raw = [
      ":status",
      "200",
      "Content-Type",
      "text/plain",
      ":odd",
      "x",
      "set-cookie",
      "a",
      "set-cookie",
      "b",
    ];
    const h = Headers.fromTrusted(raw, true);
    expect([...h]).toEqual([
      ["Content-Type", "text/plain"],
      ["set-cookie", "a"],
      ["set-cookie", "b"],
    ]);
    expect(h.get("content-type")).toBe("text/plain");
    expect(Headers.fromTrusted(raw).size).toBe(5);
    expect(Headers.fromTrusted([]).size).toBe(0);
  });

  test("fromTrusted builds from a flat list without validating", () => {
    const h = Headers.fromTrusted(["Host", "example.com", "X-Raw", "a", "x-raw", "b"]);
    expect(h.get("host")).toBe("example.com");
    expect(h.getAll("X-RAW")).toEqual(["a", "b"]);
  });
});

describe("HTTP.jl helpers", () => {
  test("header returns the first value, or the fallback (default empty string)", () => {
    const req = new Request("GET", "/", {
      headers: [
        ["Accept", "a"],
        ["accept", "b"],
      ],
    });
    expect(header(req, "ACCEPT")).toBe("a");
    expect(header(req, "missing")).toBe("");
    expect(header(req, "missing", "dflt")).toBe("dflt");
    expect(header(req.headers, "accept")).toBe("a");
  });

  test("hasHeader with two arguments is true only when the first value is non-empty", () => {
    const h = new Headers([
      ["Empty", ""],
      ["Full", "x"],
    ]);
    expect(hasHeader(h, "full")).toBe(true);
    expect(hasHeader(h, "empty")).toBe(false);
    expect(hasHeader(h, "missing")).toBe(false);
  });

  test("hasHeader with a value compares every value, ASCII case-insensitively", () => {
    const res = new Response(200, {
      headers: [
        ["Vary", "Accept"],
        ["vary", "Origin"],
      ],
    });
    expect(hasHeader(res, "vary", "origin")).toBe(true);
    expect(hasHeader(res, "VARY", "ACCEPT")).toBe(true);
    expect(hasHeader(res, "vary", "cookie")).toBe(false);
    expect(hasHeader(res, "vary", "acc")).toBe(false);
  });

  test("headerContains splits on commas, trims and ignores case", () => {
    const h = new Headers([
      ["Connection", "keep-alive ,\tUpgrade"],
      ["connection", "CLOSE"],
    ]);
    expect(headerContains(h, "connection", "upgrade")).toBe(true);
    expect(headerContains(h, "Connection", "close")).toBe(true);
    expect(headerContains(h, "Connection", "keep-alive")).toBe(true);
    expect(headerContains(h, "Connection", "keep")).toBe(false);
    expect(headerContains(h, "Missing", "close")).toBe(false);
  });

  test("setHeader replaces all values of a message's header", () => {
    const req = new Request("GET", "/", {
      headers: [
        ["A", "1"],
        ["a", "2"],
      ],
    });
    setHeader(req, "a", "3");
    expect(req.headers.getAll("A")).toEqual(["3"]);
  });

  test("appendHeader joins with the last entry of the same name, with a comma and no space", () => {
    const h = new Headers();
    appendHeader(h, "Accept", "a");
    appendHeader(h, "accept", "b");
    expect([...h]).toEqual([["Accept", "a,b"]]);
    appendHeader(h, "Other", "x");
    appendHeader(h, "Accept", "c");
    expect([...h]).toEqual([
      ["Accept", "a,b"],
      ["Other", "x"],
      ["Accept", "c"],
    ]);
  });

  test("appendHeader never joins Set-Cookie", () => {
    const res = new Response(200);
    appendHeader(res, "Set-Cookie", "a=1");
    appendHeader(res, "set-cookie", "b=2");
    expect(res.headers.getAll("set-cookie")).toEqual(["a=1", "b=2"]);
  });

  test("removeHeader removes every value", () => {
    const h = new Headers([
      ["A", "1"],
      ["B", "2"],
      ["a", "3"],
    ]);
    removeHeader(h, "A");
    expect([...h]).toEqual([["B", "2"]]);
    removeHeader(h, "absent");
    expect(h.size).toBe(1);
  });

  test("defaultHeader sets only when absent (an empty value counts as present)", () => {
    const h = new Headers({ "User-Agent": "mine", Empty: "" });
    defaultHeader(h, "user-agent", "default");
    defaultHeader(h, "empty", "filled");
    defaultHeader(h, "Accept", "*/*");
    expect(h.getAll("user-agent")).toEqual(["mine"]);
    expect(h.get("empty")).toBe("");
    expect(h.get("accept")).toBe("*/*");
  });

  test("canonicalHeaderKey upper-cases the first letter and each after '-', lower-cases the rest", () => {
    expect(canonicalHeaderKey("x-foo-BAR")).toBe("X-Foo-Bar");
    expect(canonicalHeaderKey("CONTENT-TYPE")).toBe("Content-Type");
    expect(canonicalHeaderKey("www-authenticate")).toBe("Www-Authenticate");
    expect(canonicalHeaderKey("a--b")).toBe("A--B");
    expect(canonicalHeaderKey("")).toBe("");
    // Does not validate.
    expect(canonicalHeaderKey("bad name")).toBe("Bad name");
  });

  test("isToken accepts RFC 9110 tokens only", () => {
    for (const ok of ["a", "Content-Type", "X_Y", "!#$%&'*+-.^_`|~", "0"]) expect(isToken(ok)).toBe(true);
    for (const bad of ["", "a b", "a:b", "a\tb", "(x)", "a/b", "é", "a\r\n", '"q"', "a,b", "{}", "\u0100"]) {
      expect(isToken(bad)).toBe(false);
    }
  });
});
