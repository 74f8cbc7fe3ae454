// The public surface of @hyperwire/websockets. It gets its content from its own issue.
export {};
