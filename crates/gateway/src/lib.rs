//! The venue-agnostic gateway.
//!
//! A venue crate implements [`venue::VenueAdapter`]; this crate turns that into a
//! production gateway: deterministic client order ids persisted on the bus before any
//! request leaves, in-flight reconciliation instead of resubmission, pre-trade checks,
//! local order books kept in sync by snapshot + diff with gap detection, start-up
//! reconciliation, readiness, metrics, and the gRPC `GatewayService`.

pub mod book;
pub mod checks;
pub mod engine;
pub mod orders;
pub mod service;
pub mod venue;

pub use venue::{
    BookDiff, ClockReport, InstrumentInfo, LastFill, MarketEvent, OrderUpdate, SubmitError,
    UserEvent, VenueAdapter, VenueError,
};
