import http from "node:http";
import { expect, test } from "vitest";
import { main } from "../src/server.js";

function request(url: string, method = "GET", body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        text += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("the server example answers its routes", async () => {
  const server = await main({ port: 0 });
  try {
    expect(await request(`${server.url}/hello`)).toEqual({ status: 200, body: "hello, world\n" });
    expect(await request(`${server.url}/echo`, "POST", "ping")).toEqual({ status: 200, body: "ping" });
    expect((await request(`${server.url}/nope`)).status).toBe(404);
  } finally {
    await server.close();
  }
});

test("with once, it stops after the first request", async () => {
  const server = await main({ port: 0, once: true });
  expect((await request(`${server.url}/hello`)).body).toBe("hello, world\n");
  await server.wait();
  expect(server.isOpen).toBe(false);
});
