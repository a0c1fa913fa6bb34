//! Configuration for the Coinbase Advanced Trade adapter.
//!
//! Every URL is configurable so the same code talks to the real venue or to a simulator on
//! `127.0.0.1`. The CDP key is shared as an `Arc<CdpKey>` (it is parsed once and never
//! cloned; its `Debug` shows the key name only). [`CoinbaseConfig::validate`] reports
//! every problem at once, so a service fails fast before binding a port.

use std::sync::Arc;
use std::time::Duration;

use gekko_net::RetryPolicy;

use crate::auth::CdpKey;
use crate::common::consts;

/// Everything the adapter needs. Build with [`CoinbaseConfig::coinbase`] or
/// [`CoinbaseConfig::simulator`] and adjust fields as needed.
#[derive(Debug, Clone)]
pub struct CoinbaseConfig {
    /// REST base URL, `https://api.coinbase.com` (paths `/api/v3/brokerage/...` are
    /// appended).
    pub rest_base: String,
    /// A secondary REST base (`TRADING_API_ENDPOINTS` `coinbase.fallback=URL`): an
    /// endpoint family whose primary circuit is open is sent here until the primary's
    /// cooldown probe succeeds. Each request's JWT names the host it is actually sent to.
    pub rest_fallback: Option<String>,
    /// Market-data websocket, `wss://advanced-trade-ws.coinbase.com`.
    pub ws_market_url: String,
    /// User-order-data websocket, `wss://advanced-trade-ws-user.coinbase.com`.
    pub ws_user_url: String,
    /// The CDP API key every JWT is signed with.
    pub key: Arc<CdpKey>,
    /// PEM certificates trusted besides the normal roots (`TRADING_TLS_CA_FILE`, a
    /// simulator's self-signed certificate). Each entry may hold several certificates.
    pub extra_roots_pem: Vec<String>,
    /// Private (JWT) requests per second (default 30, reference 1.5); 90 % is spent.
    pub private_rate_per_s: u32,
    /// Public requests per second (default 10); 90 % is spent.
    pub public_rate_per_s: u32,
    /// Timeout of one REST request (default 5 s). An order submit that times out is
    /// ambiguous, never "failed".
    pub request_timeout: Duration,
    /// A stream silent for this long (heartbeats included) is reconnected and
    /// resubscribed (default 10 s; the venue sends heartbeats every second).
    pub stale_after: Duration,
    /// Resubscribe, rebuilding every book, when `level2` or `ticker` is silent this
    /// long while heartbeats flow (default `None`: not watched; a quiet product may
    /// legitimately go long without a book update, reference \[U\]).
    pub channel_silent_after: Option<Duration>,
    /// Consecutive failures that open a family's circuit (default 5).
    pub breaker_threshold: u32,
    /// How long an opened circuit stays open before a probe (default 15 s).
    pub breaker_cooldown: Duration,
    /// Retries of idempotent calls (GETs). Order submits and cancels are never retried
    /// by the client.
    pub retry: RetryPolicy,
    /// The longest a read waits for rate-limit budget (a pause after a 429 included)
    /// before failing with `RateLimited` (default 10 s). Order submits never wait.
    pub max_rate_limit_wait: Duration,
    /// How far before "now" a JWT's `nbf` is put (default 5 s, at most 60 s): absorbs a
    /// local clock slightly ahead of the venue's.
    pub jwt_skew: Duration,
    /// `limit` asked of paginated list endpoints (default 250).
    pub page_size: u32,
    /// Clock samples taken per `/time` sync (median; default 3).
    pub clock_samples: usize,
    /// Depth asked of `product_book` for a REST snapshot (default 100; 0 = full book).
    pub book_depth: u32,
}

impl CoinbaseConfig {
    /// The real venue: `https://api.coinbase.com` and the two production websockets.
    #[must_use]
    pub fn coinbase(key: Arc<CdpKey>) -> Self {
        Self {
            rest_base: consts::REST_BASE.to_owned(),
            rest_fallback: None,
            ws_market_url: consts::WS_MARKET_URL.to_owned(),
            ws_user_url: consts::WS_USER_URL.to_owned(),
            key,
            extra_roots_pem: Vec::new(),
            private_rate_per_s: consts::DEFAULT_PRIVATE_RATE_PER_S,
            public_rate_per_s: consts::DEFAULT_PUBLIC_RATE_PER_S,
            request_timeout: Duration::from_secs(5),
            stale_after: Duration::from_secs(10),
            channel_silent_after: None,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            max_rate_limit_wait: Duration::from_secs(10),
            jwt_skew: Duration::from_secs(5),
            page_size: consts::DEFAULT_PAGE_SIZE,
            clock_samples: 3,
            book_depth: 100,
        }
    }

    /// A simulator (`sim-coinbase` or `gekko_sim::coinbase`): its REST and websocket URLs,
    /// and its certificate when it serves a self-signed one. Same defaults otherwise.
    #[must_use]
    pub fn simulator(
        rest_url: &str,
        ws_url: &str,
        ws_user_url: &str,
        key: Arc<CdpKey>,
        ca_pem: Option<String>,
    ) -> Self {
        Self {
            rest_base: rest_url.to_owned(),
            ws_market_url: ws_url.to_owned(),
            ws_user_url: ws_user_url.to_owned(),
            extra_roots_pem: ca_pem.into_iter().collect(),
            ..Self::coinbase(key)
        }
    }

    /// Checks every field and returns every problem, one line each: `https`/`wss` unless
    /// the host is loopback, positive limits and timeouts, parsable PEM certificates.
    ///
    /// # Errors
    /// The list of problems, when there is at least one.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut p = Vec::new();
        check_url("rest_base", &self.rest_base, "https", "http", &mut p);
        if let Some(f) = &self.rest_fallback {
            check_url("rest_fallback", f, "https", "http", &mut p);
            if f.trim_end_matches('/') == self.rest_base.trim_end_matches('/') {
                p.push(format!(
                    "rest_fallback: {f:?} is the same as rest_base; a fallback must be another host"
                ));
            }
        }
        check_url("ws_market_url", &self.ws_market_url, "wss", "ws", &mut p);
        check_url("ws_user_url", &self.ws_user_url, "wss", "ws", &mut p);
        // Parsed the way the websocket's TLS config parses them (rustls accepts each as a
        // trust anchor), so a PEM that reqwest would take but no handshake could use is
        // caught here.
        for (i, pem) in self.extra_roots_pem.iter().enumerate() {
            if let Err(e) = gekko_net::tls::client_config(std::slice::from_ref(pem)) {
                p.push(format!("extra_roots_pem[{i}]: {e}"));
            }
        }
        for (name, v) in [
            ("private_rate_per_s", self.private_rate_per_s),
            ("public_rate_per_s", self.public_rate_per_s),
            ("breaker_threshold", self.breaker_threshold),
            ("page_size", self.page_size),
        ] {
            if v == 0 {
                p.push(format!("{name}: must be positive"));
            }
        }
        for (name, v) in [
            ("request_timeout", self.request_timeout),
            ("stale_after", self.stale_after),
            ("breaker_cooldown", self.breaker_cooldown),
        ] {
            if v.is_zero() {
                p.push(format!("{name}: must be positive"));
            }
        }
        if self.jwt_skew > crate::auth::jwt::MAX_SKEW_ALLOWANCE {
            p.push(format!(
                "jwt_skew: {:?} is above {:?}; a token would be mostly spent before it is sent",
                self.jwt_skew,
                crate::auth::jwt::MAX_SKEW_ALLOWANCE
            ));
        }
        if self.clock_samples == 0 {
            p.push("clock_samples: must be positive".to_owned());
        }
        if self.retry.max_attempts == 0 {
            p.push("retry.max_attempts: must be positive".to_owned());
        }
        if p.is_empty() { Ok(()) } else { Err(p) }
    }
}

/// `secure://host...`, or `plain://` when the host is loopback (a local simulator).
fn check_url(name: &str, url: &str, secure: &str, plain: &str, p: &mut Vec<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        p.push(format!("{name}: {url:?} is not a URL ({secure}://host)"));
        return;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host_of(authority);
    if host.is_empty() {
        p.push(format!("{name}: {url:?} has no host"));
        return;
    }
    if scheme == secure {
        return;
    }
    if scheme == plain {
        if !is_loopback(host) {
            p.push(format!(
                "{name}: {url:?} uses {plain}:// for a non-loopback host; use {secure}://"
            ));
        }
        return;
    }
    p.push(format!("{name}: {url:?} must use {secure}://"));
}

/// The host of an authority (`user@host:port`, `[::1]:443`).
fn host_of(authority: &str) -> &str {
    let a = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    a.split(':').next().unwrap_or_default()
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::JwtAlgorithm;

    fn key() -> Arc<CdpKey> {
        Arc::new(CdpKey::generate("organizations/o/apiKeys/k", JwtAlgorithm::EdDsa).unwrap())
    }

    #[test]
    fn defaults_are_valid_and_the_key_does_not_leak() {
        let c = CoinbaseConfig::coinbase(key());
        assert_eq!(c.rest_base, "https://api.coinbase.com");
        assert_eq!(c.ws_market_url, "wss://advanced-trade-ws.coinbase.com");
        assert_eq!(c.ws_user_url, "wss://advanced-trade-ws-user.coinbase.com");
        assert_eq!((c.private_rate_per_s, c.public_rate_per_s), (30, 10));
        c.validate().unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("PRIVATE"), "{d}");
    }

    #[test]
    fn loopback_may_be_plain_and_everything_else_must_be_secure() {
        let mut c = CoinbaseConfig::simulator(
            "http://127.0.0.1:9200",
            "ws://localhost:9201",
            "ws://[::1]:9202",
            key(),
            None,
        );
        c.validate().unwrap();
        c.rest_base = "http://api.example.com".into();
        c.ws_market_url = "https://x".into();
        c.ws_user_url = "x".into();
        c.extra_roots_pem = vec!["not a pem".into()];
        c.private_rate_per_s = 0;
        c.request_timeout = Duration::ZERO;
        c.jwt_skew = Duration::from_secs(600);
        let problems = c.validate().unwrap_err();
        assert_eq!(problems.len(), 7, "{problems:#?}");
        assert!(problems[0].starts_with("rest_base"), "{problems:?}");
    }
}
