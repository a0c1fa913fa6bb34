//! OANDA v20 adapter for gekko.
//!
//! Same shape as every gekko venue crate (see `gekko-binanceus`, `gekko-coinbase`):
//!
//! * [`common`]: hosts and paths, `EUR_USD` instrument names, RFC 3339 nanosecond times,
//!   the typed v20 order and transaction objects, and the one mapping from them to
//!   [`gekko_venue::OrderUpdate`] and [`gekko_core::Fill`] that REST, `/changes` and the
//!   transaction stream share.
//! * [`stream`]: the pricing and transaction streams (chunked NDJSON on gekko-net's line
//!   transport), their watchdog and the catch-up through `/changes`.
//!
//! Protocol reference: `shared/reference/venues-and-services.md` §3 (OANDA v20 REST API).

pub mod common;
pub mod stream;
