//! End-to-end tests of the Binance.US simulator over real sockets.
//!
//! Every test starts its own simulator on `127.0.0.1:0` and talks to it the way the real
//! gateway does: reqwest for REST (parameters signed with HMAC-SHA256 over the exact
//! bytes sent), tokio-tungstenite for streams. Waits poll with timeouts; the market
//! generator is slowed down (or paused) wherever a test needs a stable book.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use gekko_sim::binanceus::{
    Fault, SimApiKey, SimBinanceUs, SimConfig, SimHandle, SimKeyAuth, SimOrderStatus, hmac_hex,
};
use reqwest::Method;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

const WAIT: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A config whose market does not move unless a test ticks it.
fn quiet() -> SimConfig {
    SimConfig {
        tick_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    }
}

async fn start(cfg: SimConfig) -> SimHandle {
    SimBinanceUs::start(cfg).await.expect("simulator starts")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A minimal Binance.US REST client, signing like the venue's docs say.
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
    secret: String,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> i64 {
        self.body["code"].as_i64().unwrap_or(0)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

impl Api {
    fn new(h: &SimHandle) -> Self {
        Self::with_key(h, "paper-key", "paper-secret")
    }

    fn with_key(h: &SimHandle, key: &str, secret: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Self {
            http,
            base: h.rest_url.clone(),
            key: key.into(),
            secret: secret.into(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let r = req.send().await.expect("response");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn public(&self, path: &str, query: &str) -> Answer {
        let url = if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        };
        self.send(self.http.get(url)).await
    }

    /// Signs `params` + `timestamp` and sends them in the query (GET/DELETE) or body (POST).
    async fn signed(&self, method: Method, path: &str, params: &str) -> Answer {
        let sep = if params.is_empty() { "" } else { "&" };
        self.signed_raw(
            method,
            path,
            &format!("{params}{sep}timestamp={}", now_ms()),
        )
        .await
    }

    async fn signed_raw(&self, method: Method, path: &str, payload: &str) -> Answer {
        let signed = format!("{payload}&signature={}", hmac_hex(&self.secret, payload));
        let req = if method == Method::POST {
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(signed)
        } else {
            self.http
                .request(method, format!("{}{path}?{signed}", self.base))
        };
        self.send(req.header("X-MBX-APIKEY", &self.key)).await
    }

    async fn order(&self, params: &str) -> Answer {
        self.signed(Method::POST, "/api/v3/order", params).await
    }

    async fn listen_key(&self) -> String {
        let a = self
            .send(
                self.http
                    .post(format!("{}/api/v3/userDataStream", self.base))
                    .header("X-MBX-APIKEY", &self.key),
            )
            .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let k = a.body["listenKey"].as_str().expect("listenKey").to_owned();
        assert_eq!(k.len(), 60);
        k
    }

    async fn balance(&self, asset: &str) -> (Decimal, Decimal) {
        let a = self.signed(Method::GET, "/api/v3/account", "").await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let b = a.body["balances"]
            .as_array()
            .and_then(|v| v.iter().find(|b| b["asset"] == asset))
            .cloned()
            .expect("asset");
        (dec_of(&b["free"]), dec_of(&b["locked"]))
    }
}

fn dec_of(v: &Value) -> Decimal {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a decimal string: {v}"))
}

async fn ws(url: &str) -> Ws {
    connect_async(url).await.expect("websocket connects").0
}

/// Next JSON text message, skipping control frames.
async fn next_json(ws: &mut Ws) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("message before timeout");
        match msg {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str()).expect("valid JSON");
            }
            Some(Ok(_)) => {}
            other => panic!("websocket ended: {other:?}"),
        }
    }
}

/// Next message matching `pred`.
async fn next_where(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let v = next_json(ws).await;
        if pred(&v) {
            return v;
        }
    }
}

/// Polls until `f` is true or panics after [`WAIT`].
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn best_bid(h: &SimHandle) -> Decimal {
    h.book("BTCUSD").1.first().map(|l| l.0).expect("bid")
}

#[tokio::test]
async fn signed_requests_check_key_signature_and_clock() {
    let h = start(quiet()).await;
    let api = Api::new(&h);

    // Key problems are 401s.
    let payload = format!("timestamp={}", now_ms());
    let sig = hmac_hex("paper-secret", &payload);
    let url = format!("{}/api/v3/account?{payload}&signature={sig}", h.rest_url);
    let a = api.send(api.http.get(&url)).await;
    assert_eq!((a.status, a.code()), (401, -2014));
    let a = api
        .send(api.http.get(&url).header("X-MBX-APIKEY", "nope"))
        .await;
    assert_eq!((a.status, a.code()), (401, -2015));
    let a = api
        .send(api.http.get(&url).header("X-MBX-APIKEY", "paper-key"))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["accountType"], "SPOT");

    // Wrong secret → -1022; missing signature / timestamp → -1102.
    let bad = Api::with_key(&h, "paper-key", "wrong");
    let a = bad.signed(Method::GET, "/api/v3/account", "").await;
    assert_eq!((a.status, a.code()), (400, -1022));
    let a = api
        .send(
            api.http
                .get(format!("{}/api/v3/account?{payload}", h.rest_url))
                .header("X-MBX-APIKEY", "paper-key"),
        )
        .await;
    assert_eq!(a.code(), -1102);
    let a = api
        .signed_raw(Method::GET, "/api/v3/account", "recvWindow=5000")
        .await;
    assert_eq!(a.code(), -1102);

    // Mixed query + body, signed over query‖body with no '&' between them.
    let query = "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC";
    let body = format!("quantity=0.01&price=1000&timestamp={}", now_ms());
    let sig = hmac_hex("paper-secret", &format!("{query}{body}"));
    let a = api
        .send(
            api.http
                .post(format!("{}/api/v3/order/test?{query}", h.rest_url))
                .header("X-MBX-APIKEY", "paper-key")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("{body}&signature={sig}")),
        )
        .await;
    assert_eq!((a.status, a.body.clone()), (200, json!({})));

    // Timestamp rules against the venue clock (skewed).
    h.set_clock_skew(10_000);
    let a = api.signed(Method::GET, "/api/v3/account", "").await;
    assert_eq!(
        (a.code(), a.body["msg"].as_str()),
        (
            -1021,
            Some("Timestamp for this request is outside of the recvWindow.")
        )
    );
    let a = api
        .signed(Method::GET, "/api/v3/account", "recvWindow=20000")
        .await;
    assert_eq!(
        a.status, 200,
        "a wider recvWindow absorbs the skew: {:?}",
        a.body
    );
    h.set_clock_skew(-1500);
    let a = api.signed(Method::GET, "/api/v3/account", "").await;
    assert_eq!(
        (a.code(), a.body["msg"].as_str()),
        (
            -1021,
            Some("Timestamp for this request was 1000ms ahead of the server's time.")
        )
    );
    h.set_clock_skew(-500);
    assert_eq!(
        api.signed(Method::GET, "/api/v3/account", "").await.status,
        200
    );
    let a = api
        .signed(Method::GET, "/api/v3/account", "recvWindow=60001")
        .await;
    assert_eq!(a.code(), -1131);
    // serverTime follows the skew.
    let t = api.public("/api/v3/time", "").await.body["serverTime"]
        .as_i64()
        .expect("serverTime");
    assert!((t - (now_ms() - 500)).abs() < 1000);
}

#[tokio::test]
async fn ed25519_keys_are_verified() {
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;
    let sk = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
    let cfg = SimConfig {
        api_keys: vec![
            SimApiKey::paper(),
            SimApiKey {
                api_key: "ed-key".into(),
                auth: SimKeyAuth::Ed25519 {
                    public_key: sk.verifying_key().to_bytes(),
                },
            },
        ],
        ..quiet()
    };
    let h = start(cfg).await;
    let http = reqwest::Client::new();
    let payload = format!("timestamp={}", now_ms());
    let sig =
        base64::engine::general_purpose::STANDARD.encode(sk.sign(payload.as_bytes()).to_bytes());
    let enc: String = form_urlencoded::byte_serialize(sig.as_bytes()).collect();
    let r = http
        .get(format!(
            "{}/api/v3/account?{payload}&signature={enc}",
            h.rest_url
        ))
        .header("X-MBX-APIKEY", "ed-key")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(format!(
            "{}/api/v3/account?{payload}1&signature={enc}",
            h.rest_url
        ))
        .header("X-MBX-APIKEY", "ed-key")
        .send()
        .await
        .expect("send");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["code"], -1022);
}

#[tokio::test]
async fn market_data_and_exchange_info_follow_the_reference() {
    let h = start(quiet()).await;
    let api = Api::new(&h);
    assert_eq!(api.public("/api/v3/ping", "").await.body, json!({}));
    let info = api.public("/api/v3/exchangeInfo", "").await;
    let weight = |a: &Answer| -> u32 {
        a.header("x-mbx-used-weight-1m")
            .and_then(|w| w.parse().ok())
            .expect("weight header")
    };
    assert_eq!(weight(&info), 1 + 10, "ping (1) + exchangeInfo (10)");
    let limits = info.body["rateLimits"].as_array().expect("rateLimits");
    assert!(
        limits
            .iter()
            .any(|l| l["rateLimitType"] == "REQUEST_WEIGHT" && l["limit"] == 1200)
    );
    assert!(
        limits
            .iter()
            .any(|l| l["rateLimitType"] == "ORDERS" && l["intervalNum"] == 10 && l["limit"] == 100)
    );
    let btc = &info.body["symbols"][0];
    assert_eq!(
        (
            btc["symbol"].as_str(),
            btc["baseAsset"].as_str(),
            btc["quoteAsset"].as_str()
        ),
        (Some("BTCUSD"), Some("BTC"), Some("USD"))
    );
    let filters: Vec<&str> = btc["filters"]
        .as_array()
        .expect("filters")
        .iter()
        .filter_map(|f| f["filterType"].as_str())
        .collect();
    assert_eq!(filters, ["PRICE_FILTER", "LOT_SIZE", "MIN_NOTIONAL"]);
    assert_eq!(btc["filters"][0]["tickSize"], "0.01000000");
    let one = api
        .public("/api/v3/exchangeInfo", "symbols=%5B%22ETHUSD%22%5D")
        .await;
    assert_eq!(one.body["symbols"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        api.public("/api/v3/exchangeInfo", "symbol=NOPE")
            .await
            .code(),
        -1121
    );

    let depth = api.public("/api/v3/depth", "symbol=BTCUSD&limit=5").await;
    assert_eq!(
        weight(&depth),
        11 + 10 + 10 + 1,
        "two more exchangeInfo, then depth limit 5"
    );
    assert_eq!(depth.body["bids"].as_array().map(Vec::len), Some(5));
    let (id, bids, asks) = h.book("BTCUSD");
    assert_eq!(depth.body["lastUpdateId"].as_u64(), Some(id));
    assert_eq!(dec_of(&depth.body["bids"][0][0]), bids[0].0);
    assert_eq!(dec_of(&depth.body["asks"][0][1]), asks[0].1);
    assert!(bids[0].0 < asks[0].0);
    let big = api
        .public("/api/v3/depth", "symbol=BTCUSD&limit=1000")
        .await;
    assert_eq!(
        weight(&big),
        weight(&depth) + 10,
        "depth limit 1000 weighs 10"
    );

    let bt = api
        .public("/api/v3/ticker/bookTicker", "symbol=BTCUSD")
        .await;
    assert_eq!(dec_of(&bt.body["bidPrice"]), bids[0].0);
    assert_eq!(
        api.public("/api/v3/ticker/bookTicker", "")
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        api.public("/api/v3/depth", "symbol=NOPE").await.code(),
        -1121
    );
    assert_eq!(api.public("/api/v3/depth", "").await.code(), -1102);
    let nf = api.public("/api/v3/nope", "").await;
    assert_eq!(nf.status, 404);
    assert!(nf.header("x-mbx-used-weight-1m").is_some());
}

#[tokio::test]
async fn filters_are_named_in_1013_errors() {
    let h = start(quiet()).await;
    let api = Api::new(&h);
    let base = "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC";
    for (params, filter) in [
        (
            format!("{base}&quantity=0.01&price=50000.005"),
            "PRICE_FILTER",
        ),
        (format!("{base}&quantity=0.000015&price=50000"), "LOT_SIZE"),
        (format!("{base}&quantity=10000&price=50000"), "LOT_SIZE"),
        (
            format!("{base}&quantity=0.0001&price=50000"),
            "MIN_NOTIONAL",
        ),
    ] {
        let a = api.order(&params).await;
        assert_eq!((a.status, a.code()), (400, -1013), "{params}");
        assert_eq!(a.body["msg"], format!("Filter failure: {filter}"));
    }
    let a = api
        .order("symbol=BTCUSD&side=BUY&type=MARKET&quantity=abc")
        .await;
    assert_eq!(a.code(), -1100);
    let a = api
        .order("symbol=BTCUSD&side=BUY&type=STOP_LOSS&quantity=1")
        .await;
    assert_eq!(a.code(), -1116);
    let a = api
        .order("symbol=XXX&side=BUY&type=MARKET&quantity=1")
        .await;
    assert_eq!(a.code(), -1121);
    let a = api.order(&format!("{base}&quantity=10&price=50000")).await;
    assert_eq!(
        (a.code(), a.body["msg"].as_str()),
        (
            -2010,
            Some("Account has insufficient balance for requested action.")
        )
    );
    assert!(h.orders().is_empty(), "no rejected order reaches the book");
    assert!(h.stats().orders_rejected >= 7);
}

#[tokio::test]
async fn limit_order_rests_then_fills_via_trade_through_with_user_stream() {
    let h = start(quiet()).await;
    let api = Api::new(&h);
    let lk = api.listen_key().await;
    assert_eq!(
        api.listen_key().await,
        lk,
        "POST while active returns the same key"
    );
    let mut user = ws(&format!("{}/ws/{lk}", h.ws_url)).await;

    let price = best_bid(&h) - dec!(50);
    let a = api
        .order(&format!("symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.3&price={price}&newClientOrderId=rest-1"))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(
        a.header("x-mbx-order-count-10s").is_some() && a.header("x-mbx-order-count-1d").is_some()
    );
    assert_eq!(a.body["status"], "NEW");
    assert_eq!(a.body["cummulativeQuoteQty"], "0.00000000");
    assert_eq!(a.body["fills"], json!([]));
    let order_id = a.body["orderId"].as_u64().expect("orderId");

    let new = next_where(&mut user, |v| v["e"] == "executionReport").await;
    assert_eq!(
        (new["x"].as_str(), new["X"].as_str(), new["c"].as_str()),
        (Some("NEW"), Some("NEW"), Some("rest-1"))
    );
    assert_eq!(new["i"].as_u64(), Some(order_id));
    let pos = next_where(&mut user, |v| v["e"] == "outboundAccountPosition").await;
    assert!(
        pos["B"]
            .as_array()
            .is_some_and(|b| b.iter().any(|x| x["a"] == "USD"))
    );
    assert_eq!(api.balance("USD").await.1, price * dec!(0.3));

    assert_eq!(h.trade_through("BTCUSD", price, dec!(0.1)), dec!(0.1));
    let t1 = next_where(&mut user, |v| v["e"] == "executionReport").await;
    assert_eq!(
        (t1["x"].as_str(), t1["X"].as_str()),
        (Some("TRADE"), Some("PARTIALLY_FILLED"))
    );
    assert_eq!(
        (dec_of(&t1["l"]), dec_of(&t1["z"]), dec_of(&t1["L"])),
        (dec!(0.1), dec!(0.1), price)
    );
    assert_eq!(
        (t1["m"].as_bool(), t1["N"].as_str()),
        (Some(true), Some("BTC"))
    );
    assert!(t1["t"].as_i64().is_some_and(|t| t > 0));
    let q = api
        .signed(
            Method::GET,
            "/api/v3/order",
            &format!("symbol=BTCUSD&orderId={order_id}"),
        )
        .await;
    assert_eq!(
        (q.body["status"].as_str(), dec_of(&q.body["executedQty"])),
        (Some("PARTIALLY_FILLED"), dec!(0.1))
    );

    assert_eq!(
        h.trade_through("BTCUSD", price - dec!(1), dec!(5)),
        dec!(0.2)
    );
    let t2 = next_where(&mut user, |v| v["e"] == "executionReport").await;
    assert_eq!(
        (t2["X"].as_str(), dec_of(&t2["z"]), dec_of(&t2["Z"])),
        (Some("FILLED"), dec!(0.3), price * dec!(0.3))
    );
    assert_eq!(t2["w"], false);
    let q = api
        .signed(
            Method::GET,
            "/api/v3/order",
            "symbol=BTCUSD&origClientOrderId=rest-1",
        )
        .await;
    assert_eq!(q.body["status"], "FILLED");
    assert_eq!(
        api.balance("USD").await,
        (dec!(100000) - price * dec!(0.3), Decimal::ZERO)
    );
    assert_eq!(
        api.balance("BTC").await.0,
        dec!(2) + dec!(0.3) - dec!(0.0003)
    );
    let trades = api
        .signed(Method::GET, "/api/v3/myTrades", "symbol=BTCUSD")
        .await;
    assert_eq!(trades.body.as_array().map(Vec::len), Some(2));
    let orders = h.orders();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].status, SimOrderStatus::Filled);

    let a = api
        .signed(Method::GET, "/api/v3/order", "symbol=BTCUSD&orderId=999")
        .await;
    assert_eq!(
        (a.code(), a.body["msg"].as_str()),
        (-2013, Some("Order does not exist."))
    );
}

#[tokio::test]
async fn market_orders_fill_and_move_balances() {
    let h = start(quiet()).await;
    let api = Api::new(&h);
    let (ask, ask_qty) = h.book("BTCUSD").2[0];
    let a = api
        .order("symbol=BTCUSD&side=BUY&type=MARKET&quantity=0.002&newOrderRespType=FULL")
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["status"], "FILLED");
    assert_eq!(a.body["type"], "MARKET");
    assert_eq!(a.body["price"], "0.00000000");
    let fills = a.body["fills"].as_array().expect("fills");
    assert!(!fills.is_empty());
    if ask_qty >= dec!(0.002) {
        assert_eq!(dec_of(&fills[0]["price"]), ask);
    }
    assert_eq!(fills[0]["commissionAsset"], "BTC");
    let spent = dec_of(&a.body["cummulativeQuoteQty"]);
    assert_eq!(
        api.balance("USD").await,
        (dec!(100000) - spent, Decimal::ZERO)
    );
    assert_eq!(api.balance("BTC").await.0, dec!(2.002) - dec!(0.000002));
    assert!(
        h.book("BTCUSD").2[0] != (ask, ask_qty),
        "the taker consumed the top ask"
    );

    let a = api
        .order("symbol=ETHUSD&side=SELL&type=MARKET&quantity=1&newOrderRespType=RESULT")
        .await;
    assert_eq!(a.body["status"], "FILLED");
    assert!(a.body.get("fills").is_none(), "RESULT has no fills");
    let a = api
        .order("symbol=ETHUSD&side=SELL&type=MARKET&quantity=1&newOrderRespType=ACK")
        .await;
    assert_eq!(
        a.body.as_object().map(|o| o.len()),
        Some(5),
        "ACK shape: {:?}",
        a.body
    );
    assert_eq!(api.balance("ETH").await.0, dec!(18));
    assert_eq!(h.stats().orders_accepted, 3);
}

#[tokio::test]
async fn cancel_and_duplicate_client_order_ids() {
    let h = start(quiet()).await;
    let api = Api::new(&h);
    let p = "symbol=BTCUSD&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.01&price=90000&newClientOrderId=dup-1";
    assert_eq!(api.order(p).await.status, 200);
    let a = api.order(p).await;
    assert_eq!(
        (a.code(), a.body["msg"].as_str()),
        (-2010, Some("Duplicate order sent."))
    );
    assert_eq!(api.balance("BTC").await, (dec!(1.99), dec!(0.01)));
    let open = api
        .signed(Method::GET, "/api/v3/openOrders", "symbol=BTCUSD")
        .await;
    assert!(open.header("x-mbx-used-weight-1m").is_some());
    assert_eq!(open.body.as_array().map(Vec::len), Some(1));

    let c = api
        .signed(
            Method::DELETE,
            "/api/v3/order",
            "symbol=BTCUSD&origClientOrderId=dup-1&newClientOrderId=cx-1",
        )
        .await;
    assert_eq!(c.status, 200, "{:?}", c.body);
    assert_eq!(
        (
            c.body["status"].as_str(),
            c.body["origClientOrderId"].as_str(),
            c.body["clientOrderId"].as_str()
        ),
        (Some("CANCELED"), Some("dup-1"), Some("cx-1"))
    );
    let again = api
        .signed(
            Method::DELETE,
            "/api/v3/order",
            "symbol=BTCUSD&origClientOrderId=dup-1",
        )
        .await;
    assert_eq!(
        (again.code(), again.body["msg"].as_str()),
        (-2011, Some("Unknown order sent."))
    );
    assert_eq!(api.balance("BTC").await, (dec!(2), Decimal::ZERO));
    // A closed order's id may be reused.
    assert_eq!(api.order(p).await.status, 200);
    assert_eq!(api.order(&p.replace("dup-1", "dup-2")).await.status, 200);
    let all = api
        .signed(Method::DELETE, "/api/v3/openOrders", "symbol=BTCUSD")
        .await;
    assert_eq!(all.body.as_array().map(Vec::len), Some(2));
    assert!(
        h.orders()
            .iter()
            .all(|o| o.status == SimOrderStatus::Canceled)
    );
}

#[tokio::test]
async fn weight_429_then_418_when_retry_after_is_ignored() {
    let h = start(SimConfig {
        weight_limit_per_minute: 5,
        ..quiet()
    })
    .await;
    let api = Api::new(&h);
    for i in 1..=5 {
        let a = api.public("/api/v3/ping", "").await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-mbx-used-weight-1m"), Some(i.to_string()));
    }
    let a = api.public("/api/v3/ping", "").await;
    assert_eq!((a.status, a.code()), (429, -1003));
    assert!(a.body["msg"].as_str().is_some_and(|m| m.starts_with(
        "Too much request weight used; current limit is 5 request weight per 1 MINUTE."
    )));
    let retry: u64 = a
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry));
    // Ignoring Retry-After: two more 429s, then the ban.
    assert_eq!(api.public("/api/v3/ping", "").await.status, 429);
    assert_eq!(api.public("/api/v3/ping", "").await.status, 429);
    let ban = api.public("/api/v3/ping", "").await;
    assert_eq!((ban.status, ban.code()), (418, -1003));
    assert!(
        ban.body["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("Way too much request weight used; IP banned until "))
    );
    assert!(ban.header("retry-after").is_some());
    let s = h.stats();
    assert_eq!((s.http_429, s.http_418), (3, 1));
    // Admin routes are never limited.
    let stats: Value = reqwest::get(format!("{}/sim/admin/stats", h.rest_url))
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["http_418"], 1);
}

#[tokio::test]
async fn injected_ban_storm_and_server_errors() {
    let h = start(quiet()).await;
    let api = Api::new(&h);
    // Ban via the admin API, as `gekko up` would.
    let r = api
        .http
        .post(format!("{}/sim/admin/fault", h.rest_url))
        .json(&json!({"kind":"ban","duration_ms":3000}))
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status().as_u16(), 200);
    let a = api.public("/api/v3/time", "").await;
    assert_eq!((a.status, a.code()), (418, -1003));
    let retry: u64 = a
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .expect("Retry-After");
    assert!((1..=3).contains(&retry));

    let h = start(quiet()).await;
    let api = Api::new(&h);
    h.inject(Fault::ServerErrors { count: 2 });
    for _ in 0..2 {
        let a = api
            .order("symbol=BTCUSD&side=BUY&type=MARKET&quantity=0.001")
            .await;
        assert_eq!((a.status, a.code()), (503, -1001));
    }
    assert!(h.orders().is_empty(), "503s execute nothing");
    assert_eq!(api.public("/api/v3/ping", "").await.status, 200);

    h.inject(Fault::RateLimitStorm {
        duration: Duration::from_millis(1500),
    });
    let a = api.public("/api/v3/ping", "").await;
    assert_eq!(
        (a.status, a.header("retry-after").as_deref()),
        (429, Some("1"))
    );
    // A client that honours Retry-After is not banned, and the storm passes.
    let mut served = false;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1050)).await;
        let a = api.public("/api/v3/ping", "").await;
        assert_ne!(a.status, 418);
        if a.status == 200 {
            served = true;
            break;
        }
    }
    assert!(served);
}

#[tokio::test]
async fn order_timeout_executes_at_the_venue_but_the_answer_is_lost() {
    let h = start(quiet()).await;
    let api = Api::new(&h);
    h.inject(Fault::OrderTimeout);
    let payload = format!(
        "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=1000&newClientOrderId=lost-1&timestamp={}",
        now_ms()
    );
    let signed = format!("{payload}&signature={}", hmac_hex("paper-secret", &payload));
    let r = api
        .http
        .post(format!("{}/api/v3/order", h.rest_url))
        .header("X-MBX-APIKEY", "paper-key")
        .header("content-type", "application/x-www-form-urlencoded")
        .timeout(Duration::from_millis(700))
        .body(signed)
        .send()
        .await;
    assert!(
        r.is_err_and(|e| e.is_timeout()),
        "the client sees a timeout"
    );
    let orders = h.orders();
    assert_eq!(orders.len(), 1, "exactly one order at the venue");
    assert_eq!(orders[0].client_order_id, "lost-1");
    // Reconciling by client id finds it.
    let q = api
        .signed(
            Method::GET,
            "/api/v3/order",
            "symbol=BTCUSD&origClientOrderId=lost-1",
        )
        .await;
    assert_eq!(q.body["status"], "NEW");
    // One-shot: the next order answers normally.
    assert_eq!(
        api.order("symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=1000")
            .await
            .status,
        200
    );
    assert_eq!(h.stats().order_responses_delayed, 1);
    h.shutdown().await;
}

/// Subscribes, snapshots over REST, applies diffs per the §2.11 procedure, then pauses
/// the market and checks the rebuilt book equals the venue's.
#[tokio::test]
async fn depth_stream_plus_snapshot_rebuilds_the_book_exactly() {
    let h = start(SimConfig {
        tick_interval: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&h);
    let mut s = ws(&format!("{}/ws/btcusd@depth@100ms", h.ws_url)).await;
    let first = next_json(&mut s).await;
    assert_eq!(
        (first["e"].as_str(), first["s"].as_str()),
        (Some("depthUpdate"), Some("BTCUSD"))
    );
    let snap = api
        .public("/api/v3/depth", "symbol=BTCUSD&limit=1000")
        .await
        .body;
    let last_update_id = snap["lastUpdateId"].as_u64().expect("lastUpdateId");
    let mut book: [BTreeMap<Decimal, Decimal>; 2] = Default::default();
    for (i, side) in ["bids", "asks"].into_iter().enumerate() {
        for l in snap[side].as_array().expect("levels") {
            book[i].insert(dec_of(&l[0]), dec_of(&l[1]));
        }
    }
    let mut prev: Option<u64> = None;
    let mut applied = 0;
    let apply = |ev: &Value, prev: &mut Option<u64>, book: &mut [BTreeMap<Decimal, Decimal>; 2]| {
        let (u_first, u_last) = (ev["U"].as_u64().expect("U"), ev["u"].as_u64().expect("u"));
        if u_last <= last_update_id {
            return false;
        }
        match *prev {
            None => assert!(
                u_first <= last_update_id + 1 && u_last > last_update_id,
                "first event straddles the snapshot"
            ),
            Some(p) => assert_eq!(u_first, p + 1, "contiguous U/u"),
        }
        *prev = Some(u_last);
        for (i, side) in ["b", "a"].into_iter().enumerate() {
            for l in ev[side].as_array().expect("levels") {
                let (p, q) = (dec_of(&l[0]), dec_of(&l[1]));
                if q.is_zero() {
                    book[i].remove(&p);
                } else {
                    book[i].insert(p, q);
                }
            }
        }
        true
    };
    apply(&first, &mut prev, &mut book);
    // A resting user order shows up in the public book too.
    let price = best_bid(&h) - dec!(20);
    assert_eq!(
        api.order(&format!(
            "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price={price}"
        ))
        .await
        .status,
        200
    );
    while applied < 30 {
        let ev = next_json(&mut s).await;
        if apply(&ev, &mut prev, &mut book) {
            applied += 1;
        }
    }
    h.set_market_paused(true);
    let target = h.book("BTCUSD").0;
    while prev.is_none_or(|p| p < target) {
        let ev = next_json(&mut s).await;
        apply(&ev, &mut prev, &mut book);
    }
    let (id, bids, asks) = h.book("BTCUSD");
    assert_eq!(prev, Some(id));
    assert_eq!(
        book[0]
            .iter()
            .rev()
            .map(|(p, q)| (*p, *q))
            .collect::<Vec<_>>(),
        bids
    );
    assert_eq!(
        book[1].iter().map(|(p, q)| (*p, *q)).collect::<Vec<_>>(),
        asks
    );

    // An injected gap is visible as U > previous u + 1.
    h.inject(Fault::DepthGap {
        symbol: "BTCUSD".into(),
    });
    h.tick_market();
    let ev = next_where(&mut s, |v| v["e"] == "depthUpdate").await;
    assert!(
        ev["U"].as_u64().expect("U") > id + 1,
        "gap: U={} after u={id}",
        ev["U"]
    );
}

#[tokio::test]
async fn combined_streams_and_live_subscriptions() {
    let h = start(quiet()).await;
    let mut s = ws(&format!(
        "{}/stream?streams=btcusd@bookTicker/ethusd@depth",
        h.ws_url
    ))
    .await;
    h.tick_market();
    let bt = next_where(&mut s, |v| v["stream"] == "btcusd@bookTicker").await;
    let d = &bt["data"];
    assert_eq!(d["s"], "BTCUSD");
    assert!(d.get("e").is_none(), "bookTicker has no e/E");
    assert_eq!(d["u"].as_u64(), Some(h.book("BTCUSD").0));
    assert!(dec_of(&d["b"]) < dec_of(&d["a"]));

    s.send(Message::text(
        r#"{"method":"SUBSCRIBE","params":["btcusd@trade"],"id":7}"#,
    ))
    .await
    .expect("send");
    assert_eq!(
        next_where(&mut s, |v| v.get("id").is_some()).await,
        json!({"result": null, "id": 7})
    );
    s.send(Message::text(
        r#"{"method":"UNSUBSCRIBE","params":["ethusd@depth"],"id":8}"#,
    ))
    .await
    .expect("send");
    assert_eq!(
        next_where(&mut s, |v| v.get("id").is_some()).await,
        json!({"result": null, "id": 8})
    );
    s.send(Message::text(r#"{"method":"LIST_SUBSCRIPTIONS","id":9}"#))
        .await
        .expect("send");
    let list = next_where(&mut s, |v| v.get("id").is_some()).await;
    assert_eq!(
        list,
        json!({"result": ["btcusd@bookTicker", "btcusd@trade"], "id": 9})
    );
    s.send(Message::text("{not json")).await.expect("send");
    assert_eq!(
        next_where(&mut s, |v| v.get("code").is_some()).await["code"],
        3
    );

    // A public trade from trade_through reaches @trade.
    let api = Api::new(&h);
    let price = best_bid(&h) - dec!(10);
    assert_eq!(
        api.order(&format!(
            "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price={price}"
        ))
        .await
        .status,
        200
    );
    h.trade_through("BTCUSD", price, dec!(1));
    let t = next_where(&mut s, |v| v["stream"] == "btcusd@trade").await;
    assert_eq!(
        (
            t["data"]["e"].as_str(),
            dec_of(&t["data"]["p"]),
            t["data"]["m"].as_bool()
        ),
        (Some("trade"), price, Some(true))
    );
}

#[tokio::test]
async fn drop_silence_and_malformed_faults() {
    let h = start(SimConfig {
        ws_ping_interval: Duration::from_millis(100),
        ..quiet()
    })
    .await;
    let mut s = ws(&format!("{}/ws/btcusd@depth", h.ws_url)).await;
    // Pings arrive on schedule.
    let got_ping = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Ping(_))) = s.next().await {
                break;
            }
        }
    })
    .await;
    assert!(got_ping.is_ok());

    h.inject(Fault::MalformedNext { count: 1 });
    h.tick_market();
    let raw = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Text(t))) = s.next().await {
                break t.as_str().to_owned();
            }
        }
    })
    .await
    .expect("message");
    let parsed: Result<Value, _> = serde_json::from_str(&raw);
    assert!(
        parsed.is_err() || parsed.is_ok_and(|v| v.get("U").is_none()),
        "malformed: {raw}"
    );
    h.tick_market();
    assert_eq!(
        next_json(&mut s).await["e"],
        "depthUpdate",
        "back to normal"
    );

    h.inject(Fault::SilentStreams {
        duration: Duration::from_millis(600),
    });
    // Drain anything the server sent before the fault took effect.
    while tokio::time::timeout(Duration::from_millis(50), s.next())
        .await
        .is_ok()
    {}
    h.tick_market();
    let quiet_window = tokio::time::timeout(Duration::from_millis(300), s.next()).await;
    assert!(
        quiet_window.is_err(),
        "nothing at all (no data, no pings) while silent: {quiet_window:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.tick_market();
    assert_eq!(next_json(&mut s).await["e"], "depthUpdate");

    h.inject(Fault::DropWebSockets);
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match s.next().await {
                Some(Ok(Message::Close(_))) => break "close frame",
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break "dropped",
            }
        }
    })
    .await
    .expect("connection ends");
    assert_eq!(end, "dropped", "no close frame");
    eventually("the open gauge to drop", || h.stats().ws_open == 0).await;
    // Reconnecting works.
    let mut s2 = ws(&format!("{}/ws/btcusd@depth", h.ws_url)).await;
    h.tick_market();
    assert_eq!(next_json(&mut s2).await["e"], "depthUpdate");
    assert_eq!(h.stats().ws_connections, 2);
}

#[tokio::test]
async fn same_seed_same_market() {
    let a = start(SimConfig {
        seed: 77,
        ..quiet()
    })
    .await;
    let b = start(SimConfig {
        seed: 77,
        ..quiet()
    })
    .await;
    let c = start(SimConfig {
        seed: 78,
        ..quiet()
    })
    .await;
    assert_eq!(a.book("BTCUSD"), b.book("BTCUSD"));
    for _ in 0..25 {
        a.tick_market();
        b.tick_market();
        c.tick_market();
        assert_eq!(a.book("BTCUSD"), b.book("BTCUSD"));
        assert_eq!(a.book("ETHUSD"), b.book("ETHUSD"));
    }
    assert_ne!(a.book("BTCUSD").1, c.book("BTCUSD").1);
}

#[tokio::test]
async fn admin_api_shapes() {
    let h = start(quiet()).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", h.rest_url))
            .json(&body)
            .send()
    };
    let v: Value = post("/sim/admin/market", json!({"paused": true}))
        .await
        .expect("market")
        .json()
        .await
        .expect("json");
    assert_eq!(v, json!({"paused": true}));
    let v: Value = post("/sim/admin/clock", json!({"skew_ms": 1234}))
        .await
        .expect("clock")
        .json()
        .await
        .expect("json");
    assert_eq!(v["skew_ms"], 1234);
    assert!(h.server_time_ms() - now_ms() >= 1000);
    let bad = post("/sim/admin/fault", json!({"kind": "nope"}))
        .await
        .expect("fault");
    assert_eq!(bad.status().as_u16(), 400);
    let book: Value = http
        .get(format!("{}/sim/admin/book?symbol=BTCUSD", h.rest_url))
        .send()
        .await
        .expect("book")
        .json()
        .await
        .expect("json");
    assert_eq!(book["lastUpdateId"].as_u64(), Some(h.book("BTCUSD").0));
    assert_eq!(book["bids"].as_array().map(Vec::len), Some(20));

    let api = Api::new(&h);
    h.set_clock_skew(0);
    let price = best_bid(&h) - dec!(10);
    assert_eq!(
        api.order(&format!(
            "symbol=BTCUSD&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.01&price={}",
            price + dec!(500)
        ))
        .await
        .status,
        200
    );
    let v: Value = post(
        "/sim/admin/trade",
        json!({"symbol": "BTCUSD", "price": (price + dec!(600)).to_string(), "qty": "0.004"}),
    )
    .await
    .expect("trade")
    .json()
    .await
    .expect("json");
    assert_eq!(v, json!({"filled_qty": "0.00400000"}));
    let orders: Value = http
        .get(format!("{}/sim/admin/orders", h.rest_url))
        .send()
        .await
        .expect("orders")
        .json()
        .await
        .expect("json");
    assert_eq!(orders[0]["status"], "PARTIALLY_FILLED");
    assert_eq!(orders[0]["executed_qty"], "0.004");
    let bal: Value = http
        .get(format!(
            "{}/sim/admin/balances?api_key=paper-key",
            h.rest_url
        ))
        .send()
        .await
        .expect("bal")
        .json()
        .await
        .expect("json");
    assert!(bal.as_array().is_some_and(|b| {
        b.iter()
            .any(|x| x["asset"] == "BTC" && x["locked"] == "0.00600000")
    }));
    let stats: Value = http
        .get(format!("{}/sim/admin/stats", h.rest_url))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["orders_accepted"], 1);
}

#[tokio::test]
async fn order_rate_limit_and_listen_key_lifecycle() {
    let h = start(SimConfig {
        orders_per_10s: 2,
        ..quiet()
    })
    .await;
    let api = Api::new(&h);
    let p = "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=1000";
    for n in 1..=2 {
        let a = api.order(p).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("x-mbx-order-count-10s"), Some(n.to_string()));
    }
    let a = api.order(p).await;
    assert_eq!((a.status, a.code()), (429, -1015));
    assert_eq!(
        a.header("retry-after"),
        None,
        "order-rate 429s carry no Retry-After"
    );
    assert_eq!(h.orders().len(), 2);
    let rl = api.signed(Method::GET, "/api/v3/rateLimit/order", "").await;
    assert_eq!(rl.body[0]["count"], 3);

    let lk = api.listen_key().await;
    let put = |k: &str| {
        api.http
            .put(format!(
                "{}/api/v3/userDataStream?listenKey={k}",
                h.rest_url
            ))
            .header("X-MBX-APIKEY", "paper-key")
    };
    assert_eq!(api.send(put(&lk)).await.body, json!({}));
    assert_eq!(api.send(put("nope")).await.code(), -1125);
    let del = api
        .http
        .delete(format!(
            "{}/api/v3/userDataStream?listenKey={lk}",
            h.rest_url
        ))
        .header("X-MBX-APIKEY", "paper-key");
    assert_eq!(api.send(del).await.body, json!({}));
    assert!(
        connect_async(format!("{}/ws/{lk}", h.ws_url))
            .await
            .is_err(),
        "a deleted listenKey is refused"
    );
    let unsigned = api
        .send(
            api.http
                .post(format!("{}/api/v3/userDataStream", h.rest_url)),
        )
        .await;
    assert_eq!((unsigned.status, unsigned.code()), (401, -2014));
}

#[tokio::test]
async fn client_pings_get_pongs() {
    let h = start(quiet()).await;
    let mut s = ws(&format!("{}/ws", h.ws_url)).await;
    s.send(Message::Ping(b"hi".to_vec().into()))
        .await
        .expect("ping");
    let pong = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Pong(p))) = s.next().await {
                break p;
            }
        }
    })
    .await
    .expect("pong");
    assert_eq!(&pong[..], b"hi");
}

/// Garbage in every shape must produce the venue's error JSON, never a panic or a hang.
#[tokio::test]
async fn garbage_requests_get_venue_errors() {
    let h = start(quiet()).await;
    let api = Api::new(&h);
    let paths = [
        "/api/v3/order",
        "/api/v3/order/test",
        "/api/v3/openOrders",
        "/api/v3/account",
        "/api/v3/depth",
        "/api/v3/trades",
        "/api/v3/exchangeInfo",
        "/api/v3/ticker/bookTicker",
        "/api/v3/allOrders",
        "/api/v3/myTrades",
        "/api/v3/userDataStream",
    ];
    let junk = [
        "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=99999999999999999999.99999999&price=99999999999999999999",
        "symbol=BTCUSD&side=SELL&type=MARKET&quoteOrderQty=99999999999999999999",
        "symbol=BTCUSD&limit=-1&orderId=-5&origClientOrderId=%00%FF",
        "symbols=%5B1,2%5D&symbol=",
        "a=1&a=2",
        "%%%%&=&&==&signature=",
        "timestamp=99999999999999999999999&signature=zz&recvWindow=1e9",
        "symbol=BTCUSD&orderId=18446744073709551615&timestamp=1&signature=00",
    ];
    for path in paths {
        for q in junk {
            for method in [Method::GET, Method::POST, Method::DELETE, Method::PUT] {
                let req = api
                    .http
                    .request(method.clone(), format!("{}{path}?{q}", h.rest_url))
                    .header("X-MBX-APIKEY", "paper-key")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(q.to_owned());
                let a = api.send(req).await;
                assert!(
                    a.status >= 400 || a.body.is_object() || a.body.is_array(),
                    "{method} {path}?{q}: {a:?}",
                    a = a.body
                );
                if a.status >= 400 {
                    assert!(
                        a.body["code"].as_i64().is_some_and(|c| c < 0),
                        "{method} {path}?{q}: {:?}",
                        a.body
                    );
                }
            }
        }
        // Signed junk that passes the signature check reaches the handlers too.
        for q in junk {
            let a = api.signed(Method::POST, path, q).await;
            assert!(a.status >= 400 || a.body.is_object() || a.body.is_array());
        }
    }
    // Absurd admin durations are capped, not a panic.
    h.inject(Fault::Ban {
        duration: Duration::MAX,
    });
    h.inject(Fault::SilentStreams {
        duration: Duration::MAX,
    });
    assert_eq!(api.public("/api/v3/ping", "").await.status, 418);
    assert!(h.orders().iter().all(|o| o.orig_qty < dec!(10000)));
}

#[test]
fn start_and_handle_are_send_and_sync() {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync>() {}
    send(&SimBinanceUs::start(quiet()));
    send_sync::<SimHandle>();
}
