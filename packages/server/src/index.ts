// The public surface of @hyperwire/server. It gets its content from its own issue.
export {};
