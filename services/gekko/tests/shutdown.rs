//! The controller's shutdown modes, end to end: a real `gekko up` process on a real
//! `redis-server`, trading through its Binance.US gateway against a simulator this test
//! runs (so the test can read the simulator's own record), stopped three ways:
//!
//! - `gekko down --mode cancel`: zero open orders at the simulator afterwards;
//! - SIGTERM with `CONTROLLER_SETTINGS shutdown_mode=flatten`: zero positions;
//! - `SystemService.Shutdown` in `stop-entries` mode, waiting for the report: working
//!   orders stay at the venue.
//!
//! Each run must leave a final report whose figures agree with the simulator's fills.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Up, gekko, monitoring, wait_ready};
use gekko_proto::v1 as pb;
use gekko_sim::binanceus::{SimBinanceUs, SimConfig, SimHandle};
use gekko_sim::engine::SimOrderStatus;
use gekko_testkit::{RedisServer, free_port};
use rust_decimal::Decimal;
use serde_json::Value;

struct Live {
    rt: tokio::runtime::Runtime,
    sim: SimHandle,
    _redis: RedisServer,
    up: Option<Up>,
    grpc: u16,
    reports: PathBuf,
}

fn reports_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gekko-reports-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `gekko up` with live (simulated) Binance.US credentials on Redis, ready.
fn start(name: &str, controller: &str) -> Live {
    start_with(name, controller, &[])
}

fn start_with(name: &str, controller: &str, extra: &[(&str, String)]) -> Live {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(SimBinanceUs::start(SimConfig {
            tick_interval: Duration::from_millis(50),
            ..SimConfig::default()
        }))
        .unwrap();
    let redis = RedisServer::start();
    let reports = reports_dir(name);
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let mut cmd = gekko(&["up"]);
    cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env("REDIS_URL", redis.url())
        .env("BINANCEUS_API_KEY", "paper-key")
        .env("BINANCEUS_API_SECRET", "paper-secret")
        .env(
            "TRADING_API_ENDPOINTS",
            format!("binanceus={},binanceus.stream={}", sim.rest_url, sim.ws_url),
        )
        .env(
            "CONTROLLER_SETTINGS",
            format!("reports_dir={},{controller}", reports.display()),
        )
        .env(
            "AUDIT_LOGGING_SETTINGS",
            format!("archive_dir={}", reports.join("audit").display()),
        );
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut up = Up::start(cmd);
    up.wait_for_line("gekko up: mode=live", Duration::from_secs(60));
    wait_ready(&format!("127.0.0.1:{http}"));
    Live {
        rt,
        sim,
        _redis: redis,
        up: Some(up),
        grpc,
        reports,
    }
}

impl Live {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc)
    }

    fn gateway(
        &self,
    ) -> pb::gateway_service_client::GatewayServiceClient<tonic::transport::Channel> {
        let url = self.url();
        self.rt.block_on(async {
            pb::gateway_service_client::GatewayServiceClient::connect(url)
                .await
                .unwrap()
        })
    }

    /// Places an order; returns its client id.
    fn place(
        &self,
        instrument: &str,
        side: pb::Side,
        kind: pb::OrderType,
        qty: &str,
        price: &str,
        seq: u64,
    ) -> Result<pb::OrderMsg, tonic::Status> {
        let mut gw = self.gateway();
        let req = pb::PlaceOrderRequest {
            venue: "binanceus".into(),
            instrument: instrument.into(),
            side: side as i32,
            r#type: kind as i32,
            qty: qty.into(),
            price: price.into(),
            strategy: "shutdown-test".into(),
            sequence: seq,
            ..Default::default()
        };
        self.rt
            .block_on(gw.place_order(req))
            .map(|r| r.into_inner().order.unwrap())
    }

    /// A resting buy far below the market and a market buy that fills at once.
    fn trade(&self) {
        let resting = self
            .place(
                "BTC-USD",
                pb::Side::Buy,
                pb::OrderType::Limit,
                "0.01",
                "1000.00",
                1,
            )
            .unwrap();
        assert_eq!(resting.status, pb::OrderStatus::New as i32, "{resting:?}");
        let market = self
            .place(
                "ETH-USD",
                pb::Side::Buy,
                pb::OrderType::Market,
                "0.5",
                "",
                2,
            )
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self
            .sim
            .orders()
            .iter()
            .any(|o| o.symbol == "ETHUSD" && o.status == SimOrderStatus::Filled)
        {
            assert!(
                Instant::now() < deadline,
                "the market order never filled: {market:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The gateway records the fill from the user stream.
        std::thread::sleep(Duration::from_millis(500));
    }

    fn open_at_sim(&self) -> usize {
        self.sim
            .orders()
            .iter()
            .filter(|o| {
                matches!(
                    o.status,
                    SimOrderStatus::New | SimOrderStatus::PartiallyFilled
                )
            })
            .count()
    }

    fn holding(&self, asset: &str) -> Decimal {
        self.sim
            .balances("paper-key")
            .into_iter()
            .find(|(a, _, _)| a == asset)
            .map_or(Decimal::ZERO, |(_, free, locked)| free + locked)
    }
}

/// Runs `gekko down` against `url` with `args`; its exit code and its whole output.
fn down(url: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = gekko(&["down", "--grpc", url]);
    cmd.args(args);
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

impl Live {
    /// Calls `SystemService.Shutdown` without credentials.
    fn shutdown(&self, mode: &str, wait: bool) -> Result<pb::ShutdownResponse, tonic::Status> {
        let url = self.url();
        self.rt.block_on(async {
            let mut sys = pb::system_service_client::SystemServiceClient::connect(url)
                .await
                .unwrap();
            sys.shutdown(pb::ShutdownRequest {
                mode: mode.into(),
                wait,
            })
            .await
            .map(tonic::Response::into_inner)
        })
    }
}

/// The one JSON report in `dir`.
fn report(dir: &Path) -> Value {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("no reports dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    let json: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(json.len(), 1, "one JSON report: {entries:?}");
    let md = json[0].with_extension("md");
    let text = std::fs::read_to_string(&md).expect("a Markdown report beside the JSON one");
    assert!(text.starts_with("# gekko final report"), "{text}");
    serde_json::from_slice(&std::fs::read(json[0]).unwrap()).unwrap()
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .map(|s| s.parse().unwrap())
        .or_else(|| v.as_f64().map(|f| Decimal::try_from(f).unwrap()))
        .unwrap_or_else(|| panic!("not a decimal: {v}"))
}

/// The Binance.US entry of a report's venues (gekko up also hosts Coinbase in paper mode).
fn binanceus(report: &Value) -> &Value {
    report["venues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["venue"] == "binanceus")
        .expect("binanceus in the report")
}

/// The names of the report's Binance.US steps, in order.
fn binanceus_steps(report: &Value) -> Vec<&str> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["venue"] == "binanceus")
        .map(|s| s["step"].as_str().unwrap())
        .collect()
}

/// The report's bought/sold quantity and notional per instrument equal the simulator's
/// executed quantity and cumulative quote quantity of its orders.
fn assert_report_matches_sim(report: &Value, sim: &SimHandle) {
    let venue = binanceus(report);
    assert_eq!(venue["reachable"], true, "{venue}");
    for (symbol, pair) in [("BTCUSD", "BTC-USD"), ("ETHUSD", "ETH-USD")] {
        let (mut bq, mut bn, mut sq, mut sn) =
            (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        for o in sim.orders().iter().filter(|o| o.symbol == symbol) {
            match o.side {
                gekko_sim::engine::SimSide::Buy => {
                    bq += o.executed_qty;
                    bn += o.cummulative_quote_qty;
                }
                gekko_sim::engine::SimSide::Sell => {
                    sq += o.executed_qty;
                    sn += o.cummulative_quote_qty;
                }
            }
        }
        let line = venue["instruments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["instrument"] == pair);
        let Some(line) = line else {
            assert!(
                bq.is_zero() && sq.is_zero(),
                "{pair} traded at the sim but missing from the report: {venue}"
            );
            continue;
        };
        assert_eq!(dec(&line["bought_qty"]), bq, "{pair} bought qty: {line}");
        assert_eq!(dec(&line["sold_qty"]), sq, "{pair} sold qty: {line}");
        assert_eq!(
            dec(&line["bought_notional"]).round_dp(8),
            bn.round_dp(8),
            "{pair} bought notional: {line}"
        );
        assert_eq!(
            dec(&line["sold_notional"]).round_dp(8),
            sn.round_dp(8),
            "{pair} sold notional: {line}"
        );
    }
}

#[test]
fn down_cancel_leaves_no_open_order_at_the_venue() {
    let mut live = start("cancel", "shutdown_mode=stop-entries");
    live.trade();
    assert_eq!(live.open_at_sim(), 1, "the resting buy works at the venue");

    let (code, out) = down(&live.url(), &["--mode", "cancel"]);
    assert_eq!(code, Some(0), "gekko down:\n{out}");
    assert!(out.contains("shutdown accepted, mode cancel"), "{out}");
    assert!(out.contains("every step was confirmed"), "{out}");
    let (code, lines) = live.up.take().unwrap().wait_exit(Duration::from_secs(60));
    assert_eq!(code, 0, "gekko up exits cleanly:\n{}", lines.join("\n"));

    assert_eq!(
        live.open_at_sim(),
        0,
        "cancel leaves no open order at the simulator"
    );
    let r = report(&live.reports);
    assert_eq!(r["shutdown_mode"], "cancel");
    assert!(
        r["origin"].as_str().unwrap().starts_with("grpc:"),
        "{}",
        r["origin"]
    );
    assert_eq!(r["complete"], true, "{r:#}");
    assert_eq!(binanceus_steps(&r), ["stop-entries", "cancel"]);
    assert_report_matches_sim(&r, &live.sim);
    // The ETH bought is still held: cancel does not flatten. The report's positions and
    // its accounting of the fills both agree with the simulator's balance (20 + 0.5 − fee).
    let venue = binanceus(&r);
    let held = live.holding("ETH");
    assert!(held > Decimal::new(204, 1), "{held}");
    let eth_after = venue["positions_after"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["instrument"] == "ETH-USD")
        .unwrap();
    assert_eq!(dec(&eth_after["qty"]), held, "{venue}");
    let eth = venue["instruments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instrument"] == "ETH-USD")
        .unwrap();
    assert_eq!(
        (dec(&eth["start_qty"]), dec(&eth["end_qty"])),
        (Decimal::new(20, 0), held),
        "{eth}"
    );
}

#[test]
fn sigterm_flatten_leaves_no_position_at_the_venue() {
    let mut live = start("flatten", "shutdown_mode=flatten");
    live.trade();
    assert!(live.holding("BTC") > Decimal::ZERO && live.holding("ETH") > Decimal::ZERO);
    let (code, lines) = live.up.take().unwrap().terminate();
    assert_eq!(code, 0, "clean exit after SIGTERM:\n{}", lines.join("\n"));
    assert_eq!(live.open_at_sim(), 0, "flatten cancels first");
    for (asset, lot) in [("BTC", Decimal::new(1, 5)), ("ETH", Decimal::new(1, 4))] {
        let left = live.holding(asset);
        assert!(
            left < lot,
            "flatten leaves less than one lot of {asset}, left {left}"
        );
    }
    let r = report(&live.reports);
    assert_eq!(
        (r["shutdown_mode"].as_str(), r["origin"].as_str()),
        (Some("flatten"), Some("SIGTERM"))
    );
    assert_eq!(r["complete"], true, "{r:#}");
    assert_report_matches_sim(&r, &live.sim);
    let venue = binanceus(&r);
    for p in venue["positions_after"].as_array().unwrap() {
        assert!(dec(&p["qty"]) < Decimal::new(1, 4), "flat after: {venue}");
    }
    let eth = venue["instruments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instrument"] == "ETH-USD")
        .unwrap();
    // Held 20 at start, bought 0.5 (less the fee), then sold everything: 20 of it from
    // the start-up holding, without P/L, and the rest from this run's lot.
    assert_eq!(dec(&eth["bought_qty"]), Decimal::new(5, 1), "{eth}");
    assert_eq!(dec(&eth["start_qty"]), Decimal::new(20, 0), "{eth}");
    assert_eq!(
        dec(&eth["closed_from_start_qty"]),
        Decimal::new(20, 0),
        "{eth}"
    );
    assert!(dec(&eth["end_qty"]).abs() < Decimal::new(1, 4), "{eth}");
}

#[test]
fn stop_entries_keeps_working_orders() {
    let mut live = start("stop-entries", "shutdown_mode=cancel");
    live.trade();
    let resp = live.shutdown("stop-entries", true).unwrap();
    assert!(resp.accepted, "{resp:?}");
    assert_eq!(resp.mode, "stop-entries");
    assert!(resp.not_done.is_empty(), "{resp:?}");
    assert!(resp.report_json.ends_with(".json"), "{resp:?}");
    let (code, lines) = live.up.take().unwrap().wait_exit(Duration::from_secs(60));
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert_eq!(
        live.open_at_sim(),
        1,
        "stop-entries leaves the resting order working"
    );
    let r = report(&live.reports);
    assert_eq!(r["shutdown_mode"], "stop-entries");
    assert_report_matches_sim(&r, &live.sim);
    assert_eq!(binanceus(&r)["open_orders_after"], 1);
}

#[test]
fn shutdown_rejects_an_unknown_mode() {
    let mut live = start("bad-mode", "shutdown_mode=cancel");
    let err = live.shutdown("liquidate", false).unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("liquidate"), "{}", err.message());
    // Nothing was stopped: a later SIGTERM runs the configured mode.
    let (code, _) = live.up.take().unwrap().terminate();
    assert_eq!(code, 0);
    assert_eq!(report(&live.reports)["shutdown_mode"], "cancel");
}

/// `Shutdown` is an admin method with a second factor: `gekko down` with a trader token is
/// refused (exit 77), an admin token without its TOTP code too, and with the code the
/// shutdown runs and the report names the caller.
#[test]
fn down_needs_an_admin_token_and_its_totp_code() {
    let admin = "gk_admin-token-for-the-shutdown-test";
    let trader = "gk_trader-token-for-the-shutdown-test";
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let tokens = format!(
        "tokens=ops:admin:{}:totp={secret};bot:trader:{}",
        gekko_security::sha256_hex(admin),
        gekko_security::sha256_hex(trader)
    );
    let mut live = start_with(
        "auth",
        "shutdown_mode=cancel",
        &[("ACCESS_CONTROL_CONFIG", tokens)],
    );
    let url = live.url();
    let (code, out) = down(&url, &["--token", trader]);
    assert_eq!(code, Some(77), "a trader may not shut down:\n{out}");
    assert!(out.contains("PermissionDenied"), "{out}");
    let (code, out) = down(&url, &["--token", admin]);
    assert_eq!(code, Some(77), "an admin needs the second factor:\n{out}");
    assert!(out.to_lowercase().contains("totp"), "{out}");
    assert!(
        live.up
            .as_mut()
            .unwrap()
            .child
            .try_wait()
            .unwrap()
            .is_none(),
        "still running after the refusals"
    );
    let totp = gekko_security::Totp::from_base32(secret)
        .unwrap()
        .code_now();
    let (code, out) = down(&url, &["--token", admin, "--totp", &totp]);
    assert_eq!(code, Some(0), "{out}");
    let (code, lines) = live.up.take().unwrap().wait_exit(Duration::from_secs(60));
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let r = report(&live.reports);
    assert_eq!(r["origin"], "grpc:ops", "the report names the caller");
}

/// A venue that is down when the stop comes: the steps cannot be confirmed, `gekko down`
/// says what was not done and exits 1, and the report is still written and says so.
#[test]
fn the_report_is_written_and_says_so_when_the_venue_is_down() {
    let mut live = start("venue-down", "shutdown_mode=cancel,step_deadline=2s");
    live.trade();
    // Every REST call is now refused with 418 (an IP ban), as Binance.US does.
    live.sim.inject(gekko_sim::binanceus::Fault::Ban {
        duration: Duration::from_secs(300),
    });
    let (code, out) = down(&live.url(), &[]);
    assert_eq!(code, Some(1), "something was not done:\n{out}");
    assert!(out.contains("not done:"), "{out}");
    let (code, lines) = live.up.take().unwrap().wait_exit(Duration::from_secs(60));
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert_eq!(
        live.open_at_sim(),
        1,
        "the resting order could not be cancelled"
    );
    let r = report(&live.reports);
    assert_eq!(r["complete"], false, "{r:#}");
    let venue = binanceus(&r);
    assert_eq!(venue["reachable"], false, "{venue}");
    let cancel = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "cancel" && s["venue"] == "binanceus")
        .unwrap();
    assert_eq!(cancel["done"], false, "{cancel}");
    assert!(
        !cancel["not_done"].as_array().unwrap().is_empty(),
        "{cancel}"
    );
    let md: String = std::fs::read_dir(&live.reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        md.contains("INCOMPLETE") && md.contains("(UNREACHABLE)"),
        "{md}"
    );
    // The fills recorded before the outage are still accounted.
    assert_report_matches_sim(
        &{
            let mut r = r.clone();
            for v in r["venues"].as_array_mut().unwrap() {
                if v["venue"] == "binanceus" {
                    v["reachable"] = Value::Bool(true);
                }
            }
            r
        },
        &live.sim,
    );
}

/// A SIGTERM that arrives while the services are still starting (right after the bus
/// opens, before the start-up banner) is a stop request, not the signal's default action:
/// either the start is abandoned (what started is drained, exit 0) or, when every service
/// had already started, the usual shutdown steps and final report follow (exit 0).
#[test]
fn sigterm_during_start_up_is_a_clean_stop() {
    let reports = reports_dir("early-sigterm");
    let (http, grpc) = (free_port().unwrap(), free_port().unwrap());
    let mut cmd = gekko(&["up"]);
    cmd.env("MONITORING_CONFIGURATIONS", monitoring(http, grpc, "json"))
        .env("MCP_SETTINGS", "http_addr=off")
        .env(
            "CONTROLLER_SETTINGS",
            format!("reports_dir={}", reports.display()),
        )
        .env(
            "AUDIT_LOGGING_SETTINGS",
            format!("archive_dir={}", reports.join("audit").display()),
        );
    let mut up = Up::start(cmd);
    up.wait_for_line("\"bus opened\"", Duration::from_secs(60));
    let (code, lines) = up.terminate();
    let out = lines.join("\n");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("received shutdown signal"), "{out}");
    let report = std::fs::read_dir(&reports)
        .map(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .unwrap_or(false);
    assert!(
        out.contains("start abandoned") || report,
        "neither an abandoned start nor a final report in {}:\n{out}",
        reports.display()
    );
    let _ = std::fs::remove_dir_all(&reports);
}
