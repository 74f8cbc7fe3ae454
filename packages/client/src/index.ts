// The public surface of @hyperwire/client. It gets its content from its own issue.
export {};
