//! Binance.US websocket streams: message types and parsing ([`messages`]), and the book
//! sequencer for diff-depth streams ([`depth`]).
//!
//! Connection management (reconnects, pings, staleness) is venue-agnostic and lives in
//! `gekko_net::ws`; the adapter wires the two together.

pub mod depth;
pub mod messages;
mod scan;

pub use depth::{BinanceUsDepthSync, DepthDiff, DepthStep};
pub use messages::{
    BalanceUpdateMsg, BinanceUsWsMessage, BookTickerMsg, DepthUpdateMsg, ExecutionReportMsg,
    OutboundAccountPositionMsg, ParseError, TradeMsg, parse,
};
