//! The MCP `ServerHandler`: the tool list, and one `call_tool` path that every call goes
//! through, whatever the transport.
//!
//! A call is, in order: argument parsing (sizes, types, unknown fields, decimals; a
//! malformed call is a tool error naming the field), the risk guard for a state-changing
//! tool ([`crate::guard`]), the gRPC call(s) with the caller's token, then one
//! `SystemService/RecordToolCall` (the `mcp.tool_call` audit record, stamped by the gRPC
//! server with the authenticated caller; a routed server writes it itself, see
//! [`crate::backend`]) and the metrics. The result carries
//! `structuredContent` and the same JSON as a text block; a refusal or failure is a result
//! with `isError: true` whose text names the rule or the error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use gekko_config::{McpMode, Role};
use gekko_proto::v1 as pb;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::args::{self, ArgError};
use crate::backend::{Backend, Token};
use crate::guard::{self, Guard, Refusal};

/// Which transport a server instance answers on (an audit and metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `gekko mcp`: one client, the process's stdin/stdout.
    Stdio,
    /// `/mcp` on the `mcp` service of `gekko up`.
    Http,
}

impl Transport {
    /// `stdio` or `http`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Http => "http",
        }
    }
}

/// Who is calling, as the MCP server knows it.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Forwarded to gRPC on every call.
    pub token: Token,
    /// The token's name when the server validated it (HTTP), else a placeholder. With
    /// one gekko address the audit record's actor is stamped by its gRPC server; a routed
    /// server (HTTP only, so the name is the validated token's) writes it from here.
    pub name: String,
    /// The token's role when known (HTTP); `None` over stdio, where the gRPC server
    /// alone knows it.
    pub role: Option<Role>,
}

/// What an HTTP request was authenticated as: put into the request's extensions by the
/// bearer-token layer (see [`crate::http`]) and read back by `call_tool`.
#[derive(Debug, Clone)]
pub struct HttpCaller(pub Identity);

/// gekko's MCP server: cheap to clone (one `Arc`), so the HTTP transport can hand a copy
/// to every session while all of them share one guard and one gRPC channel.
#[derive(Debug, Clone)]
pub struct GekkoMcp {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    guard: Arc<Guard>,
    transport: Transport,
    /// The stdio process's one caller; `None` over HTTP.
    stdio: Option<Identity>,
    /// The stdio process's session key (`stdio:<pid>`).
    stdio_session: String,
}

/// A call that did not succeed.
enum Failure {
    /// The guard (or argument validation) refused it; nothing was sent.
    Refused(Refusal),
    /// gekko answered with an error, or could not be reached.
    Grpc(tonic::Status),
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        Self::Grpc(s)
    }
}

type Outcome = Result<Value, Failure>;

impl GekkoMcp {
    /// The stdio server: every call is made with `token`.
    #[must_use]
    pub fn stdio(backend: Backend, guard: Guard, token: Token) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                guard: Arc::new(guard),
                transport: Transport::Stdio,
                stdio: Some(Identity {
                    token,
                    name: "stdio".to_owned(),
                    role: None,
                }),
                stdio_session: format!("stdio:{}", std::process::id()),
            }),
        }
    }

    /// The HTTP server: each call is made with the token its request was authenticated
    /// with ([`HttpCaller`]).
    #[must_use]
    pub fn http(backend: Backend, guard: Arc<Guard>) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                guard,
                transport: Transport::Http,
                stdio: None,
                stdio_session: String::new(),
            }),
        }
    }

    /// The caller and session of one request.
    fn who(&self, ctx: &RequestContext<RoleServer>) -> Result<(Identity, String), McpError> {
        if let Some(id) = &self.inner.stdio {
            return Ok((id.clone(), self.inner.stdio_session.clone()));
        }
        let parts = ctx.extensions.get::<http::request::Parts>();
        let caller = parts.and_then(|p| p.extensions.get::<HttpCaller>());
        let Some(HttpCaller(id)) = caller else {
            // The bearer layer runs in front of every request; reaching here without it
            // is a wiring mistake, refused rather than run unauthenticated.
            return Err(McpError::internal_error(
                "request was not authenticated by the MCP HTTP layer",
                None,
            ));
        };
        // The legacy era's session; a stateless (2026-07-28) request has none, and its
        // caller is its session for the order window.
        let session = parts
            .and_then(|p| p.headers.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| format!("caller:{}", id.name), |s| format!("session:{s}"));
        Ok((id.clone(), session))
    }
}

/// One tool's static description.
struct ToolDef {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    read_only: bool,
    schema: fn() -> Arc<JsonObject>,
}

fn schema<T: schemars::JsonSchema + std::any::Any>() -> Arc<JsonObject> {
    rmcp::handler::server::common::schema_for_type::<T>()
}

const TOOLS: &[ToolDef] = &[
    ToolDef {
        name: "system_status",
        title: "System status",
        description: "Whether gekko is ready, its trading mode (paper or live), the bus, each hosted venue and whether it is simulated, every component's readiness, and the MCP risk-guard settings that apply to this session. Call this first.",
        read_only: true,
        schema: schema::<args::NoArgs>,
    },
    ToolDef {
        name: "list_venues",
        title: "List venues",
        description: "The venues gekko hosts (binanceus, coinbase, oanda), whether each is simulated (paper) or live, and whether this MCP server may place orders there under its MCP_SETTINGS mode.",
        read_only: true,
        schema: schema::<args::NoArgs>,
    },
    ToolDef {
        name: "list_instruments",
        title: "List instruments",
        description: "Tradable instruments per venue with their filters as decimal strings: tick_size, lot_size, min_qty, max_qty, min_notional. Omit venue for every hosted venue.",
        read_only: true,
        schema: schema::<args::VenueArgs>,
    },
    ToolDef {
        name: "get_quote",
        title: "Get quote",
        description: "The latest best bid and ask (prices and sizes as decimal strings) of one instrument on one venue, with its time in ms since the epoch.",
        read_only: true,
        schema: schema::<args::InstrumentArgs>,
    },
    ToolDef {
        name: "get_order_book",
        title: "Get order book",
        description: "The order book of one instrument: up to `depth` price levels per side (default 10), best first, prices and quantities as decimal strings. `source` is `book` for the full local book, or `top_of_book` on a venue without a book feed.",
        read_only: true,
        schema: schema::<args::BookArgs>,
    },
    ToolDef {
        name: "get_account",
        title: "Get account",
        description: "Balances (free and locked per asset), positions (signed quantity, average price, unrealized P/L where known) and, on a margin venue such as oanda, the margin summary (NAV, margin used and available). Decimal strings.",
        read_only: true,
        schema: schema::<args::OneVenueArgs>,
    },
    ToolDef {
        name: "list_open_orders",
        title: "List open orders",
        description: "Working orders on one venue (optionally one instrument): client_order_id, side, type, qty, price, status, filled_qty.",
        read_only: true,
        schema: schema::<args::MaybeInstrumentArgs>,
    },
    ToolDef {
        name: "get_order",
        title: "Get order",
        description: "One order by client_order_id, refreshed from the venue: status (pending_new, in_flight, new, partially_filled, filled, cancelled, rejected, expired), filled_qty, avg_fill_price, reject_reason.",
        read_only: true,
        schema: schema::<args::OrderRefArgs>,
    },
    ToolDef {
        name: "place_order",
        title: "Place order",
        description: "Places a market or limit order. qty and price are decimal strings. Checked first by the MCP risk guard (MCP_SETTINGS mode: read_only refuses, paper allows simulated venues only; max_order_notional: qty x limit price, or qty x the current ask/bid for market orders; allowed_instruments; max_orders_per_minute), then by the gateway's pre-trade checks. A refusal names the rule. Returns the order with its client_order_id; resending the same client_order_id never places a second order.",
        read_only: false,
        schema: schema::<args::PlaceOrderArgs>,
    },
    ToolDef {
        name: "cancel_order",
        title: "Cancel order",
        description: "Cancels one working order by client_order_id and returns it with its new status. Subject to the MCP_SETTINGS mode and max_orders_per_minute.",
        read_only: false,
        schema: schema::<args::OrderRefArgs>,
    },
    ToolDef {
        name: "cancel_all_orders",
        title: "Cancel all orders",
        description: "Cancels every working order on one venue (optionally one instrument) and returns the cancelled orders. Subject to the MCP_SETTINGS mode and max_orders_per_minute.",
        read_only: false,
        schema: schema::<args::MaybeInstrumentArgs>,
    },
    ToolDef {
        name: "close_positions",
        title: "Close positions",
        description: "Flattens positions on one venue (optionally only the named instruments) with market orders. Requires confirm: true, an admin token, and an MCP_SETTINGS mode that allows the venue. Returns the closing orders.",
        read_only: false,
        schema: schema::<args::ClosePositionsArgs>,
    },
    ToolDef {
        name: "latest_signals",
        title: "Latest signals",
        description: "The inference service's latest signal per instrument, newest first: model, version, direction (up/down), p_up and confidence (probabilities 0 to 1), horizon in quotes, and the quote time.",
        read_only: true,
        schema: schema::<args::SignalsArgs>,
    },
    ToolDef {
        name: "explain_config",
        title: "Explain config",
        description: "gekko's running configuration as JSON, redacted: secrets show only as set or unset and URL passwords are masked. Includes the compliance limits and the MCP risk-guard settings.",
        read_only: true,
        schema: schema::<args::NoArgs>,
    },
];

/// Every tool, as `tools/list` shows it (built once).
#[must_use]
pub fn tools() -> &'static [Tool] {
    static TOOL_LIST: OnceLock<Vec<Tool>> = OnceLock::new();
    TOOL_LIST.get_or_init(|| {
        TOOLS
            .iter()
            .map(|t| {
                let mut annotations = ToolAnnotations::with_title(t.title).read_only(t.read_only);
                if !t.read_only {
                    annotations = annotations.destructive(t.name != "place_order");
                }
                Tool::new(t.name, t.description, (t.schema)())
                    .with_title(t.title)
                    .with_annotations(annotations)
            })
            .collect()
    })
}

/// Describes the metrics for the Prometheus exposition.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "gekko_mcp_tool_calls_total",
        "MCP tool calls, by tool and outcome (ok, error, refused)"
    );
    metrics::describe_counter!(
        "gekko_mcp_refusals_total",
        "MCP tool calls refused by the risk guard or argument validation, by rule"
    );
    metrics::describe_counter!(
        "gekko_mcp_audit_failures_total",
        "MCP tool calls whose mcp.tool_call audit record could not be written"
    );
}

/// Argument keys whose values are never written to the audit trail.
const SECRET_WORDS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passphrase",
    "api_key",
    "authorization",
];

/// A copy of `v` with the values of secret-looking keys replaced by `***`.
#[must_use]
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    if SECRET_WORDS.iter().any(|w| lower.contains(w)) {
                        (k.clone(), Value::from(gekko_config::REDACTED))
                    } else {
                        (k.clone(), redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

fn side_name(v: i32) -> &'static str {
    match pb::Side::try_from(v) {
        Ok(pb::Side::Buy) => "buy",
        Ok(pb::Side::Sell) => "sell",
        _ => "unspecified",
    }
}

fn order_json(o: &pb::OrderMsg) -> Value {
    let status = pb::OrderStatus::try_from(o.status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("ORDER_STATUS_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "unspecified".to_owned());
    let order_type = match pb::OrderType::try_from(o.r#type) {
        Ok(pb::OrderType::Market) => "market",
        Ok(pb::OrderType::Limit) => "limit",
        _ => "unspecified",
    };
    json!({
        "client_order_id": o.client_order_id,
        "venue_order_id": o.venue_order_id,
        "instrument": o.instrument,
        "side": side_name(o.side),
        "type": order_type,
        "qty": o.qty,
        "price": o.price,
        "status": status,
        "filled_qty": o.filled_qty,
        "avg_fill_price": o.avg_fill_price,
        "updated_ms": o.updated_ms,
        "reject_reason": o.reject_reason,
    })
}

fn quote_json(venue: &str, q: &pb::QuoteUpdate) -> Value {
    json!({
        "venue": venue,
        "instrument": q.instrument,
        "bid": q.bid,
        "bid_size": q.bid_size,
        "ask": q.ask,
        "ask_size": q.ask_size,
        "ts_ms": q.ts_ms,
    })
}

/// Makes a fresh sequence for a derived client order id: time plus a process counter, so
/// two orders in the same nanosecond still differ.
fn fresh_sequence() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    nanos.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl GekkoMcp {
    fn settings(&self) -> &gekko_config::McpSettings {
        self.inner.guard.settings()
    }

    fn guard_json(&self) -> Value {
        let s = self.settings();
        json!({
            "mode": s.mode.as_str(),
            "max_order_notional": s.max_order_notional.to_string(),
            "allowed_instruments": s.allowed_instruments.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "max_orders_per_minute": s.max_orders_per_minute,
        })
    }

    /// Whether GetStatus reports `venue` as simulated; `None` when it is not hosted.
    async fn simulated(&self, venue: &str, token: &Token) -> Result<Option<bool>, Failure> {
        let venues = self.inner.backend.venues(token).await?;
        Ok(venues
            .iter()
            .find(|v| v.venue == venue.trim())
            .map(|v| v.simulated))
    }

    /// Role, then mode: the rules every state-changing tool passes first.
    async fn state_change(&self, tool: &str, venue: &str, who: &Identity) -> Result<(), Failure> {
        let g = &self.inner.guard;
        g.check_role(tool, who.role)?;
        // read_only needs no status call: refuse before asking gekko anything.
        if g.settings().mode == McpMode::ReadOnly {
            g.check_mode(tool, venue, None)?;
        }
        let simulated = if g.settings().mode == McpMode::Paper {
            self.simulated(venue, &who.token).await?
        } else {
            None
        };
        g.check_mode(tool, venue, simulated)?;
        Ok(())
    }

    async fn dispatch(
        &self,
        tool: &str,
        raw: Option<&JsonObject>,
        who: &Identity,
        session: &str,
    ) -> Outcome {
        let b = &self.inner.backend;
        let t = &who.token;
        let bad = |e: ArgError| Failure::Refused(Refusal::arguments(tool, e));
        match tool {
            "system_status" => {
                let _: args::NoArgs = args::parse(raw).map_err(bad)?;
                let s = b.status(pb::GetStatusRequest {}, t).await?;
                Ok(json!({
                    "ready": s.ready,
                    "mode": s.mode,
                    "bus": s.bus,
                    "version": s.version,
                    "venues": s.venues.iter().map(|v| json!({"venue": v.venue, "simulated": v.simulated})).collect::<Vec<_>>(),
                    "components": s.components.iter().map(|c| json!({"name": c.name, "ready": c.ready, "detail": c.detail})).collect::<Vec<_>>(),
                    "mcp_guard": self.guard_json(),
                }))
            }
            "list_venues" => {
                let _: args::NoArgs = args::parse(raw).map_err(bad)?;
                let mode = self.settings().mode;
                let venues: Vec<Value> = b
                    .venues(t)
                    .await?
                    .iter()
                    .map(|v| {
                        let allowed = mode == McpMode::Trade || (mode == McpMode::Paper && v.simulated);
                        json!({"venue": v.venue, "simulated": v.simulated, "mcp_orders_allowed": allowed})
                    })
                    .collect();
                Ok(json!({"venues": venues, "mcp_mode": mode.as_str()}))
            }
            "list_instruments" => {
                let a: args::VenueArgs = args::parse(raw).map_err(bad)?;
                let venues = match a.venue {
                    Some(v) => vec![v],
                    None => b.venues(t).await?.into_iter().map(|v| v.venue).collect(),
                };
                let mut out = Vec::new();
                for venue in venues {
                    let r = b
                        .instruments(
                            pb::GetInstrumentsRequest {
                                instruments: Vec::new(),
                                venue: venue.clone(),
                            },
                            t,
                        )
                        .await?;
                    for i in r.instruments {
                        out.push(json!({
                            "venue": venue, "instrument": i.instrument, "venue_symbol": i.venue_symbol,
                            "base": i.base, "quote": i.quote, "tick_size": i.tick_size, "lot_size": i.lot_size,
                            "min_qty": i.min_qty, "max_qty": i.max_qty, "min_notional": i.min_notional,
                            "trading": i.trading,
                        }));
                    }
                }
                Ok(json!({"instruments": out}))
            }
            "get_quote" => {
                let a: args::InstrumentArgs = args::parse(raw).map_err(bad)?;
                let q = b
                    .quote(
                        pb::GetQuoteRequest {
                            instrument: a.instrument,
                            venue: a.venue.clone(),
                        },
                        t,
                    )
                    .await?;
                Ok(quote_json(&a.venue, &q))
            }
            "get_order_book" => {
                let a: args::BookArgs = args::parse(raw).map_err(bad)?;
                let depth = a.depth.unwrap_or(10);
                if !(1..=100).contains(&depth) {
                    return Err(bad(ArgError(format!(
                        "depth: {depth} is not between 1 and 100"
                    ))));
                }
                let r = b
                    .order_book(
                        pb::GetOrderBookRequest {
                            instrument: a.instrument,
                            depth,
                            venue: a.venue.clone(),
                        },
                        t,
                    )
                    .await?;
                let levels = |l: &[pb::BookLevelMsg]| -> Vec<Value> {
                    l.iter()
                        .map(|l| json!({"price": l.price, "qty": l.qty}))
                        .collect()
                };
                Ok(json!({
                    "venue": a.venue, "instrument": r.instrument, "bids": levels(&r.bids), "asks": levels(&r.asks),
                    "sequence": r.sequence, "ts_ms": r.ts_ms, "source": r.source,
                }))
            }
            "get_account" => {
                let a: args::OneVenueArgs = args::parse(raw).map_err(bad)?;
                let r = b
                    .account(pb::GetAccountRequest { venue: a.venue }, t)
                    .await?;
                Ok(json!({
                    "venue": r.venue,
                    "balances": r.balances.iter().map(|x| json!({"asset": x.asset, "free": x.free, "locked": x.locked})).collect::<Vec<_>>(),
                    "positions": r.positions.iter().map(|p| json!({"instrument": p.instrument, "qty": p.qty, "avg_price": p.avg_price, "unrealized_pnl": p.unrealized_pnl})).collect::<Vec<_>>(),
                    "margin": r.margin.map(|m| json!({
                        "currency": m.currency, "nav": m.nav, "balance": m.balance, "unrealized_pl": m.unrealized_pl,
                        "margin_used": m.margin_used, "margin_available": m.margin_available,
                        "margin_closeout_percent": m.margin_closeout_percent,
                    })),
                }))
            }
            "list_open_orders" => {
                let a: args::MaybeInstrumentArgs = args::parse(raw).map_err(bad)?;
                let r = b
                    .open_orders(
                        pb::ListOpenOrdersRequest {
                            instrument: a.instrument.unwrap_or_default(),
                            venue: a.venue.clone(),
                        },
                        t,
                    )
                    .await?;
                Ok(
                    json!({"venue": a.venue, "orders": r.orders.iter().map(order_json).collect::<Vec<_>>()}),
                )
            }
            "get_order" => {
                let a: args::OrderRefArgs = args::parse(raw).map_err(bad)?;
                let r = b
                    .order(
                        pb::GetOrderRequest {
                            instrument: a.instrument,
                            client_order_id: a.client_order_id,
                            venue: a.venue.clone(),
                        },
                        t,
                    )
                    .await?;
                Ok(json!({"venue": a.venue, "order": r.order.as_ref().map(order_json)}))
            }
            "place_order" => self.place_order(raw, who, session).await,
            "cancel_order" => {
                let a: args::OrderRefArgs = args::parse(raw).map_err(bad)?;
                self.state_change(tool, &a.venue, who).await?;
                self.inner.guard.admit(session, Instant::now())?;
                let r = b
                    .cancel_order(
                        pb::CancelOrderRequest {
                            instrument: a.instrument,
                            client_order_id: a.client_order_id,
                            venue: a.venue.clone(),
                        },
                        t,
                    )
                    .await?;
                Ok(json!({"venue": a.venue, "order": r.order.as_ref().map(order_json)}))
            }
            "cancel_all_orders" => {
                let a: args::MaybeInstrumentArgs = args::parse(raw).map_err(bad)?;
                self.state_change(tool, &a.venue, who).await?;
                self.inner.guard.admit(session, Instant::now())?;
                let r = b
                    .cancel_all(
                        pb::CancelAllOrdersRequest {
                            instrument: a.instrument.unwrap_or_default(),
                            venue: a.venue.clone(),
                        },
                        t,
                    )
                    .await?;
                Ok(
                    json!({"venue": a.venue, "cancelled": r.cancelled.iter().map(order_json).collect::<Vec<_>>()}),
                )
            }
            "close_positions" => {
                let a: args::ClosePositionsArgs = args::parse(raw).map_err(bad)?;
                if !a.confirm {
                    return Err(Failure::Refused(Refusal {
                        rule: "confirm",
                        rule_text: "close_positions confirm".to_owned(),
                        message: "closing sells holdings (or buys back shorts) at market and is never implied; call again with confirm: true".to_owned(),
                    }));
                }
                self.state_change(tool, &a.venue, who).await?;
                let g = &self.inner.guard;
                if !g.settings().allowed_instruments.is_empty() && a.instruments.is_empty() {
                    return Err(Failure::Refused(Refusal {
                        rule: "allowed_instruments",
                        rule_text: "MCP_SETTINGS allowed_instruments".to_owned(),
                        message: "name the instruments to close: with allowed_instruments set, close_positions does not close every instrument".to_owned(),
                    }));
                }
                for i in &a.instruments {
                    g.check_instrument(&a.venue, i)?;
                }
                let r = b
                    .close_positions(
                        pb::ClosePositionsRequest {
                            confirm: true,
                            instruments: a.instruments,
                            venue: a.venue.clone(),
                        },
                        t,
                    )
                    .await?;
                Ok(
                    json!({"venue": a.venue, "orders": r.orders.iter().map(order_json).collect::<Vec<_>>()}),
                )
            }
            "latest_signals" => {
                let a: args::SignalsArgs = args::parse(raw).map_err(bad)?;
                if a.limit.is_some_and(|l| !(1..=500).contains(&l)) {
                    return Err(bad(ArgError("limit: must be between 1 and 500".to_owned())));
                }
                let r = b
                    .latest_signals(
                        pb::LatestSignalsRequest {
                            instruments: a.instruments,
                            limit: a.limit.unwrap_or(0),
                        },
                        t,
                    )
                    .await?;
                let signals: Vec<Value> = r
                    .signals
                    .iter()
                    .map(|s| {
                        let direction = match pb::Direction::try_from(s.direction) {
                            Ok(pb::Direction::Up) => "up",
                            Ok(pb::Direction::Down) => "down",
                            _ => "unspecified",
                        };
                        json!({
                            "venue": s.venue, "instrument": s.instrument, "model": s.model, "version": s.version,
                            "direction": direction, "p_up": s.p_up, "confidence": s.confidence,
                            "horizon": s.horizon, "quote_ts_ms": s.quote_ts_ms,
                        })
                    })
                    .collect();
                Ok(json!({"signals": signals}))
            }
            "explain_config" => {
                let _: args::NoArgs = args::parse(raw).map_err(bad)?;
                let r = b.explain_config(pb::ExplainConfigRequest {}, t).await?;
                let config: Value = serde_json::from_str(&r.config_json).map_err(|e| {
                    tonic::Status::internal(format!("ExplainConfig answered malformed JSON: {e}"))
                })?;
                Ok(json!({"config": config}))
            }
            _ => Err(Failure::Grpc(tonic::Status::not_found("unknown tool"))),
        }
    }

    async fn place_order(
        &self,
        raw: Option<&JsonObject>,
        who: &Identity,
        session: &str,
    ) -> Outcome {
        const TOOL: &str = "place_order";
        let b = &self.inner.backend;
        let g = &self.inner.guard;
        let t = &who.token;
        let a: args::PlaceOrderArgs =
            args::parse(raw).map_err(|e| Failure::Refused(Refusal::arguments(TOOL, e)))?;
        let o = a
            .validate()
            .map_err(|e| Failure::Refused(Refusal::arguments(TOOL, e)))?;
        self.state_change(TOOL, &o.venue, who).await?;
        g.check_instrument(&o.venue, &o.instrument)?;
        let market_price = if o.price.is_none() {
            // Valued at the price it would trade at; no quote means no valuation, and an
            // order that cannot be valued is refused rather than guessed at. A request
            // refused as malformed (a venue not hosted or not routed) says so instead.
            let quote = match b
                .quote(
                    pb::GetQuoteRequest {
                        instrument: o.instrument.clone(),
                        venue: o.venue.clone(),
                    },
                    t,
                )
                .await
            {
                Ok(q) => Some(q),
                Err(s) if s.code() == tonic::Code::InvalidArgument => return Err(s.into()),
                Err(_) => None,
            };
            quote.and_then(|q| {
                let p = match o.side {
                    args::Side::Buy => q.ask,
                    args::Side::Sell => q.bid,
                };
                p.parse::<rust_decimal::Decimal>()
                    .ok()
                    .filter(|p| *p > rust_decimal::Decimal::ZERO)
            })
        } else {
            None
        };
        let notional = guard::notional(o.qty, o.price, market_price)?;
        g.check_notional(notional)?;
        g.admit(session, Instant::now())?;
        let (client_order_id, strategy, sequence) = match &o.client_order_id {
            Some(id) => (id.clone(), String::new(), 0),
            None => (String::new(), "mcp".to_owned(), fresh_sequence()),
        };
        let req = pb::PlaceOrderRequest {
            instrument: o.instrument.clone(),
            side: match o.side {
                args::Side::Buy => pb::Side::Buy as i32,
                args::Side::Sell => pb::Side::Sell as i32,
            },
            r#type: match o.order_type {
                args::OrderType::Market => pb::OrderType::Market as i32,
                args::OrderType::Limit => pb::OrderType::Limit as i32,
            },
            qty: o.qty.to_string(),
            price: o.price.map(|p| p.to_string()).unwrap_or_default(),
            time_in_force: match o.time_in_force {
                None => pb::TimeInForce::Unspecified as i32,
                Some(args::TimeInForce::Gtc) => pb::TimeInForce::Gtc as i32,
                Some(args::TimeInForce::Ioc) => pb::TimeInForce::Ioc as i32,
                Some(args::TimeInForce::Fok) => pb::TimeInForce::Fok as i32,
            },
            client_order_id,
            strategy,
            sequence,
            venue: o.venue.clone(),
            expire_time_ms: 0,
        };
        let r = b.place_order(req, t).await?;
        Ok(json!({
            "venue": o.venue,
            "notional": notional.to_string(),
            "order": r.order.as_ref().map(order_json),
        }))
    }

    /// Writes the `mcp.tool_call` record: through gRPC (the server stamps the actor), or
    /// routed, locally with the authenticated token's name.
    async fn audit(
        &self,
        tool: &str,
        raw: Option<&JsonObject>,
        outcome: &str,
        detail: String,
        who: &Identity,
        session: &str,
    ) {
        let arguments = redact(&Value::Object(raw.cloned().unwrap_or_default()));
        let req = pb::RecordToolCallRequest {
            tool: tool.chars().take(128).collect(),
            arguments_json: arguments.to_string(),
            outcome: outcome.to_owned(),
            detail,
            session: session.to_owned(),
            transport: self.inner.transport.as_str().to_owned(),
        };
        if let Err(e) = self
            .inner
            .backend
            .record_tool_call(req, &who.token, &who.name)
            .await
        {
            metrics::counter!("gekko_mcp_audit_failures_total").increment(1);
            tracing::warn!(tool, code = ?e.code(), error = e.message(), "mcp.tool_call not audited");
        }
    }
}

impl ServerHandler for GekkoMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("gekko", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "gekko trading infrastructure. Read tools are free to call. place_order, cancel_order, \
                 cancel_all_orders and close_positions pass a server-side risk guard (MCP_SETTINGS \
                 mode={}: read_only refuses them, paper allows simulated venues only, trade allows live \
                 venues) and the gateway's pre-trade checks; a refusal is a tool error naming the rule. \
                 Quantities and prices are decimal strings. Start with system_status.",
                self.settings().mode
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools().to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools().iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let (who, session) = self.who(&context)?;
        let tool = request.name.as_ref();
        let raw = request.arguments.as_ref();
        if !TOOLS.iter().any(|t| t.name == tool) {
            metrics::counter!("gekko_mcp_tool_calls_total", "tool" => "unknown", "outcome" => "error")
                .increment(1);
            let shown: String = tool.chars().take(64).collect();
            self.audit(
                tool,
                raw,
                "error",
                format!("unknown tool {shown:?}"),
                &who,
                &session,
            )
            .await;
            return Err(McpError::invalid_params(
                format!("unknown tool: {shown}"),
                None,
            ));
        }
        let label = TOOLS
            .iter()
            .find(|t| t.name == tool)
            .map_or("unknown", |t| t.name);
        let (result, outcome, detail) = match self.dispatch(tool, raw, &who, &session).await {
            Ok(value) => (CallToolResult::structured(value), "ok", "ok".to_owned()),
            Err(Failure::Refused(r)) => {
                metrics::counter!("gekko_mcp_refusals_total", "rule" => r.rule).increment(1);
                let text = r.to_string();
                tracing::info!(tool, rule = r.rule, session = %session, "MCP tool call refused");
                let mut res = CallToolResult::error(vec![ContentBlock::text(text.clone())]);
                res.structured_content = Some(json!({
                    "error": text, "refused": true, "rule": r.rule,
                }));
                (res, "refused", text)
            }
            Err(Failure::Grpc(s)) => {
                let text = format!("gekko answered {:?}: {}", s.code(), s.message());
                let mut res = CallToolResult::error(vec![ContentBlock::text(text.clone())]);
                res.structured_content = Some(json!({
                    "error": text, "refused": false, "grpc_code": format!("{:?}", s.code()),
                }));
                (res, "error", text)
            }
        };
        metrics::counter!("gekko_mcp_tool_calls_total", "tool" => label, "outcome" => outcome)
            .increment(1);
        self.audit(tool, raw, outcome, detail, &who, &session).await;
        Ok(result.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_schema_is_closed_and_annotated() {
        let list = tools();
        assert_eq!(list.len(), 14);
        for t in list {
            assert_eq!(
                t.input_schema.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{}",
                t.name
            );
            let hint = t.annotations.as_ref().and_then(|a| a.read_only_hint);
            assert_eq!(hint, Some(!guard::changes_state(&t.name)), "{}", t.name);
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let v = json!({"venue": "x", "api_key": "k", "nested": {"Token": "t"}, "list": [{"password": "p"}]});
        let r = redact(&v);
        assert_eq!(r["api_key"], "***");
        assert_eq!(r["nested"]["Token"], "***");
        assert_eq!(r["list"][0]["password"], "***");
        assert_eq!(r["venue"], "x");
    }
}
