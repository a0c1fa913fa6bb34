//! Configuration for the OANDA v20 adapter.
//!
//! OANDA has a practice and a live environment, each with a REST host and a separate
//! stream host (reference §3.1); every URL stays configurable so the same code talks to a
//! simulator on `127.0.0.1`. The personal access token is a [`SecretString`]: redacted
//! in `Debug`, zeroized on drop. [`OandaConfig::validate`] reports every problem at once,
//! so a service fails fast before binding a port.

use std::time::Duration;

use gekko_net::RetryPolicy;
use secrecy::{ExposeSecret, SecretString};

use crate::common::consts;

/// Which OANDA environment (reference §3.1). Practice is the default, so a token alone
/// never trades real money by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OandaEnvironment {
    /// fxTrade Practice (demo): `api-fxpractice.oanda.com`, `stream-fxpractice.oanda.com`.
    #[default]
    Practice,
    /// fxTrade (live): `api-fxtrade.oanda.com`, `stream-fxtrade.oanda.com`.
    Live,
}

impl OandaEnvironment {
    /// The REST host URL.
    #[must_use]
    pub const fn rest_base(self) -> &'static str {
        match self {
            OandaEnvironment::Practice => consts::PRACTICE_REST,
            OandaEnvironment::Live => consts::LIVE_REST,
        }
    }

    /// The stream host URL.
    #[must_use]
    pub const fn stream_base(self) -> &'static str {
        match self {
            OandaEnvironment::Practice => consts::PRACTICE_STREAM,
            OandaEnvironment::Live => consts::LIVE_STREAM,
        }
    }

    /// `practice` or `live` (the `OANDA_ENVIRONMENT` spelling).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            OandaEnvironment::Practice => "practice",
            OandaEnvironment::Live => "live",
        }
    }
}

impl std::str::FromStr for OandaEnvironment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "practice" | "demo" => Ok(OandaEnvironment::Practice),
            "live" | "fxtrade" => Ok(OandaEnvironment::Live),
            other => Err(format!("{other:?} is not practice or live")),
        }
    }
}

/// Everything the adapter needs. Build with [`OandaConfig::new`] or
/// [`OandaConfig::simulator`] and adjust fields as needed.
#[derive(Debug, Clone)]
pub struct OandaConfig {
    /// REST base URL, `https://api-fxpractice.oanda.com` (paths `/v3/...` are appended).
    pub rest_base: String,
    /// Stream base URL, `https://stream-fxpractice.oanda.com`.
    pub stream_base: String,
    /// A second REST base URL, used per endpoint family while the primary's circuit is
    /// open (`TRADING_API_ENDPOINTS oanda.fallback=URL`); the primary is probed again
    /// after the cooldown. `None` (the default): no fallback.
    pub rest_fallback: Option<String>,
    /// The personal access token sent as `Authorization: Bearer`.
    pub token: SecretString,
    /// The account traded, `101-001-1234567-001`; checked against `GET /v3/accounts`.
    pub account_id: String,
    /// PEM certificates trusted besides the normal roots (`TRADING_TLS_CA_FILE`, a
    /// simulator's self-signed certificate). Each entry may hold several certificates.
    pub extra_roots_pem: Vec<String>,
    /// REST requests per second (default 100, the best-practices figure on an
    /// established connection; the venue's limit is 120). 90 % is spent.
    pub rate_per_s: u32,
    /// Timeout of one REST request (default 5 s). An order submit that times out is
    /// ambiguous, never "failed".
    pub request_timeout: Duration,
    /// A stream silent for this long, heartbeats included, is reconnected (default
    /// 10 s; the venue sends heartbeats about every 5 s).
    pub stale_after: Duration,
    /// Consecutive failures that open a family's circuit (default 5).
    pub breaker_threshold: u32,
    /// How long an opened circuit stays open before a probe (default 15 s).
    pub breaker_cooldown: Duration,
    /// Retries of idempotent calls (GETs and cancels by client id). Order submits and
    /// position closes are never retried.
    pub retry: RetryPolicy,
    /// The longest a read waits for rate-limit budget (a pause after a 429 included)
    /// before failing with `RateLimited` (default 10 s). Order submits never wait.
    pub max_rate_limit_wait: Duration,
    /// How long an idle keep-alive connection is kept (default 90 s). OANDA refuses more
    /// than 2 new connections per second, so connections are reused, not reopened.
    pub pool_idle_timeout: Duration,
    /// Whether the adapter refuses, before sending, an order whose required margin
    /// exceeds the margin available in the last account summary (default on).
    pub margin_check: bool,
    /// How old the account summary used by the margin check may be before it is fetched
    /// again (default 2 s).
    pub summary_max_age: Duration,
}

impl OandaConfig {
    /// The real venue in `env`, with `token` and `account_id`.
    #[must_use]
    pub fn new(env: OandaEnvironment, token: SecretString, account_id: &str) -> Self {
        Self {
            rest_base: env.rest_base().to_owned(),
            stream_base: env.stream_base().to_owned(),
            rest_fallback: None,
            token,
            account_id: account_id.to_owned(),
            extra_roots_pem: Vec::new(),
            rate_per_s: consts::DEFAULT_RATE_PER_S,
            request_timeout: Duration::from_secs(5),
            stale_after: Duration::from_secs(10),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            max_rate_limit_wait: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            margin_check: true,
            summary_max_age: Duration::from_secs(2),
        }
    }

    /// A simulator (`sim-oanda` or `gekko_sim::oanda`): its REST and stream URLs. Same
    /// defaults otherwise.
    #[must_use]
    pub fn simulator(
        rest_url: &str,
        stream_url: &str,
        token: SecretString,
        account_id: &str,
    ) -> Self {
        Self {
            rest_base: rest_url.trim_end_matches('/').to_owned(),
            stream_base: stream_url.trim_end_matches('/').to_owned(),
            ..Self::new(OandaEnvironment::Practice, token, account_id)
        }
    }

    /// Checks every field and returns every problem, one line each: `https` unless the
    /// host is loopback, a non-empty token, an account id shaped
    /// `NNN-NNN-NNNNNNN-NNN`, a rate within the venue's 120/s, positive timeouts, and
    /// parsable PEM certificates.
    ///
    /// # Errors
    /// The list of problems, when there is at least one.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut p = Vec::new();
        check_url("rest_base", &self.rest_base, &mut p);
        check_url("stream_base", &self.stream_base, &mut p);
        if let Some(f) = &self.rest_fallback {
            check_url("rest_fallback", f, &mut p);
            if f.trim_end_matches('/') == self.rest_base.trim_end_matches('/') {
                p.push(format!(
                    "rest_fallback: {f:?} is the same as rest_base; a fallback must be another host"
                ));
            }
        }
        if self.token.expose_secret().trim().is_empty() {
            p.push("token: must not be empty".to_owned());
        }
        if let Err(e) = check_account_id(&self.account_id) {
            p.push(format!("account_id: {e}"));
        }
        for (i, pem) in self.extra_roots_pem.iter().enumerate() {
            if let Err(e) = gekko_net::tls::client_config(std::slice::from_ref(pem)) {
                p.push(format!("extra_roots_pem[{i}]: {e}"));
            }
        }
        if self.rate_per_s == 0 || self.rate_per_s > consts::MAX_RATE_PER_S {
            p.push(format!(
                "rate_per_s: {} must be between 1 and {} (the venue's per-IP limit)",
                self.rate_per_s,
                consts::MAX_RATE_PER_S
            ));
        }
        if self.breaker_threshold == 0 {
            p.push("breaker_threshold: must be positive".to_owned());
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
        if self.retry.max_attempts == 0 {
            p.push("retry.max_attempts: must be positive".to_owned());
        }
        if p.is_empty() { Ok(()) } else { Err(p) }
    }
}

/// Checks the v20 account id shape `{siteID}-{divisionID}-{userID}-{accountNumber}`
/// (reference §3.2): four groups of digits joined by `-`, e.g. `101-001-1234567-001`.
///
/// # Errors
/// What is wrong with it, in words.
pub fn check_account_id(id: &str) -> Result<(), String> {
    let groups: Vec<&str> = id.split('-').collect();
    let ok = groups.len() == 4
        && groups
            .iter()
            .all(|g| !g.is_empty() && g.len() <= 12 && g.bytes().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not an OANDA account id (NNN-NNN-NNNNNNN-NNN)"
        ))
    }
}

/// `https://host...`, or `http://` when the host is loopback (a local simulator).
fn check_url(name: &str, url: &str, p: &mut Vec<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        p.push(format!("{name}: {url:?} is not a URL (https://host)"));
        return;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let a = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match a.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => a.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        p.push(format!("{name}: {url:?} has no host"));
        return;
    }
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "https" => {}
        "http" if loopback => {}
        "http" => p.push(format!(
            "{name}: {url:?} uses http:// for a non-loopback host; use https://"
        )),
        _ => p.push(format!("{name}: {url:?} must use https://")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> SecretString {
        SecretString::from("abc-secret-token")
    }

    #[test]
    fn environments_pick_the_documented_hosts_and_practice_is_the_default() {
        let c = OandaConfig::new(OandaEnvironment::default(), token(), "101-001-1234567-001");
        assert_eq!(c.rest_base, "https://api-fxpractice.oanda.com");
        assert_eq!(c.stream_base, "https://stream-fxpractice.oanda.com");
        let l = OandaConfig::new(OandaEnvironment::Live, token(), "101-001-1234567-001");
        assert_eq!(l.rest_base, "https://api-fxtrade.oanda.com");
        assert_eq!(l.stream_base, "https://stream-fxtrade.oanda.com");
        assert_eq!(c.rate_per_s, 100);
        assert_eq!(c.stale_after, Duration::from_secs(10));
        c.validate().unwrap();
        assert_eq!(
            "LIVE".parse::<OandaEnvironment>(),
            Ok(OandaEnvironment::Live)
        );
        assert!("paper".parse::<OandaEnvironment>().is_err());
        let d = format!("{c:?}");
        assert!(!d.contains("abc-secret-token"), "{d}");
    }

    #[test]
    fn every_problem_is_reported() {
        let mut c = OandaConfig::simulator(
            "http://127.0.0.1:9300/",
            "http://[::1]:9301",
            token(),
            "101-001-1234567-001",
        );
        c.validate().unwrap();
        assert_eq!(c.rest_base, "http://127.0.0.1:9300");
        c.rest_base = "http://api.example.com".into();
        c.stream_base = "ftp://x".into();
        c.token = SecretString::from("  ");
        c.account_id = "101-001-12a4567-001".into();
        c.rate_per_s = 121;
        c.request_timeout = Duration::ZERO;
        c.extra_roots_pem = vec!["not a pem".into()];
        let problems = c.validate().unwrap_err();
        assert_eq!(problems.len(), 7, "{problems:#?}");
        assert!(problems[0].starts_with("rest_base"), "{problems:?}");
        for bad in [
            "",
            "101-001-1234567",
            "101-001-1234567-001-1",
            "a-b-c-d",
            "1--2-3",
        ] {
            assert!(check_account_id(bad).is_err(), "{bad}");
        }
    }
}
