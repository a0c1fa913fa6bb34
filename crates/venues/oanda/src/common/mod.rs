//! OANDA v20 facts shared by the REST client and the streams: hosts and paths,
//! instrument names, timestamps, and the typed order and transaction objects with the one
//! mapping from them to gekko's [`gekko_venue::OrderUpdate`] and [`gekko_core::Fill`].

pub mod consts;
pub mod instrument;
pub mod models;
pub mod order;
pub mod rules;
pub mod time;

pub use instrument::{instrument, instrument_name};
pub use order::{OrderTracker, TxOutcome, order_update_from_order};
pub use rules::InstrumentRules;
pub use time::{parse_time_ms, parse_time_ns};
