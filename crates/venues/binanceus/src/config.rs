//! Configuration for the Binance.US adapter.
//!
//! Every URL is configurable so the same code talks to the real venue or to a simulator on
//! `127.0.0.1`. Secrets are `SecretString`: redacted in `Debug`, zeroized on drop.
//! [`BinanceUsConfig::validate`] reports every problem at once, so a service can fail fast
//! before binding a port.

use std::time::Duration;

use gekko_net::RetryPolicy;
use secrecy::{ExposeSecret, SecretString};

use crate::common::consts;

/// How requests are signed.
#[derive(Debug, Clone)]
pub enum BinanceUsAuth {
    /// HMAC-SHA256 with the API secret (the documented Binance.US scheme).
    Hmac(SecretString),
    /// Ed25519 with a private key: a 32-byte seed as hex or base64, a 64-byte
    /// seed‖public key in base64, or a PKCS#8 PEM. Not confirmed for Binance.US (the
    /// scheme is documented for binance.com), hence opt-in.
    Ed25519(SecretString),
}

/// Everything the adapter needs. Build with [`BinanceUsConfig::binance_us`] or
/// [`BinanceUsConfig::simulator`] and adjust fields as needed.
#[derive(Debug, Clone)]
pub struct BinanceUsConfig {
    /// Primary REST base URL, e.g. `https://api.binance.us`.
    pub rest_base: String,
    /// Secondary REST base URL (`http(s)://`, distinct from `rest_base`), used per endpoint
    /// family while the primary's circuit for that family is open; the primary is probed
    /// again after `breaker_cooldown`. Deployments set it through
    /// `TRADING_API_ENDPOINTS` (`<venue>.fallback=URL`, read by gekko-config).
    pub rest_fallback: Option<String>,
    /// Stream base URL, e.g. `wss://stream.binance.us:9443` (`/stream` and `/ws/<key>`
    /// are appended).
    pub ws_base: String,
    /// The API key (`X-MBX-APIKEY`).
    pub api_key: SecretString,
    /// The signing secret.
    pub auth: BinanceUsAuth,
    /// `recvWindow` sent with signed requests, ms (1..=60000; default 5000).
    pub recv_window_ms: u64,
    /// Timeout for one REST request (default 5 s).
    pub request_timeout: Duration,
    /// Request-weight limit per minute (default 1200); 90 % of it is spent.
    pub weight_limit_per_minute: u32,
    /// Order-count limit per 10 s (default 100); 90 % of it is spent.
    pub orders_per_10s: u32,
    /// A stream with no frame for this long is dropped and reconnected (default 30 s;
    /// the venue pings every 3 min, but market streams carry data far more often).
    pub stale_after: Duration,
    /// Listen-key keepalive period (default 30 min; keys expire after 60).
    pub listen_key_keepalive: Duration,
    /// Percent-encode Ed25519 signatures when appending them (default true).
    pub ed25519_url_encode: bool,
    /// Consecutive failures that open a family's circuit (default 5).
    pub breaker_threshold: u32,
    /// How long an opened circuit stays open before a probe (default 15 s).
    pub breaker_cooldown: Duration,
    /// Retries of idempotent calls (reads, cancels). Order submits are never retried.
    pub retry: RetryPolicy,
    /// Clock samples taken per sync (median; default 5).
    pub clock_samples: usize,
    /// The longest a read waits for rate-limit budget before failing with `RateLimited`
    /// (default 10 s). Order submits never wait.
    pub max_rate_limit_wait: Duration,
}

impl BinanceUsConfig {
    /// The real venue: `https://api.binance.us`, `wss://stream.binance.us:9443`.
    #[must_use]
    pub fn binance_us(api_key: SecretString, auth: BinanceUsAuth) -> Self {
        Self {
            rest_base: consts::REST_BASE.to_owned(),
            rest_fallback: None,
            ws_base: consts::WS_BASE.to_owned(),
            api_key,
            auth,
            recv_window_ms: consts::DEFAULT_RECV_WINDOW_MS,
            request_timeout: Duration::from_secs(5),
            weight_limit_per_minute: consts::DEFAULT_WEIGHT_PER_MINUTE,
            orders_per_10s: consts::DEFAULT_ORDERS_PER_10S,
            stale_after: Duration::from_secs(30),
            listen_key_keepalive: consts::DEFAULT_LISTEN_KEY_KEEPALIVE,
            ed25519_url_encode: true,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            clock_samples: 5,
            max_rate_limit_wait: Duration::from_secs(10),
        }
    }

    /// A simulator: `rest_base` like `http://127.0.0.1:PORT`, `ws_base` like
    /// `ws://127.0.0.1:PORT`. Same defaults otherwise.
    #[must_use]
    pub fn simulator(
        rest_base: impl Into<String>,
        ws_base: impl Into<String>,
        api_key: SecretString,
        auth: BinanceUsAuth,
    ) -> Self {
        Self {
            rest_base: rest_base.into(),
            ws_base: ws_base.into(),
            ..Self::binance_us(api_key, auth)
        }
    }

    /// Checks every field and returns every problem, one line each.
    ///
    /// # Errors
    /// The list of problems, when there is at least one.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut p = Vec::new();
        let url = |name: &str, v: &str, schemes: &[&str], p: &mut Vec<String>| {
            if !schemes.iter().any(|s| v.starts_with(s)) {
                p.push(format!("{name}: {v:?} must start with one of {schemes:?}"));
            }
        };
        url(
            "rest_base",
            &self.rest_base,
            &["http://", "https://"],
            &mut p,
        );
        if let Some(f) = &self.rest_fallback {
            url("rest_fallback", f, &["http://", "https://"], &mut p);
            if f.trim_end_matches('/') == self.rest_base.trim_end_matches('/') {
                p.push(format!(
                    "rest_fallback: {f:?} is the same as rest_base; a fallback must be another host"
                ));
            }
        }
        url("ws_base", &self.ws_base, &["ws://", "wss://"], &mut p);
        if self.api_key.expose_secret().trim().is_empty() {
            p.push("api_key: must not be empty".to_owned());
        }
        let secret_empty = match &self.auth {
            BinanceUsAuth::Hmac(s) | BinanceUsAuth::Ed25519(s) => {
                s.expose_secret().trim().is_empty()
            }
        };
        if secret_empty {
            p.push("auth: the secret must not be empty".to_owned());
        }
        if !(1..=consts::MAX_RECV_WINDOW_MS).contains(&self.recv_window_ms) {
            p.push(format!(
                "recv_window_ms: {} must be within 1..={}",
                self.recv_window_ms,
                consts::MAX_RECV_WINDOW_MS
            ));
        }
        if self.request_timeout.is_zero() {
            p.push("request_timeout: must be positive".to_owned());
        }
        if self.weight_limit_per_minute == 0 {
            p.push("weight_limit_per_minute: must be positive".to_owned());
        }
        if self.orders_per_10s == 0 {
            p.push("orders_per_10s: must be positive".to_owned());
        }
        if self.stale_after.is_zero() {
            p.push("stale_after: must be positive".to_owned());
        }
        if self.listen_key_keepalive.is_zero()
            || self.listen_key_keepalive >= Duration::from_secs(3600)
        {
            p.push(
                "listen_key_keepalive: must be within (0, 60 min); keys expire after 60 min"
                    .to_owned(),
            );
        }
        if p.is_empty() { Ok(()) } else { Err(p) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_secrets_do_not_leak() {
        let c = BinanceUsConfig::binance_us(
            SecretString::from("my-key"),
            BinanceUsAuth::Hmac(SecretString::from("my-secret")),
        );
        assert_eq!(c.rest_base, "https://api.binance.us");
        assert_eq!(c.ws_base, "wss://stream.binance.us:9443");
        assert_eq!(c.recv_window_ms, 5000);
        assert_eq!(c.request_timeout, Duration::from_secs(5));
        c.validate().unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("my-secret") && !d.contains("my-key"), "{d}");
    }

    #[test]
    fn validation_reports_every_problem() {
        let mut c = BinanceUsConfig::simulator(
            "127.0.0.1:1",
            "http://x",
            SecretString::from(""),
            BinanceUsAuth::Hmac(SecretString::from("")),
        );
        c.recv_window_ms = 70_000;
        c.listen_key_keepalive = Duration::from_secs(3600);
        let problems = c.validate().unwrap_err();
        assert_eq!(problems.len(), 6, "{problems:#?}");
    }

    #[test]
    fn the_fallback_must_be_a_url_and_not_the_primary() {
        let mut c = BinanceUsConfig::binance_us(
            SecretString::from("k"),
            BinanceUsAuth::Hmac(SecretString::from("s")),
        );
        c.rest_fallback = Some("https://api.binance.us/".to_owned());
        let problems = c.validate().unwrap_err();
        assert!(problems[0].contains("same as rest_base"), "{problems:?}");
        c.rest_fallback = Some("api2.example".to_owned());
        assert!(c.validate().unwrap_err()[0].starts_with("rest_fallback"));
        c.rest_fallback = Some("https://api2.example".to_owned());
        c.validate().unwrap();
    }
}
