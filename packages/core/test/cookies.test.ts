import { execFile } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import {
  ArgumentError,
  addCookie,
  Cookie,
  cookies,
  Headers,
  Request,
  Response,
  stringifyCookie,
  stringifyCookies,
} from "../src/index.js";

// Every field of the model, for comparing two cookies completely (`equals` compares only the identity).
function fields(c: Cookie) {
  return {
    name: c.name,
    value: c.value,
    path: c.path,
    domain: c.domain,
    expires: c.expires?.getTime(),
    maxAge: c.maxAge,
    secure: c.secure,
    httpOnly: c.httpOnly,
    sameSite: c.sameSite,
  };
}

function responseWith(...setCookies: string[]): Response {
  const res = new Response(200);
  for (const v of setCookies) res.headers.append("Set-Cookie", v);
  return res;
}

function parseOne(setCookie: string): Cookie {
  const [c, ...rest] = cookies(responseWith(setCookie));
  expect(rest).toEqual([]);
  expect(c).toBeInstanceOf(Cookie);
  return c!;
}

describe("Cookie", () => {
  test("defaults: no attributes, not secure, not httpOnly", () => {
    const c = new Cookie("a", "1");
    expect(fields(c)).toEqual({
      name: "a",
      value: "1",
      path: undefined,
      domain: undefined,
      expires: undefined,
      maxAge: undefined,
      secure: false,
      httpOnly: false,
      sameSite: undefined,
    });
    expect(c.toString()).toBe("a=1");
    expect(c.toString(true)).toBe("a=1");
  });

  test.each(["", "a b", "a;b", "a=b", "a,b", "a\r\nb", "a\tb", 'a"b', "a(b)", "é", "a\0"])(
    "name %j is refused with ArgumentError",
    (name) => {
      expect(() => new Cookie(name, "v")).toThrow(ArgumentError);
      const c = new Cookie("ok", "v");
      expect(() => {
        c.name = name;
      }).toThrow(ArgumentError);
      expect(c.name).toBe("ok");
    },
  );

  test.each(["a;b", "a\r\nb", "a\nb", "a\rb", 'a"b', "a\\b", "a\0b", "a\x7fb", "é", "a\tb"])(
    "value %j is refused with ArgumentError",
    (value) => {
      expect(() => new Cookie("n", value)).toThrow(ArgumentError);
      const c = new Cookie("n", "ok");
      expect(() => {
        c.value = value;
      }).toThrow(ArgumentError);
      expect(c.value).toBe("ok");
    },
  );

  test("bad typed attributes are refused with ArgumentError", () => {
    expect(() => new Cookie("a", "1", { expires: new Date(Number.NaN) })).toThrow(ArgumentError);
    expect(() => new Cookie("a", "1", { maxAge: 1.5 })).toThrow(ArgumentError);
    expect(() => new Cookie("a", "1", { maxAge: Number.POSITIVE_INFINITY })).toThrow(ArgumentError);
    expect(() => new Cookie("a", "1", { sameSite: "default" as unknown as "lax" })).toThrow(ArgumentError);
  });

  test("equals compares name, path and domain only", () => {
    const a = new Cookie("s", "1", { path: "/", domain: "example.com", secure: true, maxAge: 5 });
    expect(a.equals(new Cookie("s", "2", { path: "/", domain: "example.com" }))).toBe(true);
    expect(a.equals(new Cookie("t", "1", { path: "/", domain: "example.com" }))).toBe(false);
    expect(a.equals(new Cookie("s", "1", { path: "/x", domain: "example.com" }))).toBe(false);
    expect(a.equals(new Cookie("s", "1", { path: "/", domain: "example.org" }))).toBe(false);
    expect(a.equals(new Cookie("s", "1", { path: "/" }))).toBe(false);
    // An absent path or domain is the same as an empty one (HTTP.jl stores "" for both).
    expect(new Cookie("s", "1").equals(new Cookie("s", "9", { path: "", domain: "" }))).toBe(true);
  });
});

describe("stringifyCookie", () => {
  test("Set-Cookie form writes every attribute in order", () => {
    const c = new Cookie("id", "a3fWa", {
      path: "/docs",
      domain: "example.com",
      expires: new Date(Date.UTC(2015, 9, 21, 7, 28, 0)),
      maxAge: 3600,
      secure: true,
      httpOnly: true,
      sameSite: "strict",
    });
    expect(stringifyCookie(c, false)).toBe(
      "id=a3fWa; Path=/docs; Domain=example.com; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Max-Age=3600; HttpOnly; Secure; SameSite=Strict",
    );
    expect(c.toString()).toBe(stringifyCookie(c, false));
    expect(stringifyCookie(c)).toBe("id=a3fWa");
  });

  test("SameSite values are written Strict, Lax, None", () => {
    expect(new Cookie("a", "1", { sameSite: "lax" }).toString()).toBe("a=1; SameSite=Lax");
    expect(new Cookie("a", "1", { sameSite: "none", secure: true }).toString()).toBe(
      "a=1; Secure; SameSite=None",
    );
  });

  test("values with a space or a comma are quoted", () => {
    expect(stringifyCookie(new Cookie("a", "x y"))).toBe('a="x y"');
    expect(stringifyCookie(new Cookie("a", "x,y"))).toBe('a="x,y"');
    expect(stringifyCookie(new Cookie("a", " lead"))).toBe('a=" lead"');
    expect(stringifyCookie(new Cookie("a", "plain=value/+"))).toBe("a=plain=value/+");
    expect(stringifyCookie(new Cookie("a", ""))).toBe("a=");
  });

  test("Max-Age <= 0 means delete now and is written Max-Age=0", () => {
    expect(new Cookie("a", "", { maxAge: 0 }).toString()).toBe("a=; Max-Age=0");
    expect(new Cookie("a", "", { maxAge: -1 }).toString()).toBe("a=; Max-Age=0");
    expect(new Cookie("a", "", { maxAge: -3600 }).toString()).toBe("a=; Max-Age=0");
  });

  test("a leading dot of the domain is not sent; an IPv4 domain is", () => {
    expect(new Cookie("a", "1", { domain: ".example.com" }).toString()).toBe("a=1; Domain=example.com");
    expect(new Cookie("a", "1", { domain: "127.0.0.1" }).toString()).toBe("a=1; Domain=127.0.0.1");
  });

  test("invalid attribute values are left out as Go does", () => {
    const c = new Cookie("a", "1");
    c.domain = "exa mple.com";
    c.expires = new Date(Date.UTC(1600, 0, 1));
    expect(c.toString()).toBe("a=1");
    c.domain = "::1";
    c.expires = new Date(Number.NaN);
    c.maxAge = 1.5;
    c.sameSite = "sometimes" as unknown as "lax";
    expect(c.toString()).toBe("a=1");
    c.domain = "-bad.example";
    expect(c.toString()).toBe("a=1");
    // Bytes a path may not hold are removed, not the whole attribute.
    c.domain = undefined;
    c.path = "/a;b\x7f\u00e9c";
    expect(c.toString()).toBe("a=1; Path=/abc");
  });

  test("stringifyCookies joins request pairs with '; '", () => {
    expect(stringifyCookies([new Cookie("a", "1", { path: "/" }), new Cookie("b", "x y")])).toBe(
      'a=1; b="x y"',
    );
    expect(stringifyCookies([])).toBe("");
  });
});

describe("cookies(response)", () => {
  test("round trip: parse(stringify(c)) has every attribute of c", () => {
    const samples = [
      new Cookie("a", "1"),
      new Cookie("b", "x y,z", { path: "/p/q" }),
      new Cookie("c", "", { domain: "example.com" }),
      new Cookie("d", "v", { expires: new Date(Date.UTC(2031, 1, 28, 23, 59, 59)) }),
      new Cookie("e", "v", { maxAge: 86400 }),
      new Cookie("f", "v", { maxAge: 0 }),
      new Cookie("g", "v", { secure: true }),
      new Cookie("h", "v", { httpOnly: true }),
      new Cookie("i", "v", { sameSite: "strict" }),
      new Cookie("j", "v", { sameSite: "lax" }),
      new Cookie("k", "v", { sameSite: "none", secure: true }),
      new Cookie("__Host-all", "a=b/c", {
        path: "/",
        domain: "sub.example.org",
        expires: new Date(Date.UTC(1999, 11, 31, 0, 0, 1)),
        maxAge: 7,
        secure: true,
        httpOnly: true,
        sameSite: "lax",
      }),
    ];
    const res = new Response(200);
    for (const c of samples) addCookie(res, c);
    expect(res.headers.getAll("set-cookie")).toHaveLength(samples.length);
    const parsed = cookies(res);
    expect(parsed.map(fields)).toEqual(samples.map(fields));
    for (let i = 0; i < samples.length; i++) expect(parsed[i]!.equals(samples[i]!)).toBe(true);
  });

  test("many Set-Cookie fields give one cookie each, in order", () => {
    const lines = Array.from({ length: 50 }, (_, i) => `c${i}=v${i}; Path=/${i}`);
    const got = cookies(responseWith(...lines));
    expect(got.map((c) => [c.name, c.value, c.path])).toEqual(
      lines.map((_, i) => [`c${i}`, `v${i}`, `/${i}`]),
    );
  });

  test("attribute names are case-insensitive; unknown attributes are ignored", () => {
    const c = parseOne(
      "sid=abc; pAtH=/x; DOMAIN=Example.COM; max-AGE=10; SECURE; httponly; Priority=High; Partitioned; samesite=lax",
    );
    expect(fields(c)).toMatchObject({
      name: "sid",
      value: "abc",
      path: "/x",
      domain: "example.com",
      maxAge: 10,
      secure: true,
      httpOnly: true,
      sameSite: "lax",
    });
  });

  test.each([
    ["Strict", "strict"],
    ["STRICT", "strict"],
    ["lAx", "lax"],
    ["none", "none"],
    ["NONE", "none"],
    ["bogus", undefined],
    ["", undefined],
  ])("SameSite=%s reads as %s", (text, want) => {
    expect(parseOne(`a=1; SameSite=${text}`).sameSite).toBe(want);
  });

  test.each([
    ["Sun, 06 Nov 1994 08:49:37 GMT", Date.UTC(1994, 10, 6, 8, 49, 37)], // IMF-fixdate
    ["Sunday, 06-Nov-94 08:49:37 GMT", Date.UTC(1994, 10, 6, 8, 49, 37)], // RFC 850
    ["Sun Nov  6 08:49:37 1994", Date.UTC(1994, 10, 6, 8, 49, 37)], // asctime
    ["Sun, 06-Nov-1994 08:49:37 GMT", Date.UTC(1994, 10, 6, 8, 49, 37)], // Netscape
    ["Thu, 01-Jan-70 00:00:01 GMT", Date.UTC(1970, 0, 1, 0, 0, 1)],
    ["Wed, 09 Jun 21 10:18:14 GMT", Date.UTC(2021, 5, 9, 10, 18, 14)], // two-digit year below 70
    ["Fri, 31 Dec 9999 23:59:59 GMT", Date.UTC(9999, 11, 31, 23, 59, 59)],
  ])("Expires=%s is parsed", (text, want) => {
    expect(parseOne(`a=1; Expires=${text}`).expires?.getTime()).toBe(want);
  });

  test.each([
    "not a date",
    "Sun, 06 Nov 1994", // no time
    "Sun, 31 Feb 2021 08:49:37 GMT", // no such day
    "Sun, 06 Nov 1600 08:49:37 GMT", // before 1601
    "Sun, 06 Nov 1994 24:00:00 GMT",
    "Sun, 06 Foo 1994 08:49:37 GMT",
    "Sun, 123 Nov 1994 08:49:37 GMT",
  ])("Expires=%s is ignored", (text) => {
    const c = parseOne(`a=1; Expires=${text}; Path=/`);
    expect(c.expires).toBeUndefined();
    expect(c.path).toBe("/");
  });

  test.each([
    ["0", 0],
    ["-1", -1],
    ["-86400", -86400],
    ["60", 60],
    ["007", undefined],
    ["1.5", undefined],
    ["+5", undefined],
    ["", undefined],
    ["-", undefined],
    ["99999999999999999999", undefined],
  ])("Max-Age=%s reads as %s", (text, want) => {
    expect(parseOne(`a=1; Max-Age=${text}`).maxAge).toBe(want);
  });

  test("a quoted value is unquoted; a bad value or name skips the field", () => {
    expect(parseOne('a="x y"').value).toBe("x y");
    expect(parseOne(" a = 1 ; Path = /p ").value).toBe("1");
    const got = cookies(
      responseWith("noequals", "=novalue", "bad name=1", 'q="a"b"', "ok=1", "", "; Path=/"),
    );
    expect(got.map((c) => c.name)).toEqual(["ok"]);
    // A control character can only arrive from a peer (Headers refuses it from code): the parser's
    // headers are built without checks, as Node's rawHeaders are.
    const fromPeer = new Response(200, {
      headers: Headers.fromTrusted(["Set-Cookie", "x=\x01", "Set-Cookie", "y=2"]),
    });
    expect(cookies(fromPeer).map((c) => c.name)).toEqual(["y"]);
  });

  test("an attribute whose value holds a forbidden byte is ignored", () => {
    const c = parseOne('a=1; Path="/q"; Domain=example.com');
    expect(c.path).toBeUndefined();
    expect(c.domain).toBe("example.com");
  });

  test("a request's cookies() does not read Set-Cookie, a response's does not read Cookie", () => {
    const res = new Response(200, { headers: { Cookie: "a=1" } });
    expect(cookies(res)).toEqual([]);
    const req = new Request("GET", "/", { headers: { "Set-Cookie": "a=1" } });
    expect(cookies(req)).toEqual([]);
  });
});

describe("cookies(request)", () => {
  test("pairs of several Cookie headers, in order", () => {
    const req = new Request("GET", "/", {
      headers: [
        ["Cookie", "a=1; b=2"],
        ["Accept", "*/*"],
        ["cookie", 'c="x y";d=4;'],
      ],
    });
    expect(cookies(req).map((c) => [c.name, c.value])).toEqual([
      ["a", "1"],
      ["b", "2"],
      ["c", "x y"],
      ["d", "4"],
    ]);
  });

  test("malformed pairs are skipped; a bare name has an empty value", () => {
    const req = new Request("GET", "/", {
      headers: { Cookie: 'a=1; ; bad name=2; =3; q="a"b"; flag; x=\\; e=é; z=26' },
    });
    expect(cookies(req).map((c) => [c.name, c.value])).toEqual([
      ["a", "1"],
      ["flag", ""],
      ["z", "26"],
    ]);
  });

  test("request cookies carry no attributes", () => {
    const [c] = cookies(new Request("GET", "/", { headers: { Cookie: "a=1; Path=/; Secure" } }));
    expect(fields(c!)).toMatchObject({ name: "a", path: undefined, secure: false });
  });
});

describe("addCookie", () => {
  test("on a request: one Cookie field, '; '-joined, merging existing fields", () => {
    const req = new Request("GET", "/");
    addCookie(req, new Cookie("a", "1", { path: "/", secure: true }));
    expect(req.headers.getAll("cookie")).toEqual(["a=1"]);
    addCookie(req, new Cookie("b", "x y"));
    expect(req.headers.getAll("cookie")).toEqual(['a=1; b="x y"']);

    const multi = new Request("GET", "/", {
      headers: [
        ["Cookie", "p=1;"],
        ["Cookie", "q=2"],
      ],
    });
    addCookie(multi, new Cookie("r", "3"));
    expect(multi.headers.getAll("cookie")).toEqual(["p=1; q=2; r=3"]);
    expect(cookies(multi).map((c) => c.name)).toEqual(["p", "q", "r"]);
  });

  test("on a response: one Set-Cookie field per cookie", () => {
    const res = new Response(204);
    addCookie(res, new Cookie("a", "1", { httpOnly: true }));
    addCookie(res, new Cookie("a", "", { maxAge: 0 }));
    expect(res.headers.getAll("set-cookie")).toEqual(["a=1; HttpOnly", "a=; Max-Age=0"]);
  });

  test("anything but a Request or Response, or a non-Cookie, is an ArgumentError", () => {
    const fake = { headers: new Headers() } as unknown as Request;
    expect(() => addCookie(fake, new Cookie("a", "1"))).toThrow(ArgumentError);
    expect(() => cookies(fake)).toThrow(ArgumentError);
    expect(() => addCookie(new Response(200), { name: "a", value: "1" } as unknown as Cookie)).toThrow(
      ArgumentError,
    );
  });
});

describe("hostile values", () => {
  test("CR, LF or ';' cannot get into a name or value", () => {
    for (const evil of ["1\r\nSet-Cookie: admin=1", "1; Domain=evil.com", "1\nX: y", "1\r"]) {
      expect(() => new Cookie("a", evil)).toThrow(ArgumentError);
      expect(() => new Cookie(`a${evil}`, "1")).toThrow(ArgumentError);
    }
  });

  test("attributes changed after construction cannot inject an attribute or a header", () => {
    const c = new Cookie("a", "1");
    c.path = "/\r\nSet-Cookie: admin=1; Domain=evil.com";
    c.domain = "good.com; Secure\r\nX-Evil: 1";
    c.sameSite = "lax; Domain=evil.com" as unknown as "lax";
    const line = c.toString();
    expect(line).toBe("a=1; Path=/Set-Cookie: admin=1 Domain=evil.com");
    expect(line.split(";").map((s) => s.trim().split("=")[0])).toEqual(["a", "Path"]);
    // The line is a valid header value: Headers refuses CR/LF, so this would throw if any were left.
    const res = new Response(200);
    addCookie(res, c);
    expect(cookies(res)).toHaveLength(1);
    expect(cookies(res)[0]!.domain).toBeUndefined();
  });

  test("huge and odd Set-Cookie input never throws", () => {
    const long = `a=${"x".repeat(100_000)}; Expires=${"1 ".repeat(20_000)}; ${";".repeat(10_000)}Max-Age=${"9".repeat(5000)}`;
    const got = cookies(responseWith(long, "\u00ff=\u00ff", "a=1;;;;=;=;==;", "a=1; Expires=::::::: Jan"));
    expect(got.map((c) => c.name)).toEqual(["a", "a", "a"]);
    expect(got[0]!.value).toHaveLength(100_000);
    expect(got[0]!.expires).toBeUndefined();
    expect(got[0]!.maxAge).toBeUndefined();
  });
});

describe("on the wire", () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    if (server !== undefined) {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
      server = undefined;
    }
  });

  async function serve(res: Response, seen?: (cookieHeader: Request) => void): Promise<number> {
    server = http.createServer((req, out) => {
      if (seen !== undefined)
        seen(new Request(req.method!, req.url!, { headers: Headers.fromTrusted(req.rawHeaders) }));
      out.writeHead(res.status, res.headers.toFlat());
      out.end();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return (server.address() as net.AddressInfo).port;
  }

  async function rawGet(port: number, head: string): Promise<string> {
    const socket = net.connect(port, "127.0.0.1");
    socket.setTimeout(5000, () => socket.destroy(new Error("raw client timed out")));
    const chunks: Buffer[] = [];
    socket.on("data", (b: Buffer) => chunks.push(b));
    socket.write(head);
    await once(socket, "close");
    return Buffer.concat(chunks).toString("latin1");
  }

  test("each cookie is its own Set-Cookie line and a hostile path adds none", async () => {
    const res = new Response(200);
    const evil = new Cookie("a", "1");
    evil.path = "/\r\nSet-Cookie: admin=1";
    addCookie(res, evil);
    addCookie(res, new Cookie("b", "x y", { httpOnly: true, sameSite: "strict" }));
    addCookie(res, new Cookie("c", "", { maxAge: 0 }));
    const port = await serve(res);
    const raw = await rawGet(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const lines = raw.split("\r\n").filter((l) => l.toLowerCase().startsWith("set-cookie:"));
    expect(lines).toEqual([
      "Set-Cookie: a=1; Path=/Set-Cookie: admin=1",
      'Set-Cookie: b="x y"; HttpOnly; SameSite=Strict',
      "Set-Cookie: c=; Max-Age=0",
    ]);
  });

  test("the Cookie header a request sends reads back on the server", async () => {
    let got: Cookie[] = [];
    const port = await serve(new Response(204), (req) => {
      got = cookies(req);
    });
    const req = new Request("GET", "/");
    addCookie(req, new Cookie("a", "1"));
    addCookie(req, new Cookie("b", "x,y"));
    await rawGet(
      port,
      `GET / HTTP/1.1\r\nHost: x\r\nCookie: ${req.headers.get("cookie")}\r\nConnection: close\r\n\r\n`,
    );
    expect(got.map((c) => [c.name, c.value])).toEqual([
      ["a", "1"],
      ["b", "x,y"],
    ]);
  });

  test("curl's cookie engine reads the Set-Cookie lines we write", async () => {
    const res = new Response(200);
    addCookie(res, new Cookie("plain", "v1", { path: "/" }));
    addCookie(
      res,
      new Cookie("lasting", "v2", { path: "/app", expires: new Date(Date.UTC(2099, 0, 2, 3, 4, 5)) }),
    );
    addCookie(res, new Cookie("hidden", "v3", { path: "/", httpOnly: true }));
    const port = await serve(res);
    const jar = await new Promise<string>((resolve, reject) => {
      execFile(
        "curl",
        ["-s", "--max-time", "10", "-c", "-", "-o", "/dev/null", `http://127.0.0.1:${port}/`],
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      );
    });
    // Netscape jar lines: domain, include-subdomains, path, secure, expires (s), name, value.
    const rows = jar
      .split("\n")
      .filter((l) => l !== "" && (!l.startsWith("#") || l.startsWith("#HttpOnly_")))
      .map((l) => l.split("\t"))
      .sort((a, b) => (a[5]! < b[5]! ? -1 : 1));
    expect(rows.map((r) => [r[0], r[2], r[4], r[5], r[6]])).toEqual([
      ["#HttpOnly_127.0.0.1", "/", "0", "hidden", "v3"],
      ["127.0.0.1", "/app", String(Date.UTC(2099, 0, 2, 3, 4, 5) / 1000), "lasting", "v2"],
      ["127.0.0.1", "/", "0", "plain", "v1"],
    ]);
  });
});
