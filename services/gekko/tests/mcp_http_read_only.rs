//! gekko's MCP server over streamable HTTP in its default mode, `read_only`, driven by the
//! official MCP Python SDK (`mcp` 2.3.0) against one `gekko up` in paper mode on a real
//! Redis. `MCP_SETTINGS` names only `http_addr`, so the guard is the default one.
//!
//! A trader token (whose role may trade) still cannot change anything: every
//! state-changing tool is a tool error naming rule `mode`, reading tools still answer,
//! and the gateway's order requests to the Binance.US simulator do not move.

mod common;
#[path = "mcp/support.rs"]
mod support;

use std::sync::OnceLock;

use serde_json::{Value, json};
use support::{Shared, TRADER, assert_refused, call, connected, http, market_buy};

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared::start(|port| format!("http_addr=127.0.0.1:{port}")))
}

#[test]
fn place_order_refused_in_read_only() {
    let s = shared();
    let _serial = s.lock();
    let before = s.venue_order_requests();
    let limit: Value = json!({"venue": "binanceus", "instrument": "BTC-USD", "side": "sell",
                              "type": "limit", "qty": "0.001", "price": "100000"});
    let steps = connected(http(
        &s.url(),
        Some(TRADER),
        "legacy",
        &[
            call("system_status", json!({})),
            call("place_order", market_buy("0.001")),
            call("place_order", limit),
            call(
                "cancel_order",
                json!({"venue": "binanceus", "instrument": "BTC-USD", "client_order_id": "gk-none"}),
            ),
            call("cancel_all_orders", json!({"venue": "binanceus"})),
            // Reading still works.
            call(
                "get_quote",
                json!({"venue": "binanceus", "instrument": "BTC-USD"}),
            ),
        ],
    ));
    assert_eq!(steps[0]["is_error"], json!(false), "{steps:?}");
    assert_eq!(
        steps[0]["structured"]["mcp_guard"]["mode"],
        json!("read_only"),
        "the default mode: {}",
        steps[0]
    );
    for (step, tool) in steps[1..5].iter().zip([
        "place_order",
        "place_order",
        "cancel_order",
        "cancel_all_orders",
    ]) {
        assert_refused(
            step,
            "mode",
            &format!("refused by MCP_SETTINGS mode=read_only: {tool} changes state"),
        );
    }
    assert_eq!(steps[5]["is_error"], json!(false), "{:?}", steps[5]);
    assert!(steps[5]["structured"]["ask"].is_string(), "{:?}", steps[5]);
    assert_eq!(s.venue_order_requests(), before, "nothing was sent");
    let audited = s.audit_tool_calls("place_order");
    assert!(
        audited
            .iter()
            .any(|a| a.contains("mcp-bot") && a.contains("\"refused\"") && a.contains("\"http\"")),
        "{audited:?}"
    );
    let metrics = s.metrics();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gekko_mcp_refusals_total{") && l.contains("rule=\"mode\"")),
        "{metrics}"
    );
}
