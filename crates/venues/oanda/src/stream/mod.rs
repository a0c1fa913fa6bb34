//! The OANDA streams: prices and transactions as chunked NDJSON on the stream host,
//! parsed line by line, watched for silence, and caught up through `/changes` after a
//! reconnect so that no fill is missed.
//!
//! * [`messages`]: the lines of both streams and their borrowing parsers.
//! * [`pricing`]: [`pricing_stream`], prices to quotes and top-levels books.
//! * [`transactions`]: [`transaction_stream`], transactions to order updates and fills,
//!   with the catch-up through `/changes` after a reconnect or a missed transaction.
//!
//! Connection management (reconnects, backoff, the silence watchdog, joining lines split
//! across chunks) is venue-agnostic and lives in `gekko_net::line`; this module supplies
//! OANDA's requests, its heartbeat rule and the mapping to gekko events.

mod connect;
pub mod messages;
pub mod pricing;
mod scan;
pub mod transactions;

pub use connect::{METRIC_MALFORMED, METRIC_STALE};
pub use messages::{
    OandaPrice, OandaPricingLine, OandaTransactionLine, ParseError, PriceLevel, parse_pricing_line,
    parse_transaction_line, transaction_seq,
};
pub use pricing::pricing_stream;
pub use transactions::{
    METRIC_CATCH_UPS, METRIC_CAUGHT_UP, METRIC_GAPS, OandaCatchUp, TransactionStart,
    transaction_stream,
};
