//! The Coinbase Advanced Trade simulator over real TLS sockets.
//!
//! Every request goes through reqwest over TLS, trusting only the certificate the
//! simulator generated. JWTs are built here by hand from the venue reference (1.2),
//! independently of any gekko code: ES256 with the official SDK's EC test key and EdDSA
//! with its Ed25519 test key, each registered with the simulator by its public key only.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gekko_sim::coinbase::{Fault, SimApiKey, SimCoinbase, SimConfig, SimHandle};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};

#[path = "support/coinbase.rs"]
mod support;

use support::{EC_NAME, ED_NAME, Jwt, Key, now_s};

struct Venue {
    sim: SimHandle,
    http: reqwest::Client,
    host: String,
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
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).expect("cert")])
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        assert!(sim.rest_url.starts_with("https://"), "{}", sim.rest_url);
        let host = sim.rest_url.trim_start_matches("https://").to_owned();
        Self {
            sim,
            http,
            host,
            ec,
            ed,
        }
    }

    fn jwt<'a>(&'a self, key: &'a Key, method: &str, path: &str) -> Jwt<'a> {
        let kid = if std::ptr::eq(key, &self.ec) {
            EC_NAME
        } else {
            ED_NAME
        };
        let nbf = now_s();
        Jwt {
            key,
            kid,
            iss: "cdp",
            nbf,
            exp: nbf + 120,
            uri: Some(format!("{method} {}{path}", self.host)),
        }
    }

    /// Sends with an explicit token (`None`: no Authorization header).
    async fn send(
        &self,
        method: &str,
        path_q: &str,
        token: Option<String>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let url = format!("{}{path_q}", self.sim.rest_url);
        let mut rb = match method {
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        };
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request");
        let status = r.status();
        let headers = r.headers().clone();
        (status, headers, r.text().await.expect("body"))
    }

    /// An authenticated request with a valid token of `key`; the JSON answer.
    async fn call(
        &self,
        key: &Key,
        method: &str,
        path_q: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let path = path_q.split('?').next().unwrap_or(path_q);
        let token = self.jwt(key, method, path).token();
        let (s, _, text) = self.send(method, path_q, Some(token), body).await;
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (s, v)
    }
}

fn d(v: &Value) -> Decimal {
    v.as_str()
        .expect("decimal string")
        .parse()
        .expect("decimal")
}

#[tokio::test]
async fn valid_es256_and_eddsa_requests_succeed() {
    let v = Venue::start(|_| {}).await;
    for key in [&v.ec, &v.ed] {
        let (s, body) = v.call(key, "GET", "/api/v3/brokerage/accounts", None).await;
        assert_eq!(s, StatusCode::OK, "{} {body}", key.alg());
        let usd = body["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .find(|a| a["currency"] == "USD")
            .expect("USD account");
        assert_eq!(
            d(&usd["available_balance"]["value"]),
            Decimal::from(100_000)
        );
        assert_eq!(d(&usd["hold"]["value"]), Decimal::ZERO);
    }
    let (s, _, text) = v.send("GET", "/api/v3/brokerage/time", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let t: Value = serde_json::from_str(&text).expect("json");
    let secs: i64 = t["epochSeconds"]
        .as_str()
        .expect("string")
        .parse()
        .expect("int");
    assert!((secs - now_s()).abs() < 5);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn every_broken_jwt_is_401_unauthorized() {
    let v = Venue::start(|_| {}).await;
    let path = "/api/v3/brokerage/accounts";
    let unknown = Key::ec();
    let mut cases: Vec<(&str, Option<String>)> = Vec::new();
    let mut j = v.jwt(&v.ec, "GET", path);
    j.nbf -= 300;
    j.exp = j.nbf + 120;
    cases.push(("expired", Some(j.token())));
    let mut j = v.jwt(&v.ec, "GET", path);
    j.uri = Some(format!("GET {}/api/v3/brokerage/products", v.host));
    cases.push(("other path", Some(j.token())));
    let mut j = v.jwt(&v.ed, "GET", path);
    j.uri = Some(format!("GET api.coinbase.com{path}"));
    cases.push(("other host", Some(j.token())));
    let mut j = v.jwt(&v.ec, "GET", path);
    j.uri = Some(format!("GET {}{path}?limit=1", v.host));
    cases.push(("query in uri", Some(j.token())));
    let mut j = v.jwt(&v.ec, "GET", path);
    j.uri = Some(format!("POST {}{path}", v.host));
    cases.push(("other method", Some(j.token())));
    let mut j = v.jwt(&v.ec, "GET", path);
    j.iss = "coinbase-cloud";
    cases.push(("wrong iss", Some(j.token())));
    let mut j = v.jwt(&v.ec, "GET", path);
    j.exp = j.nbf + 300;
    cases.push(("lifetime over 120 s", Some(j.token())));
    let mut j = v.jwt(&v.ed, "GET", path);
    j.nbf += 60;
    j.exp = j.nbf + 120;
    cases.push(("not yet valid", Some(j.token())));
    // A bad signature: the right header and claims, another key's signature.
    let good = v.jwt(&v.ec, "GET", path).token();
    let (input, _) = good.rsplit_once('.').expect("three parts");
    let forged = URL_SAFE_NO_PAD.encode(v.ed.sign(input.as_bytes()));
    cases.push(("bad signature", Some(format!("{input}.{forged}"))));
    let mut j = v.jwt(&unknown, "GET", path);
    j.kid = "organizations/x/apiKeys/unknown";
    cases.push(("unknown kid", Some(j.token())));
    // The EC key name, signed EdDSA: alg does not match the registered key.
    let mut j = v.jwt(&v.ed, "GET", path);
    j.kid = EC_NAME;
    cases.push(("alg mismatch", Some(j.token())));
    cases.push(("missing header", None));
    cases.push(("garbage", Some("not-a-jwt".into())));
    for (what, token) in cases {
        let (s, _, body) = v.send("GET", path, token, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(body, "Unauthorized", "{what}");
    }
    // A replayed token (same nonce) is refused too.
    let token = v.jwt(&v.ec, "GET", path).token();
    let (s, _, _) = v.send("GET", path, Some(token.clone()), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, body) = v.send("GET", path, Some(token), None).await;
    assert_eq!(
        (s, body.as_str()),
        (StatusCode::UNAUTHORIZED, "Unauthorized")
    );
    // Clock skew past the token lifetime makes a fresh client token expired.
    v.sim.set_clock_skew(200_000);
    let (s, _) = v.call(&v.ec, "GET", path, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    v.sim.set_clock_skew(0);
    let (s, _) = v.call(&v.ec, "GET", path, None).await;
    assert_eq!(s, StatusCode::OK);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn accounts_paginate_with_cursors() {
    let v = Venue::start(|_| {}).await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let q = if cursor.is_empty() {
            "/api/v3/brokerage/accounts?limit=2".to_owned()
        } else {
            format!("/api/v3/brokerage/accounts?limit=2&cursor={cursor}")
        };
        let (s, body) = v.call(&v.ed, "GET", &q, None).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let accounts = body["accounts"].as_array().expect("accounts");
        assert!(accounts.len() <= 2);
        assert_eq!(body["size"], accounts.len());
        for a in accounts {
            seen.push(a["currency"].as_str().expect("currency").to_owned());
        }
        pages += 1;
        if body["has_next"] == false {
            assert_eq!(body["cursor"], "");
            break;
        }
        cursor = body["cursor"].as_str().expect("cursor").to_owned();
        assert!(!cursor.is_empty());
    }
    assert_eq!(seen, ["BTC", "ETH", "USD"]);
    assert_eq!(pages, 2);
    let (s, body) = v
        .call(&v.ed, "GET", "/api/v3/brokerage/accounts?cursor=zz", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "INVALID_ARGUMENT");
    v.sim.shutdown().await;
}

#[tokio::test]
async fn products_and_market_data() {
    let v = Venue::start(|_| {}).await;
    let (s, body) = v
        .call(&v.ec, "GET", "/api/v3/brokerage/products/BTC-USD", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["base_increment"], "0.00000001");
    assert_eq!(body["quote_increment"], "0.01");
    assert_eq!(body["base_min_size"], "0.00000001");
    assert_eq!(body["status"], "online");
    assert_eq!(body["trading_disabled"], false);
    let (s, body) = v
        .call(&v.ec, "GET", "/api/v3/brokerage/products", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["num_products"], 2);
    let (s, _) = v
        .call(&v.ec, "GET", "/api/v3/brokerage/products/DOGE-USD", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = v
        .call(
            &v.ec,
            "GET",
            "/api/v3/brokerage/best_bid_ask?product_ids=BTC-USD&product_ids=ETH-USD",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let books = body["pricebooks"].as_array().expect("pricebooks");
    assert_eq!(books.len(), 2);
    let bid = d(&books[0]["bids"][0]["price"]);
    let ask = d(&books[0]["asks"][0]["price"]);
    assert!(bid < ask, "{bid} < {ask}");
    let (s, body) = v
        .call(
            &v.ec,
            "GET",
            "/api/v3/brokerage/product_book?product_id=BTC-USD&limit=3",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["pricebook"]["bids"].as_array().map(Vec::len), Some(3));
    assert_eq!(body["pricebook"]["product_id"], "BTC-USD");
    v.sim.shutdown().await;
}

fn limit_gtc(cid: &str, price: &str, size: &str) -> Value {
    json!({"client_order_id": cid, "product_id": "BTC-USD", "side": "BUY",
           "order_configuration": {"limit_limit_gtc": {"base_size": size, "limit_price": price, "post_only": false}}})
}

#[tokio::test]
async fn limit_order_rests_is_listed_fetched_and_cancelled() {
    let v = Venue::start(|_| {}).await;
    v.sim.set_market_paused(true);
    let (s, r) = v
        .call(
            &v.ec,
            "POST",
            "/api/v3/brokerage/orders",
            Some(limit_gtc("rest-1", "30000.00", "0.01")),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["success"], true, "{r}");
    let id = r["success_response"]["order_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(r["success_response"]["client_order_id"], "rest-1");
    // Held: 0.01 * 30000 = 300 USD.
    let (_, acc) = v
        .call(&v.ec, "GET", "/api/v3/brokerage/accounts", None)
        .await;
    let usd = acc["accounts"]
        .as_array()
        .expect("a")
        .iter()
        .find(|a| a["currency"] == "USD")
        .cloned()
        .expect("usd");
    assert_eq!(d(&usd["hold"]["value"]), Decimal::from(300));
    let (s, list) = v
        .call(
            &v.ec,
            "GET",
            "/api/v3/brokerage/orders/historical/batch?product_ids=BTC-USD&order_status=OPEN",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let orders = list["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["order_id"], id.as_str());
    // The other key's account does not see it.
    let (_, other) = v
        .call(
            &v.ed,
            "GET",
            "/api/v3/brokerage/orders/historical/batch",
            None,
        )
        .await;
    assert_eq!(other["orders"].as_array().map(Vec::len), Some(0));
    let (s, one) = v
        .call(
            &v.ec,
            "GET",
            &format!("/api/v3/brokerage/orders/historical/{id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["order"]["status"], "OPEN");
    assert_eq!(one["order"]["time_in_force"], "GOOD_UNTIL_CANCELLED");
    assert_eq!(
        one["order"]["order_configuration"]["limit_limit_gtc"]["limit_price"],
        "30000.00"
    );
    let (s, c) = v
        .call(
            &v.ec,
            "POST",
            "/api/v3/brokerage/orders/batch_cancel",
            Some(json!({"order_ids": [id, "nope"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["results"][0]["success"], true, "{c}");
    assert_eq!(c["results"][1]["success"], false);
    assert_eq!(c["results"][1]["failure_reason"], "UNKNOWN_CANCEL_ORDER");
    let (_, one) = v
        .call(
            &v.ec,
            "GET",
            &format!("/api/v3/brokerage/orders/historical/{id}"),
            None,
        )
        .await;
    assert_eq!(one["order"]["status"], "CANCELLED");
    let (s, _) = v
        .call(
            &v.ec,
            "GET",
            "/api/v3/brokerage/orders/historical/00000000-0000-4000-8000-00000000ffff",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn a_repeated_client_order_id_returns_the_original_order() {
    let v = Venue::start(|_| {}).await;
    v.sim.set_market_paused(true);
    let body = limit_gtc("same-id", "30000.00", "0.01");
    let (_, first) = v
        .call(
            &v.ec,
            "POST",
            "/api/v3/brokerage/orders",
            Some(body.clone()),
        )
        .await;
    let (_, second) = v
        .call(&v.ec, "POST", "/api/v3/brokerage/orders", Some(body))
        .await;
    assert_eq!(first["success"], true);
    assert_eq!(second["success"], true, "{second}");
    assert_eq!(
        first["success_response"]["order_id"],
        second["success_response"]["order_id"]
    );
    // Even with a different body, the id names the original.
    let (_, third) = v
        .call(
            &v.ec,
            "POST",
            "/api/v3/brokerage/orders",
            Some(limit_gtc("same-id", "31000.00", "0.02")),
        )
        .await;
    assert_eq!(
        third["success_response"]["order_id"],
        first["success_response"]["order_id"]
    );
    assert_eq!(
        third["order_configuration"]["limit_limit_gtc"]["limit_price"],
        "30000.00"
    );
    let ours: Vec<_> = v
        .sim
        .orders()
        .into_iter()
        .filter(|o| o.client_order_id == "same-id")
        .collect();
    assert_eq!(ours.len(), 1, "exactly one order at the venue");
    v.sim.shutdown().await;
}

#[tokio::test]
async fn a_market_order_fills_with_a_fee_and_shows_in_fills() {
    let v = Venue::start(|_| {}).await;
    v.sim.set_market_paused(true);
    let body = json!({"client_order_id": "mkt-1", "product_id": "BTC-USD", "side": "BUY",
                      "order_configuration": {"market_market_ioc": {"quote_size": "1000"}}});
    let (s, r) = v
        .call(&v.ec, "POST", "/api/v3/brokerage/orders", Some(body))
        .await;
    assert_eq!((s, &r["success"]), (StatusCode::OK, &json!(true)), "{r}");
    let id = r["success_response"]["order_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (_, o) = v
        .call(
            &v.ec,
            "GET",
            &format!("/api/v3/brokerage/orders/historical/{id}"),
            None,
        )
        .await;
    assert_eq!(o["order"]["status"], "FILLED", "{o}");
    assert_eq!(o["order"]["order_type"], "MARKET");
    assert!(d(&o["order"]["total_fees"]) > Decimal::ZERO);
    let (s, f) = v
        .call(
            &v.ec,
            "GET",
            &format!("/api/v3/brokerage/orders/historical/fills?order_ids={id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let fills = f["fills"].as_array().expect("fills");
    assert!(!fills.is_empty());
    let mut size = Decimal::ZERO;
    let mut fees = Decimal::ZERO;
    for fill in fills {
        assert_eq!(fill["order_id"], id.as_str());
        assert_eq!(fill["liquidity_indicator"], "TAKER");
        assert!(d(&fill["commission"]) > Decimal::ZERO);
        size += d(&fill["size"]);
        fees += d(&fill["commission"]);
    }
    assert_eq!(size, d(&o["order"]["filled_size"]));
    assert_eq!(fees, d(&o["order"]["total_fees"]));
    v.sim.shutdown().await;
}

#[tokio::test]
async fn business_rejects_are_200_success_false() {
    let v = Venue::start(|_| {}).await;
    v.sim.set_market_paused(true);
    let (s, r) = v
        .call(
            &v.ec,
            "POST",
            "/api/v3/brokerage/orders",
            Some(limit_gtc("poor", "50000.00", "100")),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(r["failure_reason"], "UNKNOWN_FAILURE_REASON");
    assert_eq!(r["error_response"]["error"], "INSUFFICIENT_FUND");
    assert_eq!(
        r["error_response"]["preview_failure_reason"],
        "PREVIEW_INSUFFICIENT_FUND"
    );
    assert_eq!(
        r["order_configuration"]["limit_limit_gtc"]["base_size"],
        "100"
    );
    let (_, r) = v
        .call(
            &v.ec,
            "POST",
            "/api/v3/brokerage/orders",
            Some(limit_gtc("tick", "30000.001", "0.01")),
        )
        .await;
    assert_eq!(
        r["error_response"]["error"], "INVALID_PRICE_PRECISION",
        "{r}"
    );
    // Malformed input is a 400, not a business reject.
    let (s, r) = v
        .call(
            &v.ec,
            "POST",
            "/api/v3/brokerage/orders",
            Some(json!({"product_id": "BTC-USD"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(r["error"], "INVALID_ARGUMENT");
    assert!(v.sim.orders().is_empty());
    v.sim.shutdown().await;
}

#[tokio::test]
async fn a_429_storm_answers_with_the_ratelimit_headers() {
    let v = Venue::start(|c| c.private_rate_per_s = 1000).await;
    let path = "/api/v3/brokerage/accounts";
    let token = v.jwt(&v.ec, "GET", path).token();
    let (s, h, _) = v.send("GET", path, Some(token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["x-ratelimit-limit"], "1000");
    v.sim.inject(Fault::RateLimitStorm {
        duration: Duration::from_secs(2),
    });
    let token = v.jwt(&v.ec, "GET", path).token();
    let (s, h, _) = v.send("GET", path, Some(token), None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h["x-ratelimit-remaining"], "0");
    let reset: i64 = h["x-ratelimit-reset"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("int");
    assert!(reset > now_s() - 1 && reset <= now_s() + 3, "{reset}");
    assert_eq!(h["x-ratelimit-limit"], "1000");
    assert_eq!(
        v.sim.stats().rate_limit_violations,
        0,
        "the first 429 is no violation"
    );
    // Asking again before the announced reset is a violation, counted.
    let (s, _) = v.call(&v.ec, "GET", path, None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(v.sim.stats().rate_limit_violations, 1);
    // Waiting until the reset is not.
    let wait_ms = (reset * 1000 - v.sim.server_time_ms()).max(0);
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait_ms).unwrap() + 100)).await;
    let (s, _) = v.call(&v.ec, "GET", path, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.sim.stats().http_429 >= 2);
    assert_eq!(v.sim.stats().rate_limit_violations, 1);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn the_per_key_window_refuses_past_the_limit() {
    let v = Venue::start(|c| c.private_rate_per_s = 3).await;
    let mut codes = Vec::new();
    for _ in 0..8 {
        let (s, _) = v
            .call(&v.ec, "GET", "/api/v3/brokerage/accounts", None)
            .await;
        codes.push(s);
    }
    assert!(codes.contains(&StatusCode::TOO_MANY_REQUESTS), "{codes:?}");
    // The other key has its own window.
    let (s, _) = v
        .call(&v.ed, "GET", "/api/v3/brokerage/accounts", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn server_errors_and_a_late_answer_to_a_submit() {
    let v = Venue::start(|_| {}).await;
    v.sim.set_market_paused(true);
    v.sim.inject(Fault::ServerErrors { count: 1 });
    let (s, _) = v
        .call(&v.ec, "GET", "/api/v3/brokerage/accounts", None)
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    v.sim.inject(Fault::OrderTimeout);
    let path = "/api/v3/brokerage/orders";
    let token = v.jwt(&v.ec, "POST", path).token();
    let req = v
        .http
        .post(format!("{}{path}", v.sim.rest_url))
        .bearer_auth(token)
        .json(&limit_gtc("late", "30000.00", "0.01"))
        .timeout(Duration::from_millis(800))
        .send()
        .await;
    assert!(req.is_err(), "the answer is held back");
    // The order exists anyway; resending the same client id returns it.
    let (_, r) = v
        .call(
            &v.ec,
            "POST",
            path,
            Some(limit_gtc("late", "30000.00", "0.01")),
        )
        .await;
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(v.sim.orders().len(), 1);
    v.sim.shutdown().await;
}

#[tokio::test]
async fn bad_config_names_every_problem() {
    let cfg = SimConfig {
        api_keys: vec![SimApiKey {
            name: "k".into(),
            public_key_pem: "not a key".into(),
        }],
        private_rate_per_s: 0,
        ..SimConfig::default()
    };
    let e = SimCoinbase::start(cfg).await.expect_err("invalid");
    let msg = e.to_string();
    assert!(msg.contains("neither an EC P-256 nor an Ed25519"), "{msg}");
    assert!(msg.contains("rate limits"), "{msg}");
}

fn order_body(cid: &str, side: &str, config: Value) -> Value {
    json!({"client_order_id": cid, "product_id": "BTC-USD", "side": side, "order_configuration": config})
}

#[tokio::test]
async fn gtd_fok_ioc_and_post_only_configurations() {
    let v = Venue::start(|_| {}).await;
    v.sim.set_market_paused(true);
    let path = "/api/v3/brokerage/orders";

    // GTD: rests until its end time, then expires.
    let end_ms = v.sim.server_time_ms() + 1500;
    let secs = end_ms.div_euclid(1000);
    let end_time = rfc3339_utc(secs + 1);
    let (_, r) = v
        .call(&v.ec, "POST", path, Some(order_body("gtd-1", "BUY", json!({"limit_limit_gtd":
            {"base_size": "0.01", "limit_price": "30000.00", "end_time": end_time, "post_only": false}}))))
        .await;
    assert_eq!(r["success"], true, "{r}");
    let o = order_of(&v, &r).await;
    assert_eq!(
        (o["status"].as_str(), o["time_in_force"].as_str()),
        (Some("OPEN"), Some("GOOD_UNTIL_DATE_TIME"))
    );
    // The end time is at most 2.5 s ahead; until then a tick leaves the order alone.
    v.sim.tick_market();
    assert_eq!(order_of(&v, &r).await["status"], "OPEN");
    tokio::time::sleep(Duration::from_millis(2600)).await;
    v.sim.tick_market();
    assert_eq!(order_of(&v, &r).await["status"], "EXPIRED");

    // The ticks moved the market: read the touch again.
    let (_, bba) = v
        .call(
            &v.ec,
            "GET",
            "/api/v3/brokerage/best_bid_ask?product_ids=BTC-USD",
            None,
        )
        .await;
    let ask = d(&bba["pricebooks"][0]["asks"][0]["price"]);
    let ask_size = d(&bba["pricebooks"][0]["asks"][0]["size"]);
    let bid = d(&bba["pricebooks"][0]["bids"][0]["price"]);
    assert!(
        ask_size < Decimal::new(15, 1),
        "the touch holds less than the FOK size"
    );
    // FOK larger than the liquidity at its price: nothing fills.
    let (_, r) = v
        .call(
            &v.ec,
            "POST",
            path,
            Some(order_body(
                "fok-1",
                "BUY",
                json!({"limit_limit_fok":
            {"base_size": "1.5", "limit_price": ask.to_string()}}),
            )),
        )
        .await;
    assert_eq!(r["success"], true, "{r}");
    let o = order_of(&v, &r).await;
    assert_eq!(
        (o["status"].as_str(), o["filled_size"].as_str()),
        (Some("EXPIRED"), Some("0")),
        "{o}"
    );

    // SOR limit IOC at the ask: fills what the touch offers, never rests.
    let (_, r) = v
        .call(
            &v.ec,
            "POST",
            path,
            Some(order_body(
                "ioc-1",
                "BUY",
                json!({"sor_limit_ioc":
            {"base_size": "0.001", "limit_price": ask.to_string()}}),
            )),
        )
        .await;
    let o = order_of(&v, &r).await;
    assert_eq!(o["status"], "FILLED", "{o}");
    assert_eq!(o["time_in_force"], "IMMEDIATE_OR_CANCEL");

    // Post-only that would cross is a business reject.
    let (s, r) = v
        .call(
            &v.ec,
            "POST",
            path,
            Some(order_body(
                "po-1",
                "SELL",
                json!({"limit_limit_gtc":
            {"base_size": "0.001", "limit_price": bid.to_string(), "post_only": true}}),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(
        r["error_response"]["error"],
        "INVALID_LIMIT_PRICE_POST_ONLY"
    );
    // An unsupported configuration is a business reject too, not a 400.
    let (_, r) = v
        .call(
            &v.ec,
            "POST",
            path,
            Some(order_body(
                "stop-1",
                "SELL",
                json!({"stop_limit_stop_limit_gtc":
            {"base_size": "0.001", "limit_price": "1", "stop_price": "2"}}),
            )),
        )
        .await;
    assert_eq!(r["success"], false);
    v.sim.shutdown().await;
}

/// The order a create-order answer names, as get-order returns it.
async fn order_of(v: &Venue, r: &Value) -> Value {
    let id = r["success_response"]["order_id"]
        .as_str()
        .expect("order id")
        .to_owned();
    let (_, o) = v
        .call(
            &v.ec,
            "GET",
            &format!("/api/v3/brokerage/orders/historical/{id}"),
            None,
        )
        .await;
    o["order"].clone()
}

/// `YYYY-MM-DDTHH:MM:SSZ` of epoch seconds (Howard Hinnant's civil-from-days).
fn rfc3339_utc(secs: i64) -> String {
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}
