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
//! Each simulator is three layers, so the next venue reuses two of them:
//!
//! - [`engine`]: the venue-neutral exchange (books, spot and margin accounts, matching,
//!   the seeded market generator). It emits neutral events and neutral rejection reasons
//!   and knows no wire format.
//! - [`harness`]: how a simulator is run and misbehaves (faults, clock skew, market pause,
//!   stats, the admin HTTP API, listeners, tracked tasks and bounded shutdown).
//! - one protocol module per venue, speaking its wire format over the engine:
//!   [`binanceus`] (Binance.US spot REST API, market-data streams and the user-data
//!   stream) and [`coinbase`] (Coinbase Advanced Trade REST API and its market-data and
//!   user websockets, over TLS).
//! - [`llm`]: an OpenAI- and OpenRouter-compatible LLM endpoint (models, key info, chat,
//!   streaming with keep-alive comments, injectable error statuses, mid-stream errors,
//!   slow streams and hangs), standalone: it shares no engine with the venues.
//!
//! The crate depends on no `gekko-*` crate on purpose: it is an independent oracle for
//! the gateways, written from the venues' documentation rather than from gekko's types.

#![warn(unreachable_pub)]

pub mod binanceus;
pub mod coinbase;
pub mod engine;
pub mod harness;
pub mod llm;
pub mod oanda;
