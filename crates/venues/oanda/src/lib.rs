//! OANDA v20 adapter for gekko.
//!
//! Same shape as every gekko venue crate (see `gekko-binanceus`, `gekko-coinbase`):
//!
//! * [`common`]: hosts and paths, `EUR_USD` instrument names, RFC 3339 nanosecond times,
//!   the typed v20 order and transaction objects, and the one mapping from them to
//!   [`gekko_venue::OrderUpdate`] and [`gekko_core::Fill`] that REST, `/changes` and the
//!   transaction stream share.
//! * [`config`]: [`OandaConfig`] and [`OandaEnvironment`] (practice or live hosts, or a
//!   simulator); [`error`]: [`OandaError`] and its mapping onto the venue contract.
//! * [`http`]: the raw [`OandaHttpClient`] on gekko-net's REST pipeline (Bearer token,
//!   `Accept-Datetime-Format: RFC3339`, keep-alive reuse, the 100/s limiter, 429 pauses,
//!   breakers, retries of GETs only) and the order request body.
//! * [`adapter`]: [`OandaVenue`], the [`gekko_venue::VenueAdapter`] (pre-trade filters
//!   and the margin check, `@<clientID>` lookups, signed positions, the account summary,
//!   native position close).
//! * [`stream`]: the pricing and transaction streams (chunked NDJSON on gekko-net's line
//!   transport), their watchdog and the catch-up through `/changes`.
//!
//! Protocol reference: `shared/reference/venues-and-services.md` §3 (OANDA v20 REST API).

pub mod adapter;
pub mod common;
pub mod config;
pub mod error;
pub mod http;
pub mod stream;

pub use adapter::OandaVenue;
pub use config::{OandaConfig, OandaEnvironment};
pub use error::OandaError;
pub use http::OandaHttpClient;
