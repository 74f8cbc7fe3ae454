// HTTP/2 flow-control settings shared by the client and the server. node:http2 (nghttp2) does the
// framing; these values decide how much a peer may send before we read.
import { ArgumentError } from "@hyperwire/core";

/** The largest flow-control window HTTP/2 allows (RFC 9113 §6.9.1). */
export const MAX_WINDOW_SIZE = 2 ** 31 - 1;
/** The window every HTTP/2 connection and stream starts with (RFC 9113 §6.9.2). */
export const DEFAULT_WINDOW_SIZE = 65_535;

/** Options of {@link HTTP2Settings}. Sizes are bytes. */
export interface HTTP2SettingsInit {
  /**
   * The receive window of each stream, advertised as SETTINGS_INITIAL_WINDOW_SIZE. Default 65 535;
   * `1..2^31−1`.
   */
  initialWindowSize?: number;
  /**
   * The receive window of the whole connection, raised from 65 535 with a WINDOW_UPDATE right after
   * the preface. Default 65 535; `65 535..2^31−1`.
   */
  connectionWindowSize?: number;
}

/** The defaults of {@link HTTP2SettingsInit}, in one place. */
export const HTTP2_SETTINGS_DEFAULTS = Object.freeze({
  initialWindowSize: DEFAULT_WINDOW_SIZE,
  connectionWindowSize: DEFAULT_WINDOW_SIZE,
});

/**
 * HTTP/2 receive windows for a `Client` or a server. Validated at construction (an `ArgumentError`
 * names the bad field); immutable.
 *
 * ```ts
 * const settings = new HTTP2Settings({ initialWindowSize: 1 << 20, connectionWindowSize: 8 << 20 });
 * const client = new Client({ http2Settings: settings });
 * ```
 */
export class HTTP2Settings {
  readonly initialWindowSize: number;
  readonly connectionWindowSize: number;

  constructor(init: HTTP2SettingsInit = {}) {
    const initial = init.initialWindowSize ?? HTTP2_SETTINGS_DEFAULTS.initialWindowSize;
    const connection = init.connectionWindowSize ?? HTTP2_SETTINGS_DEFAULTS.connectionWindowSize;
    checkWindow("initialWindowSize", initial, 1);
    checkWindow("connectionWindowSize", connection, DEFAULT_WINDOW_SIZE);
    this.initialWindowSize = initial;
    this.connectionWindowSize = connection;
    Object.freeze(this);
  }

  /** Takes an `HTTP2Settings`, its init object, or `undefined` (the defaults). */
  static from(value: HTTP2Settings | HTTP2SettingsInit | undefined): HTTP2Settings {
    if (value instanceof HTTP2Settings) return value;
    if (value !== undefined && (value === null || typeof value !== "object")) {
      throw new ArgumentError("http2Settings must be an HTTP2Settings or an object of its options");
    }
    return value === undefined ? DEFAULT_SETTINGS : new HTTP2Settings(value);
  }
}

const DEFAULT_SETTINGS = new HTTP2Settings();

function checkWindow(name: string, value: number, min: number): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > MAX_WINDOW_SIZE) {
    throw new ArgumentError(
      `HTTP2Settings.${name} must be an integer from ${min} to ${MAX_WINDOW_SIZE} (2^31−1), got ${String(value)}`,
    );
  }
}
