//! Venue-agnostic networking building blocks for gekko's venue crates.
//!
//! Every venue crate (Binance.US, Coinbase, OANDA) needs the same defensive plumbing around
//! its wire protocol, and the failures users of other platforms complain about most come
//! from getting this plumbing wrong: 429 storms that escalate to 418 bans, clock drift that
//! turns every signed call into `-1021`, websockets that silently stop reconnecting, and
//! retries of non-idempotent order submits that double-fill. This crate keeps those rules in
//! one place so each venue crate only states *what* it calls, not *how* to survive it:
//!
//! * [`signer`]: the [`Signer`] trait, so a mock venue and a real one sign the same way.
//! * [`limiter`]: a weight-based request limiter that honours `Retry-After` and bans.
//! * [`breaker`]: a circuit breaker per endpoint family, forced open during bans.
//! * [`retry`]: the workspace backoff (`gekko_core::backoff`), and a retry loop for idempotent calls.
//! * [`clock`]: the venue clock offset, the median of recent samples.
//! * [`auth`]: the [`RequestAuth`] hook that signs or decorates each outgoing request
//!   (query signature, per-request JWT, static bearer token, API key header).
//! * [`rest`]: the one REST pipeline (ban gate, breaker with fallback base URL, weight
//!   limiter, auth hook, send, metrics, usage feedback, status classification), with the
//!   venue's details behind [`VenueHooks`].
//! * [`stream`]: the supervisor shared by every long-lived stream (reconnect, backoff,
//!   silence watchdog) and the per-session [`StreamHooks`] (fresh subscribe messages,
//!   sequence-gap detection).
//! * [`ws`]: the websocket transport under that supervisor; answers pings.
//! * [`tls`]: the rustls client configuration for `wss://` (webpki roots plus extra PEM
//!   roots, e.g. a simulator's self-signed certificate).
//! * [`line`](mod@line): the chunked line-stream transport (OANDA's pricing and transaction streams).
//! * [`relay`](mod@relay): the one pump from a transport's raw events to a venue's gekko events.
//! * [`http`]: turning `reqwest` errors into a [`NetError`] that says whether the request
//!   may have reached the venue.
//!
//! All timers use `tokio::time`, so tests drive them with tokio's paused clock.

pub mod auth;
pub mod breaker;
pub mod clock;
pub mod http;
pub mod limiter;
pub mod line;
pub mod relay;
pub mod rest;
pub mod retry;
pub mod signer;
pub mod stream;
pub mod tls;
pub mod ws;

pub use auth::{
    ApiKeyHeader, AuthError, BearerToken, OutgoingRequest, PerRequestBearer, RequestAuth,
};

pub use breaker::{BreakerOpen, BreakerPermit, CircuitBreaker, CircuitState};
pub use clock::{ClockOffset, ClockSample};
pub use http::NetError;
pub use limiter::WeightLimiter;
pub use line::{LineBuffer, run_line_stream, spawn_line_stream};
pub use relay::{receiver_stream, relay};
pub use rest::{
    Charge, LimiterId, RestConfig, RestError, RestPipeline, RestRequest, RestResponse, StatusClass,
    VenueHooks, Wait,
};
pub use retry::{Backoff, BackoffConfig, Jitter, RetryPolicy, retry_idempotent};
pub use signer::Signer;
pub use stream::{
    FrameVerdict, SequenceGuard, StaticSubscriptions, StreamConfig, StreamEvent, StreamHooks,
    SubscribeWith,
};
pub use ws::{WsConfig, WsEvent, run_ws, run_ws_with_hooks, spawn_ws, spawn_ws_with_hooks};

pub(crate) use gekko_core::sync::lock;
