//! The trading loop (the design's `start_main_trading_loop`): model signals become orders.
//!
//! A [`Strategy`] reads `gekko:{signals}` through a consumer group, so a restarted process
//! resumes after the last signal it finished and re-reads the ones it had not (its own
//! pending entries first). For each signal:
//!
//! 1. **Threshold**: the signal's confidence must reach its model's
//!    `CONFIDENCE_THRESHOLDS` entry; a model without one is never traded.
//! 2. **Cool-down**: at most one order per instrument per `STRATEGY_SETTINGS cooldown`.
//! 3. **Side and size**: up buys, down sells. The quantity is `order_notional` at the
//!    current reference price, rounded down to the lot size, and trimmed so that the
//!    position plus the working orders stays within `POSITION_LIMITS`; a spot account
//!    never sells more than it holds. Too small to trade means no order.
//! 4. **Order**: a market order through the hosted gateway of the signal's venue, so
//!    every pre-trade check, the kill switch and persist-before-send apply as for any
//!    other order. Its client id is derived from the strategy's name and the signal's id:
//!    replaying a signal (after a crash before its ack) finds the order the gateway already
//!    knows, and never sends a second one.
//! 5. **Rate limits**: an order refused as rate limited before it was sent is retried with
//!    the same client id once the venue's pause is over, a bounded number of times.
//!
//! The signal is acknowledged once handled, whatever the outcome.
//!
//! The loop is off by default (`STRATEGY_SETTINGS enabled=false`); `gekko up --paper-trade`
//! turns it on in paper mode, and a venue with live credentials also needs
//! `allow_live=true`, checked when the settings are resolved.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gekko_bus::{Bus, Delivery, Envelope, Topic, names};
use gekko_config::{GekkoConfig, StrategySettings, names as vars};
use gekko_core::{
    ClientOrderId, Direction, InstrumentId, OrderRequest, OrderStatus, OrderType, Side, Signal,
    VenueId,
};
use gekko_gateway::engine::{Gateway, GatewayError};
use gekko_runtime::{BoxError, Service, ServiceCtx, Started};
use gekko_venue::{AccountModel, VenueError};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// How many times an order refused as rate limited before sending is tried again.
const RATE_LIMIT_RETRIES: u32 = 3;
/// The longest pause honoured before a retry; a longer one gives the order up.
const MAX_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(30);
/// How long one read of the signal stream blocks.
const READ_BLOCK: Duration = Duration::from_millis(500);
/// How many signals one read takes.
const READ_COUNT: usize = 64;
/// How long the loop waits after a bus failure before trying again.
const BUS_RETRY: Duration = Duration::from_secs(1);

/// Everything the loop needs from config, resolved before anything starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategyPlan {
    /// `STRATEGY_SETTINGS`.
    pub settings: StrategySettings,
    /// `CONFIDENCE_THRESHOLDS`, per model.
    pub thresholds: BTreeMap<String, Decimal>,
    /// `POSITION_LIMITS`, per venue and `BASE-QUOTE`.
    pub position_limits: BTreeMap<VenueId, BTreeMap<String, Decimal>>,
}

impl StrategyPlan {
    /// Resolves the plan.
    ///
    /// # Errors
    /// A venue with live credentials while `allow_live` is off: trading real money needs
    /// an explicit opt-in, not just credentials.
    pub fn resolve(cfg: &GekkoConfig) -> Result<Self, Vec<String>> {
        let s = &cfg.strategy;
        let live: Vec<&str> = VenueId::ALL
            .iter()
            .filter(|v| !cfg.paper_mode(**v))
            .map(|v| v.as_str())
            .collect();
        if s.enabled && !s.allow_live && !live.is_empty() {
            return Err(vec![format!(
                "{}: the trading loop is enabled but {} {} live credentials; set allow_live=true to trade real money, or remove the credentials for paper trading",
                vars::STRATEGY_SETTINGS,
                live.join(", "),
                if live.len() == 1 { "has" } else { "have" }
            )]);
        }
        Ok(Self {
            settings: s.clone(),
            thresholds: cfg.confidence_thresholds.clone(),
            position_limits: VenueId::ALL
                .iter()
                .map(|v| (*v, cfg.position_limits_for(*v)))
                .collect(),
        })
    }
}

/// What became of one signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An order was placed (or found already placed, on a replay).
    Placed {
        /// Its client id.
        client_order_id: ClientOrderId,
        /// The gateway's status after the submit.
        status: OrderStatus,
        /// Whether it was found already placed rather than sent now.
        replayed: bool,
    },
    /// No order, and why (`below_threshold`, `cooldown`, `no_gateway`, `no_price`,
    /// `too_small`, `position_limit`, `no_threshold`).
    Skipped(&'static str),
    /// The gateway refused or failed; the reason.
    Refused(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Self::Placed { replayed: true, .. } => "replayed",
            Self::Placed { .. } => "placed",
            Self::Skipped(why) => why,
            Self::Refused(_) => "refused",
        }
    }
}

/// The loop's state: the plan, the gateways, the cool-downs.
#[derive(Debug)]
pub struct Strategy {
    plan: StrategyPlan,
    gateways: HashMap<VenueId, Gateway>,
    last_order: HashMap<InstrumentId, Instant>,
    /// Hot config versions ([`Strategy::follow_hot_config`]) and the configuration last
    /// applied from them.
    hot: Option<(
        tokio::sync::watch::Receiver<gekko_runtime::hot::HotConfig>,
        std::sync::Arc<GekkoConfig>,
    )>,
}

impl Strategy {
    /// A strategy over `gateways` (one per venue).
    #[must_use]
    pub fn new(plan: StrategyPlan, gateways: impl IntoIterator<Item = Gateway>) -> Self {
        Self {
            plan,
            gateways: gateways.into_iter().map(|g| (g.venue(), g)).collect(),
            last_order: HashMap::new(),
            hot: None,
        }
    }

    /// The same strategy, applying hot `CONFIDENCE_THRESHOLDS` and `POSITION_LIMITS`
    /// changes from `rx` (the host's hot config versions) to every signal handled after
    /// they arrive, with one info line per applied variable naming the version.
    #[must_use]
    pub fn follow_hot_config(
        mut self,
        rx: tokio::sync::watch::Receiver<gekko_runtime::hot::HotConfig>,
    ) -> Self {
        let started_with = rx.borrow().started_with.clone();
        self.hot = Some((rx, started_with));
        self
    }

    /// Puts a newer hot config version in force, if one arrived.
    fn refresh_hot(&mut self) {
        let Some((rx, applied)) = self.hot.as_mut() else {
            return;
        };
        if !rx.has_changed().unwrap_or(false) {
            return;
        }
        let hot = rx.borrow_and_update().clone();
        let changed = gekko_runtime::hot::hot_changes(applied, &hot.config);
        if changed.contains(&vars::CONFIDENCE_THRESHOLDS) {
            self.plan.thresholds = hot.config.confidence_thresholds.clone();
            tracing::info!(
                version = hot.version,
                variable = vars::CONFIDENCE_THRESHOLDS,
                "config change applied: strategy thresholds"
            );
        }
        if changed.contains(&vars::POSITION_LIMITS) {
            self.plan.position_limits = VenueId::ALL
                .iter()
                .map(|v| (*v, hot.config.position_limits_for(*v)))
                .collect();
            tracing::info!(
                version = hot.version,
                variable = vars::POSITION_LIMITS,
                "config change applied: strategy sizing limits"
            );
        }
        *applied = hot.config;
    }

    /// The consumer group the loop reads signals in.
    #[must_use]
    pub fn group(&self) -> String {
        format!("strategy-{}", self.plan.settings.name)
    }

    /// The deterministic client id of the order for the signal `signal_id` on `instrument`.
    #[must_use]
    pub fn client_order_id(
        &self,
        signal_id: uuid::Uuid,
        instrument: &InstrumentId,
    ) -> ClientOrderId {
        let digest = Sha256::digest(signal_id.as_bytes());
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&digest[..8]);
        ClientOrderId::derive(
            &self.plan.settings.name,
            instrument,
            u64::from_be_bytes(seq),
        )
    }

    /// Handles one signal: threshold, cool-down, sizing, the order.
    pub async fn handle(&mut self, signal_id: uuid::Uuid, signal: &Signal) -> Outcome {
        self.refresh_hot();
        let outcome = self.decide_and_place(signal_id, signal).await;
        metrics::counter!("gekko_strategy_signals_total", "outcome" => outcome.label())
            .increment(1);
        match &outcome {
            Outcome::Placed {
                client_order_id,
                status,
                replayed,
            } => {
                tracing::info!(instrument = %signal.instrument, order = %client_order_id, ?status, replayed, "strategy order");
            }
            Outcome::Refused(reason) => {
                tracing::info!(instrument = %signal.instrument, %reason, "strategy order refused");
            }
            Outcome::Skipped(why) => {
                tracing::debug!(instrument = %signal.instrument, why, "signal not traded");
            }
        }
        outcome
    }

    async fn decide_and_place(&mut self, signal_id: uuid::Uuid, signal: &Signal) -> Outcome {
        let Some(threshold) = self.plan.thresholds.get(&signal.model) else {
            return Outcome::Skipped("no_threshold");
        };
        let Some(confidence) = Decimal::from_f32_retain(signal.confidence) else {
            return Outcome::Skipped("below_threshold");
        };
        if confidence < *threshold {
            return Outcome::Skipped("below_threshold");
        }
        let inst = &signal.instrument;
        let Some(gw) = self.gateways.get(&inst.venue).cloned() else {
            return Outcome::Skipped("no_gateway");
        };
        let id = self.client_order_id(signal_id, inst);
        // A replay: the order exists, whatever the cool-down says now.
        if let Some(existing) = gw.order(&id) {
            return Outcome::Placed {
                client_order_id: id,
                status: existing.status,
                replayed: true,
            };
        }
        let now = Instant::now();
        if let Some(last) = self.last_order.get(inst)
            && now.duration_since(*last) < self.plan.settings.cooldown
        {
            return Outcome::Skipped("cooldown");
        }
        let side = match signal.direction {
            Direction::Up => Side::Buy,
            Direction::Down => Side::Sell,
        };
        let qty = match self.size(&gw, inst, side) {
            Ok(q) => q,
            Err(why) => return Outcome::Skipped(why),
        };
        let req = OrderRequest {
            client_order_id: id.clone(),
            instrument: inst.clone(),
            side,
            order_type: OrderType::Market,
            qty,
            price: None,
            time_in_force: None,
        };
        self.last_order.insert(inst.clone(), now);
        let actor = format!("strategy:{}", self.plan.settings.name);
        place_with_retries(&gw, &actor, req).await
    }

    /// The order quantity for `side`: `order_notional` at the reference price, rounded
    /// down to the lot, trimmed to the position limit (position plus working orders).
    fn size(&self, gw: &Gateway, inst: &InstrumentId, side: Side) -> Result<Decimal, &'static str> {
        let quote = gw
            .last_quotes()
            .into_values()
            .find(|q| &q.instrument == inst)
            .ok_or("no_price")?;
        let price = match side {
            Side::Buy => quote.ask,
            Side::Sell => quote.bid,
        };
        if price <= Decimal::ZERO {
            return Err("no_price");
        }
        let info = gw
            .instruments()
            .into_iter()
            .find(|i| &i.id == inst)
            .ok_or("no_gateway")?;
        let lot = if info.lot_size.is_zero() {
            Decimal::new(1, 8)
        } else {
            info.lot_size
        };
        let mut qty = self.plan.settings.order_notional / price;

        // Working orders count against the limit as if they filled; both figures are the
        // gateway's own, the ones its pre-trade check uses, so sizing costs no venue call.
        let buying = gw.working_qty(inst, Side::Buy);
        let selling = gw.working_qty(inst, Side::Sell);
        let position = gw.position_qty(inst);
        let limit = self
            .plan
            .position_limits
            .get(&inst.venue)
            .and_then(|m| m.get(&inst.pair()))
            .copied();
        let spot = gw.caps().account == AccountModel::Spot;
        let room = match side {
            // Long exposure if every working buy filled.
            Side::Buy => limit.map_or(qty, |l| l - (position + buying)),
            // A spot account sells only what it holds and is not already selling.
            Side::Sell if spot => position - selling,
            // Short exposure if every working sell filled.
            Side::Sell => limit.map_or(qty, |l| l + (position - selling)),
        };
        if room <= Decimal::ZERO {
            return Err("position_limit");
        }
        qty = qty.min(room);
        let qty = (qty / lot).floor() * lot;
        if qty <= Decimal::ZERO || qty < info.min_qty || qty * price < info.min_notional {
            return Err("too_small");
        }
        Ok(qty)
    }
}

/// Places `req`; an order the venue refused as rate limited *before* it was sent is tried
/// again with the same client id once the pause is over.
async fn place_with_retries(gw: &Gateway, actor: &str, req: OrderRequest) -> Outcome {
    let mut tries = 0;
    loop {
        match gw.place_order_as(actor, req.clone()).await {
            Ok(order) if order.status == OrderStatus::Rejected => {
                return Outcome::Refused(
                    order.reject_reason.unwrap_or_else(|| "rejected".to_owned()),
                );
            }
            Ok(order) => {
                return Outcome::Placed {
                    client_order_id: req.client_order_id,
                    status: order.status,
                    replayed: false,
                };
            }
            Err(GatewayError::Venue(
                VenueError::RateLimited { retry_after }
                | VenueError::CircuitOpen { retry_after, .. },
            )) if tries < RATE_LIMIT_RETRIES && retry_after <= MAX_RATE_LIMIT_PAUSE => {
                tracing::info!(order = %req.client_order_id, ?retry_after, "refused for a pause before it was sent; retrying with the same client id");
                tries += 1;
                tokio::time::sleep(retry_after).await;
            }
            Err(e) => return Outcome::Refused(e.to_string()),
        }
    }
}

/// Reads signals until `cancel`, handing each to the strategy and acknowledging it.
///
/// # Errors
/// Never: bus failures are logged and retried, so the loop lives as long as the process.
pub async fn run(
    mut strategy: Strategy,
    bus: Arc<dyn Bus>,
    consumer: String,
    cancel: CancellationToken,
) -> Result<(), std::convert::Infallible> {
    let topic: Topic<Signal> = Topic::capped(names::SIGNALS, names::MARKET_DATA_MAX_LEN, 1);
    let group = strategy.group();
    let mut reader = loop {
        let attempt = async {
            bus.ensure_group(names::SIGNALS, &group).await?;
            bus.group_reader(names::SIGNALS, &group, &consumer).await
        };
        match attempt.await {
            Ok(r) => break r,
            Err(e) => {
                tracing::warn!(error = %e, "strategy cannot join the signal stream; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(BUS_RETRY) => {}
                }
            }
        }
    };
    // Signals this consumer took before a restart and did not finish come first.
    let mut pending = match reader.read_own_pending(READ_COUNT).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the strategy's pending signals");
            Vec::new()
        }
    };
    tracing::info!(
        group,
        consumer,
        replay = pending.len(),
        "strategy reading signals"
    );
    let mut acks: Vec<String> = Vec::new();
    loop {
        let batch: Vec<Delivery> = if pending.is_empty() {
            let read = tokio::select! {
                () = cancel.cancelled() => break,
                r = reader.ack_and_read(&acks, READ_COUNT, READ_BLOCK) => r,
            };
            match read {
                Ok((_, batch)) => {
                    acks.clear();
                    batch
                }
                Err(e) => {
                    tracing::warn!(error = %e, "strategy cannot read signals; retrying");
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(BUS_RETRY) => {}
                    }
                    continue;
                }
            }
        } else {
            std::mem::take(&mut pending)
        };
        for d in batch {
            if cancel.is_cancelled() {
                // Left pending: handled after the restart, with the same client id.
                break;
            }
            match topic.decode(&d) {
                Ok(Envelope { id, payload, .. }) => {
                    strategy.handle(id, &payload).await;
                }
                Err(e) => tracing::warn!(id = %d.id, error = %e, "undecodable signal skipped"),
            }
            acks.push(d.id);
        }
    }
    if !acks.is_empty()
        && let Err(e) = reader.ack(&acks).await
    {
        tracing::warn!(error = %e, "strategy could not acknowledge its last signals; they will be replayed without doubling");
    }
    Ok(())
}

/// The trading loop as a hosted service. List it after the gateways it trades through.
#[derive(Debug)]
pub struct StrategyService;

impl Service for StrategyService {
    const NAME: &'static str = "strategy";
    type Settings = StrategyPlan;

    fn resolve(cfg: &GekkoConfig) -> Result<StrategyPlan, Vec<String>> {
        StrategyPlan::resolve(cfg)
    }

    async fn start(plan: StrategyPlan, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        let gateways = ctx.provided().all::<Gateway>();
        if gateways.is_empty() {
            return Err("the trading loop needs a gateway, and none is hosted".into());
        }
        let consumer = format!("{}-1", plan.settings.name);
        let mut strategy = Strategy::new(plan, gateways);
        if let Some(rx) = ctx.hot_config() {
            strategy = strategy.follow_hot_config(rx);
        }
        ctx.spawn(
            "strategy",
            run(strategy, ctx.bus().clone(), consumer, ctx.cancel()),
        );
        Ok(Started::new())
    }
}
