//! What a venue must provide to be run by the gateway.
//!
//! A venue crate implements [`VenueAdapter`] over its own raw client (signing, rate limits,
//! retries of idempotent calls). The gateway supplies everything venue-agnostic on top:
//! order safety (persist-before-send, in-flight reconciliation, never resubmitting),
//! pre-trade checks, local order books, reconciliation at start-up, readiness, metrics and
//! the gRPC service.

use std::time::Duration;

use async_trait::async_trait;
use gekko_core::{
    Balance, BookLevel, BookSnapshot, ClientOrderId, InstrumentId, OrderRequest, OrderStatus,
    Position, Quote, Side, Trade, VenueId,
};
use rust_decimal::Decimal;

/// A venue's trading rules for one instrument (Binance `exchangeInfo` filters and the like).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentInfo {
    /// gekko's id.
    pub id: InstrumentId,
    /// The venue's symbol (`BTCUSD`, `BTC-USD`, `EUR_USD`).
    pub venue_symbol: String,
    /// Price increment; prices must be multiples of it (0 = unchecked).
    pub tick_size: Decimal,
    /// Quantity increment (0 = unchecked).
    pub lot_size: Decimal,
    /// Smallest quantity (0 = unchecked).
    pub min_qty: Decimal,
    /// Largest quantity (0 = unchecked).
    pub max_qty: Decimal,
    /// Smallest `price * qty` (0 = unchecked).
    pub min_notional: Decimal,
    /// Whether the venue currently accepts orders.
    pub trading: bool,
}

/// The venue's view of one order, from a REST answer or a user-stream event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderUpdate {
    /// gekko's client order id.
    pub client_order_id: ClientOrderId,
    /// The venue's order id.
    pub venue_order_id: String,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Side.
    pub side: Side,
    /// Status at the venue.
    pub status: OrderStatus,
    /// Original quantity.
    pub qty: Decimal,
    /// Limit price, if any.
    pub price: Option<Decimal>,
    /// Cumulative filled quantity.
    pub filled_qty: Decimal,
    /// Cumulative quote quantity (for the average price).
    pub cum_quote: Decimal,
    /// Fill in this update, for user-stream trade events: (trade id, price, qty, fee, fee asset).
    pub last_fill: Option<LastFill>,
    /// Venue event time.
    pub ts_ms: i64,
    /// Reject reason, when rejected.
    pub reject_reason: Option<String>,
}

/// The fill carried by an execution report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastFill {
    /// Venue trade id.
    pub trade_id: String,
    /// Price.
    pub price: Decimal,
    /// Quantity.
    pub qty: Decimal,
    /// Fee.
    pub fee: Decimal,
    /// Fee asset.
    pub fee_asset: String,
}

/// Why a venue call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VenueError {
    /// The venue refused the request with its own error code. Definitive.
    #[error("venue rejected the request: {code} {message}")]
    Rejected {
        /// Venue error code (e.g. Binance `-2010`).
        code: i64,
        /// Venue message.
        message: String,
    },
    /// Rate limited or banned; nothing was sent. Retry after the given time.
    #[error("rate limited by the venue; retry in {retry_after:?}")]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// The circuit for this endpoint family is open; nothing was sent.
    #[error("circuit open for {family}; retry in {retry_after:?}")]
    CircuitOpen {
        /// Endpoint family.
        family: String,
        /// Until it half-opens.
        retry_after: Duration,
    },
    /// Credentials are missing or refused.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// Transport failure, timeout, or 5xx. For non-idempotent calls the outcome is unknown.
    #[error("transport error: {0}")]
    Transport(String),
    /// The venue answered with something we could not parse. Keeps the payload.
    #[error("malformed venue payload: {reason}; payload: {payload}")]
    Malformed {
        /// What was wrong.
        reason: String,
        /// The offending payload (truncated).
        payload: String,
    },
}

impl VenueError {
    /// Whether an idempotent call may be retried.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            VenueError::RateLimited { .. }
                | VenueError::CircuitOpen { .. }
                | VenueError::Transport(_)
        )
    }
}

/// The outcome of submitting an order.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    /// Definitively not placed: the venue rejected it, or it never left (rate limit, open
    /// circuit, clock error caught before sending). Safe to report as rejected.
    #[error("order not placed: {0}")]
    NotPlaced(VenueError),
    /// The request may have reached the venue but no definitive answer came back
    /// (timeout, connection reset, 5xx, -1006/-1007). The order is *in flight*: it must be
    /// reconciled by querying the client order id, and never resubmitted.
    #[error("order outcome unknown: {0}")]
    Ambiguous(String),
}

/// An event from a venue's market-data stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketEvent {
    /// The stream (re)connected and is subscribed; books must be resynchronised.
    Connected,
    /// The stream dropped; books are stale until the next `Connected`.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// Best bid/ask.
    Quote(Quote),
    /// Public trade.
    Trade(Trade),
    /// An incremental book update covering venue sequence numbers `first..=last`.
    BookDiff(BookDiff),
    /// A heartbeat or ping with no data: the stream is alive.
    Heartbeat,
}

/// An incremental order-book update (Binance `depthUpdate`: `U`, `u`, `b`, `a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookDiff {
    /// The instrument.
    pub instrument: InstrumentId,
    /// First update id in the event (`U`).
    pub first_update_id: u64,
    /// Last update id in the event (`u`).
    pub last_update_id: u64,
    /// Changed bid levels; qty 0 removes the level.
    pub bids: Vec<BookLevel>,
    /// Changed ask levels; qty 0 removes the level.
    pub asks: Vec<BookLevel>,
    /// Event time.
    pub ts_ms: i64,
}

/// An event from a venue's private (user-data) stream.
// Order updates dominate this stream; boxing them would add an allocation per event to
// spare the rare `Connected`/`Disconnected` a few hundred bytes of channel slot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    /// The stream (re)connected; order state must be reconciled by REST.
    Connected,
    /// The stream dropped.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// An order changed.
    Order(OrderUpdate),
    /// Balances changed.
    Balances(Vec<Balance>),
}

/// Clock-synchronisation report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockReport {
    /// Venue time minus local time, median of recent samples, in ms.
    pub offset_ms: i64,
    /// Round trip of the best sample.
    pub rtt: Duration,
}

/// A venue, as the gateway needs it. Implemented by each venue crate.
///
/// Implementations handle signing, rate limits, circuit breaking and retries of
/// idempotent calls inside these methods. [`VenueAdapter::submit_order`] must never retry.
#[async_trait]
pub trait VenueAdapter: Send + Sync + std::fmt::Debug + 'static {
    /// Which venue.
    fn id(&self) -> VenueId;

    /// Checks that the credentials work (a signed read such as the account endpoint).
    async fn verify_credentials(&self) -> Result<(), VenueError>;

    /// Samples the venue clock and updates the offset used for signing.
    async fn sync_clock(&self) -> Result<ClockReport, VenueError>;

    /// The current clock offset, without a round trip.
    fn clock_offset_ms(&self) -> i64;

    /// Trading rules for the given instruments.
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
    async fn cancel_all(&self, instrument: &InstrumentId) -> Result<Vec<OrderUpdate>, VenueError>;

    /// Balances.
    async fn balances(&self) -> Result<Vec<Balance>, VenueError>;

    /// Positions. Spot venues derive them from balances (the default: base-asset holdings
    /// of each instrument, as long positions).
    async fn positions(&self, instruments: &[InstrumentId]) -> Result<Vec<Position>, VenueError> {
        let balances = self.balances().await?;
        Ok(instruments
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
            .collect())
    }

    /// A full order-book snapshot (Binance `GET /api/v3/depth`).
    async fn book_snapshot(&self, instrument: &InstrumentId) -> Result<BookSnapshot, VenueError>;

    /// Starts the market-data stream for `instruments`. The implementation reconnects with
    /// backoff and resubscribes by itself, reporting `Connected`/`Disconnected`; it stops
    /// when `cancel` fires or the receiver is dropped.
    fn market_stream(
        &self,
        instruments: &[InstrumentId],
        cancel: tokio_util::sync::CancellationToken,
    ) -> tokio::sync::mpsc::Receiver<MarketEvent>;

    /// Starts the user-data stream (order and balance events), reconnecting by itself.
    fn user_stream(
        &self,
        cancel: tokio_util::sync::CancellationToken,
    ) -> tokio::sync::mpsc::Receiver<UserEvent>;

    /// Flattening a long spot position is a market sell of the base asset. Venues with
    /// real positions (OANDA) override this with their close endpoint.
    fn supports_short(&self) -> bool {
        false
    }
}
