//! Binance.US websocket streams: message types and parsing ([`messages`]).
//!
//! Connection management (reconnects, pings, staleness) is venue-agnostic and lives in
//! `gekko_net::ws`; the adapter wires the two together.

pub mod messages;

pub use messages::{
    BalanceUpdateMsg, BinanceUsWsMessage, BookTickerMsg, DepthUpdateMsg, ExecutionReportMsg,
    OutboundAccountPositionMsg, ParseError, TradeMsg, parse,
};
