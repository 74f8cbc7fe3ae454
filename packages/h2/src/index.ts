// The public surface of @hyperwire/h2: re-exports only.
// For hyperwire's client, not for applications: the HTTP/2 session pool the client's Transport uses.
export {
  connectH2Session,
  H2_CLIENT_DEFAULTS,
  H2ClientSession,
  type H2ConnectOptions,
  H2SessionPool,
  isUnprocessedStreamError,
} from "./client-session.js";
export {
  ENHANCE_YOUR_CALM,
  H2GoAwayError,
  H2NegotiationError,
  H2StreamResetError,
  h2ErrorCodeName,
  REFUSED_STREAM,
} from "./errors.js";
/** Server-side HTTP/2 session policy; for hyperwire's server (`@hyperwire/server`), not for applications. */
export {
  PING_ACK_TIMEOUT_MS,
  RAPID_RESET_ALLOWANCE,
  SESSION_LINGER_MS,
  SESSION_LIVENESS_MS,
  ServerSession,
  type ServerSessionOptions,
} from "./server-session.js";
export {
  DEFAULT_WINDOW_SIZE,
  HTTP2_SETTINGS_DEFAULTS,
  HTTP2Settings,
  type HTTP2SettingsInit,
  MAX_WINDOW_SIZE,
} from "./settings.js";
