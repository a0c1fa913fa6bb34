//! [`RestPipeline`]: the one path every venue REST request takes.
//!
//! The defensive steps around a REST call are the same for every venue; only a few
//! details differ (which headers report usage, which statuses mean "slow down" or "you are
//! banned", what an error body looks like). So the steps live here, once, and a venue
//! states its details through [`VenueHooks`]:
//!
//! 1. **Ban gate.** While a ban (Binance's 418) is in force nothing is sent.
//! 2. **Circuit breaker** of the request's endpoint family on the primary base URL; when it
//!    is open, the fallback base URL (if configured) is tried with its own breakers, so a
//!    failing host is bypassed per family and probed again after the cooldown.
//! 3. **Rate limits.** Each [`Charge`] reserves weight in one of the pipeline's
//!    [`WeightLimiter`]s *before* sending: [`Wait::Bounded`] waits up to the configured
//!    maximum, [`Wait::Never`] fails at once (an order released seconds late is a
//!    different order).
//! 4. **Auth hook** ([`RequestAuth`]), after the host is chosen and budget is granted, so
//!    a signed timestamp does not age in a queue and a per-request JWT names the right host.
//! 5. **Send**, with latency and outcome metrics.
//! 6. **Usage feedback**: [`VenueHooks::observe_usage`] corrects the limiters from headers.
//! 7. **Status classification** ([`VenueHooks::classify`]): success, a healthy rejection,
//!    a server error (counts against the breaker), a rate limit (pauses limiters), or a ban
//!    (holds every request and forces every breaker open until it ends). Error bodies go
//!    through [`VenueHooks::parse_error`].
//!
//! Retries are **not** here: whether a call may be repeated depends on what it does, so
//! the venue client wraps idempotent calls in [`retry_idempotent`](crate::retry_idempotent)
//! and never an order submit. The same goes for venue-specific recovery such as Binance's
//! `-1021` clock resync.
//!
//! Concurrency: the pipeline is `Sync`; limiters and breakers are internally synchronised,
//! and the ban deadline sits behind a `std::sync::Mutex` held for a few instructions,
//! never across an `.await`.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use tokio::time::Instant;

use crate::auth::{OutgoingRequest, RequestAuth};
use crate::breaker::{BreakerPermit, CircuitBreaker};
use crate::http::{MAX_ERROR_PAYLOAD, NetError, retry_after, truncate};
use crate::limiter::WeightLimiter;
use crate::lock;

/// Histogram: request latency; labels `venue`, `endpoint`.
pub const METRIC_REQUEST_SECONDS: &str = "gekko_venue_request_seconds";
/// Counter: requests by outcome; labels `venue`, `endpoint`, `outcome`
/// (`2xx`, `4xx`, `5xx`, `429`, `418`, `transport`).
pub const METRIC_REQUESTS: &str = "gekko_venue_requests_total";
/// Counter: rate-limit answers (429); labels `venue`, `endpoint`.
pub const METRIC_HTTP_429: &str = "gekko_venue_http_429_total";
/// Counter: ban answers (418); labels `venue`, `endpoint`.
pub const METRIC_HTTP_418: &str = "gekko_venue_http_418_total";

/// Index of a limiter in [`RestConfig::limiters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LimiterId(pub usize);

/// How long a charge may wait for rate-limit budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Up to [`RestConfig::max_rate_limit_wait`].
    Bounded,
    /// Not at all (order submits).
    Never,
}

/// Weight a request reserves in one limiter before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    /// Which limiter.
    pub limiter: LimiterId,
    /// How much.
    pub weight: u32,
    /// Whether to wait for budget.
    pub wait: Wait,
}

/// One request through the pipeline.
#[derive(Debug, Clone)]
pub struct RestRequest<'a> {
    /// The `endpoint` metric label.
    pub name: &'static str,
    /// HTTP method.
    pub method: Method,
    /// Path under the base URL.
    pub path: &'a str,
    /// Encoded query string without `?` (the auth hook may append to it).
    pub query: &'a str,
    /// Body (the auth hook may append to it).
    pub body: &'a str,
    /// Extra headers.
    pub headers: HeaderMap,
    /// Index of the endpoint family in [`RestConfig::families`]: picks the breaker.
    pub family: usize,
    /// Rate-limit reservations, made in order.
    pub charges: &'a [Charge],
    /// The auth hook, if the endpoint needs one.
    pub auth: Option<&'a dyn RequestAuth>,
}

impl RestRequest<'_> {
    /// Whether the request reserves weight in `limiter` (e.g. "is this an order").
    #[must_use]
    pub fn charges(&self, limiter: LimiterId) -> bool {
        self.charges.iter().any(|c| c.limiter == limiter)
    }
}

/// A response the venue judged a success.
#[derive(Debug, Clone)]
pub struct RestResponse {
    /// HTTP status (2xx unless a hook classified otherwise).
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: String,
}

/// What a status means, as a venue's [`VenueHooks::classify`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusClass {
    /// Success: the body is returned.
    Success,
    /// The venue answered and refused: it is healthy (the breaker records a success).
    Rejected,
    /// A server-side failure: counts against the breaker.
    ServerError,
    /// Too many requests: the listed limiters pause for `retry_after`; the breaker is not
    /// told (a rate limit says nothing about health).
    RateLimited {
        /// How long to pause.
        retry_after: Duration,
        /// Which limiters pause.
        pause: Vec<LimiterId>,
    },
    /// Banned: nothing is sent until `retry_after` elapses, and every breaker is held open.
    Banned {
        /// Length of the ban.
        retry_after: Duration,
    },
}

/// The venue-specific half of the pipeline. Every method has a default that fits a venue
/// with no usage headers, 429 as its rate limit and no ban status.
pub trait VenueHooks: Send + Sync + fmt::Debug {
    /// The venue's own error, parsed from error bodies.
    type Error;

    /// Reads usage headers (e.g. `X-MBX-USED-WEIGHT-1M`) and feeds the limiters. Called on
    /// every response, before classification.
    fn observe_usage(
        &self,
        _request: &RestRequest<'_>,
        _headers: &HeaderMap,
        _limiters: &[WeightLimiter],
    ) {
    }

    /// Classifies a status. Default: 2xx success, 429 rate limit (`Retry-After`, 1 s if
    /// absent, pausing every limiter the request charged), 5xx server error, anything
    /// else a rejection.
    fn classify(&self, request: &RestRequest<'_>, status: u16, headers: &HeaderMap) -> StatusClass {
        match status {
            200..=299 => StatusClass::Success,
            429 => StatusClass::RateLimited {
                retry_after: retry_after(headers).unwrap_or(Duration::from_secs(1)),
                pause: request.charges.iter().map(|c| c.limiter).collect(),
            },
            500.. => StatusClass::ServerError,
            _ => StatusClass::Rejected,
        }
    }

    /// Parses an error body (rejections and server errors) into a venue error; `None`
    /// leaves it a [`NetError::Status`] with the payload.
    fn parse_error(&self, _status: u16, _headers: &HeaderMap, _body: &str) -> Option<Self::Error> {
        None
    }
}

/// Why the pipeline failed a request. `E` is the venue's error.
#[derive(Debug, thiserror::Error)]
pub enum RestError<E> {
    /// A ban is in force; nothing was sent.
    #[error("banned; retry in {retry_after:?}")]
    Banned {
        /// Until the ban ends.
        retry_after: Duration,
    },
    /// The family's circuit is open on every base URL; nothing was sent.
    #[error("circuit open for {family}; retry in {retry_after:?}")]
    CircuitOpen {
        /// The family name.
        family: &'static str,
        /// Until a probe is allowed.
        retry_after: Duration,
    },
    /// Refused locally for lack of budget, or the venue answered with a rate limit. The
    /// request was not executed.
    #[error("rate limited; retry in {retry_after:?}")]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// Transport failure, or an error status whose body is not a venue error.
    #[error(transparent)]
    Net(NetError),
    /// The venue's own error, from [`VenueHooks::parse_error`].
    #[error("venue error")]
    Venue(E),
}

/// How to build a [`RestPipeline`].
#[derive(Debug)]
pub struct RestConfig {
    /// `venue` metric label.
    pub venue: &'static str,
    /// Endpoint family names, each with its own breaker per base URL (`family` label).
    pub families: Vec<&'static str>,
    /// The limiters [`Charge`]s refer to by index.
    pub limiters: Vec<WeightLimiter>,
    /// Primary base URL.
    pub base_url: String,
    /// Secondary base URL, used per family while the primary's breaker is open.
    pub fallback_base_url: Option<String>,
    /// Consecutive failures that open a breaker.
    pub breaker_threshold: u32,
    /// How long an opened breaker stays open before a probe.
    pub breaker_cooldown: Duration,
    /// The longest a [`Wait::Bounded`] charge waits for budget.
    pub max_rate_limit_wait: Duration,
}

#[derive(Debug)]
struct Base {
    url: String,
    breakers: Vec<CircuitBreaker>,
}

/// The REST pipeline. See the module docs.
#[derive(Debug)]
pub struct RestPipeline<H> {
    http: reqwest::Client,
    venue: &'static str,
    families: Vec<&'static str>,
    bases: Vec<Base>,
    limiters: Vec<WeightLimiter>,
    max_rate_limit_wait: Duration,
    banned_until: Mutex<Option<Instant>>,
    hooks: H,
}

impl<H: VenueHooks> RestPipeline<H> {
    /// A pipeline sending through `http` (whose timeouts apply to every request).
    #[must_use]
    pub fn new(http: reqwest::Client, config: RestConfig, hooks: H) -> Self {
        let breakers = |suffix: &str| {
            config
                .families
                .iter()
                .map(|f| {
                    CircuitBreaker::new(
                        config.venue,
                        &format!("{f}{suffix}"),
                        config.breaker_threshold,
                        config.breaker_cooldown,
                    )
                })
                .collect::<Vec<_>>()
        };
        let mut bases = vec![Base {
            url: config.base_url.trim_end_matches('/').to_owned(),
            breakers: breakers(""),
        }];
        if let Some(f) = &config.fallback_base_url {
            bases.push(Base {
                url: f.trim_end_matches('/').to_owned(),
                breakers: breakers(":fallback"),
            });
        }
        Self {
            http,
            venue: config.venue,
            families: config.families,
            bases,
            limiters: config.limiters,
            max_rate_limit_wait: config.max_rate_limit_wait,
            banned_until: Mutex::new(None),
            hooks,
        }
    }

    /// The venue hooks.
    #[must_use]
    pub fn hooks(&self) -> &H {
        &self.hooks
    }

    /// A limiter by id.
    ///
    /// # Panics
    /// When `id` is not an index into [`RestConfig::limiters`]: ids are constants of the
    /// venue crate, so that is a programming error, not bad input.
    #[must_use]
    pub fn limiter(&self, id: LimiterId) -> &WeightLimiter {
        &self.limiters[id.0]
    }

    /// The primary base URL's breaker for family index `family`, if it exists.
    #[must_use]
    pub fn breaker(&self, family: usize) -> Option<&CircuitBreaker> {
        self.bases[0].breakers.get(family)
    }

    /// The fallback base URL's breaker for `family`, when a fallback is configured.
    #[must_use]
    pub fn fallback_breaker(&self, family: usize) -> Option<&CircuitBreaker> {
        self.bases.get(1).and_then(|b| b.breakers.get(family))
    }

    /// The base URLs, primary first.
    pub fn base_urls(&self) -> impl Iterator<Item = &str> {
        self.bases.iter().map(|b| b.url.as_str())
    }

    /// How long the current ban still lasts, if one is in force.
    #[must_use]
    pub fn ban_remaining(&self) -> Option<Duration> {
        let until = (*lock(&self.banned_until))?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }

    /// Sends one request through every step in the module docs. Never retries.
    ///
    /// # Errors
    /// [`RestError`]: `Banned`, `CircuitOpen` and local `RateLimited` mean nothing was
    /// sent; `Net` says through [`NetError::may_have_been_sent`] whether it may have been;
    /// `Venue` is the venue's verdict.
    pub async fn send(
        &self,
        request: &RestRequest<'_>,
    ) -> Result<RestResponse, RestError<H::Error>> {
        if let Some(retry_after) = self.ban_remaining() {
            return Err(RestError::Banned { retry_after });
        }
        let (base, permit) = self.pick_base(request.family)?;
        for c in request.charges {
            let Some(limiter) = self.limiters.get(c.limiter.0) else {
                return Err(RestError::Net(NetError::Request(format!(
                    "no limiter {}",
                    c.limiter.0
                ))));
            };
            match c.wait {
                Wait::Never => limiter.try_acquire(c.weight),
                Wait::Bounded => {
                    limiter
                        .acquire_within(c.weight, self.max_rate_limit_wait)
                        .await
                }
            }
            .map_err(|retry_after| RestError::RateLimited { retry_after })?;
        }

        let mut out = OutgoingRequest {
            method: request.method.clone(),
            base_url: base.to_owned(),
            path: request.path.to_owned(),
            query: request.query.to_owned(),
            body: request.body.to_owned(),
            headers: request.headers.clone(),
        };
        if let Some(auth) = request.auth {
            auth.authorize(&mut out)
                .map_err(|e| RestError::Net(e.into()))?;
        }

        let started = Instant::now();
        let outcome = match out.to_reqwest(&self.http).send().await {
            Err(e) => Err(e),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                resp.text().await.map(|body| (status, headers, body))
            }
        };
        metrics::histogram!(METRIC_REQUEST_SECONDS, "venue" => self.venue, "endpoint" => request.name)
            .record(started.elapsed().as_secs_f64());

        let (status, headers, body) = match outcome {
            Err(e) => {
                permit.failure();
                self.count(request, "transport");
                let e = NetError::from_reqwest(e);
                tracing::warn!(venue = self.venue, endpoint = request.name, error = %e, "request failed");
                return Err(RestError::Net(e));
            }
            Ok(x) => x,
        };
        self.hooks.observe_usage(request, &headers, &self.limiters);
        match self.hooks.classify(request, status, &headers) {
            StatusClass::Success => {
                permit.success();
                self.count(request, "2xx");
                Ok(RestResponse {
                    status,
                    headers,
                    body,
                })
            }
            StatusClass::RateLimited { retry_after, pause } => {
                // A rate limit says nothing about the venue's health: the permit is
                // dropped unreported.
                drop(permit);
                self.count(request, "429");
                metrics::counter!(METRIC_HTTP_429, "venue" => self.venue, "endpoint" => request.name)
                    .increment(1);
                for id in pause {
                    if let Some(l) = self.limiters.get(id.0) {
                        l.pause_for(retry_after);
                    }
                }
                tracing::warn!(venue = self.venue, endpoint = request.name, ?retry_after, status, body = %truncate(&body, 256), "rate limited");
                Err(RestError::RateLimited { retry_after })
            }
            StatusClass::Banned { retry_after } => {
                drop(permit);
                self.count(request, "418");
                metrics::counter!(METRIC_HTTP_418, "venue" => self.venue, "endpoint" => request.name)
                    .increment(1);
                self.ban_for(retry_after);
                tracing::error!(
                    venue = self.venue,
                    endpoint = request.name,
                    ban_secs = retry_after.as_secs(),
                    "banned: all requests held until the ban ends"
                );
                Err(RestError::Banned { retry_after })
            }
            class @ (StatusClass::ServerError | StatusClass::Rejected) => {
                if class == StatusClass::ServerError {
                    permit.failure();
                    self.count(request, "5xx");
                } else {
                    // The venue answered and judged the request: it is healthy.
                    permit.success();
                    self.count(request, "4xx");
                }
                Err(match self.hooks.parse_error(status, &headers, &body) {
                    Some(e) => RestError::Venue(e),
                    None => RestError::Net(NetError::Status {
                        status,
                        body: truncate(&body, MAX_ERROR_PAYLOAD).to_owned(),
                        retry_after: retry_after(&headers),
                    }),
                })
            }
        }
    }

    /// Holds every request for `d`: the ban gate, every limiter and every breaker.
    pub fn ban_for(&self, d: Duration) {
        let until = Instant::now() + d;
        {
            let mut b = lock(&self.banned_until);
            *b = Some(b.map_or(until, |x| x.max(until)));
        }
        for l in &self.limiters {
            l.ban_until(until);
        }
        for base in &self.bases {
            for br in &base.breakers {
                br.force_open_until(until);
            }
        }
    }

    /// Picks the first base URL whose breaker for `family` lets a call through.
    fn pick_base(&self, family: usize) -> Result<(&str, BreakerPermit<'_>), RestError<H::Error>> {
        let name = self.families.get(family).copied().unwrap_or("unknown");
        let mut wait: Option<Duration> = None;
        for base in &self.bases {
            let Some(breaker) = base.breakers.get(family) else {
                return Err(RestError::Net(NetError::Request(format!(
                    "no endpoint family {family}"
                ))));
            };
            match breaker.try_acquire() {
                Ok(permit) => return Ok((&base.url, permit)),
                Err(open) => {
                    wait = Some(wait.map_or(open.retry_after, |r| r.min(open.retry_after)));
                }
            }
        }
        Err(RestError::CircuitOpen {
            family: name,
            retry_after: wait.unwrap_or_default(),
        })
    }

    fn count(&self, request: &RestRequest<'_>, outcome: &'static str) {
        metrics::counter!(METRIC_REQUESTS, "venue" => self.venue, "endpoint" => request.name, "outcome" => outcome)
            .increment(1);
    }
}
