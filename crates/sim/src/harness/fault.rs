//! Injectable faults: the misbehaviour a gateway must survive, on demand.
//!
//! Each [`Fault`] reproduces one documented venue behaviour or one failure seen in the
//! field: rate-limit storms that punish clients ignoring `Retry-After` with a 418 ban, an
//! order whose response is lost although it executed, 5xx bursts, dropped or silent
//! websockets, book sequence gaps, and malformed messages. None of these is particular to
//! one venue, so the fault vocabulary and the injector state live in the harness and
//! every simulator reuses them; a protocol module only says what each fault means on its
//! wire (which error body a 503 carries, which messages count as market messages) and
//! implements [`FaultHooks`] for the faults that its own parts own (its rate limiter, the
//! engine's book sequence).
//!
//! Faults are one-shot counters or deadlines read on the hot path with atomics or a tiny
//! mutex, so an idle fault costs nothing. The websocket "drop everything" signal is a
//! `watch` generation counter: a `Notify` would miss connections that are busy sending
//! when it fires, a generation change is seen by every receiver at its next poll.
//!
//! Over HTTP a fault is tagged JSON, e.g. `{"kind":"ban","duration_ms":5000}`; the same
//! shape is what `serde` produces for [`Fault`], so a Rust caller can serialize a `Fault`
//! and post it to `/sim/admin/fault`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

/// A misbehaviour to inject into a running simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FaultSpec", into = "FaultSpec")]
pub enum Fault {
    /// Every REST request gets 429 + `Retry-After: 1` for `duration`. Requests that keep
    /// coming while a 429's `Retry-After` has not elapsed are violations; the third
    /// violation bans the client (418) for 2 minutes, as Binance does.
    RateLimitStorm {
        /// How long the storm lasts.
        duration: Duration,
    },
    /// Every REST request gets 418 with `Retry-After` = remaining seconds.
    Ban {
        /// How long the ban lasts.
        duration: Duration,
    },
    /// The next order placement (Binance: `POST /api/v3/order`) executes normally, but
    /// its HTTP response is held back for [`Fault::ORDER_TIMEOUT_DELAY`] (the client sees
    /// a timeout).
    OrderTimeout,
    /// The next `count` REST requests get HTTP 503 (Binance: -1001) without executing.
    ServerErrors {
        /// How many requests fail.
        count: u32,
    },
    /// Every websocket connection is closed now, abruptly (no close frame).
    DropWebSockets,
    /// The next book diff of `symbol` skips sequence numbers (on Binance, `U` > previous
    /// `u` + 1; on Coinbase, the product's next `l2_data` message jumps `sequence_num`
    /// on every connection that receives it).
    DepthGap {
        /// Instrument name, e.g. `BTCUSD` (Coinbase: `BTC-USD`).
        symbol: String,
    },
    /// Websockets stay open but nothing (no data, no pings) is sent for `duration`.
    SilentStreams {
        /// How long the silence lasts.
        duration: Duration,
    },
    /// One channel stops for `duration` while the connection, its heartbeats and its
    /// other channels keep flowing: messages of `channel` (the wire name a message
    /// carries, Coinbase `l2_data`, `ticker`, `market_trades`) are not sent, and use no
    /// sequence number, as a venue that has nothing to send on it. Coinbase only.
    SilentChannel {
        /// The channel's wire name.
        channel: String,
        /// How long the silence lasts.
        duration: Duration,
    },
    /// The next `count` websocket market messages are invalid JSON or wrong shapes.
    MalformedNext {
        /// How many messages are corrupted.
        count: u32,
    },
    /// No market data at all for `duration`: websockets are silent (as
    /// [`Fault::SilentStreams`]) and REST book snapshots (Binance: `GET /api/v3/depth`)
    /// get HTTP 503, so a client that has not seen the book yet has no price.
    MarketDataOutage {
        /// How long the outage lasts.
        duration: Duration,
    },
    /// The next `count` lines of a chunked line stream (OANDA's pricing and transaction
    /// streams) are each written as two HTTP chunks, split inside the JSON object.
    SplitChunks {
        /// How many lines are split.
        count: u32,
    },
    /// The next `count` order placements are refused for insufficient margin (OANDA:
    /// `INSUFFICIENT_MARGIN`) whatever the account holds.
    MarginRejectNext {
        /// How many placements are refused.
        count: u32,
    },
    /// The next order placement is checked on arrival (signature, `timestamp` and
    /// `recvWindow`) but reaches the matching engine only after `delay`: until then no
    /// query, open-order list or user stream knows it, and its answer comes after `delay`
    /// (a client with a shorter timeout sees none). The engine checks `recvWindow` again,
    /// as the venue does, so an order that arrives there later than `recvWindow` after its
    /// timestamp is refused (Binance: `-1021`) and never appears. Binance.US only.
    DelayedAccept {
        /// How long the order takes to reach the matching engine.
        delay: Duration,
    },
}

impl Fault {
    /// How long [`Fault::OrderTimeout`] holds the order response back.
    pub const ORDER_TIMEOUT_DELAY: Duration = Duration::from_secs(30);

    /// Parses the tagged JSON form, e.g. `{"kind":"ban","duration_ms":5000}`: the one
    /// parser of `POST /sim/admin/fault` and of the simulators' `--fault` flag.
    ///
    /// # Errors
    /// What is wrong with the JSON, in serde's words.
    pub fn from_json(json: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(json).map_err(|e| format!("invalid fault JSON: {e}"))
    }
}

/// Wire form of [`Fault`] (durations in milliseconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum FaultSpec {
    RateLimitStorm {
        duration_ms: u64,
    },
    Ban {
        duration_ms: u64,
    },
    OrderTimeout,
    ServerErrors {
        count: u32,
    },
    #[serde(rename = "drop_websockets")]
    DropWebSockets,
    DepthGap {
        symbol: String,
    },
    SilentStreams {
        duration_ms: u64,
    },
    SilentChannel {
        channel: String,
        duration_ms: u64,
    },
    MalformedNext {
        count: u32,
    },
    MarketDataOutage {
        duration_ms: u64,
    },
    SplitChunks {
        count: u32,
    },
    MarginRejectNext {
        count: u32,
    },
    DelayedAccept {
        delay_ms: u64,
    },
}

impl From<FaultSpec> for Fault {
    fn from(s: FaultSpec) -> Self {
        match s {
            FaultSpec::RateLimitStorm { duration_ms } => Self::RateLimitStorm {
                duration: Duration::from_millis(duration_ms),
            },
            FaultSpec::Ban { duration_ms } => Self::Ban {
                duration: Duration::from_millis(duration_ms),
            },
            FaultSpec::OrderTimeout => Self::OrderTimeout,
            FaultSpec::ServerErrors { count } => Self::ServerErrors { count },
            FaultSpec::DropWebSockets => Self::DropWebSockets,
            FaultSpec::DepthGap { symbol } => Self::DepthGap { symbol },
            FaultSpec::SilentChannel {
                channel,
                duration_ms,
            } => Self::SilentChannel {
                channel,
                duration: Duration::from_millis(duration_ms),
            },
            FaultSpec::SilentStreams { duration_ms } => Self::SilentStreams {
                duration: Duration::from_millis(duration_ms),
            },
            FaultSpec::MalformedNext { count } => Self::MalformedNext { count },
            FaultSpec::MarketDataOutage { duration_ms } => Self::MarketDataOutage {
                duration: Duration::from_millis(duration_ms),
            },
            FaultSpec::SplitChunks { count } => Self::SplitChunks { count },
            FaultSpec::MarginRejectNext { count } => Self::MarginRejectNext { count },
            FaultSpec::DelayedAccept { delay_ms } => Self::DelayedAccept {
                delay: Duration::from_millis(delay_ms),
            },
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl From<Fault> for FaultSpec {
    fn from(f: Fault) -> Self {
        match f {
            Fault::RateLimitStorm { duration } => Self::RateLimitStorm {
                duration_ms: ms(duration),
            },
            Fault::Ban { duration } => Self::Ban {
                duration_ms: ms(duration),
            },
            Fault::OrderTimeout => Self::OrderTimeout,
            Fault::ServerErrors { count } => Self::ServerErrors { count },
            Fault::DropWebSockets => Self::DropWebSockets,
            Fault::DepthGap { symbol } => Self::DepthGap { symbol },
            Fault::SilentChannel { channel, duration } => Self::SilentChannel {
                channel,
                duration_ms: ms(duration),
            },
            Fault::SilentStreams { duration } => Self::SilentStreams {
                duration_ms: ms(duration),
            },
            Fault::MalformedNext { count } => Self::MalformedNext { count },
            Fault::MarketDataOutage { duration } => Self::MarketDataOutage {
                duration_ms: ms(duration),
            },
            Fault::SplitChunks { count } => Self::SplitChunks { count },
            Fault::MarginRejectNext { count } => Self::MarginRejectNext { count },
            Fault::DelayedAccept { delay } => Self::DelayedAccept {
                delay_ms: ms(delay),
            },
        }
    }
}

/// What a protocol module does for the faults its own parts own.
pub trait FaultHooks {
    /// Starts a rate-limit storm of `duration` in the protocol's limiter.
    fn rate_limit_storm(&self, duration: Duration);
    /// Bans the (one shared) client for `duration` in the protocol's limiter.
    fn ban(&self, duration: Duration);
    /// Makes the next book diff of `symbol` skip sequence numbers; `false` when the
    /// symbol is unknown.
    fn depth_gap(&self, symbol: &str) -> bool;
}

/// The one-shot and timed faults that are not owned by a rate limiter or the engine,
/// plus the websocket drop signal.
#[derive(Debug)]
pub struct FaultState {
    order_timeouts: AtomicU32,
    server_errors: AtomicU32,
    malformed: AtomicU32,
    split: AtomicU32,
    margin_rejects: AtomicU32,
    delayed_accepts: Mutex<Vec<Duration>>,
    silent_until: Mutex<Option<Instant>>,
    silent_channels: Mutex<Vec<(String, Instant)>>,
    book_down_until: Mutex<Option<Instant>>,
    ws_drop: watch::Sender<u64>,
}

impl Default for FaultState {
    fn default() -> Self {
        Self {
            order_timeouts: AtomicU32::new(0),
            server_errors: AtomicU32::new(0),
            malformed: AtomicU32::new(0),
            split: AtomicU32::new(0),
            margin_rejects: AtomicU32::new(0),
            delayed_accepts: Mutex::new(Vec::new()),
            silent_until: Mutex::new(None),
            silent_channels: Mutex::new(Vec::new()),
            book_down_until: Mutex::new(None),
            ws_drop: watch::Sender::new(0),
        }
    }
}

/// Longest fault duration honoured; longer requests are capped (an `Instant` far in the
/// future would overflow, and a week is "forever" for any test).
pub const MAX_FAULT_DURATION: Duration = Duration::from_secs(7 * 86_400);

/// `now + d`, with `d` capped at [`MAX_FAULT_DURATION`] so it can never overflow.
#[must_use]
pub fn deadline(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d.min(MAX_FAULT_DURATION)).unwrap_or(now)
}

/// Moves a timed fault's end to `now + d`, extending, never shortening.
fn extend(slot: &Mutex<Option<Instant>>, d: Duration) {
    let until = deadline(d);
    let mut g = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *g = Some(g.map_or(until, |u| u.max(until)));
}

/// Whether a timed fault is in force.
fn active(slot: &Mutex<Option<Instant>>) -> bool {
    let g = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    g.is_some_and(|u| Instant::now() < u)
}

/// Takes one from a counter if it is positive.
fn take_one(a: &AtomicU32) -> bool {
    a.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1))
        .is_ok()
}

impl FaultState {
    /// Applies `fault`: the harness-owned ones here, the others through `hooks`. Returns
    /// `false` when the fault names an unknown symbol (nothing happens then).
    pub fn inject(&self, fault: Fault, hooks: &impl FaultHooks) -> bool {
        match fault {
            Fault::RateLimitStorm { duration } => hooks.rate_limit_storm(duration),
            Fault::Ban { duration } => hooks.ban(duration),
            Fault::OrderTimeout => self.add_order_timeout(),
            Fault::ServerErrors { count } => self.add_server_errors(count),
            Fault::DropWebSockets => self.drop_websockets(),
            Fault::DepthGap { symbol } => return hooks.depth_gap(&symbol),
            Fault::SilentStreams { duration } => self.silence_for(duration),
            Fault::SilentChannel { channel, duration } => {
                self.silence_channel_for(&channel, duration);
            }
            Fault::MalformedNext { count } => self.add_malformed(count),
            Fault::MarketDataOutage { duration } => {
                self.silence_for(duration);
                extend(&self.book_down_until, duration);
            }
            Fault::SplitChunks { count } => {
                self.split.fetch_add(count, Ordering::AcqRel);
            }
            Fault::MarginRejectNext { count } => {
                self.margin_rejects.fetch_add(count, Ordering::AcqRel);
            }
            Fault::DelayedAccept { delay } => self.add_delayed_accept(delay),
        }
        true
    }

    /// Closes every websocket now (each connection watches [`Self::ws_drops`]).
    pub fn drop_websockets(&self) {
        self.ws_drop.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// A receiver that changes whenever every websocket must be dropped. Subscribe when
    /// the connection is accepted, so a drop fired during its handshake is not missed.
    #[must_use]
    pub fn ws_drops(&self) -> watch::Receiver<u64> {
        self.ws_drop.subscribe()
    }

    /// Arms one more delayed order response.
    pub fn add_order_timeout(&self) {
        self.order_timeouts.fetch_add(1, Ordering::AcqRel);
    }

    /// Consumes an armed order timeout, if any.
    pub fn take_order_timeout(&self) -> bool {
        take_one(&self.order_timeouts)
    }

    /// Arms `n` more 503 answers.
    pub fn add_server_errors(&self, n: u32) {
        self.server_errors.fetch_add(n, Ordering::AcqRel);
    }

    /// Consumes an armed 503, if any.
    pub fn take_server_error(&self) -> bool {
        take_one(&self.server_errors)
    }

    /// Arms `n` more malformed market messages.
    pub fn add_malformed(&self, n: u32) {
        self.malformed.fetch_add(n, Ordering::AcqRel);
    }

    /// Consumes an armed malformed message, if any.
    pub fn take_malformed(&self) -> bool {
        take_one(&self.malformed)
    }

    /// Consumes an armed split line ([`Fault::SplitChunks`]), if any.
    pub fn take_split(&self) -> bool {
        take_one(&self.split)
    }

    /// Consumes an armed margin refusal ([`Fault::MarginRejectNext`]), if any.
    pub fn take_margin_reject(&self) -> bool {
        take_one(&self.margin_rejects)
    }

    /// Arms one more delayed placement ([`Fault::DelayedAccept`]); armed ones are taken
    /// in order.
    pub fn add_delayed_accept(&self, delay: Duration) {
        self.delayed_accepts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(delay.min(MAX_FAULT_DURATION));
    }

    /// Consumes the first armed delayed placement, if any: how long it is held.
    pub fn take_delayed_accept(&self) -> Option<Duration> {
        let mut g = self
            .delayed_accepts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (!g.is_empty()).then(|| g.remove(0))
    }

    /// Silences websockets until `now + d` (extending, never shortening).
    pub fn silence_for(&self, d: Duration) {
        extend(&self.silent_until, d);
    }

    /// Silences one channel until `now + d` ([`Fault::SilentChannel`]; extending, never
    /// shortening).
    pub fn silence_channel_for(&self, channel: &str, d: Duration) {
        let until = deadline(d);
        let mut g = self
            .silent_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match g.iter_mut().find(|(c, _)| c == channel) {
            Some((_, u)) => *u = (*u).max(until),
            None => g.push((channel.to_owned(), until)),
        }
    }

    /// `true` while messages of `channel` must not be sent ([`Fault::SilentChannel`]).
    pub fn is_channel_silent(&self, channel: &str) -> bool {
        let now = Instant::now();
        self.silent_channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|(c, u)| c == channel && now < *u)
    }

    /// `true` while websockets must stay silent.
    pub fn is_silent(&self) -> bool {
        active(&self.silent_until)
    }

    /// `true` while REST book snapshots must fail ([`Fault::MarketDataOutage`]).
    pub fn is_book_down(&self) -> bool {
        active(&self.book_down_until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_as_tagged_json() {
        let f: Fault = serde_json::from_str(r#"{"kind":"ban","duration_ms":5000}"#).expect("ban");
        assert_eq!(
            f,
            Fault::Ban {
                duration: Duration::from_secs(5)
            }
        );
        for f in [
            Fault::RateLimitStorm {
                duration: Duration::from_millis(1500),
            },
            Fault::OrderTimeout,
            Fault::ServerErrors { count: 2 },
            Fault::DropWebSockets,
            Fault::DepthGap {
                symbol: "BTCUSD".into(),
            },
            Fault::SilentStreams {
                duration: Duration::from_secs(1),
            },
            Fault::SilentChannel {
                channel: "l2_data".into(),
                duration: Duration::from_millis(1500),
            },
            Fault::MalformedNext { count: 3 },
            Fault::SplitChunks { count: 2 },
            Fault::MarginRejectNext { count: 1 },
            Fault::DelayedAccept {
                delay: Duration::from_millis(9000),
            },
            Fault::MarketDataOutage {
                duration: Duration::from_millis(2500),
            },
        ] {
            let json = serde_json::to_string(&f).expect("ser");
            assert_eq!(
                serde_json::from_str::<Fault>(&json).expect("de"),
                f,
                "{json}"
            );
        }
        assert_eq!(
            serde_json::to_string(&Fault::DropWebSockets).expect("ser"),
            r#"{"kind":"drop_websockets"}"#
        );
    }

    struct Hooks(std::cell::Cell<u32>);

    impl FaultHooks for Hooks {
        fn rate_limit_storm(&self, _: Duration) {
            self.0.set(self.0.get() + 1);
        }
        fn ban(&self, _: Duration) {
            self.0.set(self.0.get() + 10);
        }
        fn depth_gap(&self, symbol: &str) -> bool {
            symbol == "BTCUSD"
        }
    }

    #[test]
    fn inject_dispatches_to_the_owner() {
        let s = FaultState::default();
        let h = Hooks(std::cell::Cell::new(0));
        let drops = s.ws_drops();
        assert!(s.inject(
            Fault::Ban {
                duration: Duration::from_secs(1)
            },
            &h
        ));
        assert!(s.inject(
            Fault::RateLimitStorm {
                duration: Duration::from_secs(1)
            },
            &h
        ));
        assert_eq!(h.0.get(), 11);
        assert!(s.inject(Fault::DropWebSockets, &h));
        assert!(drops.has_changed().expect("sender alive"));
        assert!(!s.inject(
            Fault::DepthGap {
                symbol: "DOGEUSD".into()
            },
            &h
        ));
        assert!(s.inject(Fault::ServerErrors { count: 1 }, &h));
        assert!(s.take_server_error());
        assert!(s.inject(Fault::OrderTimeout, &h));
        assert!(s.take_order_timeout());
        assert!(s.inject(Fault::MalformedNext { count: 1 }, &h));
        assert!(s.take_malformed());
        let f: Fault = serde_json::from_str(r#"{"kind":"delayed_accept","delay_ms":9000}"#)
            .expect("delayed_accept");
        assert!(s.inject(f, &h));
        assert_eq!(s.take_delayed_accept(), Some(Duration::from_secs(9)));
        assert_eq!(s.take_delayed_accept(), None, "one-shot");
        assert!(!s.is_silent());
    }

    #[test]
    fn counters_are_one_shot() {
        let s = FaultState::default();
        assert!(!s.take_server_error());
        s.add_server_errors(2);
        assert!(s.take_server_error());
        assert!(s.take_server_error());
        assert!(!s.take_server_error());
    }
}
