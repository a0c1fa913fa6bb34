//! The CDP JWT: one short-lived token per REST request, and one per websocket subscribe.
//!
//! Other ports of this design broke here by drifting from the reference (a changed issuer,
//! a reused nonce, `nbf` in the future), so every field is fixed in one place and follows
//! reference §1.2 exactly:
//!
//! * header: `alg` (`ES256` / `EdDSA`), `kid` = key name, a fresh random `nonce` (32 bytes,
//!   64 hex characters, as the official Python SDK's `secrets.token_hex()`), `typ: "JWT"`;
//! * claims: `sub` = key name, `iss: "cdp"`, `nbf`, `exp` = `nbf` + 120 s and, for REST
//!   only, `uri` = `"{METHOD} {host}{path}"` without scheme or query.
//!
//! `nbf` is the venue's "now" minus a small skew allowance (default 5 s,
//! [`CdpJwtSigner::with_skew_allowance`]): a local clock a little ahead of Coinbase's would
//! otherwise mint tokens that are not valid yet. The clock is a [`JwtClock`], so tests fix
//! time and a gateway can use its measured venue clock ([`gekko_net::ClockOffset`]).
//!
//! The JSON is built with `serde_json` from structs whose field order is the reference's,
//! so a token is byte-for-byte reproducible given the same time and nonce (Ed25519 and
//! RFC 6979 ECDSA are deterministic), which is how the reference vectors are checked.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use gekko_net::ClockOffset;
use serde::Serialize;

use super::key::{CdpKey, SignError};

/// The `iss` claim current CDP SDKs send.
pub const ISSUER: &str = "cdp";
/// How long a token is valid: `exp - nbf`, seconds (reference §1.2).
pub const TOKEN_LIFETIME_SECS: i64 = 120;
/// Default skew allowance subtracted from now for `nbf`.
pub const DEFAULT_SKEW_ALLOWANCE: Duration = Duration::from_secs(5);
/// Largest skew allowance accepted: beyond this a token would be mostly expired on arrival.
pub const MAX_SKEW_ALLOWANCE: Duration = Duration::from_secs(60);

/// The JWT header, in the reference's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JwtHeader<'a> {
    /// `ES256` or `EdDSA`.
    pub alg: &'a str,
    /// The key name.
    pub kid: &'a str,
    /// A random hex string, fresh per token.
    pub nonce: &'a str,
    /// Always `JWT`.
    pub typ: &'a str,
}

/// The JWT claims, in the reference's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JwtClaims<'a> {
    /// The key name.
    pub sub: &'a str,
    /// Always [`ISSUER`].
    pub iss: &'a str,
    /// Not before, UNIX seconds.
    pub nbf: i64,
    /// Expiry, UNIX seconds: `nbf` + [`TOKEN_LIFETIME_SECS`].
    pub exp: i64,
    /// `"{METHOD} {host}{path}"` for REST; absent for websocket tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<&'a str>,
}

/// A token could not be built. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// The method is empty or not an HTTP token.
    #[error("cannot sign a request with method {0:?}")]
    BadMethod(String),
    /// The host is empty or carries a scheme or path.
    #[error("cannot sign a request to host {0:?}: expected a bare host[:port]")]
    BadHost(String),
    /// The path does not start with `/`.
    #[error("cannot sign a request for path {0:?}: it must start with '/'")]
    BadPath(String),
    /// Serialising the header or claims failed.
    #[error("cannot encode the JWT: {0}")]
    Encode(String),
    /// The signature operation failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// Where a token's "now" comes from, UNIX seconds.
pub trait JwtClock: Send + Sync + fmt::Debug {
    /// Now, UNIX seconds.
    fn now_unix_secs(&self) -> i64;
}

/// The local wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl JwtClock for SystemClock {
    fn now_unix_secs(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// The venue's clock: local time corrected by the measured offset (server time samples).
impl JwtClock for ClockOffset {
    fn now_unix_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

impl<C: JwtClock + ?Sized> JwtClock for Arc<C> {
    fn now_unix_secs(&self) -> i64 {
        (**self).now_unix_secs()
    }
}

/// A clock that says what it is told (tests, replays of the reference vectors).
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock stopped at `secs`.
    #[must_use]
    pub fn new(secs: i64) -> Self {
        Self(AtomicI64::new(secs))
    }

    /// Moves the clock to `secs`.
    pub fn set(&self, secs: i64) {
        self.0.store(secs, Ordering::SeqCst);
    }

    /// Moves the clock by `secs` (may be negative).
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl JwtClock for FixedClock {
    fn now_unix_secs(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A fresh nonce: 32 random bytes from the thread-local CSPRNG, as 64 lower-case hex digits.
#[must_use]
pub fn fresh_nonce() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The REST `uri` claim: `"{METHOD} {host}{path}"`, with any `?query` or `#fragment` cut
/// from `path` (the claim never carries one).
///
/// # Errors
/// [`JwtError`] for an empty or non-token method, a host that is empty or carries a scheme
/// or path, or a path not starting with `/`.
pub fn rest_uri(method: &str, host: &str, path: &str) -> Result<String, JwtError> {
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(JwtError::BadMethod(method.to_owned()));
    }
    if host.is_empty() || host.contains("://") || host.contains(['/', '?', '#', ' ', '@']) {
        return Err(JwtError::BadHost(host.to_owned()));
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(JwtError::BadPath(path.to_owned()));
    }
    Ok(format!("{} {host}{path}", method.to_ascii_uppercase()))
}

/// Encodes and signs a token from an explicit header and claims:
/// `b64url(header) "." b64url(claims) "." b64url(signature)`.
///
/// [`CdpJwtSigner`] fills in the header and claims; this is the deterministic core, public
/// so the reference vectors (fixed `nbf` and nonce) can be reproduced exactly.
///
/// # Errors
/// [`JwtError::Encode`] if serialisation fails, [`JwtError::Sign`] if signing fails.
pub fn encode_jwt(
    key: &CdpKey,
    header: &JwtHeader<'_>,
    claims: &JwtClaims<'_>,
) -> Result<String, JwtError> {
    let h = serde_json::to_vec(header).map_err(|e| JwtError::Encode(e.to_string()))?;
    let c = serde_json::to_vec(claims).map_err(|e| JwtError::Encode(e.to_string()))?;
    // header(≈170) + claims(≈200) base64 + a 64-byte signature (86 chars).
    let mut token = String::with_capacity((h.len() + c.len()) * 4 / 3 + 96);
    B64URL.encode_string(&h, &mut token);
    token.push('.');
    B64URL.encode_string(&c, &mut token);
    let sig = key.sign(token.as_bytes())?;
    token.push('.');
    B64URL.encode_string(sig, &mut token);
    Ok(token)
}

/// Builds CDP JWTs for one key: a fresh nonce and `nbf` for every token.
///
/// Cheap to share behind an `Arc`: building a token takes no lock.
#[derive(Debug, Clone)]
pub struct CdpJwtSigner {
    key: Arc<CdpKey>,
    clock: Arc<dyn JwtClock>,
    skew_secs: i64,
}

impl CdpJwtSigner {
    /// A signer on the local wall clock with the default skew allowance (5 s).
    #[must_use]
    pub fn new(key: CdpKey) -> Self {
        Self::from_shared(Arc::new(key))
    }

    /// Like [`Self::new`], for a key already shared.
    #[must_use]
    pub fn from_shared(key: Arc<CdpKey>) -> Self {
        Self {
            key,
            clock: Arc::new(SystemClock),
            skew_secs: secs(DEFAULT_SKEW_ALLOWANCE),
        }
    }

    /// Uses `clock` for "now" (the venue clock, or a fixed clock in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn JwtClock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets how far before now `nbf` is put, whole seconds (default 5 s; zero gives
    /// `nbf` = now as the official SDK does).
    ///
    /// # Errors
    /// [`SkewTooLarge`] above [`MAX_SKEW_ALLOWANCE`]: the token would be mostly spent
    /// before it is sent.
    pub fn with_skew_allowance(mut self, skew: Duration) -> Result<Self, SkewTooLarge> {
        if skew > MAX_SKEW_ALLOWANCE {
            return Err(SkewTooLarge(skew));
        }
        self.skew_secs = secs(skew);
        Ok(self)
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &CdpKey {
        &self.key
    }

    /// The skew allowance in use.
    #[must_use]
    pub fn skew_allowance(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.skew_secs).unwrap_or(0))
    }

    /// A token for one REST request; see [`rest_uri`] for the `uri` claim.
    ///
    /// # Errors
    /// [`JwtError`] when the method, host or path cannot form a `uri`, or signing fails.
    pub fn rest_token(&self, method: &str, host: &str, path: &str) -> Result<String, JwtError> {
        let uri = rest_uri(method, host, path)?;
        self.token(Some(&uri))
    }

    /// A token for a websocket subscribe message: the same claims without `uri`.
    ///
    /// # Errors
    /// [`JwtError`] if signing fails.
    pub fn ws_token(&self) -> Result<String, JwtError> {
        self.token(None)
    }

    fn token(&self, uri: Option<&str>) -> Result<String, JwtError> {
        let nonce = fresh_nonce();
        let nbf = self.clock.now_unix_secs().saturating_sub(self.skew_secs);
        let name = self.key.name();
        encode_jwt(
            &self.key,
            &JwtHeader {
                alg: self.key.algorithm().as_str(),
                kid: name,
                nonce: &nonce,
                typ: "JWT",
            },
            &JwtClaims {
                sub: name,
                iss: ISSUER,
                nbf,
                exp: nbf.saturating_add(TOKEN_LIFETIME_SECS),
                uri,
            },
        )
    }
}

/// A skew allowance above [`MAX_SKEW_ALLOWANCE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("JWT skew allowance {0:?} is above the maximum of 60 s")]
pub struct SkewTooLarge(pub Duration);

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_claims() {
        assert_eq!(
            rest_uri(
                "get",
                "api.coinbase.com",
                "/api/v3/brokerage/accounts?limit=5"
            )
            .unwrap(),
            "GET api.coinbase.com/api/v3/brokerage/accounts"
        );
        assert_eq!(
            rest_uri("POST", "127.0.0.1:8443", "/api/v3/brokerage/orders").unwrap(),
            "POST 127.0.0.1:8443/api/v3/brokerage/orders"
        );
        assert!(matches!(
            rest_uri("", "h", "/"),
            Err(JwtError::BadMethod(_))
        ));
        assert!(matches!(
            rest_uri("G T", "h", "/"),
            Err(JwtError::BadMethod(_))
        ));
        assert!(matches!(
            rest_uri("GET", "https://api.coinbase.com", "/"),
            Err(JwtError::BadHost(_))
        ));
        assert!(matches!(
            rest_uri("GET", "", "/"),
            Err(JwtError::BadHost(_))
        ));
        assert!(matches!(
            rest_uri("GET", "h", "x"),
            Err(JwtError::BadPath(_))
        ));
    }

    #[test]
    fn nonces_are_64_hex_and_fresh() {
        let (a, b) = (fresh_nonce(), fresh_nonce());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn clocks() {
        let c = FixedClock::new(100);
        c.advance(-5);
        assert_eq!(c.now_unix_secs(), 95);
        c.set(7);
        assert_eq!(c.now_unix_secs(), 7);
        let now = SystemClock.now_unix_secs();
        assert!(now > 1_700_000_000, "{now}");
        let venue = ClockOffset::new("coinbase", 3);
        assert!((venue.now_unix_secs() - now).abs() <= 2);
    }

    #[test]
    fn skew_bounds() {
        let key = CdpKey::generate(
            "organizations/o/apiKeys/k",
            crate::auth::JwtAlgorithm::EdDsa,
        )
        .unwrap();
        let s = CdpJwtSigner::new(key);
        assert_eq!(s.skew_allowance(), DEFAULT_SKEW_ALLOWANCE);
        let s = s.with_skew_allowance(Duration::ZERO).unwrap();
        assert_eq!(s.skew_allowance(), Duration::ZERO);
        assert!(s.with_skew_allowance(Duration::from_secs(61)).is_err());
    }
}
