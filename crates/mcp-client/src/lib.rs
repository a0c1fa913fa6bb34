//! Connections to the external MCP servers of `MCP_SERVERS`: gekko as an MCP *client*.
//!
//! For each configured server gekko opens a session (a child process over stdio, or
//! streamable HTTP with an optional bearer token), runs the MCP `initialize` handshake,
//! lists the tools and keeps the session open, with the official Rust SDK (`rmcp`)
//! underneath. A server that dies mid-session is noticed (its transport closes, or a
//! call or the keepalive `ping` fails), reported down with the reason, and reconnected
//! with the workspace backoff, behind a small connect circuit breaker. An `initialize`
//! that never answers times out after the server's `init_timeout` and counts as down.
//!
//! The parts:
//!
//! - [`McpPool`] ([`pool`]): the connections and what other components call:
//!   [`McpPool::servers`], [`McpPool::tools`], [`McpPool::call_tool`], each server's
//!   [`ServerStatus`]; and [`probe`], the one-shot connect `gekko check` runs.
//! - [`McpClientsService`] ([`service`]): the pool as the `mcp-clients` service of
//!   `gekko up`, with readiness (a required server that is down keeps gekko not ready)
//!   and `McpService` over gRPC ([`McpGrpc`], [`grpc`]).
//! - [`metrics`]: `gekko_mcp_client_up`, `_tools`, `_calls_total`, `_reconnects_total`,
//!   the call latency histogram and the breaker state, all labelled by server.
//!
//! Secrets: a server's token is only ever put in its `Authorization` header; it is not
//! in `Debug` output, logs, errors or the audit trail, and a stdio child does not inherit
//! gekko's own environment variables (venue keys, tokens).

mod breaker;
mod connection;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod pool;
pub mod service;

pub use breaker::CircuitState;
pub use error::McpClientError;
pub use grpc::McpGrpc;
pub use pool::{ConnectionState, McpPool, PoolOptions, ServerStatus, ToolInfo, ToolOutcome, probe};
pub use service::{McpClientsService, McpClientsSettings, readiness_component};
