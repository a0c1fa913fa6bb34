//! The `mcp` binary routed to separate gateway processes, as in the compose deployment:
//! the Binance.US and Coinbase gateways each run in a service host of their own (paper
//! mode, their simulators embedded, on a real Redis), each with its own gRPC port; the
//! real `mcp` binary is routed to them (`MCP_SETTINGS grpc.binanceus`, `grpc.coinbase`)
//! and an rmcp client talks to it over streamable HTTP with a bearer token.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gekko_runtime::Host;
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp");
const TOKEN: &str = "routed-mcp-test-token-0123456789";
const WAIT: Duration = Duration::from_secs(60);

fn port() -> u16 {
    gekko_testkit::free_port().unwrap()
}

/// The environment every process of the test shares, plus its own monitoring ports.
fn env(redis: &str, archive: &std::path::Path, http: u16, grpc: u16) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("REDIS_URL".to_owned(), redis.to_owned()),
        (
            "MONITORING_CONFIGURATIONS".to_owned(),
            format!("http_addr=127.0.0.1:{http},grpc_addr=127.0.0.1:{grpc},log_level=warn"),
        ),
        (
            "AUDIT_LOGGING_SETTINGS".to_owned(),
            format!("archive_dir={}", archive.display()),
        ),
    ])
}

/// Runs `host` on a runtime of its own for the rest of the test process.
fn run_host(host: Host, vars: &BTreeMap<String, String>) {
    let loaded = gekko_config::from_vars(vars).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let exit = rt.block_on(host.run(loaded, &()));
        eprintln!("host exited: {exit:?}");
    });
}

async fn wait_ready(http: u16, what: &str) {
    let url = format!("http://127.0.0.1:{http}/readyz");
    let client = reqwest::Client::new();
    gekko_testkit::poll_some(what, WAIT, || async {
        let r = client.get(&url).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
}

/// The `mcp` binary with `mcp_settings`, its HTTP transport on `mcp_port`.
fn spawn_mcp(base: &BTreeMap<String, String>, mcp_settings: &str, mcp_port: u16) -> (Child, u16) {
    let http = port();
    let mut cmd = Command::new(BIN);
    cmd.env_clear().envs(base);
    cmd.env(
        "MONITORING_CONFIGURATIONS",
        format!(
            "http_addr=127.0.0.1:{http},grpc_addr=127.0.0.1:{},log_level=warn",
            port()
        ),
    );
    cmd.env(
        "ACCESS_CONTROL_CONFIG",
        format!(
            "tokens=mcp-bot:trader:{}",
            gekko_security::sha256_hex(TOKEN)
        ),
    );
    cmd.env(
        "MCP_SETTINGS",
        format!("http_addr=127.0.0.1:{mcp_port},{mcp_settings}"),
    );
    let child = gekko_testkit::reaped(&cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    (child, http)
}

async fn client(mcp_port: u16, token: &str) -> RunningService<RoleClient, ClientConfig> {
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("http://127.0.0.1:{mcp_port}/mcp"))
            .auth_header(token);
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("routed-test", "1"),
    );
    info.serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap()
}

/// A tool call: whether it is an error, and its structured content (or its text).
async fn call(
    c: &RunningService<RoleClient, ClientConfig>,
    tool: &str,
    args: Value,
) -> (bool, Value) {
    let mut params = CallToolRequestParams::new(tool.to_owned());
    params.arguments = args.as_object().cloned();
    let r = c.peer().call_tool(params).await.unwrap();
    let text: Vec<String> = r
        .content
        .iter()
        .filter_map(|b| b.as_text().map(|t| t.text.clone()))
        .collect();
    let value = r
        .structured_content
        .unwrap_or_else(|| Value::from(text.join("\n")));
    (r.is_error.unwrap_or(false), value)
}

fn audit_records(redis: &str) -> Vec<String> {
    let mut conn = redis::Client::open(redis)
        .unwrap()
        .get_connection()
        .unwrap();
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("gekko:audit:mcp")
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    reply
        .ids
        .into_iter()
        .flat_map(|e| e.map.into_values())
        .filter_map(|v| match v {
            redis::Value::BulkString(b) => String::from_utf8(b).ok(),
            _ => None,
        })
        .collect()
}

fn stop(mut child: Child) {
    drop(child.stdin.take());
    let _ = child.wait();
}

fn market_buy(venue: &str) -> Value {
    json!({"venue": venue, "instrument": "BTC-USD", "side": "buy", "type": "market", "qty": "0.001"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_to_two_gateway_processes() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let redis = gekko_testkit::RedisServer::start();
    let url = redis.url();
    let archive = std::env::temp_dir().join(format!("gekko-mcp-routed-{}", std::process::id()));
    std::fs::create_dir_all(&archive).unwrap();

    let (bn_http, bn_grpc, cb_http, cb_grpc) = (port(), port(), port(), port());
    run_host(
        Host::new(gateway_binanceus::SOURCE)
            .service::<gateway_binanceus::BinanceUsGateway>()
            .grpc(gekko_gateway::service::serve_gateways),
        &env(&url, &archive, bn_http, bn_grpc),
    );
    run_host(
        Host::new(gateway_coinbase::SOURCE)
            .service::<gateway_coinbase::CoinbaseGateway>()
            .grpc(gekko_gateway::service::serve_gateways),
        &env(&url, &archive, cb_http, cb_grpc),
    );
    wait_ready(bn_http, "the Binance.US gateway to be ready").await;
    wait_ready(cb_http, "the Coinbase gateway to be ready").await;

    let base = env(&url, &archive, 0, 0);
    let routes = format!(
        "grpc.binanceus=http://127.0.0.1:{bn_grpc},grpc.coinbase=http://127.0.0.1:{cb_grpc}"
    );
    let mcp_port = port();
    let (mcp, mcp_http) = spawn_mcp(&base, &format!("mode=trade,{routes}"), mcp_port);
    wait_ready(mcp_http, "the mcp binary to be ready").await;
    let c = client(mcp_port, TOKEN).await;

    // system_status: both routes, healthy, reported live.
    let (err, s) = call(&c, "system_status", json!({})).await;
    assert!(!err, "{s}");
    assert_eq!(s["ready"], json!(true), "{s}");
    assert_eq!(s["mode"], json!("live"), "{s}");
    assert_eq!(
        s["venues"],
        json!([{"venue": "binanceus", "simulated": false}, {"venue": "coinbase", "simulated": false}]),
        "{s}"
    );
    let names: Vec<&str> = s["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gateway-binanceus", "gateway-coinbase"], "{s}");
    assert!(
        s["components"][0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{bn_grpc}")),
        "{s}"
    );

    // list_instruments without a venue: every routed venue, each from its own process.
    let (err, r) = call(&c, "list_instruments", json!({})).await;
    assert!(!err, "{r}");
    let venues: std::collections::BTreeSet<&str> = r["instruments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["venue"].as_str().unwrap())
        .collect();
    assert_eq!(
        venues.into_iter().collect::<Vec<_>>(),
        ["binanceus", "coinbase"],
        "{r}"
    );

    // Orders on both venues (mode=trade), each answered by its own gateway.
    let mut placed = Vec::new();
    for venue in ["binanceus", "coinbase"] {
        // A market order is valued at the current quote: wait for the first one.
        gekko_testkit::poll_some("a quote", WAIT, || async {
            let args = json!({"venue": venue, "instrument": "BTC-USD"});
            let (err, q) = call(&c, "get_quote", args).await;
            let ask = q["ask"].as_str().and_then(|a| a.parse::<f64>().ok());
            (!err && ask.is_some_and(|a| a > 0.0)).then_some(q)
        })
        .await;
        let (err, r) = call(&c, "place_order", market_buy(venue)).await;
        assert!(!err, "{venue}: {r}");
        assert_eq!(r["venue"], json!(venue), "{r}");
        let id = r["order"]["client_order_id"].as_str().unwrap().to_owned();
        let (err, got) = call(
            &c,
            "get_order",
            json!({"venue": venue, "instrument": "BTC-USD", "client_order_id": id}),
        )
        .await;
        assert!(!err, "{got}");
        assert_eq!(got["order"]["client_order_id"], json!(id), "{got}");
        placed.push(id);
    }

    // A venue that is not routed: a clear error naming the routed ones.
    let (err, r) = call(&c, "place_order", market_buy("oanda")).await;
    assert!(err, "{r}");
    let text = r["error"].as_str().unwrap();
    assert!(
        text.contains("\"oanda\" is not routed here; this MCP server routes: binanceus, coinbase"),
        "{text}"
    );
    // No inference route, no SystemService: each says what to set or where to look.
    let (err, r) = call(&c, "latest_signals", json!({})).await;
    assert!(
        err && r["error"]
            .as_str()
            .unwrap()
            .contains("MCP_SETTINGS grpc.inference"),
        "{r}"
    );
    let (err, r) = call(&c, "explain_config", json!({})).await;
    assert!(
        err && r["error"].as_str().unwrap().contains("configd"),
        "{r}"
    );

    // The audit records, written by the mcp process itself with the token's name.
    let records = audit_records(&url);
    let tool_calls = |tool: &str, outcome: &str| {
        records
            .iter()
            .filter(|p| {
                p.contains("mcp.tool_call")
                    && p.contains("\"actor\":\"mcp-bot\"")
                    && p.contains(&format!("\"tool\":\"{tool}\""))
                    && p.contains(&format!("\"outcome\":\"{outcome}\""))
            })
            .count()
    };
    assert_eq!(tool_calls("place_order", "ok"), 2, "{records:?}");
    assert_eq!(tool_calls("place_order", "error"), 1, "{records:?}");
    assert_eq!(tool_calls("system_status", "ok"), 1, "{records:?}");
    assert!(
        records.iter().any(|p| p.contains("not routed here")),
        "{records:?}"
    );
    drop(c);
    stop(mcp);

    // mode=paper: a routed venue is never shown simulated, so orders are refused.
    let paper_port = port();
    let (paper, paper_http) = spawn_mcp(&base, &format!("mode=paper,{routes}"), paper_port);
    wait_ready(paper_http, "the paper mcp to be ready").await;
    let c = client(paper_port, TOKEN).await;
    let (err, r) = call(&c, "place_order", market_buy("binanceus")).await;
    assert!(err, "{r}");
    assert_eq!(r["refused"], json!(true), "{r}");
    assert_eq!(r["rule"], json!("mode"), "{r}");
    let (err, v) = call(&c, "list_venues", json!({})).await;
    assert!(!err, "{v}");
    assert_eq!(v["venues"][0]["mcp_orders_allowed"], json!(false), "{v}");
    drop(c);
    stop(paper);
    let _ = std::fs::remove_dir_all(&archive);
}

#[test]
fn without_routes_the_binary_exits_64_naming_them() {
    let out = Command::new(BIN)
        .env_clear()
        .env("MCP_SETTINGS", "mode=read_only")
        .env(
            "MONITORING_CONFIGURATIONS",
            format!(
                "http_addr=127.0.0.1:{},grpc_addr=127.0.0.1:{}",
                port(),
                port()
            ),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MCP_SETTINGS grpc.binanceus"), "{stderr}");
    let out = Command::new(BIN)
        .env_clear()
        .env(
            "MCP_SETTINGS",
            "grpc.binanceus=gateway:50051,grpc.kraken=http://k:1",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("grpc.binanceus") && stderr.contains("unknown key `grpc.kraken`"),
        "{stderr}"
    );
}
