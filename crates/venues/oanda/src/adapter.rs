//! [`OandaVenue`]: the domain layer, implementing [`VenueAdapter`] over the raw
//! [`OandaHttpClient`] and the streams of [`crate::stream`].
//!
//! The work here is mapping (gekko instruments ↔ `EUR_USD`, v20 orders and transactions
//! → [`OrderUpdate`] through the crate's one [`OrderTracker`], instruments →
//! [`InstrumentInfo`], positions → signed [`Position`]s, the account summary →
//! [`MarginSummary`], [`OandaError`] → the contract's errors) plus what a margin venue
//! makes the adapter's business:
//!
//! **Pre-trade checks.** Before a create-order request leaves, the order is checked
//! against the instrument's published rules ([`InstrumentRules::check`]: units
//! precision, minimum trade size, `maximumOrderUnits`, price precision) and, when
//! `margin_check` is on, against the margin it would require: `units × price ×
//! marginRate`, converted to the account currency, for the part of the order that adds
//! exposure (an order that reduces the net position needs no new margin first), against
//! `marginAvailable` of an account summary at most `summary_max_age` old. The price is
//! the limit price, or for a market order the current ask (buys) or bid (sells). A
//! refusal is [`SubmitError::NotPlaced`] with a `gekko:<rule>` code (`gekko:margin` is
//! [`RejectReason::InsufficientFunds`]) and nothing is sent. When a figure the margin
//! check needs cannot be fetched, the check is skipped with a warning: the venue
//! checks margin itself, and answers `INSUFFICIENT_MARGIN`, mapped to the same reason.
//!
//! **Client order ids.** OANDA addresses an order by `@<clientExtensions.id>`, so
//! queries and cancels by gekko's client id are one request each, and an ambiguous
//! submit (timeout, reset, 5xx, unparseable 201) is resolved by
//! [`VenueAdapter::query_order`] through that specifier, never by a resend. The venue
//! refuses a client id already used by a pending order (`CLIENT_ORDER_ID_ALREADY_EXISTS`,
//! [`RejectReason::Duplicate`]).
//!
//! **Fills of a queried order.** A v20 order object tells its state, not how much of it
//! filled or at what price. When it shows executions (a trade opened, reduced or closed,
//! or a filling transaction), the adapter reads the transactions since the order's
//! creation (`transactions/sinceid`; an order id is its create transaction's id) and
//! folds that order's fills in, so a partially filled order is reported
//! `PartiallyFilled` with its filled quantity and a filled one with its cumulative
//! quote.
//!
//! **Caps.** Prices carry a few levels and no deltas: [`BookFeed::TopLevels`]. A margin
//! account with native signed positions and a native close
//! (`PUT …/positions/{instrument}/close`). Unknown-order horizon: `None`. OANDA has no
//! `recvWindow` or request expiry; a delayed request may still be executed whenever it
//! arrives, so "not found" never proves "not placed". No native cancel-all.
//!
//! Streams run on the caller's [`StreamCtx`] and are the stream module's
//! ([`stream::pricing_stream`], [`stream::transaction_stream`]); the transaction stream's
//! catch-up after a reconnect calls `GET …/changes` through this adapter's REST client,
//! so it shares the rate limit, breakers and retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use gekko_core::sync::{lock, read, write};
use gekko_core::{
    Balance, ClientOrderId, InstrumentId, OrderRequest, OrderStatus, OrderType, Position, Side,
    TimeInForce, VenueId,
};
use gekko_venue::{
    AccountModel, BookFeed, InstrumentInfo, MarginSummary, MarketEvent, OrderUpdate, RejectReason,
    StreamCtx, SubmitError, UserEvent, VenueAdapter, VenueCaps, VenueError,
};
use rust_decimal::Decimal;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::common::models::{AccountSummary, OandaOrder, OandaPosition, OrderTransactions};
use crate::common::{
    InstrumentRules, OrderTracker, instrument, instrument_name, order_update_from_order,
};
use crate::config::OandaConfig;
use crate::error::OandaError;
use crate::http::{OandaHttpClient, OandaOrderType, OandaTimeInForce, OrderBody};
use crate::stream::{self, OandaCatchUp, TransactionStart};

/// The code of a local refusal of an order type or time in force the venue does not
/// take.
pub const TIME_IN_FORCE_CODE: &str = "gekko:time_in_force";

/// The OANDA v20 venue.
#[derive(Debug)]
pub struct OandaVenue {
    cfg: OandaConfig,
    http: OandaHttpClient,
    /// Instrument rules by wire name, refreshed by `instruments()` and fetched on a
    /// submit for an instrument not yet known. A `RwLock`: read on every submit,
    /// written rarely; never held across an `.await`.
    rules: RwLock<HashMap<String, InstrumentRules>>,
    /// The last account summary and when it was fetched (margin checks, the account
    /// currency). A `Mutex` held for a copy, never across an `.await`.
    summary: Mutex<Option<(Instant, AccountSummary)>>,
    /// The highest `lastTransactionID` a REST answer carried: where a user stream
    /// started now catches up from.
    last_tx: Mutex<Option<u64>>,
    /// The resume cursor the gateway stored ([`VenueAdapter::resume_user_stream`]): the
    /// next user stream catches up from it instead of from `last_tx`, so what happened
    /// while nobody listened is replayed through `/changes`.
    resume: Mutex<Option<u64>>,
    /// Open orders this adapter placed or saw, by venue id: the seed of a new user
    /// stream's tracker, so a cancel of an order placed before the stream started is
    /// described in full.
    open: Mutex<HashMap<String, OrderUpdate>>,
}

impl OandaVenue {
    /// The venue over a validated config.
    ///
    /// # Errors
    /// [`OandaError::Config`] listing every problem of `cfg`.
    pub fn new(cfg: OandaConfig) -> Result<Self, OandaError> {
        let http = OandaHttpClient::new(&cfg)?;
        Ok(Self {
            cfg,
            http,
            rules: RwLock::new(HashMap::new()),
            summary: Mutex::new(None),
            last_tx: Mutex::new(None),
            resume: Mutex::new(None),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The raw REST client.
    #[must_use]
    pub fn http(&self) -> &OandaHttpClient {
        &self.http
    }

    /// The config the venue runs on.
    #[must_use]
    pub fn config(&self) -> &OandaConfig {
        &self.cfg
    }

    /// The catch-up closure the transaction stream calls after a reconnect: the raw
    /// `GET …/changes?sinceTransactionID=` body through this adapter's REST client.
    #[must_use]
    pub fn catch_up(&self) -> OandaCatchUp {
        let http = self.http.clone();
        Arc::new(move |since: String| {
            let http = http.clone();
            Box::pin(async move { http.changes_raw(&since).await.map_err(|e| e.to_string()) })
        })
    }

    /// The account summary, fetched when the cached one is older than `max_age`.
    ///
    /// # Errors
    /// See [`OandaError`].
    pub async fn summary(
        &self,
        max_age: std::time::Duration,
    ) -> Result<AccountSummary, OandaError> {
        if let Some((at, s)) = lock(&self.summary).as_ref()
            && at.elapsed() <= max_age
        {
            return Ok(s.clone());
        }
        let r = self.http.account_summary().await?;
        self.saw_transaction(Some(&r.last_transaction_id));
        *lock(&self.summary) = Some((Instant::now(), r.account.clone()));
        Ok(r.account)
    }

    /// The account currency, from the last summary (`None` before the first).
    #[must_use]
    pub fn home_currency(&self) -> Option<String> {
        lock(&self.summary)
            .as_ref()
            .map(|(_, s)| s.currency.clone())
    }

    fn saw_transaction(&self, id: Option<&str>) {
        if let Some(n) = id.and_then(|s| s.parse::<u64>().ok()) {
            let mut last = lock(&self.last_tx);
            *last = Some(last.map_or(n, |l| l.max(n)));
        }
    }

    fn forget_summary(&self) {
        *lock(&self.summary) = None;
    }

    fn remember(&self, u: &OrderUpdate) {
        let mut open = lock(&self.open);
        if u.status.is_terminal() {
            open.remove(&u.venue_order_id);
        } else {
            open.insert(u.venue_order_id.clone(), u.clone());
        }
    }

    async fn home(&self) -> String {
        if let Some(h) = self.home_currency() {
            return h;
        }
        match self.summary(self.cfg.summary_max_age).await {
            Ok(s) => s.currency,
            Err(e) => {
                tracing::warn!(error = %e, "OANDA account currency unknown; fees labelled USD");
                "USD".to_owned()
            }
        }
    }

    /// The rules of `name`, fetched when not cached. `Ok(None)` when the venue does not
    /// list the instrument for this account.
    async fn rules_for(&self, name: &str) -> Result<Option<InstrumentRules>, OandaError> {
        if let Some(r) = read(&self.rules).get(name) {
            return Ok(Some(r.clone()));
        }
        let list = match self.http.instruments(&[name.to_owned()]).await {
            Ok(l) => l,
            Err(OandaError::Api { status: 400, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let rules: Vec<InstrumentRules> = list
            .iter()
            .filter_map(InstrumentRules::from_venue)
            .collect();
        self.cache_rules(&rules);
        Ok(rules.into_iter().find(|r| r.name == name))
    }

    fn cache_rules(&self, rules: &[InstrumentRules]) {
        let mut map = write(&self.rules);
        for r in rules {
            map.insert(r.name.clone(), r.clone());
        }
    }

    /// The mid price of `name` (`None` when the venue has no price for it).
    async fn mid(&self, name: &str) -> Option<Decimal> {
        let r = self.http.pricing(&[name.to_owned()]).await.ok()?;
        let p = r.prices.into_iter().find(|p| p.instrument == name)?;
        let bid = p.bids.first()?.price;
        let ask = p.asks.first()?.price;
        bid.checked_add(ask)?.checked_div(Decimal::TWO)
    }

    /// How many units of `home` one unit of `quote` is worth: the mid of `QUOTE_HOME`, or
    /// one over the mid of `HOME_QUOTE` (`None` when the venue prices neither).
    async fn quote_to_home(&self, quote: &str, home: &str) -> Option<Decimal> {
        if let Some(m) = self.mid(&format!("{quote}_{home}")).await {
            return Some(m);
        }
        self.mid(&format!("{home}_{quote}"))
            .await
            .and_then(|m| Decimal::ONE.checked_div(m))
    }

    /// The margin check of the module docs. `Ok(())` also when a figure it needs cannot
    /// be fetched (the venue checks margin itself).
    async fn check_margin(
        &self,
        rules: &InstrumentRules,
        side: Side,
        qty: Decimal,
        limit: Option<Decimal>,
    ) -> Result<(), OandaError> {
        let summary = match self.summary(self.cfg.summary_max_age).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "margin check skipped: no account summary");
                return Ok(());
            }
        };
        let home = summary.currency.clone();
        // Only the part of the order that adds exposure needs new margin.
        let held = match self.http.positions(true).await {
            Ok(ps) => ps
                .iter()
                .find(|p| p.instrument == rules.name)
                .and_then(|p| p.long.units.checked_add(p.short.units))
                .unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "margin check skipped: no positions");
                return Ok(());
            }
        };
        let added = held
            .checked_add(crate::common::order::signed_units(side, qty))
            .and_then(|after| after.abs().checked_sub(held.abs()))
            .map_or(qty, |d| d.max(Decimal::ZERO));
        if added.is_zero() {
            return Ok(());
        }
        let price = match limit {
            Some(p) => p,
            None => {
                let Ok(r) = self.http.pricing(std::slice::from_ref(&rules.name)).await else {
                    tracing::warn!("margin check skipped: no price for {}", rules.name);
                    return Ok(());
                };
                let p = r.prices.iter().find(|p| p.instrument == rules.name);
                let level = p.and_then(|p| match side {
                    Side::Buy => p.asks.first(),
                    Side::Sell => p.bids.first(),
                });
                let Some(level) = level else {
                    tracing::warn!("margin check skipped: no price for {}", rules.name);
                    return Ok(());
                };
                level.price
            }
        };
        let quote = &rules.id.quote;
        let factor =
            if quote.eq_ignore_ascii_case(&home) || rules.id.base.eq_ignore_ascii_case(&home) {
                None
            } else {
                self.quote_to_home(quote, &home).await
            };
        let Some(required) = rules.required_margin(added, price, &home, factor) else {
            tracing::warn!(
                "margin check skipped: no {quote} to {home} conversion for {}",
                rules.name
            );
            return Ok(());
        };
        rules.check_margin(required, summary.margin_available, &home)
    }

    /// The order body of a request, checked against the rules.
    fn body(req: &OrderRequest, name: String) -> Result<OrderBody, OandaError> {
        let refuse = |message: String| OandaError::PreTrade {
            rule: "time_in_force",
            reason: RejectReason::Other,
            message,
        };
        let (kind, tif) = match req.order_type {
            OrderType::Market => (
                OandaOrderType::Market,
                match req.time_in_force {
                    None | Some(TimeInForce::Fok) => OandaTimeInForce::Fok,
                    Some(TimeInForce::Ioc) => OandaTimeInForce::Ioc,
                    Some(t @ (TimeInForce::Gtc | TimeInForce::Gtd { .. } | TimeInForce::Gfd)) => {
                        return Err(refuse(format!(
                            "OANDA market orders are FOK or IOC, not {}",
                            t.as_str()
                        )));
                    }
                },
            ),
            OrderType::Limit => (
                OandaOrderType::Limit,
                match req.time_in_force {
                    None | Some(TimeInForce::Gtc) => OandaTimeInForce::Gtc,
                    Some(TimeInForce::Ioc) => OandaTimeInForce::Ioc,
                    Some(TimeInForce::Fok) => OandaTimeInForce::Fok,
                    Some(TimeInForce::Gtd { .. }) => OandaTimeInForce::Gtd,
                    Some(TimeInForce::Gfd) => OandaTimeInForce::Gfd,
                },
            ),
        };
        let gtd_time = match (kind, req.time_in_force) {
            (OandaOrderType::Limit, Some(TimeInForce::Gtd { expire_at_ms })) => {
                Some(gekko_core::order::rfc3339_ms(expire_at_ms))
            }
            _ => None,
        };
        let price = match kind {
            OandaOrderType::Market => None,
            OandaOrderType::Limit => Some(req.price.ok_or_else(|| OandaError::PreTrade {
                rule: "price",
                reason: RejectReason::Filter,
                message: "a limit order needs a price".to_owned(),
            })?),
        };
        Ok(OrderBody {
            kind,
            instrument: name,
            units: crate::common::order::signed_units(req.side, req.qty),
            price,
            time_in_force: tif,
            gtd_time,
            client_id: req.client_order_id.as_str().to_owned(),
        })
    }

    /// The outcome of a 201: the last state the create/fill/cancel transactions give.
    async fn outcome(&self, txs: &OrderTransactions) -> Option<OrderUpdate> {
        self.saw_transaction(txs.last_transaction_id.as_deref());
        let mut tracker = OrderTracker::new(&self.home().await);
        let mut last = None;
        for tx in txs.order_chain() {
            if let Some(o) = tracker.apply(tx).order {
                last = Some(o);
            }
        }
        last
    }

    /// The state of a v20 order, with its fills folded in when it shows any (module
    /// docs).
    async fn with_fills(&self, o: &OandaOrder) -> Result<Option<OrderUpdate>, OandaError> {
        let Some(mut u) = order_update_from_order(o) else {
            return Ok(None);
        };
        if !o.has_fills() {
            return Ok(Some(u));
        }
        let Some(since) = o.id.parse::<u64>().ok().and_then(|n| n.checked_sub(1)) else {
            return Ok(Some(u));
        };
        let txs = self.http.transactions_since(&since.to_string()).await?;
        let mut tracker = OrderTracker::new(&self.home().await);
        let mut filled = Decimal::ZERO;
        let mut quote = Decimal::ZERO;
        let mut last_fill = None;
        for tx in txs
            .iter()
            .filter(|t| t.id == o.id || t.order_id.as_deref() == Some(o.id.as_str()))
        {
            if let Some(f) = tracker.apply(tx).fill {
                let (Some(fq), Some(qq)) = (
                    filled.checked_add(f.qty),
                    f.qty
                        .checked_mul(f.price)
                        .and_then(|v| quote.checked_add(v)),
                ) else {
                    return Err(OandaError::malformed("fills of the order overflow", &o.id));
                };
                filled = fq;
                quote = qq;
                last_fill = Some(gekko_venue::LastFill {
                    trade_id: f.trade_id,
                    price: f.price,
                    qty: f.qty,
                    fee: f.fee,
                    fee_asset: f.fee_asset,
                });
                u.ts_ms = u.ts_ms.max(f.ts_ms);
            }
        }
        if filled > Decimal::ZERO {
            u.filled_qty = filled;
            u.cum_quote = quote;
            u.last_fill = last_fill;
            if u.status == OrderStatus::New {
                u.status = if filled >= u.qty {
                    OrderStatus::Filled
                } else {
                    OrderStatus::PartiallyFilled
                };
            }
        }
        Ok(Some(u))
    }
}

/// A v20 position as gekko's signed [`Position`]: net units (long plus the negative
/// short), the average price of the side held, and the unrealized P/L. `None` for an
/// instrument that does not map.
#[must_use]
pub fn position(p: &OandaPosition) -> Option<Position> {
    let qty = p.long.units.checked_add(p.short.units)?;
    let avg_price = if qty > Decimal::ZERO {
        p.long.average_price
    } else if qty < Decimal::ZERO {
        p.short.average_price
    } else {
        None
    };
    Some(Position {
        instrument: instrument(&p.instrument)?,
        qty,
        avg_price,
        unrealized_pnl: p.unrealized_pl,
    })
}

/// The contract's margin summary of a v20 account summary.
#[must_use]
pub fn margin_summary(s: &AccountSummary) -> MarginSummary {
    MarginSummary {
        currency: s.currency.clone(),
        nav: s.nav,
        balance: s.balance,
        unrealized_pl: s.unrealized_pl,
        margin_used: s.margin_used,
        margin_available: s.margin_available,
        margin_closeout_percent: s.margin_closeout_percent,
    }
}

fn not_placed(e: OandaError) -> SubmitError {
    e.into_submit_error()
}

/// A client id for one side of a position close: `close-<instrument>-<side>-<ms>`,
/// within the 36 characters of a client order id.
fn close_id(name: &str, side: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut id = format!("cl-{name}-{side}-{ms}");
    id.truncate(ClientOrderId::MAX_LEN);
    id
}

#[async_trait]
impl VenueAdapter for OandaVenue {
    fn id(&self) -> VenueId {
        VenueId::Oanda
    }

    fn caps(&self) -> VenueCaps {
        VenueCaps {
            book_feed: BookFeed::TopLevels,
            account: AccountModel::Margin,
            unknown_order_horizon: None,
            native_close_position: true,
            native_cancel_all: false,
        }
    }

    /// `GET /v3/accounts` must list the configured account, then its summary is read
    /// (the account currency, and the first transaction id the streams start from).
    async fn verify_credentials(&self) -> Result<(), VenueError> {
        self.http.verify_account().await?;
        self.summary(std::time::Duration::ZERO).await?;
        Ok(())
    }

    async fn instruments(
        &self,
        wanted: &[InstrumentId],
    ) -> Result<Vec<InstrumentInfo>, VenueError> {
        let names: Vec<String> = wanted.iter().map(instrument_name).collect();
        // Every instrument of the account, filtered here: OANDA answers 400 to the whole
        // request when the filter names one instrument it does not list (`BTC_USD` from a
        // plain, every-venue pair), and the contract says an unlisted instrument is merely
        // absent from the answer.
        let list = self.http.instruments(&[]).await?;
        let rules: Vec<InstrumentRules> = list
            .iter()
            .filter_map(InstrumentRules::from_venue)
            .collect();
        self.cache_rules(&rules);
        Ok(rules
            .iter()
            .filter(|r| names.is_empty() || names.contains(&r.name))
            .map(InstrumentRules::info)
            .collect())
    }

    async fn submit_order(&self, req: &OrderRequest) -> Result<OrderUpdate, SubmitError> {
        let name = instrument_name(&req.instrument);
        let rules = match self.rules_for(&name).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(SubmitError::NotPlaced(VenueError::rejected(
                    "gekko:instrument",
                    RejectReason::Other,
                    format!("OANDA does not list {name} for this account"),
                )));
            }
            Err(e) => return Err(SubmitError::NotPlaced(e.into())),
        };
        let body = Self::body(req, name).map_err(not_placed)?;
        rules.check(req.qty, body.price).map_err(not_placed)?;
        if self.cfg.margin_check {
            self.check_margin(&rules, req.side, req.qty, body.price)
                .await
                .map_err(not_placed)?;
        }
        let answer = self.http.create_order(&body).await;
        self.forget_summary();
        let txs = answer.map_err(OandaError::into_submit_error)?;
        let Some(u) = self.outcome(&txs).await else {
            return Err(SubmitError::Ambiguous(format!(
                "OANDA answered 201 without an order transaction gekko can read (related {:?})",
                txs.related_transaction_ids
            )));
        };
        self.remember(&u);
        // A market order the venue cancelled for lack of margin placed nothing: the
        // precise verdict is a rejection.
        if u.status == OrderStatus::Expired
            && u.filled_qty.is_zero()
            && let Some(code) = u.reject_reason.as_deref()
            && crate::error::reject_reason(code) == RejectReason::InsufficientFunds
        {
            return Err(SubmitError::NotPlaced(VenueError::rejected(
                code,
                RejectReason::InsufficientFunds,
                "OANDA cancelled the order for insufficient margin",
            )));
        }
        Ok(u)
    }

    async fn query_order(
        &self,
        _instrument: &InstrumentId,
        client_order_id: &ClientOrderId,
    ) -> Result<Option<OrderUpdate>, VenueError> {
        let spec = format!("@{}", client_order_id.as_str());
        let Some(o) = self.http.order(&spec).await? else {
            return Ok(None);
        };
        let u = self.with_fills(&o).await?;
        if let Some(u) = &u {
            self.remember(u);
        }
        Ok(u)
    }

    async fn cancel_order(
        &self,
        instrument: &InstrumentId,
        client_order_id: &ClientOrderId,
    ) -> Result<OrderUpdate, VenueError> {
        let spec = format!("@{}", client_order_id.as_str());
        match self.http.cancel_order(&spec).await {
            Ok(txs) => {
                self.saw_transaction(txs.last_transaction_id.as_deref());
                // The cancel answer names only the order id: the order's own state,
                // fills included, is read back.
                match self.query_order(instrument, client_order_id).await? {
                    Some(u) => Ok(u),
                    None => Err(VenueError::Malformed {
                        reason: "a cancelled order is not found by its client id".to_owned(),
                        payload: spec,
                    }),
                }
            }
            Err(e @ (OandaError::Rejected { .. } | OandaError::UnknownOrder { .. })) => {
                // Not pending: unknown, or already filled or cancelled. Its final state
                // is the answer when it exists (the contract's cancel-all relies on it).
                match self.query_order(instrument, client_order_id).await? {
                    Some(u) if u.status.is_terminal() => Ok(u),
                    _ => Err(VenueError::from(e)),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn open_orders(&self, instrument: &InstrumentId) -> Result<Vec<OrderUpdate>, VenueError> {
        let name = instrument_name(instrument);
        let orders = self.http.pending_orders().await?;
        let mut out = Vec::new();
        for o in orders
            .iter()
            .filter(|o| o.instrument.as_deref() == Some(name.as_str()))
        {
            if let Some(u) = self.with_fills(o).await? {
                self.remember(&u);
                out.push(u);
            }
        }
        Ok(out)
    }

    /// The account currency's balance (a margin account has no per-asset holdings): the
    /// total is the realized balance, `locked` the margin used (capped at the balance),
    /// `free` the rest. Margin available, which also counts unrealized P/L, is in
    /// [`VenueAdapter::margin_summary`].
    async fn balances(&self) -> Result<Vec<Balance>, VenueError> {
        let s = self.summary(std::time::Duration::ZERO).await?;
        Ok(vec![Balance {
            venue: VenueId::Oanda,
            asset: s.currency.clone(),
            free: s.balance - s.margin_used.min(s.balance),
            locked: s.margin_used.min(s.balance),
        }])
    }

    async fn positions(&self, instruments: &[InstrumentId]) -> Result<Vec<Position>, VenueError> {
        let ps = self.http.positions(true).await?;
        Ok(ps
            .iter()
            .filter_map(position)
            .filter(|p| instruments.is_empty() || instruments.contains(&p.instrument))
            .collect())
    }

    /// The order's fills from its transactions (`transactions/sinceid` from its create
    /// transaction): the same ORDER_FILL transaction ids the transaction stream reports,
    /// so the engine's de-duplication holds across both.
    async fn order_fills(&self, order: &OrderUpdate) -> Result<Vec<gekko_core::Fill>, VenueError> {
        let id = order.venue_order_id.as_str();
        let Some(since) = id.parse::<u64>().ok().and_then(|n| n.checked_sub(1)) else {
            return Ok(Vec::new());
        };
        let txs = self
            .http
            .transactions_since(&since.to_string())
            .await
            .map_err(VenueError::from)?;
        let mut tracker = OrderTracker::new(&self.home().await);
        Ok(txs
            .iter()
            .filter(|t| t.id == id || t.order_id.as_deref() == Some(id))
            .filter_map(|tx| tracker.apply(tx).fill)
            .collect())
    }

    /// In the account currency: `qty × price` when the pair is quoted in it (`EUR_USD`
    /// on a USD account), `qty` when it is the base (`USD_JPY`: units are USD), else
    /// `qty × price` converted at the mid of the quote currency against the account
    /// currency (`EUR_GBP` through `GBP_USD`, or one over `USD_GBP`). No price for that
    /// conversion is an error: the gateway then refuses the order rather than count it
    /// in the wrong currency.
    async fn account_notional(
        &self,
        instrument: &InstrumentId,
        qty: Decimal,
        price: Decimal,
    ) -> Result<Decimal, VenueError> {
        let home = match self.home_currency() {
            Some(h) => h,
            None => self.summary(self.cfg.summary_max_age).await?.currency,
        };
        let overflow = || VenueError::Malformed {
            reason: format!("notional {qty} x {price} overflows"),
            payload: String::new(),
        };
        let notional = qty.checked_mul(price).ok_or_else(overflow)?;
        if instrument.quote.eq_ignore_ascii_case(&home) {
            return Ok(notional);
        }
        if instrument.base.eq_ignore_ascii_case(&home) {
            return Ok(qty);
        }
        let rate = self
            .quote_to_home(&instrument.quote, &home)
            .await
            .ok_or_else(|| VenueError::Malformed {
                reason: format!(
                    "no {}/{home} price to convert a notional to the account currency",
                    instrument.quote
                ),
                payload: String::new(),
            })?;
        notional.checked_mul(rate).ok_or_else(overflow)
    }

    async fn margin_summary(&self) -> Result<Option<MarginSummary>, VenueError> {
        let s = self.summary(std::time::Duration::ZERO).await?;
        Ok(Some(margin_summary(&s)))
    }

    /// `PUT …/positions/{instrument}/close` for the side(s) held; an empty list when
    /// nothing is held.
    async fn close_position(
        &self,
        instrument: &InstrumentId,
    ) -> Result<Vec<OrderUpdate>, VenueError> {
        let name = instrument_name(instrument);
        let held = self
            .http
            .positions(true)
            .await?
            .into_iter()
            .find(|p| p.instrument == name);
        let Some(p) = held else {
            return Ok(Vec::new());
        };
        let long = (!p.long.units.is_zero()).then(|| close_id(&name, "l"));
        let short = (!p.short.units.is_zero()).then(|| close_id(&name, "s"));
        if long.is_none() && short.is_none() {
            return Ok(Vec::new());
        }
        let txs = self
            .http
            .close_position(&name, long.as_deref(), short.as_deref())
            .await?;
        self.forget_summary();
        self.saw_transaction(txs.last_transaction_id.as_deref());
        let mut tracker = OrderTracker::new(&self.home().await);
        let mut by_order: Vec<OrderUpdate> = Vec::new();
        for tx in txs.close_chain() {
            if let Some(u) = tracker.apply(tx).order {
                match by_order
                    .iter_mut()
                    .find(|o| o.venue_order_id == u.venue_order_id)
                {
                    Some(slot) => *slot = u,
                    None => by_order.push(u),
                }
            }
        }
        Ok(by_order)
    }

    /// Nothing to do: an OANDA book is top levels only, and every price on the pricing
    /// stream replaces it whole, so the next price is the fresh snapshot.
    async fn resync_book(&self, _instrument: &InstrumentId) -> Result<(), VenueError> {
        Ok(())
    }

    fn market_stream(
        &self,
        instruments: &[InstrumentId],
        ctx: &StreamCtx,
    ) -> mpsc::Receiver<MarketEvent> {
        stream::pricing_stream(&self.cfg, instruments, ctx)
    }

    /// The cursor is a transaction id: the next user stream's first connect catches up
    /// through `/changes?sinceTransactionID=<cursor>`. One that is not an id is ignored
    /// with a warning.
    fn resume_user_stream(&self, cursor: &str) {
        match cursor.parse::<u64>() {
            Ok(n) => *lock(&self.resume) = Some(n),
            Err(_) => {
                tracing::warn!(
                    cursor,
                    "OANDA resume cursor is not a transaction id; ignored"
                );
            }
        }
    }

    fn user_stream(&self, ctx: &StreamCtx) -> mpsc::Receiver<UserEvent> {
        let home = self.home_currency().unwrap_or_else(|| {
            tracing::warn!(
                "OANDA user stream started before the account summary; fees labelled USD"
            );
            "USD".to_owned()
        });
        let mut tracker = OrderTracker::new(&home);
        for u in lock(&self.open).values() {
            tracker.seed(u.clone());
        }
        let since = lock(&self.resume).take().or(*lock(&self.last_tx));
        let start = TransactionStart {
            tracker,
            since: since.map(|n| n.to_string()),
        };
        stream::transaction_stream(&self.cfg, self.catch_up(), start, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::models::PositionSide;
    use rust_decimal_macros::dec;

    #[test]
    fn positions_are_signed_with_the_held_sides_average() {
        let p = OandaPosition {
            instrument: "USD_JPY".into(),
            unrealized_pl: Some(dec!(-1.5)),
            short: PositionSide {
                units: dec!(-300),
                average_price: Some(dec!(150.125)),
                ..PositionSide::default()
            },
            ..OandaPosition::default()
        };
        let got = position(&p).unwrap();
        assert_eq!(got.qty, dec!(-300));
        assert_eq!(got.avg_price, Some(dec!(150.125)));
        assert_eq!(got.unrealized_pnl, Some(dec!(-1.5)));
        assert_eq!(got.instrument.base, "USD");
    }

    #[test]
    fn bodies_follow_type_and_time_in_force() {
        let id = InstrumentId::new(VenueId::Oanda, "EUR", "USD");
        let mut req = OrderRequest {
            client_order_id: ClientOrderId::parse("gk1").unwrap(),
            instrument: id,
            side: Side::Sell,
            order_type: OrderType::Market,
            qty: dec!(10),
            price: None,
            time_in_force: None,
        };
        let b = OandaVenue::body(&req, "EUR_USD".into()).unwrap();
        assert_eq!(
            (b.kind, b.time_in_force, b.units),
            (OandaOrderType::Market, OandaTimeInForce::Fok, dec!(-10))
        );
        req.time_in_force = Some(TimeInForce::Gtc);
        assert!(matches!(
            OandaVenue::body(&req, "EUR_USD".into()),
            Err(OandaError::PreTrade {
                rule: "time_in_force",
                ..
            })
        ));
        req.order_type = OrderType::Limit;
        assert!(matches!(
            OandaVenue::body(&req, "EUR_USD".into()),
            Err(OandaError::PreTrade { rule: "price", .. })
        ));
        req.price = Some(dec!(1.1));
        let b = OandaVenue::body(&req, "EUR_USD".into()).unwrap();
        assert_eq!(b.time_in_force, OandaTimeInForce::Gtc);
        assert_eq!(b.gtd_time, None);
        req.time_in_force = Some(TimeInForce::Gtd {
            expire_at_ms: 1_893_456_000_000,
        });
        let b = OandaVenue::body(&req, "EUR_USD".into()).unwrap();
        assert_eq!(b.time_in_force, OandaTimeInForce::Gtd);
        assert_eq!(b.gtd_time.as_deref(), Some("2030-01-01T00:00:00.000Z"));
        req.time_in_force = Some(TimeInForce::Gfd);
        let b = OandaVenue::body(&req, "EUR_USD".into()).unwrap();
        assert_eq!((b.time_in_force, b.gtd_time), (OandaTimeInForce::Gfd, None));
        req.order_type = OrderType::Market;
        req.price = None;
        let e = OandaVenue::body(&req, "EUR_USD".into())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not GFD"), "{e}");
        assert!(close_id("EUR_USD", "l").len() <= ClientOrderId::MAX_LEN);
        ClientOrderId::parse(&close_id("EUR_USD", "s")).unwrap();
    }
}
