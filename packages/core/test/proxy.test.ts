import { inspect } from "node:util";
import { describe, expect, test } from "vitest";
import {
  ArgumentError,
  isLoopbackHost,
  NoProxy,
  ProxyConfig,
  parseProxyUrl,
  proxyAuthorization,
  proxyFromEnvironment,
  proxyPort,
  proxyUrl,
  redactProxyUrl,
} from "../src/index.js";

/** [NO_PROXY spec, host, port or undefined, expected match] */
type Row = [string, string, number | undefined, boolean];

const matrix: Row[] = [
  // A bare domain: itself and its subdomains.
  ["example.com", "example.com", undefined, true],
  ["example.com", "api.example.com", 443, true],
  ["example.com", "a.b.example.com", 80, true],
  ["example.com", "notexample.com", undefined, false],
  ["example.com", "example.com.evil.net", undefined, false],
  ["example.com", "example.org", undefined, false],
  // Leading dot and "*.": subdomains only.
  [".example.com", "example.com", undefined, false],
  [".example.com", "api.example.com", undefined, true],
  ["*.example.com", "example.com", undefined, false],
  ["*.example.com", "deep.api.example.com", undefined, true],
  ["*.example.com", "xexample.com", undefined, false],
  // Case-insensitive, trailing dots ignored.
  ["Example.COM", "API.example.com", undefined, true],
  ["example.com.", "example.com", undefined, true],
  ["example.com", "EXAMPLE.COM.", undefined, true],
  // IPv4 CIDR.
  ["10.0.0.0/8", "10.1.2.3", undefined, true],
  ["10.0.0.0/8", "10.255.255.255", undefined, true],
  ["10.0.0.0/8", "11.0.0.1", undefined, false],
  ["192.168.1.0/24", "192.168.1.77", undefined, true],
  ["192.168.1.0/24", "192.168.2.1", undefined, false],
  ["10.1.2.3/8", "10.9.9.9", undefined, true],
  ["0.0.0.0/0", "8.8.8.8", undefined, true],
  ["10.0.0.5/32", "10.0.0.5", undefined, true],
  ["10.0.0.5/32", "10.0.0.6", undefined, false],
  ["10.0.0.0/8", "ten.example", undefined, false],
  ["10.0.0.0/8", "fd00::1", undefined, false],
  // IPv6 CIDR.
  ["fd00::/8", "fd12:3456::1", undefined, true],
  ["fd00::/8", "[fd12:3456::1]", undefined, true],
  ["fd00::/8", "fe80::1", undefined, false],
  ["2001:db8::/32", "2001:db8:ffff::1", undefined, true],
  ["2001:db8::/32", "2001:db9::1", undefined, false],
  ["[2001:db8::]/32", "2001:db8::42", undefined, true],
  ["::/0", "::1", undefined, true],
  ["fd00::/8", "10.0.0.1", undefined, false],
  // IP literals match exactly.
  ["192.168.1.1", "192.168.1.1", undefined, true],
  ["192.168.1.1", "192.168.1.2", undefined, false],
  ["::1", "::1", undefined, true],
  ["::1", "[::1]", 80, true],
  ["0:0::1", "::1", undefined, true],
  ["2001:DB8::1", "2001:db8:0:0:0:0:0:1", undefined, true],
  ["2001:db8::1", "2001:db8::2", undefined, false],
  // A domain rule never matches an IP and vice versa.
  ["1.2.3.4", "host.1.2.3.4", undefined, false],
  // host:port and [v6]:port match that port only.
  ["example.com:8080", "example.com", 8080, true],
  ["example.com:8080", "api.example.com", 8080, true],
  ["example.com:8080", "example.com", 80, false],
  ["example.com:8080", "example.com", undefined, false],
  ["10.0.0.1:443", "10.0.0.1", 443, true],
  ["10.0.0.1:443", "10.0.0.1", 80, false],
  ["[::1]:8080", "::1", 8080, true],
  ["[::1]:8080", "[::1]", 8080, true],
  ["[::1]:8080", "::1", 8081, false],
  ["[2001:db8::1]", "2001:db8::1", 1234, true],
  // "*" matches everything, also among other entries.
  ["*", "anything.example", 1, true],
  ["*", "10.0.0.1", undefined, true],
  ["*", "::1", undefined, true],
  ["other.example, *", "example.com", undefined, true],
  // Several entries, spaces around commas.
  [" a.example , b.example ,, c.example ", "b.example", undefined, true],
  [" a.example , b.example ,, c.example ", "c.example", undefined, true],
  [" a.example , b.example ,, c.example ", "d.example", undefined, false],
];

const invalidEntries = [
  "10.0.0.0/33",
  "10.0.0.0/abc",
  "10.0.0.0/",
  "/8",
  "fd00::/129",
  "not an ip/8",
  "exa mple.com",
  "bad!host",
  "host:99999",
  "host:0",
  "host:abc",
  "host:",
  "[::1",
  "[zz]:80",
  "[::1]x",
  "[::1]:",
  "[10.0.0.1]",
  "é.example",
  "a..b",
];

describe("NoProxy", () => {
  test.each(matrix)("%j matches %j port %j → %j", (spec, host, port, expected) => {
    expect(new NoProxy(spec).matches(host, port)).toBe(expected);
  });

  test("an array of entries works like the comma-separated string", () => {
    const np = new NoProxy(["example.com", " 10.0.0.0/8 ", ""]);
    expect(np.matches("www.example.com")).toBe(true);
    expect(np.matches("10.2.3.4")).toBe(true);
    expect(np.matches("example.net")).toBe(false);
    expect(np.entries).toEqual(["example.com", "10.0.0.0/8"]);
    expect(Object.isFrozen(np.entries)).toBe(true);
  });

  test.each(invalidEntries)("the invalid entry %j is ignored without throwing", (entry) => {
    const np = new NoProxy(entry);
    expect(np.isEmpty).toBe(true);
    expect(np.matches("example.com")).toBe(false);
    expect(np.matches("10.0.0.1")).toBe(false);
    expect(np.matches("::1")).toBe(false);
  });

  test("invalid entries next to valid ones do not disable the valid ones", () => {
    const np = new NoProxy(`${invalidEntries.join(",")},good.example,10.0.0.0/8`);
    expect(np.isEmpty).toBe(false);
    expect(np.matches("api.good.example")).toBe(true);
    expect(np.matches("10.9.8.7")).toBe(true);
    expect(np.matches("bad.example")).toBe(false);
  });

  test("empty specs are empty and match nothing", () => {
    for (const spec of ["", " , ,", []]) {
      const np = new NoProxy(spec);
      expect(np.isEmpty).toBe(true);
      expect(np.matches("localhost")).toBe(false);
    }
    expect(new NoProxy().isEmpty).toBe(true);
    expect(new NoProxy("*").isEmpty).toBe(false);
  });

  test("anything but a string or an array of strings is an ArgumentError", () => {
    expect(() => new NoProxy(42 as unknown as string)).toThrow(ArgumentError);
    expect(() => new NoProxy([1, 2] as unknown as string[])).toThrow(ArgumentError);
    expect(() => new NoProxy({} as unknown as string)).toThrow(ArgumentError);
  });

  test("a NoProxy list with many entries stays usable", () => {
    const entries = Array.from({ length: 10_000 }, (_, i) => `h${i}.example`);
    const np = new NoProxy(entries.join(","));
    expect(np.matches("x.h9999.example")).toBe(true);
    expect(np.matches("h10000.example")).toBe(false);
  });
});

describe("isLoopbackHost", () => {
  test.each([
    "localhost",
    "LOCALHOST",
    "localhost.",
    "app.localhost",
    "127.0.0.1",
    "127.1.2.3",
    "127.255.255.254",
    "::1",
    "[::1]",
    "0:0:0:0:0:0:0:1",
  ])("%j is loopback", (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  test.each(["example.com", "localhost.example.com", "128.0.0.1", "126.0.0.1", "::2", "10.0.0.1", ""])(
    "%j is not loopback",
    (host) => {
      expect(isLoopbackHost(host)).toBe(false);
    },
  );
});

describe("parseProxyUrl", () => {
  test("a value without a scheme is http", () => {
    expect(parseProxyUrl("proxy.internal:3128").href).toBe("http://proxy.internal:3128/");
    expect(parseProxyUrl("  proxy.internal  ").href).toBe("http://proxy.internal/");
    expect(parseProxyUrl("user:pw@proxy:8080").href).toBe("http://user:pw@proxy:8080/");
  });

  test("http, https, socks5 and socks5h are accepted; socks gets port 1080", () => {
    expect(parseProxyUrl("http://p:3128").port).toBe("3128");
    expect(parseProxyUrl("https://p").protocol).toBe("https:");
    expect(parseProxyUrl("socks5://p").port).toBe("1080");
    expect(parseProxyUrl("socks5h://p").port).toBe("1080");
    expect(parseProxyUrl("socks5://p:9050").port).toBe("9050");
    expect(parseProxyUrl("HTTP://P:1").href).toBe("http://p:1/");
    expect(parseProxyUrl(new URL("socks5h://p")).port).toBe("1080");
  });

  test("a URL object is copied, not changed", () => {
    const input = new URL("socks5://p");
    const out = parseProxyUrl(input);
    expect(out).not.toBe(input);
    expect(input.port).toBe("");
  });

  test("proxyPort fills in the default ports", () => {
    expect(proxyPort(parseProxyUrl("http://p"))).toBe(80);
    expect(proxyPort(parseProxyUrl("https://p"))).toBe(443);
    expect(proxyPort(parseProxyUrl("socks5://p"))).toBe(1080);
    expect(proxyPort(parseProxyUrl("http://p:3128"))).toBe(3128);
  });

  test("other schemes, paths, queries, fragments, empty values and no host are an ArgumentError", () => {
    for (const bad of [
      "",
      "   ",
      "ftp://p",
      "socks4://p",
      "file:///etc/passwd",
      "http://p/path",
      "http://p/?q=1",
      "http://p/#frag",
      "http://",
    ]) {
      expect(() => parseProxyUrl(bad), bad).toThrow(ArgumentError);
    }
  });

  test("a malformed URL is an ArgumentError that does not reveal the password", () => {
    for (const bad of [
      "http://user:s3cret@[bad",
      "http://user:s3cret@host:99999",
      "user:s3cret@ho st",
      "ftp://user:s3cret@host",
      "http://user:s3cret@host/path",
    ]) {
      let caught: unknown;
      try {
        parseProxyUrl(bad);
      } catch (e) {
        caught = e;
      }
      expect(caught, bad).toBeInstanceOf(ArgumentError);
      const err = caught as ArgumentError;
      expect(err.message).not.toContain("s3cret");
      expect(err.message).toContain("***");
      // Logged errors print their cause too; it must not carry the password either.
      expect(inspect(err, { depth: 5 })).not.toContain("s3cret");
    }
  });

  test("a URL object with a password is not revealed either", () => {
    let caught: unknown;
    try {
      parseProxyUrl(new URL("ftp://user:s3cret@host"));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ArgumentError);
    expect((caught as Error).message).not.toContain("s3cret");
  });

  test("a password containing '@' is not partly revealed", () => {
    let caught: unknown;
    try {
      parseProxyUrl("ftp://user:p@ss@host");
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ArgumentError);
    expect((caught as Error).message).not.toContain("ss@");
    expect((caught as Error).message).not.toContain("p@");
  });
});

describe("redactProxyUrl", () => {
  test("masks the password of a URL and of a string, keeps the user", () => {
    expect(redactProxyUrl(new URL("http://user:secret@proxy:3128"))).toBe("http://user:***@proxy:3128/");
    expect(redactProxyUrl("http://user:secret@proxy:3128")).toBe("http://user:***@proxy:3128");
    expect(redactProxyUrl("user:secret@proxy:3128")).toBe("user:***@proxy:3128");
    expect(redactProxyUrl("socks5h://u:p%40ss@[bad")).toBe("socks5h://u:***@[bad");
  });

  test("a password with a raw '@' is masked completely", () => {
    expect(redactProxyUrl("http://user:p@ss@proxy:3128")).toBe("http://user:***@proxy:3128");
    expect(redactProxyUrl("user:p@ss@proxy")).toBe("user:***@proxy");
  });

  test("URLs without a password are left as they are", () => {
    expect(redactProxyUrl("http://proxy:3128")).toBe("http://proxy:3128");
    expect(redactProxyUrl("http://user@proxy:3128")).toBe("http://user@proxy:3128");
    expect(redactProxyUrl(new URL("http://user@proxy:3128"))).toBe("http://user@proxy:3128/");
    expect(redactProxyUrl("proxy:3128")).toBe("proxy:3128");
    expect(redactProxyUrl("http://proxy/a:b@c")).toBe("http://proxy/a:b@c");
  });
});

describe("proxyAuthorization", () => {
  test("Basic credentials from the percent-decoded userinfo", () => {
    const url = parseProxyUrl("http://us%40er:p%3Ass%20w@proxy:3128");
    expect(proxyAuthorization(url)).toBe(`Basic ${Buffer.from("us@er:p:ss w").toString("base64")}`);
    expect(proxyAuthorization(parseProxyUrl("http://user@proxy"))).toBe(
      `Basic ${Buffer.from("user:").toString("base64")}`,
    );
  });

  test("null without credentials", () => {
    expect(proxyAuthorization(parseProxyUrl("http://proxy"))).toBeNull();
  });
});

describe("ProxyConfig", () => {
  test("new ProxyConfig() is direct", () => {
    const cfg = new ProxyConfig();
    expect(cfg.isDirect).toBe(true);
    expect(cfg.fromEnvironment).toBe(false);
    expect(cfg.noProxy).toBeNull();
    expect(cfg.proxyFor("http://example.com")).toBeNull();
    expect(cfg.proxyFor("https://example.com")).toBeNull();
  });

  test("https requests use https, http requests use http, each falling back to all", () => {
    const cfg = new ProxyConfig({ http: "http://hp:1", https: "http://sp:2", all: "socks5://ap" });
    expect(cfg.proxyFor("http://example.com/")?.href).toBe("http://hp:1/");
    expect(cfg.proxyFor("https://example.com/")?.href).toBe("http://sp:2/");
    expect(cfg.proxyFor("ws://example.com/")?.href).toBe("http://hp:1/");
    expect(cfg.proxyFor("wss://example.com/")?.href).toBe("http://sp:2/");
    const onlyAll = new ProxyConfig({ all: "http://ap:3" });
    expect(onlyAll.proxyFor("http://example.com")?.href).toBe("http://ap:3/");
    expect(onlyAll.proxyFor("https://example.com")?.href).toBe("http://ap:3/");
    const onlyHttps = new ProxyConfig({ https: "http://sp:2" });
    expect(onlyHttps.proxyFor("http://example.com")).toBeNull();
    expect(onlyHttps.isDirect).toBe(false);
  });

  test("a NoProxy match means direct; the target's default port is used for host:port rules", () => {
    const cfg = new ProxyConfig({ all: "http://p:1", noProxy: "internal.example, secure.example:443" });
    expect(cfg.proxyFor("http://api.internal.example/")).toBeNull();
    expect(cfg.proxyFor("https://secure.example/")).toBeNull();
    expect(cfg.proxyFor("http://secure.example/")?.href).toBe("http://p:1/");
    expect(cfg.proxyFor("https://secure.example:8443/")?.href).toBe("http://p:1/");
    expect(cfg.proxyFor(new URL("https://other.example"))?.href).toBe("http://p:1/");
    expect(cfg.noProxy).toBeInstanceOf(NoProxy);
  });

  test("a NoProxy instance is used as it is", () => {
    const np = new NoProxy("x.example");
    expect(new ProxyConfig({ all: "http://p:1", noProxy: np }).noProxy).toBe(np);
  });

  test("an invalid proxy URL is an ArgumentError at construction", () => {
    expect(() => new ProxyConfig({ http: "ftp://p" })).toThrow(ArgumentError);
    expect(() => new ProxyConfig({ all: "http://p/path" })).toThrow(ArgumentError);
  });

  test("proxyFor an invalid URL is an ArgumentError", () => {
    expect(() => new ProxyConfig().proxyFor("not a url")).toThrow(ArgumentError);
  });

  test("fromUrl uses one proxy for every scheme, and proxies loopback unless noProxy says so", () => {
    const cfg = ProxyConfig.fromUrl("socks5h://127.0.0.1");
    expect(cfg.all?.href).toBe("socks5h://127.0.0.1:1080");
    expect(cfg.http).toBeNull();
    expect(cfg.https).toBeNull();
    expect(cfg.fromEnvironment).toBe(false);
    expect(cfg.proxyFor("http://example.com")?.href).toBe("socks5h://127.0.0.1:1080");
    expect(cfg.proxyFor("https://example.com")?.href).toBe("socks5h://127.0.0.1:1080");
    for (const host of ["127.0.0.1", "[::1]", "localhost"]) {
      expect(cfg.proxyFor(`http://${host}:8080/`)?.href).toBe("socks5h://127.0.0.1:1080");
    }
    const withNoProxy = ProxyConfig.fromUrl("http://p:1", { noProxy: "localhost" });
    expect(withNoProxy.proxyFor("http://localhost:8080/")).toBeNull();
  });

  test("proxyUrl is fromUrl", () => {
    const cfg = proxyUrl("http://p:1", { noProxy: "a.example" });
    expect(cfg).toBeInstanceOf(ProxyConfig);
    expect(cfg.all?.href).toBe("http://p:1/");
    expect(cfg.proxyFor("http://a.example")).toBeNull();
  });
});

describe("ProxyConfig.fromEnv", () => {
  test("an empty environment is direct", () => {
    const cfg = ProxyConfig.fromEnv({});
    expect(cfg.isDirect).toBe(true);
    expect(cfg.fromEnvironment).toBe(true);
    expect(cfg.proxyFor("https://example.com")).toBeNull();
  });

  test("HTTPS_PROXY is for https, HTTP_PROXY for http", () => {
    const cfg = ProxyConfig.fromEnv({ HTTP_PROXY: "http://hp:1", HTTPS_PROXY: "http://sp:2" });
    expect(cfg.proxyFor("http://example.com")?.href).toBe("http://hp:1/");
    expect(cfg.proxyFor("https://example.com")?.href).toBe("http://sp:2/");
    const httpsOnly = ProxyConfig.fromEnv({ HTTPS_PROXY: "http://sp:2" });
    expect(httpsOnly.proxyFor("http://example.com")).toBeNull();
    expect(httpsOnly.proxyFor("https://example.com")?.href).toBe("http://sp:2/");
  });

  test("upper case names come before lower case ones", () => {
    const cfg = ProxyConfig.fromEnv({
      HTTP_PROXY: "http://upper-h:1",
      http_proxy: "http://lower-h:1",
      HTTPS_PROXY: "http://upper-s:2",
      https_proxy: "http://lower-s:2",
      ALL_PROXY: "http://upper-a:3",
      all_proxy: "http://lower-a:3",
    });
    expect(cfg.http?.hostname).toBe("upper-h");
    expect(cfg.https?.hostname).toBe("upper-s");
    expect(cfg.all?.hostname).toBe("upper-a");
  });

  test("lower case names are read when upper case ones are absent, empty or blank", () => {
    const cfg = ProxyConfig.fromEnv({
      HTTP_PROXY: "",
      http_proxy: "http://lower-h:1",
      HTTPS_PROXY: "   ",
      https_proxy: "lower-s:2",
      all_proxy: "socks5://lower-a",
    });
    expect(cfg.http?.href).toBe("http://lower-h:1/");
    expect(cfg.https?.href).toBe("http://lower-s:2/");
    expect(cfg.all?.href).toBe("socks5://lower-a:1080");
  });

  test("an unparsable value means no proxy for that scheme, and the lower case name is not tried", () => {
    const cfg = ProxyConfig.fromEnv({
      HTTPS_PROXY: "ftp://bad",
      https_proxy: "http://good:1",
      HTTP_PROXY: "http://[broken",
    });
    expect(cfg.https).toBeNull();
    expect(cfg.http).toBeNull();
    expect(cfg.proxyFor("https://example.com")).toBeNull();
  });

  test("ALL_PROXY is the fallback for both schemes", () => {
    const cfg = ProxyConfig.fromEnv({ ALL_PROXY: "socks5h://ap", HTTPS_PROXY: "http://sp:2" });
    expect(cfg.proxyFor("http://example.com")?.href).toBe("socks5h://ap:1080");
    expect(cfg.proxyFor("https://example.com")?.href).toBe("http://sp:2/");
  });

  test("NO_PROXY makes matching hosts direct; NO_PROXY wins over no_proxy even when empty", () => {
    const cfg = ProxyConfig.fromEnv({ ALL_PROXY: "http://p:1", NO_PROXY: ".corp.example,10.0.0.0/8" });
    expect(cfg.proxyFor("http://git.corp.example")).toBeNull();
    expect(cfg.proxyFor("http://10.3.3.3")).toBeNull();
    expect(cfg.proxyFor("http://example.com")?.href).toBe("http://p:1/");
    const lower = ProxyConfig.fromEnv({ ALL_PROXY: "http://p:1", no_proxy: "example.com" });
    expect(lower.proxyFor("http://example.com")).toBeNull();
    const emptyUpper = ProxyConfig.fromEnv({
      ALL_PROXY: "http://p:1",
      NO_PROXY: "",
      no_proxy: "example.com",
    });
    expect(emptyUpper.proxyFor("http://example.com")?.href).toBe("http://p:1/");
    const star = ProxyConfig.fromEnv({ ALL_PROXY: "http://p:1", NO_PROXY: "*" });
    expect(star.proxyFor("https://anything.example")).toBeNull();
  });

  test("loopback hosts always go direct with environment proxies", () => {
    const cfg = ProxyConfig.fromEnv({
      HTTP_PROXY: "http://hp:1",
      HTTPS_PROXY: "http://sp:2",
      ALL_PROXY: "socks5://a",
    });
    for (const url of [
      "http://127.0.0.1:8080/",
      "https://127.0.0.1/",
      "http://127.9.9.9/",
      "http://[::1]:3000/",
      "http://localhost/",
      "https://LOCALHOST:8443/",
      "http://app.localhost/",
      "ws://localhost:1234/",
    ]) {
      expect(cfg.proxyFor(url), url).toBeNull();
    }
    expect(cfg.proxyFor("http://example.com")?.href).toBe("http://hp:1/");
  });

  test("CGI guard: with REQUEST_METHOD set, an HTTP_PROXY value is refused for plain-http requests", () => {
    for (const env of [
      { REQUEST_METHOD: "GET", HTTP_PROXY: "http://attacker:1", HTTPS_PROXY: "http://sp:2" },
      { REQUEST_METHOD: "POST", http_proxy: "http://attacker:1", HTTPS_PROXY: "http://sp:2" },
    ]) {
      const cfg = ProxyConfig.fromEnv(env);
      expect(() => cfg.proxyFor("http://example.com/")).toThrow(ArgumentError);
      expect(() => cfg.proxyFor("ws://example.com/")).toThrow(/CGI/);
      // https requests are unaffected.
      expect(cfg.proxyFor("https://example.com/")?.href).toBe("http://sp:2/");
      // Direct hosts never consult the proxy.
      expect(cfg.proxyFor("http://localhost/")).toBeNull();
    }
  });

  test("CGI guard: never returns the HTTP_PROXY value, whatever the target", () => {
    const cfg = ProxyConfig.fromEnv({ REQUEST_METHOD: "GET", HTTP_PROXY: "http://attacker:1" });
    for (const url of ["http://example.com", "http://10.0.0.1:8080/x"]) {
      let result: URL | null | undefined;
      try {
        result = cfg.proxyFor(url);
      } catch {
        result = undefined;
      }
      expect(result?.hostname).not.toBe("attacker");
    }
  });

  test("CGI guard: ALL_PROXY and a blank REQUEST_METHOD are unaffected", () => {
    const all = ProxyConfig.fromEnv({ REQUEST_METHOD: "GET", ALL_PROXY: "http://ap:3" });
    expect(all.proxyFor("http://example.com")?.href).toBe("http://ap:3/");
    const blank = ProxyConfig.fromEnv({ REQUEST_METHOD: "  ", HTTP_PROXY: "http://hp:1" });
    expect(blank.proxyFor("http://example.com")?.href).toBe("http://hp:1/");
    const none = ProxyConfig.fromEnv({ HTTP_PROXY: "http://hp:1" });
    expect(none.proxyFor("http://example.com")?.href).toBe("http://hp:1/");
  });

  test("an explicit ProxyConfig with an http proxy is not guarded", () => {
    const cfg = new ProxyConfig({ http: "http://hp:1" });
    expect(cfg.proxyFor("http://example.com")?.href).toBe("http://hp:1/");
  });

  test("the environment is read once, at construction", () => {
    const env: Record<string, string | undefined> = { HTTPS_PROXY: "http://sp:2" };
    const cfg = ProxyConfig.fromEnv(env);
    env.HTTPS_PROXY = "http://changed:9";
    env.NO_PROXY = "*";
    expect(cfg.proxyFor("https://example.com")?.href).toBe("http://sp:2/");
  });

  test("proxyFromEnvironment is fromEnv", () => {
    const cfg = proxyFromEnvironment({ HTTPS_PROXY: "http://sp:2" });
    expect(cfg).toBeInstanceOf(ProxyConfig);
    expect(cfg.fromEnvironment).toBe(true);
    expect(cfg.proxyFor("https://example.com")?.href).toBe("http://sp:2/");
  });
});

describe("loopback with an explicit configuration", () => {
  test("goes direct when the configuration has a NoProxy list", () => {
    const cfg = ProxyConfig.fromUrl("http://proxy:3128", { noProxy: "example.org" });
    expect(cfg.proxyFor("http://127.0.0.1:8080/")).toBeNull();
    expect(cfg.proxyFor("http://[::1]:8080/")).toBeNull();
    expect(cfg.proxyFor("http://localhost/")).toBeNull();
    expect(cfg.proxyFor("http://example.com/")?.host).toBe("proxy:3128");
  });

  test("is proxied when there is no NoProxy list at all", () => {
    const cfg = ProxyConfig.fromUrl("http://proxy:3128");
    expect(cfg.proxyFor("http://127.0.0.1:8080/")?.host).toBe("proxy:3128");
  });

  test("an invalid target URL is an ArgumentError that does not repeat its password", () => {
    const cfg = ProxyConfig.fromUrl("http://proxy:3128");
    let error: unknown;
    try {
      cfg.proxyFor("http://user:s3cret@exa mple.com/");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ArgumentError);
    expect((error as Error).message).not.toContain("s3cret");
  });
});

describe("IPv4-mapped loopback", () => {
  test("::ffff:127.0.0.1 is loopback, ::ffff:10.0.0.1 is not", () => {
    expect(isLoopbackHost("::ffff:127.0.0.1")).toBe(true);
    expect(isLoopbackHost("[::ffff:127.1.2.3]")).toBe(true);
    expect(isLoopbackHost("::ffff:10.0.0.1")).toBe(false);
  });
});
