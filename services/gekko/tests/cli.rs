//! End-to-end tests of the `gekko` binary as a user runs it.

use std::process::Command;
use std::time::{Duration, Instant};

use gekko_testkit::{RedisServer, free_port};

mod common;

use common::{Up, gekko, http_get, monitoring, wait_ready};

/// Secrets of every kind `gekko up` reads, each with a sentinel that must never be logged:
/// venue credentials (Binance.US, the OANDA token), the sealed-secrets key, the audit HMAC
/// key and a TOTP secret of a gRPC token. The Coinbase signing key is a real key (the
/// gateway parses it and trades with it), so its sentinel is a line of the PEM body.
const SECRETS: [(&str, &str); 6] = [
    ("BINANCEUS_API_KEY", "binance-key-SENTINEL-1111"),
    ("BINANCEUS_API_SECRET", "binance-secret-SENTINEL-2222"),
    ("OANDA_API_TOKEN", "oanda-token-SENTINEL-3333"),
    (
        "ENCRYPTION_SETTINGS",
        "key=5e4e5e4e5e4e5e4e5e4e5e4e5e4e5e4e5e4e5e4e5e4e5e4e5e4e5e4e5e4e5e4e",
    ),
    (
        "AUDIT_LOGGING_SETTINGS",
        "key=a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7",
    ),
    (
        "ACCESS_CONTROL_CONFIG",
        "tokens=ops:admin:0000000000000000000000000000000000000000000000000000000000000000:totp=TOTPSENTINELXYZABCDEFGHIJKLMNOPQ",
    ),
];

/// The Coinbase key: the official SDK's EC P-256 test key, in SEC1 PEM.
const COINBASE_PEM: &str =
    include_str!("../../../crates/venues/coinbase/test_data/ec_p256_sec1.pem");
const COINBASE_KEY_NAME: &str = "organizations/org-1/apiKeys/key-1";

/// `gekko up` with the in-process bus and live Binance.US and Coinbase credentials
/// (pointed at simulators that know them; the Coinbase one over TLS, trusted through
/// `TRADING_TLS_CA_FILE`) reaches ready, serves metrics and gRPC, logs no secret, and exits
/// 0 on SIGTERM.
#[test]
fn up_in_process_reaches_ready_and_stops_cleanly() {
    use gekko_sim::binanceus::{SimApiKey, SimBinanceUs, SimConfig};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(SimBinanceUs::start(SimConfig {
            api_keys: vec![SimApiKey::hmac(SECRETS[0].1, SECRETS[1].1)],
            ..SimConfig::default()
        }))
        .unwrap();
    let cb_key = gekko_coinbase::CdpKey::parse(COINBASE_KEY_NAME, COINBASE_PEM).unwrap();
    let cb = rt
        .block_on(gekko_sim::coinbase::SimCoinbase::start(
            gekko_sim::coinbase::SimConfig {
                api_keys: vec![gekko_sim::coinbase::SimApiKey {
                    name: COINBASE_KEY_NAME.to_owned(),
                    public_key_pem: cb_key.public_key_pem(),
                }],
                ..gekko_sim::coinbase::SimConfig::default()
            },
        ))
        .unwrap();
    let oanda = rt
        .block_on(gekko_sim::oanda::SimOanda::start(
            gekko_sim::oanda::SimConfig {
                token: SECRETS[2].1.to_owned(),
                account_id: "001-001-1234567-001".to_owned(),
                ..gekko_sim::oanda::SimConfig::default()
            },
        ))
        .unwrap();
    let dir = std::env::temp_dir().join(format!("gekko-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("sim-coinbase.pem");
    std::fs::write(&ca, cb.cert_pem.as_deref().unwrap()).unwrap();
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let mut cmd = gekko(&["up"]);
    cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env("RUST_LOG", "debug")
        .env(
            "TRADING_API_ENDPOINTS",
            format!(
                "binanceus={},binanceus.stream={},coinbase={},coinbase.stream={},coinbase.user_stream={},oanda={},oanda.stream={}",
                sim.rest_url,
                sim.ws_url,
                cb.rest_url,
                cb.ws_url,
                cb.ws_user_url,
                oanda.rest_url,
                oanda.stream_url
            ),
        )
        .env("TRADING_TLS_CA_FILE", &ca)
        .env("OANDA_ACCOUNT_ID", "001-001-1234567-001")
        .env("COINBASE_API_KEY_NAME", COINBASE_KEY_NAME)
        // As an env file holds it: one line, literal \n.
        .env("COINBASE_API_SECRET", COINBASE_PEM.trim().replace('\n', "\\n"));
    for (k, v) in SECRETS {
        cmd.env(k, v);
    }
    let mut up = Up::start(cmd);
    up.wait_for_line("gekko up: mode=", Duration::from_secs(30));
    let addr = format!("127.0.0.1:{http}");
    let body = wait_ready(&addr);
    assert!(body.contains("\"bus\""), "{body}");
    assert!(body.contains("binanceus-market-data"), "{body}");
    assert!(body.contains("coinbase-market-data"), "{body}");
    assert!(body.contains("oanda-market-data"), "{body}");
    let (code, metrics) = http_get(&addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("gekko_bus_appended_total"), "{metrics}");
    assert_eq!(http_get(&addr, "/livez").unwrap().0, 200);
    assert!(
        cb.stats().rest_requests > 0,
        "the Coinbase gateway traded against the simulator"
    );
    assert_eq!(cb.stats().auth_failures, 0, "every JWT accepted");
    assert!(
        oanda.stats().rest_requests > 0,
        "the OANDA gateway traded against the simulator with the token"
    );

    let (code, lines) = up.terminate();
    assert_eq!(
        code,
        0,
        "clean exit after SIGTERM; output:\n{}",
        lines.join("\n")
    );
    let all = lines.join("\n");
    assert!(
        all.contains("starting gekko"),
        "the config line was logged:\n{all}"
    );
    for (name, secret) in SECRETS {
        let tail = secret.rsplit('=').next().unwrap();
        assert!(!all.contains(tail), "{name} leaked into the logs:\n{all}");
    }
    for line in COINBASE_PEM.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !all.contains(line),
            "COINBASE_API_SECRET leaked into the logs:\n{all}"
        );
    }
    drop(sim);
    drop(cb);
    drop(oanda);
    std::fs::remove_dir_all(&dir).ok();
}

/// Paper mode: no credentials, so `gekko up` runs the Binance.US simulator in-process
/// and the gateway trades against it; `/readyz` includes the gateway's components.
/// The documented pair list `BTC-USD,ETH-USD,EUR-USD` spans venues: Binance.US does not
/// list EUR-USD, skips it with a log line and still reaches ready.
#[test]
fn up_paper_mode_runs_the_simulated_venue() {
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let mut cmd = gekko(&["up"]);
    cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env("SUPPORTED_TRADING_PAIRS", "BTC-USD,ETH-USD,EUR-USD");
    let mut up = Up::start(cmd);
    up.wait_for_line("gekko up: mode=paper", Duration::from_secs(30));
    let addr = format!("127.0.0.1:{http}");
    let body = wait_ready(&addr);
    for c in [
        "binanceus-credentials",
        "binanceus-clock",
        "binanceus-reconciliation",
        "binanceus-market-data",
        "coinbase-credentials",
        "coinbase-clock",
        "coinbase-reconciliation",
        "coinbase-market-data",
        "oanda-credentials",
        "oanda-reconciliation",
        "oanda-market-data",
    ] {
        assert!(body.contains(c), "{c} missing from {body}");
    }
    let (_, metrics) = http_get(&addr, "/metrics").unwrap();
    assert!(
        metrics.contains("gekko_venue_request_seconds"),
        "venue metrics exported"
    );

    // Every service answers on the one gRPC port, and signals flow on the bus.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use gekko_proto::v1 as pb;
        let url = format!("http://127.0.0.1:{grpc}");
        let mut gw = pb::gateway_service_client::GatewayServiceClient::connect(url.clone())
            .await
            .unwrap();
        for (venue, listed) in [
            ("binanceus", "BTC-USD"),
            ("coinbase", "BTC-USD"),
            ("oanda", "EUR-USD"),
        ] {
            let instruments = gw
                .get_instruments(pb::GetInstrumentsRequest {
                    venue: venue.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .instruments;
            assert!(
                instruments.iter().any(|i| i.instrument == listed),
                "{venue}: {instruments:?}"
            );
            let unlisted = if venue == "oanda" {
                "BTC-USD"
            } else {
                "EUR-USD"
            };
            assert!(
                !instruments.iter().any(|i| i.instrument == unlisted),
                "{venue}: a pair the venue does not list is skipped: {instruments:?}"
            );
        }
        // PlaceOrder names its venue; the one gRPC port routes it.
        let order = |venue: &str| pb::PlaceOrderRequest {
            venue: venue.to_owned(),
            instrument: "BTC-USD".into(),
            side: pb::Side::Buy as i32,
            r#type: pb::OrderType::Limit as i32,
            qty: "0.01".into(),
            price: "1000.00".into(),
            strategy: "cli-test".into(),
            sequence: 1,
            ..Default::default()
        };
        for venue in ["binanceus", "coinbase"] {
            let placed = gw
                .place_order(order(venue))
                .await
                .unwrap()
                .into_inner()
                .order
                .unwrap();
            assert_eq!(placed.status, pb::OrderStatus::New as i32, "{placed:?}");
            assert!(!placed.venue_order_id.is_empty(), "{venue}: {placed:?}");
        }
        // OANDA trades FX: a resting EUR-USD limit buy, units signed on the wire.
        let mut fx = order("oanda");
        fx.instrument = "EUR-USD".into();
        fx.qty = "1000".into();
        fx.price = "0.50000".into();
        let placed = gw
            .place_order(fx)
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap();
        assert_eq!(placed.status, pb::OrderStatus::New as i32, "{placed:?}");
        let account = gw
            .get_account(pb::GetAccountRequest {
                venue: "oanda".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let margin = account.margin.expect("a margin venue reports its summary");
        assert_eq!(margin.currency, "USD", "{margin:?}");
        assert!(margin.nav.parse::<rust_decimal::Decimal>().unwrap() > rust_decimal::Decimal::ZERO);
        let mut unknown = order("binanceus");
        unknown.venue = "kraken".into();
        let err = gw.place_order(unknown).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(
            ["binanceus", "coinbase", "oanda"]
                .iter()
                .all(|v| err.message().contains(v)),
            "{}",
            err.message()
        );
        let mut inf = pb::inference_service_client::InferenceServiceClient::connect(url.clone())
            .await
            .unwrap();
        let info = inf
            .model_info(pb::ModelInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (info.model.as_str(), info.version, info.device.as_str()),
            ("direction", 1, "cpu")
        );
        let mut sys = pb::system_service_client::SystemServiceClient::connect(url)
            .await
            .unwrap();
        let status = sys
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(status.ready && status.mode == "paper", "{status:?}");
    });
    // Signals flow: quotes from the simulated venue reach the model and come out as
    // signals (the default threshold suppresses some, so wait for the counter).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, m) = http_get(&addr, "/metrics").unwrap();
        let published = m
            .lines()
            .find(|l| l.starts_with("gekko_inference_signals_total"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if published > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no signal published in paper mode within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, lines) = up.terminate();
    assert_eq!(code, 0, "output:\n{}", lines.join("\n"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("pair not offered by the venue") && l.contains("EUR-USD")),
        "the skipped pair is logged:\n{}",
        lines.join("\n")
    );
}

/// With `REDIS_URL`, readiness follows Redis: ready, then 503 while it is down, then
/// ready again after it returns. The life-cycle audit records go to the stream
/// `AUDIT_LOGGING_SETTINGS` names.
#[test]
fn up_on_redis_tracks_redis_readiness() {
    let mut redis = RedisServer::start();
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let mut cmd = gekko(&["up"]);
    cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env("REDIS_URL", redis.url())
        .env("AUDIT_LOGGING_SETTINGS", "stream=gekko:audit:cli-test");
    let mut up = Up::start(cmd);
    up.wait_for_line("bus=redis", Duration::from_secs(30));
    let addr = format!("127.0.0.1:{http}");
    wait_ready(&addr);

    redis.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((503, body)) = http_get(&addr, "/readyz") {
            assert!(body.contains("redis unreachable"), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never turned 503 with redis down"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    redis.restart();
    wait_ready(&addr);
    let (code, lines) = up.terminate();
    assert_eq!(code, 0, "output:\n{}", lines.join("\n"));
    let audit = Command::new("redis-cli")
        .args([
            "-p",
            &redis.port().to_string(),
            "XRANGE",
            "gekko:audit:cli-test",
            "-",
            "+",
        ])
        .output()
        .expect("redis-cli runs (scripts/test.sh installs redis-tools)");
    let audit = String::from_utf8_lossy(&audit.stdout);
    for event in ["started", "stopping", "stopped"] {
        assert!(
            audit.contains(&format!("\"event\":\"{event}\"")),
            "{event} missing from the configured audit stream:\n{audit}"
        );
    }
}

/// Bad config: every problem on stderr, exit 64, and no port bound.
#[test]
fn bad_config_lists_every_problem_and_exits_64_without_binding() {
    let http = free_port().unwrap();
    for sub in ["up", "check"] {
        let out = gekko(&[sub])
            .env(
                "MONITORING_CONFIGURATIONS",
                format!("http_addr=127.0.0.1:{http},log_format=xml"),
            )
            .env("SUPPORTED_TRADING_PAIRS", "BTC-USD")
            .env("POSITION_LIMITS", "ETH-USD=5")
            .env("CONFIDENCE_THRESHOLDS", "direction=1.5")
            .env("BINANCEUS_API_KEY", "only-half")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{sub}: {out:?}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for var in [
            "MONITORING_CONFIGURATIONS",
            "POSITION_LIMITS",
            "CONFIDENCE_THRESHOLDS",
            "BINANCEUS_API_SECRET",
        ] {
            assert!(text.contains(var), "{sub}: {var} not reported:\n{text}");
        }
        // Nothing was bound: the configured port is still free.
        std::net::TcpListener::bind(("127.0.0.1", http))
            .unwrap_or_else(|e| panic!("{sub} left port {http} bound: {e}"));
    }
}

/// `gekko check` prints one row per check and passes on this machine's defaults.
#[test]
fn check_prints_table() {
    let out = gekko(&["check"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for check in [
        "config",
        "redis",
        "docker",
        "accelerator",
        "cpu",
        "memory",
        "disk",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(check)
                && (l.contains("PASS") || l.contains("WARN") || l.contains("FAIL"))),
            "no row for {check}:\n{text}"
        );
    }
    assert!(text.contains("checks:"), "{text}");
}

/// `gekko check` fails the redis row when REDIS_URL points nowhere.
#[test]
fn check_fails_on_unreachable_redis() {
    let port = free_port().unwrap();
    let out = gekko(&["check"])
        .env("REDIS_URL", format!("redis://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let row = text.lines().find(|l| l.starts_with("redis")).unwrap();
    assert!(row.contains("FAIL"), "{row}");
}

/// A venue setting only the gateway can judge (an Ed25519 key that does not parse) is
/// still a configuration problem: exit 64, named on stderr, before any port is bound.
#[test]
fn bad_venue_settings_exit_64_without_binding() {
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let out = gekko(&["up"])
        .env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env("BINANCEUS_API_KEY", "some-key")
        .env("BINANCEUS_API_SECRET", "not-an-ed25519-key")
        .env("BINANCEUS_KEY_TYPE", "ed25519")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(
        text.contains("gateway-binanceus: BINANCEUS_API_SECRET"),
        "{text}"
    );
    assert!(
        !text.contains("not-an-ed25519-key"),
        "secret echoed: {text}"
    );
    for port in [http, grpc] {
        std::net::TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("port {port} left bound: {e}"));
    }
}

/// The start-up report: a required check that fails (here `venues`: the live endpoint
/// refuses connections) stops `gekko up` with exit 69 before anything is bound; the same
/// failure in a check that is not required only shows in the table.
#[test]
fn a_failing_required_check_stops_the_start() {
    let closed = free_port().unwrap();
    let run = |required: &str| {
        let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
        let mut cmd = gekko(&["up"]);
        cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
            .env("BINANCEUS_API_KEY", "k-0000")
            .env("BINANCEUS_API_SECRET", "s-0000")
            .env(
                "TRADING_API_ENDPOINTS",
                format!(
                    "binanceus=http://127.0.0.1:{closed},binanceus.stream=ws://127.0.0.1:{closed}"
                ),
            )
            .env("CONTROLLER_SETTINGS", format!("required_checks={required}"));
        (cmd, grpc)
    };
    let (mut cmd, grpc) = run("config;venues");
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stdout}\n{stderr}");
    let tcp = stdout
        .lines()
        .find(|l| l.starts_with("venue binanceus tcp"))
        .unwrap_or_else(|| panic!("no tcp row:\n{stdout}"));
    assert!(tcp.contains("FAIL") && tcp.contains("yes"), "{tcp}");
    assert!(
        stderr.contains("required check failed") && stderr.contains("venue binanceus tcp"),
        "{stderr}"
    );
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", grpc)).is_ok(),
        "nothing was bound"
    );

    // Not required: the row still fails, and the start goes on past the table.
    let (cmd, _) = run("config");
    let mut up = Up::start(cmd);
    up.wait_for_line("venue binanceus tcp", Duration::from_secs(30));
    up.wait_for_line("starting gekko", Duration::from_secs(30));
    let (_, lines) = up.terminate();
    assert!(
        !lines.iter().any(|l| l.contains("required check failed")),
        "{}",
        lines.join("\n")
    );
}
