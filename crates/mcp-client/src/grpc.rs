//! `gekko.v1.McpService` over the [`McpPool`]: ListServers, ListTools and CallTool for
//! internal tools (`proto/gekko/v1/mcp.proto`).
//!
//! Arguments and results cross as JSON text. Each pool error maps to the gRPC status the
//! proto documents, so a client can tell "nothing was sent" (NOT_FOUND,
//! INVALID_ARGUMENT, UNAVAILABLE for a server that is not up) from "sent, outcome
//! unknown" (DEADLINE_EXCEEDED, UNAVAILABLE for a lost connection, with the message
//! saying the tool may have run).
//!
//! Every CallTool is written to the audit trail (server, tool, caller, outcome; the
//! argument *names* only, since values may be anything the caller typed, secrets
//! included), because an external tool may act.

use std::time::Duration;

use gekko_audit::{AuditLog, AuditRecord};
use gekko_proto::v1::mcp_service_server::{McpService, McpServiceServer};
use gekko_proto::v1::{
    CallMcpToolRequest, CallMcpToolResponse, ListMcpServersRequest, ListMcpServersResponse,
    ListMcpToolsRequest, ListMcpToolsResponse, McpConnectionState, McpServerStatus, McpToolInfo,
};
use tonic::{Request, Response, Status};

use crate::error::McpClientError;
use crate::pool::{ConnectionState, McpPool, ServerStatus, ToolInfo};

/// The audit actor of CallTool records.
const ACTOR: &str = "mcp-clients";

/// The `McpService` implementation. Build the tonic server with [`McpGrpc::server`].
#[derive(Debug, Clone)]
pub struct McpGrpc {
    pool: McpPool,
    audit: AuditLog,
}

impl McpGrpc {
    /// A service over `pool` that audits calls to `audit` (use
    /// [`AuditLog::disabled`] to record nothing).
    #[must_use]
    pub fn new(pool: McpPool, audit: AuditLog) -> Self {
        Self { pool, audit }
    }

    /// The generated tonic server around this service.
    #[must_use]
    pub fn server(self) -> McpServiceServer<Self> {
        McpServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl McpService for McpGrpc {
    async fn list_servers(
        &self,
        _request: Request<ListMcpServersRequest>,
    ) -> Result<Response<ListMcpServersResponse>, Status> {
        Ok(Response::new(ListMcpServersResponse {
            servers: self.pool.servers().into_iter().map(server_pb).collect(),
        }))
    }

    async fn list_tools(
        &self,
        request: Request<ListMcpToolsRequest>,
    ) -> Result<Response<ListMcpToolsResponse>, Status> {
        let server = request.into_inner().server;
        let tools = self.pool.tools(&server).map_err(status)?;
        Ok(Response::new(ListMcpToolsResponse {
            tools: tools.into_iter().map(tool_pb).collect(),
        }))
    }

    async fn call_tool(
        &self,
        request: Request<CallMcpToolRequest>,
    ) -> Result<Response<CallMcpToolResponse>, Status> {
        let caller = gekko_security::Caller::of(&request)
            .map_or_else(|| gekko_security::ANONYMOUS.to_owned(), |c| c.name.clone());
        let req = request.into_inner();
        let arguments = parse_arguments(&req.arguments_json);
        let argument_names: Vec<String> = arguments
            .as_ref()
            .ok()
            .and_then(serde_json::Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        let timeout = (req.timeout_ms > 0).then(|| Duration::from_millis(req.timeout_ms.into()));
        let result = match arguments {
            Ok(arguments) => {
                self.pool
                    .call_tool_with_timeout(&req.server, &req.tool, arguments, timeout)
                    .await
            }
            Err(e) => Err(e),
        };
        let outcome = match &result {
            Ok(o) if o.is_error => "tool_error".to_owned(),
            Ok(_) => "ok".to_owned(),
            Err(e) => e.outcome().to_owned(),
        };
        let mut detail = serde_json::json!({
            "server": req.server,
            "tool": req.tool,
            "caller": caller,
            "argument_names": argument_names,
        });
        if let (Err(e), Some(map)) = (&result, detail.as_object_mut()) {
            map.insert("error".to_owned(), e.to_string().into());
        }
        self.audit.record_detached(
            AuditRecord::new(ACTOR, "mcp_client.call_tool", outcome).with_detail(detail),
        );
        let outcome = result.map_err(status)?;
        let json = |v: &serde_json::Value| serde_json::to_string(v).unwrap_or_default();
        Ok(Response::new(CallMcpToolResponse {
            is_error: outcome.is_error,
            content_json: json(&serde_json::Value::Array(outcome.content.clone())),
            structured_content_json: outcome.structured.as_ref().map(json).unwrap_or_default(),
            text: outcome.text(),
        }))
    }
}

/// `arguments_json` as a JSON object; empty means `{}`.
fn parse_arguments(raw: &str) -> Result<serde_json::Value, McpClientError> {
    if raw.trim().is_empty() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        Ok(_) => Err(McpClientError::InvalidArguments {
            reason: "arguments_json must be a JSON object".to_owned(),
        }),
        Err(e) => Err(McpClientError::InvalidArguments {
            reason: format!("arguments_json is not JSON: {e}"),
        }),
    }
}

/// The gRPC status of a pool error (see the proto's CallTool comment).
fn status(e: McpClientError) -> Status {
    let message = e.to_string();
    match e {
        McpClientError::UnknownServer { .. } | McpClientError::UnknownTool { .. } => {
            Status::not_found(message)
        }
        McpClientError::InvalidArguments { .. } => Status::invalid_argument(message),
        McpClientError::NotConnected { .. }
        | McpClientError::ConnectionLost { .. }
        | McpClientError::Connect { .. } => Status::unavailable(message),
        McpClientError::Timeout { .. } => Status::deadline_exceeded(message),
        McpClientError::Protocol { code: -32602, .. } => Status::invalid_argument(message),
        McpClientError::Protocol { .. } => Status::failed_precondition(message),
    }
}

fn server_pb(s: ServerStatus) -> McpServerStatus {
    let state = match s.state {
        ConnectionState::Connecting => McpConnectionState::Connecting,
        ConnectionState::Up => McpConnectionState::Up,
        ConnectionState::Down => McpConnectionState::Down,
    };
    McpServerStatus {
        name: s.name,
        transport: s.transport,
        required: s.required,
        state: state.into(),
        last_error: s.last_error.unwrap_or_default(),
        tool_count: u32::try_from(s.tool_count).unwrap_or(u32::MAX),
        connects: s.connects,
        reconnects: s.reconnects,
        circuit: serde_json::to_value(s.circuit)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        server_info: s.server_info.unwrap_or_default(),
    }
}

fn tool_pb(t: ToolInfo) -> McpToolInfo {
    McpToolInfo {
        name: t.name,
        title: t.title.unwrap_or_default(),
        description: t.description.unwrap_or_default(),
        input_schema_json: t.input_schema.to_string(),
        output_schema_json: t.output_schema.map(|s| s.to_string()).unwrap_or_default(),
        read_only_hint: t.read_only,
        destructive_hint: t.destructive,
    }
}
