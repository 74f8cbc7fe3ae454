// The public surface of @hyperwire/h2: re-exports only.
export {
  ENHANCE_YOUR_CALM,
  H2GoAwayError,
  H2NegotiationError,
  H2StreamResetError,
  h2ErrorCodeName,
  REFUSED_STREAM,
} from "./errors.js";
export {
  DEFAULT_WINDOW_SIZE,
  HTTP2_SETTINGS_DEFAULTS,
  HTTP2Settings,
  type HTTP2SettingsInit,
  MAX_WINDOW_SIZE,
} from "./settings.js";
