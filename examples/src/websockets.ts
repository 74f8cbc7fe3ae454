// The WebSocket example of API.md, as written: an upper-casing echo server and a client that says hello.
//   node examples/dist/websockets.js   prints HELLO
import * as HTTP from "@hyperwire/http";

/** Runs the example and returns the reply. */
export async function main(): Promise<unknown> {
  const server = await HTTP.WebSockets.listen(
    async (ws) => {
      for await (const msg of ws) {
        await HTTP.WebSockets.send(ws, String(msg).toUpperCase());
      }
    },
    { host: "127.0.0.1", port: 0 },
  );

  const url = "ws://" + HTTP.WebSockets.serverAddr(server) + "/echo";
  const reply = await HTTP.WebSockets.open(
    url,
    async (ws) => {
      await HTTP.WebSockets.send(ws, "hello");
      return HTTP.WebSockets.receive(ws);
    },
    { proxy: new HTTP.ProxyConfig() },
  );
  await HTTP.WebSockets.forceClose(server);
  return reply;
}

if (process.argv[1]?.endsWith("websockets.js")) console.log(await main());
