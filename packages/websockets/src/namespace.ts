// `WebSockets`: every function under one name, as HTTP.jl's `HTTP.WebSockets` (the umbrella package
// exports this, since `open`, `listen` and `close` also name HTTP functions there).
import { close, forceClose, ping, pong, receive, send, serverAddr } from "./functions.js";
import { isUpgradeRequest, listen } from "./listen.js";
import { open } from "./open.js";
import { upgrade } from "./upgrade.js";

export const WebSockets = Object.freeze({
  open,
  listen,
  upgrade,
  isUpgrade: isUpgradeRequest,
  send,
  receive,
  ping,
  pong,
  close,
  serverAddr,
  forceClose,
});
