//! The risk guard: the `MCP_SETTINGS` rules every state-changing tool passes before any
//! state-changing gRPC call is made.
//!
//! It lives in the server, not in a prompt: an agent can ask for anything, and what it
//! gets is decided here, then again by the gRPC `AuthLayer` (roles, `read_only`, TOTP) and
//! the gateway's own pre-trade checks (compliance limits, position limits, kill switch).
//! Each check returns a [`Refusal`] that names its rule; the server turns it into a tool
//! result with `isError: true`, and nothing is sent.
//!
//! The checks are small pure functions over the settings plus one stateful piece, the
//! per-session sliding window of [`Guard::admit`], so they are unit-tested directly.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gekko_config::{McpMode, McpSettings, Role};
use rust_decimal::Decimal;

/// The window `max_orders_per_minute` counts over.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Sessions idle longer than this are forgotten, so the window map stays small.
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// A call the guard refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by {rule_text}: {message}")]
pub struct Refusal {
    /// The rule's short name, the `rule` label of `gekko_mcp_refusals_total`: `mode`,
    /// `max_order_notional`, `allowed_instruments`, `max_orders_per_minute`, `confirm`,
    /// `role`, `no_quote`, `arguments`.
    pub rule: &'static str,
    /// How the rule is written in config, e.g. `MCP_SETTINGS mode=read_only`.
    pub rule_text: String,
    /// What was refused and why.
    pub message: String,
}

impl Refusal {
    fn new(rule: &'static str, rule_text: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            rule,
            rule_text: rule_text.into(),
            message: message.into(),
        }
    }

    /// A malformed call (the message names the field).
    #[must_use]
    pub fn arguments(tool: &str, message: impl std::fmt::Display) -> Self {
        Self::new(
            "arguments",
            "argument validation",
            format!("invalid arguments for {tool}: {message}"),
        )
    }
}

/// The tools that change state, with the lowest role each needs.
pub const STATE_CHANGING: &[(&str, Role)] = &[
    ("place_order", Role::Trader),
    ("cancel_order", Role::Trader),
    ("cancel_all_orders", Role::Trader),
    ("close_positions", Role::Admin),
];

/// Whether `tool` changes state.
#[must_use]
pub fn changes_state(tool: &str) -> bool {
    STATE_CHANGING.iter().any(|(t, _)| *t == tool)
}

/// The risk guard of one MCP server: its settings and the per-session order windows.
#[derive(Debug)]
pub struct Guard {
    settings: McpSettings,
    /// Attempt times per session. A mutex: one short critical section per order or
    /// cancel attempt, never held across an await.
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Guard {
    /// A guard enforcing `settings`.
    #[must_use]
    pub fn new(settings: McpSettings) -> Self {
        Self {
            settings,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The settings enforced.
    #[must_use]
    pub fn settings(&self) -> &McpSettings {
        &self.settings
    }

    /// `role`: the caller's role must reach the tool's. `None` (stdio, where only the gRPC
    /// server knows the token's role) passes here and is decided by the `AuthLayer`.
    ///
    /// # Errors
    /// A `role` refusal.
    pub fn check_role(&self, tool: &str, role: Option<Role>) -> Result<(), Refusal> {
        let Some(needed) = STATE_CHANGING
            .iter()
            .find(|(t, _)| *t == tool)
            .map(|(_, r)| *r)
        else {
            return Ok(());
        };
        match role {
            Some(r) if r < needed => Err(Refusal::new(
                "role",
                "ACCESS_CONTROL_CONFIG tokens",
                format!("{tool} needs role {needed}; this token is {r}"),
            )),
            _ => Ok(()),
        }
    }

    /// `mode`: `read_only` refuses every state-changing tool; `paper` allows one only on a
    /// venue reported as simulated (`simulated` is what `GetStatus` says; `None` when the
    /// venue is not hosted, which is refused too); `trade` allows it.
    ///
    /// # Errors
    /// A `mode` refusal naming the mode.
    pub fn check_mode(
        &self,
        tool: &str,
        venue: &str,
        simulated: Option<bool>,
    ) -> Result<(), Refusal> {
        let text = format!("MCP_SETTINGS mode={}", self.settings.mode);
        match self.settings.mode {
            McpMode::ReadOnly => Err(Refusal::new(
                "mode",
                text,
                format!("{tool} changes state; set mode=paper (simulated venues) or mode=trade"),
            )),
            McpMode::Paper => match simulated {
                Some(true) => Ok(()),
                Some(false) => Err(Refusal::new(
                    "mode",
                    text,
                    format!("{venue} is a live venue; {tool} on a live venue needs mode=trade"),
                )),
                None => Err(Refusal::new(
                    "mode",
                    text,
                    format!(
                        "{venue} is not a venue this gekko hosts, so it cannot be shown to be simulated"
                    ),
                )),
            },
            McpMode::Trade => Ok(()),
        }
    }

    /// `allowed_instruments`: empty allows every configured pair; otherwise the pair must
    /// be listed plain (every venue) or qualified with this venue.
    ///
    /// # Errors
    /// An `allowed_instruments` refusal naming the instrument.
    pub fn check_instrument(&self, venue: &str, instrument: &str) -> Result<(), Refusal> {
        let allowed = &self.settings.allowed_instruments;
        if allowed.is_empty()
            || allowed
                .iter()
                .any(|p| p.canonical() == instrument && p.venue.is_none_or(|v| v.as_str() == venue))
        {
            return Ok(());
        }
        let list: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        Err(Refusal::new(
            "allowed_instruments",
            "MCP_SETTINGS allowed_instruments",
            format!(
                "{venue}:{instrument} is not allowed; allowed: {}",
                list.join(", ")
            ),
        ))
    }

    /// `max_order_notional`: `notional` (quote currency) must not exceed it.
    ///
    /// # Errors
    /// A `max_order_notional` refusal with both figures.
    pub fn check_notional(&self, notional: Decimal) -> Result<(), Refusal> {
        let limit = self.settings.max_order_notional;
        if notional <= limit {
            return Ok(());
        }
        Err(Refusal::new(
            "max_order_notional",
            format!("MCP_SETTINGS max_order_notional={limit}"),
            format!("the order's notional {notional} is above {limit}"),
        ))
    }

    /// `max_orders_per_minute`: admits one order or cancel attempt for `session` at `now`
    /// when fewer than the limit were admitted in the [`WINDOW`] before it, and records
    /// it. Called last, once every other rule has passed, so refused calls do not use up
    /// the budget.
    ///
    /// # Errors
    /// A `max_orders_per_minute` refusal saying when the next attempt is possible.
    pub fn admit(&self, session: &str, now: Instant) -> Result<(), Refusal> {
        let limit = self.settings.max_orders_per_minute as usize;
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        windows.retain(|_, w| {
            w.back()
                .is_some_and(|last| now.saturating_duration_since(*last) < FORGET_AFTER)
        });
        let window = windows.entry(session.to_owned()).or_default();
        while window
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            window.pop_front();
        }
        if window.len() >= limit {
            let wait = window.front().map_or(WINDOW, |t| {
                WINDOW.saturating_sub(now.saturating_duration_since(*t))
            });
            return Err(Refusal::new(
                "max_orders_per_minute",
                format!("MCP_SETTINGS max_orders_per_minute={limit}"),
                format!(
                    "{limit} order and cancel attempts in the last minute in this session; try again in {} s",
                    wait.as_secs().max(1)
                ),
            ));
        }
        window.push_back(now);
        Ok(())
    }
}

/// An order's notional: qty times its limit price, or for a market order times the
/// price it would trade at (the ask for a buy, the bid for a sell).
///
/// # Errors
/// A `no_quote` refusal when a market order has no price to value it at.
pub fn notional(
    qty: Decimal,
    limit_price: Option<Decimal>,
    market_price: Option<Decimal>,
) -> Result<Decimal, Refusal> {
    let price = limit_price.or(market_price).ok_or_else(|| {
        Refusal::new(
            "no_quote",
            "MCP_SETTINGS max_order_notional",
            "a market order is valued at the current quote, and there is none; retry once get_quote answers",
        )
    })?;
    qty.checked_mul(price).ok_or_else(|| {
        Refusal::new(
            "max_order_notional",
            "MCP_SETTINGS max_order_notional",
            "the order's notional overflows",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(raw: &str) -> Guard {
        let vars = std::collections::BTreeMap::from([("MCP_SETTINGS".to_owned(), raw.to_owned())]);
        Guard::new(gekko_config::mcp_settings_from_vars(&vars).unwrap())
    }

    #[test]
    fn read_only_refuses_every_state_change_by_default() {
        let g = Guard::new(McpSettings::default());
        let r = g
            .check_mode("place_order", "binanceus", Some(true))
            .unwrap_err();
        assert_eq!(
            r.to_string(),
            "refused by MCP_SETTINGS mode=read_only: place_order changes state; set mode=paper (simulated venues) or mode=trade"
        );
        assert_eq!(r.rule, "mode");
    }

    #[test]
    fn paper_allows_only_simulated_venues() {
        let g = guard("mode=paper");
        assert!(g.check_mode("place_order", "binanceus", Some(true)).is_ok());
        let live = g
            .check_mode("place_order", "coinbase", Some(false))
            .unwrap_err();
        assert!(
            live.to_string().contains("coinbase is a live venue"),
            "{live}"
        );
        assert!(g.check_mode("place_order", "kraken", None).is_err());
        assert!(
            guard("mode=trade")
                .check_mode("place_order", "coinbase", Some(false))
                .is_ok()
        );
    }

    #[test]
    fn instruments_plain_or_qualified() {
        let g = guard("allowed_instruments=binanceus:BTC-USD;ETH-USD");
        assert!(g.check_instrument("binanceus", "BTC-USD").is_ok());
        assert!(g.check_instrument("coinbase", "ETH-USD").is_ok());
        let r = g.check_instrument("coinbase", "BTC-USD").unwrap_err();
        assert_eq!(r.rule, "allowed_instruments");
        assert!(
            r.to_string().contains("coinbase:BTC-USD is not allowed"),
            "{r}"
        );
        assert!(
            Guard::new(McpSettings::default())
                .check_instrument("oanda", "EUR-USD")
                .is_ok()
        );
    }

    #[test]
    fn notional_limit_and_market_valuation() {
        let g = guard("max_order_notional=100");
        let n = notional(Decimal::new(2, 0), Some(Decimal::new(50, 0)), None).unwrap();
        assert!(g.check_notional(n).is_ok());
        let n = notional(Decimal::new(3, 0), None, Some(Decimal::new(50, 0))).unwrap();
        let r = g.check_notional(n).unwrap_err();
        assert_eq!(
            r.to_string(),
            "refused by MCP_SETTINGS max_order_notional=100: the order's notional 150 is above 100"
        );
        assert_eq!(
            notional(Decimal::ONE, None, None).unwrap_err().rule,
            "no_quote"
        );
    }

    #[test]
    fn sliding_window_per_session() {
        let g = guard("max_orders_per_minute=2");
        let t0 = Instant::now();
        assert!(g.admit("a", t0).is_ok());
        assert!(g.admit("a", t0 + Duration::from_secs(10)).is_ok());
        let r = g.admit("a", t0 + Duration::from_secs(20)).unwrap_err();
        assert_eq!(r.rule, "max_orders_per_minute");
        assert!(r.to_string().contains("try again in 40 s"), "{r}");
        // Another session has its own budget.
        assert!(g.admit("b", t0 + Duration::from_secs(20)).is_ok());
        // The first attempt leaves the window after 60 s.
        assert!(g.admit("a", t0 + Duration::from_secs(60)).is_ok());
        assert!(g.admit("a", t0 + Duration::from_secs(61)).is_err());
    }

    #[test]
    fn roles_when_known() {
        let g = Guard::new(McpSettings::default());
        assert!(g.check_role("place_order", Some(Role::Viewer)).is_err());
        assert!(g.check_role("place_order", Some(Role::Trader)).is_ok());
        assert!(g.check_role("close_positions", Some(Role::Trader)).is_err());
        assert!(g.check_role("place_order", None).is_ok());
        assert!(g.check_role("get_quote", Some(Role::Viewer)).is_ok());
    }
}
