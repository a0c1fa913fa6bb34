//! The Coinbase simulator's websocket hosts over real `wss` sockets (reference 1.6).
//!
//! A tokio-tungstenite client trusts only the certificate the simulator generated, and
//! signs its subscribe JWTs (no `uri` claim) and REST JWTs by hand with the official
//! SDK's test keys (`support/coinbase.rs`), independently of any gekko code. Every wait
//! is a poll with a deadline; the market is paused wherever a test needs a still book.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gekko_sim::coinbase::{Fault, SimCoinbase, SimConfig, SimHandle};
use rust_decimal::Decimal;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

#[path = "support/coinbase.rs"]
mod support;

use support::{EC_NAME, ED_NAME, Jwt, Key, now_s, ws_jwt};

/// How long any single expected message may take.
const WAIT: Duration = Duration::from_secs(5);

struct Venue {
    sim: SimHandle,
    http: reqwest::Client,
    tls: Arc<rustls::ClientConfig>,
    ec: Key,
    ed: Key,
}

impl Venue {
    async fn start(cfg: impl FnOnce(&mut SimConfig)) -> Self {
        let (ec, ed) = (Key::ec(), Key::ed());
        let mut c = SimConfig {
            api_keys: support::api_keys(&ec, &ed),
            ..SimConfig::default()
        };
        cfg(&mut c);
        let sim = SimCoinbase::start(c).await.expect("sim starts");
        let pem = sim.cert_pem.clone().expect("TLS certificate");
        assert!(sim.ws_url.starts_with("wss://"), "{}", sim.ws_url);
        assert!(sim.ws_user_url.starts_with("wss://"), "{}", sim.ws_user_url);
        assert_ne!(sim.ws_addr, sim.ws_user_addr);
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).expect("cert")])
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.expect("cert PEM")).expect("root");
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("tls versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            sim,
            http,
            tls: Arc::new(tls),
            ec,
            ed,
        }
    }

    async fn connect(&self, url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
            url,
            None,
            false,
            Some(Connector::Rustls(Arc::clone(&self.tls))),
        )
        .await
        .expect("wss connects");
        Client { ws, seen: 0 }
    }

    async fn market(&self) -> Client {
        self.connect(&self.sim.ws_url).await
    }

    /// A REST call signed with the EC key; the JSON answer.
    async fn rest(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let host = self.sim.rest_url.trim_start_matches("https://");
        let nbf = now_s();
        let token = Jwt {
            key: &self.ec,
            kid: EC_NAME,
            iss: "cdp",
            nbf,
            exp: nbf + 120,
            uri: Some(format!("{method} {host}{path}")),
        }
        .token();
        let url = format!("{}{path}", self.sim.rest_url);
        let rb = if method == "POST" {
            self.http.post(url).json(&body.unwrap_or(json!({})))
        } else {
            self.http.get(url)
        };
        let r = rb.bearer_auth(token).send().await.expect("request");
        assert!(r.status().is_success(), "{method} {path}: {}", r.status());
        r.json().await.expect("json")
    }

    /// Places a GTC limit order; its order id.
    async fn limit(&self, cid: &str, side: &str, price: &str, size: &str) -> String {
        let body = json!({"client_order_id": cid, "product_id": "BTC-USD", "side": side,
            "order_configuration": {"limit_limit_gtc": {"base_size": size, "limit_price": price, "post_only": false}}});
        let r = self
            .rest("POST", "/api/v3/brokerage/orders", Some(body))
            .await;
        assert_eq!(r["success"], true, "{r}");
        r["order_id"].as_str().expect("order id").to_owned()
    }
}

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Messages received.
    seen: usize,
}

fn sub(channel: &str, products: &[&str], jwt: Option<String>) -> Value {
    let mut m = json!({"type": "subscribe", "channel": channel, "product_ids": products});
    if let Some(j) = jwt {
        m["jwt"] = json!(j);
    }
    m
}

impl Client {
    async fn send(&mut self, v: &Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    /// The next text frame before `deadline`: `Ok(Some(text))`, `Ok(None)` when the
    /// connection ended, `Err(())` on timeout.
    async fn next_text(&mut self, deadline: Instant) -> Result<Option<String>, ()> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, self.ws.next()).await {
                Err(_) => return Err(()),
                Ok(Some(Ok(Message::Text(t)))) => {
                    self.seen += 1;
                    return Ok(Some(t.as_str().to_owned()));
                }
                Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return Ok(None),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// The next JSON message (panics on timeout, close or invalid JSON).
    async fn next(&mut self) -> Value {
        let text = self
            .next_text(Instant::now() + WAIT)
            .await
            .expect("a message in time")
            .expect("connection open");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// The first message on `channel` (others are skipped).
    async fn next_on(&mut self, channel: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self
                .next_text(deadline)
                .await
                .unwrap_or_else(|()| panic!("no {channel} message in time"))
                .expect("connection open");
            let v: Value = serde_json::from_str(&text).expect("json");
            if v["channel"] == channel {
                return v;
            }
        }
    }

    /// Subscribes and returns the acknowledgement.
    async fn subscribe(&mut self, channel: &str, products: &[&str], jwt: Option<String>) -> Value {
        self.send(&sub(channel, products, jwt)).await;
        let ack = self.next_on("subscriptions").await;
        assert!(ack["events"][0]["subscriptions"].is_object(), "{ack}");
        ack
    }

    /// `true` when the connection ends before `within`.
    async fn closes_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            match self.next_text(deadline).await {
                Ok(None) => return true,
                Ok(Some(_)) => {}
                Err(()) => return false,
            }
        }
    }
}

fn d(v: &Value) -> Decimal {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("decimal string expected, got {v}"))
}

/// A client-side book: price -> qty per side.
#[derive(Debug, Default, PartialEq, Eq)]
struct Book {
    bids: BTreeMap<Decimal, Decimal>,
    asks: BTreeMap<Decimal, Decimal>,
}

impl Book {
    fn apply(&mut self, updates: &Value) {
        for u in updates.as_array().expect("updates") {
            let side = match u["side"].as_str() {
                Some("bid") => &mut self.bids,
                Some("offer") => &mut self.asks,
                other => panic!("side {other:?}"),
            };
            let (p, q) = (d(&u["price_level"]), d(&u["new_quantity"]));
            assert!(u["event_time"].as_str().is_some_and(|t| t.ends_with('Z')));
            if q.is_zero() {
                side.remove(&p);
            } else {
                side.insert(p, q);
            }
        }
    }

    fn of(sim: &SimHandle, product: &str) -> Self {
        let (_, bids, asks) = sim.book(product).expect("known product");
        Self {
            bids: bids.into_iter().collect(),
            asks: asks.into_iter().collect(),
        }
    }
}

fn assert_envelope(v: &Value) {
    assert_eq!(v["client_id"], "", "{v}");
    let ts = v["timestamp"].as_str().expect("timestamp");
    // 2026-04-07T14:30:03.000000Z
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    assert!(v["sequence_num"].is_u64(), "{v}");
    assert!(v["events"].is_array(), "{v}");
}

#[tokio::test]
async fn no_subscribe_within_the_deadline_closes_the_connection() {
    let v = Venue::start(|c| c.ws_subscribe_timeout = Duration::from_millis(600)).await;
    let started = Instant::now();
    let mut idle = v.market().await;
    let mut user_idle = v.connect(&v.sim.ws_user_url).await;
    let mut active = v.market().await;
    active.subscribe("heartbeats", &[], None).await;
    assert!(idle.closes_within(Duration::from_secs(3)).await);
    // Not before the deadline (its clock starts after our connect began).
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert!(user_idle.closes_within(Duration::from_secs(3)).await);
    // The subscribed connection outlives the deadline and keeps getting heartbeats.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let hb = active.next_on("heartbeats").await;
    assert_envelope(&hb);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn sequence_numbers_count_every_message_of_a_connection_across_channels() {
    let v = Venue::start(|_| {}).await;
    let mut c = v.market().await;
    c.send(&sub("heartbeats", &[], None)).await;
    c.send(&sub("ticker", &["BTC-USD"], None)).await;
    c.send(&sub("level2", &["ETH-USD"], None)).await;
    let mut channels = std::collections::BTreeSet::new();
    let mut acks = Vec::new();
    for want in 0..60_u64 {
        let m = c.next().await;
        assert_envelope(&m);
        assert_eq!(m["sequence_num"], want, "{m}");
        let ch = m["channel"].as_str().expect("channel").to_owned();
        if ch == "subscriptions" {
            acks.push(m["events"][0]["subscriptions"].clone());
        }
        channels.insert(ch);
        if channels.len() == 4 && want > 20 {
            break;
        }
    }
    assert_eq!(
        channels.into_iter().collect::<Vec<_>>(),
        ["heartbeats", "l2_data", "subscriptions", "ticker"]
    );
    assert_eq!(acks.len(), 3);
    assert_eq!(
        acks[2],
        json!({"heartbeats": [], "ticker": ["BTC-USD"], "level2": ["ETH-USD"]})
    );
    // A second connection numbers its own messages from 0.
    let mut other = v.market().await;
    other.send(&sub("heartbeats", &[], None)).await;
    assert_eq!(other.next().await["sequence_num"], 0);
    // Unsubscribing answers with what is left.
    c.send(&json!({"type": "unsubscribe", "channel": "ticker", "product_ids": ["BTC-USD"]}))
        .await;
    let ack = c.next_on("subscriptions").await;
    assert_eq!(
        ack["events"][0]["subscriptions"],
        json!({"heartbeats": [], "level2": ["ETH-USD"]})
    );
    v.sim.shutdown().await;
}

#[tokio::test]
async fn level2_snapshot_plus_updates_rebuild_the_simulators_book() {
    let v = Venue::start(|c| c.tick_interval = Duration::from_millis(50)).await;
    let mut c = v.market().await;
    c.subscribe("level2", &["BTC-USD"], None).await;
    let snap = c.next_on("l2_data").await;
    let ev = &snap["events"][0];
    assert_eq!(
        (ev["type"].as_str(), ev["product_id"].as_str()),
        (Some("snapshot"), Some("BTC-USD"))
    );
    let mut book = Book::default();
    book.apply(&ev["updates"]);
    assert!(!book.bids.is_empty() && !book.asks.is_empty());
    // Apply updates while the market moves (ticks every 50 ms), and a resting order.
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut updates = 0;
    let mut removed = 0;
    v.limit("l2-1", "BUY", "59000.00", "0.5").await;
    while Instant::now() < deadline {
        let m = c.next_on("l2_data").await;
        let ev = &m["events"][0];
        assert_eq!(ev["type"], "update", "{m}");
        removed += ev["updates"]
            .as_array()
            .expect("updates")
            .iter()
            .filter(|u| u["new_quantity"] == "0")
            .count();
        book.apply(&ev["updates"]);
        updates += 1;
    }
    assert!(updates > 5, "{updates} updates");
    assert!(removed > 0, "the moving market removes levels with \"0\"");
    v.sim.set_market_paused(true);
    // Drain until the client's book equals the venue's (the last ticks may be in flight).
    let end = Instant::now() + WAIT;
    loop {
        let venue = Book::of(&v.sim, "BTC-USD");
        if book == venue {
            break;
        }
        assert!(
            Instant::now() < end,
            "client book diverged from the venue's"
        );
        let m = c.next_on("l2_data").await;
        book.apply(&m["events"][0]["updates"]);
    }
    assert_eq!(
        book.bids
            .get(&Decimal::new(59_000, 0))
            .copied()
            .map(|q| q >= Decimal::new(5, 1)),
        Some(true)
    );
    v.sim.shutdown().await;
}

#[tokio::test]
async fn ticker_snapshot_then_updates_carry_the_touch() {
    let v = Venue::start(|_| {}).await;
    v.sim.set_market_paused(true);
    let mut c = v.market().await;
    c.subscribe("ticker", &["BTC-USD"], None).await;
    let snap = c.next_on("ticker").await;
    assert_eq!(snap["events"][0]["type"], "snapshot", "{snap}");
    let t = &snap["events"][0]["tickers"][0];
    assert_eq!(
        (t["type"].as_str(), t["product_id"].as_str()),
        (Some("ticker"), Some("BTC-USD"))
    );
    let (_, bids, asks) = v.sim.book("BTC-USD").expect("book");
    assert_eq!(d(&t["best_bid"]), bids[0].0);
    assert_eq!(d(&t["best_bid_quantity"]), bids[0].1);
    assert_eq!(d(&t["best_ask"]), asks[0].0);
    assert_eq!(d(&t["best_ask_quantity"]), asks[0].1);
    for f in [
        "price",
        "volume_24_h",
        "low_24_h",
        "high_24_h",
        "low_52_w",
        "high_52_w",
        "price_percent_chg_24_h",
    ] {
        d(&t[f]);
    }
    v.sim.tick_market();
    let up = c.next_on("ticker").await;
    assert_eq!(up["events"][0]["type"], "update", "{up}");
    let t = &up["events"][0]["tickers"][0];
    let (_, bids, asks) = v.sim.book("BTC-USD").expect("book");
    assert_eq!(
        (d(&t["best_bid"]), d(&t["best_ask"])),
        (bids[0].0, asks[0].0)
    );
    v.sim.shutdown().await;
}

#[tokio::test]
async fn heartbeats_arrive_every_second_with_a_counter() {
    let v = Venue::start(|_| {}).await;
    let mut c = v.market().await;
    c.subscribe("heartbeats", &[], None).await;
    let mut last: Option<(Instant, u64)> = None;
    for _ in 0..3 {
        let m = c.next_on("heartbeats").await;
        let at = Instant::now();
        let ev = &m["events"][0];
        assert!(
            ev["current_time"]
                .as_str()
                .is_some_and(|t| t.contains(" +0000 UTC")),
            "{m}"
        );
        let n = ev["heartbeat_counter"].as_u64().expect("counter");
        if let Some((t0, n0)) = last {
            assert_eq!(n, n0 + 1);
            let gap = at - t0;
            assert!(
                gap > Duration::from_millis(600) && gap < Duration::from_millis(1900),
                "{gap:?}"
            );
        }
        last = Some((at, n));
    }
    v.sim.shutdown().await;
}

#[tokio::test]
async fn user_channel_needs_a_valid_jwt_and_reports_an_order_life() {
    let v = Venue::start(|_| {}).await;
    v.sim.set_market_paused(true);
    let mut c = v.market().await;
    // No JWT, a REST token (with `uri`), an expired one, an unknown key: all refused.
    c.send(&sub("user", &[], None)).await;
    let e = c.next().await;
    assert_eq!(e["type"], "error", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("authentication"))
    );
    let nbf = now_s();
    let with_uri = Jwt {
        key: &v.ec,
        kid: EC_NAME,
        iss: "cdp",
        nbf,
        exp: nbf + 120,
        uri: Some("GET x/y".into()),
    };
    let expired = Jwt {
        key: &v.ed,
        kid: ED_NAME,
        iss: "cdp",
        nbf: nbf - 300,
        exp: nbf - 180,
        uri: None,
    };
    let stranger = Key::ec();
    for bad in [
        with_uri.token(),
        expired.token(),
        ws_jwt(&stranger, "nobody"),
    ] {
        c.send(&sub("user", &[], Some(bad))).await;
        let e = c.next().await;
        assert_eq!(
            (e["type"].as_str(), e["message"].as_str()),
            (Some("error"), Some("authentication failure")),
            "{e}"
        );
    }
    // A bad JWT on a public channel is refused too.
    c.send(&sub("ticker", &["BTC-USD"], Some(expired.token())))
        .await;
    assert_eq!(c.next().await["type"], "error");
    // A resting order exists before the subscribe: it is in the snapshot.
    let first = v.limit("ws-user-0", "BUY", "50000.00", "0.01").await;
    c.subscribe("user", &[], Some(ws_jwt(&v.ec, EC_NAME))).await;
    let snap = c.next_on("user").await;
    assert_envelope(&snap);
    let ev = &snap["events"][0];
    assert_eq!(ev["type"], "snapshot", "{snap}");
    let orders = ev["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 1, "{snap}");
    assert_eq!(orders[0]["order_id"], first.as_str());
    assert_eq!(orders[0]["status"], "OPEN");
    c.subscribe("market_trades", &["BTC-USD"], Some(ws_jwt(&v.ed, ED_NAME)))
        .await;
    let trades_snap = c.next_on("market_trades").await;
    assert_eq!(trades_snap["events"][0]["type"], "snapshot");

    // New -> partial fill -> filled.
    let id = v.limit("ws-user-1", "BUY", "55000.00", "0.4").await;
    let o = &c.next_on("user").await["events"][0]["orders"][0].clone();
    assert_eq!(
        (o["order_id"].as_str(), o["status"].as_str()),
        (Some(id.as_str()), Some("OPEN")),
        "{o}"
    );
    assert_eq!(
        (
            o["client_order_id"].as_str(),
            o["order_side"].as_str(),
            o["order_type"].as_str()
        ),
        (Some("ws-user-1"), Some("BUY"), Some("LIMIT"))
    );
    assert_eq!(
        (
            d(&o["limit_price"]),
            d(&o["leaves_quantity"]),
            d(&o["cumulative_quantity"])
        ),
        (Decimal::new(55_000, 0), Decimal::new(4, 1), Decimal::ZERO)
    );
    assert_eq!(
        (
            o["product_id"].as_str(),
            o["time_in_force"].as_str(),
            o["number_of_fills"].as_str()
        ),
        (Some("BTC-USD"), Some("GOOD_UNTIL_CANCELLED"), Some("0"))
    );
    for f in [
        "avg_price",
        "filled_value",
        "total_fees",
        "creation_time",
        "completion_percentage",
        "outstanding_hold_amount",
        "total_value_after_fees",
    ] {
        assert!(o[f].is_string(), "{f}: {o}");
    }
    assert_eq!(
        v.sim
            .trade_through("BTC-USD", Decimal::new(55_000, 0), Decimal::new(1, 1)),
        Decimal::new(1, 1)
    );
    let o = c.next_on("user").await["events"][0]["orders"][0].clone();
    assert_eq!(
        (
            o["status"].as_str(),
            d(&o["cumulative_quantity"]),
            d(&o["leaves_quantity"])
        ),
        (Some("OPEN"), Decimal::new(1, 1), Decimal::new(3, 1)),
        "{o}"
    );
    assert_eq!(
        (d(&o["avg_price"]), o["number_of_fills"].as_str()),
        (Decimal::new(55_000, 0), Some("1"))
    );
    assert!(d(&o["total_fees"]) > Decimal::ZERO);
    let t = c.next_on("market_trades").await;
    let tr = &t["events"][0]["trades"][0];
    assert_eq!(
        (t["events"][0]["type"].as_str(), tr["product_id"].as_str()),
        (Some("update"), Some("BTC-USD")),
        "{t}"
    );
    assert_eq!(
        (d(&tr["price"]), d(&tr["size"]), tr["side"].as_str()),
        (Decimal::new(55_000, 0), Decimal::new(1, 1), Some("SELL"))
    );
    assert!(tr["trade_id"].is_string() && tr["time"].is_string());
    v.sim
        .trade_through("BTC-USD", Decimal::new(55_000, 0), Decimal::ONE);
    let o = c.next_on("user").await["events"][0]["orders"][0].clone();
    assert_eq!(
        (
            o["status"].as_str(),
            d(&o["cumulative_quantity"]),
            d(&o["leaves_quantity"])
        ),
        (Some("FILLED"), Decimal::new(4, 1), Decimal::ZERO),
        "{o}"
    );
    assert_eq!(d(&o["filled_value"]), Decimal::new(22_000, 0));

    // A cancel.
    let r = v
        .rest(
            "POST",
            "/api/v3/brokerage/orders/batch_cancel",
            Some(json!({"order_ids": [first]})),
        )
        .await;
    assert_eq!(r["results"][0]["success"], true, "{r}");
    let o = c.next_on("user").await["events"][0]["orders"][0].clone();
    assert_eq!(
        (o["order_id"].as_str(), o["status"].as_str()),
        (Some(first.as_str()), Some("CANCELLED")),
        "{o}"
    );

    // The user host serves `user` and `heartbeats`, and refuses market data.
    let mut u = v.connect(&v.sim.ws_user_url).await;
    u.send(&sub("level2", &["BTC-USD"], None)).await;
    assert_eq!(u.next().await["type"], "error");
    u.subscribe("user", &["BTC-USD"], Some(ws_jwt(&v.ed, ED_NAME)))
        .await;
    let s = u.next_on("user").await;
    assert_eq!(
        s["events"][0]["orders"],
        json!([]),
        "the Ed25519 key's account has no orders"
    );
    v.sim.shutdown().await;
}

#[tokio::test]
async fn dropped_websockets_close_abruptly_and_reconnect() {
    let v = Venue::start(|_| {}).await;
    let mut a = v.market().await;
    a.subscribe("heartbeats", &[], None).await;
    let mut b = v.connect(&v.sim.ws_user_url).await;
    b.subscribe("heartbeats", &[], None).await;
    assert_eq!(v.sim.stats().ws_open, 2);
    // Through the admin API, as a simulator in another process is driven.
    let r = v
        .http
        .post(format!("{}/sim/admin/fault", v.sim.rest_url))
        .json(&json!({"kind": "drop_websockets"}))
        .send()
        .await
        .expect("admin request");
    assert!(r.status().is_success(), "{}", r.status());
    assert!(a.closes_within(WAIT).await);
    assert!(b.closes_within(WAIT).await);
    let mut again = v.market().await;
    again.subscribe("heartbeats", &[], None).await;
    assert_eq!(v.sim.stats().ws_connections, 3);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn a_depth_gap_skips_sequence_numbers_on_level2_then_a_resubscribe_resyncs() {
    let v = Venue::start(|_| {}).await;
    v.sim.set_market_paused(true);
    let mut c = v.market().await;
    c.subscribe("level2", &["BTC-USD"], None).await;
    let snap = c.next_on("l2_data").await;
    let mut book = Book::default();
    book.apply(&snap["events"][0]["updates"]);
    let mut seq = snap["sequence_num"].as_u64().expect("seq");
    v.sim.inject(Fault::DepthGap {
        symbol: "BTC-USD".into(),
    });
    v.sim.tick_market();
    let m = c.next_on("l2_data").await;
    let got = m["sequence_num"].as_u64().expect("seq");
    assert!(got > seq + 1, "a gap: {seq} -> {got}");
    seq = got;
    // Later messages are contiguous again.
    v.sim.tick_market();
    let m = c.next_on("l2_data").await;
    assert_eq!(m["sequence_num"].as_u64(), Some(seq + 1));
    // Subscribing again sends a fresh snapshot equal to the venue's book.
    c.subscribe("level2", &["BTC-USD"], None).await;
    let snap = c.next_on("l2_data").await;
    assert_eq!(snap["events"][0]["type"], "snapshot");
    let mut fresh = Book::default();
    fresh.apply(&snap["events"][0]["updates"]);
    assert_eq!(fresh, Book::of(&v.sim, "BTC-USD"));
    v.sim.shutdown().await;
}

#[tokio::test]
async fn silent_streams_send_nothing_then_resume_with_a_gap() {
    let v = Venue::start(|_| {}).await;
    let mut c = v.market().await;
    c.subscribe("heartbeats", &[], None).await;
    let before = c.next_on("heartbeats").await["sequence_num"]
        .as_u64()
        .expect("seq");
    v.sim.inject(Fault::SilentStreams {
        duration: Duration::from_millis(2500),
    });
    let quiet_until = Instant::now() + Duration::from_millis(2000);
    assert_eq!(
        c.next_text(quiet_until).await,
        Err(()),
        "nothing at all while silent"
    );
    let after = c.next_on("heartbeats").await["sequence_num"]
        .as_u64()
        .expect("seq");
    assert!(
        after > before + 1,
        "suppressed heartbeats used their numbers: {before} -> {after}"
    );
    v.sim.shutdown().await;
}

#[tokio::test]
async fn a_silent_channel_stops_alone_without_using_sequence_numbers() {
    let v = Venue::start(|c| c.tick_interval = Duration::from_millis(50)).await;
    let mut c = v.market().await;
    c.subscribe("heartbeats", &[], None).await;
    c.subscribe("ticker", &["BTC-USD"], None).await;
    c.subscribe("level2", &["BTC-USD"], None).await;
    c.next_on("l2_data").await;
    v.sim.inject(Fault::SilentChannel {
        channel: "l2_data".into(),
        duration: Duration::from_millis(2500),
    });
    // Drain what may have been queued before the fault took effect.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let quiet_until = Instant::now() + Duration::from_millis(2000);
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    let mut last_seq: Option<u64> = None;
    while let Ok(Some(text)) = c.next_text(quiet_until).await {
        let m: Value = serde_json::from_str(&text).expect("json");
        let seq = m["sequence_num"].as_u64().expect("seq");
        if let Some(prev) = last_seq {
            assert_eq!(
                seq,
                prev + 1,
                "no number is skipped for the silent channel: {m}"
            );
        }
        last_seq = Some(seq);
        *seen
            .entry(m["channel"].as_str().expect("channel").to_owned())
            .or_default() += 1;
    }
    let l2_during = seen.get("l2_data").copied().unwrap_or(0);
    assert!(
        l2_during <= 1,
        "level2 silent (one frame may have been in flight): {seen:?}"
    );
    assert!(
        seen.get("heartbeats").copied().unwrap_or(0) >= 1,
        "{seen:?}"
    );
    assert!(seen.get("ticker").copied().unwrap_or(0) >= 1, "{seen:?}");
    // Once the silence ends, level2 speaks again.
    c.next_on("l2_data").await;
    v.sim.shutdown().await;
}

#[tokio::test]
async fn malformed_messages_replace_market_data() {
    let v = Venue::start(|_| {}).await;
    v.sim.set_market_paused(true);
    let mut c = v.market().await;
    c.subscribe("ticker", &["BTC-USD"], None).await;
    c.next_on("ticker").await;
    v.sim.inject(Fault::MalformedNext { count: 2 });
    v.sim.tick_market();
    v.sim.tick_market();
    let first = c
        .next_text(Instant::now() + WAIT)
        .await
        .expect("in time")
        .expect("open");
    assert!(
        serde_json::from_str::<Value>(&first).is_err(),
        "invalid JSON: {first}"
    );
    let second: Value = serde_json::from_str(
        &c.next_text(Instant::now() + WAIT)
            .await
            .expect("in time")
            .expect("open"),
    )
    .expect("valid JSON");
    assert!(!second["events"].is_array(), "a wrong shape: {second}");
    // Then well-formed messages again, numbered after the two corrupted ones.
    v.sim.tick_market();
    let ok = c.next_on("ticker").await;
    assert_envelope(&ok);
    assert_eq!(
        ok["sequence_num"].as_u64(),
        second["sequence_num"].as_u64().map(|s| s + 1)
    );
    v.sim.shutdown().await;
}

#[tokio::test]
async fn plain_http_makes_the_websockets_plain_too() {
    let sim = SimCoinbase::start(SimConfig {
        plain_http: true,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts");
    assert!(sim.rest_url.starts_with("http://"), "{}", sim.rest_url);
    for url in [&sim.ws_url, &sim.ws_user_url] {
        assert!(url.starts_with("ws://"), "{url}");
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("plain ws connects");
        let mut c = Client { ws, seen: 0 };
        let ack = c.subscribe("heartbeats", &[], None).await;
        assert_eq!(ack["sequence_num"], 0);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn ticker_batch_omits_the_touch_and_status_lists_the_products() {
    let v = Venue::start(|c| c.ws_ticker_batch_interval = Duration::from_millis(300)).await;
    let mut c = v.market().await;
    c.subscribe("ticker_batch", &["BTC-USD", "ETH-USD"], None)
        .await;
    let snap = c.next_on("ticker_batch").await;
    assert_eq!(snap["events"][0]["type"], "snapshot", "{snap}");
    let started = Instant::now();
    let up = c.next_on("ticker_batch").await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let ev = &up["events"][0];
    assert_eq!(ev["type"], "update", "{up}");
    let tickers = ev["tickers"].as_array().expect("tickers");
    let ids: Vec<&str> = tickers
        .iter()
        .filter_map(|t| t["product_id"].as_str())
        .collect();
    assert_eq!(ids, ["BTC-USD", "ETH-USD"]);
    for t in tickers {
        d(&t["price"]);
        assert!(
            t.get("best_bid").is_none() && t.get("best_ask").is_none(),
            "{t}"
        );
    }
    c.subscribe("status", &["ETH-USD"], None).await;
    let s = c.next_on("status").await;
    let ev = &s["events"][0];
    assert_eq!(ev["type"], "snapshot", "{s}");
    let p = &ev["products"][0];
    assert_eq!(
        (
            p["id"].as_str(),
            p["status"].as_str(),
            p["quote_increment"].as_str()
        ),
        (Some("ETH-USD"), Some("online"), Some("0.01"))
    );
    assert_eq!(ev["products"].as_array().map(Vec::len), Some(1));
    // candles is not simulated: an error, and the connection stays usable.
    c.send(&sub("candles", &["BTC-USD"], None)).await;
    let mut e = c.next().await;
    while e.get("type").is_none() {
        e = c.next().await;
    }
    assert_eq!(e["type"], "error", "{e}");
    v.sim.shutdown().await;
}

/// The next message, which must be on `channel`.
async fn strictly(c: &mut Client, channel: &str) -> Value {
    let m = c.next().await;
    assert_eq!(m["channel"], channel, "expected {channel}, got {m}");
    m
}

#[tokio::test]
async fn a_snapshot_already_holds_the_changes_made_before_it() {
    let v = Venue::start(|_| {}).await;
    v.sim.set_market_paused(true);
    let quiet = || Instant::now() + Duration::from_millis(500);
    let id = v.limit("snap-1", "BUY", "58000.00", "0.25").await;
    // Each connection exists (and hears every change) before it subscribes, and each
    // change runs synchronously right before the subscribe is written, so the
    // connection often still has the change's events queued when it builds the
    // snapshot: the race the snapshot numbering exists for. The snapshot must hold the
    // change, and no update may repeat it. Messages are read strictly in order.
    let mut c = v.market().await;
    v.sim.tick_market();
    v.sim.tick_market();
    c.send(&sub("level2", &["BTC-USD"], None)).await;
    strictly(&mut c, "subscriptions").await;
    let l2 = strictly(&mut c, "l2_data").await;
    let mut book = Book::default();
    book.apply(&l2["events"][0]["updates"]);
    assert_eq!(book, Book::of(&v.sim, "BTC-USD"));
    assert_eq!(c.next_text(quiet()).await, Err(()), "a repeated l2 update");

    let mut c = v.market().await;
    v.sim.tick_market();
    v.sim.tick_market();
    c.send(&sub("ticker", &["BTC-USD"], None)).await;
    strictly(&mut c, "subscriptions").await;
    let t = strictly(&mut c, "ticker").await;
    assert_eq!(t["events"][0]["type"], "snapshot");
    assert_eq!(c.next_text(quiet()).await, Err(()), "a repeated ticker");

    let mut c = v.market().await;
    v.sim
        .trade_through("BTC-USD", Decimal::new(58_000, 0), Decimal::new(1, 1));
    c.send(&sub("user", &["BTC-USD"], Some(ws_jwt(&v.ec, EC_NAME))))
        .await;
    strictly(&mut c, "subscriptions").await;
    let user = strictly(&mut c, "user").await;
    let o = &user["events"][0]["orders"][0];
    assert_eq!(o["order_id"], id.as_str(), "{user}");
    assert_eq!(d(&o["cumulative_quantity"]), Decimal::new(1, 1), "{user}");
    assert_eq!(
        c.next_text(quiet()).await,
        Err(()),
        "a repeated order update"
    );
    v.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_stay_exact_while_the_market_races_them() {
    // A market tick every millisecond on another thread, so changes keep landing while
    // each connection reads its subscribe and builds its snapshot.
    let v = Venue::start(|c| c.tick_interval = Duration::from_millis(1)).await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        let mut c = v.market().await;
        c.subscribe("level2", &["BTC-USD"], None).await;
        let snap = strictly(&mut c, "l2_data").await;
        let mut book = Book::default();
        book.apply(&snap["events"][0]["updates"]);
        clients.push((c, book));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    v.sim.set_market_paused(true);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let venue = Book::of(&v.sim, "BTC-USD");
    for (i, (c, book)) in clients.iter_mut().enumerate() {
        // Everything up to the pause is queued: apply until the connection goes quiet.
        while let Ok(Some(text)) = c
            .next_text(Instant::now() + Duration::from_millis(150))
            .await
        {
            let m: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(m["channel"], "l2_data", "{m}");
            book.apply(&m["events"][0]["updates"]);
        }
        assert!(*book == venue, "client {i}'s book differs from the venue's");
    }
    v.sim.shutdown().await;
}
