//! [`CoinbaseHttpClient`]: the raw Coinbase Advanced Trade REST client.
//!
//! Every call goes through gekko-net's one REST pipeline ([`RestPipeline`]): circuit
//! breaker per [`Family`], rate limiters, the auth hook, send, metrics, usage-header
//! feedback and status classification. This client states the Coinbase details:
//!
//! * **Auth**: private endpoints carry a fresh ES256/EdDSA JWT per request
//!   ([`CoinbaseRequestAuth`]), whose `uri` claim is `"METHOD host path"` of the host the
//!   pipeline actually chose, without the query. The signer's clock is the venue clock
//!   ([`ClockOffset`], fed by [`CoinbaseHttpClient::sync_clock`] from `GET /time`), so a
//!   local clock that drifted past the token lifetime is corrected by one sync.
//! * **Limits**: two limiters, private (30/s per key) and public (10/s per IP), 90 % of
//!   each spent. `x-ratelimit-remaining: 0` pauses the charged limiter until
//!   `x-ratelimit-reset`, and a 429 pauses it until the reset too (or `Retry-After`, or
//!   1 s), so **no request is sent inside the reset window**. Reads wait up to
//!   `max_rate_limit_wait` for budget; order submits never wait (an order released seconds
//!   late is a different order) and fail with `RateLimited`, nothing sent.
//! * **Errors** ([`CoinbaseHooks::parse_error`]): plain-text 401 → `Unauthorized`, 403 →
//!   `Forbidden` (missing scopes), other JSON bodies → `Api`; business rejects of an order
//!   (HTTP 200, `success:false`) → `Rejected` with the most specific venue code.
//! * **Retries**: only idempotent GETs, with jittered backoff, on transport errors, 5xx
//!   and 429 (after the pause). [`CoinbaseHttpClient::create_order`] and
//!   [`CoinbaseHttpClient::batch_cancel`] are sent once.
//!
//! Concurrency: the client is a cheap `Clone` over an `Arc`; the pipeline, limiters,
//! breakers and clock are internally synchronised, so any number of tasks may call it.

use std::sync::Arc;
use std::time::Duration;

use gekko_core::Side;
use gekko_net::http::retry_after;
use gekko_net::{
    Charge, CircuitBreaker, ClockOffset, ClockSample, LimiterId, RequestAuth, RestConfig,
    RestError, RestPipeline, RestRequest, RetryPolicy, StatusClass, VenueHooks, Wait,
    WeightLimiter, retry_idempotent,
};
use gekko_venue::ClockReport;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::models::{
    self, Account, AccountsPage, ApiErrorBody, BatchCancelResponse, BestBidAsk, CancelResult,
    CoinbaseFill, CreateOrderResponse, CreateOrderSuccess, FillsPage, GetOrder, OrdersPage,
    Product, ProductBook, ProductsList, ServerTime,
};
use crate::auth::{CdpJwtSigner, CoinbaseRequestAuth};
use crate::common::CoinbaseSide;
use crate::common::consts::{self, Endpoint, Family};
use crate::config::CoinbaseConfig;
use crate::error::{CoinbaseError, reject_reason};

pub use gekko_net::rest::{METRIC_HTTP_429, METRIC_REQUEST_SECONDS, METRIC_REQUESTS};

/// The private (JWT) limiter, index into the pipeline's limiters.
const PRIVATE: LimiterId = LimiterId(0);
/// The public limiter.
const PUBLIC: LimiterId = LimiterId(1);
/// The longest pause a rate-limit header may impose (a guard against a garbage reset).
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// Above this, `x-ratelimit-reset` is an epoch second, below it a number of seconds.
const EPOCH_THRESHOLD: i64 = 1_000_000_000;

/// An `order_configuration` (reference 1.3): exactly one per order. Sizes and prices go
/// on the wire as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderConfiguration {
    /// `market_market_ioc` by base size.
    MarketIoc {
        /// Base quantity.
        base_size: Decimal,
    },
    /// `market_market_ioc` by quote size (the amount to spend, for buys).
    MarketIocQuote {
        /// Quote amount.
        quote_size: Decimal,
    },
    /// `limit_limit_gtc`.
    LimitGtc {
        /// Base quantity.
        base_size: Decimal,
        /// Limit price.
        limit_price: Decimal,
        /// Refuse rather than take liquidity.
        post_only: bool,
    },
    /// `limit_limit_gtd`.
    LimitGtd {
        /// Base quantity.
        base_size: Decimal,
        /// Limit price.
        limit_price: Decimal,
        /// RFC 3339 end time.
        end_time: String,
        /// Refuse rather than take liquidity.
        post_only: bool,
    },
    /// `limit_limit_fok`.
    LimitFok {
        /// Base quantity.
        base_size: Decimal,
        /// Limit price.
        limit_price: Decimal,
    },
    /// `sor_limit_ioc` (smart-order-routed limit IOC).
    SorLimitIoc {
        /// Base quantity.
        base_size: Decimal,
        /// Limit price.
        limit_price: Decimal,
    },
}

fn s(d: Decimal) -> String {
    d.normalize().to_string()
}

impl OrderConfiguration {
    /// The configuration key (`limit_limit_gtc`).
    #[must_use]
    pub const fn key(&self) -> &'static str {
        match self {
            Self::MarketIoc { .. } | Self::MarketIocQuote { .. } => "market_market_ioc",
            Self::LimitGtc { .. } => "limit_limit_gtc",
            Self::LimitGtd { .. } => "limit_limit_gtd",
            Self::LimitFok { .. } => "limit_limit_fok",
            Self::SorLimitIoc { .. } => "sor_limit_ioc",
        }
    }

    /// `{"<key>": {...}}`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let params = match self {
            Self::MarketIoc { base_size } => json!({"base_size": s(*base_size)}),
            Self::MarketIocQuote { quote_size } => json!({"quote_size": s(*quote_size)}),
            Self::LimitGtc {
                base_size,
                limit_price,
                post_only,
            } => {
                json!({"base_size": s(*base_size), "limit_price": s(*limit_price), "post_only": post_only})
            }
            Self::LimitGtd {
                base_size,
                limit_price,
                end_time,
                post_only,
            } => {
                json!({"base_size": s(*base_size), "limit_price": s(*limit_price), "end_time": end_time, "post_only": post_only})
            }
            Self::LimitFok {
                base_size,
                limit_price,
            }
            | Self::SorLimitIoc {
                base_size,
                limit_price,
            } => json!({"base_size": s(*base_size), "limit_price": s(*limit_price)}),
        };
        json!({ self.key(): params })
    }
}

/// A new order, in Coinbase terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// gekko's deterministic client order id (the venue's idempotency key).
    pub client_order_id: String,
    /// `BTC-USD`.
    pub product_id: String,
    /// Side.
    pub side: Side,
    /// How it is priced and how long it lives.
    pub config: OrderConfiguration,
}

impl NewOrder {
    /// The JSON body of `POST /orders`.
    #[must_use]
    pub fn body(&self) -> String {
        json!({
            "client_order_id": self.client_order_id,
            "product_id": self.product_id,
            "side": CoinbaseSide::from_core(self.side),
            "order_configuration": self.config.to_json(),
        })
        .to_string()
    }
}

/// Filters of `GET /orders/historical/batch` (repeated keys, reference 1.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// `product_ids`.
    pub product_ids: Vec<String>,
    /// `order_status` (`OPEN`, `FILLED`, ...).
    pub order_status: Vec<String>,
    /// `order_ids`.
    pub order_ids: Vec<String>,
    /// `order_side`.
    pub side: Option<Side>,
}

impl OrderFilter {
    fn append(&self, q: &mut Query) {
        for p in &self.product_ids {
            q.push("product_ids", p);
        }
        for st in &self.order_status {
            q.push("order_status", st);
        }
        for id in &self.order_ids {
            q.push("order_ids", id);
        }
        if let Some(side) = self.side {
            q.push("order_side", CoinbaseSide::from_core(side));
        }
    }
}

/// The Coinbase half of the REST pipeline: rate-limit headers, 429, error bodies.
#[derive(Debug, Clone)]
pub struct CoinbaseHooks {
    /// The venue clock, to turn an epoch-second `x-ratelimit-reset` into a wait.
    clock: Arc<ClockOffset>,
}

impl CoinbaseHooks {
    /// Hooks reading the venue time from `clock`.
    #[must_use]
    pub fn new(clock: Arc<ClockOffset>) -> Self {
        Self { clock }
    }

    /// How long until `x-ratelimit-reset`, when the header is there and parses: an epoch
    /// second (venue clock) or, for small values, a number of seconds. Capped at 60 s.
    #[must_use]
    pub fn reset_wait(&self, headers: &HeaderMap) -> Option<Duration> {
        let v: i64 = headers
            .get(consts::HEADER_RATELIMIT_RESET)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let ms = if v > EPOCH_THRESHOLD {
            v.checked_mul(1000)?.checked_sub(self.clock.now_ms())?
        } else {
            v.checked_mul(1000)?
        };
        let ms = u64::try_from(ms).ok()?;
        Some(Duration::from_millis(ms).min(MAX_PAUSE))
    }
}

fn header_i64(headers: &HeaderMap, name: &str) -> Option<i64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl VenueHooks for CoinbaseHooks {
    type Error = CoinbaseError;

    /// `x-ratelimit-remaining: 0` pauses the limiters this request was charged to until
    /// the reset; `limit - remaining` corrects a limiter whose limit matches the header.
    fn observe_usage(
        &self,
        request: &RestRequest<'_>,
        headers: &HeaderMap,
        limiters: &[WeightLimiter],
    ) {
        let Some(remaining) = header_i64(headers, consts::HEADER_RATELIMIT_REMAINING) else {
            return;
        };
        let limit = header_i64(headers, consts::HEADER_RATELIMIT_LIMIT);
        for c in request.charges {
            let Some(l) = limiters.get(c.limiter.0) else {
                continue;
            };
            if let Some(limit) = limit
                && i64::from(l.limit()) == limit
                && let Ok(used) = u32::try_from(limit.saturating_sub(remaining))
            {
                l.observe_used(used);
            }
            if remaining <= 0
                && let Some(wait) = self.reset_wait(headers)
                && !wait.is_zero()
            {
                l.pause_for(wait);
            }
        }
    }

    fn classify(&self, request: &RestRequest<'_>, status: u16, headers: &HeaderMap) -> StatusClass {
        match status {
            200..=299 => StatusClass::Success,
            429 => StatusClass::RateLimited {
                retry_after: retry_after(headers)
                    .or_else(|| self.reset_wait(headers).filter(|d| !d.is_zero()))
                    .unwrap_or(Duration::from_secs(1)),
                pause: request.charges.iter().map(|c| c.limiter).collect(),
            },
            500.. => StatusClass::ServerError,
            _ => StatusClass::Rejected,
        }
    }

    fn parse_error(&self, status: u16, _headers: &HeaderMap, body: &str) -> Option<CoinbaseError> {
        let payload = gekko_net::http::truncate(body, gekko_net::http::MAX_ERROR_PAYLOAD);
        if status == 401 {
            return Some(CoinbaseError::Unauthorized {
                body: payload.trim().to_owned(),
            });
        }
        let parsed = serde_json::from_str::<ApiErrorBody>(body).ok();
        if status == 403 {
            let b = parsed.unwrap_or_else(|| ApiErrorBody {
                message: payload.trim().to_owned(),
                ..ApiErrorBody::default()
            });
            return Some(CoinbaseError::Forbidden {
                message: if b.message.is_empty() {
                    b.error
                } else {
                    b.message
                },
                details: b.error_details,
            });
        }
        let b = parsed.filter(|b| !b.error.is_empty())?;
        Some(CoinbaseError::Api {
            status,
            code: b.error,
            message: if b.message.is_empty() {
                b.error_details
            } else {
                b.message
            },
            payload: payload.to_owned(),
        })
    }
}

#[derive(Debug)]
struct Inner {
    pipeline: RestPipeline<CoinbaseHooks>,
    auth: CoinbaseRequestAuth,
    clock: Arc<ClockOffset>,
    retry: RetryPolicy,
    max_rate_limit_wait: Duration,
    clock_samples: usize,
    page_size: u32,
    /// When a 401 last made the client resync its clock (see [`CoinbaseHttpClient::send`]).
    last_auth_resync: std::sync::Mutex<Option<tokio::time::Instant>>,
}

/// After a 401 resynced the clock, further 401s within this long are reported as they
/// are: a key the venue does not know must not turn every call into three.
const AUTH_RESYNC_EVERY: Duration = Duration::from_secs(30);

/// The raw Coinbase REST client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CoinbaseHttpClient {
    inner: Arc<Inner>,
}

impl CoinbaseHttpClient {
    /// Builds the client: validates `config`, builds the TLS client trusting
    /// `extra_roots_pem` besides the normal roots, and the signer on the venue clock.
    ///
    /// # Errors
    /// [`CoinbaseError::Config`] with every problem of the config, or when the HTTP
    /// client cannot be built.
    pub fn new(config: &CoinbaseConfig) -> Result<Self, CoinbaseError> {
        config.validate().map_err(CoinbaseError::Config)?;
        let mut builder = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .user_agent(concat!("gekko-coinbase/", env!("CARGO_PKG_VERSION")));
        let mut roots = Vec::new();
        for (i, pem) in config.extra_roots_pem.iter().enumerate() {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| CoinbaseError::Config(vec![format!("extra_roots_pem[{i}]: {e}")]))?;
            roots.extend(certs);
        }
        if !roots.is_empty() {
            builder = builder.tls_certs_merge(roots);
        }
        let http = builder
            .build()
            .map_err(|e| CoinbaseError::Config(vec![format!("HTTP client: {e}")]))?;
        let clock = Arc::new(ClockOffset::new(consts::VENUE, config.clock_samples.max(1)));
        let signer = CdpJwtSigner::from_shared(Arc::clone(&config.key))
            .with_clock(Arc::clone(&clock) as Arc<dyn crate::auth::jwt::JwtClock>)
            .with_skew_allowance(config.jwt_skew)
            .map_err(|e| CoinbaseError::Config(vec![format!("jwt_skew: {e}")]))?;
        let limiter = |rate: u32, name: &str| {
            WeightLimiter::new(rate, Duration::from_secs(1), 0.9).with_labels(consts::VENUE, name)
        };
        let pipeline = RestPipeline::new(
            http,
            RestConfig {
                venue: consts::VENUE,
                families: Family::ALL.iter().map(|f| f.as_str()).collect(),
                limiters: vec![
                    limiter(config.private_rate_per_s, "private"),
                    limiter(config.public_rate_per_s, "public"),
                ],
                base_url: config.rest_base.clone(),
                fallback_base_url: config.rest_fallback.clone(),
                breaker_threshold: config.breaker_threshold,
                breaker_cooldown: config.breaker_cooldown,
                max_rate_limit_wait: config.max_rate_limit_wait,
            },
            CoinbaseHooks::new(Arc::clone(&clock)),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                pipeline,
                auth: CoinbaseRequestAuth::new(Arc::new(signer)),
                clock,
                retry: config.retry,
                max_rate_limit_wait: config.max_rate_limit_wait,
                clock_samples: config.clock_samples.max(1),
                page_size: config.page_size.max(1),
                last_auth_resync: std::sync::Mutex::new(None),
            }),
        })
    }

    /// The venue clock offset the JWTs are built on.
    #[must_use]
    pub fn clock(&self) -> &Arc<ClockOffset> {
        &self.inner.clock
    }

    /// The JWT signer (shared with the websocket subscribe messages).
    #[must_use]
    pub fn signer(&self) -> &Arc<CdpJwtSigner> {
        self.inner.auth.signer()
    }

    /// The REST pipeline every call goes through.
    #[must_use]
    pub fn pipeline(&self) -> &RestPipeline<CoinbaseHooks> {
        &self.inner.pipeline
    }

    /// The private (JWT) request limiter.
    #[must_use]
    pub fn private_limiter(&self) -> &WeightLimiter {
        self.inner.pipeline.limiter(PRIVATE)
    }

    /// The public request limiter.
    #[must_use]
    pub fn public_limiter(&self) -> &WeightLimiter {
        self.inner.pipeline.limiter(PUBLIC)
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

    /// The circuit breaker of `family` on the fallback host, when one is configured
    /// ([`CoinbaseConfig::rest_fallback`]).
    #[must_use]
    pub fn fallback_breaker(&self, family: Family) -> Option<&CircuitBreaker> {
        self.inner.pipeline.fallback_breaker(family.index())
    }

    // ------------------------------------------------------------------ market

    /// `GET /time`.
    ///
    /// # Errors
    /// See [`CoinbaseError`].
    pub async fn server_time(&self) -> Result<ServerTime, CoinbaseError> {
        let body = self
            .get(&consts::TIME, consts::TIME.path, String::new())
            .await?;
        models::parse(&body)
    }

    /// Samples `/time` `clock_samples` times and sets the venue clock (used for every
    /// JWT) to the median offset.
    ///
    /// # Errors
    /// The last error when no sample could be taken; the offset is then unchanged.
    pub async fn sync_clock(&self) -> Result<ClockReport, CoinbaseError> {
        let clock = &self.inner.clock;
        let mut fresh = Vec::with_capacity(self.inner.clock_samples);
        let mut last_err = None;
        for _ in 0..self.inner.clock_samples {
            let sent = gekko_net::clock::local_now_ms();
            let r = self
                .send_once(&consts::TIME, consts::TIME.path, "", "", Wait::Bounded)
                .await
                .and_then(|b| models::parse::<ServerTime>(&b));
            let recv = gekko_net::clock::local_now_ms();
            match r {
                Ok(t) => fresh.push(ClockSample::from_times(sent, t.epoch_millis, recv)),
                Err(e) => last_err = Some(e),
            }
        }
        if fresh.is_empty() {
            return Err(last_err.unwrap_or_else(|| {
                CoinbaseError::Config(vec!["clock_samples must be positive".to_owned()])
            }));
        }
        // Old samples may predate a clock step; only fresh ones count.
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
            "Coinbase clock synced"
        );
        Ok(report)
    }

    /// `GET /products`, for the given product ids (all when empty).
    ///
    /// # Errors
    /// See [`CoinbaseError`].
    pub async fn products(&self, product_ids: &[String]) -> Result<Vec<Product>, CoinbaseError> {
        let mut q = Query::default();
        for p in product_ids {
            q.push("product_ids", p);
        }
        let body = self
            .get(&consts::PRODUCTS, consts::PRODUCTS.path, q.finish())
            .await?;
        Ok(models::parse::<ProductsList>(&body)?.products)
    }

    /// `GET /products/{product_id}`.
    ///
    /// # Errors
    /// See [`CoinbaseError`]; `Api` with status 404 for an unknown product.
    pub async fn product(&self, product_id: &str) -> Result<Product, CoinbaseError> {
        let path = consts::PRODUCT.with_id(&encode_segment(product_id));
        let body = self.get(&consts::PRODUCT, &path, String::new()).await?;
        models::parse(&body)
    }

    /// `GET /best_bid_ask?product_ids=..` (every product when empty).
    ///
    /// # Errors
    /// See [`CoinbaseError`].
    pub async fn best_bid_ask(&self, product_ids: &[String]) -> Result<BestBidAsk, CoinbaseError> {
        let mut q = Query::default();
        for p in product_ids {
            q.push("product_ids", p);
        }
        let body = self
            .get(&consts::BEST_BID_ASK, consts::BEST_BID_ASK.path, q.finish())
            .await?;
        models::parse(&body)
    }

    /// `GET /product_book?product_id=..&limit=..` (`limit` 0: the whole book).
    ///
    /// # Errors
    /// See [`CoinbaseError`].
    pub async fn product_book(
        &self,
        product_id: &str,
        limit: u32,
    ) -> Result<ProductBook, CoinbaseError> {
        let mut q = Query::default();
        q.push("product_id", product_id);
        if limit > 0 {
            q.push("limit", &limit.to_string());
        }
        let body = self
            .get(&consts::PRODUCT_BOOK, consts::PRODUCT_BOOK.path, q.finish())
            .await?;
        models::parse(&body)
    }

    // ------------------------------------------------------------------ accounts

    /// One page of `GET /accounts`.
    ///
    /// # Errors
    /// See [`CoinbaseError`]; `Unauthorized` when the JWT is refused.
    pub async fn accounts_page(
        &self,
        limit: u32,
        cursor: &str,
    ) -> Result<AccountsPage, CoinbaseError> {
        let mut q = Query::default();
        q.push("limit", &limit.to_string());
        if !cursor.is_empty() {
            q.push("cursor", cursor);
        }
        let body = self
            .get(&consts::ACCOUNTS, consts::ACCOUNTS.path, q.finish())
            .await?;
        models::parse(&body)
    }

    /// Every account, following the cursor over all pages.
    ///
    /// # Errors
    /// See [`CoinbaseError`]; `Malformed` when the venue keeps paging past
    /// [`consts::MAX_PAGES`] or repeats a cursor.
    pub async fn accounts(&self) -> Result<Vec<Account>, CoinbaseError> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        for _ in 0..consts::MAX_PAGES {
            let page = self.accounts_page(self.inner.page_size, &cursor).await?;
            out.extend(page.accounts);
            if !page.has_next || page.cursor.is_empty() {
                return Ok(out);
            }
            if page.cursor == cursor {
                return Err(CoinbaseError::malformed(
                    "accounts: the cursor did not advance",
                    &cursor,
                ));
            }
            cursor = page.cursor;
        }
        Err(CoinbaseError::malformed(
            "accounts: too many pages",
            &cursor,
        ))
    }

    // ------------------------------------------------------------------ orders

    /// `POST /orders`. **Sent once, never retried**, and never waits for rate-limit budget.
    /// A `success:false` answer is [`CoinbaseError::Rejected`] with the venue's code.
    ///
    /// # Errors
    /// See [`CoinbaseError::outcome_unknown`] for which errors leave the order in flight.
    pub async fn create_order(
        &self,
        order: &NewOrder,
    ) -> Result<CreateOrderSuccess, CoinbaseError> {
        let body = order.body();
        let resp = self
            .send(
                &consts::CREATE_ORDER,
                consts::CREATE_ORDER.path,
                "",
                &body,
                Wait::Never,
            )
            .await?;
        let parsed: CreateOrderResponse = models::parse(&resp)?;
        if parsed.success {
            return parsed.success_response.ok_or_else(|| {
                CoinbaseError::malformed("success without success_response", &resp)
            });
        }
        let (code, message) = parsed.failure();
        Err(CoinbaseError::Rejected {
            reason: reject_reason(&code),
            code,
            message,
            payload: gekko_net::http::truncate(&resp, gekko_net::http::MAX_ERROR_PAYLOAD)
                .to_owned(),
        })
    }

    /// `POST /orders/batch_cancel` for up to [`consts::MAX_BATCH_CANCEL`] ids (more are
    /// sent in several calls). Not retried here: the caller knows whether a repeat is
    /// wanted.
    ///
    /// # Errors
    /// See [`CoinbaseError`].
    pub async fn batch_cancel(
        &self,
        order_ids: &[String],
    ) -> Result<Vec<CancelResult>, CoinbaseError> {
        let mut out = Vec::with_capacity(order_ids.len());
        for chunk in order_ids.chunks(consts::MAX_BATCH_CANCEL) {
            let body = json!({ "order_ids": chunk }).to_string();
            let resp = self
                .send(
                    &consts::BATCH_CANCEL,
                    consts::BATCH_CANCEL.path,
                    "",
                    &body,
                    Wait::Bounded,
                )
                .await?;
            out.extend(models::parse::<BatchCancelResponse>(&resp)?.results);
        }
        Ok(out)
    }

    /// `GET /orders/historical/{order_id}`: the order as JSON, for
    /// [`crate::common::order_update`].
    ///
    /// # Errors
    /// See [`CoinbaseError`]; `Api` 404 when the venue does not know the order.
    pub async fn order(&self, order_id: &str) -> Result<Value, CoinbaseError> {
        let path = consts::ORDER.with_id(&encode_segment(order_id));
        let body = self.get(&consts::ORDER, &path, String::new()).await?;
        Ok(models::parse::<GetOrder>(&body)?.order)
    }

    /// One page of `GET /orders/historical/batch`.
    ///
    /// # Errors
    /// See [`CoinbaseError`].
    pub async fn orders_page(
        &self,
        filter: &OrderFilter,
        cursor: &str,
    ) -> Result<OrdersPage, CoinbaseError> {
        let mut q = Query::default();
        filter.append(&mut q);
        q.push("limit", &self.inner.page_size.to_string());
        if !cursor.is_empty() {
            q.push("cursor", cursor);
        }
        let body = self
            .get(&consts::ORDERS_BATCH, consts::ORDERS_BATCH.path, q.finish())
            .await?;
        models::parse(&body)
    }

    /// Every order matching `filter`, over all pages.
    ///
    /// # Errors
    /// See [`CoinbaseError`].
    pub async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<Value>, CoinbaseError> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        for _ in 0..consts::MAX_PAGES {
            let page = self.orders_page(filter, &cursor).await?;
            out.extend(page.orders);
            if !page.has_next || page.cursor.is_empty() {
                return Ok(out);
            }
            if page.cursor == cursor {
                return Err(CoinbaseError::malformed(
                    "orders: the cursor did not advance",
                    &cursor,
                ));
            }
            cursor = page.cursor;
        }
        Err(CoinbaseError::malformed("orders: too many pages", &cursor))
    }

    /// Every fill of the given orders and products (all when both are empty), newest
    /// first, over all pages.
    ///
    /// # Errors
    /// See [`CoinbaseError`].
    pub async fn fills(
        &self,
        order_ids: &[String],
        product_ids: &[String],
    ) -> Result<Vec<CoinbaseFill>, CoinbaseError> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        for _ in 0..consts::MAX_PAGES {
            let mut q = Query::default();
            for id in order_ids {
                q.push("order_ids", id);
            }
            for p in product_ids {
                q.push("product_ids", p);
            }
            q.push("limit", &self.inner.page_size.to_string());
            if !cursor.is_empty() {
                q.push("cursor", &cursor);
            }
            let body = self
                .get(&consts::FILLS, consts::FILLS.path, q.finish())
                .await?;
            let page: FillsPage = models::parse(&body)?;
            out.extend(page.fills);
            if page.cursor.is_empty() {
                return Ok(out);
            }
            if page.cursor == cursor {
                return Err(CoinbaseError::malformed(
                    "fills: the cursor did not advance",
                    &cursor,
                ));
            }
            cursor = page.cursor;
        }
        Err(CoinbaseError::malformed("fills: too many pages", &cursor))
    }

    // ------------------------------------------------------------------ machinery

    /// A GET, retried on transient failures (idempotent endpoints only). A 429 is
    /// retried only when its pause fits in `max_rate_limit_wait`: the retry then waits
    /// in the limiter until the reset, so nothing is sent inside the window.
    async fn get(&self, ep: &Endpoint, path: &str, query: String) -> Result<String, CoinbaseError> {
        debug_assert!(ep.idempotent);
        let max_wait = self.inner.max_rate_limit_wait;
        let retryable = |e: &CoinbaseError| {
            e.is_retryable()
                && !matches!(e, CoinbaseError::CircuitOpen { .. })
                && e.retry_after().is_none_or(|d| d <= max_wait)
        };
        retry_idempotent(&self.inner.retry, retryable, || {
            self.send(ep, path, &query, "", Wait::Bounded)
        })
        .await
    }

    /// One HTTP exchange through the pipeline, plus one repair: a private request
    /// refused with 401 while the local clock may have drifted from the venue's (the
    /// JWT's `nbf`/`exp` window is only 120 s wide) resyncs the clock from `/time` and is
    /// sent once more with a fresh JWT.
    ///
    /// Resending is safe for every endpoint, order creation included: a 401 means the
    /// venue refused the token before looking at the request, so nothing was executed.
    /// At most one resync per [`AUTH_RESYNC_EVERY`], so a key the venue does not know
    /// costs one extra round trip, not a storm.
    async fn send(
        &self,
        ep: &Endpoint,
        path: &str,
        query: &str,
        body: &str,
        wait: Wait,
    ) -> Result<String, CoinbaseError> {
        let first = self.send_once(ep, path, query, body, wait).await;
        if !(ep.private && matches!(first, Err(CoinbaseError::Unauthorized { .. }))) {
            return first;
        }
        let due = {
            let mut last = gekko_core::sync::lock(&self.inner.last_auth_resync);
            let now = tokio::time::Instant::now();
            let due = last.is_none_or(|t| now.duration_since(t) >= AUTH_RESYNC_EVERY);
            if due {
                *last = Some(now);
            }
            due
        };
        if !due {
            return first;
        }
        let before = self.inner.clock.offset_ms();
        match self.sync_clock().await {
            Ok(report) => {
                tracing::warn!(
                    endpoint = ep.name,
                    offset_before_ms = before,
                    offset_ms = report.offset_ms,
                    "Coinbase answered 401: clock resynced, request sent once more"
                );
                metrics::counter!("gekko_venue_auth_resyncs_total", "venue" => consts::VENUE)
                    .increment(1);
                self.send_once(ep, path, query, body, wait).await
            }
            Err(e) => {
                tracing::warn!(error = %e, "Coinbase answered 401 and the clock resync failed");
                first
            }
        }
    }

    /// One HTTP exchange through the pipeline, with this endpoint's charge and auth.
    async fn send_once(
        &self,
        ep: &Endpoint,
        path: &str,
        query: &str,
        body: &str,
        wait: Wait,
    ) -> Result<String, CoinbaseError> {
        let inner = &*self.inner;
        let charges = [Charge {
            limiter: if ep.private { PRIVATE } else { PUBLIC },
            weight: 1,
            wait,
        }];
        let auth: Option<&dyn RequestAuth> = ep.private.then_some(&inner.auth as &dyn RequestAuth);
        let mut headers = HeaderMap::new();
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
            auth,
        };
        match inner.pipeline.send(&request).await {
            Ok(r) => Ok(r.body),
            Err(e) => Err(match e {
                RestError::Banned { retry_after } | RestError::RateLimited { retry_after } => {
                    CoinbaseError::RateLimited { retry_after }
                }
                RestError::CircuitOpen {
                    family,
                    retry_after,
                } => CoinbaseError::CircuitOpen {
                    family,
                    retry_after,
                },
                RestError::Net(n) => CoinbaseError::Net(n),
                RestError::Venue(v) => v,
            }),
        }
    }
}

/// A query string under construction. Kept as pairs and encoded at the end, because
/// `form_urlencoded::Serializer` is not `Send` and queries are built in async calls.
#[derive(Debug, Default)]
struct Query(Vec<(&'static str, String)>);

impl Query {
    fn push(&mut self, key: &'static str, value: &str) {
        self.0.push((key, value.to_owned()));
    }

    fn finish(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

/// Percent-encodes one path segment (a product or order id from the caller).
fn encode_segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_bodies_carry_decimal_strings_and_one_configuration() {
        let o = NewOrder {
            client_order_id: "gk1".into(),
            product_id: "BTC-USD".into(),
            side: Side::Sell,
            config: OrderConfiguration::LimitGtc {
                base_size: Decimal::new(1_000, 6),
                limit_price: Decimal::new(10_000_000, 2),
                post_only: false,
            },
        };
        let v: Value = serde_json::from_str(&o.body()).unwrap();
        assert_eq!(
            v,
            json!({"client_order_id": "gk1", "product_id": "BTC-USD", "side": "SELL",
                "order_configuration": {"limit_limit_gtc": {"base_size": "0.001", "limit_price": "100000", "post_only": false}}})
        );
        for (c, key) in [
            (
                OrderConfiguration::MarketIoc {
                    base_size: Decimal::ONE,
                },
                "market_market_ioc",
            ),
            (
                OrderConfiguration::MarketIocQuote {
                    quote_size: Decimal::TEN,
                },
                "market_market_ioc",
            ),
            (
                OrderConfiguration::LimitFok {
                    base_size: Decimal::ONE,
                    limit_price: Decimal::TEN,
                },
                "limit_limit_fok",
            ),
            (
                OrderConfiguration::SorLimitIoc {
                    base_size: Decimal::ONE,
                    limit_price: Decimal::TEN,
                },
                "sor_limit_ioc",
            ),
            (
                OrderConfiguration::LimitGtd {
                    base_size: Decimal::ONE,
                    limit_price: Decimal::TEN,
                    end_time: "2030-01-01T00:00:00Z".into(),
                    post_only: true,
                },
                "limit_limit_gtd",
            ),
        ] {
            let j = c.to_json();
            let obj = j.as_object().unwrap();
            assert_eq!(obj.len(), 1);
            assert!(obj.contains_key(key), "{j}");
            for v in obj[key].as_object().unwrap().values() {
                assert!(v.is_string() || v.is_boolean(), "{j}");
            }
        }
    }

    #[test]
    fn reset_header_is_an_epoch_or_a_delay() {
        let clock = Arc::new(ClockOffset::new("t", 3));
        let hooks = CoinbaseHooks::new(Arc::clone(&clock));
        let mut h = HeaderMap::new();
        h.insert(
            consts::HEADER_RATELIMIT_RESET,
            HeaderValue::from_static("2"),
        );
        assert_eq!(hooks.reset_wait(&h), Some(Duration::from_secs(2)));
        let in_3s = (clock.now_ms() / 1000 + 3).to_string();
        h.insert(
            consts::HEADER_RATELIMIT_RESET,
            HeaderValue::from_str(&in_3s).unwrap(),
        );
        let w = hooks.reset_wait(&h).unwrap();
        assert!(
            w > Duration::from_secs(1) && w <= Duration::from_secs(3),
            "{w:?}"
        );
        h.insert(
            consts::HEADER_RATELIMIT_RESET,
            HeaderValue::from_static("1000000001"),
        );
        assert_eq!(hooks.reset_wait(&h), None, "a reset in the past is no wait");
        h.insert(
            consts::HEADER_RATELIMIT_RESET,
            HeaderValue::from_static("9999"),
        );
        assert_eq!(hooks.reset_wait(&h), Some(MAX_PAUSE));
        h.insert(
            consts::HEADER_RATELIMIT_RESET,
            HeaderValue::from_static("soon"),
        );
        assert_eq!(hooks.reset_wait(&h), None);
    }

    #[test]
    fn error_bodies_are_classified() {
        let hooks = CoinbaseHooks::new(Arc::new(ClockOffset::new("t", 3)));
        let h = HeaderMap::new();
        assert!(matches!(
            hooks.parse_error(401, &h, "Unauthorized"),
            Some(CoinbaseError::Unauthorized { ref body }) if body == "Unauthorized"
        ));
        assert!(matches!(
            hooks.parse_error(403, &h, r#"{"error":"PERMISSION_DENIED","message":"denied","error_details":"Missing required scopes"}"#),
            Some(CoinbaseError::Forbidden { ref details, .. }) if details == "Missing required scopes"
        ));
        assert!(matches!(
            hooks.parse_error(404, &h, r#"{"error":"NOT_FOUND","message":"no such order"}"#),
            Some(CoinbaseError::Api { status: 404, ref code, .. }) if code == "NOT_FOUND"
        ));
        assert!(
            hooks
                .parse_error(502, &h, "<html>bad gateway</html>")
                .is_none()
        );
    }
}
