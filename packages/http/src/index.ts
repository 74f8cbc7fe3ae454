// @hyperwire/http: the umbrella. It re-exports the public API of every hyperwire package.
export * from "@hyperwire/client";
export * from "@hyperwire/core";
export * from "@hyperwire/server";
