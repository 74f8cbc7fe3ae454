import { expect, test } from "vitest";

// The public surface of the package: a name can only appear or disappear on purpose.
test("the public surface of @hyperwire/h2", async () => {
  const surface = Object.keys(await import("../src/index.js")).sort();
  expect(surface).toEqual([
    "DEFAULT_WINDOW_SIZE",
    "ENHANCE_YOUR_CALM",
    "H2ClientSession",
    "H2GoAwayError",
    "H2NegotiationError",
    "H2SessionPool",
    "H2StreamResetError",
    "H2_CLIENT_DEFAULTS",
    "HTTP2Settings",
    "HTTP2_SETTINGS_DEFAULTS",
    "MAX_WINDOW_SIZE",
    "PING_ACK_TIMEOUT_MS",
    "RAPID_RESET_ALLOWANCE",
    "REFUSED_STREAM",
    "SESSION_LINGER_MS",
    "SESSION_LIVENESS_MS",
    "ServerSession",
    "connectH2Session",
    "h2ErrorCodeName",
    "isUnprocessedStreamError",
  ]);
});
