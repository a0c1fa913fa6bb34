//! The venue contract: what a venue adapter provides and what the gateway engine may rely
//! on.
//!
//! gekko trades on venues that differ in nearly everything: Binance.US signs a query
//! string and publishes numbered book diffs beside a REST snapshot; Coinbase signs a JWT
//! per request and sends its level-2 snapshot in band with a per-connection sequence;
//! OANDA takes a bearer token, streams prices as chunked JSON lines, has no book at all,
//! and keeps real, signed positions with a close endpoint. This crate states the one
//! contract all of them implement, so the engine (persist-before-send, in-flight
//! resolution, reconciliation, books, fills) is written once:
//!
//! * [`VenueAdapter`]: the calls, with defaults where a venue may lack a native one
//!   (`sync_clock`, `cancel_all` as list-then-cancel, `close_position`, `book_snapshot`).
//! * [`VenueCaps`]: what the venue is (book feed, account model, unknown-order horizon,
//!   native close and cancel-all), so the engine adapts by declaration, not by venue name.
//! * [`MarketEvent`]/[`BookUpdate`] and [`UserEvent`]: neutral stream events. Book
//!   sequencing is checked by the adapter, which knows its venue's rules; a gap is reported
//!   as [`MarketEvent::BookGap`] and the engine resyncs through [`VenueAdapter::resync_book`].
//! * [`VenueError`]/[`SubmitError`]: failures, with rejections carrying the venue's code
//!   as a string plus a neutral [`RejectReason`].
//!
//! The crate depends on `gekko-core`, tokio and tokio-util only (plus compile-time
//! helpers): venue crates build on it without pulling in the bus, the runtime, protobuf
//! or tonic.

mod adapter;
mod caps;
mod error;
mod event;
mod instrument;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "mock")]
pub mod mock;

pub use adapter::{ClockReport, MarginSummary, StreamCtx, VenueAdapter, spot_positions};
pub use caps::{AccountModel, BookFeed, VenueCaps};
pub use error::{RejectReason, SubmitError, VenueError};
pub use event::{BookDelta, BookUpdate, LastFill, MarketEvent, OrderUpdate, UserEvent};
pub use instrument::InstrumentInfo;
