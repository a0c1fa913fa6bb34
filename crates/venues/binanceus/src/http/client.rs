//! [`BinanceUsHttpClient`]: the raw Binance.US REST client.
//!
//! Every call goes through gekko-net's one REST pipeline ([`RestPipeline`]): ban gate,
//! circuit breaker per [`Family`] with the secondary base URL
//! ([`BinanceUsConfig::rest_fallback`]) while the primary's breaker is open, weight
//! limiters, the auth hook, send, metrics, usage-header feedback and status classification.
//! This client only states the Binance.US details:
//!
//! * **Hooks** ([`BinanceUsHooks`]): `X-MBX-USED-WEIGHT-1M` corrects the request-weight
//!   limiter and `X-MBX-ORDER-COUNT-10S` the order limiter; 429 pauses the weight limiter for
//!   `Retry-After` (1 s if absent; an order-count 429 without it pauses only orders); 418
//!   bans every request and forces every breaker open until the ban ends (2 min if no
//!   `Retry-After`); `{"code","msg"}` bodies become [`BinanceUsError::Api`].
//! * **Charges**: the endpoint's documented weight; order submits also one order. Reads wait
//!   up to `max_rate_limit_wait` for budget; order submits never wait, because an order
//!   released seconds late is a different order.
//! * **Auth**: signed endpoints go through [`BinanceUsQuerySigner`] (`recvWindow`,
//!   `timestamp` from the venue clock via [`ClockOffset`], `&signature=`, all in the query
//!   string, sent as built); key-only endpoints through an [`ApiKeyHeader`]; public ones
//!   through none.
//!
//! On top of that, `-1021` (timestamp outside `recvWindow`) triggers a clock resync (several
//! `/api/v3/time` samples, median) and **one** resend, also for order submits: the venue
//! rejects `-1021` before the request reaches the matching engine. Idempotent calls (reads,
//! cancels by client order id, listen-key calls) are retried with jittered backoff on
//! transient errors. [`BinanceUsHttpClient::new_order`] is **never** retried.
//!
//! Concurrency: the client is a cheap `Clone` over an `Arc`; the pipeline and the clock are
//! internally synchronised, so any number of tasks may call it at once. A
//! `tokio::sync::Mutex` serialises clock resyncs so a burst of `-1021`s causes one resync,
//! not one per request.

use std::sync::Arc;
use std::time::Duration;

use gekko_core::{OrderType, Side, TimeInForce};
use gekko_net::http::{header_u32, retry_after};
use gekko_net::{
    ApiKeyHeader, Charge, CircuitBreaker, ClockOffset, ClockSample, LimiterId, RequestAuth,
    RestConfig, RestError, RestPipeline, RestRequest, RetryPolicy, StatusClass, VenueHooks, Wait,
    WeightLimiter, retry_idempotent,
};
use gekko_venue::ClockReport;
use reqwest::header::HeaderMap;
use rust_decimal::Decimal;
use secrecy::ExposeSecret;
use tokio::time::Instant;

use super::models::{
    self, Account, ApiErrorBody, BookTicker, CancelAllEntry, DepthSnapshot, Empty, ExchangeInfo,
    ListenKey, OrderResponse, ServerTime,
};
use super::params::Params;
use crate::common::consts::{self, Endpoint, Family, Security, codes};
use crate::common::{BinanceUsSide, BinanceUsTimeInForce};
use crate::config::{BinanceUsAuth, BinanceUsConfig};
use crate::error::BinanceUsError;
use crate::signing::{BinanceUsQuerySigner, BinanceUsSigner};

pub use gekko_net::rest::{
    METRIC_HTTP_418, METRIC_HTTP_429, METRIC_REQUEST_SECONDS, METRIC_REQUESTS,
};
/// Counter: clock resyncs triggered by `-1021`; label `venue`.
pub const METRIC_CLOCK_RESYNCS: &str = "gekko_venue_clock_resyncs_total";

/// Which order response the venue should send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderRespType {
    /// Status and cumulative quantities.
    Result,
    /// `Result` plus the individual fills.
    Full,
}

/// A new order, in Binance.US terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// `BTCUSD`.
    pub symbol: String,
    /// Side.
    pub side: Side,
    /// Market or limit.
    pub order_type: OrderType,
    /// Base quantity.
    pub qty: Decimal,
    /// Limit price (limit orders).
    pub price: Option<Decimal>,
    /// Time in force (limit orders; GTC when absent).
    pub time_in_force: Option<TimeInForce>,
    /// `newClientOrderId`: gekko's deterministic client order id.
    pub client_order_id: String,
    /// `newOrderRespType`.
    pub resp_type: OrderRespType,
}

impl NewOrder {
    /// The order's parameters, in a fixed order.
    #[must_use]
    pub fn params(&self) -> Params {
        let mut p = Params::new();
        p.push("symbol", &self.symbol)
            .push("side", BinanceUsSide::from_core(self.side));
        match self.order_type {
            OrderType::Market => {
                p.push("type", "MARKET");
            }
            OrderType::Limit => {
                let tif = self.time_in_force.unwrap_or(TimeInForce::Gtc);
                p.push("type", "LIMIT")
                    .push("timeInForce", BinanceUsTimeInForce::from_core(tif));
            }
        }
        p.push("quantity", &self.qty.normalize().to_string());
        if let (OrderType::Limit, Some(price)) = (self.order_type, self.price) {
            p.push("price", &price.normalize().to_string());
        }
        p.push("newClientOrderId", &self.client_order_id).push(
            "newOrderRespType",
            match self.resp_type {
                OrderRespType::Result => "RESULT",
                OrderRespType::Full => "FULL",
            },
        );
        p
    }
}

/// The request-weight limiter (per IP), index into the pipeline's limiters.
const WEIGHT: LimiterId = LimiterId(0);
/// The order-count limiter (per account).
const ORDERS: LimiterId = LimiterId(1);

/// The Binance.US half of the REST pipeline: usage headers, 429/418, error bodies.
#[derive(Debug, Clone, Copy, Default)]
pub struct BinanceUsHooks;

impl VenueHooks for BinanceUsHooks {
    type Error = BinanceUsError;

    fn observe_usage(
        &self,
        request: &RestRequest<'_>,
        headers: &HeaderMap,
        limiters: &[WeightLimiter],
    ) {
        if let (Some(used), Some(l)) = (
            header_u32(headers, consts::HEADER_USED_WEIGHT_1M),
            limiters.get(WEIGHT.0),
        ) {
            l.observe_used(used);
        }
        if request.charges(ORDERS)
            && let (Some(n), Some(l)) = (
                header_u32(headers, consts::HEADER_ORDER_COUNT_10S),
                limiters.get(ORDERS.0),
            )
        {
            l.observe_used(n);
        }
    }

    fn classify(&self, request: &RestRequest<'_>, status: u16, headers: &HeaderMap) -> StatusClass {
        match status {
            200..=299 => StatusClass::Success,
            429 => match retry_after(headers) {
                Some(d) => StatusClass::RateLimited {
                    retry_after: d,
                    pause: vec![WEIGHT],
                },
                // The order-count limit answers 429 without Retry-After; it is per account,
                // so only orders pause.
                None if request.charges(ORDERS) => StatusClass::RateLimited {
                    retry_after: consts::DEFAULT_RETRY_AFTER,
                    pause: vec![ORDERS],
                },
                None => StatusClass::RateLimited {
                    retry_after: consts::DEFAULT_RETRY_AFTER,
                    pause: vec![WEIGHT],
                },
            },
            418 => StatusClass::Banned {
                retry_after: retry_after(headers).unwrap_or(consts::DEFAULT_BAN),
            },
            500.. => StatusClass::ServerError,
            _ => StatusClass::Rejected,
        }
    }

    /// A venue error (`{"code","msg"}`); other bodies stay HTTP status errors.
    fn parse_error(&self, status: u16, _headers: &HeaderMap, body: &str) -> Option<BinanceUsError> {
        serde_json::from_str::<ApiErrorBody>(body)
            .ok()
            .map(|e| BinanceUsError::Api {
                status,
                code: e.code,
                msg: e.msg,
            })
    }
}

impl From<RestError<BinanceUsError>> for BinanceUsError {
    fn from(e: RestError<BinanceUsError>) -> Self {
        match e {
            RestError::Banned { retry_after } => BinanceUsError::Banned { retry_after },
            RestError::CircuitOpen {
                family,
                retry_after,
            } => BinanceUsError::CircuitOpen {
                family,
                retry_after,
            },
            RestError::RateLimited { retry_after } => BinanceUsError::RateLimited { retry_after },
            RestError::Net(e) => BinanceUsError::Net(e),
            RestError::Venue(e) => e,
        }
    }
}

#[derive(Debug)]
struct Inner {
    pipeline: RestPipeline<BinanceUsHooks>,
    key_auth: ApiKeyHeader,
    signed_auth: BinanceUsQuerySigner,
    clock: Arc<ClockOffset>,
    clock_samples: usize,
    retry: RetryPolicy,
    /// Serialises clock resyncs; holds the time of the last completed one.
    resync: tokio::sync::Mutex<Option<Instant>>,
}

/// The raw Binance.US REST client. See the module docs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BinanceUsHttpClient {
    inner: Arc<Inner>,
}

impl BinanceUsHttpClient {
    /// Builds a client from a validated config.
    ///
    /// # Errors
    /// [`BinanceUsError::Config`] for an invalid config, [`BinanceUsError::Signing`] for an
    /// unusable key.
    pub fn new(config: &BinanceUsConfig) -> Result<Self, BinanceUsError> {
        config.validate().map_err(BinanceUsError::Config)?;
        let signer = match &config.auth {
            BinanceUsAuth::Hmac(s) => BinanceUsSigner::hmac(s.expose_secret())?,
            BinanceUsAuth::Ed25519(s) => BinanceUsSigner::ed25519(s.expose_secret())?
                .with_url_encoding(config.ed25519_url_encode),
        };
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(3)))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| BinanceUsError::Config(vec![format!("http client: {e}")]))?;
        let clock = Arc::new(ClockOffset::new(consts::VENUE, config.clock_samples.max(1)));
        let pipeline = RestPipeline::new(
            http,
            RestConfig {
                venue: consts::VENUE,
                families: Family::ALL.iter().map(|f| f.as_str()).collect(),
                limiters: vec![
                    WeightLimiter::new(
                        config.weight_limit_per_minute,
                        Duration::from_secs(60),
                        0.9,
                    )
                    .with_labels(consts::VENUE, "weight"),
                    WeightLimiter::new(config.orders_per_10s, Duration::from_secs(10), 0.9)
                        .with_labels(consts::VENUE, "orders"),
                ],
                base_url: config.rest_base.clone(),
                fallback_base_url: config.rest_fallback.clone(),
                breaker_threshold: config.breaker_threshold,
                breaker_cooldown: config.breaker_cooldown,
                max_rate_limit_wait: config.max_rate_limit_wait,
            },
            BinanceUsHooks,
        );
        let key_auth = ApiKeyHeader::new(consts::HEADER_API_KEY, config.api_key.clone())
            .map_err(|e| BinanceUsError::Config(vec![format!("api_key: {e}")]))?;
        let signed_auth = BinanceUsQuerySigner::new(
            config.api_key.clone(),
            Arc::new(signer),
            config.recv_window_ms,
            clock.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                pipeline,
                key_auth,
                signed_auth,
                clock,
                clock_samples: config.clock_samples.max(1),
                retry: config.retry,
                resync: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// The venue clock offset used for `timestamp`.
    #[must_use]
    pub fn clock(&self) -> &ClockOffset {
        &self.inner.clock
    }

    /// The REST pipeline every call goes through.
    #[must_use]
    pub fn pipeline(&self) -> &RestPipeline<BinanceUsHooks> {
        &self.inner.pipeline
    }

    /// The request-weight limiter (per IP).
    #[must_use]
    pub fn weight_limiter(&self) -> &WeightLimiter {
        self.inner.pipeline.limiter(WEIGHT)
    }

    /// The order-count limiter (per account).
    #[must_use]
    pub fn order_limiter(&self) -> &WeightLimiter {
        self.inner.pipeline.limiter(ORDERS)
    }

    /// The primary base URL's breaker for `family`.
    #[must_use]
    pub fn breaker(&self, family: Family) -> &CircuitBreaker {
        self.inner
            .pipeline
            .breaker(family.index())
            .expect("the pipeline has a breaker for every Family")
    }

    /// The secondary base URL's breaker for `family`, when one is configured.
    #[must_use]
    pub fn fallback_breaker(&self, family: Family) -> Option<&CircuitBreaker> {
        self.inner.pipeline.fallback_breaker(family.index())
    }

    // ---------------------------------------------------------------- public endpoints

    /// `GET /api/v3/ping`.
    ///
    /// # Errors
    /// As every call: see [`BinanceUsError`].
    pub async fn ping(&self) -> Result<(), BinanceUsError> {
        let body = self.idempotent(&consts::PING, 1, Params::new()).await?;
        models::parse::<Empty>(&body).map(|_| ())
    }

    /// `GET /api/v3/time`: the venue's clock, ms.
    ///
    /// # Errors
    /// See [`BinanceUsError`].
    pub async fn server_time(&self) -> Result<i64, BinanceUsError> {
        let body = self.idempotent(&consts::TIME, 1, Params::new()).await?;
        Ok(models::parse::<ServerTime>(&body)?.server_time)
    }

    /// Samples `/api/v3/time` `clock_samples` times and sets the offset to the median.
    ///
    /// # Errors
    /// The last error when no sample could be taken; the offset is then unchanged.
    pub async fn sync_clock(&self) -> Result<ClockReport, BinanceUsError> {
        let mut last = self.inner.resync.lock().await;
        let r = self.sample_clock().await;
        if r.is_ok() {
            *last = Some(Instant::now());
        }
        r
    }

    /// `GET /api/v3/exchangeInfo`, for the given symbols (all when empty).
    ///
    /// # Errors
    /// See [`BinanceUsError`]; `-1121` for an unknown symbol.
    pub async fn exchange_info(&self, symbols: &[String]) -> Result<ExchangeInfo, BinanceUsError> {
        let mut p = Params::new();
        match symbols {
            [] => {}
            [one] => {
                p.push("symbol", one);
            }
            many => {
                let list = serde_json::to_string(many).unwrap_or_default();
                p.push("symbols", &list);
            }
        }
        let body = self
            .idempotent(&consts::EXCHANGE_INFO, consts::EXCHANGE_INFO.weight, p)
            .await?;
        models::parse(&body)
    }

    /// `GET /api/v3/depth`; weight follows `limit`.
    ///
    /// # Errors
    /// See [`BinanceUsError`].
    pub async fn depth(&self, symbol: &str, limit: u32) -> Result<DepthSnapshot, BinanceUsError> {
        let p = Params::new()
            .with("symbol", symbol)
            .with("limit", &limit.to_string());
        let body = self
            .idempotent(&consts::DEPTH, consts::depth_weight(limit), p)
            .await?;
        models::parse(&body)
    }

    /// `GET /api/v3/ticker/bookTicker` for one symbol.
    ///
    /// # Errors
    /// See [`BinanceUsError`].
    pub async fn book_ticker(&self, symbol: &str) -> Result<BookTicker, BinanceUsError> {
        let p = Params::new().with("symbol", symbol);
        let body = self.idempotent(&consts::BOOK_TICKER, 1, p).await?;
        models::parse(&body)
    }

    // ---------------------------------------------------------------- signed endpoints

    /// `GET /api/v3/account`.
    ///
    /// # Errors
    /// See [`BinanceUsError`]; `-2014`/`-2015`/`-1022` for credential problems.
    pub async fn account(&self) -> Result<Account, BinanceUsError> {
        let body = self
            .idempotent(&consts::ACCOUNT, consts::ACCOUNT.weight, Params::new())
            .await?;
        models::parse(&body)
    }

    /// `POST /api/v3/order`. **Never retried**, except the single resend after a `-1021`
    /// clock resync (the venue rejects `-1021` before the matching engine sees the order).
    /// Never waits for rate-limit budget either.
    ///
    /// # Errors
    /// See [`BinanceUsError::outcome_unknown`] for which errors leave the order in flight.
    pub async fn new_order(&self, order: &NewOrder) -> Result<OrderResponse, BinanceUsError> {
        let body = self
            .call(
                &consts::ORDER_NEW,
                consts::ORDER_NEW.weight,
                &order.params(),
                Wait::Never,
            )
            .await?;
        models::parse(&body)
    }

    /// `POST /api/v3/order/test`: validated by the venue (signature, filters), never
    /// sent to the matching engine.
    ///
    /// # Errors
    /// See [`BinanceUsError`].
    pub async fn test_order(&self, order: &NewOrder) -> Result<(), BinanceUsError> {
        let body = self
            .call(
                &consts::ORDER_TEST,
                consts::ORDER_TEST.weight,
                &order.params(),
                Wait::Bounded,
            )
            .await?;
        models::parse::<Empty>(&body).map(|_| ())
    }

    /// `GET /api/v3/order` by `origClientOrderId`.
    ///
    /// # Errors
    /// See [`BinanceUsError`]; `-2013` when the venue does not know the order.
    pub async fn query_order(
        &self,
        symbol: &str,
        client_order_id: &str,
    ) -> Result<OrderResponse, BinanceUsError> {
        let p = Params::new()
            .with("symbol", symbol)
            .with("origClientOrderId", client_order_id);
        let body = self
            .idempotent(&consts::ORDER_QUERY, consts::ORDER_QUERY.weight, p)
            .await?;
        models::parse(&body)
    }

    /// `DELETE /api/v3/order` by `origClientOrderId`. Retried on transient errors: a
    /// repeated cancel of the same order cannot cancel anything else.
    ///
    /// # Errors
    /// See [`BinanceUsError`]; `-2011` when the order is unknown or already closed.
    pub async fn cancel_order(
        &self,
        symbol: &str,
        client_order_id: &str,
    ) -> Result<OrderResponse, BinanceUsError> {
        let p = Params::new()
            .with("symbol", symbol)
            .with("origClientOrderId", client_order_id);
        let body = self
            .idempotent(&consts::ORDER_CANCEL, consts::ORDER_CANCEL.weight, p)
            .await?;
        models::parse(&body)
    }

    /// `GET /api/v3/openOrders` for one symbol.
    ///
    /// # Errors
    /// See [`BinanceUsError`].
    pub async fn open_orders(&self, symbol: &str) -> Result<Vec<OrderResponse>, BinanceUsError> {
        let p = Params::new().with("symbol", symbol);
        let body = self
            .idempotent(&consts::OPEN_ORDERS, consts::OPEN_ORDERS.weight, p)
            .await?;
        models::parse(&body)
    }

    /// `DELETE /api/v3/openOrders` for one symbol; order lists (OCO) in the answer are
    /// skipped. Retried on transient errors: cancelling "everything open" twice has the
    /// same effect as once.
    ///
    /// # Errors
    /// See [`BinanceUsError`]; `-2011` when nothing was open.
    pub async fn cancel_open_orders(
        &self,
        symbol: &str,
    ) -> Result<Vec<OrderResponse>, BinanceUsError> {
        let p = Params::new().with("symbol", symbol);
        let body = self
            .idempotent(
                &consts::CANCEL_OPEN_ORDERS,
                consts::CANCEL_OPEN_ORDERS.weight,
                p,
            )
            .await?;
        let entries: Vec<CancelAllEntry> = models::parse(&body)?;
        Ok(entries
            .into_iter()
            .filter_map(|e| match e {
                CancelAllEntry::Order(o) => Some(o),
                CancelAllEntry::Other(_) => None,
            })
            .collect())
    }

    // ---------------------------------------------------------------- user data stream

    /// `POST /api/v3/userDataStream`: a listen key (the same one while it is alive).
    ///
    /// # Errors
    /// See [`BinanceUsError`].
    pub async fn create_listen_key(&self) -> Result<String, BinanceUsError> {
        let body = self
            .idempotent(&consts::USER_STREAM_NEW, 1, Params::new())
            .await?;
        Ok(models::parse::<ListenKey>(&body)?.listen_key)
    }

    /// `PUT /api/v3/userDataStream`: extends the key by 60 minutes.
    ///
    /// # Errors
    /// See [`BinanceUsError`]; `-1125` when the key no longer exists.
    pub async fn keepalive_listen_key(&self, listen_key: &str) -> Result<(), BinanceUsError> {
        let p = Params::new().with("listenKey", listen_key);
        let body = self
            .idempotent(&consts::USER_STREAM_KEEPALIVE, 1, p)
            .await?;
        models::parse::<Empty>(&body).map(|_| ())
    }

    /// `DELETE /api/v3/userDataStream`: closes the stream.
    ///
    /// # Errors
    /// See [`BinanceUsError`].
    pub async fn close_listen_key(&self, listen_key: &str) -> Result<(), BinanceUsError> {
        let p = Params::new().with("listenKey", listen_key);
        let body = self.idempotent(&consts::USER_STREAM_CLOSE, 1, p).await?;
        models::parse::<Empty>(&body).map(|_| ())
    }

    // ---------------------------------------------------------------- machinery

    /// [`Self::call`] with retries of transient failures. Idempotent endpoints only.
    async fn idempotent(
        &self,
        ep: &Endpoint,
        weight: u32,
        params: Params,
    ) -> Result<String, BinanceUsError> {
        retry_idempotent(&self.inner.retry, BinanceUsError::is_retryable, || {
            self.call(ep, weight, &params, Wait::Bounded)
        })
        .await
    }

    /// One request, plus one resend after a clock resync on `-1021`.
    async fn call(
        &self,
        ep: &Endpoint,
        weight: u32,
        params: &Params,
        wait: Wait,
    ) -> Result<String, BinanceUsError> {
        let sent_at = Instant::now();
        match self.send_once(ep, weight, params, wait).await {
            Err(BinanceUsError::Api {
                code: codes::INVALID_TIMESTAMP,
                msg,
                ..
            }) if ep.security == Security::Signed => {
                tracing::warn!(endpoint = ep.name, %msg, offset_ms = self.inner.clock.offset_ms(), "-1021: resyncing the clock and resending once");
                metrics::counter!(METRIC_CLOCK_RESYNCS, "venue" => consts::VENUE).increment(1);
                self.resync_after_error(sent_at).await?;
                self.send_once(ep, weight, params, wait).await
            }
            other => other,
        }
    }

    /// Resyncs unless another task finished a resync after the failed request was sent
    /// (then the offset already reflects the venue clock that refused it): a burst of
    /// `-1021`s causes one resync, and a resync done before the request cannot hide a
    /// clock that moved since.
    async fn resync_after_error(&self, request_sent: Instant) -> Result<(), BinanceUsError> {
        let mut last = self.inner.resync.lock().await;
        if last.is_some_and(|t| t > request_sent) {
            return Ok(());
        }
        self.sample_clock().await?;
        *last = Some(Instant::now());
        Ok(())
    }

    async fn sample_clock(&self) -> Result<ClockReport, BinanceUsError> {
        let clock = &self.inner.clock;
        let mut fresh = Vec::with_capacity(self.inner.clock_samples);
        let mut last_err = None;
        for _ in 0..self.inner.clock_samples {
            let sent = gekko_net::clock::local_now_ms();
            match self
                .send_once(&consts::TIME, 1, &Params::new(), Wait::Bounded)
                .await
            {
                Ok(body) => {
                    let recv = gekko_net::clock::local_now_ms();
                    match models::parse::<ServerTime>(&body) {
                        Ok(t) => fresh.push(ClockSample::from_times(sent, t.server_time, recv)),
                        Err(e) => last_err = Some(e),
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        if fresh.is_empty() {
            return Err(last_err.unwrap_or(BinanceUsError::Config(vec![
                "clock_samples must be positive".to_owned(),
            ])));
        }
        // Old samples may predate a clock step (DST, NTP); only fresh ones count.
        clock.clear();
        for s in fresh {
            clock.record(s);
        }
        let report = ClockReport {
            offset_ms: clock.offset_ms(),
            rtt: clock.best_rtt().unwrap_or_default(),
        };
        tracing::info!(
            offset_ms = report.offset_ms,
            rtt_ms = report.rtt.as_millis(),
            "Binance.US clock synced"
        );
        Ok(report)
    }

    /// One HTTP exchange through the pipeline, with this endpoint's charges and auth.
    async fn send_once(
        &self,
        ep: &Endpoint,
        weight: u32,
        params: &Params,
        wait: Wait,
    ) -> Result<String, BinanceUsError> {
        let inner = &*self.inner;
        let order_charge = [
            // Orders never wait for the per-account budget: late is a different order.
            Charge {
                limiter: ORDERS,
                weight: 1,
                wait: Wait::Never,
            },
            Charge {
                limiter: WEIGHT,
                weight,
                wait,
            },
        ];
        let charges: &[Charge] = if ep.counts_as_order {
            &order_charge
        } else {
            &order_charge[1..]
        };
        let auth: Option<&dyn RequestAuth> = match ep.security {
            Security::None => None,
            Security::ApiKey => Some(&inner.key_auth),
            Security::Signed => Some(&inner.signed_auth),
        };
        let request = RestRequest {
            name: ep.name,
            method: ep.method.clone(),
            path: ep.path,
            query: params.as_str(),
            body: "",
            headers: HeaderMap::new(),
            family: ep.family.index(),
            charges,
            auth,
        };
        let resp = inner.pipeline.send(&request).await?;
        Ok(resp.body)
    }
}
