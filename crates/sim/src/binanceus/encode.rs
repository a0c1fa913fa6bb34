//! Engine events to Binance.US stream payloads.
//!
//! The engine announces neutral [`EngineEvent`]s; this module is the [`EventSink`] that
//! turns each into the JSON a Binance.US websocket client receives (an `executionReport`,
//! an `outboundAccountPosition`, a `depthUpdate`, a `bookTicker`, a `trade`), serializes it
//! once, and broadcasts it to every connection, which filters for its own subscriptions.
//! It runs under the engine lock (see [`crate::engine`]), so payloads leave in exactly the
//! order the engine made the changes; a broadcast send never blocks.
//!
//! Events Binance.US has no message for are dropped here: synchronous rejections are
//! answered on the REST call only, and a spot venue has no margin positions.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use super::wire::{self, ExecType};
use crate::engine::{EngineEvent, EventSink};

/// Which market stream an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarketKind {
    /// `<symbol>@depth` and `<symbol>@depth@100ms`.
    Depth,
    /// `<symbol>@bookTicker`.
    BookTicker,
    /// `<symbol>@trade`.
    Trade,
}

/// A market-data event, already serialized once for every subscriber.
#[derive(Debug)]
pub(crate) struct MarketEvent {
    /// Lowercase symbol, as in stream names.
    pub(crate) symbol_lower: String,
    /// Stream family.
    pub(crate) kind: MarketKind,
    /// JSON payload (without the combined-stream wrapper).
    pub(crate) payload: String,
}

/// A user-data event for one account.
#[derive(Debug)]
pub(crate) struct UserEvent {
    /// The account's API key.
    pub(crate) api_key: String,
    /// JSON payload.
    pub(crate) payload: String,
}

/// Where the encoder sends its payloads. Broadcast channels because every websocket
/// connection filters the same stream of events for its own subscriptions.
#[derive(Debug, Clone)]
pub(crate) struct Sinks {
    /// Market data.
    pub(crate) market: broadcast::Sender<Arc<MarketEvent>>,
    /// User data.
    pub(crate) user: broadcast::Sender<Arc<UserEvent>>,
}

impl Sinks {
    fn market(&self, symbol: &str, kind: MarketKind, payload: &Value) {
        // An Err only means nobody is subscribed right now, which is normal.
        let _ = self.market.send(Arc::new(MarketEvent {
            symbol_lower: symbol.to_lowercase(),
            kind,
            payload: payload.to_string(),
        }));
    }

    fn user(&self, api_key: &str, payload: &Value) {
        let _ = self.user.send(Arc::new(UserEvent {
            api_key: api_key.to_owned(),
            payload: payload.to_string(),
        }));
    }
}

impl EventSink for Sinks {
    fn emit(&mut self, event: EngineEvent<'_>) {
        match event {
            EngineEvent::OrderAccepted { order, time } => self.user(
                &order.api_key,
                &wire::execution_report(order, ExecType::New, time, None, None),
            ),
            EngineEvent::OrderPartiallyFilled { order, fill, time }
            | EngineEvent::OrderFilled { order, fill, time } => self.user(
                &order.api_key,
                &wire::execution_report(order, ExecType::Trade, time, Some(fill), None),
            ),
            EngineEvent::OrderCancelled {
                order,
                cancel_client_id,
                time,
            } => self.user(
                &order.api_key,
                &wire::execution_report(
                    order,
                    ExecType::Canceled,
                    time,
                    None,
                    Some(cancel_client_id),
                ),
            ),
            EngineEvent::OrderExpired { order, time } => self.user(
                &order.api_key,
                &wire::execution_report(order, ExecType::Expired, time, None, None),
            ),
            EngineEvent::BalanceChanged {
                account,
                balances,
                time,
            } => self.user(account, &wire::account_position(time, balances)),
            EngineEvent::BookDiff {
                symbol,
                first_seq,
                last_seq,
                bids,
                asks,
                time,
            } => self.market(
                symbol,
                MarketKind::Depth,
                &wire::depth_update(symbol, time, first_seq, last_seq, bids, asks),
            ),
            EngineEvent::Ticker {
                symbol,
                seq,
                bid,
                ask,
            } => self.market(
                symbol,
                MarketKind::BookTicker,
                &wire::book_ticker(seq, symbol, bid, ask),
            ),
            EngineEvent::Trade {
                symbol,
                trade,
                time,
            } => self.market(
                symbol,
                MarketKind::Trade,
                &wire::trade_event(symbol, time, trade),
            ),
            EngineEvent::OrderRejected { .. } | EngineEvent::PositionChanged { .. } => {}
        }
    }
}
