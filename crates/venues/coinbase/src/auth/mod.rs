//! Coinbase authentication: CDP API keys and the per-request JWT (reference §1.2).
//!
//! * [`key`]: [`CdpKey::parse`] turns a key name and a secret (EC P-256 SEC1/PKCS#8 PEM, or
//!   Ed25519 as base64 of 64 or 32 bytes or a PKCS#8 PEM) into a signing key, with errors
//!   that say what is wrong without echoing the secret.
//! * [`jwt`]: [`CdpJwtSigner`] builds a fresh token per REST request (with the `uri` claim)
//!   and per websocket subscribe (without it); [`JwtClock`] makes time injectable.
//! * [`request`]: [`CoinbaseRequestAuth`], the [`gekko_net::RequestAuth`] hook the REST
//!   pipeline calls for every request.

pub mod jwt;
pub mod key;
pub mod request;

pub use jwt::{
    CdpJwtSigner, DEFAULT_SKEW_ALLOWANCE, FixedClock, ISSUER, JwtClaims, JwtClock, JwtError,
    JwtHeader, MAX_SKEW_ALLOWANCE, SkewTooLarge, SystemClock, TOKEN_LIFETIME_SECS, encode_jwt,
    fresh_nonce, rest_uri,
};
pub use key::{CdpKey, CdpKeyError, JwtAlgorithm, SignError};
pub use request::CoinbaseRequestAuth;
