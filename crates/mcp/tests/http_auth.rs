//! The `mcp` service's HTTP front door over a real socket: the bearer-token check and the
//! `Host` check happen before rmcp (and long before any gRPC call), so these need no
//! running gekko: the service is started on a bare `ServiceCtx` whose gRPC address
//! points nowhere.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gekko_mcp::McpHttpService;
use gekko_runtime::{Readiness, Service, ServiceCtx, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "http-auth-test-token-0123456789";

/// Starts the service with `vars` plus an HTTP address on a free port; returns the port.
async fn start(mut vars: BTreeMap<String, String>, shutdown: &Shutdown) -> u16 {
    let port = gekko_testkit::free_port().unwrap();
    let settings = vars.remove("MCP_SETTINGS").unwrap_or_default();
    vars.insert(
        "MCP_SETTINGS".into(),
        format!("{settings},http_addr=127.0.0.1:{port}")
            .trim_start_matches(',')
            .to_owned(),
    );
    let cfg = gekko_config::from_vars(&vars).unwrap().config;
    let settings = McpHttpService::resolve(&cfg).unwrap();
    let ctx = ServiceCtx::new(
        Arc::new(gekko_bus::MemoryBus::new()),
        Readiness::new(),
        shutdown,
    )
    .with_grpc_addr("127.0.0.1:9".parse().unwrap());
    let _started = McpHttpService::start(settings, &ctx).await.unwrap();
    port
}

/// One POST of an initialize request: the status code and the whole response.
async fn post(port: u16, host: &str, authorization: Option<&str>) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

#[tokio::test]
async fn with_no_tokens_configured_every_request_is_401_saying_tokens_must_be_set() {
    let shutdown = Shutdown::new();
    let port = start(BTreeMap::new(), &shutdown).await;
    let host = format!("127.0.0.1:{port}");
    for auth in [None, Some("Bearer anything-at-all-0123456789")] {
        let (code, text) = post(port, &host, auth).await;
        assert_eq!(code, 401, "{text}");
        assert!(
            text.contains("ACCESS_CONTROL_CONFIG tokens= must be set"),
            "{text}"
        );
        assert!(
            text.to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{text}"
        );
    }
    shutdown.trigger();
}

#[tokio::test]
async fn a_valid_token_gets_through_and_a_foreign_host_does_not() {
    let shutdown = Shutdown::new();
    let vars = BTreeMap::from([(
        "ACCESS_CONTROL_CONFIG".to_owned(),
        format!("tokens=ops:viewer:{}", gekko_security::sha256_hex(TOKEN)),
    )]);
    let port = start(vars, &shutdown).await;
    let host = format!("127.0.0.1:{port}");
    let bearer = format!("Bearer {TOKEN}");
    let (code, text) = post(port, &host, Some(&bearer)).await;
    assert_eq!(
        code, 200,
        "the initialize handshake needs no gRPC call: {text}"
    );
    assert!(
        text.contains("\"protocolVersion\":\"2025-11-25\""),
        "{text}"
    );
    assert!(
        text.to_ascii_lowercase().contains("mcp-session-id:"),
        "{text}"
    );
    // DNS-rebinding protection: a Host outside MCP_SETTINGS allowed_hosts.
    let (code, text) = post(port, &format!("evil.example:{port}"), Some(&bearer)).await;
    assert_eq!(code, 403, "{text}");
    let (code, text) = post(port, &host, Some("Bearer wrong-token-0123456789")).await;
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("the token is not valid"), "{text}");
    shutdown.trigger();
}

#[tokio::test]
async fn http_addr_off_serves_nothing() {
    let vars = BTreeMap::from([("MCP_SETTINGS".to_owned(), "http_addr=off".to_owned())]);
    let cfg = gekko_config::from_vars(&vars).unwrap().config;
    assert!(McpHttpService::resolve(&cfg).unwrap().is_none());
}
