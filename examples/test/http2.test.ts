import { expect, test } from "vitest";
import { main } from "../src/http2.js";

test("the HTTP/2 example: the default client negotiates h2, preferHttp2: false gets HTTP/1.1", async () => {
  expect(await main()).toEqual({ defaultClient: "HTTP/2", h1only: "HTTP/1.1" });
});
