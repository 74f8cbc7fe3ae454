// Exit codes of the hyperwire command. Where curl has a code for the same failure it is curl's, so
// scripts written for curl read them the same way.
import { ConnectError, DNSError, HTTPError, TimeoutError, TLSHandshakeError } from "@hyperwire/core";

/** Exit codes, by what happened. */
export const EXIT = Object.freeze({
  ok: 0,
  /** Any failure without a code of its own. */
  failure: 1,
  /** A bad command line (unknown option, missing URL, malformed header). */
  usage: 2,
  /** The response had a 4xx status. */
  clientErrorStatus: 4,
  /** The response had a 5xx status. */
  serverErrorStatus: 5,
  /** The host name did not resolve (curl's 6). */
  dns: 6,
  /** The connection could not be made (curl's 7). */
  connect: 7,
  /** A timeout (curl's 28). */
  timeout: 28,
  /** The TLS handshake failed (curl's 35). */
  tls: 35,
});

/** A command-line mistake: printed with the command's usage line, exit code 2. */
export class UsageError extends Error {}

/** The exit code for an error a command ended with. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT.usage;
  if (err instanceof DNSError) return EXIT.dns;
  if (err instanceof TimeoutError) return EXIT.timeout;
  if (err instanceof TLSHandshakeError) return EXIT.tls;
  if (err instanceof ConnectError) return EXIT.connect;
  return EXIT.failure;
}

/** The exit code for a response status: 0 below 400, else its class. */
export function exitCodeOfStatus(status: number): number {
  if (status >= 500) return EXIT.serverErrorStatus;
  if (status >= 400) return EXIT.clientErrorStatus;
  return EXIT.ok;
}

/** One line for stderr: the error's class and message (and its code for hyperwire errors). */
export function describeError(err: unknown): string {
  if (err instanceof HTTPError) return `hyperwire: ${err.message} (${err.name})`;
  if (err instanceof Error) return `hyperwire: ${err.message}`;
  return `hyperwire: ${String(err)}`;
}
