//! Binance.US spot adapter for gekko.
//!
//! Same shape as every gekko venue crate (and NautilusTrader's adapters):
//!
//! * [`common`]: constants, the endpoint table with documented weights, enums, symbols.
//! * [`signing`]: [`BinanceUsSigner`], HMAC-SHA256 or Ed25519 over `totalParams`.
//! * [`http`]: the raw [`BinanceUsHttpClient`] (signing, weight limits, 429/418 handling,
//!   circuit breakers, `-1021` resync, retries of idempotent calls only) and typed models.
//! * [`websocket`]: [`BinanceUsWsMessage`] and a [`websocket::parse`] that never panics.
//! * [`adapter`]: [`BinanceUsVenue`], the domain layer implementing
//!   [`gekko_venue::VenueAdapter`].
//! * [`config`]: [`BinanceUsConfig`], pointing at the real venue or a simulator.
//!
//! Protocol reference: Binance.US `rest-api.md`, `web-socket-streams.md`,
//! `user-data-stream.md` (see `shared/reference/venues-and-services.md` §2). Reference
//! payloads live in `test_data/`.

pub mod adapter;
pub mod common;
pub mod config;
pub mod error;
pub mod http;
pub mod signing;
pub mod websocket;

pub use adapter::BinanceUsVenue;
pub use config::{BinanceUsAuth, BinanceUsConfig};
pub use error::BinanceUsError;
pub use http::BinanceUsHttpClient;
pub use signing::BinanceUsSigner;
pub use websocket::BinanceUsWsMessage;
