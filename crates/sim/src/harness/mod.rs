//! The venue-neutral simulator harness: everything a simulator needs besides its engine
//! and its wire protocol.
//!
//! A simulator is three layers: the [`crate::engine`] (what the venue *does*), a
//! protocol module such as [`crate::binanceus`] (how the venue *speaks*), and this
//! harness (how a simulator is *run and misbehaves*). The harness holds what would
//! otherwise be copied into every protocol module:
//!
//! - [`fault`]: the fault vocabulary and the injector state (one-shot counters,
//!   silences, the websocket drop signal), dispatching the faults a protocol owns
//!   through [`FaultHooks`];
//! - [`clock`]: venue time with injectable skew, and the market-pause switch;
//! - [`stats`]: request/connection counters and the [`SimStats`] snapshot;
//! - [`admin`]: the `/sim/admin/` HTTP API, generic over [`AdminControl`];
//! - [`server`]: binding listeners, tracked tasks, cancellation and bounded shutdown;
//! - [`process`]: the standalone binaries' preamble ([`run_until_signal`], exit codes,
//!   the `--fault` flag).
//!
//! [`Harness`] bundles the per-simulator state so a protocol's shared state holds one
//! field for all of it.

pub mod admin;
pub mod clock;
pub mod error;
pub mod fault;
pub mod process;
pub mod server;
pub mod stats;

pub use admin::AdminControl;
pub use clock::{MarketSwitch, SimClock};
pub use error::SimError;
pub use fault::{Fault, FaultHooks, FaultState};
pub use process::{EXIT_CONFIG, Failure, run_until_signal};
pub use server::{Lifecycle, SHUTDOWN_GRACE};
pub use stats::{SimStats, Stats, bump};

use tokio_util::sync::CancellationToken;

/// The harness state one simulator shares between its tasks. Each part has the cheapest
/// synchronisation that keeps it correct (atomics, a tiny mutex, a `watch`), so none of
/// it ever waits on the engine lock.
#[derive(Debug)]
pub struct Harness {
    /// Venue time.
    pub clock: SimClock,
    /// Market pause.
    pub market: MarketSwitch,
    /// Injected faults and the websocket drop signal.
    pub faults: FaultState,
    /// Counters.
    pub stats: Stats,
    /// Root of the simulator's shutdown tree (a clone of its [`Lifecycle`] token).
    pub cancel: CancellationToken,
}

impl Harness {
    /// Fresh state under `cancel`.
    #[must_use]
    pub fn new(cancel: CancellationToken) -> Self {
        Self {
            clock: SimClock::default(),
            market: MarketSwitch::default(),
            faults: FaultState::default(),
            stats: Stats::default(),
            cancel,
        }
    }
}
