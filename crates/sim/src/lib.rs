//! Simulated venues that speak the real wire protocols.
//!
//! Gateways are written against the venues' published protocols, and the only honest way
//! to test them offline is to point them, unmodified, at something that speaks the same
//! bytes: same paths, same parameter names, same JSON shapes, same error codes and HTTP
//! statuses. That is what this crate provides, one module per venue.
//!
//! A simulator is also the only place where the *failures* a gateway must survive can be
//! produced on demand and reproducibly: rate-limit storms and IP bans, lost order
//! responses, 5xx bursts, dropped or silent websockets, sequence gaps and malformed
//! messages. Each simulator therefore carries a fault injector, reachable in-process
//! (through its handle) and over HTTP (through an admin API on its REST listener), so the
//! same scenarios run from Rust tests and from `gekko up`.
//!
//! - [`binanceus`]: Binance.US spot REST API, market-data streams and the user-data stream.

pub mod binanceus;
