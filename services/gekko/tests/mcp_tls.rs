//! The HTTP transport when gRPC serves mTLS (`gekko certs dev`): the in-process MCP
//! client verifies gekko's certificate with `MCP_SETTINGS grpc_ca` and presents the dev
//! client certificate, so tools work end to end; without `grpc_ca` the transport stays
//! off and says why.

mod common;
#[path = "mcp/support.rs"]
mod support;

use std::time::{Duration, Instant};

use common::{Up, gekko, monitoring};
use gekko_testkit::free_port;
use serde_json::json;
use support::{TRADER, call, http};

#[test]
fn the_http_transport_reaches_grpc_over_mtls() {
    let dir = std::env::temp_dir().join(format!("gekko-mcp-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let certs = dir.join("certs");
    let out = gekko(&["certs", "dev", "--out", certs.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = |name: &str| certs.join(name).display().to_string();
    let access = format!(
        "tokens=mcp-bot:trader:{},tls_cert={},tls_key={},tls_client_ca={}",
        gekko_security::sha256_hex(TRADER),
        f("server.pem"),
        f("server.key"),
        f("ca.pem")
    );
    let (http_port, grpc, mcp) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let mut cmd = gekko(&["up"]);
    cmd.env(
        "MONITORING_CONFIGURATIONS",
        monitoring(http_port, grpc, "json"),
    )
    .env("ACCESS_CONTROL_CONFIG", &access)
    .env(
        "MCP_SETTINGS",
        format!(
            "http_addr=127.0.0.1:{mcp},grpc_ca={},grpc_client_cert={},grpc_client_key={}",
            f("ca.pem"),
            f("client.pem"),
            f("client.key")
        ),
    )
    .env(
        "CONTROLLER_SETTINGS",
        format!("reports_dir={}", dir.join("reports").display()),
    )
    .env(
        "AUDIT_LOGGING_SETTINGS",
        format!("archive_dir={}", dir.join("audit").display()),
    );
    let mut up = Up::start(cmd);
    up.wait_for_line(
        &format!("gekko up: mcp=http://127.0.0.1:{mcp}/mcp"),
        Duration::from_secs(90),
    );
    let url = format!("http://127.0.0.1:{mcp}/mcp");
    let deadline = Instant::now() + Duration::from_secs(60);
    let quote = loop {
        let lines = http(
            &url,
            Some(TRADER),
            "legacy",
            &[call(
                "get_quote",
                json!({"venue": "binanceus", "instrument": "BTC-USD"}),
            )],
        );
        assert_eq!(lines[0]["connected"], json!(true), "{lines:?}");
        if lines[1]["is_error"] == json!(false) {
            break lines[1].clone();
        }
        let text = lines[1]["text"].as_str().unwrap_or_default().to_owned();
        // Until market data flows the gateway has no quote; anything else is a failure.
        assert!(text.contains("no quote"), "{text}");
        assert!(
            Instant::now() < deadline,
            "no quote over mTLS within 60 s: {text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(quote["structured"]["bid"].is_string(), "{quote}");
    let (code, lines) = up.terminate();
    assert_eq!(code, 0, "{}", lines.join("\n"));

    // The same TLS setup without grpc_ca, with http_addr set explicitly: a config
    // problem naming the fix, and nothing starts.
    let (http_port, grpc, mcp) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let env = |cmd: &mut std::process::Command, mcp_settings: String| {
        cmd.env(
            "MONITORING_CONFIGURATIONS",
            monitoring(http_port, grpc, "json"),
        )
        .env("ACCESS_CONTROL_CONFIG", &access)
        .env("MCP_SETTINGS", mcp_settings)
        .env(
            "CONTROLLER_SETTINGS",
            format!("reports_dir={}", dir.join("reports").display()),
        )
        .env(
            "AUDIT_LOGGING_SETTINGS",
            format!("archive_dir={}", dir.join("audit").display()),
        );
    };
    let mut cmd = gekko(&["up"]);
    env(&mut cmd, format!("http_addr=127.0.0.1:{mcp}"));
    let (code, lines) = Up::start(cmd).wait_exit(Duration::from_secs(90));
    let out = lines.join("\n");
    assert_eq!(code, 64, "{out}");
    assert!(
        out.contains("set MCP_SETTINGS grpc_ca to the CA of gekko's certificate"),
        "{out}"
    );

    // With the default http_addr the transport is optional: it stays off, says why, and
    // gekko up serves everything else.
    let mut cmd = gekko(&["up"]);
    env(&mut cmd, "mode=read_only".to_owned());
    let mut up = Up::start(cmd);
    up.wait_for_line(
        "MCP_SETTINGS grpc_ca (the CA of gekko's certificate) is not set",
        Duration::from_secs(90),
    );
    up.wait_for_line("gekko up: mode=paper", Duration::from_secs(60));
    let (code, lines) = up.terminate();
    assert_eq!(code, 0, "{}", lines.join("\n"));
}
