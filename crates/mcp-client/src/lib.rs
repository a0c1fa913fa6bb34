//! Connections to configured MCP servers: initialize, list tools, a pool with backoff and a circuit breaker, and the McpService gRPC.
