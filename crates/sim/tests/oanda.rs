//! The OANDA v20 simulator over real sockets: REST with reqwest, the chunked NDJSON
//! streams read chunk by chunk, so what a test sees is what a client's line reader gets
//! (including a line split across chunks).

use std::time::Duration;

use gekko_sim::oanda::{Fault, PAPER_ACCOUNT_ID, PAPER_TOKEN, SimConfig, SimHandle, SimOanda};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use tokio::time::Instant;

async fn start(cfg: SimConfig) -> SimHandle {
    SimOanda::start(cfg).await.expect("simulator starts")
}

/// A simulator with a quick heartbeat, so stream tests need not wait 5 s.
async fn quick() -> SimHandle {
    start(SimConfig {
        heartbeat_interval: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn acct(sim: &SimHandle, path: &str) -> String {
    format!("{}/v3/accounts/{}{path}", sim.rest_url, sim.account_id)
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = req
        .bearer_auth(PAPER_TOKEN)
        .send()
        .await
        .expect("request sent");
    let status = r.status();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn get(sim: &SimHandle, path: &str) -> (StatusCode, Value) {
    send(client().get(acct(sim, path))).await
}

async fn order(sim: &SimHandle, order: Value) -> (StatusCode, Value) {
    send(
        client()
            .post(acct(sim, "/orders"))
            .json(&json!({ "order": order })),
    )
    .await
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string in {v}"))
}

fn dec_at(v: &Value, path: &[&str]) -> Decimal {
    s(v, path).parse().expect("decimal")
}

fn id(v: &Value, path: &[&str]) -> u64 {
    s(v, path).parse().expect("integer id")
}

/// A chunked line stream read chunk by chunk.
struct Lines {
    resp: reqwest::Response,
    buf: Vec<u8>,
    /// Chunks that did not end a line (the line continued in a later chunk).
    split_lines: usize,
}

impl Lines {
    async fn open(sim: &SimHandle, path: &str) -> Self {
        let url = format!("{}/v3/accounts/{}{path}", sim.stream_url, sim.account_id);
        let resp = reqwest::Client::new()
            .get(url)
            .bearer_auth(PAPER_TOKEN)
            .send()
            .await
            .expect("stream opens");
        assert_eq!(resp.status(), StatusCode::OK);
        Self {
            resp,
            buf: Vec::new(),
            split_lines: 0,
        }
    }

    /// The next line within `within`: `Ok(None)` on timeout, `Err` when the stream
    /// failed (an abrupt drop).
    async fn next(&mut self, within: Duration) -> Result<Option<String>, String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Ok(Some(String::from_utf8_lossy(&line[..pos]).into_owned()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Err(_) => return Ok(None),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(None)) => return Err("stream ended".into()),
                Ok(Ok(Some(c))) => {
                    if !c.ends_with(b"\n") {
                        self.split_lines += 1;
                    }
                    self.buf.extend_from_slice(&c);
                }
            }
        }
    }

    /// The next line that is JSON of `type` (others skipped) within `within`.
    async fn next_of(&mut self, ty: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .next(left)
                .await
                .expect("stream alive")
                .unwrap_or_else(|| panic!("no {ty} line within {within:?}"));
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["type"] == ty
            {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn auth_accounts_and_unknown_accounts() {
    let sim = start(SimConfig::default()).await;
    let r = client()
        .get(format!("{}/v3/accounts", sim.rest_url))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"errorMessage": "Insufficient authorization to perform request."})
    );
    let (st, _) = send(
        client()
            .get(format!("{}/v3/accounts", sim.rest_url))
            .bearer_auth("nope"),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, b) = send(client().get(format!("{}/v3/accounts", sim.rest_url))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        b,
        json!({"accounts": [{"id": PAPER_ACCOUNT_ID, "tags": []}]})
    );
    let (st, b) = send(client().get(format!(
        "{}/v3/accounts/101-001-9999999-001/summary",
        sim.rest_url
    )))
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        s(&b, &["errorMessage"]),
        "The provided request was forbidden."
    );
    let (st, b) = get(&sim, "/summary").await;
    assert_eq!(st, StatusCode::OK);
    let a = &b["account"];
    assert_eq!(s(a, &["currency"]), "USD");
    assert_eq!(dec_at(a, &["balance"]), dec!(100000));
    assert_eq!(dec_at(a, &["NAV"]), dec!(100000));
    assert_eq!(dec_at(a, &["marginUsed"]), Decimal::ZERO);
    assert_eq!(a["hedgingEnabled"], false);
    assert_eq!(s(&b, &["lastTransactionID"]), "2");
    assert!(s(a, &["createdTime"]).ends_with('Z'));
    let (st, b) = get(&sim, "").await;
    assert_eq!(st, StatusCode::OK);
    assert!(b["account"]["orders"].is_array() && b["account"]["positions"].is_array());
    let stats = sim.stats();
    assert_eq!(stats.auth_failures, 2, "{stats:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn instruments_pricing_and_datetime_formats() {
    let sim = start(SimConfig::default()).await;
    let (st, b) = get(&sim, "/instruments").await;
    assert_eq!(st, StatusCode::OK);
    let names: Vec<&str> = b["instruments"]
        .as_array()
        .expect("list")
        .iter()
        .map(|i| i["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["EUR_USD", "USD_JPY", "GBP_USD", "XAU_USD"]);
    let (_, b) = get(&sim, "/instruments?instruments=USD_JPY%2CXAU_USD").await;
    let jpy = &b["instruments"][0];
    assert_eq!(jpy["displayPrecision"], 3);
    assert_eq!(jpy["tradeUnitsPrecision"], 0);
    assert_eq!(s(jpy, &["minimumTradeSize"]), "1");
    assert_eq!(s(jpy, &["maximumOrderUnits"]), "100000000");
    assert!(dec_at(jpy, &["marginRate"]) > Decimal::ZERO);
    assert_eq!(b["instruments"].as_array().map(Vec::len), Some(2));

    let (st, b) = get(&sim, "/pricing?instruments=EUR_USD%2CUSD_JPY").await;
    assert_eq!(st, StatusCode::OK);
    let p = &b["prices"][0];
    assert_eq!(p["type"], "PRICE");
    assert_eq!(p["instrument"], "EUR_USD");
    assert_eq!(p["tradeable"], true);
    assert_eq!(p["bids"].as_array().map(Vec::len), Some(3));
    let b0: Decimal = p["bids"][0]["price"]
        .as_str()
        .expect("bid")
        .parse()
        .expect("dec");
    let a0: Decimal = p["asks"][0]["price"]
        .as_str()
        .expect("ask")
        .parse()
        .expect("dec");
    // A realistic spread: about a pip (the seeded walk adds up to one tick).
    assert!(a0 - b0 >= dec!(0.00012) && a0 - b0 <= dec!(0.00013), "{p}");
    assert_eq!(
        p["bids"][0]["price"]
            .as_str()
            .map(|x| x.split('.').nth(1).map(str::len)),
        Some(Some(5))
    );
    assert!(p["bids"][0]["liquidity"].is_u64());
    assert!(dec_at(p, &["closeoutBid"]) <= b0 && dec_at(p, &["closeoutAsk"]) >= a0);
    let t = s(p, &["time"]);
    assert_eq!(t.len(), "2016-06-22T18:41:29.264030555Z".len(), "{t}");

    let (st, b) = send(
        client()
            .get(acct(&sim, "/pricing?instruments=EUR_USD"))
            .header("Accept-Datetime-Format", "UNIX"),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let t = s(&b["prices"][0], &["time"]);
    let (secs, frac) = t.split_once('.').expect("seconds.fraction");
    assert!(
        secs.parse::<i64>().expect("secs") > 1_600_000_000 && frac.len() == 9,
        "{t}"
    );
    // Home conversions: USD-quoted prices convert 1:1, JPY at 1 / USD_JPY.
    let (_, b) = get(
        &sim,
        "/pricing?instruments=EUR_USD,USD_JPY&includeHomeConversions=true",
    )
    .await;
    assert_eq!(
        b["prices"][0]["quoteHomeConversionFactors"]["positiveUnits"],
        "1.00000000"
    );
    let jpy = dec_at(
        &b["prices"][1],
        &["quoteHomeConversionFactors", "negativeUnits"],
    );
    assert!(jpy > dec!(0.006) && jpy < dec!(0.0075), "{jpy}");
    let conv = b["homeConversions"].as_array().expect("homeConversions");
    assert!(
        conv.iter()
            .any(|c| c["currency"] == "JPY" && c["accountGain"].is_string())
    );
    let (st, _) = get(&sim, "/pricing?instruments=EUR_CHF").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = get(&sim, "/pricing").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = send(
        client()
            .get(acct(&sim, "/summary"))
            .header("Accept-Datetime-Format", "ISO"),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    sim.shutdown().await;
}

#[tokio::test]
async fn pricing_stream_sends_prices_at_most_four_a_second_and_heartbeats() {
    // A market that moves every 20 ms: the stream must still send at most one price per
    // instrument per 250 ms window.
    let sim = start(SimConfig {
        tick_interval: Duration::from_millis(20),
        heartbeat_interval: Duration::from_millis(400),
        ..SimConfig::default()
    })
    .await;
    let mut lines = Lines::open(
        &sim,
        "/pricing/stream?instruments=EUR_USD%2CUSD_JPY&snapshot=True",
    )
    .await;
    let started = Instant::now();
    let mut per_inst: std::collections::HashMap<String, Vec<Instant>> = Default::default();
    let mut heartbeats = 0;
    while started.elapsed() < Duration::from_millis(2100) {
        let Some(line) = lines.next(Duration::from_millis(500)).await.expect("alive") else {
            continue;
        };
        let v: Value = serde_json::from_str(&line).expect("every line is JSON");
        match v["type"].as_str() {
            Some("PRICE") => per_inst
                .entry(v["instrument"].as_str().expect("instrument").to_owned())
                .or_default()
                .push(Instant::now()),
            Some("HEARTBEAT") => {
                assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
                heartbeats += 1;
            }
            other => panic!("unexpected line type {other:?}: {line}"),
        }
    }
    assert!(heartbeats >= 3, "{heartbeats} heartbeats");
    assert_eq!(per_inst.len(), 2, "{per_inst:?}");
    for (inst, times) in &per_inst {
        // Snapshot + at most 4/s over ~2.1 s (one window of slack for timer jitter).
        assert!(
            times.len() >= 4 && times.len() <= 1 + 9 + 1,
            "{inst}: {}",
            times.len()
        );
        let tight = times
            .windows(2)
            .filter(|w| w[1] - w[0] < Duration::from_millis(150))
            .count();
        assert!(tight <= 1, "{inst}: {tight} prices closer than 150 ms");
    }
    drop(lines);
    // The stream is counted while open and released when the client goes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.stats().ws_open != 0 {
        assert!(Instant::now() < deadline, "stream still counted as open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.stats().ws_connections, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn market_and_limit_orders_with_client_extensions() {
    let sim = quick().await;
    sim.set_market_paused(true);
    let mut txs = Lines::open(&sim, "/transactions/stream").await;
    let (st, b) = order(
        &sim,
        json!({"type": "MARKET", "instrument": "EUR_USD", "units": "1000",
               "clientExtensions": {"id": "gekko-1", "tag": "t"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let create = &b["orderCreateTransaction"];
    let fill = &b["orderFillTransaction"];
    assert_eq!(create["type"], "MARKET_ORDER");
    assert_eq!(create["timeInForce"], "FOK");
    assert_eq!(create["clientExtensions"]["id"], "gekko-1");
    assert_eq!(fill["type"], "ORDER_FILL");
    assert_eq!(s(fill, &["orderID"]), s(create, &["id"]));
    assert_eq!(s(fill, &["units"]), "1000");
    assert_eq!(s(fill, &["tradeOpened", "units"]), "1000");
    let (_, ask) = sim.touch("EUR_USD").expect("touch");
    assert!(dec_at(fill, &["price"]) >= ask - dec!(0.001));
    assert_eq!(id(fill, &["id"]), id(create, &["id"]) + 1);
    assert_eq!(id(&b, &["lastTransactionID"]), id(fill, &["id"]));
    assert_eq!(
        b["relatedTransactionIDs"],
        json!([s(create, &["id"]), s(fill, &["id"])])
    );
    // The transaction stream shows both, in order.
    let t1 = txs.next_of("MARKET_ORDER", Duration::from_secs(3)).await;
    let t2 = txs.next_of("ORDER_FILL", Duration::from_secs(3)).await;
    assert_eq!(
        (t1["id"].clone(), t2["id"].clone()),
        (create["id"].clone(), fill["id"].clone())
    );

    let (st, b) = get(&sim, "/orders/@gekko-1").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(b["order"]["id"], create["id"]);
    assert_eq!(b["order"]["state"], "FILLED");
    let (st, b) = get(&sim, "/orders/@nobody").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{b}");

    // A LIMIT sell far above the market rests, then a trade through fills it.
    let (bid, _) = sim.touch("EUR_USD").expect("touch");
    let limit_px = (bid + dec!(0.01)).round_dp(5);
    let (st, b) = order(
        &sim,
        json!({"type": "LIMIT", "instrument": "EUR_USD", "units": "-400",
               "price": limit_px.to_string(), "clientExtensions": {"id": "gekko-2"}}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert!(b.get("orderFillTransaction").is_none());
    let lid = s(&b["orderCreateTransaction"], &["id"]).to_owned();
    assert_eq!(b["orderCreateTransaction"]["type"], "LIMIT_ORDER");
    assert_eq!(b["orderCreateTransaction"]["timeInForce"], "GTC");
    let (_, b) = get(&sim, "/pendingOrders").await;
    assert_eq!(b["orders"][0]["id"], lid.as_str());
    assert_eq!(b["orders"][0]["state"], "PENDING");
    assert_eq!(sim.trade_through("EUR_USD", limit_px, dec!(400)), dec!(400));
    let (_, b) = get(&sim, "/orders/@gekko-2").await;
    assert_eq!(b["order"]["state"], "FILLED", "{b}");
    let f = txs.next_of("ORDER_FILL", Duration::from_secs(3)).await;
    assert_eq!(s(&f, &["orderID"]), lid);
    assert_eq!(dec_at(&f, &["price"]), limit_px);
    assert_eq!(s(&f, &["tradeReduced", "units"]), "-400");
    assert_eq!(sim.position_units("EUR_USD"), (dec!(600), Decimal::ZERO));

    // Cancel: by id, then again (404), and a filled order cannot be cancelled.
    let (_, b) = order(
        &sim,
        json!({"type": "LIMIT", "instrument": "EUR_USD", "units": "10", "price": "1.00000",
               "timeInForce": "GTD", "gtdTime": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let cid = s(&b["orderCreateTransaction"], &["id"]).to_owned();
    let (st, b) = send(client().put(acct(&sim, &format!("/orders/{cid}/cancel")))).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["orderCancelTransaction"]["reason"], "CLIENT_REQUEST");
    assert_eq!(b["orderCancelTransaction"]["orderID"], cid.as_str());
    let (st, b) = send(client().put(acct(&sim, &format!("/orders/{cid}/cancel")))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(b["errorCode"], "ORDER_DOESNT_EXIST");
    let (st, _) = send(client().put(acct(&sim, "/orders/@gekko-1/cancel"))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, b) = get(&sim, "/orders?state=ALL").await;
    assert_eq!(b["orders"].as_array().map(Vec::len), Some(3));
    let (_, b) = get(&sim, "/trades").await;
    assert_eq!(b["trades"].as_array().map(Vec::len), Some(1));
    assert_eq!(s(&b["trades"][0], &["currentUnits"]), "600");
    sim.shutdown().await;
}

#[tokio::test]
async fn positions_net_long_and_short_and_close() {
    let sim = quick().await;
    sim.set_market_paused(true);
    let (st, b) = order(
        &sim,
        json!({"type": "MARKET", "instrument": "USD_JPY", "units": "100"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let first_trade = s(&b["orderFillTransaction"], &["tradeOpened", "tradeID"]).to_owned();
    // Hedging off: a bigger sell closes the long first and opens a short with the rest.
    let (st, b) = order(
        &sim,
        json!({"type": "MARKET", "instrument": "USD_JPY", "units": "-250", "timeInForce": "IOC"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let f = &b["orderFillTransaction"];
    assert_eq!(f["tradesClosed"][0]["tradeID"], first_trade.as_str());
    assert_eq!(f["tradesClosed"][0]["units"], "-100");
    assert_eq!(f["tradeOpened"]["units"], "-150");
    // P/L of a JPY-quoted trade is converted into USD.
    let pl = dec_at(f, &["pl"]);
    assert!(pl.abs() < dec!(1), "{pl}");
    assert_eq!(sim.position_units("USD_JPY"), (Decimal::ZERO, dec!(-150)));
    let (_, b) = get(&sim, "/positions/USD_JPY").await;
    let p = &b["position"];
    assert_eq!(p["short"]["units"], "-150");
    assert_eq!(p["long"]["units"], "0");
    assert!(p["short"]["averagePrice"].is_string());
    assert_eq!(p["short"]["tradeIDs"].as_array().map(Vec::len), Some(1));
    let (_, b) = get(&sim, "/openPositions").await;
    assert_eq!(b["positions"].as_array().map(Vec::len), Some(1));
    let (nav, used, avail, pct) = sim.margin();
    assert!(
        used > Decimal::ZERO && avail == nav - used && pct < dec!(0.01),
        "{nav} {used} {avail} {pct}"
    );

    // Closing the wrong side is refused; closing the short flattens.
    let (st, b) = send(
        client()
            .put(acct(&sim, "/positions/USD_JPY/close"))
            .json(&json!({"longUnits": "ALL"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(
        b["longOrderRejectTransaction"]["rejectReason"],
        "CLOSEOUT_POSITION_DOESNT_EXIST"
    );
    let (st, b) = send(
        client()
            .put(acct(&sim, "/positions/USD_JPY/close"))
            .json(&json!({"shortUnits": "ALL"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(
        b["shortOrderCreateTransaction"]["shortPositionCloseout"]["units"],
        "ALL"
    );
    assert_eq!(b["shortOrderFillTransaction"]["units"], "150");
    assert_eq!(
        b["shortOrderFillTransaction"]["reason"],
        "MARKET_ORDER_POSITION_CLOSEOUT"
    );
    assert_eq!(
        sim.position_units("USD_JPY"),
        (Decimal::ZERO, Decimal::ZERO)
    );
    let (_, b) = get(&sim, "/openTrades").await;
    assert_eq!(b["trades"], json!([]));
    let (_, b) = get(&sim, "/summary").await;
    assert_eq!(dec_at(&b["account"], &["marginUsed"]), Decimal::ZERO);
    let balance = dec_at(&b["account"], &["balance"]);
    let pl = dec_at(&b["account"], &["pl"]);
    assert_eq!(balance, dec!(100000) + pl);
    sim.shutdown().await;
}

#[tokio::test]
async fn changes_since_a_transaction_replay_what_happened() {
    let sim = quick().await;
    sim.set_market_paused(true);
    let (_, b) = get(&sim, "/summary").await;
    let since = id(&b, &["lastTransactionID"]);
    order(
        &sim,
        json!({"type": "MARKET", "instrument": "EUR_USD", "units": "10"}),
    )
    .await;
    let (_, lim) = order(&sim, json!({"type": "LIMIT", "instrument": "EUR_USD", "units": "10", "price": "1.00000", "timeInForce": "GFD"})).await;
    let lid = s(&lim["orderCreateTransaction"], &["id"]).to_owned();
    send(client().put(acct(&sim, &format!("/orders/{lid}/cancel")))).await;
    let (st, b) = get(&sim, &format!("/changes?sinceTransactionID={since}")).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    let ids: Vec<u64> = b["changes"]["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .map(|t| id(t, &["id"]))
        .collect();
    assert_eq!(ids, (since + 1..=since + 4).collect::<Vec<_>>());
    assert_eq!(id(&b, &["lastTransactionID"]), since + 4);
    assert_eq!(
        b["changes"]["ordersFilled"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(b["changes"]["ordersCancelled"][0]["id"], lid.as_str());
    assert_eq!(
        b["changes"]["tradesOpened"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(b["changes"]["positions"][0]["instrument"], "EUR_USD");
    assert!(b["state"]["NAV"].is_string());
    let (_, b) = get(&sim, &format!("/changes?sinceTransactionID={}", since + 4)).await;
    assert_eq!(b["changes"]["transactions"], json!([]));
    let (st, _) = get(&sim, "/changes?sinceTransactionID=999999").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (_, b) = get(&sim, &format!("/transactions/sinceid?id={since}")).await;
    assert_eq!(b["transactions"].as_array().map(Vec::len), Some(4));
    let (_, b) = get(&sim, &format!("/transactions/{}", since + 1)).await;
    assert_eq!(b["transaction"]["type"], "MARKET_ORDER");
    sim.shutdown().await;
}

#[tokio::test]
async fn order_rejects_name_the_reason() {
    let sim = quick().await;
    let cases = [
        (
            json!({"type": "MARKET", "instrument": "EUR_USD", "units": "1.5"}),
            "UNITS_PRECISION_EXCEEDED",
        ),
        (
            json!({"type": "MARKET", "instrument": "EUR_USD", "units": "0"}),
            "UNITS_INVALID",
        ),
        (
            json!({"type": "MARKET", "instrument": "EUR_USD"}),
            "UNITS_MISSING",
        ),
        (
            json!({"type": "MARKET", "instrument": "EUR_USD", "units": "200000000"}),
            "UNITS_LIMIT_EXCEEDED",
        ),
        (
            json!({"type": "MARKET", "instrument": "EUR_USD", "units": "10", "timeInForce": "GTC"}),
            "TIME_IN_FORCE_INVALID",
        ),
        (
            json!({"type": "MARKET", "instrument": "EUR_CHF", "units": "10"}),
            "INSTRUMENT_UNKNOWN",
        ),
        (
            json!({"type": "LIMIT", "instrument": "EUR_USD", "units": "10", "price": "1.000001"}),
            "PRICE_PRECISION_EXCEEDED",
        ),
        (
            json!({"type": "LIMIT", "instrument": "EUR_USD", "units": "10"}),
            "PRICE_MISSING",
        ),
        (
            json!({"type": "LIMIT", "instrument": "EUR_USD", "units": "10", "price": "1.0", "timeInForce": "GTD"}),
            "TIME_IN_FORCE_GTD_TIMESTAMP_MISSING",
        ),
        (
            json!({"type": "MARKET", "instrument": "XAU_USD", "units": "5000"}),
            "INSUFFICIENT_MARGIN",
        ),
    ];
    let mut last = 0;
    for (body, reason) in cases {
        let (st, b) = order(&sim, body.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {b}");
        let r = &b["orderRejectTransaction"];
        assert_eq!(r["rejectReason"], reason, "{body}: {b}");
        assert_eq!(b["errorCode"], reason);
        assert!(b["errorMessage"].is_string());
        assert!(
            r["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("_ORDER_REJECT"))
        );
        let tid = id(r, &["id"]);
        assert!(tid > last, "transaction ids increase");
        assert_eq!(id(&b, &["lastTransactionID"]), tid);
        last = tid;
    }
    // The fault refuses an order the account could afford.
    sim.inject(Fault::MarginRejectNext { count: 1 });
    let (st, b) = order(
        &sim,
        json!({"type": "MARKET", "instrument": "EUR_USD", "units": "1"}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        b["orderRejectTransaction"]["rejectReason"],
        "INSUFFICIENT_MARGIN"
    );
    let (st, _) = order(
        &sim,
        json!({"type": "MARKET", "instrument": "EUR_USD", "units": "1"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    // A client id already on a pending order is refused.
    let lim = json!({"type": "LIMIT", "instrument": "EUR_USD", "units": "1", "price": "1.00000", "clientExtensions": {"id": "dup"}});
    assert_eq!(order(&sim, lim.clone()).await.0, StatusCode::CREATED);
    let (st, b) = order(&sim, lim).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        b["orderRejectTransaction"]["rejectReason"],
        "CLIENT_ORDER_ID_ALREADY_EXISTS"
    );
    assert_eq!(sim.stats().orders_rejected, 12);
    sim.shutdown().await;
}

#[tokio::test]
async fn rest_faults_rate_limit_storm_5xx_and_a_late_answer() {
    let sim = start(SimConfig {
        rest_rate_per_s: 5,
        ..SimConfig::default()
    })
    .await;
    // The limit: within one second, the 6th request is refused.
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(get(&sim, "/summary").await.0);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while get(&sim, "/summary").await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "the limit never lifts");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sim.inject(Fault::RateLimitStorm {
        duration: Duration::from_millis(400),
    });
    let (st, b) = get(&sim, "/summary").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert!(b["errorMessage"].is_string());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(&sim, "/summary").await.0, StatusCode::OK);

    sim.inject(Fault::ServerErrors { count: 2 });
    assert_eq!(
        get(&sim, "/summary").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&sim, "/summary").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(&sim, "/summary").await.0, StatusCode::OK);

    // Submit timeout: the order executes, its answer is held back past the client's
    // timeout; the order is then found by its client id.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sim.inject(Fault::OrderTimeout);
    let r = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client")
        .post(acct(&sim, "/orders"))
        .bearer_auth(PAPER_TOKEN)
        .json(&json!({"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "5", "clientExtensions": {"id": "late-1"}}}))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    let (st, b) = get(&sim, "/orders/@late-1").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(b["order"]["state"], "FILLED");
    let stats = sim.stats();
    assert!(
        stats.http_429 >= 2 && stats.http_503 == 2 && stats.order_responses_delayed == 1,
        "{stats:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn stream_faults_silence_drop_malformed_and_split_lines() {
    let sim = quick().await;
    let mut tx = Lines::open(&sim, "/transactions/stream").await;
    let hb = tx.next_of("HEARTBEAT", Duration::from_secs(2)).await;
    assert_eq!(hb["lastTransactionID"], "2");

    // Split: the next line comes in two chunks and still parses.
    sim.inject(Fault::SplitChunks { count: 1 });
    let hb = tx.next_of("HEARTBEAT", Duration::from_secs(2)).await;
    assert_eq!(hb["lastTransactionID"], "2");
    assert_eq!(tx.split_lines, 1);
    assert_eq!(sim.stats().lines_split, 1);

    // Malformed: a line that is not JSON, then the stream goes on.
    sim.inject(Fault::MalformedNext { count: 1 });
    let line = tx
        .next(Duration::from_secs(2))
        .await
        .expect("alive")
        .expect("a line");
    assert!(serde_json::from_str::<Value>(&line).is_err(), "{line}");
    tx.next_of("HEARTBEAT", Duration::from_secs(2)).await;

    // Silent: nothing at all, heartbeats included, for the duration.
    sim.inject(Fault::SilentStreams {
        duration: Duration::from_millis(1200),
    });
    let quiet = tx.next(Duration::from_millis(900)).await.expect("alive");
    assert_eq!(quiet, None, "a line during the silence");
    tx.next_of("HEARTBEAT", Duration::from_secs(3)).await;

    // A transaction arrives as it is recorded.
    order(
        &sim,
        json!({"type": "MARKET", "instrument": "GBP_USD", "units": "7"}),
    )
    .await;
    let f = tx.next_of("ORDER_FILL", Duration::from_secs(2)).await;
    assert_eq!(f["units"], "7");
    let hb = tx.next_of("HEARTBEAT", Duration::from_secs(2)).await;
    assert_eq!(hb["lastTransactionID"], f["id"]);

    // Drop: every stream ends abruptly (no terminating chunk).
    let mut prices = Lines::open(&sim, "/pricing/stream?instruments=XAU_USD").await;
    prices.next_of("PRICE", Duration::from_secs(2)).await;
    sim.inject(Fault::DropWebSockets);
    for l in [&mut tx, &mut prices] {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match l.next(Duration::from_millis(200)).await {
                Err(_) => break,
                Ok(_) => assert!(Instant::now() < deadline, "stream not dropped"),
            }
        }
    }
    assert_eq!(sim.stats().streams_dropped, 2);
    // A new stream works, and auth and accounts are checked on the stream host too.
    let mut again = Lines::open(&sim, "/pricing/stream?instruments=XAU_USD&snapshot=False").await;
    again.next_of("HEARTBEAT", Duration::from_secs(2)).await;
    let r = reqwest::Client::new()
        .get(format!(
            "{}/v3/accounts/{}/pricing/stream?instruments=XAU_USD",
            sim.stream_url, sim.account_id
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = reqwest::Client::new()
        .get(format!(
            "{}/v3/accounts/101-001-0000000-002/transactions/stream",
            sim.stream_url
        ))
        .bearer_auth(PAPER_TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_api_injects_stream_faults_over_http() {
    let sim = quick().await;
    let r = reqwest::Client::new()
        .post(format!("{}/sim/admin/fault", sim.rest_url))
        .json(&json!({"kind": "split_chunks", "count": 2}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::OK);
    let mut tx = Lines::open(&sim, "/transactions/stream").await;
    tx.next_of("HEARTBEAT", Duration::from_secs(2)).await;
    tx.next_of("HEARTBEAT", Duration::from_secs(2)).await;
    assert_eq!(tx.split_lines, 2);
    let r = reqwest::Client::new()
        .get(format!("{}/sim/admin/stats", sim.rest_url))
        .send()
        .await
        .expect("sent");
    let stats: Value = r.json().await.expect("json");
    assert_eq!(stats["lines_split"], 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_margin_closeout_closes_every_position() {
    // 10 000:1 leverage and 10 USD: a position the margin allows, whose spread cost
    // alone takes the NAV below half the margin used, is closed on the next tick.
    let mut cfg = SimConfig {
        initial_balance: dec!(10),
        ..SimConfig::default()
    };
    cfg.instruments[0].margin_rate = dec!(0.0001);
    let sim = start(cfg).await;
    sim.set_market_paused(true);
    let mut txs = Lines::open(&sim, "/transactions/stream").await;
    let (st, b) = order(
        &sim,
        json!({"type": "MARKET", "instrument": "EUR_USD", "units": "90000"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert!(b["orderFillTransaction"].is_object(), "{b}");
    let (nav, used, _, pct) = sim.margin();
    assert!(
        pct >= Decimal::ONE,
        "NAV {nav}, margin used {used}, closeout {pct}"
    );
    sim.tick_market();
    let create = txs.next_of("MARKET_ORDER", Duration::from_secs(2)).await;
    assert_eq!(create["reason"], "CLIENT_ORDER");
    let create = txs.next_of("MARKET_ORDER", Duration::from_secs(2)).await;
    assert_eq!(create["reason"], "MARGIN_CLOSEOUT", "{create}");
    let fill = txs.next_of("ORDER_FILL", Duration::from_secs(2)).await;
    let fill = if fill["reason"] == "MARKET_ORDER" {
        txs.next_of("ORDER_FILL", Duration::from_secs(2)).await
    } else {
        fill
    };
    assert_eq!(fill["reason"], "MARKET_ORDER_MARGIN_CLOSEOUT", "{fill}");
    assert_eq!(fill["units"], "-90000");
    assert_eq!(
        sim.position_units("EUR_USD"),
        (Decimal::ZERO, Decimal::ZERO)
    );
    let (_, used, _, _) = sim.margin();
    assert_eq!(used, Decimal::ZERO);
    sim.shutdown().await;
}

#[tokio::test]
async fn tls_serves_both_hosts_with_one_certificate() {
    let sim = start(SimConfig {
        tls: Some(gekko_sim::oanda::TlsSource::SelfSigned { cert_out: None }),
        heartbeat_interval: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    assert!(sim.rest_url.starts_with("https://") && sim.stream_url.starts_with("https://"));
    let pem = sim.cert_pem.clone().expect("certificate");
    let cert = reqwest::Certificate::from_pem(pem.as_bytes()).expect("pem");
    let c = reqwest::Client::builder()
        .add_root_certificate(cert)
        .build()
        .expect("client");
    let r = c
        .get(format!("{}/v3/accounts", sim.rest_url))
        .bearer_auth(PAPER_TOKEN)
        .send()
        .await
        .expect("https request");
    assert_eq!(r.status(), StatusCode::OK);
    let mut r = c
        .get(format!(
            "{}/v3/accounts/{}/transactions/stream",
            sim.stream_url, sim.account_id
        ))
        .bearer_auth(PAPER_TOKEN)
        .send()
        .await
        .expect("https stream");
    assert_eq!(r.status(), StatusCode::OK);
    let chunk = tokio::time::timeout(Duration::from_secs(2), r.chunk())
        .await
        .expect("a heartbeat in time")
        .expect("chunk")
        .expect("not ended");
    let hb: Value = serde_json::from_slice(&chunk).expect("json line");
    assert_eq!(hb["type"], "HEARTBEAT");
    // A client that does not trust the certificate is refused.
    assert!(
        reqwest::Client::new()
            .get(format!("{}/v3/accounts", sim.rest_url))
            .send()
            .await
            .is_err()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn candles_from_the_price_history() {
    let sim = start(SimConfig {
        tick_interval: Duration::from_millis(10),
        ..SimConfig::default()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let url = format!(
        "{}/v3/instruments/EUR_USD/candles?granularity=S5&price=MBA&count=3",
        sim.rest_url
    );
    let b = loop {
        let (st, b) = send(client().get(&url)).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        if b["candles"].as_array().is_some_and(|c| {
            c.iter()
                .map(|c| c["volume"].as_u64().unwrap_or(0))
                .sum::<u64>()
                >= 20
        }) {
            break b;
        }
        assert!(Instant::now() < deadline, "no candle volume: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(b["instrument"], "EUR_USD");
    assert_eq!(b["granularity"], "S5");
    let candles = b["candles"].as_array().expect("candles");
    assert!(!candles.is_empty() && candles.len() <= 3);
    let last = candles.last().expect("one");
    assert_eq!(last["complete"], false);
    for c in candles {
        for k in ["mid", "bid", "ask"] {
            let o = &c[k];
            let (h, l) = (dec_at(o, &["h"]), dec_at(o, &["l"]));
            for x in ["o", "c"] {
                let v = dec_at(o, &[x]);
                assert!(l <= v && v <= h, "{c}");
            }
        }
        assert!(dec_at(c, &["bid", "c"]) < dec_at(c, &["ask", "c"]));
        assert!(s(c, &["time"]).ends_with(".000000000Z"), "{c}");
    }
    // The account-scoped twin, the default price (mid only), and bad parameters.
    let (st, b) = get(&sim, "/instruments/EUR_USD/candles?granularity=M1").await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert!(b["candles"][0]["mid"].is_object() && b["candles"][0].get("bid").is_none());
    let (st, _) = get(&sim, "/instruments/EUR_USD/candles?granularity=S7").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = get(&sim, "/instruments/EUR_CHF/candles").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let r = client().get(&url).send().await.expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    sim.shutdown().await;
}

#[tokio::test]
async fn gtd_expiry_reduce_only_stream_limit_and_headers() {
    let sim = start(SimConfig {
        max_streams: 1,
        heartbeat_interval: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    sim.set_market_paused(true);
    // 201 carries Location and RequestID.
    let gtd = "2000-01-01T00:00:00.000000000Z";
    let r = client()
        .post(acct(&sim, "/orders"))
        .bearer_auth(PAPER_TOKEN)
        .json(&json!({"order": {"type": "LIMIT", "instrument": "EUR_USD", "units": "5", "price": "1.00000", "timeInForce": "GTD", "gtdTime": gtd}}))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a GTD time in the past"
    );
    let soon = gekko_sim::oanda::time::rfc3339(
        i128::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_nanos(),
        )
        .expect("ns")
            + 200_000_000,
    );
    let r = client()
        .post(acct(&sim, "/orders"))
        .bearer_auth(PAPER_TOKEN)
        .json(&json!({"order": {"type": "LIMIT", "instrument": "EUR_USD", "units": "5", "price": "1.00000", "timeInForce": "GTD", "gtdTime": soon}}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers().get("RequestID").is_some());
    let loc = r
        .headers()
        .get("Location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let b: Value = r.json().await.expect("json");
    let oid = s(&b["orderCreateTransaction"], &["id"]).to_owned();
    assert_eq!(
        loc,
        Some(format!(
            "{}/v3/accounts/{}/orders/{oid}",
            sim.rest_url, sim.account_id
        ))
    );
    // It expires on the first tick after its GTD time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.tick_market();
    let (_, b) = get(&sim, &format!("/orders/{oid}")).await;
    assert_eq!(b["order"]["state"], "CANCELLED", "{b}");
    let (_, b) = get(
        &sim,
        &format!(
            "/transactions/{}",
            s(&b["order"], &["cancellingTransactionID"])
        ),
    )
    .await;
    assert_eq!(b["transaction"]["reason"], "TIME_IN_FORCE_EXPIRED");

    // REDUCE_ONLY with nothing to reduce is refused.
    let (st, b) = order(&sim, json!({"type": "MARKET", "instrument": "EUR_USD", "units": "5", "positionFill": "REDUCE_ONLY"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(
        b["orderRejectTransaction"]["rejectReason"],
        "REDUCE_ONLY_ORDER_WOULD_INCREASE_POSITION"
    );

    // One stream allowed: the second is refused, and the slot frees when the first goes.
    let first = Lines::open(&sim, "/transactions/stream").await;
    let url = format!(
        "{}/v3/accounts/{}/transactions/stream",
        sim.stream_url, sim.account_id
    );
    let r = client()
        .get(&url)
        .bearer_auth(PAPER_TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = client()
            .get(&url)
            .bearer_auth(PAPER_TOKEN)
            .send()
            .await
            .expect("sent");
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stream slot was never released"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_are_refused_without_harm() {
    let sim = quick().await;
    let bodies = [
        "",
        "{",
        "null",
        "[]",
        r#"{"order": 5}"#,
        r#"{"order": {}}"#,
        r#"{"order": {"type": "STOP", "instrument": "EUR_USD", "units": "1"}}"#,
        r#"{"order": {"type": "MARKET", "instrument": 7, "units": "1"}}"#,
        r#"{"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "1e99999"}}"#,
        r#"{"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "99999999999999999999999999999999"}}"#,
        r#"{"order": {"type": "LIMIT", "instrument": "EUR_USD", "units": "1", "price": "99999999999999999999999999"}}"#,
        r#"{"order": {"type": "LIMIT", "instrument": "EUR_USD", "units": "1", "price": "-1"}}"#,
        r#"{"order": {"type": "LIMIT", "instrument": "EUR_USD", "units": "1", "price": "1.1", "timeInForce": "GTD", "gtdTime": "99999999999999-01-01T00:00:00Z"}}"#,
        r#"{"order": {"type": "LIMIT", "instrument": "EUR_USD", "units": "1", "price": "1.1", "timeInForce": "GTD", "gtdTime": "2030-01-01T00:00:00+999999999999:00"}}"#,
        r#"{"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "1", "clientExtensions": "x"}}"#,
        r#"{"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "1", "positionFill": "SOMETIMES"}}"#,
    ];
    for body in bodies {
        let (st, b) = send(
            client()
                .post(acct(&sim, "/orders"))
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert!(b["errorMessage"].is_string(), "{body}: {b}");
    }
    for path in [
        "/changes?sinceTransactionID=abc",
        "/orders/abc",
        "/orders/99999999999999999999999",
        "/trades/@",
        "/transactions/0",
        "/positions/NOPE",
        "/candles",
        "/instruments/EUR_USD/candles?from=nonsense",
        "/instruments/EUR_USD/candles?count=0",
    ] {
        let (st, b) = get(&sim, path).await;
        assert!(st.is_client_error(), "{path}: {st} {b}");
    }
    let (st, _) = send(
        client()
            .put(acct(&sim, "/positions/EUR_USD/close"))
            .body("{"),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = send(
        client()
            .put(acct(&sim, "/positions/EUR_USD/close"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = send(client().delete(format!("{}/v3/accounts", sim.rest_url))).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get(&sim, "/summary").await.0, StatusCode::OK);
    sim.shutdown().await;
}
