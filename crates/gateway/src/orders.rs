//! Order state: the events written to the order stream, and how venue updates merge in.

use gekko_core::{ClientOrderId, Order, OrderRequest, OrderStatus};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use gekko_venue::OrderUpdate;

/// What happened to an order. Every event carries the full order after the change, so a
/// reader (or a restarted gateway replaying the stream) needs only the last event per id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEventKind {
    /// Persisted before the request leaves. A crash after this point leaves an order that
    /// may or may not have reached the venue; restart reconciliation resolves it.
    Submitting,
    /// The request's outcome is unknown; it is being resolved by query, never resent.
    InFlight,
    /// The venue answered or reported a change.
    Updated,
    /// Refused: by the venue, or found never to have reached it.
    Rejected,
    /// Found open at the venue but unknown locally, and adopted at start-up.
    Adopted,
}

/// One record on the order stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// What happened.
    pub kind: OrderEventKind,
    /// The order after the change.
    pub order: Order,
    /// When the submit request was sent (ms since epoch), if it was.
    pub sent_ms: Option<i64>,
    /// The notional (quote currency) the order counts for against
    /// `max_daily_notional`: fixed at admission (limit price, or a market order's
    /// reference price, times quantity), so a restarted gateway rebuilds exactly the sum
    /// it had. Absent on events written before it was recorded, and on adopted orders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notional: Option<Decimal>,
}

/// A new order record, not yet sent.
#[must_use]
pub fn pending(request: OrderRequest, now_ms: i64) -> Order {
    Order {
        request,
        venue_order_id: None,
        status: OrderStatus::PendingNew,
        filled_qty: Decimal::ZERO,
        avg_fill_price: None,
        updated_ms: now_ms,
        reject_reason: None,
    }
}

/// Merges a venue update into an order. Returns whether anything changed.
///
/// Updates can arrive out of order (REST answer vs user-stream event), so the merge is
/// monotonic: a terminal order never reopens, and filled quantity never goes backwards.
pub fn merge(order: &mut Order, update: &OrderUpdate) -> bool {
    if order.status.is_terminal() && !update.status.is_terminal() {
        return false;
    }
    // A venue's expiry (GTD, GFD) is the more specific account of the same end: a later
    // view that only says "cancelled" (OANDA's order state, without the reason) keeps it.
    if order.status == OrderStatus::Expired
        && update.status == OrderStatus::Cancelled
        && update.filled_qty == order.filled_qty
    {
        return false;
    }
    if update.filled_qty < order.filled_qty {
        return false;
    }
    let before = order.clone();
    order.status = update.status;
    order.filled_qty = update.filled_qty;
    if !update.venue_order_id.is_empty() {
        order.venue_order_id = Some(update.venue_order_id.clone());
    }
    if update.filled_qty > Decimal::ZERO && update.cum_quote > Decimal::ZERO {
        order.avg_fill_price = Some(update.cum_quote / update.filled_qty);
    }
    if update.reject_reason.is_some() {
        order.reject_reason.clone_from(&update.reject_reason);
    }
    order.updated_ms = update.ts_ms.max(order.updated_ms);
    let changed = order.status != before.status
        || order.filled_qty != before.filled_qty
        || order.venue_order_id != before.venue_order_id
        || order.reject_reason != before.reject_reason;
    if !changed {
        order.updated_ms = before.updated_ms;
    }
    changed
}

/// An order that was never placed.
pub fn reject(order: &mut Order, reason: impl Into<String>, now_ms: i64) {
    order.status = OrderStatus::Rejected;
    order.reject_reason = Some(reason.into());
    order.updated_ms = now_ms;
}

/// Key for maps of orders.
#[must_use]
pub fn key(order: &Order) -> ClientOrderId {
    order.request.client_order_id.clone()
}

#[cfg(test)]
mod tests {
    use gekko_core::{InstrumentId, OrderType, Side, TimeInForce, VenueId};
    use rust_decimal_macros::dec;

    use super::*;

    fn order() -> Order {
        pending(
            OrderRequest {
                client_order_id: ClientOrderId::parse("c1").unwrap(),
                instrument: InstrumentId::new(VenueId::BinanceUs, "BTC", "USD"),
                side: Side::Buy,
                order_type: OrderType::Limit,
                qty: dec!(2),
                price: Some(dec!(100)),
                time_in_force: Some(TimeInForce::Gtc),
            },
            1,
        )
    }

    fn update(status: OrderStatus, filled: Decimal, quote: Decimal) -> OrderUpdate {
        OrderUpdate {
            client_order_id: ClientOrderId::parse("c1").unwrap(),
            venue_order_id: "42".into(),
            instrument: InstrumentId::new(VenueId::BinanceUs, "BTC", "USD"),
            side: Side::Buy,
            status,
            qty: dec!(2),
            price: Some(dec!(100)),
            filled_qty: filled,
            cum_quote: quote,
            last_fill: None,
            ts_ms: 5,
            reject_reason: None,
        }
    }

    #[test]
    fn merge_is_monotonic() {
        let mut o = order();
        assert!(merge(
            &mut o,
            &update(OrderStatus::PartiallyFilled, dec!(1), dec!(100))
        ));
        assert_eq!(o.avg_fill_price, Some(dec!(100)));
        assert!(merge(
            &mut o,
            &update(OrderStatus::Filled, dec!(2), dec!(199))
        ));
        assert_eq!(o.avg_fill_price, Some(dec!(99.5)));
        // A late NEW or partial report does not reopen a filled order.
        assert!(!merge(&mut o, &update(OrderStatus::New, dec!(0), dec!(0))));
        assert!(!merge(
            &mut o,
            &update(OrderStatus::PartiallyFilled, dec!(1), dec!(100))
        ));
        assert_eq!(o.status, OrderStatus::Filled);
        // The same report twice is not a change.
        assert!(!merge(
            &mut o,
            &update(OrderStatus::Filled, dec!(2), dec!(199))
        ));
    }

    #[test]
    fn an_expiry_is_not_overwritten_by_a_plain_cancelled_view() {
        let mut o = order();
        assert!(merge(&mut o, &update(OrderStatus::New, dec!(0), dec!(0))));
        assert!(merge(
            &mut o,
            &update(OrderStatus::Expired, dec!(0), dec!(0))
        ));
        assert!(!merge(
            &mut o,
            &update(OrderStatus::Cancelled, dec!(0), dec!(0))
        ));
        assert_eq!(o.status, OrderStatus::Expired);
        // A late fill is still news.
        assert!(merge(
            &mut o,
            &update(OrderStatus::Cancelled, dec!(1), dec!(100))
        ));
        assert_eq!(o.filled_qty, dec!(1));
    }
}
