//! What both OANDA streams share: the HTTP client, the authenticated request built fresh
//! for every connect, the supervisor settings, and the stream metrics.
//!
//! The stream host is a separate host from REST (reference §3.1), so the streams have
//! their own `reqwest::Client`: one per stream, kept for its whole life so a reconnect
//! reuses the pool (OANDA refuses more than 2 new connections per second). It has **no
//! total timeout**, which would cut a stream that is meant never to end; the
//! supervisor's connect timeout bounds the wait for the response headers instead, and the
//! watchdog (`stale_after`) bounds silence after that.

use std::sync::Arc;
use std::time::Duration;

use gekko_net::{BearerToken, OutgoingRequest, RequestAuth, StreamConfig};
use reqwest::Method;

use crate::common::consts::{DATETIME_HEADER, DATETIME_RFC3339};
use crate::config::OandaConfig;

/// The `venue` metric label.
pub(crate) const VENUE: &str = "oanda";

/// Counter: stream lines that could not be parsed; labels `venue`, `stream`.
pub const METRIC_MALFORMED: &str = "gekko_venue_malformed_messages_total";
/// Counter: streams dropped by the watchdog because nothing (heartbeats included)
/// arrived within `stale_after`; labels `venue`, `stream`. (Every reconnect, whatever the
/// cause, is `gekko_venue_ws_reconnects_total`, counted by the supervisor.)
pub const METRIC_STALE: &str = "gekko_venue_stream_stale_total";

/// Capacity between the line task and the pump.
pub(crate) const LINE_CHANNEL: usize = 1024;
/// Capacity of the event channels handed to the caller.
pub(crate) const EVENT_CHANNEL: usize = 4096;

/// The HTTP client of one stream (see the module docs).
pub(crate) fn client(cfg: &OandaConfig) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(cfg.pool_idle_timeout)
        .user_agent(concat!("gekko-oanda/", env!("CARGO_PKG_VERSION")));
    let mut roots = Vec::new();
    for (i, pem) in cfg.extra_roots_pem.iter().enumerate() {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| format!("extra_roots_pem[{i}]: {e}"))?;
        roots.extend(certs);
    }
    if !roots.is_empty() {
        builder = builder.tls_certs_merge(roots);
    }
    builder
        .build()
        .map_err(|e| format!("stream HTTP client: {e}"))
}

/// The supervisor settings of one stream: `stale_after` from the config, the workspace
/// backoff, a 10 s connect timeout.
pub(crate) fn line_config(cfg: &OandaConfig, stream: &str) -> StreamConfig {
    let mut c = StreamConfig::new(VENUE, stream);
    c.stale_after = cfg.stale_after;
    c.connect_timeout = Duration::from_secs(10);
    c.channel_capacity = LINE_CHANNEL;
    c
}

/// A request factory for `GET {stream_base}{path}?{query}` with the Bearer token and
/// `Accept-Datetime-Format: RFC3339`, built afresh for every connect.
pub(crate) fn request(
    cfg: &OandaConfig,
    client: reqwest::Client,
    path: String,
    query: String,
) -> impl FnMut() -> std::future::Ready<Result<reqwest::RequestBuilder, String>> + Send + 'static {
    let auth = Arc::new(BearerToken::new(cfg.token.clone()));
    let base = cfg.stream_base.clone();
    move || {
        let mut req = OutgoingRequest::new(Method::GET, &base, &path);
        req.query.clone_from(&query);
        let built = req
            .set_header(DATETIME_HEADER, DATETIME_RFC3339)
            .and_then(|()| auth.authorize(&mut req))
            .map(|()| req.to_reqwest(&client))
            .map_err(|e| e.to_string());
        std::future::ready(built)
    }
}

/// The path of an account's stream endpoint (`pricing/stream`, `transactions/stream`).
pub(crate) fn account_path(cfg: &OandaConfig, tail: &str) -> String {
    format!("/v3/accounts/{}/{tail}", cfg.account_id)
}

/// Counts a line that did not parse and logs it.
pub(crate) fn count_malformed(stream: &'static str, e: &super::ParseError) {
    metrics::counter!(METRIC_MALFORMED, "venue" => VENUE, "stream" => stream).increment(1);
    tracing::warn!(stream, error = %e, "malformed OANDA stream line; skipped");
}

/// Counts a stream the watchdog dropped.
pub(crate) fn count_stale(stream: &'static str) {
    metrics::counter!(METRIC_STALE, "venue" => VENUE, "stream" => stream).increment(1);
}

/// The reason reported for a stale stream.
pub(crate) const STALE_REASON: &str = "stale: nothing, heartbeats included, within stale_after";
