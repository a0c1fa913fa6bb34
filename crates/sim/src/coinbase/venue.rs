//! The Coinbase view of the engine: order ids, account uuids, `client_order_id`
//! idempotency, GTD expiry and the order configurations clients sent.
//!
//! [`Venue`] wraps the neutral [`Engine`] behind the simulator's one lock and keeps only
//! what Coinbase has and the engine does not. The engine's order ids are integers; on the
//! wire they are UUID-shaped strings that encode the integer, so they round-trip without a
//! lookup table. Idempotency follows the reference (1.3 "Create order"): re-sending a
//! `client_order_id` the account already used returns the *original* order instead of a
//! second one, whatever that order's state; this is what lets a gateway resend an
//! ambiguous submit blindly and still leave exactly one order at the venue.
//! GTD orders expire on the first market tick at or after their `end_time` (so not
//! while the market is paused, unless a test ticks it).

use std::collections::{BTreeMap, HashMap, HashSet};

use rust_decimal::Decimal;
use serde_json::Value;

use crate::engine::{
    BalanceLine, BookSnapshot, Engine, EngineConfig, EngineCounters, NewOrder, OrderSel,
    PublicTrade, Reject, SimOrder, SimSymbol, Top,
};

use super::config::SimConfig;
use super::encode::Sinks;

/// Prefix of every order id: the engine id is the last 12 hex digits.
const ORDER_ID_PREFIX: &str = "00000000-0000-4000-8000-";

/// The wire id (UUID-shaped) of engine order `id`, as [`SimOrder::order_id`] holds it.
///
/// [`SimOrder::order_id`]: crate::engine::SimOrder::order_id
pub fn order_uuid(id: u64) -> String {
    format!("{ORDER_ID_PREFIX}{id:012x}")
}

/// The engine id of a wire order id, if it is one of ours.
pub(crate) fn engine_id(uuid: &str) -> Option<u64> {
    let hex = uuid.strip_prefix(ORDER_ID_PREFIX)?;
    if hex.len() != 12 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// What a placement produced.
#[derive(Debug)]
pub(crate) enum Placed {
    /// A new order.
    New(SimOrder),
    /// The account already used this `client_order_id`: the original order.
    Original(SimOrder),
}

/// The simulated Coinbase exchange.
#[derive(Debug)]
pub(crate) struct Venue {
    engine: Engine<Sinks>,
    /// Key names, in config order (account uuids derive from the position).
    accounts: Vec<String>,
    /// (account, client_order_id) -> engine id.
    client_ids: HashMap<(String, String), u64>,
    /// GTD orders still open: engine id -> end time (ms).
    gtd: BTreeMap<u64, i64>,
    /// Orders that ended by GTD expiry (the engine records them as cancelled).
    expired: HashSet<u64>,
    /// The `order_configuration` each order was placed with, as sent back.
    configs: HashMap<u64, Value>,
}

impl Venue {
    /// Builds the venue from a validated config; its events go to `sinks`.
    pub(crate) fn new(cfg: &SimConfig, sinks: Sinks) -> Self {
        let accounts: Vec<String> = cfg.api_keys.iter().map(|k| k.name.clone()).collect();
        let engine_cfg = EngineConfig {
            seed: cfg.seed,
            instruments: cfg.products.clone(),
            accounts: accounts.clone(),
            initial_balances: cfg.initial_balances.clone(),
        };
        Self {
            engine: Engine::new(&engine_cfg, sinks),
            accounts,
            client_ids: HashMap::new(),
            gtd: BTreeMap::new(),
            expired: HashSet::new(),
            configs: HashMap::new(),
        }
    }

    /// Engine counters.
    pub(crate) fn counters(&self) -> EngineCounters {
        self.engine.counters()
    }

    /// Index of a product.
    pub(crate) fn product_idx(&self, id: &str) -> Option<usize> {
        self.engine.instrument_idx(id)
    }

    /// All products, in config order.
    pub(crate) fn products(&self) -> Vec<SimSymbol> {
        self.engine.specs().cloned().collect()
    }

    /// Reference (mid) price.
    pub(crate) fn reference_price(&self, idx: usize) -> Decimal {
        self.engine.reference_price(idx)
    }

    /// Best bid and ask.
    pub(crate) fn top(&self, idx: usize) -> Top {
        self.engine.top(idx)
    }

    /// Book levels.
    pub(crate) fn depth(&self, idx: usize, limit: usize) -> BookSnapshot {
        self.engine.depth(idx, limit)
    }

    /// Position of an account (for its account uuids).
    pub(crate) fn account_pos(&self, account: &str) -> usize {
        self.accounts
            .iter()
            .position(|a| a == account)
            .unwrap_or(usize::MAX)
    }

    /// Balances `(currency, available, hold)`.
    pub(crate) fn balances(&self, account: &str) -> Vec<BalanceLine> {
        self.engine.balances(account)
    }

    /// Places an order (or finds the original one for a repeated client id).
    ///
    /// # Errors
    /// The engine's refusal.
    pub(crate) fn place(
        &mut self,
        account: &str,
        req: &NewOrder,
        config: Value,
        gtd_end_ms: Option<i64>,
        now: i64,
    ) -> Result<Placed, Reject> {
        let cid = req.client_order_id.clone().unwrap_or_default();
        if let Some(o) = self.by_client_id(account, &cid) {
            return Ok(Placed::Original(o));
        }
        let key = (account.to_owned(), cid);
        // The sink reports the configuration's time in force on the `user` channel.
        self.engine.sink_mut().next_order(&config, gtd_end_ms);
        let placed = self.engine.place(account, req, now);
        self.engine.sink_mut().clear_next_order();
        let o = placed?;
        self.client_ids.insert(key, o.order_id);
        self.configs.insert(o.order_id, config);
        if let Some(end) = gtd_end_ms
            && o.is_open()
        {
            self.gtd.insert(o.order_id, end);
        }
        Ok(Placed::New(o))
    }

    /// The order `account` placed with `client_order_id`, if any (whatever its state).
    pub(crate) fn by_client_id(&self, account: &str, client_order_id: &str) -> Option<SimOrder> {
        let id = self
            .client_ids
            .get(&(account.to_owned(), client_order_id.to_owned()))?;
        self.order(account, *id)
    }

    /// An order of `account` by engine id.
    pub(crate) fn order(&self, account: &str, id: u64) -> Option<SimOrder> {
        let all = self.engine.all_orders();
        all.into_iter()
            .find(|o| o.order_id == id && o.api_key == account)
    }

    /// Every order of `account`, newest first.
    pub(crate) fn orders_of(&self, account: &str) -> Vec<SimOrder> {
        let mut v: Vec<SimOrder> = self
            .engine
            .all_orders()
            .into_iter()
            .filter(|o| o.api_key == account)
            .collect();
        v.reverse();
        v
    }

    /// Every order, by engine id.
    pub(crate) fn all_orders(&self) -> Vec<SimOrder> {
        self.engine.all_orders()
    }

    /// The configuration order `id` was placed with.
    pub(crate) fn config_of(&self, id: u64) -> Value {
        self.configs.get(&id).cloned().unwrap_or(Value::Null)
    }

    /// `true` when order `id` ended by GTD expiry.
    pub(crate) fn is_expired(&self, id: u64) -> bool {
        self.expired.contains(&id)
    }

    /// Cancels an open order of `account`.
    ///
    /// # Errors
    /// `UnknownOrder` or `OrderNotOpen`.
    pub(crate) fn cancel(&mut self, account: &str, id: u64, now: i64) -> Result<SimOrder, Reject> {
        let o = self.order(account, id).ok_or(Reject::UnknownOrder)?;
        let idx = self
            .engine
            .instrument_idx(&o.symbol)
            .ok_or(Reject::Internal)?;
        let sel = OrderSel {
            order_id: Some(id),
            client_order_id: None,
        };
        let (o, _) = self.engine.cancel(account, idx, &sel, None, now)?;
        self.gtd.remove(&id);
        Ok(o)
    }

    /// One market tick, then GTD expiry of orders whose end time passed.
    pub(crate) fn tick(&mut self, now: i64) {
        self.engine.tick(now);
        self.expire_gtd(now);
    }

    fn expire_gtd(&mut self, now: i64) {
        let due: Vec<u64> = self
            .gtd
            .iter()
            .filter(|(_, end)| **end <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.gtd.remove(&id);
            let Some(o) = self
                .engine
                .all_orders()
                .into_iter()
                .find(|o| o.order_id == id)
            else {
                continue;
            };
            if !o.is_open() {
                continue;
            }
            // Mark first: the `user` event of this cancel must already say EXPIRED.
            self.expired.insert(id);
            self.engine.sink_mut().expiring(Some(id));
            if self.cancel(&o.api_key, id, now).is_err() {
                self.expired.remove(&id);
            }
            self.engine.sink_mut().expiring(None);
        }
    }

    /// A synthetic aggressor trade (see [`Engine::trade_through`]).
    pub(crate) fn trade_through(
        &mut self,
        idx: usize,
        price: Decimal,
        qty: Decimal,
        now: i64,
    ) -> Decimal {
        let filled = self.engine.trade_through(idx, price, qty, now);
        let open: HashSet<u64> = self
            .engine
            .all_orders()
            .iter()
            .filter(|o| o.is_open())
            .map(|o| o.order_id)
            .collect();
        self.gtd.retain(|id, _| open.contains(id));
        filled
    }

    /// Makes the next `l2_data` update of `product` skip sequence numbers on every
    /// connection that receives it (Coinbase numbers messages per connection, not per
    /// book, so the gap is a mark on the event rather than the engine's book sequence).
    pub(crate) fn request_gap(&mut self, product: &str) {
        self.engine.sink_mut().gap_next(product);
    }

    /// The websocket encoder's state (numbering, tickers, order metadata).
    pub(crate) fn sink(&self) -> &Sinks {
        self.engine.sink()
    }

    /// The newest `limit` public trades of `idx`, oldest first.
    pub(crate) fn recent_trades(&self, idx: usize, limit: usize) -> Vec<PublicTrade> {
        self.engine.recent_trades(idx, limit)
    }

    /// Open orders of `account`, oldest first.
    pub(crate) fn open_orders(&self, account: &str) -> Vec<SimOrder> {
        self.engine.open_orders(account, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_round_trip() {
        let u = order_uuid(0x1234);
        assert_eq!(u, "00000000-0000-4000-8000-000000001234");
        assert_eq!(engine_id(&u), Some(0x1234));
        assert_eq!(engine_id("nope"), None);
        assert_eq!(engine_id("00000000-0000-4000-8000-zz"), None);
    }
}
