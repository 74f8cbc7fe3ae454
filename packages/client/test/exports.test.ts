import { expect, test } from "vitest";

test("the public surface of @hyperwire/client", async () => {
  const surface = Object.keys(await import("../src/index.js")).sort();
  expect(surface).toEqual([
    "Client",
    "ClientStream",
    "CookieJar",
    "H2GoAwayError",
    "H2NegotiationError",
    "H2StreamResetError",
    "HTTP2Settings",
    "RETRY_BUCKET_DEFAULTS",
    "RetryBucket",
    "TRANSPORT_DEFAULTS",
    "Transport",
    "USER_AGENT",
    "closeIdleConnections",
    "cookieHeader",
    "del",
    "delete",
    "dial",
    "get",
    "getDefaultClient",
    "head",
    "isRecoverable",
    "jarFor",
    "open",
    "options",
    "patch",
    "post",
    "put",
    "query",
    "request",
    "retryAttempts",
    "sse",
  ]);
});
