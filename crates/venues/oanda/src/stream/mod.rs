//! The OANDA streams: prices and transactions as chunked NDJSON on the stream host,
//! parsed line by line, watched for silence, and caught up through `/changes` after a
//! reconnect so that no fill is missed.
//!
//! * [`messages`]: the lines of both streams and their borrowing parsers.
//!
//! Connection management (reconnects, backoff, the silence watchdog, joining lines split
//! across chunks) is venue-agnostic and lives in `gekko_net::line`; this module supplies
//! OANDA's requests, its heartbeat rule and the mapping to gekko events.

pub mod messages;

pub use messages::{
    OandaPrice, OandaPricingLine, OandaTransactionLine, ParseError, PriceLevel, parse_pricing_line,
    parse_transaction_line, transaction_seq,
};
