//! A small scripted Binance.US REST mock on `127.0.0.1:0` (axum) that can misbehave on
//! purpose: canned answers per route (status, headers, body, delay), a request log, and a
//! `/api/v3/time` that answers with a configurable skew.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use gekko_binanceus::{BinanceUsAuth, BinanceUsConfig};
use secrecy::SecretString;

/// The official example secret and key (Binance.US docs).
pub(crate) const API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
pub(crate) const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

#[derive(Debug, Clone)]
pub(crate) struct Canned {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
}

impl Canned {
    pub(crate) fn ok(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            body: body.into(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub(crate) fn status(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            ..Self::ok(body)
        }
    }

    pub(crate) fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }

    pub(crate) fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Logged {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub api_key: Option<String>,
}

#[derive(Default)]
struct MockState {
    queued: HashMap<(Method, String), VecDeque<Canned>>,
    fallback: HashMap<(Method, String), Canned>,
    log: Vec<Logged>,
    skew_ms: i64,
}

#[derive(Clone, Default)]
pub(crate) struct Mock {
    state: Arc<Mutex<MockState>>,
}

impl Mock {
    /// Queues answers for a route, served in order before the route's default.
    pub(crate) fn queue(
        &self,
        method: Method,
        path: &str,
        answers: impl IntoIterator<Item = Canned>,
    ) {
        self.state
            .lock()
            .unwrap()
            .queued
            .entry((method, path.to_owned()))
            .or_default()
            .extend(answers);
    }

    /// The answer once the queue is empty.
    pub(crate) fn default_answer(&self, method: Method, path: &str, answer: Canned) {
        self.state
            .lock()
            .unwrap()
            .fallback
            .insert((method, path.to_owned()), answer);
    }

    /// Venue clock minus real clock, for `/api/v3/time`.
    pub(crate) fn set_skew_ms(&self, skew: i64) {
        self.state.lock().unwrap().skew_ms = skew;
    }

    pub(crate) fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub(crate) fn count(&self, method: &Method, path: &str) -> usize {
        self.log()
            .iter()
            .filter(|r| r.method == *method && r.path == path)
            .count()
    }
}

async fn handle(
    State(mock): State<Mock>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    let canned = {
        let mut st = mock.state.lock().unwrap();
        st.log.push(Logged {
            method: method.clone(),
            path: path.clone(),
            query: uri.query().unwrap_or("").to_owned(),
            api_key: headers
                .get("x-mbx-apikey")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        let key = (method.clone(), path.clone());
        let queued = st.queued.get_mut(&key).and_then(VecDeque::pop_front);
        match queued.or_else(|| st.fallback.get(&key).cloned()) {
            Some(c) => c,
            None if path == "/api/v3/time" => Canned::ok(format!(
                "{{\"serverTime\":{}}}",
                gekko_core::now_ms() + st.skew_ms
            )),
            None => Canned::status(404, r#"{"code":-1,"msg":"no route in mock"}"#),
        }
    };
    if !canned.delay.is_zero() {
        tokio::time::sleep(canned.delay).await;
    }
    let mut resp = (StatusCode::from_u16(canned.status).unwrap(), canned.body).into_response();
    for (k, v) in canned.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

/// Starts the mock; returns its base URL.
pub(crate) async fn start(mock: Mock) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = Router::new().fallback(handle).with_state(mock);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), task)
}

/// A config for tests: short timeouts and backoffs, HMAC with the official secret.
pub(crate) fn config(rest: &str, ws: &str) -> BinanceUsConfig {
    let mut c = BinanceUsConfig::simulator(
        rest,
        ws,
        SecretString::from(API_KEY),
        BinanceUsAuth::Hmac(SecretString::from(SECRET)),
    );
    c.request_timeout = Duration::from_millis(500);
    c.retry.backoff.base = Duration::from_millis(5);
    c.retry.backoff.max = Duration::from_millis(20);
    c.max_rate_limit_wait = Duration::from_millis(100);
    c.clock_samples = 3;
    c.breaker_threshold = 3;
    c.breaker_cooldown = Duration::from_secs(30);
    c
}

/// Reads a fixture from `test_data/`.
pub(crate) fn fixture(name: &str) -> String {
    let path = format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
