import { expect, test } from "vitest";

// The public surface of the package: a name can only appear or disappear on purpose.
test("the public surface of @hyperwire/websockets", async () => {
  const surface = Object.keys(await import("../src/index.js")).sort();
  expect(surface).toEqual([
    "CLOSE_WAIT_MS",
    "LISTEN_DEFAULTS",
    "OPEN_DEFAULTS",
    "SEND_HIGH_WATER",
    "WebSocket",
    "WebSocketServer",
    "WebSockets",
    "close",
    "forceClose",
    "isUpgrade",
    "isValidCloseCode",
    "listen",
    "open",
    "ping",
    "pong",
    "receive",
    "send",
    "serverAddr",
    "upgrade",
  ]);
});
