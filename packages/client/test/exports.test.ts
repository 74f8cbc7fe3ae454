import { expect, test } from "vitest";

test("the public surface of @hyperwire/client", async () => {
  const surface = Object.keys(await import("../src/index.js")).sort();
  expect(surface).toEqual([
    "Client",
    "ClientStream",
    "TRANSPORT_DEFAULTS",
    "Transport",
    "USER_AGENT",
    "closeIdleConnections",
    "del",
    "delete",
    "dial",
    "get",
    "getDefaultClient",
    "head",
    "open",
    "options",
    "patch",
    "post",
    "put",
    "query",
    "request",
  ]);
});
