//! The raw v20 REST layer: [`OandaHttpClient`] on gekko-net's pipeline, and the order
//! request body it sends.

pub mod client;
pub mod order;

pub use client::{Family, OandaHooks, OandaHttpClient};
pub use order::{OandaOrderType, OandaTimeInForce, OrderBody};
