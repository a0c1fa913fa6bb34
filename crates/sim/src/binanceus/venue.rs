//! The venue's state machine: books, accounts, orders, matching, and the events they emit.
//!
//! Everything here is synchronous and IO-free. The REST handlers, the websocket server,
//! the market ticker and the in-process handle all mutate one [`Venue`] behind one mutex,
//! and every event (depth diff, book ticker, trade, execution report, account position)
//! is *sent while that lock is held*. That single choice is what makes the simulator's
//! sequencing trustworthy: a REST depth snapshot can never fall between two diffs it
//! should have included, and an execution report is always broadcast before a REST
//! answer about the same order can be sent. The lock is a `std::sync::Mutex` because no
//! critical section awaits; `tokio::sync::broadcast::Sender::send` never blocks.
//!
//! Matching model (documented deviations from a real engine):
//! - The public book is the synthetic liquidity of [`SymbolMarket`] plus the remaining
//!   quantity of every open user limit order, aggregated by price.
//! - Taker orders (MARKET and crossing LIMIT) execute only against synthetic liquidity,
//!   at the level prices, consuming it. User orders never match each other.
//! - Resting user orders fill as makers, at their own limit price, when a market tick
//!   moves synthetic liquidity through them or when [`Venue::trade_through`] is called.
//! - Commission is 0.1% of the asset received (base for buys, quote for sells), rounded
//!   to 8 decimals, as Binance charges without BNB discounts.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde_json::Value;
use tokio::sync::broadcast;

use super::config::{SimConfig, SimSymbol};
use super::error::ApiError;
use super::market::SymbolMarket;
use super::orders::{OrderKind, OrderRequest};
use super::types::{
    BookSnapshot, Level, SimFill, SimOrder, SimOrderStatus, SimOrderType, SimSide, SimTimeInForce,
};
use super::wire::{self, ExecType, PublicTrade};

/// How many public trades per symbol `GET /api/v3/trades` can return.
const RECENT_TRADES: usize = 1000;
/// A listenKey lives 60 minutes unless kept alive.
const LISTEN_KEY_TTL_MS: i64 = 60 * 60 * 1000;
/// First `lastUpdateId` of every book.
const FIRST_UPDATE_ID: u64 = 1000;
/// Update ids skipped by the `DepthGap` fault.
const GAP_SKIP: u64 = 3;

fn commission_rate() -> Decimal {
    Decimal::new(1, 3)
}

fn round8(d: Decimal) -> Decimal {
    d.round_dp(8)
}

/// Which market stream an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketKind {
    /// `<symbol>@depth` and `<symbol>@depth@100ms`.
    Depth,
    /// `<symbol>@bookTicker`.
    BookTicker,
    /// `<symbol>@trade`.
    Trade,
}

/// A market-data event, already serialized once for every subscriber.
#[derive(Debug)]
pub struct MarketEvent {
    /// Lowercase symbol, as in stream names.
    pub symbol_lower: String,
    /// Stream family.
    pub kind: MarketKind,
    /// JSON payload (without the combined-stream wrapper).
    pub payload: String,
}

/// A user-data event for one account.
#[derive(Debug)]
pub struct UserEvent {
    /// The account's API key.
    pub api_key: String,
    /// JSON payload.
    pub payload: String,
}

/// Where the venue sends its events. Broadcast channels because every websocket
/// connection filters the same stream of events for its own subscriptions.
#[derive(Debug, Clone)]
pub struct Sinks {
    /// Market data.
    pub market: broadcast::Sender<Arc<MarketEvent>>,
    /// User data.
    pub user: broadcast::Sender<Arc<UserEvent>>,
}

impl Sinks {
    fn market(&self, symbol_lower: &str, kind: MarketKind, payload: &Value) {
        // An Err only means nobody is subscribed right now, which is normal.
        let _ = self.market.send(Arc::new(MarketEvent {
            symbol_lower: symbol_lower.to_owned(),
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

type Levels = BTreeMap<Decimal, Decimal>;

/// Best bid and best ask.
pub type Top = (Option<Level>, Option<Level>);

#[derive(Debug)]
struct Book {
    market: SymbolMarket,
    lower: String,
    /// The aggregated book as last published (what clients can reconstruct).
    bids: Levels,
    asks: Levels,
    last_update_id: u64,
    top: Top,
    trades: VecDeque<PublicTrade>,
    next_trade_id: u64,
    gap_pending: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Bal {
    free: Decimal,
    locked: Decimal,
}

#[derive(Debug, Default)]
struct Account {
    balances: BTreeMap<String, Bal>,
    update_time: i64,
}

impl Account {
    fn bal(&mut self, asset: &str) -> &mut Bal {
        self.balances.entry(asset.to_owned()).or_default()
    }

    fn free(&self, asset: &str) -> Decimal {
        self.balances.get(asset).map_or(Decimal::ZERO, |b| b.free)
    }

    fn lock(&mut self, asset: &str, amount: Decimal) {
        let b = self.bal(asset);
        b.free -= amount;
        b.locked += amount;
    }

    fn release(&mut self, asset: &str, amount: Decimal) {
        let b = self.bal(asset);
        b.locked -= amount;
        b.free += amount;
    }
}

#[derive(Debug, Clone)]
struct ListenKey {
    api_key: String,
    expires_ms: i64,
}

/// Counters kept by the venue (merged into [`super::SimStats`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct VenueCounters {
    /// Orders accepted.
    pub accepted: u64,
    /// Orders canceled.
    pub canceled: u64,
    /// User fills.
    pub fills: u64,
    /// Depth diffs emitted.
    pub depth_updates: u64,
}

/// How a request names an order.
#[derive(Debug, Clone, Default)]
pub struct OrderSel {
    /// `orderId` (wins when both are sent).
    pub order_id: Option<u64>,
    /// `origClientOrderId`.
    pub client_order_id: Option<String>,
}

/// Result of walking the synthetic book.
struct Plan {
    fills: Vec<(Decimal, Decimal)>,
    /// The walk ran out of liquidity before the order was satisfied.
    short: bool,
}

#[derive(Clone, Copy)]
enum Want {
    Base(Decimal),
    Quote(Decimal),
}

fn floor_step(x: Decimal, step: Decimal) -> Decimal {
    x.checked_div(step)
        .map_or(Decimal::ZERO, |u| u.floor() * step)
}

/// Walks the synthetic side a taker order would hit, without changing anything.
fn plan(m: &SymbolMarket, side: SimSide, limit: Option<Decimal>, want: Want) -> Plan {
    let step = m.spec.step_size;
    let levels: Vec<(Decimal, Decimal)> = match side {
        SimSide::Buy => m.asks.iter().map(|(p, q)| (*p, *q)).collect(),
        SimSide::Sell => m.bids.iter().rev().map(|(p, q)| (*p, *q)).collect(),
    };
    let mut fills = Vec::new();
    let mut rem = match want {
        Want::Base(q) | Want::Quote(q) => q,
    };
    let mut satisfied = false;
    for (p, q) in levels {
        let crosses = match (side, limit) {
            (_, None) => true,
            (SimSide::Buy, Some(l)) => p <= l,
            (SimSide::Sell, Some(l)) => p >= l,
        };
        if !crosses {
            // Not short: a limit order simply stops at its price.
            satisfied = true;
            break;
        }
        let take = match want {
            Want::Base(_) => rem.min(q),
            Want::Quote(_) => q.min(floor_step(rem.checked_div(p).unwrap_or_default(), step)),
        };
        if take <= Decimal::ZERO {
            satisfied = true;
            break;
        }
        fills.push((p, take));
        rem -= match want {
            Want::Base(_) => take,
            Want::Quote(_) => take * p,
        };
        if rem <= Decimal::ZERO {
            satisfied = true;
            break;
        }
    }
    Plan {
        fills,
        short: !satisfied && rem > Decimal::ZERO,
    }
}

/// Levels that differ between `old` and `new`, with qty 0 for removed ones.
fn diff(old: &Levels, new: &Levels, descending: bool) -> Vec<(Decimal, Decimal)> {
    let keys: BTreeSet<&Decimal> = old.keys().chain(new.keys()).collect();
    let mut out: Vec<(Decimal, Decimal)> = keys
        .into_iter()
        .filter_map(|p| {
            let n = new.get(p).copied().unwrap_or(Decimal::ZERO);
            let o = old.get(p).copied().unwrap_or(Decimal::ZERO);
            (n != o).then_some((*p, n))
        })
        .collect();
    if descending {
        out.reverse();
    }
    out
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The simulated exchange.
#[derive(Debug)]
pub struct Venue {
    books: Vec<Book>,
    index: HashMap<String, usize>,
    orders: BTreeMap<u64, SimOrder>,
    open: BTreeSet<u64>,
    accounts: HashMap<String, Account>,
    listen_keys: HashMap<String, ListenKey>,
    next_order_id: u64,
    rng: ChaCha8Rng,
    sinks: Sinks,
    touched: BTreeMap<String, BTreeSet<String>>,
    counters: VenueCounters,
}

impl Venue {
    /// Builds the venue from a validated config.
    #[must_use]
    pub fn new(cfg: &SimConfig, sinks: Sinks) -> Self {
        let mut books = Vec::new();
        let mut index = HashMap::new();
        for (i, spec) in cfg.symbols.iter().enumerate() {
            let market = SymbolMarket::new(spec.clone(), cfg.seed, i as u64);
            index.insert(spec.symbol.clone(), i);
            books.push(Book {
                lower: spec.symbol.to_lowercase(),
                bids: market.bids.clone(),
                asks: market.asks.clone(),
                top: (None, None),
                market,
                last_update_id: FIRST_UPDATE_ID,
                trades: VecDeque::new(),
                next_trade_id: 1,
                gap_pending: false,
            });
        }
        for b in &mut books {
            b.top = (
                b.bids.iter().next_back().map(|(p, q)| (*p, *q)),
                b.asks.iter().next().map(|(p, q)| (*p, *q)),
            );
        }
        let mut accounts = HashMap::new();
        for k in &cfg.api_keys {
            let mut acct = Account::default();
            for s in &cfg.symbols {
                acct.bal(&s.base);
                acct.bal(&s.quote);
            }
            for (asset, amount) in &cfg.initial_balances {
                acct.bal(asset).free = *amount;
            }
            accounts.insert(k.api_key.clone(), acct);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(u64::MAX);
        Self {
            books,
            index,
            orders: BTreeMap::new(),
            open: BTreeSet::new(),
            accounts,
            listen_keys: HashMap::new(),
            next_order_id: 1,
            rng,
            sinks,
            touched: BTreeMap::new(),
            counters: VenueCounters::default(),
        }
    }

    fn random_id(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| {
                let i = self.rng.random_range(0..ID_ALPHABET.len());
                char::from(ID_ALPHABET[i])
            })
            .collect()
    }

    /// The venue's counters.
    #[must_use]
    pub fn counters(&self) -> VenueCounters {
        self.counters
    }

    /// Index of a symbol.
    ///
    /// # Errors
    /// -1121 for an unknown symbol.
    pub fn symbol_idx(&self, symbol: &str) -> Result<usize, ApiError> {
        self.index
            .get(symbol)
            .copied()
            .ok_or_else(ApiError::invalid_symbol)
    }

    /// All symbol definitions, in config order.
    pub fn specs(&self) -> impl Iterator<Item = &SimSymbol> {
        self.books.iter().map(|b| &b.market.spec)
    }

    /// The definition of symbol `idx`.
    #[must_use]
    pub fn spec(&self, idx: usize) -> Option<&SimSymbol> {
        self.books.get(idx).map(|b| &b.market.spec)
    }

    /// `lastUpdateId` and up to `limit` levels per side (bids best first).
    #[must_use]
    pub fn depth(&self, idx: usize, limit: usize) -> BookSnapshot {
        let Some(b) = self.books.get(idx) else {
            return (0, Vec::new(), Vec::new());
        };
        (
            b.last_update_id,
            b.bids
                .iter()
                .rev()
                .take(limit)
                .map(|(p, q)| (*p, *q))
                .collect(),
            b.asks.iter().take(limit).map(|(p, q)| (*p, *q)).collect(),
        )
    }

    /// Best bid and ask of symbol `idx`.
    #[must_use]
    pub fn top(&self, idx: usize) -> Top {
        self.books.get(idx).map_or((None, None), |b| b.top)
    }

    /// The newest `limit` public trades of symbol `idx`, oldest first.
    #[must_use]
    pub fn recent_trades(&self, idx: usize, limit: usize) -> Vec<PublicTrade> {
        let Some(b) = self.books.get(idx) else {
            return Vec::new();
        };
        let skip = b.trades.len().saturating_sub(limit);
        b.trades.iter().skip(skip).copied().collect()
    }

    /// Reference price of symbol `idx` (mid of the synthetic touch).
    #[must_use]
    pub fn reference_price(&self, idx: usize) -> Decimal {
        self.books
            .get(idx)
            .map_or(Decimal::ZERO, |b| b.market.reference_price())
    }

    /// Every order ever accepted, by order id.
    #[must_use]
    pub fn all_orders(&self) -> Vec<SimOrder> {
        self.orders.values().cloned().collect()
    }

    /// `(asset, free, locked)` of an account, sorted by asset; empty for unknown keys.
    #[must_use]
    pub fn balances(&self, api_key: &str) -> Vec<(String, Decimal, Decimal)> {
        self.accounts.get(api_key).map_or_else(Vec::new, |a| {
            a.balances
                .iter()
                .map(|(k, b)| (k.clone(), b.free, b.locked))
                .collect()
        })
    }

    /// Last balance change of an account (server ms).
    #[must_use]
    pub fn account_update_time(&self, api_key: &str) -> i64 {
        self.accounts.get(api_key).map_or(0, |a| a.update_time)
    }

    /// Makes the next depth diff of symbol `idx` skip update ids.
    pub fn request_gap(&mut self, idx: usize) {
        if let Some(b) = self.books.get_mut(idx) {
            b.gap_pending = true;
        }
    }

    fn touch(&mut self, api_key: &str, assets: &[&str]) {
        let set = self.touched.entry(api_key.to_owned()).or_default();
        for a in assets {
            set.insert((*a).to_owned());
        }
    }

    /// Sends one `outboundAccountPosition` per account whose balances changed.
    fn flush_accounts(&mut self, now: i64) {
        for (key, assets) in std::mem::take(&mut self.touched) {
            let Some(acct) = self.accounts.get_mut(&key) else {
                continue;
            };
            acct.update_time = now;
            let bals: Vec<(String, Decimal, Decimal)> = assets
                .into_iter()
                .map(|a| {
                    let b = acct.balances.get(&a).copied().unwrap_or_default();
                    (a, b.free, b.locked)
                })
                .collect();
            self.sinks.user(&key, &wire::account_position(now, &bals));
        }
    }

    /// The aggregated (synthetic + user) book of symbol `idx`.
    fn aggregate(&self, idx: usize) -> (Levels, Levels) {
        let Some(b) = self.books.get(idx) else {
            return (Levels::new(), Levels::new());
        };
        let mut bids = b.market.bids.clone();
        let mut asks = b.market.asks.clone();
        for id in &self.open {
            let Some(o) = self.orders.get(id) else {
                continue;
            };
            if o.symbol != b.market.spec.symbol || o.order_type != SimOrderType::Limit {
                continue;
            }
            let rem = o.remaining();
            if rem > Decimal::ZERO {
                let side = if o.side == SimSide::Buy {
                    &mut bids
                } else {
                    &mut asks
                };
                *side.entry(o.price).or_default() += rem;
            }
        }
        (bids, asks)
    }

    /// Publishes the changes of symbol `idx`'s aggregated book since the last publish as
    /// one depth diff with contiguous update ids, and the book ticker when the touch
    /// changed (or always, with `force_ticker`, once per market tick).
    fn publish(&mut self, idx: usize, now: i64, force_ticker: bool) {
        let (bids, asks) = self.aggregate(idx);
        let Some(book) = self.books.get_mut(idx) else {
            return;
        };
        let db = diff(&book.bids, &bids, true);
        let da = diff(&book.asks, &asks, false);
        if !db.is_empty() || !da.is_empty() {
            let skip = if std::mem::take(&mut book.gap_pending) {
                GAP_SKIP
            } else {
                0
            };
            let first = book.last_update_id + 1 + skip;
            let last = first + (db.len() + da.len()) as u64 - 1;
            book.last_update_id = last;
            book.bids = bids;
            book.asks = asks;
            let payload = wire::depth_update(&book.market.spec.symbol, now, first, last, &db, &da);
            self.sinks.market(&book.lower, MarketKind::Depth, &payload);
            self.counters.depth_updates += 1;
        }
        let top = (
            book.bids.iter().next_back().map(|(p, q)| (*p, *q)),
            book.asks.iter().next().map(|(p, q)| (*p, *q)),
        );
        if force_ticker || top != book.top {
            book.top = top;
            let payload =
                wire::book_ticker(book.last_update_id, &book.market.spec.symbol, top.0, top.1);
            self.sinks
                .market(&book.lower, MarketKind::BookTicker, &payload);
        }
    }

    fn record_trade(&mut self, idx: usize, trade: PublicTrade, now: i64) {
        let Some(book) = self.books.get_mut(idx) else {
            return;
        };
        if book.trades.len() >= RECENT_TRADES {
            book.trades.pop_front();
        }
        book.trades.push_back(trade);
        let payload = wire::trade_event(&book.market.spec.symbol, now, &trade);
        self.sinks.market(&book.lower, MarketKind::Trade, &payload);
    }

    fn next_trade_id(&mut self, idx: usize) -> u64 {
        self.books.get_mut(idx).map_or(0, |b| {
            let id = b.next_trade_id;
            b.next_trade_id += 1;
            id
        })
    }

    /// Removes `qty` from a synthetic level (taker or maker consumption).
    fn consume(&mut self, idx: usize, side_hit: SimSide, price: Decimal, qty: Decimal) {
        let Some(b) = self.books.get_mut(idx) else {
            return;
        };
        let levels = match side_hit {
            SimSide::Buy => &mut b.market.bids,
            SimSide::Sell => &mut b.market.asks,
        };
        if let Some(q) = levels.get_mut(&price) {
            *q -= qty;
            if *q <= Decimal::ZERO {
                levels.remove(&price);
            }
        }
    }

    /// Executes `qty` of order `id` at `price`: balances, order state, execution report,
    /// public trade. The caller publishes the book and flushes account events.
    fn apply_fill(&mut self, id: u64, price: Decimal, qty: Decimal, maker: bool, now: i64) {
        let Some((idx, base, quote, side)) = self.orders.get(&id).and_then(|o| {
            let idx = *self.index.get(&o.symbol)?;
            let spec = &self.books.get(idx)?.market.spec;
            Some((idx, spec.base.clone(), spec.quote.clone(), o.side))
        }) else {
            return;
        };
        let trade_id = self.next_trade_id(idx);
        // Disjoint field borrows: the order and its account are updated together.
        let Some(o) = self.orders.get_mut(&id) else {
            return;
        };
        let Some(acct) = self.accounts.get_mut(&o.api_key) else {
            return;
        };
        let quote_amt = price * qty;
        let rate = commission_rate();
        let (commission, commission_asset) = match side {
            SimSide::Buy => {
                let spend = quote_amt.min(o.locked);
                acct.bal(&quote).locked -= spend;
                o.locked -= spend;
                let c = round8(qty * rate);
                acct.bal(&base).free += qty - c;
                (c, base.clone())
            }
            SimSide::Sell => {
                let give = qty.min(o.locked);
                acct.bal(&base).locked -= give;
                o.locked -= give;
                let c = round8(quote_amt * rate);
                acct.bal(&quote).free += quote_amt - c;
                (c, quote.clone())
            }
        };
        o.executed_qty += qty;
        o.cummulative_quote_qty += quote_amt;
        o.update_time = now;
        o.status = if o.remaining().is_zero() {
            SimOrderStatus::Filled
        } else {
            SimOrderStatus::PartiallyFilled
        };
        if side == SimSide::Buy && o.order_type == SimOrderType::Limit {
            // Price improvement: keep locked only what the remainder can still cost.
            let need = o.price * o.remaining();
            if o.locked > need {
                acct.release(&quote, o.locked - need);
                o.locked = need;
            }
        }
        if o.status == SimOrderStatus::Filled {
            let asset = if side == SimSide::Buy { &quote } else { &base };
            acct.release(asset, o.locked);
            o.locked = Decimal::ZERO;
        }
        let fill = SimFill {
            trade_id,
            price,
            qty,
            commission,
            commission_asset,
            maker,
            time: now,
        };
        o.fills.push(fill.clone());
        let report = wire::execution_report(o, ExecType::Trade, now, Some(&fill), None);
        let api_key = o.api_key.clone();
        let closed = !o.is_open();
        self.sinks.user(&api_key, &report);
        if closed {
            self.open.remove(&id);
        }
        self.counters.fills += 1;
        self.touch(&api_key, &[&base, &quote]);
        let buyer_maker = (side == SimSide::Buy) == maker;
        let trade = PublicTrade {
            id: trade_id,
            price,
            qty,
            time: now,
            buyer_maker,
            buyer_order: if side == SimSide::Buy { id } else { 0 },
            seller_order: if side == SimSide::Sell { id } else { 0 },
        };
        self.record_trade(idx, trade, now);
    }

    /// Ends an open order (`Canceled` or `Expired`), releasing what it still locks.
    fn close_order(&mut self, id: u64, status: SimOrderStatus, now: i64) {
        let Some(o) = self.orders.get_mut(&id) else {
            return;
        };
        let Some(idx) = self.index.get(&o.symbol).copied() else {
            return;
        };
        let Some(spec) = self.books.get(idx).map(|b| &b.market.spec) else {
            return;
        };
        let asset = if o.side == SimSide::Buy {
            spec.quote.clone()
        } else {
            spec.base.clone()
        };
        if let Some(acct) = self.accounts.get_mut(&o.api_key) {
            acct.release(&asset, o.locked);
        }
        o.locked = Decimal::ZERO;
        o.status = status;
        o.update_time = now;
        let api_key = o.api_key.clone();
        self.open.remove(&id);
        self.touch(&api_key, &[&asset]);
    }

    /// Places an order for `api_key`: filters, duplicate check, funds, immediate
    /// execution against synthetic liquidity, then rest or expire.
    ///
    /// # Errors
    /// -1121 unknown symbol, -1013 filter failure, -2010 duplicate open client id or
    /// insufficient balance. Nothing is changed when an error is returned.
    pub fn place(
        &mut self,
        api_key: &str,
        req: &OrderRequest,
        now: i64,
    ) -> Result<SimOrder, ApiError> {
        let idx = self.symbol_idx(&req.symbol)?;
        let Some(book) = self.books.get(idx) else {
            return Err(ApiError::invalid_symbol());
        };
        let spec = book.market.spec.clone();
        let reference_price = book.market.reference_price();
        req.check_filters(&spec, reference_price)?;
        if let Some(cid) = &req.client_order_id {
            let dup = self
                .open
                .iter()
                .filter_map(|id| self.orders.get(id))
                .any(|o| o.api_key == api_key && o.client_order_id == *cid);
            if dup {
                return Err(ApiError::duplicate_order());
            }
        }
        let side = req.side;
        let (limit, want, tif) = match req.kind {
            OrderKind::Limit { price, qty, tif } => (Some(price), Want::Base(qty), tif),
            OrderKind::Market { qty: Some(q), .. } => (None, Want::Base(q), SimTimeInForce::Gtc),
            OrderKind::Market {
                quote_qty: Some(q), ..
            } => (None, Want::Quote(q), SimTimeInForce::Gtc),
            OrderKind::Market { .. } => return Err(ApiError::mandatory("quantity")),
        };
        let mut p = plan(&book.market, side, limit, want);
        let planned_base: Decimal = p.fills.iter().map(|(_, q)| *q).sum();
        let planned_quote: Decimal = p.fills.iter().map(|(px, q)| *px * *q).sum();
        if let (OrderKind::Limit { qty, .. }, SimTimeInForce::Fok) = (&req.kind, tif)
            && planned_base < *qty
        {
            p.fills.clear();
        }
        let (lock_asset, lock_amt) = match (side, &req.kind) {
            (SimSide::Buy, OrderKind::Limit { price, qty, .. }) => (&spec.quote, *price * *qty),
            (
                SimSide::Buy,
                OrderKind::Market {
                    quote_qty: Some(q), ..
                },
            ) => (&spec.quote, *q),
            (SimSide::Buy, OrderKind::Market { .. }) => (&spec.quote, planned_quote),
            (SimSide::Sell, OrderKind::Limit { qty, .. }) => (&spec.base, *qty),
            (SimSide::Sell, OrderKind::Market { qty: Some(q), .. }) => (&spec.base, *q),
            (SimSide::Sell, OrderKind::Market { .. }) => (&spec.base, planned_base),
        };
        let free = self
            .accounts
            .get(api_key)
            .map_or(Decimal::ZERO, |a| a.free(lock_asset));
        if free < lock_amt {
            return Err(ApiError::insufficient_balance());
        }
        // Accepted from here on.
        let (orig_qty, quote_qty) = match req.kind {
            OrderKind::Limit { qty, .. } | OrderKind::Market { qty: Some(qty), .. } => {
                (qty, Decimal::ZERO)
            }
            OrderKind::Market { quote_qty, .. } => {
                let q = quote_qty.unwrap_or_default();
                let orig = if p.short {
                    // The walk cannot spend it all: ask for more than it can fill so the
                    // order reads PARTIALLY_FILLED and then EXPIRED, as on the venue.
                    let est = floor_step(
                        q.checked_div(reference_price).unwrap_or_default(),
                        spec.step_size,
                    );
                    est.max(planned_base + spec.step_size)
                } else {
                    planned_base
                };
                (orig, q)
            }
        };
        let id = self.next_order_id;
        self.next_order_id += 1;
        let client_order_id = match &req.client_order_id {
            Some(c) => c.clone(),
            None => self.random_id(22),
        };
        let order = SimOrder {
            api_key: api_key.to_owned(),
            symbol: spec.symbol.clone(),
            order_id: id,
            client_order_id,
            side,
            order_type: req.order_type(),
            time_in_force: tif,
            price: limit.unwrap_or_default(),
            orig_qty,
            orig_quote_order_qty: quote_qty,
            executed_qty: Decimal::ZERO,
            cummulative_quote_qty: Decimal::ZERO,
            status: SimOrderStatus::New,
            time: now,
            update_time: now,
            fills: Vec::new(),
            locked: lock_amt,
        };
        if let Some(acct) = self.accounts.get_mut(api_key) {
            acct.lock(lock_asset, lock_amt);
        }
        let lock_asset = lock_asset.clone();
        self.touch(api_key, &[&lock_asset]);
        self.sinks.user(
            api_key,
            &wire::execution_report(&order, ExecType::New, now, None, None),
        );
        self.orders.insert(id, order);
        self.open.insert(id);
        self.counters.accepted += 1;
        let hit = match side {
            SimSide::Buy => SimSide::Sell,
            SimSide::Sell => SimSide::Buy,
        };
        for (px, q) in p.fills {
            self.consume(idx, hit, px, q);
            self.apply_fill(id, px, q, false, now);
        }
        let rests = req.order_type() == SimOrderType::Limit && tif == SimTimeInForce::Gtc;
        let still_open = self.orders.get(&id).is_some_and(SimOrder::is_open);
        if still_open && !rests {
            self.close_order(id, SimOrderStatus::Expired, now);
            if let Some(o) = self.orders.get(&id) {
                let report = wire::execution_report(o, ExecType::Expired, now, None, None);
                self.sinks.user(api_key, &report);
            }
        }
        self.publish(idx, now, false);
        self.flush_accounts(now);
        self.orders.get(&id).cloned().ok_or_else(ApiError::unknown)
    }

    fn find(&self, api_key: &str, idx: usize, sel: &OrderSel) -> Option<u64> {
        let symbol = &self.books.get(idx)?.market.spec.symbol;
        let mine = |o: &&SimOrder| o.api_key == api_key && o.symbol == *symbol;
        if let Some(id) = sel.order_id {
            return self.orders.get(&id).filter(mine).map(|o| o.order_id);
        }
        let cid = sel.client_order_id.as_deref()?;
        let matching = || {
            self.orders
                .values()
                .filter(mine)
                .filter(|o| o.client_order_id == cid)
        };
        matching()
            .filter(|o| o.is_open())
            .map(|o| o.order_id)
            .next_back()
            .or_else(|| matching().map(|o| o.order_id).next_back())
    }

    /// An order of `api_key` on symbol `idx`.
    ///
    /// # Errors
    /// -2013 when no such order exists for this account and symbol.
    pub fn query(&self, api_key: &str, idx: usize, sel: &OrderSel) -> Result<SimOrder, ApiError> {
        self.find(api_key, idx, sel)
            .and_then(|id| self.orders.get(&id).cloned())
            .ok_or_else(ApiError::no_such_order)
    }

    /// Cancels an open order; returns it and the cancel's client id.
    ///
    /// # Errors
    /// -2011 when the order is unknown or no longer open.
    pub fn cancel(
        &mut self,
        api_key: &str,
        idx: usize,
        sel: &OrderSel,
        cancel_client_id: Option<String>,
        now: i64,
    ) -> Result<(SimOrder, String), ApiError> {
        let id = self
            .find(api_key, idx, sel)
            .ok_or_else(ApiError::unknown_order)?;
        if !self.orders.get(&id).is_some_and(SimOrder::is_open) {
            return Err(ApiError::unknown_order());
        }
        let cid = match cancel_client_id {
            Some(c) => c,
            None => self.random_id(22),
        };
        self.close_order(id, SimOrderStatus::Canceled, now);
        self.counters.canceled += 1;
        let o = self
            .orders
            .get(&id)
            .cloned()
            .ok_or_else(ApiError::unknown)?;
        self.sinks.user(
            api_key,
            &wire::execution_report(&o, ExecType::Canceled, now, None, Some(&cid)),
        );
        self.publish(idx, now, false);
        self.flush_accounts(now);
        Ok((o, cid))
    }

    /// Cancels every open order of `api_key` on symbol `idx`.
    pub fn cancel_all(&mut self, api_key: &str, idx: usize, now: i64) -> Vec<(SimOrder, String)> {
        let symbol = match self.books.get(idx) {
            Some(b) => b.market.spec.symbol.clone(),
            None => return Vec::new(),
        };
        let ids: Vec<u64> = self
            .open
            .iter()
            .filter_map(|id| self.orders.get(id))
            .filter(|o| o.api_key == api_key && o.symbol == symbol)
            .map(|o| o.order_id)
            .collect();
        let mut out = Vec::new();
        for id in ids {
            let sel = OrderSel {
                order_id: Some(id),
                client_order_id: None,
            };
            if let Ok(c) = self.cancel(api_key, idx, &sel, None, now) {
                out.push(c);
            }
        }
        out
    }

    /// Open orders of `api_key`, on one symbol or all.
    #[must_use]
    pub fn open_orders(&self, api_key: &str, idx: Option<usize>) -> Vec<SimOrder> {
        let symbol = idx
            .and_then(|i| self.books.get(i))
            .map(|b| b.market.spec.symbol.clone());
        self.open
            .iter()
            .filter_map(|id| self.orders.get(id))
            .filter(|o| o.api_key == api_key && symbol.as_ref().is_none_or(|s| *s == o.symbol))
            .cloned()
            .collect()
    }

    /// The newest `limit` orders of `api_key` on symbol `idx`, oldest first.
    #[must_use]
    pub fn orders_of(&self, api_key: &str, idx: usize, limit: usize) -> Vec<SimOrder> {
        let Some(symbol) = self.books.get(idx).map(|b| &b.market.spec.symbol) else {
            return Vec::new();
        };
        let all: Vec<&SimOrder> = self
            .orders
            .values()
            .filter(|o| o.api_key == api_key && o.symbol == *symbol)
            .collect();
        let skip = all.len().saturating_sub(limit);
        all.into_iter().skip(skip).cloned().collect()
    }

    /// One market tick: every symbol's walk moves, resting orders the market moved
    /// through fill, diffs and tickers are published, and maybe a public trade printed.
    pub fn tick(&mut self, now: i64) {
        for idx in 0..self.books.len() {
            let trade = self.books.get_mut(idx).and_then(|b| b.market.tick());
            self.match_resting(idx, now);
            self.publish(idx, now, true);
            if let Some(t) = trade {
                let id = self.next_trade_id(idx);
                let trade = PublicTrade {
                    id,
                    price: t.price,
                    qty: t.qty,
                    time: now,
                    buyer_maker: t.buyer_maker,
                    buyer_order: 0,
                    seller_order: 0,
                };
                self.record_trade(idx, trade, now);
            }
        }
        self.flush_accounts(now);
    }

    /// Open limit orders of symbol `idx` on `side`, in price-time priority.
    fn resting(&self, idx: usize, side: SimSide) -> Vec<(Decimal, u64)> {
        let Some(symbol) = self.books.get(idx).map(|b| &b.market.spec.symbol) else {
            return Vec::new();
        };
        let mut v: Vec<(Decimal, u64)> = self
            .open
            .iter()
            .filter_map(|id| self.orders.get(id))
            .filter(|o| {
                o.symbol == *symbol && o.side == side && o.order_type == SimOrderType::Limit
            })
            .map(|o| (o.price, o.order_id))
            .collect();
        match side {
            SimSide::Buy => v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1))),
            SimSide::Sell => v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1))),
        }
        v
    }

    /// Fills resting orders that synthetic liquidity now crosses, as makers at their price.
    fn match_resting(&mut self, idx: usize, now: i64) {
        for side in [SimSide::Buy, SimSide::Sell] {
            for (price, id) in self.resting(idx, side) {
                loop {
                    let rem = self
                        .orders
                        .get(&id)
                        .map_or(Decimal::ZERO, SimOrder::remaining);
                    if rem.is_zero() {
                        break;
                    }
                    let Some(m) = self.books.get(idx).map(|b| &b.market) else {
                        break;
                    };
                    let level = match side {
                        SimSide::Buy => m.asks.iter().next().filter(|(p, _)| **p <= price),
                        SimSide::Sell => m.bids.iter().next_back().filter(|(p, _)| **p >= price),
                    };
                    let Some((&lp, &lq)) = level else { break };
                    let q = rem.min(lq);
                    let hit = if side == SimSide::Buy {
                        SimSide::Sell
                    } else {
                        SimSide::Buy
                    };
                    self.consume(idx, hit, lp, q);
                    self.apply_fill(id, price, q, true, now);
                }
            }
        }
    }

    /// A synthetic aggressor trade at `price` for up to `qty`: fills resting buys priced
    /// at or above it and resting sells at or below it, in price-time priority, at their
    /// own prices. Returns the quantity filled.
    pub fn trade_through(&mut self, idx: usize, price: Decimal, qty: Decimal, now: i64) -> Decimal {
        let mut budget = qty.max(Decimal::ZERO);
        for side in [SimSide::Buy, SimSide::Sell] {
            for (op, id) in self.resting(idx, side) {
                let crosses = match side {
                    SimSide::Buy => op >= price,
                    SimSide::Sell => op <= price,
                };
                if !crosses || budget <= Decimal::ZERO {
                    continue;
                }
                let rem = self
                    .orders
                    .get(&id)
                    .map_or(Decimal::ZERO, SimOrder::remaining);
                let q = rem.min(budget);
                if q > Decimal::ZERO {
                    self.apply_fill(id, op, q, true, now);
                    budget -= q;
                }
            }
        }
        self.publish(idx, now, false);
        self.flush_accounts(now);
        qty.max(Decimal::ZERO) - budget
    }

    /// `POST /api/v3/userDataStream`: the account's active key (extended) or a new one.
    pub fn create_listen_key(&mut self, api_key: &str, now: i64) -> String {
        let existing = self
            .listen_keys
            .iter()
            .find(|(_, v)| v.api_key == api_key && v.expires_ms > now)
            .map(|(k, _)| k.clone());
        let key = match existing {
            Some(k) => k,
            None => self.random_id(60),
        };
        self.listen_keys.insert(
            key.clone(),
            ListenKey {
                api_key: api_key.to_owned(),
                expires_ms: now + LISTEN_KEY_TTL_MS,
            },
        );
        key
    }

    /// `PUT /api/v3/userDataStream`: extends a key by 60 minutes.
    ///
    /// # Errors
    /// -1125 when the key is unknown, expired, or belongs to another account.
    pub fn keepalive_listen_key(
        &mut self,
        api_key: &str,
        key: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        match self.listen_keys.get_mut(key) {
            Some(v) if v.api_key == api_key && v.expires_ms > now => {
                v.expires_ms = now + LISTEN_KEY_TTL_MS;
                Ok(())
            }
            _ => Err(ApiError::invalid_listen_key()),
        }
    }

    /// `DELETE /api/v3/userDataStream`.
    ///
    /// # Errors
    /// -1125 when the key is unknown or belongs to another account.
    pub fn delete_listen_key(&mut self, api_key: &str, key: &str) -> Result<(), ApiError> {
        match self.listen_keys.get(key) {
            Some(v) if v.api_key == api_key => {
                self.listen_keys.remove(key);
                Ok(())
            }
            _ => Err(ApiError::invalid_listen_key()),
        }
    }

    /// The account of a live listenKey.
    #[must_use]
    pub fn resolve_listen_key(&self, key: &str, now: i64) -> Option<String> {
        self.listen_keys
            .get(key)
            .filter(|v| v.expires_ms > now)
            .map(|v| v.api_key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binanceus::params::Params;
    use rust_decimal_macros::dec;

    const KEY: &str = "paper-key";

    struct Fixture {
        venue: Venue,
        market: broadcast::Receiver<Arc<MarketEvent>>,
        user: broadcast::Receiver<Arc<UserEvent>>,
    }

    fn fixture(seed: u64) -> Fixture {
        let (mtx, market) = broadcast::channel(100_000);
        let (utx, user) = broadcast::channel(100_000);
        let cfg = SimConfig {
            seed,
            ..SimConfig::default()
        };
        Fixture {
            venue: Venue::new(
                &cfg,
                Sinks {
                    market: mtx,
                    user: utx,
                },
            ),
            market,
            user,
        }
    }

    fn req(q: &str) -> OrderRequest {
        OrderRequest::parse(&Params::parse(q, "").expect("params")).expect("order")
    }

    fn bal(v: &Venue, asset: &str) -> (Decimal, Decimal) {
        v.balances(KEY)
            .into_iter()
            .find(|(a, _, _)| a == asset)
            .map(|(_, f, l)| (f, l))
            .unwrap_or_default()
    }

    fn user_events(rx: &mut broadcast::Receiver<Arc<UserEvent>>) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            out.push(serde_json::from_str(&e.payload).expect("json"));
        }
        out
    }

    fn best(v: &Venue, idx: usize) -> (Decimal, Decimal) {
        let (b, a) = v.top(idx);
        (
            b.map(|x| x.0).unwrap_or_default(),
            a.map(|x| x.0).unwrap_or_default(),
        )
    }

    #[test]
    fn resting_limit_locks_then_fills_through_trade_through() {
        let mut f = fixture(1);
        let (bid, _) = best(&f.venue, 0);
        let price = bid - dec!(100);
        let o = f
            .venue
            .place(KEY, &req(&format!("symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.5&price={price}&newClientOrderId=c1")), 10)
            .expect("placed");
        assert_eq!(o.status, SimOrderStatus::New);
        assert_eq!(
            bal(&f.venue, "USD"),
            (dec!(100000) - price * dec!(0.5), price * dec!(0.5))
        );
        // The order is visible in the public book.
        let (_, bids, _) = f.venue.depth(0, usize::MAX);
        assert!(bids.iter().any(|(p, q)| *p == price && *q >= dec!(0.5)));
        // Above its price: no fill.
        assert_eq!(
            f.venue.trade_through(0, price + dec!(0.01), dec!(1), 11),
            Decimal::ZERO
        );
        assert_eq!(f.venue.trade_through(0, price, dec!(0.2), 12), dec!(0.2));
        let o = f
            .venue
            .query(
                KEY,
                0,
                &OrderSel {
                    order_id: Some(o.order_id),
                    client_order_id: None,
                },
            )
            .expect("q");
        assert_eq!(
            (o.status, o.executed_qty),
            (SimOrderStatus::PartiallyFilled, dec!(0.2))
        );
        assert_eq!(
            f.venue.trade_through(0, price - dec!(5), dec!(1), 13),
            dec!(0.3)
        );
        let o = f
            .venue
            .query(
                KEY,
                0,
                &OrderSel {
                    order_id: None,
                    client_order_id: Some("c1".into()),
                },
            )
            .expect("q");
        assert_eq!(o.status, SimOrderStatus::Filled);
        assert_eq!(o.cummulative_quote_qty, price * dec!(0.5));
        assert!(o.fills.iter().all(|x| x.maker && x.price == price));
        assert_eq!(
            bal(&f.venue, "USD"),
            (dec!(100000) - price * dec!(0.5), Decimal::ZERO)
        );
        assert_eq!(bal(&f.venue, "BTC"), (dec!(2.4995), Decimal::ZERO));
        let reports: Vec<(String, String)> = user_events(&mut f.user)
            .iter()
            .filter(|e| e["e"] == "executionReport")
            .map(|e| {
                (
                    e["x"].as_str().unwrap_or("").to_owned(),
                    e["X"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let expect = [
            ("NEW", "NEW"),
            ("TRADE", "PARTIALLY_FILLED"),
            ("TRADE", "FILLED"),
        ];
        assert_eq!(reports, expect.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }

    #[test]
    fn market_buy_walks_the_asks_and_moves_balances() {
        let mut f = fixture(2);
        let (_, ask) = best(&f.venue, 0);
        let o = f
            .venue
            .place(
                KEY,
                &req("symbol=BTCUSD&side=BUY&type=MARKET&quantity=0.01"),
                5,
            )
            .expect("m");
        assert_eq!(o.status, SimOrderStatus::Filled);
        assert_eq!(o.executed_qty, dec!(0.01));
        assert!(o.fills.iter().all(|x| !x.maker && x.price >= ask));
        let (usd, usd_locked) = bal(&f.venue, "USD");
        assert_eq!(usd, dec!(100000) - o.cummulative_quote_qty);
        assert_eq!(usd_locked, Decimal::ZERO);
        assert_eq!(bal(&f.venue, "BTC").0, dec!(2) + dec!(0.01) - dec!(0.00001));
        // Quote-quantity sell.
        let s = f
            .venue
            .place(
                KEY,
                &req("symbol=BTCUSD&side=SELL&type=MARKET&quoteOrderQty=1000"),
                6,
            )
            .expect("s");
        assert_eq!(s.status, SimOrderStatus::Filled);
        assert!(s.cummulative_quote_qty <= dec!(1000) && s.cummulative_quote_qty > dec!(990));
        assert_eq!(s.orig_qty, s.executed_qty);
        assert_eq!(bal(&f.venue, "BTC").1, Decimal::ZERO);
    }

    #[test]
    fn crossing_limit_fills_as_taker_and_rests_the_rest() {
        let mut f = fixture(3);
        let (_, ask) = best(&f.venue, 0);
        let top_qty = f.venue.top(0).1.map(|x| x.1).unwrap_or_default();
        let qty = top_qty + dec!(0.001);
        let o = f
            .venue
            .place(
                KEY,
                &req(&format!(
                    "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity={qty}&price={ask}"
                )),
                5,
            )
            .expect("placed");
        assert_eq!(o.status, SimOrderStatus::PartiallyFilled);
        assert_eq!(o.executed_qty, top_qty);
        let (_, bids, asks) = f.venue.depth(0, usize::MAX);
        assert_eq!(
            bids.first(),
            Some(&(ask, dec!(0.001))),
            "remainder rests at the top of the bids"
        );
        assert!(asks.first().is_some_and(|(p, _)| *p > ask));
        let ioc = f
            .venue
            .place(KEY, &req("symbol=BTCUSD&side=SELL&type=LIMIT&timeInForce=IOC&quantity=0.001&price=1000000"), 6)
            .expect("ioc");
        assert_eq!(ioc.status, SimOrderStatus::Expired);
        // Only the synthetic best bid crosses; ask for one step more than it holds.
        let (bp, bq) = f.venue.books[0]
            .market
            .bids
            .iter()
            .next_back()
            .map(|(p, q)| (*p, *q))
            .expect("bid");
        let fok = f
            .venue
            .place(
                KEY,
                &req(&format!(
                    "symbol=BTCUSD&side=SELL&type=LIMIT&timeInForce=FOK&quantity={}&price={bp}",
                    bq + dec!(0.00001)
                )),
                7,
            )
            .expect("fok");
        assert_eq!(
            (fok.status, fok.executed_qty),
            (SimOrderStatus::Expired, Decimal::ZERO)
        );
        assert_eq!(
            bal(&f.venue, "BTC").1,
            Decimal::ZERO,
            "FOK released its lock"
        );
    }

    #[test]
    fn rejections_change_nothing() {
        let mut f = fixture(4);
        let before = f.venue.balances(KEY);
        let e = f
            .venue
            .place(
                KEY,
                &req("symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=5&price=59000"),
                1,
            )
            .expect_err("funds");
        assert_eq!(
            (e.code, e.msg.as_str()),
            (
                -2010,
                "Account has insufficient balance for requested action."
            )
        );
        let e = f
            .venue
            .place(
                KEY,
                &req("symbol=DOGEUSD&side=BUY&type=MARKET&quantity=1"),
                1,
            )
            .expect_err("sym");
        assert_eq!(e.code, -1121);
        f.venue.place(KEY, &req("symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=1000&newClientOrderId=dup"), 1).expect("first");
        let e = f.venue.place(KEY, &req("symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=1000&newClientOrderId=dup"), 1).expect_err("dup");
        assert_eq!((e.code, e.msg.as_str()), (-2010, "Duplicate order sent."));
        let sel = OrderSel {
            order_id: None,
            client_order_id: Some("dup".into()),
        };
        let (c, _) = f
            .venue
            .cancel(KEY, 0, &sel, Some("cx".into()), 2)
            .expect("cancel");
        assert_eq!(c.status, SimOrderStatus::Canceled);
        assert_eq!(
            f.venue
                .cancel(KEY, 0, &sel, None, 3)
                .expect_err("again")
                .code,
            -2011
        );
        assert_eq!(f.venue.balances(KEY), before);
        f.venue.place(KEY, &req("symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price=1000&newClientOrderId=dup"), 4).expect("reuse after close");
        assert_eq!(f.venue.all_orders().len(), 2);
    }

    /// Applies diff events to a snapshot like a client following §2.11 would.
    #[test]
    fn diffs_are_contiguous_and_rebuild_the_book() {
        let mut f = fixture(5);
        let (mut last, bids, asks) = f.venue.depth(0, usize::MAX);
        let mut b: Levels = bids.into_iter().collect();
        let mut a: Levels = asks.into_iter().collect();
        for i in 0..300 {
            f.venue.tick(i);
            if i % 50 == 7 {
                let (bid, _) = best(&f.venue, 0);
                let q = format!(
                    "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.01&price={}",
                    bid - dec!(1)
                );
                let _ = f.venue.place(KEY, &req(&q), i);
            }
        }
        while let Ok(ev) = f.market.try_recv() {
            if ev.kind != MarketKind::Depth || ev.symbol_lower != "btcusd" {
                continue;
            }
            let v: Value = serde_json::from_str(&ev.payload).expect("json");
            let first = v["U"].as_u64().expect("U");
            let upto = v["u"].as_u64().expect("u");
            assert_eq!(first, last + 1, "contiguous");
            last = upto;
            for (side, book) in [("b", &mut b), ("a", &mut a)] {
                for lvl in v[side].as_array().expect("levels") {
                    let p: Decimal = lvl[0].as_str().expect("p").parse().expect("p");
                    let q: Decimal = lvl[1].as_str().expect("q").parse().expect("q");
                    if q.is_zero() {
                        book.remove(&p);
                    } else {
                        book.insert(p, q);
                    }
                }
            }
        }
        let (id, bids, asks) = f.venue.depth(0, usize::MAX);
        assert_eq!(id, last);
        assert_eq!(b.into_iter().rev().collect::<Vec<_>>(), bids);
        assert_eq!(a.into_iter().collect::<Vec<_>>(), asks);
    }

    #[test]
    fn market_ticks_fill_resting_orders_as_maker() {
        let mut f = fixture(6);
        let (bid, ask) = best(&f.venue, 0);
        let buy =
            format!("symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price={bid}");
        let sell = format!(
            "symbol=BTCUSD&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.001&price={ask}"
        );
        let b = f.venue.place(KEY, &req(&buy), 0).expect("buy").order_id;
        let s = f.venue.place(KEY, &req(&sell), 0).expect("sell").order_id;
        let done = |v: &Venue, id| {
            v.all_orders()
                .iter()
                .any(|o| o.order_id == id && o.status == SimOrderStatus::Filled)
        };
        for i in 1..5000 {
            f.venue.tick(i);
            if done(&f.venue, b) && done(&f.venue, s) {
                break;
            }
        }
        for o in f.venue.all_orders() {
            assert_eq!(
                o.status,
                SimOrderStatus::Filled,
                "the walk moved through {}",
                o.price
            );
            assert!(o.fills.iter().all(|x| x.maker && x.price == o.price));
        }
        assert_eq!(bal(&f.venue, "USD").1, Decimal::ZERO);
        assert_eq!(bal(&f.venue, "BTC").1, Decimal::ZERO);
    }

    #[test]
    fn same_seed_same_events() {
        let run = |seed| {
            let mut f = fixture(seed);
            for i in 0..50 {
                f.venue.tick(i);
            }
            let mut out = Vec::new();
            while let Ok(ev) = f.market.try_recv() {
                out.push(ev.payload.clone());
            }
            out
        };
        let a = run(9);
        assert!(a.len() > 100);
        assert_eq!(a, run(9));
        assert_ne!(a, run(10));
    }
}
