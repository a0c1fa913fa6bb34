//! Coinbase Advanced Trade adapter for gekko.
//!
//! The crate grows into the same shape as every gekko venue crate (see
//! `gekko-binanceus`): `common/`, `http/`, `websocket/`, `config.rs`, an adapter. It starts
//! with the part other ports of this design got wrong most often, authentication:
//!
//! * [`auth`]: [`CdpKey`] (key name and private key, parsed once), [`CdpJwtSigner`] (a fresh
//!   ES256 or EdDSA JWT per REST request and per websocket subscribe) and
//!   [`CoinbaseRequestAuth`], the [`gekko_net::RequestAuth`] hook that puts the token in
//!   `Authorization: Bearer`.
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
