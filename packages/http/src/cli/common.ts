// Option parsing shared by the hyperwire commands: headers, TLS trust, numbers.
import { readFileSync } from "node:fs";
import type tls from "node:tls";
import { UsageError } from "./exit.js";

/** `-H 'Name: value'` lines as header pairs (a line without a colon is a usage error). */
export function parseHeaderLines(lines: readonly string[] | undefined): [string, string][] {
  const out: [string, string][] = [];
  for (const line of lines ?? []) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new UsageError(`a header must look like 'Name: value', got '${line}'`);
    out.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return out;
}

/** A non-negative integer option (`--timeout 5000`), or undefined when not given. */
export function parseCount(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} takes a whole number, got '${value}'`);
  return Number(value);
}

/** TLS options from `--insecure` and `--cacert FILE`, or undefined when neither is given. */
export function tlsOptions(
  insecure: boolean | undefined,
  cacert: string | undefined,
): tls.ConnectionOptions | undefined {
  if (!insecure && cacert === undefined) return undefined;
  const options: tls.ConnectionOptions = {};
  if (insecure) options.rejectUnauthorized = false;
  if (cacert !== undefined) options.ca = readFileOption("cacert", cacert);
  return options;
}

/** Reads a file named by an option; a missing file is a usage error naming the option. */
export function readFileOption(name: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`--${name}: cannot read ${path}: ${(err as Error).message}`);
  }
}
