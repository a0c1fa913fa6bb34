//! `signal-to-ack`: a gRPC `PlaceOrder` from a client over real TCP → pre-trade checks →
//! the `Submitting` record persisted on Redis → signed REST to the venue simulator →
//! the venue's ack → the ack persisted → gRPC reply, per venue.
//!
//! The gateway is the real one (`Gateway::start` over the venue's adapter, as the gateway
//! services start it in paper mode) behind the runtime's `GrpcServer` (health, reflection
//! and the auth layer, open on loopback), on a real `redis-server`. Stage timings are the
//! gateway's own histograms, read back through the bench's recorder:
//! `gekko_gateway_pretrade_check_seconds`, `gekko_gateway_submit_persist_seconds`,
//! `gekko_gateway_submit_seconds` (the venue call: sign + HTTP round trip + parse) and
//! `gekko_gateway_ack_persist_seconds`. Signing alone is measured here on the same key
//! kind (Binance.US HMAC-SHA256 over an order query, a Coinbase ES256 request JWT; OANDA
//! sends a static bearer token), so the HTTP round trip is the venue call minus it.
//! The references in the same run: a gRPC health `Check` on the same channel, and a
//! gekko bus publish (XADD) of the same size as an order record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gekko_core::{InstrumentId, VenueId};
use gekko_gateway::engine::Gateway;
use gekko_gateway::service::GatewayGrpc;
use gekko_proto::v1 as pb;
use gekko_proto::v1::gateway_service_client::GatewayServiceClient;
use gekko_runtime::{GrpcServer, Readiness};
use rust_decimal::Decimal;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::{Percentiles, Redis, Table, load1, secs_to_ns, wait_for};
use crate::recorder;

/// The stage histograms, in path order, with their table names.
const STAGES: &[(&str, &str)] = &[
    (
        "gekko_gateway_pretrade_check_seconds",
        "pre-trade checks + admission",
    ),
    (
        "gekko_gateway_submit_persist_seconds",
        "persist Submitting (XADD, durable)",
    ),
    (
        "gekko_gateway_submit_seconds",
        "venue call: sign + HTTP round trip + parse",
    ),
    (
        "gekko_gateway_ack_persist_seconds",
        "apply + persist the ack (XADD, durable)",
    ),
];

/// Gekko config variables for a paper gateway whose limits do not get in the way.
fn config() -> anyhow::Result<gekko_config::GekkoConfig> {
    let vars: BTreeMap<String, String> = [
        ("SUPPORTED_TRADING_PAIRS", "BTC-USD,EUR-USD"),
        (
            "COMPLIANCE_SETTINGS",
            "max_order_notional=1000000,max_daily_notional=1000000000",
        ),
        ("POSITION_LIMITS", "BTC-USD=1000,EUR-USD=100000000"),
        ("SYSTEM_PERFORMANCE_PARAMS", "max_inflight_orders=1000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    gekko_config::from_vars(&vars)
        .map(|l| l.config)
        .map_err(|e| anyhow::anyhow!("bench config: {e:?}"))
}

/// A started venue: the adapter, its gateway config, the instrument, the pause between
/// orders (the simulators' order rate limits), and what keeps the simulator alive.
struct Venue {
    adapter: Arc<dyn gekko_venue::VenueAdapter>,
    gateway: gekko_gateway::engine::GatewayConfig,
    instrument: InstrumentId,
    pace: Duration,
    _sim: Box<dyn std::any::Any + Send>,
}

async fn start_venue(venue: VenueId) -> anyhow::Result<Venue> {
    let cfg = config()?;
    Ok(match venue {
        VenueId::BinanceUs => {
            // The paper simulator, with the venue's 100 orders / 10 s lifted so that the
            // bench is not paced by it.
            let sim_cfg = gekko_sim::binanceus::SimConfig {
                orders_per_10s: 1_000_000,
                weight_limit_per_minute: 10_000_000,
                ..gekko_sim::binanceus::SimConfig::default()
            };
            let sim = gekko_sim::binanceus::SimBinanceUs::start(sim_cfg).await?;
            let s = gateway_binanceus::resolve(&cfg).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            // The paper key on a client whose own order limiter matches the lifted limit.
            let key = gekko_sim::binanceus::SimApiKey::paper();
            let secret = match key.auth {
                gekko_sim::binanceus::SimKeyAuth::Hmac { secret } => secret,
                gekko_sim::binanceus::SimKeyAuth::Ed25519 { .. } => {
                    anyhow::bail!("the Binance.US paper key is not an HMAC key")
                }
            };
            let mut bc = gekko_binanceus::BinanceUsConfig::simulator(
                &sim.rest_url,
                &sim.ws_url,
                secrecy::SecretString::from(key.api_key),
                gekko_binanceus::BinanceUsAuth::Hmac(secrecy::SecretString::from(secret)),
            );
            bc.orders_per_10s = 1_000_000;
            bc.weight_limit_per_minute = 10_000_000;
            let vc = gekko_binanceus::BinanceUsVenue::new(bc)?;
            Venue {
                adapter: Arc::new(vc),
                gateway: s.gateway,
                instrument: InstrumentId::new(venue, "BTC", "USD"),
                pace: Duration::from_millis(5),
                _sim: Box::new(sim),
            }
        }
        VenueId::Coinbase => {
            let s = gateway_coinbase::resolve(&cfg).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let (v, sim) = gateway_coinbase::connect(&s).await?;
            Venue {
                adapter: Arc::new(v),
                gateway: s.gateway,
                instrument: InstrumentId::new(venue, "BTC", "USD"),
                // Under the client's own private-request limiter (RATE_LIMITS), which
                // answers RESOURCE_EXHAUSTED rather than queue at 25 orders/s.
                pace: Duration::from_millis(150),
                _sim: Box::new(sim),
            }
        }
        VenueId::Oanda => {
            let s = gateway_oanda::resolve(&cfg).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let (v, sim) = gateway_oanda::connect(&s).await?;
            Venue {
                adapter: Arc::new(v),
                gateway: s.gateway,
                instrument: InstrumentId::new(venue, "EUR", "USD"),
                pace: Duration::from_millis(20),
                _sim: Box::new(sim),
            }
        }
    })
}

/// Signing alone, per request, on the venue's key kind: `(what, p50 ns)`.
fn sign_cost(venue: VenueId) -> anyhow::Result<(String, i64)> {
    const N: usize = 2_000;
    let mut samples = Vec::with_capacity(N);
    match venue {
        VenueId::BinanceUs => {
            let signer = gekko_binanceus::BinanceUsSigner::hmac(
                "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
            )?;
            let query = "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.00100&price=54000.00&newClientOrderId=bench-000000000001&newOrderRespType=ACK&recvWindow=5000&timestamp=1764620000000";
            for _ in 0..N {
                let t = Instant::now();
                std::hint::black_box(signer.sign_query(std::hint::black_box(query)));
                samples.push(elapsed_ns(t));
            }
            Ok(("HMAC-SHA256 query signature".into(), median(&mut samples)))
        }
        VenueId::Coinbase => {
            let key = gekko_coinbase::auth::CdpKey::generate(
                gateway_coinbase::PAPER_KEY_NAME,
                gekko_coinbase::auth::JwtAlgorithm::Es256,
            )?;
            let signer = gekko_coinbase::auth::CdpJwtSigner::new(key);
            for _ in 0..N / 4 {
                let t = Instant::now();
                std::hint::black_box(signer.rest_token(
                    "POST",
                    "127.0.0.1",
                    "/api/v3/brokerage/orders",
                )?);
                samples.push(elapsed_ns(t));
            }
            Ok(("ES256 request JWT".into(), median(&mut samples)))
        }
        VenueId::Oanda => Ok(("static bearer token (no signature)".into(), 0)),
    }
}

fn elapsed_ns(t: Instant) -> i64 {
    i64::try_from(t.elapsed().as_nanos()).unwrap_or(i64::MAX)
}

fn median(v: &mut [i64]) -> i64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Runs `orders` orders on each venue and returns the table.
///
/// # Errors
/// A part that does not start, or an order that is not acknowledged.
pub(crate) async fn run(
    venues: &[VenueId],
    orders: usize,
    redis_url: Option<&str>,
) -> anyhow::Result<Table> {
    recorder::install();
    let redis = Redis::start_or(redis_url)?;
    let mut t = Table::new(
        format!(
            "signal -> acknowledged order: gRPC PlaceOrder over TCP -> checks -> persist -> signed REST to the simulator -> ack -> reply ({orders} orders per venue, sequential)"
        ),
        &[
            "venue",
            "measurement",
            "p50 / p99 / p99.9 / max",
            "load (1 min)",
        ],
    );
    for &v in venues {
        one_venue(v, orders, &redis, &mut t).await?;
    }
    Ok(t)
}

async fn one_venue(v: VenueId, orders: usize, redis: &Redis, t: &mut Table) -> anyhow::Result<()> {
    let venue = start_venue(v).await?;
    let bus = redis.bus().await?;
    let readiness = Readiness::new();
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let (gw, _) = Gateway::start(
        venue.adapter.clone(),
        bus.clone(),
        venue.gateway.clone(),
        &readiness,
        &tracker,
        cancel.child_token(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{v} gateway start: {e}"))?;
    wait_for(&format!("{v} market data"), Duration::from_secs(30), || {
        gw.market_data_ready()
    })
    .await?;
    let info = gw
        .instruments()
        .into_iter()
        .find(|i| i.id == venue.instrument)
        .ok_or_else(|| anyhow::anyhow!("{v} does not list {}", venue.instrument.pair()))?;
    wait_for(&format!("a {v} quote"), Duration::from_secs(30), || {
        gw.last_quotes().contains_key(&venue.instrument.pair())
    })
    .await?;
    let bid = gw
        .last_quotes()
        .get(&venue.instrument.pair())
        .map(|q| q.bid)
        .ok_or_else(|| anyhow::anyhow!("no {v} quote"))?;
    // A resting buy 10% under the bid, on the tick grid, worth at least the minimum.
    let price = ((bid * Decimal::new(9, 1)) / info.tick_size).floor() * info.tick_size;
    let lot = if info.lot_size.is_zero() {
        Decimal::ONE
    } else {
        info.lot_size
    };
    let min_for_notional = if price.is_zero() {
        info.min_qty
    } else {
        ((info.min_notional * Decimal::new(11, 1)) / price / lot).ceil() * lot
    };
    let qty = info.min_qty.max(min_for_notional).max(lot);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tracker.spawn(
        GrpcServer::new(readiness.clone())
            .add_service(GatewayGrpc::new(gw.clone()).into_server())
            .serve(listener, cancel.child_token()),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut client = GatewayServiceClient::new(channel.clone());
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);

    // Reference: gRPC round trips on the same channel.
    let mut hc = Vec::new();
    for _ in 0..orders.max(50) {
        let s = Instant::now();
        health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await?;
        hc.push(elapsed_ns(s));
    }
    for (name, _) in STAGES {
        let _ = recorder::take_histogram(name);
    }
    let run_id = crate::common::unix_ns();
    let warm = 10;
    let mut e2e = Vec::with_capacity(orders);
    for k in 0..orders + warm {
        let req = pb::PlaceOrderRequest {
            venue: v.as_str().to_owned(),
            instrument: venue.instrument.pair(),
            side: pb::Side::Buy as i32,
            r#type: pb::OrderType::Limit as i32,
            qty: qty.to_string(),
            price: price.to_string(),
            time_in_force: pb::TimeInForce::Gtc as i32,
            strategy: format!("bench{}", run_id % 1_000_000_000),
            sequence: u64::try_from(k).unwrap_or(0) + 1,
            ..Default::default()
        };
        let s = Instant::now();
        let reply = client.place_order(req).await?.into_inner();
        let took = elapsed_ns(s);
        let order = reply
            .order
            .ok_or_else(|| anyhow::anyhow!("{v}: PlaceOrder answered without an order"))?;
        if order.venue_order_id.is_empty() {
            anyhow::bail!(
                "{v}: order {} not acknowledged by the venue (status {})",
                order.client_order_id,
                order.status
            );
        }
        if k == warm {
            for (name, _) in STAGES {
                let _ = recorder::take_histogram(name);
            }
        }
        if k >= warm {
            e2e.push(took);
        }
        tokio::time::sleep(venue.pace).await;
    }
    let load = load1();
    let mut stage_rows = Vec::new();
    for (name, label) in STAGES {
        let mut ns: Vec<i64> = recorder::take_histogram(name)
            .into_iter()
            .map(secs_to_ns)
            .collect();
        stage_rows.push((*name, *label, Percentiles::of(&mut ns)));
    }
    cancel.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    drop(venue);

    let (sign_what, sign_ns) = sign_cost(v)?;
    let hc = Percentiles::of(&mut hc);
    let e2e = Percentiles::of(&mut e2e);
    let row = |t: &mut Table, what: String, p: Option<Percentiles>| {
        t.row(vec![
            v.as_str().to_owned(),
            what,
            p.map_or_else(|| "-".into(), |p| p.ms()),
            load.clone(),
        ]);
    };
    row(t, "reference: gRPC health Check, same channel".into(), hc);
    row(t, "**PlaceOrder -> reply, end to end**".into(), e2e);
    let slowest = stage_rows
        .iter()
        .filter_map(|(_, l, p)| p.map(|p| (*l, p.p50_us)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(l, _)| l);
    for (_, label, p) in &stage_rows {
        let mark = if Some(*label) == slowest {
            " (slowest)"
        } else {
            ""
        };
        row(t, format!("stage: {label}{mark}"), *p);
    }
    t.row(vec![
        v.as_str().to_owned(),
        format!("of which signing alone: {sign_what} (p50, same run)"),
        format!("{:.1} µs", crate::common::us(sign_ns)),
        load.clone(),
    ]);
    t.figure(json!({
        "venue": v.as_str(),
        "grpc_health_reference": hc,
        "place_order": e2e,
        "stages": stage_rows.iter().map(|(n, _, p)| json!({"histogram": n, "latency": p})).collect::<Vec<_>>(),
        "sign": {"what": sign_what, "p50_ns": sign_ns},
        "slowest_stage": slowest,
        "load1": load,
    }));
    Ok(())
}
