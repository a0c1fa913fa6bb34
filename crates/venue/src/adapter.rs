//! [`VenueAdapter`]: the calls a venue provides, with defaults where a venue may lack a
//! native one.

use std::time::Duration;

use async_trait::async_trait;
use gekko_core::{
    Balance, BookSnapshot, ClientOrderId, InstrumentId, OrderRequest, Position, VenueId,
};
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::caps::VenueCaps;
use crate::error::{RejectReason, SubmitError, VenueError};
use crate::event::{MarketEvent, OrderUpdate, UserEvent};
use crate::instrument::InstrumentInfo;

/// Clock-synchronisation report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReport {
    /// Venue time minus local time, median of recent samples, in ms.
    pub offset_ms: i64,
    /// Round trip of the best sample.
    pub rtt: Duration,
}

/// Where an adapter runs its stream tasks: the caller's tracker and token.
///
/// Streams are spawned on the *caller's* [`TaskTracker`] so that the caller's shutdown
/// (close the tracker, cancel the token, wait) also waits for every websocket, pump and
/// keepalive an adapter started; nothing an adapter spawns outlives its owner.
#[derive(Debug, Clone)]
pub struct StreamCtx {
    /// Tasks spawned by the adapter for this stream.
    pub tracker: TaskTracker,
    /// Fires when the stream must stop.
    pub cancel: CancellationToken,
}

impl StreamCtx {
    /// A context over an existing tracker and token.
    #[must_use]
    pub fn new(tracker: TaskTracker, cancel: CancellationToken) -> Self {
        Self { tracker, cancel }
    }

    /// The same tracker with a child token: cancelling the child stops only this stream.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            tracker: self.tracker.clone(),
            cancel: self.cancel.child_token(),
        }
    }

    /// Spawns a task on the tracker.
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(fut)
    }
}

/// A margin account's summary (OANDA's account summary), in the account currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarginSummary {
    /// The account currency (`USD`).
    pub currency: String,
    /// Net asset value: balance plus unrealized P/L.
    pub nav: Decimal,
    /// Balance (realized).
    pub balance: Decimal,
    /// Unrealized P/L of the open positions.
    pub unrealized_pl: Decimal,
    /// Margin held by the open positions.
    pub margin_used: Decimal,
    /// Margin available for new positions.
    pub margin_available: Decimal,
    /// How close the account is to a margin closeout, as a fraction (`0.5` = halfway;
    /// the venue closes positions out at `1`).
    pub margin_closeout_percent: Decimal,
}

/// Spot positions: the base-asset holding of each instrument, as a long position.
#[must_use]
pub fn spot_positions(balances: &[Balance], instruments: &[InstrumentId]) -> Vec<Position> {
    instruments
        .iter()
        .filter_map(|i| {
            let b = balances.iter().find(|b| b.asset == i.base)?;
            Some(Position {
                instrument: i.clone(),
                qty: b.total(),
                avg_price: None,
                unrealized_pnl: None,
            })
        })
        .collect()
}

/// A venue, as the gateway engine needs it. Implemented by each venue crate.
///
/// Implementations handle signing, rate limits, circuit breaking and retries of
/// idempotent calls inside these methods. [`VenueAdapter::submit_order`] must never retry.
///
/// A new venue implements the required methods, states its [`VenueCaps`], overrides the
/// defaults it has a native call for, and passes the conformance suite
/// (`gekko_venue::conformance`, feature `conformance`).
#[async_trait]
pub trait VenueAdapter: Send + Sync + std::fmt::Debug + 'static {
    /// Which venue.
    fn id(&self) -> VenueId;

    /// What the venue is: book feed, account model, unknown-order horizon, native calls.
    fn caps(&self) -> VenueCaps;

    /// Checks that the credentials work (a signed read such as the account endpoint).
    async fn verify_credentials(&self) -> Result<(), VenueError>;

    /// Samples the venue clock and updates the offset used for signing.
    ///
    /// The default, for venues whose authentication does not depend on the local clock
    /// (a static bearer token), reports a zero offset without a round trip.
    async fn sync_clock(&self) -> Result<ClockReport, VenueError> {
        Ok(ClockReport {
            offset_ms: 0,
            rtt: Duration::ZERO,
        })
    }

    /// The current clock offset, without a round trip.
    fn clock_offset_ms(&self) -> i64 {
        0
    }

    /// Trading rules for the given instruments (every listed instrument when empty).
    /// Instruments the venue does not list are simply absent from the answer: the engine
    /// skips them with a warning rather than refusing to start.
    async fn instruments(&self, wanted: &[InstrumentId])
    -> Result<Vec<InstrumentInfo>, VenueError>;

    /// Submits an order. Never retried. See [`SubmitError`] for what failure means.
    async fn submit_order(&self, req: &OrderRequest) -> Result<OrderUpdate, SubmitError>;

    /// Looks an order up by client order id; `Ok(None)` when the venue does not know it.
    async fn query_order(
        &self,
        instrument: &InstrumentId,
        client_order_id: &ClientOrderId,
    ) -> Result<Option<OrderUpdate>, VenueError>;

    /// Cancels one order by client order id.
    async fn cancel_order(
        &self,
        instrument: &InstrumentId,
        client_order_id: &ClientOrderId,
    ) -> Result<OrderUpdate, VenueError>;

    /// Open orders for one instrument.
    async fn open_orders(&self, instrument: &InstrumentId) -> Result<Vec<OrderUpdate>, VenueError>;

    /// Cancels every open order on one instrument; an empty list (not an error) when
    /// nothing was open.
    ///
    /// The default lists the open orders and cancels each. An order that closed between
    /// the list and its cancel (filled, or cancelled by someone else) is reported in its
    /// final state by the cancel path and is not an error.
    async fn cancel_all(&self, instrument: &InstrumentId) -> Result<Vec<OrderUpdate>, VenueError> {
        let mut out = Vec::new();
        for o in self.open_orders(instrument).await? {
            match self.cancel_order(instrument, &o.client_order_id).await {
                Ok(u) => out.push(u),
                Err(VenueError::Rejected {
                    reason: RejectReason::UnknownOrder,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Balances.
    async fn balances(&self) -> Result<Vec<Balance>, VenueError>;

    /// Positions. Spot venues derive them from balances (the default: base-asset holdings
    /// of each instrument, as long positions); margin venues override with their own.
    async fn positions(&self, instruments: &[InstrumentId]) -> Result<Vec<Position>, VenueError> {
        Ok(spot_positions(&self.balances().await?, instruments))
    }

    /// Every execution of one order as the venue records it, for reconciliation: fills
    /// made while nobody listened (the gateway down, its user stream reconnecting) that
    /// the user stream will never replay. The engine calls it when reconciliation finds
    /// an order more filled than it knew, and records what it has not seen.
    ///
    /// The trade ids must be the ones the venue's user stream reports for the same
    /// executions, so that the engine's de-duplication by trade id holds across both
    /// paths. The default reports none: a venue whose stream ids cannot be matched
    /// keeps it, rather than risk counting a fill twice.
    async fn order_fills(&self, order: &OrderUpdate) -> Result<Vec<gekko_core::Fill>, VenueError> {
        let _ = order;
        Ok(Vec::new())
    }

    /// The notional of `qty` at `price` of `instrument` in the account currency, which the
    /// gateway's notional limits (`COMPLIANCE_SETTINGS max_order_notional`,
    /// `max_daily_notional`) are written in.
    ///
    /// The default is `qty × price`, in the instrument's quote currency: right for
    /// venues whose pairs are quoted in the account currency (Binance.US and Coinbase USD
    /// pairs). A venue trading pairs quoted in other currencies (OANDA: `USD_JPY` in
    /// JPY, `EUR_GBP` in GBP) converts.
    async fn account_notional(
        &self,
        instrument: &InstrumentId,
        qty: Decimal,
        price: Decimal,
    ) -> Result<Decimal, VenueError> {
        let _ = instrument;
        qty.checked_mul(price).ok_or_else(|| VenueError::Malformed {
            reason: format!("notional {qty} x {price} overflows"),
            payload: String::new(),
        })
    }

    /// The margin account's summary, for venues with [`crate::AccountModel::Margin`]; the
    /// default (spot venues) is `Ok(None)`.
    async fn margin_summary(&self) -> Result<Option<MarginSummary>, VenueError> {
        Ok(None)
    }

    /// Closes the position in one instrument through the venue's own call (OANDA
    /// `PUT /positions/{instrument}/close`), returning the closing orders.
    ///
    /// Only called when [`VenueCaps::native_close_position`] is set; otherwise the
    /// engine flattens a spot holding with a market order through its own safe path. The
    /// default reports the call as unsupported.
    async fn close_position(
        &self,
        instrument: &InstrumentId,
    ) -> Result<Vec<OrderUpdate>, VenueError> {
        let _ = instrument;
        Err(VenueError::Unsupported {
            venue: self.id().as_str(),
            what: "close_position",
        })
    }

    /// A full order-book snapshot over REST. The default reports the call as
    /// unsupported (venues with an in-band snapshot or no book at all).
    async fn book_snapshot(&self, instrument: &InstrumentId) -> Result<BookSnapshot, VenueError> {
        let _ = instrument;
        Err(VenueError::Unsupported {
            venue: self.id().as_str(),
            what: "book_snapshot",
        })
    }

    /// Asks the market stream to resynchronise one book after a
    /// [`MarketEvent::BookGap`]: the adapter does whatever its venue needs (fetch and
    /// align a REST snapshot, resubscribe a channel) and the new book arrives on the
    /// market stream as a [`crate::BookUpdate::Snapshot`]. Returns once the request is
    /// queued, not when the snapshot arrives.
    ///
    /// The default reports the call as unsupported (venues without a book).
    async fn resync_book(&self, instrument: &InstrumentId) -> Result<(), VenueError> {
        let _ = instrument;
        Err(VenueError::Unsupported {
            venue: self.id().as_str(),
            what: "resync_book",
        })
    }

    /// Starts the market-data stream for `instruments` on `ctx`. The implementation
    /// reconnects with backoff and resubscribes by itself, reporting
    /// `Connected`/`Disconnected`, and checks book sequencing; it stops when
    /// `ctx.cancel` fires or the receiver is dropped.
    fn market_stream(
        &self,
        instruments: &[InstrumentId],
        ctx: &StreamCtx,
    ) -> mpsc::Receiver<MarketEvent>;

    /// Starts the user-data stream (orders, fills, balances) on `ctx`, reconnecting by
    /// itself.
    fn user_stream(&self, ctx: &StreamCtx) -> mpsc::Receiver<UserEvent>;

    /// Hands back the last [`UserEvent::Cursor`] the engine stored, before it calls
    /// [`VenueAdapter::user_stream`]: the next user stream starts by replaying what the
    /// venue recorded after it. The default ignores it (venues without a replay).
    fn resume_user_stream(&self, cursor: &str) {
        let _ = cursor;
    }
}
