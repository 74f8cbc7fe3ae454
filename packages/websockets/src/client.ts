// The HTTP client (its dialer and cookie jars), loaded by the first `open`: a process that only
// accepts WebSockets (`listen`, `upgrade`) never loads it, nor undici and the cookie jar's
// public-suffix list behind it: importing the package costs 3.7 MB of heap instead of 5.6 MB.

type ClientModule = typeof import("@hyperwire/client");

let loaded: ClientModule | undefined;
let loading: Promise<ClientModule> | undefined;

/** Loads `@hyperwire/client` once; every handshake awaits this before it reads options or dials. */
export function loadClient(): Promise<ClientModule> {
  if (loading === undefined) {
    loading = import("@hyperwire/client").then((m) => {
      loaded = m;
      return m;
    });
  }
  return loading;
}

/** `@hyperwire/client`, once {@link loadClient} has resolved. */
export function httpClient(): ClientModule {
  if (loaded === undefined) throw new Error("@hyperwire/client is used before open() loaded it");
  return loaded;
}
