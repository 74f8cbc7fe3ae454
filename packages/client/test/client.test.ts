import { ArgumentError, ClosedError, ConnectError, Response, TimeoutError } from "@hyperwire/core";
import { afterEach, describe, expect, test } from "vitest";
import {
  Client,
  closeIdleConnections,
  get,
  getDefaultClient,
  open,
  post,
  request,
  Transport,
} from "../src/index.js";
import { type Echoed, echo, headerValues, Resources, rejectionOf, waitFor } from "./helpers.js";

const res = new Resources();
afterEach(() => res.closeAll());

describe("Client defaults", () => {
  test("a new Client has its own open transport and statusException on", () => {
    const client = res.client();
    expect(client.isOpen).toBe(true);
    expect(client.transport).toBeInstanceOf(Transport);
    expect(client.transport.isOpen).toBe(true);
    expect(client.defaults.statusException).toBe(true);
    expect(client.defaults.defaultHeaders).toBeUndefined();
  });

  test("two clients do not share a transport", () => {
    expect(res.client().transport).not.toBe(res.client().transport);
  });

  test("the client's timeouts apply to its requests; a call's value wins", async () => {
    const raw = await res.raw(); // accepts, reads, never answers
    const client = res.client({ readIdleTimeout: 150 });
    const t0 = performance.now();
    const err = await rejectionOf(client.get(raw.url));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).phase).toBe("readIdle");
    expect((err as TimeoutError).timeoutMs).toBe(150);
    expect(performance.now() - t0).toBeLessThan(5_000);

    // A call's 0 disables the client's readIdleTimeout: its own requestTimeout is what fires.
    const err2 = await rejectionOf(client.get(raw.url, { readIdleTimeout: 0, requestTimeout: 400 }));
    expect((err2 as TimeoutError).phase).toBe("request");
  });

  test("invalid timeout defaults are an ArgumentError", () => {
    expect(() => new Client({ requestTimeout: -5 })).toThrow(ArgumentError);
    expect(() => new Client({ connectTimeout: Number.POSITIVE_INFINITY })).toThrow(ArgumentError);
    expect(() => new Client({ readIdleTimeout: "1" as unknown as number })).toThrow(ArgumentError);
  });

  test("localAddress binds the client's own transport", async () => {
    let remote: string | undefined;
    const server = await res.counting((req, r) => {
      remote = req.socket.remoteAddress;
      r.end("ok");
    });
    const client = res.client({ localAddress: "127.0.0.1" });
    expect(client.transport.localAddress).toBe("127.0.0.1");
    expect((await client.get(server.url)).text()).toBe("ok");
    expect(remote).toBe("127.0.0.1");
  });

  test("a localAddress that is not ours is a ConnectError", async () => {
    const server = await res.counting();
    const client = res.client({ localAddress: "192.0.2.1" }); // TEST-NET-1: never a local address
    expect(await rejectionOf(client.get(server.url))).toBeInstanceOf(ConnectError);
  });

  test("localAddress together with a transport is an ArgumentError", () => {
    const transport = res.add(new Transport());
    expect(() => new Client({ transport, localAddress: "127.0.0.1" })).toThrow(ArgumentError);
  });
});

describe("close", () => {
  test("poisons the client: later calls reject with ClosedError", async () => {
    const server = await res.serve(() => new Response(200, { body: "ok" }));
    const client = new Client();
    expect((await client.get(server.url)).text()).toBe("ok");
    await client.close();
    expect(client.isOpen).toBe(false);
    expect(await rejectionOf(client.get(server.url))).toBeInstanceOf(ClosedError);
    expect(await rejectionOf(client.post(server.url, { body: "x" }))).toBeInstanceOf(ClosedError);
    expect(await rejectionOf(client.open("GET", server.url))).toBeInstanceOf(ClosedError);
    expect(await rejectionOf(get(server.url, { client }))).toBeInstanceOf(ClosedError);
    const err = (await rejectionOf(client.get(server.url))) as ClosedError;
    expect(err.message).toMatch(/closed/);
    // Idempotent.
    await client.close();
  });

  test("closes its own transport and its idle connections", async () => {
    const server = await res.counting();
    const client = new Client();
    await client.get(server.url);
    expect(server.open).toBe(1);
    expect(client.transport.idleConnectionCount()).toBe(1);
    await client.close();
    expect(client.transport.isOpen).toBe(false);
    await waitFor(() => server.open === 0, 5_000, "the server to see the idle connection close");
  });

  test("await using closes the client", async () => {
    const server = await res.counting();
    let escaped: Client | undefined;
    {
      await using client = new Client();
      escaped = client;
      await client.get(server.url);
    }
    expect(escaped.isOpen).toBe(false);
    expect(escaped.transport.isOpen).toBe(false);
    await waitFor(() => server.open === 0, 5_000, "the connection to close");
  });

  test("a client given a Transport does not close it", async () => {
    const server = await res.counting();
    const transport = res.add(new Transport());
    const a = new Client({ transport });
    await a.get(server.url);
    await a.close();
    expect(transport.isOpen).toBe(true);
    expect(transport.idleConnectionCount()).toBe(1);
    const b = res.client({ transport });
    expect((await b.get(server.url)).text()).toBe("ok");
    // The second client reused the connection the first one left idle.
    expect(server.accepted).toBe(1);
  });
});

describe("top-level helpers", () => {
  test("use a lazily created default client", async () => {
    const server = await res.serve(echo);
    const first = getDefaultClient();
    try {
      expect(getDefaultClient()).toBe(first);
      const r = await get(`${server.url}/d`);
      expect((JSON.parse(r.text()) as Echoed).target).toBe("/d");
      const p = await post(server.url, { body: "x" });
      expect(headerValues(JSON.parse(p.text()) as Echoed, "content-length")).toEqual(["1"]);
      expect((await request("PUT", server.url)).status).toBe(200);
      const stream = await open("GET", server.url);
      await stream.startRead();
      await stream.closeRead();
      expect(first.transport.idleConnectionCount(`http://127.0.0.1:${server.port}`)).toBeGreaterThan(0);
      closeIdleConnections();
      expect(first.transport.idleConnectionCount()).toBe(0);
    } finally {
      await first.close();
    }
    // A closed default client is replaced on next use.
    const second = getDefaultClient();
    try {
      expect(second).not.toBe(first);
      expect(second.isOpen).toBe(true);
      expect((await get(server.url)).status).toBe(200);
    } finally {
      await second.close();
    }
  });

  test("closeIdleConnections(target) closes the target's idle connections", async () => {
    const server = await res.counting();
    const client = res.client();
    await client.get(server.url);
    expect(client.transport.idleConnectionCount()).toBe(1);
    closeIdleConnections(client);
    expect(client.transport.idleConnectionCount()).toBe(0);
    await waitFor(() => server.open === 0, 5_000, "the server to see the close");
  });

  test("the client option routes a helper through that client", async () => {
    const server = await res.counting();
    const client = res.client();
    await get(server.url, { client });
    expect(client.transport.idleConnectionCount()).toBe(1);
  });
});
