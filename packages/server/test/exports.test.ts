import { expect, test } from "vitest";

// The public surface of the package: a name can only appear or disappear on purpose.
test("the public surface of @hyperwire/server", async () => {
  const surface = Object.keys(await import("../src/index.js")).sort();
  expect(surface).toEqual([
    "COMPRESSION_DEFAULTS",
    "COOKIES_KEY",
    "CORS_DEFAULTS",
    "DEFAULTS",
    "FILE_SERVER_DEFAULTS",
    "HANDLER_TIMEOUT_DEFAULTS",
    "LISTEN_ANY_ATTEMPTS",
    "MAX_ROUTE_SEGMENTS",
    "Router",
    "SERVE_CONTENT_DEFAULTS",
    "SSE_DEFAULTS",
    "Server",
    "ServerStream",
    "compose",
    "compression",
    "connectProtocol",
    "cookieMiddleware",
    "cors",
    "fileServer",
    "formatCombinedLog",
    "getCookies",
    "getParam",
    "getParams",
    "getRoute",
    "handlerTimeout",
    "isCompressibleType",
    "isUpgradeable",
    "listen",
    "negotiateEncoding",
    "serve",
    "serveContent",
    "serveFile",
    "sseResponse",
    "streamHandler",
    "takeConnect",
    "takeUpgrade",
  ]);
});
