//! [`OandaHttpClient`]: the raw OANDA v20 REST client.
//!
//! Every call goes through gekko-net's one REST pipeline ([`RestPipeline`]): circuit
//! breaker per [`Family`], the rate limiter, the auth hook, send, metrics and status
//! classification. This client states the OANDA details:
//!
//! * **Auth**: a static personal access token in `Authorization: Bearer`
//!   ([`BearerToken`]); every request also says `Accept-Datetime-Format: RFC3339`, so
//!   every DateTime comes back as a nanosecond RFC 3339 string.
//! * **Connections**: OANDA refuses more than 2 new connections per second, so the one
//!   `reqwest::Client` keeps its keep-alive connections (idle for `pool_idle_timeout`)
//!   and every call reuses them; nothing here opens a connection per request.
//! * **Limits**: one limiter at `rate_per_s` (100/s by default, the best-practices figure
//!   under the venue's 120/s), 90 % of it spent. No usage headers are documented, so a
//!   429 pauses the limiter for `Retry-After` (1 s if absent) and reads wait for it up
//!   to `max_rate_limit_wait`; order submits never wait and fail with `RateLimited`,
//!   nothing sent.
//! * **Errors** ([`OandaHooks::parse_error`]): 401 → `Unauthorized`, 403 →
//!   `UnknownAccount`, a reject transaction (`orderRejectTransaction`, …) →
//!   `Rejected` with its `rejectReason`, 404 → `UnknownOrder` on order paths and
//!   `UnknownAccount` elsewhere, anything else → `Api`.
//! * **Retries**: only idempotent GETs, with jittered backoff, on transport errors, 5xx
//!   and 429 (after the pause). Order creation, cancels and position closes are sent
//!   once: a cancel's repetition answers "not pending" and a close's would sell twice.
//!
//! Concurrency: the client is a cheap `Clone` over an `Arc`; the pipeline, limiter and
//! breakers are internally synchronised, so any number of tasks may call it.

use std::sync::Arc;
use std::time::Duration;

use gekko_net::{
    BearerToken, Charge, CircuitBreaker, LimiterId, RequestAuth, RestConfig, RestError,
    RestPipeline, RestRequest, RetryPolicy, VenueHooks, Wait, WeightLimiter, retry_idempotent,
};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::order::OrderBody;
use crate::common::consts;
use crate::common::models::{
    AccountProperties, AccountSummaryResponse, AccountsResponse, ChangesResponse, ErrorBody,
    InstrumentsResponse, OandaInstrument, OandaOrder, OandaPosition, OandaTrade, OandaTransaction,
    OrderResponse, OrderTransactions, OrdersResponse, PositionsResponse, PricingResponse,
    TradesResponse, TransactionResponse, TransactionsResponse,
};
use crate::config::OandaConfig;
use crate::error::{OandaError, reject_reason};

pub use gekko_net::rest::{METRIC_HTTP_429, METRIC_REQUEST_SECONDS, METRIC_REQUESTS};

/// The `venue` metric label.
pub const VENUE: &str = "oanda";
/// The one REST limiter.
const REST: LimiterId = LimiterId(0);
/// The longest payload kept in an error.
const MAX_PAYLOAD: usize = 2048;

/// Endpoint families, each with its own circuit breaker: a failing order path does not
/// stop account reads, and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Accounts, summary, instruments, pricing, positions, trades, changes,
    /// transactions.
    Account,
    /// Order creation, lookup, listing and cancel; position closes.
    Orders,
}

impl Family {
    /// Every family, in pipeline order.
    pub const ALL: [Family; 2] = [Family::Account, Family::Orders];

    /// The `family` label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Family::Account => "account",
            Family::Orders => "orders",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// One endpoint: its metric name, method and family, and whether a 404 on it means
/// "no such order" (order paths) or "no such account".
#[derive(Debug, Clone)]
struct Endpoint {
    name: &'static str,
    method: Method,
    family: Family,
    order_scoped: bool,
}

const fn ep(name: &'static str, method: Method, family: Family, order_scoped: bool) -> Endpoint {
    Endpoint {
        name,
        method,
        family,
        order_scoped,
    }
}

const ACCOUNTS: Endpoint = ep("accounts", Method::GET, Family::Account, false);
const SUMMARY: Endpoint = ep("account_summary", Method::GET, Family::Account, false);
const INSTRUMENTS: Endpoint = ep("instruments", Method::GET, Family::Account, false);
const PRICING: Endpoint = ep("pricing", Method::GET, Family::Account, false);
const CREATE_ORDER: Endpoint = ep("create_order", Method::POST, Family::Orders, true);
const GET_ORDER: Endpoint = ep("get_order", Method::GET, Family::Orders, true);
const PENDING_ORDERS: Endpoint = ep("pending_orders", Method::GET, Family::Orders, false);
const CANCEL_ORDER: Endpoint = ep("cancel_order", Method::PUT, Family::Orders, true);
const OPEN_TRADES: Endpoint = ep("open_trades", Method::GET, Family::Account, false);
const POSITIONS: Endpoint = ep("positions", Method::GET, Family::Account, false);
const CLOSE_POSITION: Endpoint = ep("close_position", Method::PUT, Family::Orders, false);
const CHANGES: Endpoint = ep("changes", Method::GET, Family::Account, false);
const TRANSACTION: Endpoint = ep("transaction", Method::GET, Family::Account, false);
const TRANSACTIONS_SINCE: Endpoint = ep("transactions_since", Method::GET, Family::Account, false);

/// The OANDA half of the pipeline: error bodies (reference §3.4). Statuses use the
/// pipeline's defaults (2xx success, 429 rate limit with `Retry-After`, 5xx server
/// error), since OANDA documents no usage headers and no ban status.
#[derive(Debug, Clone)]
pub struct OandaHooks {
    account_id: String,
}

impl OandaHooks {
    /// Hooks for the account `account_id` (named in unknown-account errors).
    #[must_use]
    pub fn new(account_id: &str) -> Self {
        Self {
            account_id: account_id.to_owned(),
        }
    }
}

/// A body cut to [`MAX_PAYLOAD`] bytes on a char boundary.
fn clip(s: &str) -> String {
    gekko_net::http::truncate(s, MAX_PAYLOAD).to_owned()
}

impl VenueHooks for OandaHooks {
    type Error = OandaError;

    fn parse_error(&self, status: u16, _headers: &HeaderMap, body: &str) -> Option<OandaError> {
        let b: ErrorBody = serde_json::from_str(body).ok()?;
        let message = b.error_message.clone().unwrap_or_default();
        if status == 401 {
            return Some(OandaError::Unauthorized { message });
        }
        if let Some(tx) = b.reject() {
            let code = tx
                .reject_reason
                .clone()
                .or_else(|| b.error_code.clone())
                .unwrap_or_else(|| status.to_string());
            return Some(OandaError::Rejected {
                status,
                reason: reject_reason(&code),
                code,
                message,
                payload: clip(body),
            });
        }
        if status == 403 {
            return Some(OandaError::UnknownAccount {
                status,
                account_id: self.account_id.clone(),
                message,
            });
        }
        if b.error_message.is_none() && b.error_code.is_none() {
            return None;
        }
        Some(OandaError::Api {
            status,
            code: b.error_code.unwrap_or_else(|| status.to_string()),
            message,
            payload: clip(body),
        })
    }
}

#[derive(Debug)]
struct Inner {
    pipeline: RestPipeline<OandaHooks>,
    auth: BearerToken,
    retry: RetryPolicy,
    max_rate_limit_wait: Duration,
    account_id: String,
    /// `/v3/accounts/{id}`, built once.
    account_path: String,
}

/// The raw OANDA REST client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OandaHttpClient {
    inner: Arc<Inner>,
}

impl OandaHttpClient {
    /// Builds the client: validates `config`, builds the keep-alive HTTP client trusting
    /// `extra_roots_pem` besides the normal roots, and the pipeline.
    ///
    /// # Errors
    /// [`OandaError::Config`] with every problem of the config, or when the HTTP client
    /// cannot be built.
    pub fn new(config: &OandaConfig) -> Result<Self, OandaError> {
        config.validate().map_err(OandaError::Config)?;
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .pool_idle_timeout(config.pool_idle_timeout)
            .tcp_keepalive(Duration::from_secs(30))
            .user_agent(concat!("gekko-oanda/", env!("CARGO_PKG_VERSION")));
        let mut roots = Vec::new();
        for (i, pem) in config.extra_roots_pem.iter().enumerate() {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| OandaError::Config(vec![format!("extra_roots_pem[{i}]: {e}")]))?;
            roots.extend(certs);
        }
        if !roots.is_empty() {
            builder = builder.tls_certs_merge(roots);
        }
        let http = builder
            .build()
            .map_err(|e| OandaError::Config(vec![format!("HTTP client: {e}")]))?;
        let pipeline = RestPipeline::new(
            http,
            RestConfig {
                venue: VENUE,
                families: Family::ALL.iter().map(|f| f.as_str()).collect(),
                limiters: vec![
                    WeightLimiter::new(config.rate_per_s, Duration::from_secs(1), 0.9)
                        .with_labels(VENUE, "rest"),
                ],
                base_url: config.rest_base.clone(),
                fallback_base_url: config
                    .rest_fallback
                    .as_ref()
                    .map(|f| f.trim_end_matches('/').to_owned()),
                breaker_threshold: config.breaker_threshold,
                breaker_cooldown: config.breaker_cooldown,
                max_rate_limit_wait: config.max_rate_limit_wait,
            },
            OandaHooks::new(&config.account_id),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                pipeline,
                auth: BearerToken::new(config.token.clone()),
                retry: config.retry,
                max_rate_limit_wait: config.max_rate_limit_wait,
                account_id: config.account_id.clone(),
                account_path: format!("/v3/accounts/{}", encode_segment(&config.account_id)),
            }),
        })
    }

    /// The account this client trades.
    #[must_use]
    pub fn account_id(&self) -> &str {
        &self.inner.account_id
    }

    /// The REST pipeline every call goes through.
    #[must_use]
    pub fn pipeline(&self) -> &RestPipeline<OandaHooks> {
        &self.inner.pipeline
    }

    /// The REST limiter.
    #[must_use]
    pub fn limiter(&self) -> &WeightLimiter {
        self.inner.pipeline.limiter(REST)
    }

    /// The breaker of `family`.
    ///
    /// # Panics
    /// Never: the pipeline is built with one breaker per [`Family`].
    #[must_use]
    pub fn breaker(&self, family: Family) -> &CircuitBreaker {
        self.inner
            .pipeline
            .breaker(family.index())
            .expect("the pipeline has a breaker for every Family")
    }

    // ------------------------------------------------------------------ account

    /// `GET /v3/accounts`: the accounts the token may use.
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn accounts(&self) -> Result<Vec<AccountProperties>, OandaError> {
        let r: AccountsResponse = self.get_json(&ACCOUNTS, "/v3/accounts", "").await?;
        Ok(r.accounts)
    }

    /// Checks that the configured account is among [`OandaHttpClient::accounts`].
    ///
    /// # Errors
    /// [`OandaError::UnknownAccount`] (status 404) when it is not; see [`OandaError`].
    pub async fn verify_account(&self) -> Result<(), OandaError> {
        let accounts = self.accounts().await?;
        if accounts.iter().any(|a| a.id == self.inner.account_id) {
            Ok(())
        } else {
            Err(OandaError::UnknownAccount {
                status: 404,
                account_id: self.inner.account_id.clone(),
                message: format!(
                    "not among the token's {} account(s) of GET /v3/accounts",
                    accounts.len()
                ),
            })
        }
    }

    /// `GET …/summary`.
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn account_summary(&self) -> Result<AccountSummaryResponse, OandaError> {
        let path = format!("{}/summary", self.inner.account_path);
        self.get_json(&SUMMARY, &path, "").await
    }

    /// `GET …/instruments`, for `names` (`EUR_USD`) or every tradeable instrument when
    /// empty.
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn instruments(&self, names: &[String]) -> Result<Vec<OandaInstrument>, OandaError> {
        let path = format!("{}/instruments", self.inner.account_path);
        let query = list_query("instruments", names);
        let r: InstrumentsResponse = self.get_json(&INSTRUMENTS, &path, &query).await?;
        Ok(r.instruments)
    }

    /// `GET …/pricing?instruments=A,B`.
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn pricing(&self, names: &[String]) -> Result<PricingResponse, OandaError> {
        let path = format!("{}/pricing", self.inner.account_path);
        self.get_json(&PRICING, &path, &list_query("instruments", names))
            .await
    }

    // ------------------------------------------------------------------ orders

    /// `POST …/orders`. Sent **once**, never waiting for rate-limit budget: a refusal
    /// before sending is `RateLimited`; a 201 returns the create/fill/cancel
    /// transactions; a 400/404 with a reject transaction is `Rejected`.
    ///
    /// # Errors
    /// See [`OandaError`]; [`OandaError::outcome_unknown`] says whether the order may
    /// have been placed anyway.
    pub async fn create_order(&self, order: &OrderBody) -> Result<OrderTransactions, OandaError> {
        let path = format!("{}/orders", self.inner.account_path);
        let body = order.to_json().to_string();
        let text = self
            .send_once(&CREATE_ORDER, &path, "", &body, Wait::Never)
            .await?;
        decode(&text)
    }

    /// `GET …/orders/{spec}`; `spec` is an order id or `@<clientID>`. `Ok(None)` when the
    /// venue does not know it (404).
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn order(&self, spec: &str) -> Result<Option<OandaOrder>, OandaError> {
        let path = format!(
            "{}/orders/{}",
            self.inner.account_path,
            encode_segment(spec)
        );
        match self.get_json::<OrderResponse>(&GET_ORDER, &path, "").await {
            Ok(r) => Ok(Some(r.order)),
            Err(OandaError::UnknownOrder { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET …/pendingOrders`.
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn pending_orders(&self) -> Result<Vec<OandaOrder>, OandaError> {
        let path = format!("{}/pendingOrders", self.inner.account_path);
        let r: OrdersResponse = self.get_json(&PENDING_ORDERS, &path, "").await?;
        Ok(r.orders)
    }

    /// `PUT …/orders/{spec}/cancel`. Sent once.
    ///
    /// # Errors
    /// [`OandaError::Rejected`] with `ORDER_DOESNT_EXIST` (reason `UnknownOrder`) when
    /// the order is unknown or no longer pending; see [`OandaError`].
    pub async fn cancel_order(&self, spec: &str) -> Result<OrderTransactions, OandaError> {
        let path = format!(
            "{}/orders/{}/cancel",
            self.inner.account_path,
            encode_segment(spec)
        );
        let text = self
            .send_once(&CANCEL_ORDER, &path, "", "", Wait::Bounded)
            .await?;
        decode(&text)
    }

    // ------------------------------------------------------------------ trades, positions

    /// `GET …/openTrades`.
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn open_trades(&self) -> Result<Vec<OandaTrade>, OandaError> {
        let path = format!("{}/openTrades", self.inner.account_path);
        let r: TradesResponse = self.get_json(&OPEN_TRADES, &path, "").await?;
        Ok(r.trades)
    }

    /// `GET …/openPositions` (`open_only`) or `GET …/positions` (every instrument ever
    /// traded).
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn positions(&self, open_only: bool) -> Result<Vec<OandaPosition>, OandaError> {
        let which = if open_only {
            "openPositions"
        } else {
            "positions"
        };
        let path = format!("{}/{which}", self.inner.account_path);
        let r: PositionsResponse = self.get_json(&POSITIONS, &path, "").await?;
        Ok(r.positions)
    }

    /// `PUT …/positions/{instrument}/close` closing `ALL` of the long and/or short side,
    /// each closing order named by the given client id. Sent once.
    ///
    /// # Errors
    /// See [`OandaError`]; a close of a side with no units is `Rejected`.
    pub async fn close_position(
        &self,
        instrument: &str,
        long: Option<&str>,
        short: Option<&str>,
    ) -> Result<OrderTransactions, OandaError> {
        let path = format!(
            "{}/positions/{}/close",
            self.inner.account_path,
            encode_segment(instrument)
        );
        let mut body = serde_json::Map::new();
        for (side, id) in [("long", long), ("short", short)] {
            body.insert(
                format!("{side}Units"),
                if id.is_some() { "ALL" } else { "NONE" }.into(),
            );
            if let Some(id) = id {
                body.insert(format!("{side}ClientExtensions"), json!({ "id": id }));
            }
        }
        let body = serde_json::Value::Object(body).to_string();
        let text = self
            .send_once(&CLOSE_POSITION, &path, "", &body, Wait::Bounded)
            .await?;
        decode(&text)
    }

    // ------------------------------------------------------------------ transactions

    /// `GET …/changes?sinceTransactionID=N`: orders, positions and transactions since
    /// `N`. The stream's catch-up after a reconnect calls this.
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn changes(&self, since_transaction_id: &str) -> Result<ChangesResponse, OandaError> {
        decode(&self.changes_raw(since_transaction_id).await?)
    }

    /// [`OandaHttpClient::changes`] as the raw JSON body (the stream's catch-up parses
    /// it itself).
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn changes_raw(&self, since_transaction_id: &str) -> Result<String, OandaError> {
        let path = format!("{}/changes", self.inner.account_path);
        let query = format!(
            "sinceTransactionID={}",
            encode_segment(since_transaction_id)
        );
        self.get_text(&CHANGES, &path, &query).await
    }

    /// `GET …/transactions/{id}`.
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn transaction(&self, id: &str) -> Result<OandaTransaction, OandaError> {
        let path = format!(
            "{}/transactions/{}",
            self.inner.account_path,
            encode_segment(id)
        );
        let r: TransactionResponse = self.get_json(&TRANSACTION, &path, "").await?;
        Ok(r.transaction)
    }

    /// `GET …/transactions/sinceid?id=N`: every transaction after `N`, oldest first.
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn transactions_since(&self, id: &str) -> Result<Vec<OandaTransaction>, OandaError> {
        let path = format!("{}/transactions/sinceid", self.inner.account_path);
        let query = format!("id={}", encode_segment(id));
        let r: TransactionsResponse = self.get_json(&TRANSACTIONS_SINCE, &path, &query).await?;
        Ok(r.transactions)
    }

    // ------------------------------------------------------------------ machinery

    /// A GET decoded as `T`, retried on transient failures. A 429 is retried only when
    /// its pause fits in `max_rate_limit_wait`: the retry then waits in the limiter, so
    /// nothing is sent inside the pause.
    async fn get_json<T: DeserializeOwned>(
        &self,
        ep: &Endpoint,
        path: &str,
        query: &str,
    ) -> Result<T, OandaError> {
        decode(&self.get_text(ep, path, query).await?)
    }

    /// A GET's body, retried as [`OandaHttpClient::get_json`] says.
    async fn get_text(&self, ep: &Endpoint, path: &str, query: &str) -> Result<String, OandaError> {
        debug_assert!(ep.method == Method::GET);
        let max_wait = self.inner.max_rate_limit_wait;
        let retryable = |e: &OandaError| {
            e.is_retryable()
                && !matches!(e, OandaError::CircuitOpen { .. })
                && e.retry_after().is_none_or(|d| d <= max_wait)
        };
        retry_idempotent(&self.inner.retry, retryable, || {
            self.send_once(ep, path, query, "", Wait::Bounded)
        })
        .await
    }

    /// One HTTP exchange through the pipeline, with the endpoint's charge, the bearer
    /// token and the DateTime format header.
    async fn send_once(
        &self,
        ep: &Endpoint,
        path: &str,
        query: &str,
        body: &str,
        wait: Wait,
    ) -> Result<String, OandaError> {
        let inner = &*self.inner;
        let charges = [Charge {
            limiter: REST,
            weight: 1,
            wait,
        }];
        let mut headers = HeaderMap::new();
        headers.insert(
            consts::DATETIME_HEADER,
            HeaderValue::from_static(consts::DATETIME_RFC3339),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if !body.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let request = RestRequest {
            name: ep.name,
            method: ep.method.clone(),
            path,
            query,
            body,
            headers,
            family: ep.family.index(),
            charges: &charges,
            auth: Some(&inner.auth as &dyn RequestAuth),
        };
        match inner.pipeline.send(&request).await {
            Ok(r) => Ok(r.body),
            Err(e) => Err(match e {
                RestError::Banned { retry_after } | RestError::RateLimited { retry_after } => {
                    OandaError::RateLimited { retry_after }
                }
                RestError::CircuitOpen {
                    family,
                    retry_after,
                } => OandaError::CircuitOpen {
                    family,
                    retry_after,
                },
                RestError::Net(n) => OandaError::Net(n),
                RestError::Venue(OandaError::Api {
                    status: 404,
                    code,
                    message,
                    ..
                }) => {
                    if ep.order_scoped && !message.to_ascii_lowercase().contains("account") {
                        OandaError::UnknownOrder { code, message }
                    } else {
                        OandaError::UnknownAccount {
                            status: 404,
                            account_id: inner.account_id.clone(),
                            message,
                        }
                    }
                }
                RestError::Venue(v) => v,
            }),
        }
    }
}

/// A success body decoded as `T`, or `Malformed` keeping the payload.
fn decode<T: DeserializeOwned>(text: &str) -> Result<T, OandaError> {
    serde_json::from_str(text).map_err(|e| OandaError::malformed(e, text))
}

/// `name=A,B` (commas kept: the venue and its SDK send a plain comma list), or nothing
/// when `values` is empty.
fn list_query(name: &str, values: &[String]) -> String {
    if values.is_empty() {
        return String::new();
    }
    let joined: Vec<String> = values.iter().map(|v| encode_segment(v)).collect();
    format!("{name}={}", joined.join(","))
}

/// Percent-encodes one path segment or query value, keeping the characters v20 ids and
/// specifiers use (`@`, `-`, `_`, `.`, `:`) as they are.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'@' | b'-' | b'_' | b'.' | b':' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gekko_venue::RejectReason;

    #[test]
    fn error_bodies_are_classified() {
        let h = OandaHooks::new("101-001-1234567-001");
        let none = HeaderMap::new();
        assert!(matches!(
            h.parse_error(401, &none, r#"{"errorMessage":"Insufficient authorization to perform request."}"#),
            Some(OandaError::Unauthorized { message }) if message.starts_with("Insufficient")
        ));
        assert!(matches!(
            h.parse_error(
                403,
                &none,
                r#"{"errorMessage":"The provided request was forbidden."}"#
            ),
            Some(OandaError::UnknownAccount { status: 403, .. })
        ));
        let reject = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/test_data/order_reject_insufficient_margin.json"
        ))
        .unwrap();
        match h.parse_error(400, &none, &reject) {
            Some(OandaError::Rejected { code, reason, .. }) => {
                assert_eq!(code, "INSUFFICIENT_MARGIN");
                assert_eq!(reason, RejectReason::InsufficientFunds);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            h.parse_error(
                404,
                &none,
                r#"{"errorCode":"ORDER_DOESNT_EXIST","errorMessage":"x"}"#
            ),
            Some(OandaError::Api { status: 404, .. })
        ));
        assert!(
            h.parse_error(502, &none, "<html>bad gateway</html>")
                .is_none()
        );
        assert!(h.parse_error(500, &none, "{}").is_none());
    }

    #[test]
    fn segments_keep_specifiers_and_encode_the_rest() {
        assert_eq!(encode_segment("@gk-1.a:b"), "@gk-1.a:b");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(
            list_query("instruments", &["EUR_USD".into(), "USD_JPY".into()]),
            "instruments=EUR_USD,USD_JPY"
        );
        assert_eq!(list_query("instruments", &[]), "");
    }
}
