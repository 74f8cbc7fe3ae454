// @hyperwire/http: the umbrella. It re-exports the public API of every hyperwire package.
export * from "@hyperwire/core";
