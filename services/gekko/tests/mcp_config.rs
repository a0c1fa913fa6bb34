//! `MCP_SETTINGS` at the edges of the `gekko` binary: `gekko check`'s row for the MCP
//! server, a guard notional above the compliance limit refused before anything binds, and
//! an explicit `http_addr` that cannot be bound.

mod common;

use common::{gekko, monitoring};
use gekko_testkit::free_port;

fn mcp_row(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("mcp server"))
        .unwrap_or_else(|| panic!("no `mcp server` row:\n{text}"))
        .to_owned()
}

#[test]
fn check_warns_while_the_http_transport_has_no_tokens() {
    let out = gekko(&["check"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let row = mcp_row(&text);
    assert!(row.contains("WARN"), "{row}");
    assert!(
        row.contains("ACCESS_CONTROL_CONFIG tokens= is set"),
        "{row}"
    );
    assert!(row.contains("mode=read_only"), "{row}");

    let out = gekko(&["check"])
        .env("MCP_SETTINGS", "http_addr=off,mode=paper")
        .output()
        .unwrap();
    let row = mcp_row(&String::from_utf8_lossy(&out.stdout));
    assert!(
        row.contains("PASS") && row.contains("HTTP transport off"),
        "{row}"
    );
    assert!(row.contains("mode=paper"), "{row}");
}

#[test]
fn a_guard_notional_above_compliance_exits_64_naming_both() {
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let out = gekko(&["up"])
        .env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env(
            "COMPLIANCE_SETTINGS",
            "max_order_notional=5000,max_daily_notional=50000",
        )
        .env("MCP_SETTINGS", "mode=paper,max_order_notional=7500")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("MCP_SETTINGS"), "{err}");
    assert!(
        err.contains(
            "max_order_notional 7500 is above COMPLIANCE_SETTINGS max_order_notional 5000"
        ),
        "{err}"
    );
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", grpc)).is_ok(),
        "nothing was bound"
    );
}

#[test]
fn gekko_mcp_reports_a_bad_guard_config_and_exits_64() {
    let out = gekko(&["mcp", "--grpc", "http://127.0.0.1:9"])
        .env("MCP_SETTINGS", "mode=yolo")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("MCP_SETTINGS: mode: `yolo` is not an MCP mode"),
        "{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "stdout is the protocol: nothing else goes there"
    );
}

#[test]
fn an_explicit_http_addr_that_cannot_be_bound_stops_gekko_up_with_69() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let dir = std::env::temp_dir().join(format!("gekko-mcp-bind-{}", std::process::id()));
    let out = gekko(&["up"])
        .env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env("MCP_SETTINGS", format!("http_addr={addr}"))
        .env(
            "AUDIT_LOGGING_SETTINGS",
            format!("archive_dir={}", dir.join("audit").display()),
        )
        .env(
            "CONTROLLER_SETTINGS",
            format!("reports_dir={}", dir.join("reports").display()),
        )
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{err}");
    assert!(
        err.contains(&format!("MCP_SETTINGS http_addr {addr} cannot be bound")),
        "{err}"
    );
    drop(taken);
}
