import { expect, test } from "vitest";
import { main } from "../src/websockets.js";

test("the WebSocket example of API.md replies HELLO", async () => {
  expect(await main()).toBe("HELLO");
});
