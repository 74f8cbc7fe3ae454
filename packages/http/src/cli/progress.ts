// A one-line download progress bar on a terminal: bytes so far, the total when known, the rate.
import type { WriteStream } from "node:tty";

const WIDTH = 30;
/** Redraws at most this often, so a fast download does not spend its time painting. */
const REDRAW_MS = 100;

/** Formats a byte count the way people read it: `512 B`, `1.5 KiB`, `3.2 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** The bar's text for `done` of `total` bytes (total unknown: no bar, just the count). */
export function progressLine(done: number, total: number | undefined, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? `${formatBytes(Math.round((done * 1000) / elapsedMs))}/s` : "";
  if (total === undefined || total <= 0) return `${formatBytes(done)} ${rate}`.trimEnd();
  const fraction = Math.min(1, done / total);
  const filled = Math.round(fraction * WIDTH);
  const bar = `${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}`;
  const percent = `${Math.floor(fraction * 100)}`.padStart(3);
  return `[${bar}] ${percent}% ${formatBytes(done)} / ${formatBytes(total)} ${rate}`.trimEnd();
}

/** Draws {@link progressLine} on a terminal, in place. */
export class ProgressBar {
  readonly #out: WriteStream;
  readonly #start = performance.now();
  #total: number | undefined;
  #done = 0;
  #drawnAt = 0;

  constructor(out: WriteStream) {
    this.#out = out;
  }

  set total(n: number | undefined) {
    this.#total = n;
  }

  add(n: number): void {
    this.#done += n;
    const now = performance.now();
    if (now - this.#drawnAt >= REDRAW_MS) {
      this.#drawnAt = now;
      this.#draw(now);
    }
  }

  /** Draws the last state and moves to a new line. */
  finish(): void {
    this.#draw(performance.now());
    this.#out.write("\n");
  }

  #draw(now: number): void {
    const line = progressLine(this.#done, this.#total, now - this.#start);
    this.#out.write(`\r${line.slice(0, Math.max(10, (this.#out.columns ?? 80) - 1))}\x1b[K`);
  }
}
