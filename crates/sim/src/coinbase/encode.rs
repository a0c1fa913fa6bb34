//! Engine events to Coinbase websocket events (reference 1.6), broadcast to every
//! connection.
//!
//! The engine announces neutral [`EngineEvent`]s; [`Sinks`] is the [`EventSink`] that
//! turns each into the Coinbase *event* a websocket client receives (an `l2_data`
//! `update`, a `ticker`, a `market_trades` trade, a `user` order) and broadcasts it. It
//! runs under the engine lock, so events leave in exactly the order the engine made the
//! changes, and every event carries a number from one counter ([`CbEvent::seq`]). That
//! number is what makes snapshots exact: a connection builds its snapshot under the same
//! lock and notes the counter ([`Sinks::last_seq`]); of the events its receiver (created
//! before the snapshot) then yields, those numbered at or below the note are already in
//! the snapshot and are skipped, the rest are applied. No update is missed or doubled.
//!
//! The envelope (`channel`, `timestamp`, per-connection `sequence_num`) is added by each
//! connection (`ws.rs`), because sequence numbers are per connection.
//!
//! What the engine does not know and Coinbase reports is kept here, under the same lock:
//! - per order, the time in force, `post_only` and GTD end time of the configuration it
//!   was placed with (the venue calls [`Sinks::next_order`] before placing);
//! - which cancel is a GTD expiry (status `EXPIRED`, [`Sinks::expiring`]);
//! - per product, the last trade price and the traded volume, low and high since start
//!   (the simulator's "24 h" and "52 w" figures: it never runs that long);
//! - a pending injected gap per product ([`Sinks::gap_next`]): the next `l2_data` update
//!   of that product is marked, and each connection skips sequence numbers before it.
//!
//! Decisions the reference leaves open: `market_trades` `side` is the taker's side;
//! `leaves_quantity` is zero once an order is closed; order rejections (answered on REST
//! with `success:false`) are not announced on `user`, the order never existed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::rest::{dec, fee_quote, quote_of, rfc3339, side_str, status_str, tif_of};
use super::venue::order_uuid;
use crate::engine::{
    EngineEvent, EventSink, Level, PublicTrade, SimOrder, SimOrderType, SimSymbol,
};

/// What a broadcast event is about.
#[derive(Debug)]
pub(crate) enum Payload {
    /// A book change: the `updates` array of an `l2_data` `update` event.
    L2 {
        /// Product id.
        product: String,
        /// `[{side, event_time, price_level, new_quantity}]`, absolute quantities.
        updates: Value,
        /// An injected gap: the connection skips sequence numbers before sending it.
        gap: bool,
    },
    /// A ticker object (`type: "ticker"`, best bid/ask and their quantities).
    Ticker {
        /// Product id.
        product: String,
        /// The ticker object.
        ticker: Value,
    },
    /// One public trade, as a `market_trades` trade object.
    Trade {
        /// Product id.
        product: String,
        /// The trade object.
        trade: Value,
    },
    /// An order of one account changed: a `user` order object.
    Order {
        /// The account (key name).
        account: String,
        /// Product id.
        product: String,
        /// The order object.
        order: Value,
    },
}

/// One engine change, numbered (see the module docs).
#[derive(Debug)]
pub(crate) struct CbEvent {
    /// Position in the sink's one sequence (starts at 1).
    pub(crate) seq: u64,
    /// What changed.
    pub(crate) payload: Payload,
}

/// What Coinbase reports about an order that the engine does not keep.
#[derive(Debug, Clone)]
struct OrderMeta {
    time_in_force: &'static str,
    post_only: bool,
    end_time: Option<i64>,
}

impl OrderMeta {
    fn from_config(config: &Value, end_time: Option<i64>) -> Self {
        let post_only = config
            .as_object()
            .and_then(|m| m.values().next())
            .and_then(|c| c.get("post_only"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Self {
            time_in_force: tif_of(config),
            post_only,
            end_time,
        }
    }
}

/// Ticker figures of one product.
#[derive(Debug, Clone)]
struct ProductStats {
    open: Decimal,
    last: Option<Decimal>,
    volume: Decimal,
    low: Option<Decimal>,
    high: Option<Decimal>,
    bid: Option<Level>,
    ask: Option<Level>,
}

/// The Coinbase event sink (see the module docs).
#[derive(Debug)]
pub(crate) struct Sinks {
    tx: broadcast::Sender<Arc<CbEvent>>,
    seq: u64,
    gaps: HashSet<String>,
    stats: HashMap<String, ProductStats>,
    pending: Option<OrderMeta>,
    meta: HashMap<u64, OrderMeta>,
    expiring: Option<u64>,
}

impl Sinks {
    /// A sink broadcasting on `tx` for `products`.
    pub(crate) fn new(tx: broadcast::Sender<Arc<CbEvent>>, products: &[SimSymbol]) -> Self {
        let stats = products
            .iter()
            .map(|p| {
                (
                    p.symbol.clone(),
                    ProductStats {
                        open: p.start_price,
                        last: None,
                        volume: Decimal::ZERO,
                        low: None,
                        high: None,
                        bid: None,
                        ask: None,
                    },
                )
            })
            .collect();
        Self {
            tx,
            seq: 0,
            gaps: HashSet::new(),
            stats,
            pending: None,
            meta: HashMap::new(),
            expiring: None,
        }
    }

    /// The number of the last event emitted: a snapshot taken now contains every event
    /// numbered up to it.
    pub(crate) fn last_seq(&self) -> u64 {
        self.seq
    }

    /// The order the engine accepts next was placed with this configuration.
    pub(crate) fn next_order(&mut self, config: &Value, end_time: Option<i64>) {
        self.pending = Some(OrderMeta::from_config(config, end_time));
    }

    /// Forgets an unused [`Sinks::next_order`] (the placement was refused).
    pub(crate) fn clear_next_order(&mut self) {
        self.pending = None;
    }

    /// The next cancel of order `id` is its GTD expiry (`None`: no longer).
    pub(crate) fn expiring(&mut self, id: Option<u64>) {
        self.expiring = id;
    }

    /// Marks the next `l2_data` update of `product` as a gap.
    pub(crate) fn gap_next(&mut self, product: &str) {
        self.gaps.insert(product.to_owned());
    }

    /// The ticker object of `product` now, with the given touch.
    pub(crate) fn ticker(&self, product: &str, bid: Option<Level>, ask: Option<Level>) -> Value {
        let Some(s) = self.stats.get(product) else {
            return Value::Null;
        };
        ticker_json(product, s, bid, ask)
    }

    /// The `user` order object of `o` as it is now.
    pub(crate) fn order(&self, o: &SimOrder, expired_gtd: bool) -> Value {
        user_order(o, self.meta.get(&o.order_id), expired_gtd)
    }

    fn send(&mut self, payload: Payload) {
        self.seq += 1;
        // An Err only means no connection is open right now, which is normal.
        let _ = self.tx.send(Arc::new(CbEvent {
            seq: self.seq,
            payload,
        }));
    }

    fn order_changed(&mut self, o: &SimOrder, expired_gtd: bool) {
        let order = self.order(o, expired_gtd);
        self.send(Payload::Order {
            account: o.api_key.clone(),
            product: o.symbol.clone(),
            order,
        });
    }
}

fn opt(d: Option<Decimal>) -> String {
    d.map(dec).unwrap_or_default()
}

fn ticker_json(product: &str, s: &ProductStats, bid: Option<Level>, ask: Option<Level>) -> Value {
    let mid = match (bid, ask) {
        (Some(b), Some(a)) => Some(((b.0 + a.0) / Decimal::TWO).round_dp(8)),
        _ => None,
    };
    let price = s.last.or(mid).unwrap_or(s.open);
    let chg = if s.open.is_zero() {
        Decimal::ZERO
    } else {
        ((price - s.open) / s.open * Decimal::ONE_HUNDRED).round_dp(8)
    };
    let low = s.low.unwrap_or(price);
    let high = s.high.unwrap_or(price);
    json!({
        "type": "ticker",
        "product_id": product,
        "price": dec(price),
        "volume_24_h": dec(s.volume),
        "low_24_h": dec(low),
        "high_24_h": dec(high),
        "low_52_w": dec(low),
        "high_52_w": dec(high),
        "price_percent_chg_24_h": dec(chg),
        "best_bid": opt(bid.map(|l| l.0)),
        "best_bid_quantity": opt(bid.map(|l| l.1)),
        "best_ask": opt(ask.map(|l| l.0)),
        "best_ask_quantity": opt(ask.map(|l| l.1)),
    })
}

/// One `l2_data` level: `side` is `bid` or `offer`, the quantity absolute.
pub(crate) fn l2_level(side: &str, time: i64, level: Level) -> Value {
    json!({
        "side": side,
        "event_time": rfc3339(time),
        "price_level": dec(level.0),
        "new_quantity": dec(level.1),
    })
}

/// One `market_trades` trade object.
pub(crate) fn trade_json(product: &str, t: &PublicTrade) -> Value {
    // The taker is the seller when the buyer was the maker.
    let side = if t.buyer_maker { "SELL" } else { "BUY" };
    json!({
        "trade_id": t.id.to_string(),
        "product_id": product,
        "price": dec(t.price),
        "size": dec(t.qty),
        "side": side,
        "time": rfc3339(t.time),
    })
}

fn user_order(o: &SimOrder, meta: Option<&OrderMeta>, expired_gtd: bool) -> Value {
    let quote = quote_of(o);
    let fees: Decimal = o.fills.iter().map(|f| fee_quote(f, quote.as_deref())).sum();
    let filled_value = o.cummulative_quote_qty;
    let avg = if o.executed_qty.is_zero() {
        Decimal::ZERO
    } else {
        (filled_value / o.executed_qty).round_dp(8)
    };
    let pct = if o.orig_qty.is_zero() {
        Decimal::ZERO
    } else {
        (o.executed_qty / o.orig_qty * Decimal::ONE_HUNDRED).round_dp(2)
    };
    let after_fees = if o.side == crate::engine::SimSide::Buy {
        filled_value + fees
    } else {
        filled_value - fees
    };
    let (order_type, limit_price) = match o.order_type {
        SimOrderType::Limit => ("LIMIT", dec(o.price)),
        SimOrderType::Market => ("MARKET", String::new()),
    };
    let leaves = if o.is_open() {
        o.remaining()
    } else {
        Decimal::ZERO
    };
    let tif = meta.map_or("UNKNOWN_TIME_IN_FORCE", |m| m.time_in_force);
    json!({
        "order_id": order_uuid(o.order_id),
        "client_order_id": o.client_order_id,
        "product_id": o.symbol,
        "product_type": "SPOT",
        "order_side": side_str(o.side),
        "order_type": order_type,
        "status": status_str(o, expired_gtd),
        "time_in_force": tif,
        "post_only": meta.is_some_and(|m| m.post_only),
        "limit_price": limit_price,
        "stop_price": "",
        "avg_price": dec(avg),
        "cumulative_quantity": dec(o.executed_qty),
        "leaves_quantity": dec(leaves),
        "filled_value": dec(filled_value),
        "number_of_fills": o.fills.len().to_string(),
        "completion_percentage": dec(pct),
        "total_fees": dec(fees),
        "total_value_after_fees": dec(after_fees),
        "outstanding_hold_amount": dec(o.locked),
        "cancel_reason": "",
        "reject_reason": "",
        "retry_count": "0",
        "trigger_status": "INVALID_ORDER_TYPE",
        "contract_expiry_type": "UNKNOWN_CONTRACT_EXPIRY_TYPE",
        "risk_managed_by": "UNKNOWN_RISK_MANAGEMENT_TYPE",
        "creation_time": rfc3339(o.time),
        "start_time": "",
        "end_time": meta.and_then(|m| m.end_time).map(rfc3339).unwrap_or_default(),
    })
}

impl EventSink for Sinks {
    fn emit(&mut self, event: EngineEvent<'_>) {
        match event {
            EngineEvent::OrderAccepted { order, .. } => {
                let meta = self
                    .pending
                    .take()
                    .unwrap_or_else(|| OrderMeta::from_config(&Value::Null, None));
                self.meta.insert(order.order_id, meta);
                self.order_changed(order, false);
            }
            EngineEvent::OrderPartiallyFilled { order, .. }
            | EngineEvent::OrderFilled { order, .. }
            | EngineEvent::OrderExpired { order, .. } => self.order_changed(order, false),
            EngineEvent::OrderCancelled { order, .. } => {
                let expired = self.expiring == Some(order.order_id);
                self.order_changed(order, expired);
            }
            EngineEvent::BookDiff {
                symbol,
                bids,
                asks,
                time,
                ..
            } => {
                let updates: Vec<Value> = bids
                    .iter()
                    .map(|l| l2_level("bid", time, *l))
                    .chain(asks.iter().map(|l| l2_level("offer", time, *l)))
                    .collect();
                let gap = self.gaps.remove(symbol);
                self.send(Payload::L2 {
                    product: symbol.to_owned(),
                    updates: Value::Array(updates),
                    gap,
                });
            }
            EngineEvent::Ticker {
                symbol, bid, ask, ..
            } => {
                let Some(s) = self.stats.get_mut(symbol) else {
                    return;
                };
                s.bid = bid;
                s.ask = ask;
                let ticker = ticker_json(symbol, s, bid, ask);
                self.send(Payload::Ticker {
                    product: symbol.to_owned(),
                    ticker,
                });
            }
            EngineEvent::Trade { symbol, trade, .. } => {
                if let Some(s) = self.stats.get_mut(symbol) {
                    s.last = Some(trade.price);
                    s.volume += trade.qty;
                    s.low = Some(s.low.map_or(trade.price, |l| l.min(trade.price)));
                    s.high = Some(s.high.map_or(trade.price, |h| h.max(trade.price)));
                }
                self.send(Payload::Trade {
                    product: symbol.to_owned(),
                    trade: trade_json(symbol, trade),
                });
            }
            EngineEvent::OrderRejected { .. }
            | EngineEvent::BalanceChanged { .. }
            | EngineEvent::PositionChanged { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_trades_are_strings() {
        let l = l2_level("offer", 0, (Decimal::new(6_000_050, 2), Decimal::ZERO));
        assert_eq!(l["side"], "offer");
        assert_eq!(l["price_level"], "60000.5");
        assert_eq!(l["new_quantity"], "0");
        assert_eq!(l["event_time"], "1970-01-01T00:00:00.000000Z");
        let t = PublicTrade {
            id: 7,
            price: Decimal::new(100, 0),
            qty: Decimal::new(25, 2),
            time: 1000,
            buyer_maker: true,
            buyer_order: 1,
            seller_order: 0,
        };
        let j = trade_json("BTC-USD", &t);
        assert_eq!(
            (
                j["trade_id"].as_str(),
                j["size"].as_str(),
                j["side"].as_str()
            ),
            (Some("7"), Some("0.25"), Some("SELL"))
        );
    }
}
