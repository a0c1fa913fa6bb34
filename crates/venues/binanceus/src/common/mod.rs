//! Binance.US facts shared by the HTTP and websocket layers: constants, endpoint table,
//! enums and symbol mapping.

pub mod consts;
pub mod decimal;
pub mod enums;
pub mod symbol;

pub use consts::{Endpoint, Family, Security};
pub use enums::{
    BinanceUsExecutionType, BinanceUsOrderStatus, BinanceUsOrderType, BinanceUsSide,
    BinanceUsTimeInForce,
};
pub use symbol::{split_venue_symbol, stream_symbol, venue_symbol};
