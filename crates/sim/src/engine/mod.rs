//! The venue-neutral exchange engine: books, accounts, orders, matching, and the seeded
//! market generator, shared by every simulator in this crate.
//!
//! The engine knows nothing about any wire protocol. Instruments are opaque names,
//! accounts are opaque ids, rejections are [`Reject`] values and every state change is
//! announced as a neutral [`EngineEvent`] to the [`EventSink`] the protocol module
//! supplies; the protocol decides how (and whether) each is put on the wire. A Binance.US
//! simulator, a Coinbase one and an OANDA one can therefore share one matching model and
//! one definition of what an order is, and only differ where the venues differ.
//!
//! Everything here is synchronous and IO-free. A simulator keeps one [`Engine`] behind
//! one mutex, and the sink is called *while that lock is held*. That single choice is what
//! makes a simulator's sequencing trustworthy: a depth snapshot can never fall between two
//! diffs it should have included, and an order event is always published before an answer
//! about the same order can be sent. The lock should be a `std::sync::Mutex`: no critical
//! section awaits, so a sink must not block (a `tokio::sync::broadcast::Sender::send`
//! never does).
//!
//! Matching model (documented deviations from a real engine):
//! - The public book is the synthetic liquidity of [`SymbolMarket`] plus the remaining
//!   quantity of every open user limit order, aggregated by price.
//! - Taker orders (MARKET and crossing LIMIT) execute only against synthetic liquidity,
//!   at the level prices, consuming it. User orders never match each other.
//! - Resting user orders fill as makers, at their own limit price, when a market tick
//!   moves synthetic liquidity through them or when [`Engine::trade_through`] is called.
//! - Commission is 0.1% of the asset received (base for buys, quote for sells), rounded
//!   to 8 decimals, as Binance charges without BNB discounts.
//!
//! Accounts are spot accounts (free and locked balances, the `account` module); margin accounts
//! with signed positions ([`margin`]) are the ledger a margin venue's simulator uses.

mod account;
mod book;
mod events;
pub mod margin;
mod market;
mod matching;
mod order;
mod reject;
mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

pub use events::{BalanceLine, EngineEvent, EventSink, NullSink};
pub use margin::{MarginFigures, Netting, Position};
pub use market::{LEVELS, SymbolMarket, SyntheticTrade};
pub use order::{NewOrder, OrderKind, OrderSel};
pub use reject::{FilterKind, Reject};
pub use types::{
    BookSnapshot, Level, PublicTrade, SimFill, SimOrder, SimOrderStatus, SimOrderType, SimSide,
    SimSymbol, SimTimeInForce, Top,
};

use account::SpotAccount;
use book::{Book, Levels, diff, top_of};
use matching::{Want, floor_step, plan};

/// How many public trades per instrument the engine remembers.
pub const RECENT_TRADES: usize = 1000;
/// Sequence numbers skipped by an injected gap ([`Engine::request_gap`]).
const GAP_SKIP: u64 = 3;
/// Alphabet of generated identifiers (client order ids, protocol keys).
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn commission_rate() -> Decimal {
    Decimal::new(1, 3)
}

fn round8(d: Decimal) -> Decimal {
    d.round_dp(8)
}

/// What the engine is built from: seed, instruments, accounts and their balances.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Seed of the market generator and of every generated identifier.
    pub seed: u64,
    /// The tradable instruments; their position is their index and their random stream.
    pub instruments: Vec<SimSymbol>,
    /// Account ids.
    pub accounts: Vec<String>,
    /// Starting balances `(asset, free)` given to every account.
    pub initial_balances: Vec<(String, Decimal)>,
}

/// Counters kept by the engine.
#[derive(Debug, Default, Clone, Copy)]
pub struct EngineCounters {
    /// Orders accepted.
    pub accepted: u64,
    /// Orders canceled.
    pub canceled: u64,
    /// User fills.
    pub fills: u64,
    /// Book diffs emitted.
    pub depth_updates: u64,
}

/// The simulated exchange, announcing its changes to `S`.
#[derive(Debug)]
pub struct Engine<S> {
    books: Vec<Book>,
    index: HashMap<String, usize>,
    orders: BTreeMap<u64, SimOrder>,
    open: BTreeSet<u64>,
    accounts: HashMap<String, SpotAccount>,
    next_order_id: u64,
    rng: ChaCha8Rng,
    sink: S,
    touched: BTreeMap<String, BTreeSet<String>>,
    counters: EngineCounters,
}

impl<S: EventSink> Engine<S> {
    /// Builds the engine. Instrument `i` gets its own random stream `i` of `cfg.seed`;
    /// identifiers come from a separate stream, so the market does not depend on how
    /// many ids were generated.
    #[must_use]
    pub fn new(cfg: &EngineConfig, sink: S) -> Self {
        let mut books = Vec::new();
        let mut index = HashMap::new();
        for (i, spec) in cfg.instruments.iter().enumerate() {
            let market = SymbolMarket::new(spec.clone(), cfg.seed, i as u64);
            index.insert(spec.symbol.clone(), i);
            books.push(Book::new(market));
        }
        let mut accounts = HashMap::new();
        for k in &cfg.accounts {
            let mut acct = SpotAccount::default();
            for s in &cfg.instruments {
                acct.bal(&s.base);
                acct.bal(&s.quote);
            }
            for (asset, amount) in &cfg.initial_balances {
                acct.bal(asset).free = *amount;
            }
            accounts.insert(k.clone(), acct);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(u64::MAX);
        Self {
            books,
            index,
            orders: BTreeMap::new(),
            open: BTreeSet::new(),
            accounts,
            next_order_id: 1,
            rng,
            sink,
            touched: BTreeMap::new(),
            counters: EngineCounters::default(),
        }
    }

    /// A random alphanumeric identifier of `len` characters from the engine's seeded id
    /// stream. Protocols use it for their own identifiers (listen keys, ...) so that
    /// every generated id of a simulator comes from one reproducible sequence.
    pub fn random_id(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| {
                let i = self.rng.random_range(0..ID_ALPHABET.len());
                char::from(ID_ALPHABET[i])
            })
            .collect()
    }

    /// The engine's counters.
    #[must_use]
    pub fn counters(&self) -> EngineCounters {
        self.counters
    }

    /// The sink, for a protocol that keeps state in it (read under the same lock as the
    /// engine, so it is consistent with every event already emitted).
    #[must_use]
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The sink, mutably: a protocol tells it about the next operation (e.g. what to
    /// report for the order about to be placed) before asking the engine to do it.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Index of an instrument by name.
    #[must_use]
    pub fn instrument_idx(&self, symbol: &str) -> Option<usize> {
        self.index.get(symbol).copied()
    }

    /// All instrument definitions, in config order.
    pub fn specs(&self) -> impl Iterator<Item = &SimSymbol> {
        self.books.iter().map(|b| &b.market.spec)
    }

    /// The definition of instrument `idx`.
    #[must_use]
    pub fn spec(&self, idx: usize) -> Option<&SimSymbol> {
        self.books.get(idx).map(|b| &b.market.spec)
    }

    /// The synthetic liquidity of instrument `idx` (without user orders).
    #[must_use]
    pub fn synthetic(&self, idx: usize) -> Option<&SymbolMarket> {
        self.books.get(idx).map(|b| &b.market)
    }

    /// Sequence number and up to `limit` levels per side (bids best first).
    #[must_use]
    pub fn depth(&self, idx: usize, limit: usize) -> BookSnapshot {
        let Some(b) = self.books.get(idx) else {
            return (0, Vec::new(), Vec::new());
        };
        (
            b.last_seq,
            b.bids
                .iter()
                .rev()
                .take(limit)
                .map(|(p, q)| (*p, *q))
                .collect(),
            b.asks.iter().take(limit).map(|(p, q)| (*p, *q)).collect(),
        )
    }

    /// Best bid and ask of instrument `idx`, as last published.
    #[must_use]
    pub fn top(&self, idx: usize) -> Top {
        self.books.get(idx).map_or((None, None), |b| b.top)
    }

    /// The newest `limit` public trades of instrument `idx`, oldest first.
    #[must_use]
    pub fn recent_trades(&self, idx: usize, limit: usize) -> Vec<PublicTrade> {
        let Some(b) = self.books.get(idx) else {
            return Vec::new();
        };
        let skip = b.trades.len().saturating_sub(limit);
        b.trades.iter().skip(skip).copied().collect()
    }

    /// Reference price of instrument `idx` (mid of the synthetic touch).
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

    /// `(asset, free, locked)` of an account, sorted by asset; empty for unknown ids.
    #[must_use]
    pub fn balances(&self, account: &str) -> Vec<BalanceLine> {
        self.accounts.get(account).map_or_else(Vec::new, |a| {
            a.balances
                .iter()
                .map(|(k, b)| (k.clone(), b.free, b.locked))
                .collect()
        })
    }

    /// Last balance change of an account (engine ms).
    #[must_use]
    pub fn account_update_time(&self, account: &str) -> i64 {
        self.accounts.get(account).map_or(0, |a| a.update_time)
    }

    /// Makes the next book diff of instrument `idx` skip sequence numbers.
    pub fn request_gap(&mut self, idx: usize) {
        if let Some(b) = self.books.get_mut(idx) {
            b.gap_pending = true;
        }
    }

    fn touch(&mut self, account: &str, assets: &[&str]) {
        let set = self.touched.entry(account.to_owned()).or_default();
        for a in assets {
            set.insert((*a).to_owned());
        }
    }

    /// Announces one [`EngineEvent::BalanceChanged`] per account whose balances changed.
    fn flush_accounts(&mut self, now: i64) {
        for (key, assets) in std::mem::take(&mut self.touched) {
            let Some(acct) = self.accounts.get_mut(&key) else {
                continue;
            };
            acct.update_time = now;
            let bals: Vec<BalanceLine> = assets
                .into_iter()
                .map(|a| {
                    let b = acct.balances.get(&a).copied().unwrap_or_default();
                    (a, b.free, b.locked)
                })
                .collect();
            self.sink.emit(EngineEvent::BalanceChanged {
                account: &key,
                balances: &bals,
                time: now,
            });
        }
    }

    /// The aggregated (synthetic + user) book of instrument `idx`.
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

    /// Publishes the changes of instrument `idx`'s aggregated book since the last publish
    /// as one diff with contiguous sequence numbers, and the ticker when the touch changed
    /// (or always, with `force_ticker`, once per market tick).
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
            let first = book.last_seq + 1 + skip;
            let last = first + (db.len() + da.len()) as u64 - 1;
            book.last_seq = last;
            book.bids = bids;
            book.asks = asks;
            self.sink.emit(EngineEvent::BookDiff {
                symbol: &book.market.spec.symbol,
                first_seq: first,
                last_seq: last,
                bids: &db,
                asks: &da,
                time: now,
            });
            self.counters.depth_updates += 1;
        }
        let top = top_of(&book.bids, &book.asks);
        if force_ticker || top != book.top {
            book.top = top;
            self.sink.emit(EngineEvent::Ticker {
                symbol: &book.market.spec.symbol,
                seq: book.last_seq,
                bid: top.0,
                ask: top.1,
            });
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
        self.sink.emit(EngineEvent::Trade {
            symbol: &book.market.spec.symbol,
            trade: &trade,
            time: now,
        });
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

    /// Executes `qty` of order `id` at `price`: balances, order state, order event,
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
        o.fills.push(SimFill {
            trade_id,
            price,
            qty,
            commission,
            commission_asset,
            maker,
            time: now,
        });
        let order: &SimOrder = o;
        if let Some(fill) = order.fills.last() {
            self.sink.emit(if order.status == SimOrderStatus::Filled {
                EngineEvent::OrderFilled {
                    order,
                    fill,
                    time: now,
                }
            } else {
                EngineEvent::OrderPartiallyFilled {
                    order,
                    fill,
                    time: now,
                }
            });
        }
        let api_key = order.api_key.clone();
        let closed = !order.is_open();
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

    /// Places an order for `account`: instrument rules, duplicate check, funds, immediate
    /// execution against synthetic liquidity, then rest or expire. A refusal is announced
    /// as [`EngineEvent::OrderRejected`].
    ///
    /// # Errors
    /// [`Reject::UnknownInstrument`], [`Reject::Filter`], [`Reject::MissingQuantity`],
    /// [`Reject::DuplicateClientOrderId`] (an open order of the account has that client
    /// id) or [`Reject::InsufficientBalance`]. Nothing is changed when an error is
    /// returned.
    pub fn place(&mut self, account: &str, req: &NewOrder, now: i64) -> Result<SimOrder, Reject> {
        let placed = self.try_place(account, req, now);
        if let Err(reason) = placed {
            self.sink.emit(EngineEvent::OrderRejected {
                account,
                symbol: &req.symbol,
                client_order_id: req.client_order_id.as_deref(),
                reason,
                time: now,
            });
        }
        placed
    }

    fn try_place(&mut self, api_key: &str, req: &NewOrder, now: i64) -> Result<SimOrder, Reject> {
        let idx = self
            .instrument_idx(&req.symbol)
            .ok_or(Reject::UnknownInstrument)?;
        let Some(book) = self.books.get(idx) else {
            return Err(Reject::UnknownInstrument);
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
                return Err(Reject::DuplicateClientOrderId);
            }
        }
        let side = req.side;
        let (limit, want, tif) = match req.kind {
            OrderKind::Limit { price, qty, tif } => (Some(price), Want::Base(qty), tif),
            OrderKind::Market { qty: Some(q), .. } => (None, Want::Base(q), SimTimeInForce::Gtc),
            OrderKind::Market {
                quote_qty: Some(q), ..
            } => (None, Want::Quote(q), SimTimeInForce::Gtc),
            OrderKind::Market { .. } => return Err(Reject::MissingQuantity),
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
            return Err(Reject::InsufficientBalance);
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
                    // order reads PARTIALLY_FILLED and then EXPIRED, as on Binance.
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
        self.sink.emit(EngineEvent::OrderAccepted {
            order: &order,
            time: now,
        });
        self.orders.insert(id, order);
        self.open.insert(id);
        self.counters.accepted += 1;
        let hit = side.opposite();
        for (px, q) in p.fills {
            self.consume(idx, hit, px, q);
            self.apply_fill(id, px, q, false, now);
        }
        let rests = req.order_type() == SimOrderType::Limit && tif == SimTimeInForce::Gtc;
        let still_open = self.orders.get(&id).is_some_and(SimOrder::is_open);
        if still_open && !rests {
            self.close_order(id, SimOrderStatus::Expired, now);
            if let Some(order) = self.orders.get(&id) {
                self.sink
                    .emit(EngineEvent::OrderExpired { order, time: now });
            }
        }
        self.publish(idx, now, false);
        self.flush_accounts(now);
        self.orders.get(&id).cloned().ok_or(Reject::Internal)
    }

    fn find(&self, account: &str, idx: usize, sel: &OrderSel) -> Option<u64> {
        let symbol = &self.books.get(idx)?.market.spec.symbol;
        let mine = |o: &&SimOrder| o.api_key == account && o.symbol == *symbol;
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

    /// An order of `account` on instrument `idx`. A client order id names the newest
    /// open order with that id, else the newest closed one.
    ///
    /// # Errors
    /// [`Reject::UnknownOrder`] when no such order exists for this account and
    /// instrument.
    pub fn query(&self, account: &str, idx: usize, sel: &OrderSel) -> Result<SimOrder, Reject> {
        self.find(account, idx, sel)
            .and_then(|id| self.orders.get(&id).cloned())
            .ok_or(Reject::UnknownOrder)
    }

    /// Cancels an open order; returns it and the cancel's client id (generated when not
    /// given).
    ///
    /// # Errors
    /// [`Reject::UnknownOrder`] when the order is unknown, [`Reject::OrderNotOpen`] when
    /// it is no longer open.
    pub fn cancel(
        &mut self,
        account: &str,
        idx: usize,
        sel: &OrderSel,
        cancel_client_id: Option<String>,
        now: i64,
    ) -> Result<(SimOrder, String), Reject> {
        let id = self.find(account, idx, sel).ok_or(Reject::UnknownOrder)?;
        if !self.orders.get(&id).is_some_and(SimOrder::is_open) {
            return Err(Reject::OrderNotOpen);
        }
        let cid = match cancel_client_id {
            Some(c) => c,
            None => self.random_id(22),
        };
        self.close_order(id, SimOrderStatus::Canceled, now);
        self.counters.canceled += 1;
        let o = self.orders.get(&id).ok_or(Reject::Internal)?;
        self.sink.emit(EngineEvent::OrderCancelled {
            order: o,
            cancel_client_id: &cid,
            time: now,
        });
        let o = o.clone();
        self.publish(idx, now, false);
        self.flush_accounts(now);
        Ok((o, cid))
    }

    /// Cancels every open order of `account` on instrument `idx`, oldest first.
    pub fn cancel_all(&mut self, account: &str, idx: usize, now: i64) -> Vec<(SimOrder, String)> {
        let symbol = match self.books.get(idx) {
            Some(b) => b.market.spec.symbol.clone(),
            None => return Vec::new(),
        };
        let ids: Vec<u64> = self
            .open
            .iter()
            .filter_map(|id| self.orders.get(id))
            .filter(|o| o.api_key == account && o.symbol == symbol)
            .map(|o| o.order_id)
            .collect();
        let mut out = Vec::new();
        for id in ids {
            let sel = OrderSel {
                order_id: Some(id),
                client_order_id: None,
            };
            if let Ok(c) = self.cancel(account, idx, &sel, None, now) {
                out.push(c);
            }
        }
        out
    }

    /// Open orders of `account`, on one instrument or all.
    #[must_use]
    pub fn open_orders(&self, account: &str, idx: Option<usize>) -> Vec<SimOrder> {
        let symbol = idx
            .and_then(|i| self.books.get(i))
            .map(|b| b.market.spec.symbol.clone());
        self.open
            .iter()
            .filter_map(|id| self.orders.get(id))
            .filter(|o| o.api_key == account && symbol.as_ref().is_none_or(|s| *s == o.symbol))
            .cloned()
            .collect()
    }

    /// The newest `limit` orders of `account` on instrument `idx`, oldest first.
    #[must_use]
    pub fn orders_of(&self, account: &str, idx: usize, limit: usize) -> Vec<SimOrder> {
        let Some(symbol) = self.books.get(idx).map(|b| &b.market.spec.symbol) else {
            return Vec::new();
        };
        let all: Vec<&SimOrder> = self
            .orders
            .values()
            .filter(|o| o.api_key == account && o.symbol == *symbol)
            .collect();
        let skip = all.len().saturating_sub(limit);
        all.into_iter().skip(skip).cloned().collect()
    }

    /// One market tick: every instrument's walk moves, resting orders the market moved
    /// through fill, diffs and tickers are published, and maybe a public trade printed.
    pub fn tick(&mut self, now: i64) {
        for idx in 0..self.books.len() {
            self.move_instrument(idx, now);
        }
        self.flush_accounts(now);
    }

    /// One market tick of instrument `idx` alone (the rate-controlled tick source moves
    /// one instrument at a time, in turn). An unknown `idx` does nothing.
    pub fn tick_instrument(&mut self, idx: usize, now: i64) {
        if idx < self.books.len() {
            self.move_instrument(idx, now);
            self.flush_accounts(now);
        }
    }

    /// Number of instruments.
    #[must_use]
    pub fn instrument_count(&self) -> usize {
        self.books.len()
    }

    fn move_instrument(&mut self, idx: usize, now: i64) {
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

    /// Open limit orders of instrument `idx` on `side`, in price-time priority.
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
                    self.consume(idx, side.opposite(), lp, q);
                    self.apply_fill(id, price, q, true, now);
                }
            }
        }
    }

    /// Sets instrument `idx`'s narrowest synthetic spread to `ticks` and republishes its
    /// book (see [`SymbolMarket::set_min_spread`]).
    pub fn set_min_spread(&mut self, idx: usize, ticks: i64, now: i64) {
        if let Some(b) = self.books.get_mut(idx) {
            b.market.set_min_spread(ticks);
            self.publish(idx, now, false);
        }
    }

    /// How much of `qty` a taker order on `side` (limited to `limit` when given) would
    /// fill against instrument `idx`'s synthetic liquidity right now, changing nothing:
    /// what a venue with fill-or-kill MARKET orders (OANDA) checks before placing one.
    #[must_use]
    pub fn fillable(
        &self,
        idx: usize,
        side: SimSide,
        limit: Option<Decimal>,
        qty: Decimal,
    ) -> Decimal {
        self.books.get(idx).map_or(Decimal::ZERO, |b| {
            plan(&b.market, side, limit, Want::Base(qty))
                .fills
                .iter()
                .map(|(_, q)| *q)
                .sum()
        })
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// Records each event's kind (and the reject reason) in order.
    #[derive(Debug, Default)]
    struct Recorder(Vec<String>);

    impl EventSink for Recorder {
        fn emit(&mut self, event: EngineEvent<'_>) {
            let name = match event {
                EngineEvent::OrderAccepted { .. } => "accepted".to_owned(),
                EngineEvent::OrderRejected { reason, .. } => format!("rejected:{reason}"),
                EngineEvent::OrderPartiallyFilled { .. } => "partial".to_owned(),
                EngineEvent::OrderFilled { .. } => "filled".to_owned(),
                EngineEvent::OrderCancelled { .. } => "cancelled".to_owned(),
                EngineEvent::OrderExpired { .. } => "expired".to_owned(),
                EngineEvent::BalanceChanged { .. } => "balance".to_owned(),
                EngineEvent::PositionChanged { .. } => "position".to_owned(),
                EngineEvent::BookDiff { .. } => "diff".to_owned(),
                EngineEvent::Ticker { .. } => "ticker".to_owned(),
                EngineEvent::Trade { .. } => "trade".to_owned(),
            };
            self.0.push(name);
        }
    }

    fn btc() -> SimSymbol {
        SimSymbol {
            symbol: "XBT-USD".into(),
            base: "XBT".into(),
            quote: "USD".into(),
            start_price: dec!(60000),
            tick_size: dec!(0.01),
            step_size: dec!(0.00001),
            min_qty: dec!(0.00001),
            max_qty: dec!(9000),
            min_notional: dec!(10),
        }
    }

    fn engine() -> Engine<Recorder> {
        let cfg = EngineConfig {
            seed: 3,
            instruments: vec![btc()],
            accounts: vec!["acct".into()],
            initial_balances: vec![("USD".into(), dec!(1000))],
        };
        Engine::new(&cfg, Recorder::default())
    }

    fn limit(side: SimSide, price: Decimal, qty: Decimal, cid: Option<&str>) -> NewOrder {
        NewOrder {
            symbol: "XBT-USD".into(),
            side,
            kind: OrderKind::Limit {
                price,
                qty,
                tif: SimTimeInForce::Gtc,
            },
            client_order_id: cid.map(str::to_owned),
        }
    }

    #[test]
    fn rejections_are_neutral_and_change_nothing() {
        let mut e = engine();
        let before = e.balances("acct");
        let too_big = limit(SimSide::Buy, dec!(50000), dec!(1), None);
        assert_eq!(
            e.place("acct", &too_big, 1),
            Err(Reject::InsufficientBalance)
        );
        let off_grid = limit(SimSide::Buy, dec!(50000.001), dec!(0.001), None);
        assert_eq!(
            e.place("acct", &off_grid, 1),
            Err(Reject::Filter(FilterKind::Price))
        );
        let mut unknown = limit(SimSide::Buy, dec!(100), dec!(1), None);
        unknown.symbol = "DOGE-USD".into();
        assert_eq!(e.place("acct", &unknown, 1), Err(Reject::UnknownInstrument));
        assert_eq!(e.balances("acct"), before);
        assert!(e.all_orders().is_empty());
        assert_eq!(
            e.sink.0,
            [
                "rejected:insufficient balance",
                "rejected:price filter failure",
                "rejected:unknown instrument"
            ]
        );
    }

    #[test]
    fn a_resting_order_announces_itself_then_cancels() {
        let mut e = engine();
        let o = e
            .place(
                "acct",
                &limit(SimSide::Buy, dec!(100), dec!(1), Some("a")),
                1,
            )
            .expect("placed");
        assert_eq!(o.status, SimOrderStatus::New);
        // Accepted, then the book shows it (far below the bid: the touch is unchanged, so
        // no ticker), then the locked balance.
        assert_eq!(e.sink.0, ["accepted", "diff", "balance"]);
        assert_eq!(
            e.place(
                "acct",
                &limit(SimSide::Buy, dec!(100), dec!(1), Some("a")),
                2
            ),
            Err(Reject::DuplicateClientOrderId)
        );
        e.sink.0.clear();
        let sel = OrderSel {
            order_id: Some(o.order_id),
            client_order_id: None,
        };
        let (c, cid) = e.cancel("acct", 0, &sel, None, 3).expect("cancel");
        assert_eq!(c.status, SimOrderStatus::Canceled);
        assert_eq!(cid.len(), 22);
        assert_eq!(e.sink.0, ["cancelled", "diff", "balance"]);
        assert_eq!(
            e.cancel("acct", 0, &sel, None, 4).map(|_| ()),
            Err(Reject::OrderNotOpen)
        );
        let nobody = OrderSel {
            order_id: Some(999),
            client_order_id: None,
        };
        assert_eq!(
            e.cancel("acct", 0, &nobody, None, 4).map(|_| ()),
            Err(Reject::UnknownOrder)
        );
        assert_eq!(e.query("acct", 0, &nobody), Err(Reject::UnknownOrder));
        assert_eq!(e.balances("acct")[0], ("USD".into(), dec!(1000), dec!(0)));
    }

    #[test]
    fn book_diffs_carry_contiguous_sequence_numbers() {
        #[derive(Debug, Default)]
        struct Seqs(Vec<(u64, u64)>);
        impl EventSink for Seqs {
            fn emit(&mut self, event: EngineEvent<'_>) {
                if let EngineEvent::BookDiff {
                    first_seq,
                    last_seq,
                    ..
                } = event
                {
                    self.0.push((first_seq, last_seq));
                }
            }
        }
        let cfg = EngineConfig {
            seed: 5,
            instruments: vec![btc()],
            ..EngineConfig::default()
        };
        let mut e = Engine::new(&cfg, Seqs::default());
        let (start, _, _) = e.depth(0, 1);
        for t in 0..50 {
            e.tick(t);
        }
        e.request_gap(0);
        e.tick(50);
        let seqs = &e.sink.0;
        assert!(seqs.len() > 40);
        let mut last = start;
        for (i, (first, upto)) in seqs.iter().enumerate() {
            let expect = if i == seqs.len() - 1 {
                last + 1 + GAP_SKIP
            } else {
                last + 1
            };
            assert_eq!(*first, expect);
            last = *upto;
        }
        assert_eq!(e.depth(0, 1).0, last);
    }
}
