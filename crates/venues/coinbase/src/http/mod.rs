//! The raw REST layer: [`CoinbaseHttpClient`] (JWT per request, private/public limiters,
//! `x-ratelimit-*` and 429 handling, circuit breakers, retries of idempotent GETs only)
//! and the typed response [`models`].

pub mod client;
pub mod models;

pub use client::{CoinbaseHooks, CoinbaseHttpClient, NewOrder, OrderConfiguration, OrderFilter};
