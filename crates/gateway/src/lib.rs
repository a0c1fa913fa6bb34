//! The venue-agnostic gateway.
//!
//! A venue crate implements [`gekko_venue::VenueAdapter`]; this crate turns that into a
//! production gateway: deterministic client order ids persisted on the bus before any
//! request leaves, in-flight reconciliation instead of resubmission, pre-trade checks,
//! local order books fed by the adapter's sequenced updates, a durable de-duplicated fill
//! stream, start-up reconciliation, readiness, metrics, and the gRPC `GatewayService`
//! (one router for every venue a process hosts).
//!
//! Layout: [`engine`] orchestrates; [`tracker`] is the order state machine and the
//! running counts the limits read; `market` is the market-data component; [`book`] the
//! local book; [`checks`] the pre-trade rules; [`control`] the kill switch, cancel-all,
//! flatten and report data the controller's shutdown modes use; [`config`] and [`error`]
//! the settings and failures; [`service`] the gRPC surface; [`lease`] the Redis lease and
//! fencing token replicas of one venue account elect a leader with (`ha` is the leader and
//! standby roles, `forward` a standby's forwarding to the leader).

pub mod book;
pub mod checks;
pub mod config;
pub mod control;
pub mod engine;
pub mod error;
mod forward;
mod ha;
pub mod lease;
mod market;
pub mod orders;
pub mod service;
pub mod tracker;

pub use gekko_venue::{
    BookDelta, BookUpdate, ClockReport, InstrumentInfo, LastFill, MarketEvent, OrderUpdate,
    RejectReason, StreamCtx, SubmitError, UserEvent, VenueAdapter, VenueCaps, VenueError,
};
