// The seed's HTTP/2 example (API.md), run against a local TLS server: the default client negotiates
// h2 by ALPN; a client whose transport says `preferHttp2: false` gets HTTP/1.1 from the same server.
// The server's certificate comes from the test CA in fixtures/tls (made for the tests, nothing real).
import * as HTTP from "@hyperwire/http";
import { tls as fixtures } from "../../fixtures/tls/index.mjs";

/** What each client got: the protocol version of the response and its body. */
export interface Outcome {
  defaultClient: string;
  h1only: string;
}

export async function main(): Promise<Outcome> {
  const server = await HTTP.serve(
    (req) => new HTTP.Response(200, { body: `hello over HTTP/${req.version}` }),
    {
      host: "127.0.0.1",
      port: 0,
      tls: { key: fixtures.key, cert: fixtures.cert },
    },
  );
  const url = `https://localhost:${server.port}/`;
  // The test CA is not in the system store; a real site needs no `tls` option.
  const tls = { ca: fixtures.ca };
  const client = new HTTP.Client({ transport: new HTTP.Transport({ tls }) });
  const h1only = new HTTP.Client({ transport: new HTTP.Transport({ preferHttp2: false, tls }) });
  try {
    const viaDefault = await HTTP.get(url, { client });
    const resp = await HTTP.get(url, { client: h1only });
    const outcome = { defaultClient: `HTTP/${viaDefault.version}`, h1only: `HTTP/${resp.version}` };
    console.log(`default client:               ${outcome.defaultClient} (${viaDefault.text()})`);
    console.log(`preferHttp2: false client:    ${outcome.h1only} (${resp.text()})`);
    return outcome;
  } finally {
    await h1only.close();
    await client.close();
    await server.close();
  }
}

if (process.argv[1]?.endsWith("http2.js")) await main();
