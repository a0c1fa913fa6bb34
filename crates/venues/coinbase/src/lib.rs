//! Coinbase Advanced Trade adapter for gekko.
//!
//! Same shape as every gekko venue crate (see `gekko-binanceus`):
//!
//! * [`auth`]: [`CdpKey`] (key name and private key, parsed once), [`CdpJwtSigner`] (a fresh
//!   ES256 or EdDSA JWT per REST request and per websocket subscribe) and
//!   [`CoinbaseRequestAuth`], the [`gekko_net::RequestAuth`] hook that puts the token in
//!   `Authorization: Bearer`.
//! * [`common`]: hosts, paths and the endpoint table, wire enums, `BTC-USD` symbols,
//!   RFC 3339 times, product rules with the pre-trade checks, and the one parser from a
//!   Coinbase order (REST or websocket `user`) to [`gekko_venue::OrderUpdate`].
//! * [`http`]: the raw [`CoinbaseHttpClient`] on gekko-net's REST pipeline (JWT per
//!   request on the venue clock, private/public limiters, `x-ratelimit-*` and 429 pauses,
//!   breakers, retries of GETs only) and typed response models.
//! * [`websocket`]: the market and user streams and their parsers.
//! * [`adapter`]: [`CoinbaseVenue`], the [`gekko_venue::VenueAdapter`].
//! * [`config`]: [`CoinbaseConfig`], pointing at the real venue or a simulator;
//!   [`error`]: [`CoinbaseError`] and its mapping onto the venue contract's errors.
//!
//! Protocol reference: `shared/reference/venues-and-services.md` §1 (Coinbase Advanced Trade
//! API v3); the JWT test vectors of §1.2.1 are checked in `tests/auth.rs`.

pub mod adapter;
pub mod auth;
pub mod common;
pub mod config;
pub mod error;
pub mod http;
pub mod websocket;

pub use adapter::CoinbaseVenue;
pub use auth::{CdpJwtSigner, CdpKey, CdpKeyError, CoinbaseRequestAuth, JwtAlgorithm, JwtError};
pub use config::CoinbaseConfig;
pub use error::CoinbaseError;
pub use http::CoinbaseHttpClient;
