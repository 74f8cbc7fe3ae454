import { describe, expect, test } from "vitest";
import {
  ArgumentError,
  CanceledError,
  fromWebRequest,
  fromWebResponse,
  Headers,
  ParseError,
  Request,
  RequestContext,
  Response,
  readBody,
  toBody,
  toWebRequest,
  toWebResponse,
} from "../src/index.js";

const enc = new TextEncoder();

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield enc.encode(p);
}

function text(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

describe("Request", () => {
  test("fields and defaults", () => {
    const req = new Request("post", "/items?x=1");
    expect(req.method).toBe("POST");
    expect(req.target).toBe("/items?x=1");
    expect(req.headers).toBeInstanceOf(Headers);
    expect(req.headers.size).toBe(0);
    expect(req.trailers.size).toBe(0);
    expect(req.body).toBeInstanceOf(Uint8Array);
    expect((req.body as Uint8Array).byteLength).toBe(0);
    expect(req.version).toBe("1.1");
    expect(req.url).toBeUndefined();
    expect(req.context).toBeInstanceOf(RequestContext);
    expect(req.signal).toBe(req.context.signal);
    expect(req.signal.aborted).toBe(false);
  });

  test("init fields are kept; a given Headers is used as it is", () => {
    const headers = new Headers({ "Content-Type": "application/json" });
    const context = new RequestContext();
    const req = new Request("PUT", "/a", {
      headers,
      body: '{"a":1}',
      trailers: { "X-Checksum": "abc" },
      context,
      version: "2",
      url: "http://example.com/a",
    });
    expect(req.headers).toBe(headers);
    expect(req.trailers.get("x-checksum")).toBe("abc");
    expect(req.context).toBe(context);
    expect(req.version).toBe("2");
    expect(req.url).toBe("http://example.com/a");
    expect(req.json()).toEqual({ a: 1 });
  });

  test("an empty method or target is an ArgumentError", () => {
    expect(() => new Request("", "/")).toThrow(ArgumentError);
    expect(() => new Request("GET", "")).toThrow(ArgumentError);
  });

  test("text() decodes UTF-8 and json() parses", () => {
    const req = new Request("POST", "/", { body: '{"name":"café","n":[1,2]}' });
    expect(req.text()).toBe('{"name":"café","n":[1,2]}');
    expect(req.json<{ name: string; n: number[] }>()).toEqual({ name: "café", n: [1, 2] });
  });

  test("json() of invalid JSON is a ParseError with the SyntaxError as cause", () => {
    const req = new Request("POST", "/", { body: "{not json" });
    let caught: unknown;
    try {
      req.json();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ParseError);
    expect((caught as ParseError).code).toBe("HW_PARSE");
    expect((caught as ParseError).cause).toBeInstanceOf(SyntaxError);
    expect(() => new Request("POST", "/").json()).toThrow(ParseError);
  });

  test("text() and json() of a streamed body are an ArgumentError", () => {
    const req = new Request("POST", "/", { body: chunks("a") });
    expect(() => req.text()).toThrow(ArgumentError);
    expect(() => req.json()).toThrow(ArgumentError);
  });

  test("cancelling the context aborts the request's signal", () => {
    const req = new Request("GET", "/");
    req.context.cancel("stop");
    expect(req.signal.aborted).toBe(true);
    expect(req.signal.reason).toBeInstanceOf(CanceledError);
  });
});

describe("Response", () => {
  test("fields and defaults", () => {
    const res = new Response(404);
    expect(res.status).toBe(404);
    expect(res.reason).toBe("");
    expect(res.ok).toBe(false);
    expect(res.version).toBe("1.1");
    expect(res.url).toBeUndefined();
    expect(res.request).toBeUndefined();
    expect(res.previous).toBeUndefined();
    expect(res.redirectCount).toBe(0);
    expect(res.text()).toBe("");
  });

  test("ok is true for 2xx only", () => {
    expect(new Response(200).ok).toBe(true);
    expect(new Response(299).ok).toBe(true);
    expect(new Response(199).ok).toBe(false);
    expect(new Response(300).ok).toBe(false);
  });

  test("init fields", () => {
    const res = new Response(201, {
      headers: [["Location", "/x"]],
      body: "made",
      reason: "Made It",
      trailers: { "X-T": "1" },
      version: "2",
    });
    expect(res.headers.get("location")).toBe("/x");
    expect(res.text()).toBe("made");
    expect(res.reason).toBe("Made It");
    expect(res.trailers.get("x-t")).toBe("1");
    expect(res.hasTrailers).toBe(true);
    expect(res.version).toBe("2");
  });

  test("a reason phrase with a control character is an ArgumentError", () => {
    for (const bad of ["O\r\nX-Injected: 1", "a\nb", "nul\u0000", "bell\u0007", "del\u007f"]) {
      expect(() => new Response(200, { reason: bad })).toThrow(ArgumentError);
    }
    expect(new Response(200, { reason: "Très Bien\tOK" }).reason).toBe("Très Bien\tOK");
  });

  test("status must be an integer from 100 to 999", () => {
    for (const bad of [99, 1000, 0, -1, 200.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new Response(bad)).toThrow(ArgumentError);
    }
    expect(new Response(100).status).toBe(100);
    expect(new Response(999).status).toBe(999);
  });

  test("json() parses; invalid JSON is a ParseError", () => {
    expect(new Response(200, { body: "[1,2,3]" }).json()).toEqual([1, 2, 3]);
    expect(() => new Response(200, { body: "nope" }).json()).toThrow(ParseError);
  });

  test("text() of a streamed body is an ArgumentError", () => {
    expect(() => new Response(200, { body: chunks("x") }).text()).toThrow(ArgumentError);
  });

  test("a string body is kept as given until body is read; body is its UTF-8 bytes", () => {
    const res = new Response(200, { body: "héllo €" });
    expect(res.bodyText).toBe("héllo €");
    const bytes = res.body as Uint8Array;
    expect(Buffer.from(bytes).equals(Buffer.from("héllo €", "utf8"))).toBe(true);
    // Read once: the bytes are what the response holds from now on (a caller may change them).
    expect(res.bodyText).toBeUndefined();
    expect(res.body).toBe(bytes);
    expect(res.text()).toBe("héllo €");
  });

  test("assigning body replaces a string body", () => {
    const res = new Response(200, { body: "old" });
    res.body = enc.encode("new");
    expect(res.bodyText).toBeUndefined();
    expect(res.text()).toBe("new");
    expect(new Response(200, { body: enc.encode("bytes") }).bodyText).toBeUndefined();
  });

  test("text() of a string body decodes as the UTF-8 bytes would", () => {
    for (const given of ["plain", "", "a\ud800b", "\udc00", "\ufeffwith BOM", "x\ufeff"]) {
      const fromString = new Response(200, { body: given }).text();
      const fromBytes = new Response(200, { body: Buffer.from(given, "utf8") }).text();
      expect(fromString).toBe(fromBytes);
    }
  });

  test("trailers start empty and can be set", () => {
    const res = new Response(200);
    expect(res.trailers.size).toBe(0);
    res.trailers.append("X-Sum", "1");
    expect(res.trailers.get("x-sum")).toBe("1");
    const t = new Headers({ A: "1" });
    res.trailers = t;
    expect(res.trailers).toBe(t);
  });

  test("util.inspect shows the body and the fields", async () => {
    const { inspect } = await import("node:util");
    const shown = inspect(new Response(201, { body: "hi", headers: { "X-A": "1" } }));
    expect(shown).toContain("status: 201");
    expect(shown).toContain("body:");
    expect(shown).toContain("68 69");
    expect(shown).toContain("X-A");
  });
});

describe("bodies", () => {
  test("a string becomes UTF-8 bytes", () => {
    const body = toBody("é€");
    expect(body).toBeInstanceOf(Uint8Array);
    expect([...(body as Uint8Array)]).toEqual([0xc3, 0xa9, 0xe2, 0x82, 0xac]);
  });

  test("bytes are kept as the same object", () => {
    const bytes = new Uint8Array([1, 2, 3]);
    expect(toBody(bytes)).toBe(bytes);
    expect(new Request("POST", "/", { body: bytes }).body).toBe(bytes);
  });

  test("an ArrayBuffer becomes a view of it", () => {
    const ab = new Uint8Array([9, 8]).buffer;
    const body = toBody(ab) as Uint8Array;
    expect(body).toBeInstanceOf(Uint8Array);
    expect(body.buffer).toBe(ab);
    expect([...body]).toEqual([9, 8]);
  });

  test("null and undefined give empty bytes", () => {
    expect((toBody(null) as Uint8Array).byteLength).toBe(0);
    expect((toBody(undefined) as Uint8Array).byteLength).toBe(0);
  });

  test("an async iterable is kept for streaming", () => {
    const it = chunks("a", "b");
    expect(toBody(it)).toBe(it);
  });

  test("anything else is an ArgumentError", () => {
    expect(() => toBody(42 as unknown as string)).toThrow(ArgumentError);
    expect(() => toBody({} as unknown as string)).toThrow(ArgumentError);
  });

  test("readBody concatenates a stream and returns bytes as they are", async () => {
    expect(text(await readBody(chunks("he", "ll", "o")))).toBe("hello");
    expect(text(await readBody(chunks("one")))).toBe("one");
    expect((await readBody(chunks())).byteLength).toBe(0);
    const bytes = enc.encode("x");
    expect(await readBody(bytes)).toBe(bytes);
  });

  test("readBody enforces its limit", async () => {
    await expect(readBody(chunks("abc", "def"), 5)).rejects.toThrow(ArgumentError);
    expect(text(await readBody(chunks("abc", "de"), 5))).toBe("abcde");
  });
});

describe("WHATWG conversion", () => {
  test("toWebRequest: method, URL from the target and base, headers, body", async () => {
    const req = new Request("POST", "/items?q=1", {
      headers: [
        ["Content-Type", "text/plain"],
        ["X-Multi", "a"],
        ["X-Multi", "b"],
      ],
      body: "payload",
    });
    const web = toWebRequest(req, "http://example.com:8080");
    expect(web).toBeInstanceOf(globalThis.Request);
    expect(web.method).toBe("POST");
    expect(web.url).toBe("http://example.com:8080/items?q=1");
    expect(web.headers.get("content-type")).toBe("text/plain");
    expect(web.headers.get("x-multi")).toBe("a, b");
    expect(await web.text()).toBe("payload");
  });

  test("toWebRequest prefers the request's url and defaults the base to http://localhost", () => {
    const withUrl = new Request("GET", "/p", { url: "https://api.example/p" });
    expect(toWebRequest(withUrl, "http://ignored").url).toBe("https://api.example/p");
    expect(toWebRequest(new Request("GET", "/x")).url).toBe("http://localhost/x");
  });

  test("toWebRequest sends no body for GET and HEAD", () => {
    for (const method of ["GET", "HEAD"]) {
      const web = toWebRequest(new Request(method, "/", { body: "ignored" }));
      expect(web.body).toBeNull();
    }
    expect(toWebRequest(new Request("POST", "/")).body).toBeNull();
  });

  test("toWebRequest streams an async-iterable body", async () => {
    const web = toWebRequest(new Request("PUT", "/", { body: chunks("a", "b", "c") }));
    expect(await web.text()).toBe("abc");
  });

  test("toWebRequest's signal follows the request's context", () => {
    const req = new Request("GET", "/");
    const web = toWebRequest(req);
    expect(web.signal.aborted).toBe(false);
    req.context.cancel("bye");
    expect(web.signal.aborted).toBe(true);
    expect(web.signal.reason).toBeInstanceOf(CanceledError);
  });

  test("fromWebRequest: origin-form target, url, headers, streamed body", async () => {
    const web = new globalThis.Request("http://example.com/a/b?x=1&y=2", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Id": "7" },
      body: '{"ok":true}',
    });
    const req = fromWebRequest(web);
    expect(req.method).toBe("POST");
    expect(req.target).toBe("/a/b?x=1&y=2");
    expect(req.url).toBe("http://example.com/a/b?x=1&y=2");
    expect(req.headers.get("x-id")).toBe("7");
    expect(req.body).not.toBeInstanceOf(Uint8Array);
    expect(JSON.parse(text(await readBody(req.body)))).toEqual({ ok: true });
  });

  test("fromWebRequest without a body gives empty bytes", () => {
    const req = fromWebRequest(new globalThis.Request("http://example.com/"));
    expect(req.body).toBeInstanceOf(Uint8Array);
    expect(req.text()).toBe("");
  });

  test("fromWebRequest: aborting the WHATWG signal cancels the context", () => {
    const ac = new AbortController();
    const req = fromWebRequest(new globalThis.Request("http://example.com/", { signal: ac.signal }));
    expect(req.context.canceled).toBe(false);
    ac.abort(new Error("client went away"));
    expect(req.context.canceled).toBe(true);
    expect(req.signal.reason).toBeInstanceOf(CanceledError);
    expect((req.signal.reason as CanceledError).message).toBe("client went away");
  });

  test("Request round trip through WHATWG keeps method, target, headers and body", async () => {
    const req = new Request("PATCH", "/r?a=1", {
      headers: { "X-A": "1", Accept: "text/plain" },
      body: "data",
      url: "http://h.example/r?a=1",
    });
    const back = fromWebRequest(toWebRequest(req));
    expect(back.method).toBe("PATCH");
    expect(back.target).toBe("/r?a=1");
    expect(back.url).toBe("http://h.example/r?a=1");
    expect(back.headers.get("x-a")).toBe("1");
    expect(back.headers.get("accept")).toBe("text/plain");
    expect(text(await readBody(back.body))).toBe("data");
  });

  test("toWebResponse: status, reason, headers (Set-Cookie kept apart), body", async () => {
    const res = new Response(201, {
      reason: "Created!",
      headers: [
        ["Content-Type", "text/plain"],
        ["Set-Cookie", "a=1"],
        ["Set-Cookie", "b=2"],
      ],
      body: "hi",
    });
    const web = toWebResponse(res);
    expect(web.status).toBe(201);
    expect(web.statusText).toBe("Created!");
    expect(web.headers.get("content-type")).toBe("text/plain");
    expect(web.headers.getSetCookie()).toEqual(["a=1", "b=2"]);
    expect(await web.text()).toBe("hi");
  });

  test("toWebResponse streams an async-iterable body", async () => {
    const web = toWebResponse(new Response(200, { body: chunks("x", "y") }));
    expect(await web.text()).toBe("xy");
  });

  test("toWebResponse drops the body of 204 and 304 and does not throw for 1xx", () => {
    for (const status of [204, 304]) {
      const web = toWebResponse(new Response(status, { body: "should not be sent" }));
      expect(web.status).toBe(status);
      expect(web.body).toBeNull();
    }
    for (const status of [100, 101, 103]) {
      const web = toWebResponse(new Response(status, { body: "nope" }));
      expect(web.body).toBeNull();
    }
    expect(toWebResponse(new Response(200)).body).toBeNull();
  });

  test("fromWebResponse: status, reason, headers, every Set-Cookie, streamed body", async () => {
    const headers = new globalThis.Headers();
    headers.append("Content-Type", "text/html");
    headers.append("Set-Cookie", "a=1; Path=/");
    headers.append("Set-Cookie", "b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT");
    const web = new globalThis.Response("<p>x</p>", { status: 418, statusText: "Teapot", headers });
    const res = fromWebResponse(web);
    expect(res.status).toBe(418);
    expect(res.reason).toBe("Teapot");
    expect(res.headers.get("content-type")).toBe("text/html");
    expect(res.headers.getAll("set-cookie")).toEqual([
      "a=1; Path=/",
      "b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
    ]);
    expect(res.url).toBeUndefined();
    expect(text(await readBody(res.body))).toBe("<p>x</p>");
  });

  test("fromWebResponse of a bodiless response gives empty bytes", () => {
    const res = fromWebResponse(new globalThis.Response(null, { status: 204 }));
    expect(res.status).toBe(204);
    expect(res.body).toBeInstanceOf(Uint8Array);
    expect(res.text()).toBe("");
  });

  test("Response round trip through WHATWG", async () => {
    const res = new Response(202, {
      reason: "Accepted",
      headers: [
        ["X-A", "1"],
        ["Set-Cookie", "s=1"],
        ["Set-Cookie", "t=2"],
      ],
      body: "done",
    });
    const back = fromWebResponse(toWebResponse(res));
    expect(back.status).toBe(202);
    expect(back.reason).toBe("Accepted");
    expect(back.headers.get("x-a")).toBe("1");
    expect(back.headers.getAll("set-cookie")).toEqual(["s=1", "t=2"]);
    expect(text(await readBody(back.body))).toBe("done");
  });
});

describe("toWebResponse limits", () => {
  test("a status outside 200-599 cannot become a WHATWG Response: ArgumentError", () => {
    expect(() => toWebResponse(new Response(600))).toThrow(ArgumentError);
  });
});

describe("Response.hasTrailers", () => {
  test("is false without trailers, and asking makes none", () => {
    const res = new Response(200, { body: "x" });
    expect(res.hasTrailers).toBe(false);
    res.trailers.append("X-Sum", "1");
    expect(res.hasTrailers).toBe(true);
    expect(new Response(200, { trailers: new Headers() }).hasTrailers).toBe(false);
  });
});
