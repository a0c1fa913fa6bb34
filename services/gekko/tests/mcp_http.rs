//! gekko's MCP server over streamable HTTP, driven by the official MCP Python SDK
//! (`mcp` 2.3.0), against one `gekko up` in paper mode on a real Redis.
//!
//! The guard: `mode=paper`, `max_order_notional=500`, only `binanceus:BTC-USD`, at most
//! three order or cancel attempts per session and minute. Every refusal is checked to have
//! sent nothing: the gateway's order requests to the Binance.US simulator
//! (`gekko_venue_requests_total{endpoint="order…"}`) do not move.

mod common;
#[path = "mcp/support.rs"]
mod support;

use std::sync::OnceLock;

use serde_json::{Value, json};
use support::{
    Shared, TRADER, VIEWER, assert_refused, call, connected, http, list_tools, market_buy,
};

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        Shared::start(|port| {
            format!(
                "mode=paper,http_addr=127.0.0.1:{port},max_order_notional=500,\
                 allowed_instruments=binanceus:BTC-USD,max_orders_per_minute=3"
            )
        })
    })
}

#[test]
fn list_tools_in_both_protocol_eras() {
    let s = shared();
    let _serial = s.lock();
    for mode in ["legacy", "auto"] {
        let lines = http(&s.url(), Some(VIEWER), mode, &[list_tools()]);
        let expected = if mode == "legacy" {
            "2025-11-25"
        } else {
            "2026-07-28"
        };
        assert_eq!(lines[0]["protocol"], json!(expected), "{lines:?}");
        let steps = connected(lines);
        let tools = steps[0]["tools"].as_array().unwrap();
        let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(
            names,
            [
                "system_status",
                "list_venues",
                "list_instruments",
                "get_quote",
                "get_order_book",
                "get_account",
                "list_open_orders",
                "get_order",
                "place_order",
                "cancel_order",
                "cancel_all_orders",
                "close_positions",
                "latest_signals",
                "explain_config"
            ]
        );
        for t in tools {
            assert_eq!(
                t["inputSchema"]["additionalProperties"],
                json!(false),
                "{t}"
            );
            assert!(t["description"].as_str().unwrap().len() > 40, "{t}");
        }
        let place = tools.iter().find(|t| t["name"] == "place_order").unwrap();
        assert_eq!(place["annotations"]["readOnlyHint"], json!(false));
        assert_eq!(
            place["inputSchema"]["properties"]["qty"]["type"],
            json!("string")
        );
        let quote = tools.iter().find(|t| t["name"] == "get_quote").unwrap();
        assert_eq!(quote["annotations"]["readOnlyHint"], json!(true));
    }
}

#[test]
fn get_quote_returns_decimal_strings() {
    let s = shared();
    let _serial = s.lock();
    let steps = connected(http(
        &s.url(),
        Some(VIEWER),
        "legacy",
        &[
            call(
                "get_quote",
                json!({"venue": "binanceus", "instrument": "BTC-USD"}),
            ),
            call(
                "get_order_book",
                json!({"venue": "binanceus", "instrument": "BTC-USD", "depth": 3}),
            ),
        ],
    ));
    let q = &steps[0]["structured"];
    assert_eq!(steps[0]["is_error"], json!(false), "{steps:?}");
    let (bid, ask) = (q["bid"].as_str().unwrap(), q["ask"].as_str().unwrap());
    let (bid, ask): (rust_decimal::Decimal, rust_decimal::Decimal) =
        (bid.parse().unwrap(), ask.parse().unwrap());
    assert!(bid > rust_decimal::Decimal::ZERO && ask >= bid, "{q}");
    // The text block carries the same JSON.
    let text: Value = serde_json::from_str(steps[0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(&text, q);
    let book = &steps[1]["structured"];
    assert_eq!(book["source"], json!("book"), "{book}");
    let bids = book["bids"].as_array().unwrap();
    assert!(!bids.is_empty() && bids.len() <= 3, "{book}");
    assert!(bids[0]["price"].is_string(), "{book}");
}

#[test]
fn place_order_allowed_in_paper_and_seen_on_the_bus_and_through_grpc() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    let steps = connected(http(
        &s.url(),
        Some(TRADER),
        "legacy",
        &[call("place_order", market_buy("0.001"))],
    ));
    let r = &steps[0];
    assert_eq!(r["is_error"], json!(false), "{r}");
    let order = &r["structured"]["order"];
    let id = order["client_order_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("gk"), "{order}");
    assert_eq!(
        s.venue_order_requests(),
        before + 1,
        "exactly one order reached the simulator"
    );
    // On the bus: the order stream has its `submitting` record, written before the send.
    let records = s.stream("gekko:{orders:binanceus}");
    assert!(
        records
            .iter()
            .any(|p| p.contains(&id) && p.contains("\"submitting\"")),
        "{id} not on gekko:{{orders:binanceus}}"
    );
    // Through gRPC: GetOrder knows it.
    let got = s.grpc_get_order("BTC-USD", &id);
    assert_eq!(got.client_order_id, id);
    assert_eq!(
        got.qty.parse::<rust_decimal::Decimal>().unwrap(),
        rust_decimal::Decimal::new(1, 3)
    );
    // Audited, with the caller the gRPC server authenticated (the token's name).
    let audited = s.audit_tool_calls("place_order");
    assert!(
        audited
            .iter()
            .any(|a| a.contains("mcp-bot") && a.contains("\"ok\"") && a.contains("\"http\"")),
        "{audited:?}"
    );
}

#[test]
fn over_the_notional_limit_refused() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    let steps = connected(http(
        &s.url(),
        Some(TRADER),
        "legacy",
        &[
            // A market order valued at the current ask.
            call("place_order", market_buy("1")),
            call(
                "place_order",
                json!({"venue": "binanceus", "instrument": "BTC-USD", "side": "buy", "type": "limit",
                       "qty": "0.1", "price": "10000"}),
            ),
        ],
    ));
    assert_refused(
        &steps[0],
        "max_order_notional",
        "refused by MCP_SETTINGS max_order_notional=500",
    );
    assert_refused(
        &steps[1],
        "max_order_notional",
        "notional 1000.0 is above 500",
    );
    assert_eq!(s.venue_order_requests(), before, "nothing was sent");
    let audited = s.audit_tool_calls("place_order");
    assert!(
        audited
            .iter()
            .any(|a| a.contains("\"refused\"") && a.contains("max_order_notional"))
    );
    let metrics = s.metrics();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gekko_mcp_refusals_total{")
                && l.contains("rule=\"max_order_notional\"")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gekko_mcp_tool_calls_total{")
                && l.contains("tool=\"place_order\"")
                && l.contains("outcome=\"refused\"")),
        "{metrics}"
    );
}

#[test]
fn disallowed_instrument_refused() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    let eth = json!({"venue": "binanceus", "instrument": "ETH-USD", "side": "buy", "type": "market", "qty": "0.01"});
    let coinbase = json!({"venue": "coinbase", "instrument": "BTC-USD", "side": "buy", "type": "market", "qty": "0.001"});
    let steps = connected(http(
        &s.url(),
        Some(TRADER),
        "legacy",
        &[call("place_order", eth), call("place_order", coinbase)],
    ));
    assert_refused(
        &steps[0],
        "allowed_instruments",
        "binanceus:ETH-USD is not allowed; allowed: binanceus:BTC-USD",
    );
    assert_refused(
        &steps[1],
        "allowed_instruments",
        "coinbase:BTC-USD is not allowed",
    );
    assert_eq!(s.venue_order_requests(), before, "nothing was sent");
}

#[test]
fn burst_over_the_per_minute_limit_refused() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    // One session (the legacy era's Mcp-Session-Id): three pass, the next two are refused.
    let burst: Vec<Value> = (0..5)
        .map(|_| call("place_order", market_buy("0.001")))
        .collect();
    let steps = connected(http(&s.url(), Some(TRADER), "legacy", &burst));
    for step in &steps[..3] {
        assert_eq!(step["is_error"], json!(false), "{step}");
    }
    for step in &steps[3..] {
        assert_refused(
            step,
            "max_orders_per_minute",
            "refused by MCP_SETTINGS max_orders_per_minute=3",
        );
    }
    assert_eq!(
        s.venue_order_requests(),
        before + 3,
        "only the three admitted orders were sent"
    );
    // A new session has its own window.
    let again = connected(http(
        &s.url(),
        Some(TRADER),
        "legacy",
        &[call("place_order", market_buy("0.001"))],
    ));
    assert_eq!(again[0]["is_error"], json!(false), "{again:?}");
}

#[test]
fn malformed_arguments_each_a_clean_error() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    let base = market_buy("0.001");
    let with = |k: &str, v: Value| {
        let mut a = base.clone();
        a[k] = v;
        call("place_order", a)
    };
    let steps = connected(http(
        &s.url(),
        Some(TRADER),
        "legacy",
        &[
            with("qty", json!(0.001)),
            with("qty", json!("-1")),
            with("side", json!(7)),
            with("leverage", json!("100")),
            with("instrument", json!("B".repeat(100_000))),
            with("price", json!("abc")),
            call(
                "get_order_book",
                json!({"venue": "binanceus", "instrument": "BTC-USD", "depth": "ten"}),
            ),
            // Still serving afterwards.
            call(
                "get_quote",
                json!({"venue": "binanceus", "instrument": "BTC-USD"}),
            ),
        ],
    ));
    assert_refused(&steps[0], "arguments", "qty: invalid type: floating point");
    assert_refused(&steps[1], "arguments", "qty: -1 must be greater than zero");
    assert_refused(&steps[2], "arguments", "side: invalid type: integer `7`");
    assert_refused(&steps[3], "arguments", "unknown field `leverage`");
    assert_refused(
        &steps[4],
        "arguments",
        "instrument: a string of 100000 bytes",
    );
    assert_refused(
        &steps[5],
        "arguments",
        "price: `abc` is not a decimal number",
    );
    assert_refused(&steps[6], "arguments", "depth: invalid type: string");
    assert_eq!(steps[7]["is_error"], json!(false), "{:?}", steps[7]);
    assert_eq!(s.venue_order_requests(), before, "nothing was sent");
}

#[test]
fn no_token_or_a_viewer_token_refused() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    // No token: HTTP 401 before any MCP handling, saying what is needed.
    let (code, body) = s.raw_post(None);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("a token is required"), "{body}");
    let (code, body) = s.raw_post(Some("Bearer not-a-configured-token"));
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("the token is not valid"), "{body}");
    // And through the SDK.
    let lines = http(
        &s.url(),
        None,
        "legacy",
        &[call("place_order", market_buy("0.001"))],
    );
    let err = lines[0]["connect_error"].as_str().unwrap_or_default();
    assert!(err.contains("a token is required"), "{lines:?}");
    // A viewer may read, not trade.
    let steps = connected(http(
        &s.url(),
        Some(VIEWER),
        "legacy",
        &[
            call("place_order", market_buy("0.001")),
            call("cancel_all_orders", json!({"venue": "binanceus"})),
            call("get_account", json!({"venue": "binanceus"})),
        ],
    ));
    assert_refused(
        &steps[0],
        "role",
        "place_order needs role trader; this token is viewer",
    );
    assert_refused(&steps[1], "role", "cancel_all_orders needs role trader");
    assert_eq!(steps[2]["is_error"], json!(false), "{:?}", steps[2]);
    assert!(steps[2]["structured"]["balances"].is_array());
    assert_eq!(s.venue_order_requests(), before, "nothing was sent");
    let audited = s.audit_tool_calls("place_order");
    assert!(
        audited
            .iter()
            .any(|a| a.contains("mcp-watcher") && a.contains("\"refused\"")),
        "{audited:?}"
    );
}

#[test]
fn close_positions_without_confirm_refused() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    let steps = connected(http(
        &s.url(),
        Some(TRADER),
        "legacy",
        &[
            call(
                "close_positions",
                json!({"venue": "binanceus", "instruments": ["BTC-USD"]}),
            ),
            call(
                "close_positions",
                json!({"venue": "binanceus", "instruments": ["BTC-USD"], "confirm": false}),
            ),
        ],
    ));
    assert_refused(&steps[0], "confirm", "call again with confirm: true");
    assert_refused(&steps[1], "confirm", "close_positions confirm");
    assert_eq!(s.venue_order_requests(), before, "nothing was sent");
}

#[test]
fn an_order_the_guard_admits_but_the_gateway_refuses_is_a_tool_error_and_nothing_is_sent() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    // Both pass the guard (BTC-USD on binanceus, notional far below 500); the gateway's
    // own pre-trade checks refuse them: Binance.US BTCUSD has step and minimum quantity
    // 0.00001 and a minimum notional of 10.
    let steps = connected(http(
        &s.url(),
        Some(TRADER),
        "legacy",
        &[
            call("place_order", market_buy("0.000015")),
            call("place_order", market_buy("0.00001")),
        ],
    ));
    for (step, needle) in steps.iter().zip([
        "filter LOT_SIZE: quantity 0.000015 is not a multiple of step size 0.00001",
        "filter MIN_NOTIONAL: notional",
    ]) {
        assert_eq!(step["is_error"], json!(true), "{step}");
        let structured = &step["structured"];
        assert_eq!(
            structured["refused"],
            json!(false),
            "not the MCP guard: {step}"
        );
        assert!(structured["grpc_code"].is_string(), "{step}");
        let text = step["text"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("gekko answered ") && text.contains(needle),
            "{needle:?} not in {text:?}"
        );
    }
    assert_eq!(
        s.venue_order_requests(),
        before,
        "the gateway sent nothing to the venue"
    );
    let audited = s.audit_tool_calls("place_order");
    assert!(
        audited
            .iter()
            .any(|a| a.contains("\"error\"") && a.contains("LOT_SIZE")),
        "{audited:?}"
    );
}
