import { ArgumentError, Response } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import { tls } from "../../../fixtures/tls/index.mjs";
import { Client, CookieJar, get } from "../src/index.js";
import { type Echoed, echo, headerValues, Resources } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

const names = (jar: CookieJar, url: string): string => jar.cookieHeader(url);

describe("CookieJar rules (RFC 6265bis)", () => {
  test("host-only cookies go to their host only; Domain cookies to the domain and its subdomains", () => {
    const jar = new CookieJar();
    expect(jar.setCookie("h=1", "http://www.example.com/")).not.toBeNull();
    expect(jar.setCookie("d=2; Domain=example.com", "http://www.example.com/")).not.toBeNull();
    expect(names(jar, "http://www.example.com/")).toBe("h=1; d=2");
    expect(names(jar, "http://a.www.example.com/")).toBe("d=2");
    expect(names(jar, "http://example.com/")).toBe("d=2");
    expect(names(jar, "http://other.com/")).toBe("");
    expect(jar.setCookie("x=1; Domain=other.com", "http://www.example.com/")).toBeNull();
  });

  test("a public suffix as Domain is refused unless it is the host, which makes the cookie host-only", () => {
    const jar = new CookieJar();
    expect(jar.setCookie("a=1; Domain=co.uk", "http://shop.co.uk/")).toBeNull();
    expect(jar.setCookie("b=1; Domain=github.io", "https://me.github.io/")).toBeNull();
    const c = jar.setCookie("c=1; Domain=github.io", "https://github.io/");
    expect(c).toMatchObject({ name: "c", hostOnly: true, domain: "github.io" });
    expect(names(jar, "https://me.github.io/")).toBe("");
  });

  test("Secure cookies: not settable from http, not sent over http, and not replaceable from http", () => {
    const jar = new CookieJar();
    expect(jar.setCookie("s=1; Secure", "http://example.com/")).toBeNull();
    // Loopback http is not a secure origin for this client either.
    expect(jar.setCookie("s=1; Secure", "http://127.0.0.1/")).toBeNull();
    expect(jar.setCookie("s=1; Secure", "https://example.com/")).not.toBeNull();
    expect(names(jar, "http://example.com/")).toBe("");
    expect(names(jar, "https://example.com/")).toBe("s=1");
    expect(jar.setCookie("s=2", "http://example.com/")).toBeNull();
    expect(jar.setCookie("s=3; Domain=example.com", "http://www.example.com/")).toBeNull();
    expect(names(jar, "https://example.com/")).toBe("s=1");
    expect(jar.setCookie("s=4", "https://example.com/")).not.toBeNull();
    expect(names(jar, "https://example.com/")).toBe("s=4");
  });

  test("__Secure- and __Host- prefixes, in any case", () => {
    const jar = new CookieJar();
    expect(jar.setCookie("__Secure-a=1", "https://example.com/")).toBeNull();
    expect(jar.setCookie("__secure-a=1", "https://example.com/")).toBeNull();
    expect(jar.setCookie("__Secure-a=1; Secure", "https://example.com/")).not.toBeNull();
    expect(jar.setCookie("__Host-b=1; Secure", "https://example.com/x/y")).toBeNull(); // default path
    expect(
      jar.setCookie("__Host-b=1; Secure; Path=/; Domain=example.com", "https://example.com/"),
    ).toBeNull();
    expect(jar.setCookie("__HOST-b=1; Path=/", "https://example.com/")).toBeNull();
    expect(jar.setCookie("__Host-b=1; Secure; Path=/", "https://example.com/")).not.toBeNull();
    expect(names(jar, "https://example.com/")).toBe("__Secure-a=1; __Host-b=1");
  });

  test("HttpOnly and SameSite are kept", () => {
    const jar = new CookieJar();
    jar.setCookie("a=1; HttpOnly; SameSite=Lax", "http://example.com/");
    expect(jar.cookies("http://example.com/")[0]).toMatchObject({ httpOnly: true, sameSite: "lax" });
    expect(names(jar, "http://example.com/")).toBe("a=1");
  });

  test("Max-Age=0 and a past Expires remove a cookie; a future Max-Age sets expires", () => {
    const jar = new CookieJar();
    jar.setCookie("a=1", "http://example.com/");
    jar.setCookie("b=1", "http://example.com/");
    jar.setCookie("c=1; Max-Age=3600", "http://example.com/");
    jar.setCookie("a=; Max-Age=0", "http://example.com/");
    jar.setCookie("b=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "http://example.com/");
    expect(names(jar, "http://example.com/")).toBe("c=1");
    const c = jar.cookies()[0]!;
    expect(c.expires!.getTime()).toBeGreaterThan(Date.now());
    expect(jar.cookies().map((x) => x.name)).toEqual(["c"]);
  });

  test("path matching (/a vs /ab vs /a/b) and order: longer paths first, then older first", () => {
    const jar = new CookieJar();
    jar.setCookie("root=1; Path=/", "http://example.com/");
    jar.setCookie("a=1; Path=/a", "http://example.com/");
    jar.setCookie("ab=1; Path=/a/b", "http://example.com/");
    jar.setCookie("root2=1; Path=/", "http://example.com/");
    expect(names(jar, "http://example.com/ab")).toBe("root=1; root2=1");
    expect(names(jar, "http://example.com/a")).toBe("a=1; root=1; root2=1");
    expect(names(jar, "http://example.com/a/b/c")).toBe("ab=1; a=1; root=1; root2=1");
  });

  test("replacement by name, domain and path keeps one cookie and its creation time", () => {
    const jar = new CookieJar();
    const first = jar.setCookie("a=1", "http://example.com/")!;
    jar.setCookie("a=2", "http://example.com/");
    jar.setCookie("a=3; Path=/p", "http://example.com/");
    expect(
      jar
        .cookies()
        .filter((c) => c.path === "/")
        .map((c) => c.value),
    ).toEqual(["2"]);
    expect(jar.cookies().find((c) => c.path === "/")!.creation).toEqual(first.creation);
    expect(names(jar, "http://example.com/p")).toBe("a=3; a=2");
  });

  test("size limits: name+value over 4096 bytes is ignored; oversized attributes are dropped", () => {
    const jar = new CookieJar();
    expect(jar.setCookie(`big=${"x".repeat(4094)}`, "http://example.com/")).toBeNull();
    expect(jar.setCookie(`ok=${"x".repeat(4000)}`, "http://example.com/")).not.toBeNull();
    const c = jar.setCookie(`p=1; Path=/${"x".repeat(1100)}`, "http://example.com/dir/page");
    expect(c!.path).toBe("/dir");
  });

  test("only http and https; bad Set-Cookie values are ignored", () => {
    const jar = new CookieJar();
    expect(jar.setCookie("a=1", "ftp://example.com/")).toBeNull();
    expect(jar.setCookie("novalue", "http://example.com/")).toBeNull();
    expect(jar.setCookie("=v", "http://example.com/")).toBeNull();
    expect(jar.cookies()).toEqual([]);
  });

  test("JSON round trip, fromJSON of text, constructor import, clear()", () => {
    const jar = new CookieJar();
    jar.setCookie("a=1; Path=/x; Max-Age=100", "http://example.com/");
    jar.setCookie("s=2; Secure; HttpOnly", "https://example.com/");
    const text = JSON.stringify(jar);
    for (const copy of [
      CookieJar.fromJSON(text),
      CookieJar.fromJSON(JSON.parse(text)),
      new CookieJar(jar.toJSON()),
    ]) {
      expect(names(copy, "https://example.com/x")).toBe("a=1; s=2");
      expect(copy.cookies().find((c) => c.name === "s")).toMatchObject({ secure: true, httpOnly: true });
    }
    jar.clear();
    expect(jar.cookies()).toEqual([]);
    expect(() => CookieJar.fromJSON("{nope")).toThrow(ArgumentError);
    expect(() => new CookieJar({ cookies: [{ key: "" }] } as never)).toThrow(ArgumentError);
    expect(() => new CookieJar({} as never)).toThrow(ArgumentError);
  });
});

/** A server that sets a cookie on /login and echoes the request elsewhere. */
async function cookieServer() {
  return res.serve((req) => {
    if (req.target.startsWith("/login")) {
      return new Response(200, {
        headers: [
          ["Set-Cookie", "session=abc; Path=/; HttpOnly"],
          ["Set-Cookie", "theme=light; Path=/"],
          ["Set-Cookie", "bad cookie"],
        ],
        body: "ok",
      });
    }
    return echo(req);
  });
}

const cookieOf = async (p: Promise<{ json(): unknown }>): Promise<string[]> =>
  headerValues((await p).json() as Echoed, "cookie");

describe("the client sends and stores cookies", () => {
  test("a cookie set by one response is sent on the next; clients have their own jars", async () => {
    const server = await cookieServer();
    const a = res.client();
    const b = res.client();
    await a.get(`${server.url}/login`);
    expect(await cookieOf(a.get(`${server.url}/echo`))).toEqual(["session=abc; theme=light"]);
    expect(await cookieOf(b.get(`${server.url}/echo`))).toEqual([]);
    expect(a.defaults.cookieJar!.cookies().map((c) => c.name)).toEqual(["session", "theme"]);
  });

  test("the process-wide default client has a jar of its own", async () => {
    const server = await cookieServer();
    await get(`${server.url}/login`);
    expect(await cookieOf(get(`${server.url}/echo`))).toEqual(["session=abc; theme=light"]);
    const other = res.client();
    expect(await cookieOf(other.get(`${server.url}/echo`))).toEqual([]);
  });

  test("cookies: false sends a manual header verbatim and stores nothing", async () => {
    const server = await cookieServer();
    const client = res.client();
    await client.get(`${server.url}/login`, { cookies: false });
    expect(client.defaults.cookieJar!.cookies()).toEqual([]);
    await client.get(`${server.url}/login`);
    const sent = await cookieOf(
      client.get(`${server.url}/echo`, { cookies: false, headers: { Cookie: "x=1;y=2" } }),
    );
    expect(sent).toEqual(["x=1;y=2"]);
  });

  test("a cookies record is merged with the jar and a manual header, de-duplicated by name", async () => {
    const server = await cookieServer();
    const client = res.client();
    await client.get(`${server.url}/login`);
    const sent = await cookieOf(
      client.get(`${server.url}/echo`, {
        cookies: { theme: "dark", extra: "1" },
        headers: { Cookie: "session=manual; lang=en; lang=fr" },
      }),
    );
    expect(sent).toEqual(["lang=en; session=abc; theme=dark; extra=1"]);
  });

  test("cookieJar per call and cookieJar: null on the client", async () => {
    const server = await cookieServer();
    const jar = new CookieJar();
    const none = res.client({ cookieJar: null });
    await none.get(`${server.url}/login`);
    expect(await cookieOf(none.get(`${server.url}/echo`))).toEqual([]);
    await none.get(`${server.url}/login`, { cookieJar: jar });
    expect(await cookieOf(none.get(`${server.url}/echo`, { cookieJar: jar }))).toEqual([
      "session=abc; theme=light",
    ]);
    expect(await cookieOf(none.get(`${server.url}/echo`, { cookies: { a: "1" } }))).toEqual(["a=1"]);
  });

  test("open() sends the jar's cookies and stores Set-Cookie from its response", async () => {
    const server = await cookieServer();
    const client = res.client();
    await client.open("GET", `${server.url}/login`, async (s) => {
      for await (const _ of s);
    });
    // Another client's jar is not this one's (cookies ignore ports, so the process-wide client, which
    // an earlier test filled for 127.0.0.1, is not a clean comparison).
    const r = await res.client().open("GET", `${server.url}/echo`, async (s) => {
      const chunks: Uint8Array[] = [];
      for await (const c of s) chunks.push(c);
      const echoed = JSON.parse(Buffer.concat(chunks).toString()) as Echoed;
      expect(headerValues(echoed, "cookie")).toEqual([]);
    });
    expect(r.status).toBe(200);
    const stream = await client.open("GET", `${server.url}/echo`);
    await stream.startRead();
    const chunks: Uint8Array[] = [];
    for await (const c of stream) chunks.push(c);
    expect(headerValues(JSON.parse(Buffer.concat(chunks).toString()) as Echoed, "cookie")).toEqual([
      "session=abc; theme=light",
    ]);
  });

  test("Secure cookies travel over https only", async () => {
    const { serve } = await import("@hyperwire/server");
    const server = res.add(
      await serve(
        (req) =>
          req.target === "/login"
            ? new Response(200, { headers: { "Set-Cookie": "s=1; Secure; Path=/" }, body: "ok" })
            : echo(req),
        { host: "127.0.0.1", port: 0, tls: { key: tls.key, cert: tls.cert } },
      ),
    );
    const client = res.client();
    const https = `https://localhost:${server.port}`;
    await client.get(`${https}/login`, { tls: { ca: tls.ca } });
    expect(await cookieOf(client.get(`${https}/echo`, { tls: { ca: tls.ca } }))).toEqual(["s=1"]);
    const plain = await cookieServer();
    // Same host name, plain http: the Secure cookie stays home.
    expect(await cookieOf(client.get(`http://localhost:${plain.port}/echo`))).toEqual([]);
  });

  test("bad cookie options are ArgumentErrors", async () => {
    const server = await cookieServer();
    const client = res.client();
    await expect(client.get(server.url, { cookies: "a=1" as never })).rejects.toBeInstanceOf(ArgumentError);
    await expect(client.get(server.url, { cookieJar: {} as never })).rejects.toBeInstanceOf(ArgumentError);
    await expect(client.get(server.url, { cookies: { "bad name": "1" } })).rejects.toBeInstanceOf(
      ArgumentError,
    );
    await expect(client.get(server.url, { cookies: { a: "x;y" } })).rejects.toBeInstanceOf(ArgumentError);
    expect(() => new Client({ cookieJar: "jar" as never })).toThrow(ArgumentError);
  });
});
