//! `gekko mcp` over stdio, as a child process of the official MCP Python SDK's client
//! (`mcp` 2.3.0), connected over gRPC to one `gekko up` in paper mode on a real Redis.
//!
//! The stdio process's guard comes from its own `MCP_SETTINGS`, so each test chooses the
//! mode it needs against the same running gekko. The gRPC server's `AuthLayer` still
//! decides what the token may do, and stamps the caller on the audit records. Every
//! refusal is checked to have sent nothing to the Binance.US simulator.

mod common;
#[path = "mcp/support.rs"]
mod support;

use std::sync::OnceLock;

use serde_json::{Value, json};
use support::{
    Shared, TRADER, VIEWER, assert_refused, call, connected, list_tools, market_buy, stdio,
};

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    // gekko up's own guard is irrelevant here (its HTTP transport is on a free port);
    // each `gekko mcp` brings its own.
    SHARED.get_or_init(|| Shared::start(|port| format!("http_addr=127.0.0.1:{port}")))
}

const PAPER: &str =
    "mode=paper,max_order_notional=500,allowed_instruments=BTC-USD,max_orders_per_minute=2";

#[test]
fn list_tools_in_both_protocol_eras() {
    let s = shared();
    let _serial = s.lock();
    for (mode, expected) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let lines = stdio(&s.grpc_url(), Some(VIEWER), "", mode, &[list_tools()]);
        assert_eq!(lines[0]["protocol"], json!(expected), "{lines:?}");
        let steps = connected(lines);
        assert_eq!(steps[0]["tools"].as_array().unwrap().len(), 14, "{steps:?}");
    }
}

#[test]
fn get_quote() {
    let s = shared();
    let _serial = s.lock();
    let steps = connected(stdio(
        &s.grpc_url(),
        Some(VIEWER),
        "",
        "auto",
        &[
            call(
                "get_quote",
                json!({"venue": "binanceus", "instrument": "BTC-USD"}),
            ),
            call("system_status", json!({})),
        ],
    ));
    assert_eq!(steps[0]["is_error"], json!(false), "{steps:?}");
    assert!(steps[0]["structured"]["ask"].is_string());
    let status = &steps[1]["structured"];
    assert_eq!(status["mode"], json!("paper"), "{status}");
    assert_eq!(
        status["mcp_guard"]["mode"],
        json!("read_only"),
        "the default mode: {status}"
    );
    assert!(
        status["venues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["simulated"] == json!(true)),
        "{status}"
    );
}

#[test]
fn place_order_refused_in_read_only() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    // No MCP_SETTINGS at all: the default is read_only.
    let steps = connected(stdio(
        &s.grpc_url(),
        Some(TRADER),
        "",
        "auto",
        &[
            call("place_order", market_buy("0.001")),
            call("cancel_all_orders", json!({"venue": "binanceus"})),
        ],
    ));
    assert_refused(
        &steps[0],
        "mode",
        "refused by MCP_SETTINGS mode=read_only: place_order changes state",
    );
    assert_refused(
        &steps[1],
        "mode",
        "refused by MCP_SETTINGS mode=read_only: cancel_all_orders",
    );
    assert_eq!(s.venue_order_requests(), before, "nothing was sent");
    let audited = s.audit_tool_calls("place_order");
    assert!(
        audited
            .iter()
            .any(|a| a.contains("mcp-bot") && a.contains("\"refused\"") && a.contains("\"stdio\"")),
        "{audited:?}"
    );
}

#[test]
fn place_order_allowed_in_paper_and_seen_on_the_bus_and_through_grpc() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    let steps = connected(stdio(
        &s.grpc_url(),
        Some(TRADER),
        PAPER,
        "auto",
        &[call("place_order", market_buy("0.001"))],
    ));
    assert_eq!(steps[0]["is_error"], json!(false), "{steps:?}");
    let id = steps[0]["structured"]["order"]["client_order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.venue_order_requests(), before + 1);
    assert!(
        s.stream("gekko:{orders:binanceus}")
            .iter()
            .any(|p| p.contains(&id) && p.contains("\"submitting\"")),
        "{id} not on the bus"
    );
    assert_eq!(s.grpc_get_order("BTC-USD", &id).client_order_id, id);
}

#[test]
fn over_the_notional_limit_refused() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    let steps = connected(stdio(
        &s.grpc_url(),
        Some(TRADER),
        PAPER,
        "auto",
        &[call("place_order", market_buy("1"))],
    ));
    assert_refused(
        &steps[0],
        "max_order_notional",
        "refused by MCP_SETTINGS max_order_notional=500",
    );
    assert_eq!(s.venue_order_requests(), before, "nothing was sent");
}

#[test]
fn disallowed_instrument_refused() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    let eth = json!({"venue": "binanceus", "instrument": "ETH-USD", "side": "sell", "type": "limit", "qty": "0.01", "price": "3000"});
    let steps = connected(stdio(
        &s.grpc_url(),
        Some(TRADER),
        PAPER,
        "auto",
        &[call("place_order", eth)],
    ));
    assert_refused(
        &steps[0],
        "allowed_instruments",
        "binanceus:ETH-USD is not allowed; allowed: BTC-USD",
    );
    assert_eq!(s.venue_order_requests(), before, "nothing was sent");
}

#[test]
fn burst_over_the_per_minute_limit_refused() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    // The stdio process is one session: two pass, the third and fourth are refused.
    let burst: Vec<Value> = (0..4)
        .map(|_| call("place_order", market_buy("0.001")))
        .collect();
    let steps = connected(stdio(&s.grpc_url(), Some(TRADER), PAPER, "auto", &burst));
    assert_eq!(steps[0]["is_error"], json!(false), "{steps:?}");
    assert_eq!(steps[1]["is_error"], json!(false), "{steps:?}");
    assert_refused(
        &steps[2],
        "max_orders_per_minute",
        "max_orders_per_minute=2",
    );
    assert_refused(&steps[3], "max_orders_per_minute", "try again in");
    assert_eq!(
        s.venue_order_requests(),
        before + 2,
        "only the admitted orders were sent"
    );
}

#[test]
fn malformed_arguments_each_a_clean_error() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    let mut extra = market_buy("0.001");
    extra["stop_loss"] = json!("1");
    let steps = connected(stdio(
        &s.grpc_url(),
        Some(TRADER),
        PAPER,
        "auto",
        &[
            call(
                "place_order",
                json!({"venue": "binanceus", "instrument": "BTC-USD", "side": "buy", "type": "market", "qty": true}),
            ),
            call("place_order", market_buy("-0.5")),
            call("place_order", extra),
            call(
                "get_quote",
                json!({"venue": "x".repeat(100_000), "instrument": "BTC-USD"}),
            ),
            call("place_order", json!({"venue": "binanceus"})),
            call(
                "get_quote",
                json!({"venue": "binanceus", "instrument": "BTC-USD"}),
            ),
        ],
    ));
    assert_refused(&steps[0], "arguments", "qty: invalid type: boolean");
    assert_refused(
        &steps[1],
        "arguments",
        "qty: -0.5 must be greater than zero",
    );
    assert_refused(&steps[2], "arguments", "unknown field `stop_loss`");
    assert_refused(&steps[3], "arguments", "venue: a string of 100000 bytes");
    assert_refused(&steps[4], "arguments", "missing field");
    assert_eq!(
        steps[5]["is_error"],
        json!(false),
        "still serving: {:?}",
        steps[5]
    );
    assert_eq!(s.venue_order_requests(), before, "nothing was sent");
}

#[test]
fn a_viewer_token_is_refused_by_the_grpc_server() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    // Over stdio only the gRPC server knows the token's role: the guard passes, the
    // AuthLayer refuses, and nothing reaches the venue either way.
    let steps = connected(stdio(
        &s.grpc_url(),
        Some(VIEWER),
        PAPER,
        "auto",
        &[call("place_order", market_buy("0.001"))],
    ));
    assert_eq!(steps[0]["is_error"], json!(true), "{steps:?}");
    let text = steps[0]["text"].as_str().unwrap();
    assert!(
        text.contains("PermissionDenied") && text.contains("needs role trader"),
        "{text}"
    );
    assert_eq!(s.venue_order_requests(), before, "nothing was sent");
}

#[test]
fn close_positions_without_confirm_refused() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    let steps = connected(stdio(
        &s.grpc_url(),
        Some(TRADER),
        "mode=trade",
        "auto",
        &[call("close_positions", json!({"venue": "binanceus"}))],
    ));
    assert_refused(&steps[0], "confirm", "call again with confirm: true");
    assert_eq!(s.venue_order_requests(), before, "nothing was sent");
}

#[test]
fn a_resting_limit_order_is_listed_then_cancelled() {
    let s = shared();
    let _serial = s.lock();
    // 10% under the market: it rests.
    let ask: rust_decimal::Decimal = connected(stdio(
        &s.grpc_url(),
        Some(VIEWER),
        "",
        "auto",
        &[call(
            "get_quote",
            json!({"venue": "binanceus", "instrument": "BTC-USD"}),
        )],
    ))[0]["structured"]["ask"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let price = (ask * rust_decimal::Decimal::new(9, 1)).round_dp(2);
    let limit = json!({"venue": "binanceus", "instrument": "BTC-USD", "side": "buy", "type": "limit",
                       "qty": "0.001", "price": price.to_string(), "client_order_id": format!("mcp-rest-{}", std::process::id())});
    let steps = connected(stdio(
        &s.grpc_url(),
        Some(TRADER),
        PAPER,
        "auto",
        &[
            call("place_order", limit.clone()),
            call(
                "list_open_orders",
                json!({"venue": "binanceus", "instrument": "BTC-USD"}),
            ),
            call(
                "cancel_order",
                json!({"venue": "binanceus", "instrument": "BTC-USD",
                                        "client_order_id": limit["client_order_id"]}),
            ),
        ],
    ));
    assert_eq!(steps[0]["is_error"], json!(false), "{steps:?}");
    assert_eq!(
        steps[0]["structured"]["order"]["status"],
        json!("new"),
        "{steps:?}"
    );
    let id = limit["client_order_id"].as_str().unwrap();
    let open = steps[1]["structured"]["orders"].as_array().unwrap();
    assert!(
        open.iter().any(|o| o["client_order_id"] == json!(id)),
        "{open:?}"
    );
    assert_eq!(steps[2]["is_error"], json!(false), "{steps:?}");
    assert_eq!(
        steps[2]["structured"]["order"]["status"],
        json!("cancelled"),
        "{steps:?}"
    );
    assert_eq!(
        s.grpc_get_order("BTC-USD", id).status,
        gekko_proto::v1::OrderStatus::Cancelled as i32
    );
}

#[test]
fn latest_signals_and_the_redacted_config() {
    let s = shared();
    let _serial = s.lock();
    // The inference service publishes signals once its feature windows fill.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while s.grpc_latest_signals().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no signal from inference within 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let steps = connected(stdio(
        &s.grpc_url(),
        Some(VIEWER),
        "",
        "auto",
        &[
            call("latest_signals", json!({"limit": 5})),
            call(
                "latest_signals",
                json!({"instruments": ["binanceus:NOPE-USD"]}),
            ),
            call("explain_config", json!({})),
        ],
    ));
    let signals = steps[0]["structured"]["signals"].as_array().unwrap();
    assert!(!signals.is_empty() && signals.len() <= 5, "{steps:?}");
    let first = &signals[0];
    assert!(
        matches!(first["direction"].as_str(), Some("up" | "down")),
        "{first}"
    );
    let confidence = first["confidence"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&confidence), "{first}");
    assert_eq!(steps[1]["structured"]["signals"], json!([]), "{steps:?}");
    let config = &steps[2]["structured"]["config"];
    assert_eq!(
        config["access_control"]["tokens"][0]["name"],
        json!("mcp-bot"),
        "{config}"
    );
    assert_eq!(config["mode"], json!("paper"), "{config}");
    let text = steps[2]["text"].as_str().unwrap();
    for secret in [TRADER.to_owned(), gekko_security::sha256_hex(TRADER)] {
        assert!(
            !text.contains(&secret),
            "explain_config leaked a token or its hash"
        );
    }
}
