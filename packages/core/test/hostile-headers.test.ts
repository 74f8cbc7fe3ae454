import { describe, expect, test } from "vitest";
import {
  appendHeader,
  defaultHeader,
  Headers,
  HTTPError,
  ProtocolError,
  Request,
  Response,
  setHeader,
  validateHeader,
} from "../src/index.js";

/** Runs `fn`, which must throw a ProtocolError with code HW_INVALID_HEADER; returns it. */
function invalidHeader(fn: () => unknown): ProtocolError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  expect(caught).toBeInstanceOf(HTTPError);
  expect((caught as ProtocolError).code).toBe("HW_INVALID_HEADER");
  return caught as ProtocolError;
}

const badValues: [string, string][] = [
  ["CR", "a\rb"],
  ["LF", "a\nb"],
  ["CRLF + Set-Cookie", "x\r\nSet-Cookie: session=evil"],
  ["CRLF + a second head", "x\r\n\r\nHTTP/1.1 200 OK\r\n"],
  ["a trailing CRLF", "x\r\n"],
  ["a leading LF", "\nx"],
  ["only CRLF", "\r\n"],
  ["NUL", "a\0b"],
  ["a trailing NUL", "ab\0"],
  ["BEL (0x07)", "a\x07b"],
  ["ESC (0x1b)", "a\x1bb"],
  ["vertical tab", "a\vb"],
  ["form feed", "a\fb"],
  ["0x1f", "a\x1fb"],
  ["DEL (0x7f)", "a\x7fb"],
  ["U+0100", "a\u0100b"],
  ["U+2028 line separator", "a\u2028b"],
  ["an emoji (surrogate pair)", "ok 😀"],
  ["a lone surrogate", "a\ud800"],
  ["U+FEFF", "\ufeffx"],
];

const badNames: [string, string][] = [
  ["empty", ""],
  ["a space", "X Header"],
  ["a colon", "X-Header:"],
  ["a colon inside", "Host:evil"],
  ["CRLF", "X-A\r\nX-B"],
  ["NUL", "X\0"],
  ["a tab", "X\tY"],
  ["unicode", "X-Ünicode"],
  ["non-Latin unicode", "Заголовок"],
  ["a slash", "a/b"],
  ["quotes", '"X"'],
  ["DEL", "X\x7f"],
];

describe("hostile header values are refused, never rewritten", () => {
  test.each(badValues)("%s via the constructor (object, pairs, Map)", (_what, value) => {
    invalidHeader(() => new Headers({ "X-Test": value }));
    invalidHeader(() => new Headers([["X-Test", value]]));
    invalidHeader(() => new Headers(new Map([["X-Test", value]])));
    invalidHeader(() => new Headers({ "X-Test": ["ok", value] }));
  });

  test.each(badValues)("%s via set, append, setHeader, appendHeader, defaultHeader", (_what, value) => {
    const h = new Headers();
    invalidHeader(() => h.set("X-Test", value));
    invalidHeader(() => h.append("X-Test", value));
    invalidHeader(() => h.appendJoined("X-Test", value));
    invalidHeader(() => setHeader(h, "X-Test", value));
    invalidHeader(() => appendHeader(h, "X-Test", value));
    invalidHeader(() => defaultHeader(h, "X-Test", value));
    invalidHeader(() => validateHeader("X-Test", value));
    expect(h.size).toBe(0);
  });

  test.each(badValues)("%s via Request and Response init", (_what, value) => {
    invalidHeader(() => new Request("GET", "/", { headers: { "X-Test": value } }));
    invalidHeader(() => new Response(200, { headers: { "X-Test": value } }));
    invalidHeader(() => new Response(200, { trailers: { "X-Test": value } }));
  });

  test("the message names the problem and does not echo the raw value", () => {
    const err = invalidHeader(() => new Headers().set("X-Test", "x\r\nSet-Cookie: evil=1"));
    expect(err.message).toContain("CR");
    expect(err.message).toContain("X-Test");
    expect(err.message).not.toContain("\r");
    expect(err.message).not.toContain("\n");
  });

  test("a tab inside a value is allowed (HTAB is legal field content)", () => {
    const h = new Headers();
    h.set("X-Test", "a\tb");
    expect(h.get("x-test")).toBe("a\tb");
  });
});

describe("hostile header names are refused", () => {
  test.each(badNames)("a name with %s", (_what, name) => {
    const h = new Headers();
    invalidHeader(() => h.set(name, "v"));
    invalidHeader(() => h.append(name, "v"));
    invalidHeader(() => setHeader(h, name, "v"));
    invalidHeader(() => appendHeader(h, name, "v"));
    invalidHeader(() => new Headers({ [name]: "v" }));
    invalidHeader(() => new Headers([[name, "v"]]));
    expect(h.size).toBe(0);
  });
});

describe("a rejected change leaves the headers as they were", () => {
  function sample(): Headers {
    return new Headers([
      ["X-Multi", "1"],
      ["Other", "o"],
      ["x-multi", "2"],
    ]);
  }

  test("set with a bad value keeps every existing value", () => {
    const h = sample();
    const before = [...h];
    invalidHeader(() => h.set("X-Multi", "3\r\nInjected: 1"));
    invalidHeader(() => setHeader(h, "x-multi", "\0"));
    expect([...h]).toEqual(before);
  });

  test("set with a bad name changes nothing", () => {
    const h = sample();
    const before = [...h];
    invalidHeader(() => h.set("X-Multi ", "3"));
    expect([...h]).toEqual(before);
  });

  test("append and appendHeader with a bad value change nothing", () => {
    const h = sample();
    const before = [...h];
    invalidHeader(() => h.append("X-Multi", "a\nb"));
    invalidHeader(() => appendHeader(h, "x-multi", "a\nb"));
    expect([...h]).toEqual(before);
    expect(h.size).toBe(3);
  });

  test("a constructor that fails part way does not leak into its source", () => {
    const source = new Map([
      ["Good", "1"],
      ["Bad", "x\r\ny"],
    ]);
    invalidHeader(() => new Headers(source));
    expect([...source.keys()]).toEqual(["Good", "Bad"]);
  });
});

describe("prototype-looking names are ordinary headers", () => {
  test("__proto__ and constructor do not pollute Object.prototype", () => {
    const init = JSON.parse('{"__proto__": "x", "constructor": "y"}') as Record<string, string>;
    const h = new Headers(init);
    expect(h.get("__proto__")).toBe("x");
    expect(h.get("constructor")).toBe("y");
    const o = h.toObject();
    expect(Object.getPrototypeOf(o)).toBeNull();
    expect(Object.hasOwn(o, "__proto__")).toBe(true);
    expect(Object.getOwnPropertyDescriptor(o, "__proto__")?.value).toBe("x");
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect({}.constructor).toBe(Object);
  });
});

describe("large header lists", () => {
  test("100 000 entries can be added, looked up, exported and deleted", () => {
    const h = new Headers();
    for (let i = 0; i < 100_000; i++) h.append(`X-H-${i % 1000}`, `v${i}`);
    expect(h.size).toBe(100_000);
    expect(h.get("x-h-999")).toBe("v999");
    expect(h.getAll("X-H-0")).toHaveLength(100);
    expect(h.toFlat()).toHaveLength(200_000);
    expect(Object.keys(h.toObject())).toHaveLength(1000);
    expect(h.delete("x-h-5")).toBe(true);
    expect(h.size).toBe(99_900);
    h.set("X-H-6", "one");
    expect(h.getAll("x-h-6")).toEqual(["one"]);
    expect(h.size).toBe(99_801);
  });

  test("a 1 MB value and 10 000 distinct names from an object are accepted", () => {
    const big = "a".repeat(1024 * 1024);
    const init: Record<string, string> = {};
    for (let i = 0; i < 10_000; i++) init[`N${i}`] = String(i);
    init["X-Big"] = big;
    const h = new Headers(init);
    expect(h.size).toBe(10_001);
    expect(h.get("x-big")).toHaveLength(big.length);
    expect(h.get("n9999")).toBe("9999");
  });
});
