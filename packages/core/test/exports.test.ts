import { expect, test } from "vitest";

// The public surface of @hyperwire/core at run time (type-only exports do not appear here). A change
// to this list is a change to the package's API: update it on purpose, never to make the test pass.
const expected = [
  "AddressInUseError",
  "ArgumentError",
  "CanceledError",
  "ClosedError",
  "ConnectError",
  "DNSError",
  "Deadline",
  "DecompressionLimitError",
  "HTTPError",
  "HTTPTimeoutError",
  "Headers",
  "IdleTimer",
  "NoProxy",
  "ParseError",
  "ProtocolError",
  "ProxyConfig",
  "Request",
  "RequestContext",
  "RequestRetryError",
  "Response",
  "SSEEvent",
  "STATUS_TEXTS",
  "StatusError",
  "TIMEOUT_DEFAULTS",
  "TLSHandshakeError",
  "TimeoutError",
  "TooManyRedirectsError",
  "WebSocketError",
  "appendHeader",
  "buildQuery",
  "canonicalHeaderKey",
  "checkTimeout",
  "defaultHeader",
  "escapeUri",
  "formatEvent",
  "fromWebRequest",
  "fromWebResponse",
  "hasHeader",
  "header",
  "headerContains",
  "isLoopbackHost",
  "isToken",
  "mergeDefaultQuery",
  "mergeQuery",
  "parseProxyUrl",
  "parseQuery",
  "parseQueryPairs",
  "proxyAuthorization",
  "proxyFromEnvironment",
  "proxyPort",
  "proxyUrl",
  "readBody",
  "redactProxyUrl",
  "removeHeader",
  "resolveTimeouts",
  "setHeader",
  "statusText",
  "toBody",
  "toHeaders",
  "toWebRequest",
  "toWebResponse",
  "unescapeUri",
  "validateHeader",
];

test("index.ts exports exactly the public names", async () => {
  const mod = await import("../src/index.js");
  expect(Object.keys(mod).sort()).toEqual([...expected].sort());
});

test("no export is undefined", async () => {
  const mod: Record<string, unknown> = await import("../src/index.js");
  for (const name of expected) expect(mod[name], name).toBeDefined();
});
