//! The OANDA view of the engine: one margin account in a home currency, orders named by
//! their create transaction, FIFO trades, netted positions, and the transaction log.
//!
//! The neutral [`Engine`] does the matching (books, the seeded walk, resting limit
//! orders that the market moves through) and is given effectively unlimited spot
//! balances, so its spot ledger never refuses anything: on OANDA what limits an order is
//! *margin*. The margin account model is the engine's too ([`crate::engine::margin`]:
//! FIFO netting, realized and unrealized P/L, position margin, NAV, margin available,
//! the closeout percent, margin admission and the closeout rule); this module keeps the
//! OANDA records it runs on (trades with their ids and client extensions, the balance in
//! the home currency, conversions into it) and everything else OANDA has and the engine
//! does not, in [`Venue`]:
//!
//! - **Transactions.** Every change is a transaction with the next integer id (strings
//!   on the wire), so `lastTransactionID` is monotonic and `/changes` and the
//!   transaction stream replay exactly what happened. An order's id *is* the id of its
//!   create transaction, as on the venue.
//! - **Trades and positions** (netting, hedging off): a fill first reduces the open
//!   trades of the other direction, oldest first (FIFO), realizing P/L into the balance,
//!   and any remainder opens a new trade whose id is the fill's transaction id. A
//!   position is the sum of its open trades (units signed, average price weighted).
//! - **Margin**: `|units| × mid × marginRate` per instrument, unrealized P/L at the
//!   closeout side (bid for longs, ask for shorts), both converted into the home
//!   currency through the `HOME_CCY` or `CCY_HOME` instrument. An order that would need
//!   more margin than the NAV is refused with `INSUFFICIENT_MARGIN`; when
//!   `marginCloseoutPercent` (half the margin used over the NAV) reaches 1, every
//!   position is closed by a `MARGIN_CLOSEOUT` market order.
//!
//! Deviations, documented: one ORDER_FILL per order per engine operation at the VWAP of
//! the levels taken (a resting order the market moves through part-way can fill in
//! several ticks); no financing, commission or spread cost is charged (the spread is
//! the cost); `GFD` expires at the next 21:00 UTC.

use std::collections::{BTreeMap, HashMap, VecDeque};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::engine::margin::{self, MarginFigures};
use crate::engine::{
    Engine, EngineConfig, EngineCounters, EngineEvent, EventSink, NewOrder, OrderKind, OrderSel,
    SimOrder, SimSide, SimTimeInForce,
};

use super::config::{SimConfig, SimInstrument};
use super::time::rfc3339;

/// Ticks of price history kept per instrument for candles (an hour at 100 ms).
const HISTORY: usize = 36_000;

/// The `userID` every transaction carries (the user part of the account id).
const USER_ID: i64 = 1;

/// Collects the engine's fills during one operation (drained right after it).
#[derive(Debug, Default)]
pub(crate) struct Sink {
    fills: Vec<(u64, Decimal, Decimal)>,
}

impl EventSink for Sink {
    fn emit(&mut self, event: EngineEvent<'_>) {
        if let EngineEvent::OrderFilled { order, fill, .. }
        | EngineEvent::OrderPartiallyFilled { order, fill, .. } = event
        {
            self.fills.push((order.order_id, fill.price, fill.qty));
        }
    }
}

/// MARKET or LIMIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrdType {
    Market,
    Limit,
}

impl OrdType {
    fn wire(self) -> &'static str {
        match self {
            Self::Market => "MARKET",
            Self::Limit => "LIMIT",
        }
    }
}

/// An order state as the venue names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrdState {
    Pending,
    Filled,
    Cancelled,
}

impl OrdState {
    pub(crate) fn wire(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Filled => "FILLED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

/// A validated order request (the REST layer parsed and checked the wire form).
#[derive(Debug, Clone)]
pub(crate) struct OrderReq {
    pub(crate) kind: OrdType,
    pub(crate) instrument: String,
    /// Signed units.
    pub(crate) units: Decimal,
    pub(crate) price: Option<Decimal>,
    pub(crate) tif: String,
    pub(crate) gtd_ns: Option<i128>,
    pub(crate) position_fill: String,
    pub(crate) client_ext: Option<Value>,
    pub(crate) trade_client_ext: Option<Value>,
    /// Why the order exists (`CLIENT_ORDER`, `POSITION_CLOSEOUT`, `MARGIN_CLOSEOUT`).
    pub(crate) reason: &'static str,
    /// Extra fields of the create transaction (e.g. `longPositionCloseout`).
    pub(crate) extra: Option<(&'static str, Value)>,
}

/// An order at the venue.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub(crate) id: u64,
    engine_id: Option<u64>,
    pub(crate) req: OrderReq,
    create_ns: i128,
    pub(crate) state: OrdState,
    filled_units: Decimal,
    filling_tx: Option<u64>,
    filled_ns: Option<i128>,
    cancelling_tx: Option<u64>,
    cancelled_ns: Option<i128>,
    trade_opened: Option<u64>,
    trade_reduced: Option<u64>,
    trades_closed: Vec<u64>,
}

/// A trade (one opening fill and what is left of it).
#[derive(Debug, Clone)]
pub(crate) struct Trade {
    id: u64,
    instrument: String,
    price: Decimal,
    open_ns: i128,
    initial_units: Decimal,
    current_units: Decimal,
    initial_margin: Decimal,
    realized_pl: Decimal,
    closing_txs: Vec<u64>,
    close_ns: Option<i128>,
    close_value: Decimal,
    client_ext: Option<Value>,
}

impl Trade {
    fn is_open(&self) -> bool {
        !self.current_units.is_zero()
    }
}

/// What a create produced: the transactions to answer with, by role.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) create: Option<Value>,
    pub(crate) fill: Option<Value>,
    pub(crate) cancel: Option<Value>,
    pub(crate) reject: Option<Value>,
    pub(crate) related: Vec<u64>,
    /// The refusal's human message (with `reject`).
    pub(crate) message: Option<String>,
}

/// Why an order request was refused: the `rejectReason` and the human message.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) reason: &'static str,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Decimal with exactly `dp` decimals.
pub(crate) fn fixed(d: Decimal, dp: u32) -> String {
    let mut x = d.round_dp(dp);
    x.rescale(dp);
    x.to_string()
}

/// Money as the venue writes it (4 decimals).
pub(crate) fn money(d: Decimal) -> String {
    fixed(d, 4)
}

/// The id of a transaction object.
fn tx_id(tx: &Value) -> Option<u64> {
    tx.get("id")?.as_str()?.parse().ok()
}

fn sign_of(units: Decimal) -> Decimal {
    if units.is_sign_negative() {
        -Decimal::ONE
    } else {
        Decimal::ONE
    }
}

/// The simulated OANDA account and market.
#[derive(Debug)]
pub(crate) struct Venue {
    engine: Engine<Sink>,
    instruments: Vec<SimInstrument>,
    account_id: String,
    currency: String,
    price_levels: usize,
    balance: Decimal,
    pl: Decimal,
    created_ns: i128,
    last_tx: u64,
    txns: Vec<Value>,
    orders: BTreeMap<u64, Order>,
    trades: BTreeMap<u64, Trade>,
    by_engine: HashMap<u64, u64>,
    by_client: HashMap<String, u64>,
    price_ns: i128,
    /// `(time, bid, ask)` after each tick, per instrument (config order), newest last.
    history: Vec<VecDeque<(i128, Decimal, Decimal)>>,
    last_fill_ns: Option<i128>,
    feed: broadcast::Sender<Value>,
    rejected: u64,
}

impl Venue {
    /// Builds the venue; transaction 1 is the account's creation.
    pub(crate) fn new(cfg: &SimConfig, now_ns: i128, feed: broadcast::Sender<Value>) -> Self {
        let mut assets: Vec<(String, Decimal)> = Vec::new();
        let huge = Decimal::from(1_000_000_000_000_000_i64);
        for i in &cfg.instruments {
            for a in [i.base(), i.quote()] {
                if !assets.iter().any(|(x, _)| x == a) {
                    assets.push((a.to_owned(), huge));
                }
            }
        }
        let engine_cfg = EngineConfig {
            seed: cfg.seed,
            instruments: cfg
                .instruments
                .iter()
                .map(SimInstrument::engine_symbol)
                .collect(),
            accounts: vec![cfg.account_id.clone()],
            initial_balances: assets,
        };
        let mut v = Self {
            engine: Engine::new(&engine_cfg, Sink::default()),
            instruments: cfg.instruments.clone(),
            account_id: cfg.account_id.clone(),
            currency: cfg.currency.clone(),
            price_levels: cfg.price_levels,
            balance: cfg.initial_balance,
            pl: Decimal::ZERO,
            created_ns: now_ns,
            last_tx: 0,
            txns: Vec::new(),
            orders: BTreeMap::new(),
            trades: BTreeMap::new(),
            by_engine: HashMap::new(),
            by_client: HashMap::new(),
            price_ns: now_ns,
            history: vec![VecDeque::new(); cfg.instruments.len()],
            last_fill_ns: None,
            feed,
            rejected: 0,
        };
        for (idx, i) in cfg.instruments.iter().enumerate() {
            let tick = Decimal::new(1, i.display_precision);
            let ticks = i
                .typical_spread
                .checked_div(tick)
                .and_then(|t| t.round().to_i64())
                .unwrap_or(1);
            v.engine.set_min_spread(idx, ticks, 0);
        }
        let id = v.next_tx();
        v.record(json!({
            "id": id.to_string(), "time": rfc3339(now_ns), "userID": USER_ID,
            "accountID": v.account_id, "batchID": id.to_string(), "type": "CREATE",
            "divisionID": 1, "siteID": 101, "accountUserID": USER_ID, "accountNumber": 1,
            "homeCurrency": v.currency,
        }));
        v.record_deposit(cfg.initial_balance, now_ns);
        v
    }

    fn record_deposit(&mut self, amount: Decimal, now_ns: i128) {
        let id = self.next_tx();
        let tx = json!({
            "id": id.to_string(), "time": rfc3339(now_ns), "userID": USER_ID,
            "accountID": self.account_id, "batchID": id.to_string(),
            "type": "TRANSFER_FUNDS", "amount": money(amount), "fundingReason": "CLIENT_FUNDED",
            "accountBalance": money(self.balance),
        });
        self.record(tx);
    }

    fn next_tx(&mut self) -> u64 {
        self.last_tx += 1;
        self.last_tx
    }

    /// Keeps a transaction and publishes it on the transaction stream (never blocks).
    fn record(&mut self, tx: Value) {
        let _ = self.feed.send(tx.clone());
        self.txns.push(tx);
    }

    /// The newest transaction id.
    pub(crate) fn last_tx(&self) -> u64 {
        self.last_tx
    }

    /// Engine counters.
    pub(crate) fn counters(&self) -> EngineCounters {
        self.engine.counters()
    }

    /// Order placements refused so far.
    pub(crate) fn rejected(&self) -> u64 {
        self.rejected
    }

    /// The instruments, in config order.
    pub(crate) fn instruments(&self) -> &[SimInstrument] {
        &self.instruments
    }

    /// One instrument by wire name.
    pub(crate) fn instrument(&self, name: &str) -> Option<&SimInstrument> {
        self.instruments.iter().find(|i| i.name == name)
    }

    fn idx(&self, name: &str) -> Option<usize> {
        self.engine.instrument_idx(name)
    }

    /// Every order the engine holds (for the handle and the admin API).
    pub(crate) fn engine_orders(&self) -> Vec<SimOrder> {
        self.engine.all_orders()
    }

    /// The public book of an instrument.
    pub(crate) fn book(&self, name: &str) -> Option<crate::engine::BookSnapshot> {
        self.idx(name).map(|i| self.engine.depth(i, usize::MAX))
    }

    /// `(bid, ask)` of an instrument now.
    pub(crate) fn touch(&self, name: &str) -> Option<(Decimal, Decimal)> {
        let (_, bids, asks) = self.engine.depth(self.idx(name)?, 1);
        Some((bids.first()?.0, asks.first()?.0))
    }

    fn mid(&self, name: &str) -> Option<Decimal> {
        self.touch(name).map(|(b, a)| (b + a) / Decimal::TWO)
    }

    /// `amount` in currency `ccy`, converted into the home currency through the
    /// `HOME_CCY` or `CCY_HOME` instrument (unchanged when neither is traded).
    pub(crate) fn to_home(&self, amount: Decimal, ccy: &str) -> Decimal {
        if ccy == self.currency {
            return amount;
        }
        if let Some(m) = self.mid(&format!("{}_{ccy}", self.currency))
            && !m.is_zero()
        {
            return amount / m;
        }
        if let Some(m) = self.mid(&format!("{ccy}_{}", self.currency)) {
            return amount * m;
        }
        amount
    }

    // ---------------------------------------------------------------- prices

    /// A ClientPrice of instrument `name` (the PRICE stream line and `/pricing` entry).
    pub(crate) fn price(&self, name: &str) -> Option<Value> {
        let inst = self.instrument(name)?;
        let (_, bids, asks) = self.engine.depth(self.idx(name)?, self.price_levels);
        let dp = inst.display_precision;
        let lv = |levels: &[(Decimal, Decimal)]| -> Vec<Value> {
            levels
                .iter()
                .map(|(p, q)| json!({"price": fixed(*p, dp), "liquidity": q.trunc().to_i64().unwrap_or(0)}))
                .collect()
        };
        let cb = bids.last().map_or(Decimal::ZERO, |l| l.0);
        let ca = asks.last().map_or(Decimal::ZERO, |l| l.0);
        Some(json!({
            "type": "PRICE", "instrument": name, "time": rfc3339(self.price_ns),
            "status": "tradeable", "tradeable": true,
            "bids": lv(&bids), "asks": lv(&asks),
            "closeoutBid": fixed(cb, dp), "closeoutAsk": fixed(ca, dp),
            "quoteHomeConversionFactors": {
                "positiveUnits": self.home_factor(inst.quote()),
                "negativeUnits": self.home_factor(inst.quote()),
            },
        }))
    }

    /// Candles of `instrument` over the kept history: `granularity_s`-second buckets
    /// aligned to the epoch, oldest first, with the components `price` names (`M`, `B`,
    /// `A`), limited to `[from, to]` and to the newest `count`. `volume` is the number of
    /// ticks in the bucket; the bucket still running is `complete: false`.
    pub(crate) fn candles(
        &self,
        instrument: &str,
        granularity_s: i64,
        price: &str,
        range: (Option<i128>, Option<i128>),
        count: usize,
        now_ns: i128,
    ) -> Option<Vec<Value>> {
        let inst = self.instrument(instrument)?;
        let h = self.history.get(self.idx(instrument)?)?;
        let width = i128::from(granularity_s) * 1_000_000_000;
        let dp = inst.display_precision;
        // (bucket start, [bid o h l c], [ask o h l c], ticks)
        let mut buckets: Vec<(i128, [Decimal; 4], [Decimal; 4], u64)> = Vec::new();
        for &(t, b, a) in h {
            let start = t.div_euclid(width) * width;
            if range.0.is_some_and(|f| start < f) || range.1.is_some_and(|to| start > to) {
                continue;
            }
            match buckets.last_mut() {
                Some(k) if k.0 == start => {
                    for (ohlc, p) in [(&mut k.1, b), (&mut k.2, a)] {
                        ohlc[1] = ohlc[1].max(p);
                        ohlc[2] = ohlc[2].min(p);
                        ohlc[3] = p;
                    }
                    k.3 += 1;
                }
                _ => buckets.push((start, [b; 4], [a; 4], 1)),
            }
        }
        let skip = buckets.len().saturating_sub(count);
        let ohlc = |x: [Decimal; 4]| json!({"o": fixed(x[0], dp), "h": fixed(x[1], dp), "l": fixed(x[2], dp), "c": fixed(x[3], dp)});
        let mid = |b: [Decimal; 4], a: [Decimal; 4]| {
            let m = |i: usize| (b[i] + a[i]) / Decimal::TWO;
            [m(0), m(1), m(2), m(3)]
        };
        Some(
            buckets
                .into_iter()
                .skip(skip)
                .map(|(start, b, a, n)| {
                    let mut c = Map::new();
                    c.insert("complete".into(), (start + width <= now_ns).into());
                    c.insert("volume".into(), n.into());
                    c.insert("time".into(), rfc3339(start).into());
                    if price.contains('M') {
                        c.insert("mid".into(), ohlc(mid(b, a)));
                    }
                    if price.contains('B') {
                        c.insert("bid".into(), ohlc(b));
                    }
                    if price.contains('A') {
                        c.insert("ask".into(), ohlc(a));
                    }
                    Value::Object(c)
                })
                .collect(),
        )
    }

    /// How many home-currency units one unit of `ccy` is worth now (8 decimals).
    pub(crate) fn home_factor(&self, ccy: &str) -> String {
        fixed(self.to_home(Decimal::ONE, ccy), 8)
    }

    /// `homeConversions` of `/pricing?includeHomeConversions=true`: every currency the
    /// instruments name, with its factor into the home currency.
    pub(crate) fn home_conversions(&self) -> Vec<Value> {
        let mut seen: Vec<&str> = Vec::new();
        for i in &self.instruments {
            for c in [i.base(), i.quote()] {
                if !seen.contains(&c) {
                    seen.push(c);
                }
            }
        }
        seen.into_iter()
            .map(|c| {
                let f = self.home_factor(c);
                json!({"currency": c, "accountGain": f, "accountLoss": f, "positionValue": f})
            })
            .collect()
    }

    /// Time of the last market move.
    pub(crate) fn price_ns(&self) -> i128 {
        self.price_ns
    }

    // ---------------------------------------------------------------- account figures

    fn units_of(&self, instrument: &str) -> Decimal {
        self.trades
            .values()
            .filter(|t| t.is_open() && t.instrument == instrument)
            .map(|t| t.current_units)
            .sum()
    }

    fn margin_for(&self, inst: &SimInstrument, units: Decimal) -> Decimal {
        let mid = self.mid(&inst.name).unwrap_or(inst.start_price);
        self.to_home(
            margin::position_margin(units, mid, inst.margin_rate),
            inst.quote(),
        )
    }

    fn trade_upl(&self, t: &Trade) -> Decimal {
        let Some((bid, ask)) = self.touch(&t.instrument) else {
            return Decimal::ZERO;
        };
        let quote = self
            .instrument(&t.instrument)
            .map_or("", SimInstrument::quote);
        self.to_home(
            margin::unrealized_pl(t.current_units, t.price, bid, ask),
            quote,
        )
    }

    fn unrealized(&self) -> Decimal {
        self.trades
            .values()
            .filter(|t| t.is_open())
            .map(|t| self.trade_upl(t))
            .sum()
    }

    fn margin_used(&self) -> Decimal {
        self.instruments
            .iter()
            .map(|i| self.margin_for(i, self.units_of(&i.name)))
            .sum()
    }

    fn position_value(&self) -> Decimal {
        self.instruments
            .iter()
            .map(|i| {
                let mid = self.mid(&i.name).unwrap_or(i.start_price);
                self.to_home(self.units_of(&i.name).abs() * mid, i.quote())
            })
            .sum()
    }

    /// The account's figures in the home currency, by the engine's margin model.
    fn margin_figures(&self) -> MarginFigures {
        MarginFigures::new(self.balance, self.unrealized(), self.margin_used())
    }

    /// NAV, margin used, margin available, closeout percent.
    pub(crate) fn figures(&self) -> (Decimal, Decimal, Decimal, Decimal) {
        let f = self.margin_figures();
        (f.nav, f.used, f.available, f.closeout_percent)
    }

    /// The AccountSummary object (times in RFC 3339; the REST layer reformats).
    pub(crate) fn summary(&self) -> Value {
        let (nav, used, avail, pct) = self.figures();
        let upl = self.unrealized();
        let open_positions = self
            .instruments
            .iter()
            .filter(|i| !self.units_of(&i.name).is_zero())
            .count();
        let mut s = json!({
            "id": self.account_id, "alias": "Primary", "currency": self.currency,
            "balance": money(self.balance), "createdByUserID": USER_ID,
            "createdTime": rfc3339(self.created_ns), "guaranteedStopLossOrderMode": "DISABLED",
            "pl": money(self.pl), "resettablePL": money(self.pl),
            "resettablePLTime": "0", "financing": money(Decimal::ZERO),
            "commission": money(Decimal::ZERO), "guaranteedExecutionFees": money(Decimal::ZERO),
            "marginRate": "0.02", "marginCallExtensionCount": 0,
            "openTradeCount": self.trades.values().filter(|t| t.is_open()).count(),
            "openPositionCount": open_positions,
            "pendingOrderCount": self.orders.values().filter(|o| o.state == OrdState::Pending).count(),
            "hedgingEnabled": false, "unrealizedPL": money(upl), "NAV": money(nav),
            "marginUsed": money(used), "marginAvailable": money(avail),
            "positionValue": money(self.position_value()),
            "marginCloseoutUnrealizedPL": money(upl), "marginCloseoutNAV": money(nav),
            "marginCloseoutMarginUsed": money(used), "marginCloseoutPercent": fixed(pct, 5),
            "marginCloseoutPositionValue": money(self.position_value()),
            "withdrawalLimit": money(avail), "marginCallMarginUsed": money(used),
            "marginCallPercent": fixed(pct * Decimal::TWO, 5),
            "lastTransactionID": self.last_tx.to_string(),
        });
        if let (Some(t), Some(o)) = (self.last_fill_ns, s.as_object_mut()) {
            o.insert("lastOrderFillTimestamp".into(), Value::String(rfc3339(t)));
        }
        s
    }

    /// The full Account object (summary plus orders, trades and positions).
    pub(crate) fn account(&self) -> Value {
        let mut a = self.summary();
        if let Some(o) = a.as_object_mut() {
            o.insert("orders".into(), Value::Array(self.pending_orders()));
            o.insert("trades".into(), Value::Array(self.open_trades()));
            o.insert("positions".into(), Value::Array(self.positions(false)));
        }
        a
    }

    // ---------------------------------------------------------------- json views

    pub(crate) fn order_json(&self, o: &Order) -> Value {
        let inst = self.instrument(&o.req.instrument);
        let udp = inst.map_or(0, |i| i.trade_units_precision);
        let mut m = Map::new();
        m.insert("id".into(), o.id.to_string().into());
        m.insert("createTime".into(), rfc3339(o.create_ns).into());
        m.insert("type".into(), o.req.kind.wire().into());
        m.insert("instrument".into(), o.req.instrument.clone().into());
        m.insert("units".into(), fixed(o.req.units, udp).into());
        m.insert("timeInForce".into(), o.req.tif.clone().into());
        if let (Some(p), Some(i)) = (o.req.price, inst) {
            m.insert("price".into(), fixed(p, i.display_precision).into());
            m.insert("triggerCondition".into(), "DEFAULT".into());
            m.insert("partialFill".into(), "DEFAULT_FILL".into());
        }
        if let Some(g) = o.req.gtd_ns {
            m.insert("gtdTime".into(), rfc3339(g).into());
        }
        m.insert("positionFill".into(), o.req.position_fill.clone().into());
        m.insert("state".into(), o.state.wire().into());
        if let Some(c) = &o.req.client_ext {
            m.insert("clientExtensions".into(), c.clone());
        }
        if let Some(c) = &o.req.trade_client_ext {
            m.insert("tradeClientExtensions".into(), c.clone());
        }
        if let Some((k, v)) = &o.req.extra {
            m.insert((*k).into(), v.clone());
        }
        if let Some(t) = o.filling_tx {
            m.insert("fillingTransactionID".into(), t.to_string().into());
        }
        if let Some(t) = o.filled_ns {
            m.insert("filledTime".into(), rfc3339(t).into());
        }
        if let Some(t) = o.trade_opened {
            m.insert("tradeOpenedID".into(), t.to_string().into());
        }
        if let Some(t) = o.trade_reduced {
            m.insert("tradeReducedID".into(), t.to_string().into());
        }
        if !o.trades_closed.is_empty() {
            let ids: Vec<Value> = o
                .trades_closed
                .iter()
                .map(|t| t.to_string().into())
                .collect();
            m.insert("tradeClosedIDs".into(), Value::Array(ids));
        }
        if let Some(t) = o.cancelling_tx {
            m.insert("cancellingTransactionID".into(), t.to_string().into());
        }
        if let Some(t) = o.cancelled_ns {
            m.insert("cancelledTime".into(), rfc3339(t).into());
        }
        Value::Object(m)
    }

    pub(crate) fn trade_json(&self, t: &Trade) -> Value {
        let inst = self.instrument(&t.instrument);
        let dp = inst.map_or(5, |i| i.display_precision);
        let udp = inst.map_or(0, |i| i.trade_units_precision);
        let mut m = json!({
            "id": t.id.to_string(), "instrument": t.instrument, "price": t.price.normalize().to_string(),
            "openTime": rfc3339(t.open_ns), "state": if t.is_open() { "OPEN" } else { "CLOSED" },
            "initialUnits": fixed(t.initial_units, udp), "initialMarginRequired": money(t.initial_margin),
            "currentUnits": fixed(t.current_units, udp), "realizedPL": money(t.realized_pl),
            "financing": money(Decimal::ZERO), "dividendAdjustment": money(Decimal::ZERO),
        });
        if let Some(o) = m.as_object_mut() {
            if t.is_open() {
                o.insert("unrealizedPL".into(), money(self.trade_upl(t)).into());
                let margin = inst.map_or(Decimal::ZERO, |i| self.margin_for(i, t.current_units));
                o.insert("marginUsed".into(), money(margin).into());
            } else {
                o.insert("unrealizedPL".into(), money(Decimal::ZERO).into());
                o.insert("marginUsed".into(), money(Decimal::ZERO).into());
            }
            let closed = (t.initial_units - t.current_units).abs();
            if !closed.is_zero() {
                o.insert(
                    "averageClosePrice".into(),
                    fixed(t.close_value / closed, dp + 1).into(),
                );
                let ids: Vec<Value> = t.closing_txs.iter().map(|x| x.to_string().into()).collect();
                o.insert("closingTransactionIDs".into(), Value::Array(ids));
            }
            if let Some(c) = t.close_ns {
                o.insert("closeTime".into(), rfc3339(c).into());
            }
            if let Some(c) = &t.client_ext {
                o.insert("clientExtensions".into(), c.clone());
            }
        }
        m
    }

    /// The Position of one instrument.
    pub(crate) fn position_json(&self, inst: &SimInstrument) -> Value {
        let udp = inst.trade_units_precision;
        let side = |long: bool| {
            let trades: Vec<&Trade> = self
                .trades
                .values()
                .filter(|t| {
                    t.is_open()
                        && t.instrument == inst.name
                        && t.current_units.is_sign_positive() == long
                })
                .collect();
            let units: Decimal = trades.iter().map(|t| t.current_units).sum();
            let upl: Decimal = trades.iter().map(|t| self.trade_upl(t)).sum();
            let realized: Decimal = self
                .trades
                .values()
                .filter(|t| t.instrument == inst.name && t.initial_units.is_sign_positive() == long)
                .map(|t| t.realized_pl)
                .sum();
            let mut s = json!({
                "units": fixed(units, udp), "pl": money(realized), "resettablePL": money(realized),
                "financing": money(Decimal::ZERO), "dividendAdjustment": money(Decimal::ZERO),
                "guaranteedExecutionFees": money(Decimal::ZERO), "unrealizedPL": money(upl),
            });
            if !units.is_zero()
                && let Some(o) = s.as_object_mut()
            {
                let avg = trades
                    .iter()
                    .map(|t| t.price * t.current_units)
                    .sum::<Decimal>()
                    / units;
                o.insert(
                    "averagePrice".into(),
                    fixed(avg, inst.display_precision + 1).into(),
                );
                let ids: Vec<Value> = trades.iter().map(|t| t.id.to_string().into()).collect();
                o.insert("tradeIDs".into(), Value::Array(ids));
            }
            (s, realized, upl)
        };
        let (long, lpl, lupl) = side(true);
        let (short, spl, supl) = side(false);
        json!({
            "instrument": inst.name, "pl": money(lpl + spl), "resettablePL": money(lpl + spl),
            "unrealizedPL": money(lupl + supl),
            "marginUsed": money(self.margin_for(inst, self.units_of(&inst.name))),
            "financing": money(Decimal::ZERO), "commission": money(Decimal::ZERO),
            "dividendAdjustment": money(Decimal::ZERO), "guaranteedExecutionFees": money(Decimal::ZERO),
            "long": long, "short": short,
        })
    }

    /// Positions: every instrument ever traded, or only open ones.
    pub(crate) fn positions(&self, open_only: bool) -> Vec<Value> {
        self.instruments
            .iter()
            .filter(|i| {
                if open_only {
                    !self.units_of(&i.name).is_zero()
                } else {
                    self.trades.values().any(|t| t.instrument == i.name)
                }
            })
            .map(|i| self.position_json(i))
            .collect()
    }

    /// `(long units, short units)` of an instrument (short is negative or zero).
    pub(crate) fn position_units(&self, instrument: &str) -> (Decimal, Decimal) {
        let mut l = Decimal::ZERO;
        let mut s = Decimal::ZERO;
        for t in self
            .trades
            .values()
            .filter(|t| t.is_open() && t.instrument == instrument)
        {
            if t.current_units.is_sign_positive() {
                l += t.current_units;
            } else {
                s += t.current_units;
            }
        }
        (l, s)
    }

    /// Pending orders, newest first.
    pub(crate) fn pending_orders(&self) -> Vec<Value> {
        self.orders
            .values()
            .rev()
            .filter(|o| o.state == OrdState::Pending)
            .map(|o| self.order_json(o))
            .collect()
    }

    /// Orders filtered by state (`None` = all) and instrument, newest first.
    pub(crate) fn list_orders(
        &self,
        state: Option<OrdState>,
        instrument: Option<&str>,
    ) -> Vec<&Order> {
        self.orders
            .values()
            .rev()
            .filter(|o| state.is_none_or(|s| o.state == s))
            .filter(|o| instrument.is_none_or(|i| o.req.instrument == i))
            .collect()
    }

    /// Open trades, newest first.
    pub(crate) fn open_trades(&self) -> Vec<Value> {
        self.list_trades(Some(true), None)
            .into_iter()
            .map(|t| self.trade_json(t))
            .collect()
    }

    /// Trades filtered by open (`None` = all) and instrument, newest first.
    pub(crate) fn list_trades(&self, open: Option<bool>, instrument: Option<&str>) -> Vec<&Trade> {
        self.trades
            .values()
            .rev()
            .filter(|t| open.is_none_or(|o| t.is_open() == o))
            .filter(|t| instrument.is_none_or(|i| t.instrument == i))
            .collect()
    }

    /// An order by specifier: its id, or `@` + client id.
    pub(crate) fn find_order(&self, spec: &str) -> Option<&Order> {
        let id = match spec.strip_prefix('@') {
            Some(cid) => *self.by_client.get(cid)?,
            None => spec.parse().ok()?,
        };
        self.orders.get(&id)
    }

    /// A trade by specifier: its id, or `@` + client trade id.
    pub(crate) fn find_trade(&self, spec: &str) -> Option<&Trade> {
        match spec.strip_prefix('@') {
            Some(cid) => self.trades.values().rev().find(|t| {
                t.client_ext
                    .as_ref()
                    .and_then(|c| c.get("id"))
                    .and_then(Value::as_str)
                    == Some(cid)
            }),
            None => self.trades.get(&spec.parse().ok()?),
        }
    }

    /// Transactions with ids above `since`, oldest first.
    pub(crate) fn txns_since(&self, since: u64) -> &[Value] {
        // Ids are 1..=last_tx in order, so transaction n sits at index n - 1.
        let start = usize::try_from(since)
            .unwrap_or(usize::MAX)
            .min(self.txns.len());
        self.txns.get(start..).unwrap_or(&[])
    }

    /// The `changes` and `state` objects of `/changes?sinceTransactionID=since`.
    pub(crate) fn changes(&self, since: u64) -> (Value, Value) {
        let mut created = Vec::new();
        let mut cancelled = Vec::new();
        let mut filled = Vec::new();
        let mut opened = Vec::new();
        let mut reduced = Vec::new();
        let mut closed = Vec::new();
        let mut instruments: Vec<String> = Vec::new();
        let id_of = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<u64>().ok())
        };
        let txns = self.txns_since(since);
        for tx in txns {
            let ty = tx.get("type").and_then(Value::as_str).unwrap_or("");
            let order = |k: &str| {
                id_of(tx, k)
                    .and_then(|id| self.orders.get(&id))
                    .map(|o| self.order_json(o))
            };
            match ty {
                "MARKET_ORDER" | "LIMIT_ORDER" => created.extend(order("id")),
                "ORDER_CANCEL" => cancelled.extend(order("orderID")),
                "ORDER_FILL" => {
                    filled.extend(order("orderID"));
                    if let Some(i) = tx.get("instrument").and_then(Value::as_str)
                        && !instruments.iter().any(|x| x == i)
                    {
                        instruments.push(i.to_owned());
                    }
                    if let Some(t) = tx.get("tradeOpened").and_then(|t| id_of(t, "tradeID")) {
                        opened.extend(self.trades.get(&t).map(|t| self.trade_json(t)));
                    }
                    if let Some(t) = tx.get("tradeReduced").and_then(|t| id_of(t, "tradeID")) {
                        reduced.extend(self.trades.get(&t).map(|t| self.trade_json(t)));
                    }
                    for c in tx
                        .get("tradesClosed")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(t) = id_of(c, "tradeID") {
                            closed.extend(self.trades.get(&t).map(|t| self.trade_json(t)));
                        }
                    }
                }
                _ => {}
            }
        }
        let positions: Vec<Value> = instruments
            .iter()
            .filter_map(|i| self.instrument(i))
            .map(|i| self.position_json(i))
            .collect();
        let changes = json!({
            "ordersCreated": created, "ordersCancelled": cancelled, "ordersFilled": filled,
            "ordersTriggered": [], "tradesOpened": opened, "tradesReduced": reduced,
            "tradesClosed": closed, "positions": positions, "transactions": txns,
        });
        let (nav, used, avail, pct) = self.figures();
        let trades_state: Vec<Value> = self
            .list_trades(Some(true), None)
            .into_iter()
            .map(|t| json!({"id": t.id.to_string(), "unrealizedPL": money(self.trade_upl(t))}))
            .collect();
        let state = json!({
            "unrealizedPL": money(self.unrealized()), "NAV": money(nav), "marginUsed": money(used),
            "marginAvailable": money(avail), "positionValue": money(self.position_value()),
            "marginCloseoutUnrealizedPL": money(self.unrealized()), "marginCloseoutNAV": money(nav),
            "marginCloseoutMarginUsed": money(used), "marginCloseoutPercent": fixed(pct, 5),
            "withdrawalLimit": money(avail), "orders": [], "trades": trades_state,
            "positions": self.positions(true),
        });
        (changes, state)
    }

    // ---------------------------------------------------------------- orders

    fn tx_base(&self, id: u64, batch: u64, now_ns: i128, ty: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("id".into(), id.to_string().into());
        m.insert("time".into(), rfc3339(now_ns).into());
        m.insert("userID".into(), USER_ID.into());
        m.insert("accountID".into(), self.account_id.clone().into());
        m.insert("batchID".into(), batch.to_string().into());
        m.insert("type".into(), ty.into());
        m
    }

    /// Records a reject transaction for an order request refused before it existed.
    pub(crate) fn reject(&mut self, body: &Value, refusal: &Refusal, now_ns: i128) -> Outcome {
        let ty = body.get("type").and_then(Value::as_str).unwrap_or("MARKET");
        let id = self.next_tx();
        let mut m = self.tx_base(id, id, now_ns, &format!("{ty}_ORDER_REJECT"));
        if let Some(o) = body.as_object() {
            for (k, v) in o {
                if k != "type" {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        m.insert("reason".into(), "CLIENT_ORDER".into());
        m.insert("rejectReason".into(), refusal.reason.into());
        let tx = Value::Object(m);
        self.record(tx.clone());
        self.rejected += 1;
        Outcome {
            reject: Some(tx),
            related: vec![id],
            message: Some(refusal.message.clone()),
            ..Outcome::default()
        }
    }

    /// Checks and places an order: instrument rules the engine does not know (the
    /// client id, margin), then the engine, then fills, expiry and cancels as
    /// transactions.
    pub(crate) fn place(
        &mut self,
        req: OrderReq,
        body: &Value,
        now_ns: i128,
        force_margin_reject: bool,
    ) -> Outcome {
        if let Some(cid) = req
            .client_ext
            .as_ref()
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
            && self
                .find_order(&format!("@{cid}"))
                .is_some_and(|o| o.state == OrdState::Pending)
        {
            let r = Refusal::new(
                "CLIENT_ORDER_ID_ALREADY_EXISTS",
                "The client order ID specified is already assigned to another pending order",
            );
            return self.reject(body, &r, now_ns);
        }
        let Some(inst) = self.instrument(&req.instrument).cloned() else {
            return self.reject(
                body,
                &Refusal::new(
                    "INSTRUMENT_UNKNOWN",
                    "Invalid value specified for 'instrument'",
                ),
                now_ns,
            );
        };
        let Some(idx) = self.idx(&inst.name) else {
            return self.reject(
                body,
                &Refusal::new(
                    "INSTRUMENT_UNKNOWN",
                    "Invalid value specified for 'instrument'",
                ),
                now_ns,
            );
        };
        let pos = self.units_of(&inst.name);
        let reduces = !pos.is_zero() && pos.is_sign_positive() != req.units.is_sign_positive();
        if req.position_fill == "REDUCE_ONLY" && !reduces {
            return self.reject(
                body,
                &Refusal::new(
                    "REDUCE_ONLY_ORDER_WOULD_INCREASE_POSITION",
                    "The order would increase the position",
                ),
                now_ns,
            );
        }
        let figures = self.margin_figures();
        let after =
            figures.used - self.margin_for(&inst, pos) + self.margin_for(&inst, pos + req.units);
        if force_margin_reject || !figures.admits(after) {
            return self.reject(
                body,
                &Refusal::new(
                    "INSUFFICIENT_MARGIN",
                    "Insufficient margin to perform the request",
                ),
                now_ns,
            );
        }
        let side = if req.units.is_sign_positive() {
            SimSide::Buy
        } else {
            SimSide::Sell
        };
        let qty = req.units.abs();
        let ms = i64::try_from(now_ns / 1_000_000).unwrap_or(0);
        let id = self.next_tx();
        let mut create = self.tx_base(id, id, now_ns, &format!("{}_ORDER", req.kind.wire()));
        create.insert("instrument".into(), inst.name.clone().into());
        create.insert(
            "units".into(),
            fixed(req.units, inst.trade_units_precision).into(),
        );
        create.insert("timeInForce".into(), req.tif.clone().into());
        if let Some(p) = req.price {
            create.insert("price".into(), fixed(p, inst.display_precision).into());
            create.insert("triggerCondition".into(), "DEFAULT".into());
            create.insert("partialFill".into(), "DEFAULT".into());
        }
        if let Some(g) = req.gtd_ns {
            create.insert("gtdTime".into(), rfc3339(g).into());
        }
        create.insert("positionFill".into(), req.position_fill.clone().into());
        create.insert("reason".into(), req.reason.into());
        for (k, v) in [
            ("clientExtensions", &req.client_ext),
            ("tradeClientExtensions", &req.trade_client_ext),
        ] {
            if let Some(v) = v {
                create.insert(k.into(), v.clone());
            }
        }
        if let Some((k, v)) = &req.extra {
            create.insert((*k).into(), v.clone());
        }
        let create = Value::Object(create);
        self.record(create.clone());
        if let Some(cid) = req
            .client_ext
            .as_ref()
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
        {
            self.by_client.insert(cid.to_owned(), id);
        }
        let immediate = req.kind == OrdType::Market || matches!(req.tif.as_str(), "FOK" | "IOC");
        let mut out = Outcome {
            create: Some(create),
            related: vec![id],
            ..Outcome::default()
        };
        self.orders.insert(
            id,
            Order {
                id,
                engine_id: None,
                req: req.clone(),
                create_ns: now_ns,
                state: OrdState::Pending,
                filled_units: Decimal::ZERO,
                filling_tx: None,
                filled_ns: None,
                cancelling_tx: None,
                cancelled_ns: None,
                trade_opened: None,
                trade_reduced: None,
                trades_closed: Vec::new(),
            },
        );
        // Fill-or-kill: all or nothing, checked before the engine sees the order.
        let fok = req.tif == "FOK";
        if fok && self.engine.fillable(idx, side, req.price, qty) < qty {
            let c = self.cancel_tx(id, id, "INSUFFICIENT_LIQUIDITY", now_ns);
            out.related.extend(c.as_ref().and_then(tx_id));
            out.cancel = c;
            return out;
        }
        let kind = match req.kind {
            OrdType::Market => OrderKind::Market {
                qty: Some(qty),
                quote_qty: None,
            },
            OrdType::Limit => OrderKind::Limit {
                price: req.price.unwrap_or_default(),
                qty,
                tif: if immediate {
                    SimTimeInForce::Ioc
                } else {
                    SimTimeInForce::Gtc
                },
            },
        };
        let new = NewOrder {
            symbol: inst.name.clone(),
            side,
            kind,
            client_order_id: None,
        };
        match self.engine.place(&self.account_id.clone(), &new, ms) {
            Ok(o) => {
                self.by_engine.insert(o.order_id, id);
                if let Some(ord) = self.orders.get_mut(&id) {
                    ord.engine_id = Some(o.order_id);
                }
            }
            Err(e) => {
                let c = self.cancel_tx(
                    id,
                    id,
                    if e == crate::engine::Reject::Filter(crate::engine::FilterKind::Price) {
                        "BOUNDS_VIOLATION"
                    } else {
                        "INTERNAL_SERVER_ERROR"
                    },
                    now_ns,
                );
                out.related.extend(c.as_ref().and_then(tx_id));
                out.cancel = c;
                return out;
            }
        }
        for f in self.drain_fills(id, now_ns) {
            out.related.extend(tx_id(&f));
            out.fill = Some(f);
        }
        if immediate
            && self
                .orders
                .get(&id)
                .is_some_and(|o| o.state == OrdState::Pending)
        {
            let c = self.cancel_tx(id, id, "INSUFFICIENT_LIQUIDITY", now_ns);
            out.related.extend(c.as_ref().and_then(tx_id));
            out.cancel = c;
        }
        out
    }

    /// Turns the engine's fills since the last drain into ORDER_FILL transactions (one
    /// per order, at the VWAP); returns them, oldest first.
    fn drain_fills(&mut self, batch: u64, now_ns: i128) -> Vec<Value> {
        let fills = std::mem::take(&mut self.engine.sink_mut().fills);
        let mut grouped: Vec<(u64, Decimal, Decimal)> = Vec::new();
        for (eid, p, q) in fills {
            match grouped.iter_mut().find(|g| g.0 == eid) {
                Some(g) => {
                    g.1 += p * q;
                    g.2 += q;
                }
                None => grouped.push((eid, p * q, q)),
            }
        }
        let mut out = Vec::new();
        for (eid, value, qty) in grouped {
            let Some(&oid) = self.by_engine.get(&eid) else {
                continue;
            };
            if qty.is_zero() {
                continue;
            }
            let vwap = (value / qty).round_dp(8).normalize();
            if let Some(tx) = self.fill(oid, batch, vwap, qty, now_ns) {
                out.push(tx);
            }
        }
        out
    }

    /// Applies one fill of `qty` (positive) of order `oid` at `price`: FIFO reduction of
    /// opposite trades, a new trade for the rest, the balance, the order; records the
    /// ORDER_FILL transaction.
    fn fill(
        &mut self,
        oid: u64,
        batch: u64,
        price: Decimal,
        qty: Decimal,
        now_ns: i128,
    ) -> Option<Value> {
        let (inst, units_sign, reason, trade_ext, client_id) = {
            let o = self.orders.get(&oid)?;
            let reason = match o.req.reason {
                "POSITION_CLOSEOUT" | "MARGIN_CLOSEOUT" => format!("MARKET_ORDER_{}", o.req.reason),
                _ => format!("{}_ORDER", o.req.kind.wire()),
            };
            let cid = o.req.client_ext.as_ref().and_then(|c| c.get("id")).cloned();
            (
                self.instrument(&o.req.instrument)?.clone(),
                sign_of(o.req.units),
                reason,
                o.req.trade_client_ext.clone(),
                cid,
            )
        };
        let full_price = self.price(&inst.name);
        let id = self.next_tx();
        let udp = inst.trade_units_precision;
        let mut remaining = qty;
        let mut realized = Decimal::ZERO;
        let mut closed = Vec::new();
        let mut reduced = None;
        // Netting with hedging off, by the engine's margin model: the open trades of
        // this instrument (ids ascend with time: oldest first) meet the fill.
        let open: Vec<(u64, Decimal)> = self
            .trades
            .values()
            .filter(|t| t.is_open() && t.instrument == inst.name)
            .map(|t| (t.id, t.current_units))
            .collect();
        let netting = margin::net_fifo(&open, qty * units_sign);
        for (tid, closed_signed) in netting.reduced {
            let quote = inst.quote().to_owned();
            let Some(t) = self.trades.get(&tid) else {
                continue;
            };
            let take = closed_signed.abs();
            let pl_quote = margin::realized_pl(closed_signed, t.price, price);
            let pl = self.to_home(pl_quote, &quote).round_dp(4);
            let Some(t) = self.trades.get_mut(&tid) else {
                continue;
            };
            t.current_units -= closed_signed;
            t.realized_pl += pl;
            t.closing_txs.push(id);
            t.close_value += price * take;
            realized += pl;
            remaining -= take;
            let entry = json!({
                "tradeID": tid.to_string(), "units": fixed(-closed_signed, udp), "price": price.to_string(),
                "realizedPL": money(pl), "financing": money(Decimal::ZERO),
                "guaranteedExecutionFee": money(Decimal::ZERO), "halfSpreadCost": money(Decimal::ZERO),
            });
            if t.current_units.is_zero() {
                t.close_ns = Some(now_ns);
                closed.push(entry);
            } else {
                reduced = Some(entry);
            }
        }
        let mut opened = None;
        if !remaining.is_zero() {
            let units = remaining * units_sign;
            let margin = self.margin_for(&inst, units);
            self.trades.insert(
                id,
                Trade {
                    id,
                    instrument: inst.name.clone(),
                    price,
                    open_ns: now_ns,
                    initial_units: units,
                    current_units: units,
                    initial_margin: margin,
                    realized_pl: Decimal::ZERO,
                    closing_txs: Vec::new(),
                    close_ns: None,
                    close_value: Decimal::ZERO,
                    client_ext: trade_ext,
                },
            );
            opened = Some(json!({
                "tradeID": id.to_string(), "units": fixed(units, udp), "price": price.to_string(),
                "guaranteedExecutionFee": money(Decimal::ZERO), "halfSpreadCost": money(Decimal::ZERO),
                "initialMarginRequired": money(margin),
            }));
        }
        self.balance += realized;
        self.pl += realized;
        self.last_fill_ns = Some(now_ns);
        let mut m = self.tx_base(id, batch, now_ns, "ORDER_FILL");
        m.insert("orderID".into(), oid.to_string().into());
        if let Some(c) = client_id {
            m.insert("clientOrderID".into(), c);
        }
        m.insert("instrument".into(), inst.name.clone().into());
        m.insert("units".into(), fixed(qty * units_sign, udp).into());
        m.insert("price".into(), price.to_string().into());
        m.insert("fullVWAP".into(), price.to_string().into());
        if let Some(p) = full_price {
            m.insert("fullPrice".into(), p);
        }
        m.insert("reason".into(), reason.into());
        m.insert("pl".into(), money(realized).into());
        for k in [
            "financing",
            "commission",
            "guaranteedExecutionFee",
            "halfSpreadCost",
        ] {
            m.insert(k.into(), money(Decimal::ZERO).into());
        }
        m.insert("accountBalance".into(), money(self.balance).into());
        if let Some(o) = &opened {
            m.insert("tradeOpened".into(), o.clone());
        }
        if let Some(r) = &reduced {
            m.insert("tradeReduced".into(), r.clone());
        }
        if !closed.is_empty() {
            m.insert("tradesClosed".into(), Value::Array(closed.clone()));
        }
        let tx = Value::Object(m);
        self.record(tx.clone());
        let ids = |v: &Value| {
            v.get("tradeID")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<u64>().ok())
        };
        if let Some(o) = self.orders.get_mut(&oid) {
            o.filled_units += qty;
            o.trade_opened = o.trade_opened.or_else(|| opened.as_ref().and_then(ids));
            o.trade_reduced = o.trade_reduced.or_else(|| reduced.as_ref().and_then(ids));
            o.trades_closed.extend(closed.iter().filter_map(ids));
            if o.filled_units >= o.req.units.abs() {
                o.state = OrdState::Filled;
                o.filling_tx = Some(id);
                o.filled_ns = Some(now_ns);
            }
        }
        Some(tx)
    }

    /// Cancels order `oid` (if pending) with `reason`; records ORDER_CANCEL.
    fn cancel_tx(&mut self, oid: u64, batch: u64, reason: &str, now_ns: i128) -> Option<Value> {
        let (eid, cid) = {
            let o = self
                .orders
                .get(&oid)
                .filter(|o| o.state == OrdState::Pending)?;
            (
                o.engine_id,
                o.req.client_ext.as_ref().and_then(|c| c.get("id")).cloned(),
            )
        };
        if let Some(eid) = eid
            && let Some(order) = self
                .engine
                .all_orders()
                .into_iter()
                .find(|o| o.order_id == eid)
            && order.is_open()
            && let Some(idx) = self.idx(&order.symbol)
        {
            let sel = OrderSel {
                order_id: Some(eid),
                client_order_id: None,
            };
            let ms = i64::try_from(now_ns / 1_000_000).unwrap_or(0);
            let _ = self
                .engine
                .cancel(&self.account_id.clone(), idx, &sel, None, ms);
        }
        let id = self.next_tx();
        let mut m = self.tx_base(id, batch, now_ns, "ORDER_CANCEL");
        m.insert("orderID".into(), oid.to_string().into());
        if let Some(c) = cid {
            m.insert("clientOrderID".into(), c);
        }
        m.insert("reason".into(), reason.into());
        let tx = Value::Object(m);
        self.record(tx.clone());
        if let Some(o) = self.orders.get_mut(&oid) {
            o.state = OrdState::Cancelled;
            o.cancelling_tx = Some(id);
            o.cancelled_ns = Some(now_ns);
        }
        Some(tx)
    }

    /// Cancels a pending order by specifier on the client's request.
    ///
    /// # Errors
    /// `Err(true)` when no such order exists, `Err(false)` when it is not pending.
    pub(crate) fn cancel(&mut self, spec: &str, now_ns: i128) -> Result<Value, bool> {
        let o = self.find_order(spec).ok_or(true)?;
        if o.state != OrdState::Pending {
            return Err(false);
        }
        let id = o.id;
        self.cancel_tx(id, self.last_tx + 1, "CLIENT_REQUEST", now_ns)
            .ok_or(false)
    }

    /// Closes (part of) a position with a MARKET order of `units` (signed: negative
    /// closes a long, positive a short); `spelled` is the units as the request named
    /// them (`ALL` or a decimal). Returns the outcome (create, fill, cancel).
    pub(crate) fn close_side(
        &mut self,
        instrument: &str,
        units: Decimal,
        spelled: &str,
        ext: Option<Value>,
        reason: &'static str,
        now_ns: i128,
    ) -> Outcome {
        let long = units.is_sign_negative();
        let key = if long {
            "longPositionCloseout"
        } else {
            "shortPositionCloseout"
        };
        let req = OrderReq {
            kind: OrdType::Market,
            instrument: instrument.to_owned(),
            units,
            price: None,
            tif: "FOK".to_owned(),
            gtd_ns: None,
            position_fill: "REDUCE_ONLY".to_owned(),
            client_ext: ext,
            trade_client_ext: None,
            reason,
            extra: Some((key, json!({"instrument": instrument, "units": spelled}))),
        };
        self.place(req, &Value::Null, now_ns, false)
    }

    // ---------------------------------------------------------------- market

    /// One market tick: the walk moves, resting orders fill, GTD/GFD orders expire, and a
    /// margin closeout runs when the account has fallen to it.
    pub(crate) fn tick(&mut self, now_ns: i128) {
        let ms = i64::try_from(now_ns / 1_000_000).unwrap_or(0);
        self.engine.tick(ms);
        self.price_ns = now_ns;
        for idx in 0..self.instruments.len() {
            let (_, bids, asks) = self.engine.depth(idx, 1);
            if let (Some(b), Some(a), Some(h)) =
                (bids.first(), asks.first(), self.history.get_mut(idx))
            {
                if h.len() >= HISTORY {
                    h.pop_front();
                }
                h.push_back((now_ns, b.0, a.0));
            }
        }
        let batch = self.last_tx + 1;
        self.drain_fills(batch, now_ns);
        self.expire(now_ns);
        self.closeout(now_ns);
    }

    /// A synthetic aggressor trade through resting orders (see the engine); the filled
    /// quantity.
    pub(crate) fn trade_through(
        &mut self,
        instrument: &str,
        price: Decimal,
        qty: Decimal,
        now_ns: i128,
    ) -> Option<Decimal> {
        let idx = self.idx(instrument)?;
        let ms = i64::try_from(now_ns / 1_000_000).unwrap_or(0);
        let filled = self.engine.trade_through(idx, price, qty, ms);
        let batch = self.last_tx + 1;
        self.drain_fills(batch, now_ns);
        Some(filled)
    }

    fn expire(&mut self, now_ns: i128) {
        let due: Vec<u64> = self
            .orders
            .values()
            .filter(|o| o.state == OrdState::Pending && o.req.gtd_ns.is_some_and(|g| g <= now_ns))
            .map(|o| o.id)
            .collect();
        for id in due {
            let batch = self.last_tx + 1;
            self.cancel_tx(id, batch, "TIME_IN_FORCE_EXPIRED", now_ns);
        }
    }

    fn closeout(&mut self, now_ns: i128) {
        if !self.margin_figures().closeout_due() {
            return;
        }
        let names: Vec<String> = self.instruments.iter().map(|i| i.name.clone()).collect();
        for name in names {
            let (l, s) = self.position_units(&name);
            if !l.is_zero() {
                self.close_side(&name, -l, "ALL", None, "MARGIN_CLOSEOUT", now_ns);
            }
            if !s.is_zero() {
                self.close_side(&name, -s, "ALL", None, "MARGIN_CLOSEOUT", now_ns);
            }
        }
    }
}
