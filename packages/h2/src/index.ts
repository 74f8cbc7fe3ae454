// The public surface of @hyperwire/h2. It gets its content from its own issue.
export {};
