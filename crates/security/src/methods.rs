//! The one table of gRPC methods: who may call each, whether it changes state, and
//! whether it asks for a second factor.
//!
//! The [`AuthLayer`](crate::AuthLayer) looks every call up here; a method without a row is
//! refused, so a new RPC cannot be reachable before someone decides who may call it. A
//! test decodes `gekko_proto::FILE_DESCRIPTOR_SET` and fails if any method in the protos
//! lacks a row, or a row names a method the protos do not have.

use gekko_config::Role;

/// Which open-by-config service a row belongs to, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenGroup {
    /// `grpc.health.v1.Health` (`open=health`).
    Health,
    /// Server reflection (`open=reflection`).
    Reflection,
}

/// One row of [`METHODS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodRule {
    /// The HTTP/2 path, `/package.Service/Method`.
    pub path: &'static str,
    /// The lowest role that may call it.
    pub min_role: Role,
    /// Whether it changes state; `read_only` refuses these.
    pub state_changing: bool,
    /// Whether a token with a TOTP secret must send a code (`x-gekko-totp`).
    pub second_factor: bool,
    /// Health or reflection: open without a token when `open=` says so.
    pub open: Option<OpenGroup>,
    /// Planned by another change and not in the protos yet. The descriptor test allows a
    /// pending row to name no method, and fails once the method exists until `pending`
    /// is cleared.
    pub pending: bool,
}

const fn read(path: &'static str) -> MethodRule {
    MethodRule {
        path,
        min_role: Role::Viewer,
        state_changing: false,
        second_factor: false,
        open: None,
        pending: false,
    }
}

const fn trade(path: &'static str) -> MethodRule {
    MethodRule {
        path,
        min_role: Role::Trader,
        state_changing: true,
        second_factor: false,
        open: None,
        pending: false,
    }
}

const fn admin(path: &'static str, pending: bool) -> MethodRule {
    MethodRule {
        path,
        min_role: Role::Admin,
        state_changing: true,
        second_factor: true,
        open: None,
        pending,
    }
}

const fn open(path: &'static str, group: OpenGroup) -> MethodRule {
    MethodRule {
        path,
        min_role: Role::Viewer,
        state_changing: false,
        second_factor: false,
        open: Some(group),
        pending: false,
    }
}

/// Every gRPC method gekko serves.
pub const METHODS: &[MethodRule] = &[
    read("/gekko.v1.GatewayService/GetAccount"),
    read("/gekko.v1.GatewayService/GetInstruments"),
    trade("/gekko.v1.GatewayService/PlaceOrder"),
    trade("/gekko.v1.GatewayService/CancelOrder"),
    trade("/gekko.v1.GatewayService/CancelAllOrders"),
    read("/gekko.v1.GatewayService/GetOrder"),
    read("/gekko.v1.GatewayService/ListOpenOrders"),
    admin("/gekko.v1.GatewayService/ClosePositions", false),
    read("/gekko.v1.GatewayService/StreamQuotes"),
    read("/gekko.v1.GatewayService/GetQuote"),
    read("/gekko.v1.GatewayService/GetOrderBook"),
    admin("/gekko.v1.GatewayService/SetTradingEnabled", false),
    read("/gekko.v1.InferenceService/Predict"),
    read("/gekko.v1.InferenceService/ModelInfo"),
    read("/gekko.v1.InferenceService/LatestSignals"),
    read("/gekko.v1.SystemService/GetStatus"),
    read("/gekko.v1.LlmService/ListModels"),
    // LLM calls spend credits: trader, and (like every trader method) refused by
    // `read_only`.
    trade("/gekko.v1.LlmService/Complete"),
    trade("/gekko.v1.LlmService/CompleteStream"),
    admin("/gekko.v1.SystemService/Shutdown", false),
    read("/gekko.v1.SystemService/ExplainConfig"),
    // Writes an audit record stamped with the authenticated caller; it changes no
    // trading state, so `read_only` does not refuse it (MCP audits refusals too).
    read("/gekko.v1.SystemService/RecordToolCall"),
    read("/gekko.v1.McpService/ListServers"),
    read("/gekko.v1.McpService/ListTools"),
    // An external MCP tool may act (place an order, write a file), so a call is a
    // trader's and `read_only` refuses it.
    trade("/gekko.v1.McpService/CallTool"),
    read("/gekko.v1.ConfigService/GetConfig"),
    read("/gekko.v1.ConfigService/Validate"),
    read("/gekko.v1.ConfigService/Watch"),
    // Venue credentials in clear: admin only. It changes no state, but the table's rule
    // ties admin to state-changing, so `read_only` refuses it too (a read-only deployment
    // hands out no credentials). A second factor like every admin action on secrets: the
    // factor is per token, so a service token configured without `totp=` (a gateway
    // fetching its venue's credentials, which has no one to type a code) is unaffected,
    // while a person's admin token with a TOTP secret must send a code.
    MethodRule {
        path: "/gekko.v1.ConfigService/GetSecrets",
        min_role: Role::Admin,
        state_changing: true,
        second_factor: true,
        open: None,
        pending: false,
    },
    read("/gekko.v1.HealthAggregator/GetSystemHealth"),
    read("/gekko.v1.HealthAggregator/Watch"),
    // Silences an alert's escalation: an operator's action, so a trader's.
    trade("/gekko.v1.HealthAggregator/Acknowledge"),
    open("/grpc.health.v1.Health/Check", OpenGroup::Health),
    open("/grpc.health.v1.Health/Watch", OpenGroup::Health),
    open(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        OpenGroup::Reflection,
    ),
    open(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        OpenGroup::Reflection,
    ),
];

/// The row for `path`, if it has one.
#[must_use]
pub fn rule(path: &str) -> Option<&'static MethodRule> {
    METHODS.iter().find(|r| r.path == path)
}

/// [`METHODS`] as a Markdown table, for `docs/security.md`.
#[must_use]
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| method | minimum role | state-changing | second factor |\n|---|---|---|---|\n",
    );
    let yes = |b: bool| if b { "yes" } else { "no" };
    for r in METHODS {
        let role = match r.open {
            Some(OpenGroup::Health) => format!("{} (open with `open=health`)", r.min_role),
            Some(OpenGroup::Reflection) => {
                format!("{} (open with `open=reflection`)", r.min_role)
            }
            None => r.min_role.to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {role} | {} | {} |\n",
            r.path,
            yes(r.state_changing),
            yes(r.second_factor)
        ));
    }
    out
}
