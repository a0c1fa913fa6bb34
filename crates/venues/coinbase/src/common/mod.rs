//! Coinbase Advanced Trade facts shared by the HTTP and websocket layers: hosts, paths
//! and headers, wire enums, symbol mapping, timestamps, and the one parser from a
//! Coinbase order object (REST `Order` or websocket `user` order) to gekko's
//! [`gekko_venue::OrderUpdate`].

pub mod consts;
pub mod enums;
pub mod order;
pub mod rules;
pub mod symbol;
pub mod time;

pub use enums::{CoinbaseOrderStatus, CoinbaseSide};
pub use order::{order_update, order_update_from_slice};
pub use rules::ProductRules;
pub use symbol::{instrument, product_id};
pub use time::parse_rfc3339_ms;
