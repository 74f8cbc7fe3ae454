import { describe, expect, test } from "vitest";
import {
  AddressInUseError,
  ArgumentError,
  CanceledError,
  ClosedError,
  ConnectError,
  DecompressionLimitError,
  DNSError,
  HTTPError,
  HTTPTimeoutError,
  ParseError,
  ProtocolError,
  RequestRetryError,
  StatusError,
  TimeoutError,
  TLSHandshakeError,
  TooManyRedirectsError,
  WebSocketError,
} from "../src/index.js";

const root = new Error("root cause");
const res = { status: 503 };

// [class name, expected code, build without cause, build with cause]
const cases: [string, string, () => HTTPError, (cause: unknown) => HTTPError][] = [
  [
    "HTTPError",
    "HW_HTTP_ERROR",
    () => new HTTPError("m"),
    (cause) => new HTTPError("m", undefined, { cause }),
  ],
  [
    "ArgumentError",
    "HW_ARGUMENT",
    () => new ArgumentError("m"),
    (cause) => new ArgumentError("m", { cause }),
  ],
  ["ClosedError", "HW_CLOSED", () => new ClosedError("m"), (cause) => new ClosedError("m", { cause })],
  ["ParseError", "HW_PARSE", () => new ParseError("m"), (cause) => new ParseError("m", { cause })],
  [
    "ProtocolError",
    "HW_PROTOCOL",
    () => new ProtocolError("m"),
    (cause) => new ProtocolError("m", { cause }),
  ],
  ["CanceledError", "HW_CANCELED", () => new CanceledError(), (cause) => new CanceledError("m", { cause })],
  [
    "TimeoutError",
    "HW_TIMEOUT",
    () => new TimeoutError("connect", 10, 11),
    (cause) => new TimeoutError("connect", 10, 11, { cause }),
  ],
  [
    "ConnectError",
    "HW_CONNECT",
    () => new ConnectError("127.0.0.1:1"),
    (cause) => new ConnectError("127.0.0.1:1", { cause }),
  ],
  [
    "DNSError",
    "HW_DNS",
    () => new DNSError("nope.invalid"),
    (cause) => new DNSError("nope.invalid", { cause }),
  ],
  [
    "TLSHandshakeError",
    "HW_TLS",
    () => new TLSHandshakeError("m"),
    (cause) => new TLSHandshakeError("m", { cause }),
  ],
  [
    "AddressInUseError",
    "HW_ADDRESS_IN_USE",
    () => new AddressInUseError("127.0.0.1:80"),
    (cause) => new AddressInUseError("127.0.0.1:80", { cause }),
  ],
  ["StatusError", "HW_STATUS", () => new StatusError(res), (cause) => new StatusError(res, { cause })],
  [
    "TooManyRedirectsError",
    "HW_REDIRECTS",
    () => new TooManyRedirectsError(3, res),
    (cause) => new TooManyRedirectsError(3, res, { cause }),
  ],
  [
    "RequestRetryError",
    "HW_RETRY",
    () => new RequestRetryError(undefined),
    (cause) => new RequestRetryError(cause),
  ],
  [
    "DecompressionLimitError",
    "HW_DECOMPRESSION_LIMIT",
    () => new DecompressionLimitError(1024),
    (cause) => new DecompressionLimitError(1024, { cause }),
  ],
  [
    "WebSocketError",
    "HW_WEBSOCKET",
    () => new WebSocketError(1006, ""),
    (cause) => new WebSocketError(1006, "", { cause }),
  ],
];

describe("every error class", () => {
  test.each(cases)("%s: instanceof HTTPError and Error, code %s, name, message", (name, code, make) => {
    const err = make();
    expect(err).toBeInstanceOf(HTTPError);
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe(code);
    expect(err.name).toBe(name);
    expect(typeof err.message).toBe("string");
    expect(err.message.length).toBeGreaterThan(0);
    expect(String(err).startsWith(`${name}: `)).toBe(true);
    expect(err.stack?.startsWith(`${name}: `)).toBe(true);
  });

  test.each(cases)("%s: cause is preserved, absent when not given", (_name, _code, make, makeWithCause) => {
    expect(Object.hasOwn(make(), "cause")).toBe(false);
    const err = makeWithCause(root);
    expect(err.cause).toBe(root);
  });

  test("the codes are distinct", () => {
    const codes = cases.map(([, code]) => code);
    expect(new Set(codes).size).toBe(codes.length);
  });

  test("only the classes that are related are instances of one another", () => {
    expect(new TimeoutError("tls", 1, 1)).not.toBeInstanceOf(CanceledError);
    expect(new CanceledError()).not.toBeInstanceOf(TimeoutError);
    expect(new ParseError("x")).not.toBeInstanceOf(ProtocolError);
    expect(new ArgumentError("x")).not.toBeInstanceOf(ProtocolError);
  });

  test("a falsy cause other than undefined is still kept", () => {
    expect(new ArgumentError("x", { cause: null }).cause).toBeNull();
    expect(new ArgumentError("x", { cause: 0 }).cause).toBe(0);
  });
});

describe("specific fields", () => {
  test("ProtocolError takes an optional code", () => {
    expect(new ProtocolError("bad", { code: "HW_INVALID_HEADER" }).code).toBe("HW_INVALID_HEADER");
  });

  test("CanceledError has a default message", () => {
    expect(new CanceledError().message).toBe("request canceled");
    expect(new CanceledError("user left").message).toBe("user left");
  });

  test("TimeoutError carries phase, timeoutMs, elapsedMs; operation is HTTP.jl's name", () => {
    const phases = [
      "connect",
      "tls",
      "request",
      "responseHeader",
      "readIdle",
      "writeIdle",
      "expectContinue",
      "websocketHandshake",
    ] as const;
    for (const phase of phases) {
      const err = new TimeoutError(phase, 250, 251.7);
      expect(err.phase).toBe(phase);
      expect(err.operation).toBe(phase);
      expect(err.timeoutMs).toBe(250);
      expect(err.elapsedMs).toBe(251.7);
      expect(err.message).toContain(phase);
      expect(err.message).toContain("250 ms");
      expect(err.message).toContain("252 ms");
    }
  });

  test("HTTPTimeoutError is TimeoutError", () => {
    expect(HTTPTimeoutError).toBe(TimeoutError);
    expect(new HTTPTimeoutError("readIdle", 1, 2)).toBeInstanceOf(TimeoutError);
  });

  test("StatusError carries the response and its status", () => {
    const response = { status: 404, body: "missing" };
    const err = new StatusError(response, { method: "GET", url: "http://x/y", retries: 2 });
    expect(err.response).toBe(response);
    expect(err.status).toBe(404);
    expect(err.message).toContain("GET http://x/y");
    expect(err.message).toContain("404");
    expect(err.message).toContain("2 retries");
    expect(new StatusError({ status: 500 }).message).toBe("request failed with status 500");
  });

  test("TooManyRedirectsError carries limit and response", () => {
    const response = { status: 302 };
    const err = new TooManyRedirectsError(10, response);
    expect(err.limit).toBe(10);
    expect(err.response).toBe(response);
    expect(err.message).toContain("10");
  });

  test("RequestRetryError.err is the wrapped error, also in cause and the message", () => {
    const inner = new ConnectError("127.0.0.1:9");
    const err = new RequestRetryError(inner);
    expect(err.err).toBe(inner);
    expect(err.cause).toBe(inner);
    expect(err.message).toContain(inner.message);
  });

  test("WebSocketError carries closeCode, reason and status", () => {
    const err = new WebSocketError(1002, "bad handshake", { status: 400 });
    expect(err.closeCode).toBe(1002);
    expect(err.reason).toBe("bad handshake");
    expect(err.status).toBe(400);
    expect(err.message).toContain("1002");
    expect(err.message).toContain("bad handshake");
    expect(new WebSocketError(1006, "").status).toBeUndefined();
  });

  test("ConnectError, DNSError and AddressInUseError name the address and the cause", () => {
    const cause = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" });
    const c = new ConnectError("127.0.0.1:9", { cause });
    expect(c.address).toBe("127.0.0.1:9");
    expect(c.message).toContain("127.0.0.1:9");
    expect(c.message).toContain("ECONNREFUSED");
    expect(new ConnectError("h:1", { message: "custom" }).message).toBe("custom");
    const d = new DNSError("nope.invalid", { cause: new Error("getaddrinfo ENOTFOUND") });
    expect(d.hostname).toBe("nope.invalid");
    expect(d.message).toContain("ENOTFOUND");
    const a = new AddressInUseError("0.0.0.0:8080");
    expect(a.address).toBe("0.0.0.0:8080");
    expect(a.message).toContain("0.0.0.0:8080");
  });

  test("DecompressionLimitError carries the limit", () => {
    const err = new DecompressionLimitError(4096);
    expect(err.limit).toBe(4096);
    expect(err.message).toContain("4096");
  });
});
