import { Readable, Writable } from "node:stream";
import {
  ArgumentError,
  type Request as CoreRequest,
  HTTPError,
  ProtocolError,
  Request,
  Response,
  StatusError,
} from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import * as hw from "../src/index.js";
import { Client, USER_AGENT } from "../src/index.js";
import {
  bodyBytes,
  type Echoed,
  echo,
  headerValues,
  RawServer,
  Resources,
  rejectionOf,
  reply,
  waitFor,
} from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

function echoed(r: Response<Uint8Array>): Echoed {
  return JSON.parse(Buffer.from(r.body).toString("utf8")) as Echoed;
}

function base64(s: string): string {
  return Buffer.from(s, "utf8").toString("base64");
}

describe("verbs", () => {
  test("each helper sends its method and reads the whole body", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const url = `${server.url}/v`;
    const cases: [string, () => Promise<Response<Uint8Array>>][] = [
      ["GET", () => hw.get(url, { client })],
      ["POST", () => hw.post(url, { client, body: "p" })],
      ["PUT", () => hw.put(url, { client, body: "p" })],
      ["PATCH", () => hw.patch(url, { client, body: "p" })],
      ["DELETE", () => hw.del(url, { client })],
      ["DELETE", () => hw.delete(url, { client })],
      ["OPTIONS", () => hw.options(url, { client })],
      ["QUERY", () => hw.query(url, { client, body: "q=1" })],
      ["PROPFIND", () => hw.request("PROPFIND", url, { client })],
      ["POST", () => hw.request("post", url, { client, body: "lower-case method" })],
    ];
    for (const [method, call] of cases) {
      const r = await call();
      expect(r.status).toBe(200);
      const e = echoed(r);
      expect(e.method).toBe(method);
      expect(e.target).toBe("/v");
    }
  });

  test("the Client methods send their verbs", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const url = `${server.url}/c`;
    const calls: [string, Promise<Response<Uint8Array>>][] = [
      ["GET", client.get(url)],
      ["POST", client.post(url, { body: "x" })],
      ["PUT", client.put(url, { body: "x" })],
      ["PATCH", client.patch(url, { body: "x" })],
      ["DELETE", client.delete(url)],
      ["OPTIONS", client.options(url)],
      ["QUERY", client.query(url, { body: "x" })],
      ["REPORT", client.request("REPORT", url)],
    ];
    for (const [method, p] of calls) expect(echoed(await p).method).toBe(method);
  });

  test("HEAD has an empty body", async () => {
    const server = await res.serve(() => new Response(200, { body: "a body that HEAD does not get" }));
    const client = res.client();
    const r = await hw.head(server.url, { client });
    expect(r.status).toBe(200);
    expect(r.body.byteLength).toBe(0);
    // The connection stays usable after a body-less HEAD response.
    expect((await client.get(server.url)).text()).toBe("a body that HEAD does not get");
  });
});

describe("request bodies", () => {
  test("a string is sent as UTF-8 with its Content-Length", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const e = echoed(await client.post(server.url, { body: "héllo" }));
    expect(bodyBytes(e).toString("utf8")).toBe("héllo");
    expect(headerValues(e, "content-length")).toEqual(["6"]);
    expect(headerValues(e, "transfer-encoding")).toEqual([]);
  });

  test("a Uint8Array is sent byte for byte", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const bytes = new Uint8Array(256).map((_, i) => i);
    const e = echoed(await client.post(server.url, { body: bytes }));
    expect([...bodyBytes(e)]).toEqual([...bytes]);
    expect(headerValues(e, "content-length")).toEqual(["256"]);
  });

  test("a view into a larger buffer sends only its own bytes", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const whole = Buffer.from("0123456789");
    const e = echoed(await client.post(server.url, { body: whole.subarray(3, 6) }));
    expect(bodyBytes(e).toString()).toBe("345");
  });

  test("an ArrayBuffer is sent", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const ab = new Uint8Array([1, 2, 3, 250]).buffer;
    const e = echoed(await client.put(server.url, { body: ab }));
    expect([...bodyBytes(e)]).toEqual([1, 2, 3, 250]);
  });

  test("a Blob is sent with its type as Content-Type", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const e = echoed(
      await client.post(server.url, { body: new Blob(["blob ", "data"], { type: "text/plain" }) }),
    );
    expect(bodyBytes(e).toString()).toBe("blob data");
    expect(headerValues(e, "content-type")).toEqual(["text/plain"]);
    const untyped = echoed(await client.post(server.url, { body: new Blob(["x"]) }));
    expect(headerValues(untyped, "content-type")).toEqual([]);
  });

  test("a Blob's type does not replace a Content-Type the caller set", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const e = echoed(
      await client.post(server.url, {
        body: new Blob(["x"], { type: "text/plain" }),
        headers: { "content-type": "application/octet-stream" },
      }),
    );
    expect(headerValues(e, "content-type")).toEqual(["application/octet-stream"]);
  });

  test("URLSearchParams are sent urlencoded", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const e = echoed(
      await client.post(server.url, {
        body: new URLSearchParams([
          ["a", "1"],
          ["b", "x y"],
        ]),
      }),
    );
    expect(bodyBytes(e).toString()).toBe("a=1&b=x+y");
    expect(headerValues(e, "content-type")).toEqual(["application/x-www-form-urlencoded"]);
  });

  test("a Node Readable is streamed chunked, bytes intact", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const parts = [Buffer.from("first "), Buffer.alloc(70_000, 0xab), Buffer.from(" last")];
    const e = echoed(await client.post(server.url, { body: Readable.from(parts) }));
    expect(headerValues(e, "transfer-encoding")).toEqual(["chunked"]);
    expect(headerValues(e, "content-length")).toEqual([]);
    expect(bodyBytes(e).equals(Buffer.concat(parts))).toBe(true);
  });

  test("an async iterable of strings and bytes is streamed chunked", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    async function* chunks() {
      yield "ab";
      yield new Uint8Array([0x63, 0x64]);
      yield "";
      yield Buffer.from("ef");
    }
    const e = echoed(await client.post(server.url, { body: chunks() }));
    expect(headerValues(e, "transfer-encoding")).toEqual(["chunked"]);
    expect(bodyBytes(e).toString()).toBe("abcdef");
  });

  test("an async iterable yielding a non-chunk fails with ArgumentError", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    async function* bad() {
      yield "ok";
      yield 42 as unknown as string;
    }
    const err = await rejectionOf(client.post(server.url, { body: bad() }));
    expect(err).toBeInstanceOf(ArgumentError);
  });

  test("a plain object is sent as a urlencoded form, space as +", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const e = echoed(
      await client.post(server.url, { body: { name: "a b", "k&y": "v=1/2", list: [1, 2], skip: null } }),
    );
    expect(headerValues(e, "content-type")).toEqual(["application/x-www-form-urlencoded"]);
    expect(bodyBytes(e).toString()).toBe("name=a+b&k%26y=v%3D1%2F2&list=1&list=2");
  });

  test("json is serialised with Content-Type application/json", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const e = echoed(await client.post(server.url, { json: { a: [1, "two"], b: null } }));
    expect(headerValues(e, "content-type")).toEqual(["application/json"]);
    expect(JSON.parse(bodyBytes(e).toString())).toEqual({ a: [1, "two"], b: null });
    const custom = echoed(
      await client.post(server.url, { json: 1, headers: { "Content-Type": "application/vnd.x+json" } }),
    );
    expect(headerValues(custom, "content-type")).toEqual(["application/vnd.x+json"]);
  });

  test("body and json together is an ArgumentError and nothing is sent", async () => {
    const raw = await res.raw();
    const client = res.client();
    const err = await rejectionOf(client.post(raw.url, { body: "x", json: { a: 1 } }));
    expect(err).toBeInstanceOf(ArgumentError);
    expect(raw.accepted).toBe(0);
  });

  test("an unsupported body type is an ArgumentError", async () => {
    const raw = await res.raw();
    const client = res.client();
    const err = await rejectionOf(client.post(raw.url, { body: new Date() as unknown as string }));
    expect(err).toBeInstanceOf(ArgumentError);
    expect(raw.accepted).toBe(0);
  });
});

describe("query", () => {
  test("a string is appended verbatim", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    expect(echoed(await client.get(`${server.url}/p`, { query: "b=2&a=x%20y" })).target).toBe(
      "/p?b=2&a=x%20y",
    );
  });

  test("an object is sorted by key and percent-encoded", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const e = echoed(await client.get(`${server.url}/p`, { query: { b: 2, a: "x y", c: ["1", "2"] } }));
    expect(e.target).toBe("/p?a=x%20y&b=2&c=1&c=2");
  });

  test("pairs keep their order", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const e = echoed(
      await client.get(`${server.url}/p`, {
        query: [
          ["z", "1"],
          ["a", "2"],
          ["z", "3"],
        ],
      }),
    );
    expect(e.target).toBe("/p?z=1&a=2&z=3");
  });

  test("joined with & when the URL already has a query", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    expect(echoed(await client.get(`${server.url}/p?x=1`, { query: { a: "1" } })).target).toBe("/p?x=1&a=1");
    expect(echoed(await client.get(`${server.url}/p?`, { query: { a: "1" } })).target).toBe("/p?a=1");
  });

  test("the client's defaultQuery is merged, the call's keys win", async () => {
    const server = await res.serve(echo);
    const client = res.client({ defaultQuery: { a: "default", c: "3" } });
    expect(echoed(await client.get(`${server.url}/p`)).target).toBe("/p?a=default&c=3");
    const target = echoed(await client.get(`${server.url}/p`, { query: { a: "call" } })).target;
    const params = new URLSearchParams(target.slice(target.indexOf("?")));
    expect(params.getAll("a")).toEqual(["call"]);
    expect(params.getAll("c")).toEqual(["3"]);
  });

  test("the fragment is never sent", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const r = await client.get(`${server.url}/p?x=1#frag`, { query: { a: "1" } });
    expect(echoed(r).target).toBe("/p?x=1&a=1");
    expect(r.url).toBe(`${server.url}/p?x=1&a=1`);
  });
});

describe("headers", () => {
  test("defaultHeaders fill missing names; the call's headers win, whatever their case", async () => {
    const server = await res.serve(echo);
    const client = res.client({ defaultHeaders: { "X-A": "default-a", "X-B": "default-b" } });
    const e = echoed(await client.get(server.url, { headers: { "x-a": "call-a", "X-C": "call-c" } }));
    expect(headerValues(e, "x-a")).toEqual(["call-a"]);
    expect(headerValues(e, "x-b")).toEqual(["default-b"]);
    expect(headerValues(e, "x-c")).toEqual(["call-c"]);
  });

  test("repeated call headers are all sent, in order", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const e = echoed(
      await client.get(server.url, {
        headers: [
          ["X-Multi", "1"],
          ["X-Multi", "2"],
        ],
      }),
    );
    expect(headerValues(e, "x-multi").join(",")).toBe("1,2");
  });

  test("the Host header carries the port", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    expect(headerValues(echoed(await client.get(server.url)), "host")).toEqual([`127.0.0.1:${server.port}`]);
  });

  test("an implicit User-Agent unless the caller gives a non-empty one", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const { version } = (await import("../package.json", { with: { type: "json" } })).default;
    expect(USER_AGENT).toBe(`hyperwire/${version}`);
    expect(headerValues(echoed(await client.get(server.url)), "user-agent")).toEqual([USER_AGENT]);
    const mine = echoed(await client.get(server.url, { headers: { "user-agent": "mine/1" } }));
    expect(headerValues(mine, "user-agent")).toEqual(["mine/1"]);
    const empty = echoed(await client.get(server.url, { headers: { "User-Agent": "" } }));
    expect(headerValues(empty, "user-agent")).toEqual([USER_AGENT]);
    const fromDefaults = res.client({ defaultHeaders: { "User-Agent": "default/2" } });
    expect(headerValues(echoed(await fromDefaults.get(server.url)), "user-agent")).toEqual(["default/2"]);
  });
});

describe("basic auth precedence", () => {
  const basic = (user: string, pass: string) => `Basic ${base64(`${user}:${pass}`)}`;

  test("explicit header > basicAuth > client default > URL userinfo", async () => {
    const server = await res.serve(echo);
    const url = `http://url%40user:url%3Apass@127.0.0.1:${server.port}/auth`;
    const withDefault = res.client({ defaultBasicAuth: ["default", "dpw"] });
    const plain = res.client();
    const auth = async (c: Client, opts: Parameters<Client["get"]>[1] = {}) =>
      headerValues(echoed(await c.get(url, opts)), "authorization");

    expect(
      await auth(withDefault, { headers: { Authorization: "Bearer token" }, basicAuth: ["call", "cpw"] }),
    ).toEqual(["Bearer token"]);
    expect(await auth(withDefault, { headers: { Authorization: "" }, basicAuth: ["call", "cpw"] })).toEqual([
      basic("call", "cpw"),
    ]);
    expect(await auth(withDefault, { basicAuth: ["call", "cpw"] })).toEqual([basic("call", "cpw")]);
    expect(await auth(withDefault)).toEqual([basic("default", "dpw")]);
    expect(await auth(plain)).toEqual([basic("url@user", "url:pass")]);
  });

  test("a client's default Authorization header wins over basicAuth", async () => {
    const server = await res.serve(echo);
    const client = res.client({ defaultHeaders: { Authorization: "Bearer default" } });
    const e = echoed(await client.get(server.url, { basicAuth: ["u", "p"] }));
    expect(headerValues(e, "authorization")).toEqual(["Bearer default"]);
  });

  test("UTF-8 credentials are encoded as UTF-8", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const e = echoed(await client.get(server.url, { basicAuth: ["ü", "päss"] }));
    expect(headerValues(e, "authorization")).toEqual([basic("ü", "päss")]);
  });

  test("a user name with ':' or a malformed pair is an ArgumentError", async () => {
    const raw = await res.raw();
    const client = res.client();
    expect(await rejectionOf(client.get(raw.url, { basicAuth: ["a:b", "c"] }))).toBeInstanceOf(ArgumentError);
    expect(
      await rejectionOf(client.get(raw.url, { basicAuth: ["only-one"] as unknown as [string, string] })),
    ).toBeInstanceOf(ArgumentError);
    expect(raw.accepted).toBe(0);
  });

  test("response.url has no userinfo", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    const r = await client.get(`http://u:p@127.0.0.1:${server.port}/x?y=1`);
    expect(r.url).toBe(`http://127.0.0.1:${server.port}/x?y=1`);
    expect(r.request?.url).toBe(r.url);
  });
});

describe("statusException", () => {
  function statusServer() {
    return res.serve((req: CoreRequest) => {
      const status = Number(req.target.split("/")[2]);
      return new Response(status, { body: status === 304 ? undefined : `status ${status}` });
    });
  }

  test.each([404, 500, 300, 304, 400, 418, 503])(
    "%i throws StatusError with the buffered response",
    async (s) => {
      const server = await statusServer();
      const client = res.client();
      const err = await rejectionOf(client.get(`${server.url}/status/${s}`));
      expect(err).toBeInstanceOf(StatusError);
      const se = err as StatusError<Response<Uint8Array>>;
      expect(se.status).toBe(s);
      expect(se.response.status).toBe(s);
      expect(se.response.url).toBe(`${server.url}/status/${s}`);
      expect(Buffer.from(se.response.body).toString()).toBe(s === 304 ? "" : `status ${s}`);
      expect(se.message).toContain(String(s));
    },
  );

  test.each([301, 302, 303, 307, 308])("%i is returned, not thrown, and not followed", async (s) => {
    // No Location header: nothing to follow, whatever redirect policy arrives later.
    const server = await statusServer();
    const client = res.client();
    const r = await client.get(`${server.url}/status/${s}`);
    expect(r.status).toBe(s);
    expect(r.text()).toBe(`status ${s}`);
  });

  test("statusException: false returns the failing response", async () => {
    const server = await statusServer();
    const client = res.client();
    const r = await client.get(`${server.url}/status/404`, { statusException: false });
    expect(r.status).toBe(404);
    expect(r.text()).toBe("status 404");
    const lenient = res.client({ statusException: false });
    expect((await lenient.get(`${server.url}/status/500`)).status).toBe(500);
    // The call's option wins over the client's.
    expect(
      await rejectionOf(lenient.get(`${server.url}/status/500`, { statusException: true })),
    ).toBeInstanceOf(StatusError);
  });

  test("a StatusError response keeps its connection reusable", async () => {
    const server = await statusServer();
    const client = res.client();
    await rejectionOf(client.get(`${server.url}/status/404`));
    expect(client.transport.idleConnectionCount()).toBe(1);
  });
});

describe("the response", () => {
  test("url, request, version, reason, headers", async () => {
    const server = await res.serve(
      () => new Response(201, { reason: "Made It", headers: { "X-Reply": "yes" }, body: "made" }),
    );
    const client = res.client();
    const r = await client.post(`${server.url}/items?x=1`, { body: "b" });
    expect(r.status).toBe(201);
    expect(r.reason).toBe("Made It");
    expect(r.headers.get("x-reply")).toBe("yes");
    expect(r.url).toBe(`${server.url}/items?x=1`);
    expect(r.version).toBe("1.1");
    expect(r.request).toBeInstanceOf(Request);
    expect(r.request?.method).toBe("POST");
    expect(r.request?.target).toBe("/items?x=1");
    expect(r.text()).toBe("made");
  });

  test("trailers of a chunked response", async () => {
    const raw = await res.raw((conn) => {
      conn.onHead(1, () =>
        conn.write(
          "HTTP/1.1 200 Very Fine\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
            "3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 42\r\n\r\n",
        ),
      );
    });
    const client = res.client();
    const r = await client.get(raw.url);
    expect(r.reason).toBe("Very Fine");
    expect(r.text()).toBe("abcde");
    expect(r.trailers.get("x-sum")).toBe("42");
  });

  test("a URL object is accepted", async () => {
    const server = await res.serve(echo);
    const client = res.client();
    expect(echoed(await client.get(new URL("/u?q=1", server.url))).target).toBe("/u?q=1");
  });

  test("responseStream gets the bytes; body is empty; the stream is not ended", async () => {
    const payload = Buffer.alloc(1_500_000);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    const server = await res.serve(() => new Response(200, { body: payload }));
    const client = res.client();
    const got: Buffer[] = [];
    // A small, slow sink: the client must respect its back-pressure.
    const sink = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        got.push(chunk);
        setImmediate(cb);
      },
    });
    const r = await client.get(server.url, { responseStream: sink });
    expect(r.status).toBe(200);
    expect(r.body.byteLength).toBe(0);
    expect(sink.writableEnded).toBe(false);
    await waitFor(() => sink.writableLength === 0, 5_000, "the sink to drain");
    expect(Buffer.concat(got).equals(payload)).toBe(true);
    sink.end();
  });
});

describe("a responseStream that fails", () => {
  test("a Writable that errors fails the request instead of hanging it", async () => {
    const server = await res.serve(() => new Response(200, { body: Buffer.alloc(2_000_000) }));
    const client = res.client();
    const sink = new Writable({
      write(_chunk, _enc, cb) {
        cb(new Error("disk full"));
      },
    });
    sink.on("error", () => {});
    const err = await rejectionOf(client.get(server.url, { responseStream: sink }), 5_000);
    expect(err).toBeInstanceOf(HTTPError);
    await waitFor(() => server.connections === 0, 5_000, "the connection to be dropped");
  });

  test("a Writable destroyed mid-body fails the request instead of hanging it", async () => {
    const server = await res.serve(() => new Response(200, { body: Buffer.alloc(2_000_000) }));
    const client = res.client();
    let n = 0;
    const sink = new Writable({
      highWaterMark: 1024,
      write(_chunk, _enc, cb) {
        if (++n === 2) sink.destroy();
        else setImmediate(cb);
      },
    });
    const err = await rejectionOf(client.get(server.url, { responseStream: sink }), 5_000);
    expect(err).toBeInstanceOf(HTTPError);
  });
});

describe("bad input", () => {
  test("an invalid URL or another scheme is an ArgumentError", async () => {
    const client = res.client();
    for (const url of ["not a url", "ftp://127.0.0.1/file", "file:///etc/passwd", "/relative", ""]) {
      const err = await rejectionOf(client.get(url));
      expect(err, url).toBeInstanceOf(ArgumentError);
    }
    expect(await rejectionOf(client.get(42 as unknown as string))).toBeInstanceOf(ArgumentError);
    expect(await rejectionOf(client.request("", "http://127.0.0.1:1/"))).toBeInstanceOf(ArgumentError);
  });

  test("a header value with CR/LF is a ProtocolError before anything is sent", async () => {
    const raw = await res.raw((conn) => {
      conn.onHead(1, () => conn.write(reply("fine")));
    });
    const client = res.client();
    const attempts: Promise<unknown>[] = [
      client.get(raw.url, { headers: { "X-A": "a\r\nX-Injected: 1" } }),
      client.get(raw.url, { headers: { "X-A": "a\nX-Injected: 1" } }),
      client.get(raw.url, { headers: [["X-A", "a\rb"]] }),
      client.get(raw.url, { headers: { "Bad\r\nName": "v" } }),
      client.post(raw.url, {
        body: "x",
        headers: { "Content-Type": "text/plain\r\n\r\nGET /smuggled HTTP/1.1" },
      }),
    ];
    for (const p of attempts) expect(await rejectionOf(p)).toBeInstanceOf(ProtocolError);
    expect(raw.accepted).toBe(0);
    // A good request afterwards is the first (and only) thing the server sees.
    expect((await client.get(raw.url)).text()).toBe("fine");
    expect(raw.accepted).toBe(1);
    expect(raw.conns[0]!.received).not.toContain("Injected");
    expect(raw.conns[0]!.received).not.toContain("smuggled");
  });

  test("defaultHeaders with CR/LF are refused when the Client is made", () => {
    expect(() => new Client({ defaultHeaders: { "X-A": "a\r\nb" } })).toThrow(ProtocolError);
  });

  test("an invalid method token is refused", async () => {
    const raw = await res.raw((conn) => {
      conn.onHead(1, () => conn.write(reply("fine")));
    });
    const client = res.client();
    const err = await rejectionOf(client.request("GET /x HTTP/1.1\r\nX:", raw.url));
    expect(err).toBeInstanceOf(ArgumentError);
    for (const c of raw.conns) expect(c.received).toBe("");
  });

  test("invalid timeouts are ArgumentErrors", async () => {
    const raw = await res.raw();
    const client = res.client();
    expect(await rejectionOf(client.get(raw.url, { readIdleTimeout: -1 }))).toBeInstanceOf(ArgumentError);
    expect(await rejectionOf(client.get(raw.url, { connectTimeout: Number.NaN }))).toBeInstanceOf(
      ArgumentError,
    );
    expect(raw.accepted).toBe(0);
  });

  test("a raw server never sees a request whose head the client refused", async () => {
    const raw = await RawServer.start();
    res.add(raw);
    const client = res.client();
    await rejectionOf(client.get(raw.url, { headers: { "X-Nul": "a\u0000b" } }));
    expect(raw.accepted).toBe(0);
  });
});
