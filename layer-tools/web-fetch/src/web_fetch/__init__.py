"""web-fetch: an MCP tool server that reads a web page as clean text, SSRF-safe by default."""
