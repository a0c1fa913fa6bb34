//! [`BinanceUsHttpClient`]: the raw Binance.US REST client.
//!
//! Every call follows the same path (`send_once`):
//!
//! 1. **Ban check.** While a 418 ban is in force nothing is sent.
//! 2. **Circuit breaker** of the endpoint's [`Family`] on the primary base URL; when it is
//!    open, the secondary base URL (if configured) is used instead.
//! 3. **Rate limits.** The endpoint's documented weight is reserved in the request-weight
//!    limiter (order submits also in the order-count limiter) *before* sending. Reads wait
//!    up to `max_rate_limit_wait` for budget; order submits never wait, because an order
//!    released seconds late is a different order.
//! 4. **Signing.** Signed endpoints get `recvWindow` and `timestamp` (venue clock via
//!    [`ClockOffset`]) and `&signature=`; everything goes in the query string, sent as built.
//! 5. **Response.** `X-MBX-USED-WEIGHT-1M` corrects the limiter; 429 pauses the limiter
//!    for `Retry-After` (1 s if absent; an order-count 429 without it pauses only orders);
//!    418 bans every request and forces every breaker open until the ban ends; 4xx with a
//!    venue code is a definitive [`BinanceUsError::Api`]; 5xx and transport failures count
//!    against the breaker.
//!
//! On top of that, `-1021` (timestamp outside `recvWindow`) triggers a clock resync (several
//! `/api/v3/time` samples, median) and **one** resend, also for order submits: the venue
//! rejects `-1021` before the request reaches the matching engine. Idempotent calls (reads,
//! cancels by client order id, listen-key calls) are retried with jittered backoff on
//! transient errors. [`BinanceUsHttpClient::new_order`] is **never** retried.
//!
//! Concurrency: the client is a cheap `Clone` over an `Arc`; limiters, breakers and the
//! clock are internally synchronised, so any number of tasks may call it at once. A
//! `tokio::sync::Mutex` serialises clock resyncs so a burst of `-1021`s causes one resync,
//! not one per request.

use std::sync::Arc;
use std::time::Duration;

use gekko_core::{OrderType, Side, TimeInForce};
use gekko_net::http::{header_u32, retry_after};
use gekko_net::{
    BreakerPermit, CircuitBreaker, ClockOffset, ClockSample, NetError, RetryPolicy, WeightLimiter,
    retry_idempotent,
};
use gekko_venue::ClockReport;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
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
use crate::signing::BinanceUsSigner;

/// Histogram: request latency; labels `venue`, `endpoint`.
pub const METRIC_REQUEST_SECONDS: &str = "gekko_venue_request_seconds";
/// Counter: requests by outcome; labels `venue`, `endpoint`, `outcome`
/// (`2xx`, `4xx`, `5xx`, `429`, `418`, `transport`).
pub const METRIC_REQUESTS: &str = "gekko_venue_requests_total";
/// Counter: 429 answers; labels `venue`, `endpoint`.
pub const METRIC_HTTP_429: &str = "gekko_venue_http_429_total";
/// Counter: 418 answers; labels `venue`, `endpoint`.
pub const METRIC_HTTP_418: &str = "gekko_venue_http_418_total";
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

/// How long a call may wait for rate-limit budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Up to the configured maximum.
    Bounded,
    /// Not at all (order submits).
    Never,
}

#[derive(Debug)]
struct BaseUrl {
    url: String,
    breakers: [CircuitBreaker; 4],
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    bases: Vec<BaseUrl>,
    api_key: SecretString,
    signer: BinanceUsSigner,
    recv_window_ms: u64,
    weight: WeightLimiter,
    orders: WeightLimiter,
    clock: ClockOffset,
    clock_samples: usize,
    retry: RetryPolicy,
    max_rate_limit_wait: Duration,
    banned_until: std::sync::Mutex<Option<Instant>>,
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
        let breakers = |suffix: &str| {
            Family::ALL.map(|f| {
                CircuitBreaker::new(
                    consts::VENUE,
                    &format!("{}{suffix}", f.as_str()),
                    config.breaker_threshold,
                    config.breaker_cooldown,
                )
            })
        };
        let mut bases = vec![BaseUrl {
            url: config.rest_base.trim_end_matches('/').to_owned(),
            breakers: breakers(""),
        }];
        if let Some(f) = &config.rest_fallback {
            bases.push(BaseUrl {
                url: f.trim_end_matches('/').to_owned(),
                breakers: breakers(":fallback"),
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                bases,
                api_key: config.api_key.clone(),
                signer,
                recv_window_ms: config.recv_window_ms,
                weight: WeightLimiter::new(
                    config.weight_limit_per_minute,
                    Duration::from_secs(60),
                    0.9,
                )
                .with_labels(consts::VENUE, "weight"),
                orders: WeightLimiter::new(config.orders_per_10s, Duration::from_secs(10), 0.9)
                    .with_labels(consts::VENUE, "orders"),
                clock: ClockOffset::new(consts::VENUE, config.clock_samples.max(1)),
                clock_samples: config.clock_samples.max(1),
                retry: config.retry,
                max_rate_limit_wait: config.max_rate_limit_wait,
                banned_until: std::sync::Mutex::new(None),
                resync: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// The venue clock offset used for `timestamp`.
    #[must_use]
    pub fn clock(&self) -> &ClockOffset {
        &self.inner.clock
    }

    /// The request-weight limiter (per IP).
    #[must_use]
    pub fn weight_limiter(&self) -> &WeightLimiter {
        &self.inner.weight
    }

    /// The order-count limiter (per account).
    #[must_use]
    pub fn order_limiter(&self) -> &WeightLimiter {
        &self.inner.orders
    }

    /// The primary base URL's breaker for `family`.
    #[must_use]
    pub fn breaker(&self, family: Family) -> &CircuitBreaker {
        &self.inner.bases[0].breakers[family.index()]
    }

    /// The secondary base URL's breaker for `family`, when one is configured.
    #[must_use]
    pub fn fallback_breaker(&self, family: Family) -> Option<&CircuitBreaker> {
        self.inner.bases.get(1).map(|b| &b.breakers[family.index()])
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

    /// Picks the first base URL whose breaker for `family` lets a call through.
    fn pick_base(&self, family: Family) -> Result<(&str, BreakerPermit<'_>), BinanceUsError> {
        let mut retry_after: Option<Duration> = None;
        for base in &self.inner.bases {
            match base.breakers[family.index()].try_acquire() {
                Ok(permit) => return Ok((&base.url, permit)),
                Err(open) => {
                    retry_after =
                        Some(retry_after.map_or(open.retry_after, |r| r.min(open.retry_after)));
                }
            }
        }
        Err(BinanceUsError::CircuitOpen {
            family: family.as_str(),
            retry_after: retry_after.unwrap_or_default(),
        })
    }

    fn ban_remaining(&self) -> Option<Duration> {
        let until = (*gekko_core::sync::lock(&self.inner.banned_until))?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }

    /// One HTTP exchange. See the module docs for the steps.
    async fn send_once(
        &self,
        ep: &Endpoint,
        weight: u32,
        params: &Params,
        wait: Wait,
    ) -> Result<String, BinanceUsError> {
        let inner = &*self.inner;
        if let Some(retry_after) = self.ban_remaining() {
            return Err(BinanceUsError::Banned { retry_after });
        }
        let (base, permit) = self.pick_base(ep.family)?;

        if ep.counts_as_order {
            inner
                .orders
                .try_acquire(1)
                .map_err(|retry_after| BinanceUsError::RateLimited { retry_after })?;
        }
        match wait {
            Wait::Never => inner.weight.try_acquire(weight),
            Wait::Bounded => {
                inner
                    .weight
                    .acquire_within(weight, inner.max_rate_limit_wait)
                    .await
            }
        }
        .map_err(|retry_after| BinanceUsError::RateLimited { retry_after })?;

        let query = match ep.security {
            Security::Signed => {
                let mut p = params.clone();
                p.push("recvWindow", &inner.recv_window_ms.to_string())
                    .push("timestamp", &inner.clock.now_ms().to_string());
                inner.signer.sign_query(p.as_str())
            }
            Security::None | Security::ApiKey => params.as_str().to_owned(),
        };
        let url = if query.is_empty() {
            format!("{base}{}", ep.path)
        } else {
            format!("{base}{}?{query}", ep.path)
        };
        let mut req = inner.http.request(ep.method.clone(), url);
        if ep.security != Security::None {
            req = req.header(consts::HEADER_API_KEY, inner.api_key.expose_secret());
        }

        let started = Instant::now();
        let sent = req.send().await;
        let outcome = match sent {
            Err(e) => Err(e),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                resp.text().await.map(|body| (status, headers, body))
            }
        };
        metrics::histogram!(METRIC_REQUEST_SECONDS, "venue" => consts::VENUE, "endpoint" => ep.name)
            .record(started.elapsed().as_secs_f64());

        let (status, headers, body) = match outcome {
            Err(e) => {
                permit.failure();
                count(ep, "transport");
                let e = NetError::from_reqwest(e);
                tracing::warn!(endpoint = ep.name, error = %e, "Binance.US request failed");
                return Err(BinanceUsError::Net(e));
            }
            Ok(x) => x,
        };
        if let Some(used) = header_u32(&headers, consts::HEADER_USED_WEIGHT_1M) {
            inner.weight.observe_used(used);
        }
        if ep.counts_as_order
            && let Some(n) = header_u32(&headers, consts::HEADER_ORDER_COUNT_10S)
        {
            inner.orders.observe_used(n);
        }
        match status {
            200..=299 => {
                permit.success();
                count(ep, "2xx");
                Ok(body)
            }
            429 => {
                // A rate limit says nothing about the venue's health: the permit is
                // dropped unreported.
                drop(permit);
                count(ep, "429");
                metrics::counter!(METRIC_HTTP_429, "venue" => consts::VENUE, "endpoint" => ep.name)
                    .increment(1);
                let ra = retry_after(&headers);
                match ra {
                    Some(d) => inner.weight.pause_for(d),
                    // The order-count limit answers 429 without Retry-After; it is per
                    // account, so only orders pause.
                    None if ep.counts_as_order => {
                        inner.orders.pause_for(consts::DEFAULT_RETRY_AFTER)
                    }
                    None => inner.weight.pause_for(consts::DEFAULT_RETRY_AFTER),
                }
                tracing::warn!(endpoint = ep.name, retry_after = ?ra, body = %gekko_net::http::truncate(&body, 256), "Binance.US 429");
                Err(BinanceUsError::RateLimited {
                    retry_after: ra.unwrap_or(consts::DEFAULT_RETRY_AFTER),
                })
            }
            418 => {
                drop(permit);
                count(ep, "418");
                metrics::counter!(METRIC_HTTP_418, "venue" => consts::VENUE, "endpoint" => ep.name)
                    .increment(1);
                let d = retry_after(&headers).unwrap_or(consts::DEFAULT_BAN);
                let until = Instant::now() + d;
                {
                    let mut b = gekko_core::sync::lock(&inner.banned_until);
                    *b = Some(b.map_or(until, |x| x.max(until)));
                }
                inner.weight.ban_until(until);
                inner.orders.ban_until(until);
                for base in &inner.bases {
                    for br in &base.breakers {
                        br.force_open_until(until);
                    }
                }
                tracing::error!(
                    endpoint = ep.name,
                    ban_secs = d.as_secs(),
                    "Binance.US 418: IP banned; all requests held until the ban ends"
                );
                Err(BinanceUsError::Banned { retry_after: d })
            }
            s => {
                if s >= 500 {
                    permit.failure();
                    count(ep, "5xx");
                } else {
                    // The venue answered and judged the request: it is healthy.
                    permit.success();
                    count(ep, "4xx");
                }
                Err(error_from_body(s, &headers, &body))
            }
        }
    }
}

fn count(ep: &Endpoint, outcome: &'static str) {
    metrics::counter!(METRIC_REQUESTS, "venue" => consts::VENUE, "endpoint" => ep.name, "outcome" => outcome)
        .increment(1);
}

/// A venue error (`{"code","msg"}`) or, for other bodies, an HTTP status error with the
/// payload.
fn error_from_body(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> BinanceUsError {
    match serde_json::from_str::<ApiErrorBody>(body) {
        Ok(e) => BinanceUsError::Api {
            status,
            code: e.code,
            msg: e.msg,
        },
        Err(_) => BinanceUsError::Net(NetError::Status {
            status,
            body: gekko_net::http::truncate(body, gekko_net::http::MAX_ERROR_PAYLOAD).to_owned(),
            retry_after: retry_after(headers),
        }),
    }
}
