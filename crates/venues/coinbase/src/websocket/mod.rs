//! Coinbase Advanced Trade websocket: message types and parsing ([`messages`]), `user`
//! orders to gekko orders and fills ([`user`]), and the market and user streams the
//! adapter starts ([`stream`]).
//!
//! Connection management (reconnects, backoff, staleness, the per-connection sequence
//! guard) is venue-agnostic and lives in `gekko_net::ws`; this module supplies Coinbase's
//! subscribe messages and its mapping to gekko events.

pub mod messages;
pub mod stream;
pub mod user;

pub use messages::{CoinbaseWsMessage, Header, ParseError, parse, sequence_num};
pub use stream::{
    CoinbaseMarketControl, CoinbaseWsConfig, METRIC_GAPS, METRIC_MALFORMED, METRIC_RESUBSCRIBES,
    market_stream, subscribe_message, user_stream,
};
pub use user::{CoinbaseFillTracker, OrderMapError, order_update};
