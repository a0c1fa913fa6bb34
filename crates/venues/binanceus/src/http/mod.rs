//! The raw REST layer: [`BinanceUsHttpClient`] signs, rate-limits, circuit-breaks and
//! retries idempotent calls; [`models`] are the typed responses.

pub mod client;
pub mod models;
pub mod params;

pub use client::{BinanceUsHttpClient, NewOrder, OrderRespType};
pub use params::Params;
