//! Configuration of the Binance.US simulator.
//!
//! Everything a scenario may want to vary lives in one plain struct, [`SimConfig`], so a
//! test can start from [`SimConfig::default`] (the paper-trading setup that `gekko up`
//! uses) and override only what it cares about. The config is validated once, before any
//! port is bound, so a bad symbol definition fails fast instead of producing a venue that
//! rejects every order for a reason nobody can see.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use rust_decimal::Decimal;

use super::error::SimError;
pub use crate::engine::SimSymbol;

/// How the simulator is set up: listeners, seed, accounts, symbols and limits.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address of the REST listener (`127.0.0.1:0` picks a free port).
    pub rest_addr: SocketAddr,
    /// Address of the websocket listener (`127.0.0.1:0` picks a free port).
    pub ws_addr: SocketAddr,
    /// Seed of the market generator and of every generated identifier, so runs with the
    /// same seed produce the same market.
    pub seed: u64,
    /// The API keys the venue knows; each is one account with its own balances.
    pub api_keys: Vec<SimApiKey>,
    /// The tradable symbols.
    pub symbols: Vec<SimSymbol>,
    /// How often the market generator moves every book (default 200 ms).
    pub tick_interval: Duration,
    /// How often the websocket server sends a ping frame (default 180 s, like the venue).
    pub ws_ping_interval: Duration,
    /// REQUEST_WEIGHT limit per minute (default 1200, like the venue).
    pub weight_limit_per_minute: u32,
    /// ORDERS limit per 10 seconds, per account (default 100, like the venue).
    pub orders_per_10s: u32,
    /// Starting balances `(asset, free)` given to every account.
    pub initial_balances: Vec<(String, Decimal)>,
}

impl Default for SimConfig {
    /// Paper-trading defaults: BTCUSD and ETHUSD, one HMAC key ([`SimApiKey::paper`]),
    /// balances USD 100000, BTC 2, ETH 20, ephemeral ports on 127.0.0.1.
    fn default() -> Self {
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            rest_addr: local,
            ws_addr: local,
            seed: 42,
            api_keys: vec![SimApiKey::paper()],
            symbols: vec![
                SimSymbol {
                    symbol: "BTCUSD".into(),
                    base: "BTC".into(),
                    quote: "USD".into(),
                    start_price: Decimal::new(60_000, 0),
                    tick_size: Decimal::new(1, 2),
                    step_size: Decimal::new(1, 5),
                    min_qty: Decimal::new(1, 5),
                    max_qty: Decimal::new(9_000, 0),
                    min_notional: Decimal::new(10, 0),
                },
                SimSymbol {
                    symbol: "ETHUSD".into(),
                    base: "ETH".into(),
                    quote: "USD".into(),
                    start_price: Decimal::new(3_000, 0),
                    tick_size: Decimal::new(1, 2),
                    step_size: Decimal::new(1, 4),
                    min_qty: Decimal::new(1, 4),
                    max_qty: Decimal::new(9_000, 0),
                    min_notional: Decimal::new(10, 0),
                },
            ],
            tick_interval: Duration::from_millis(200),
            ws_ping_interval: Duration::from_secs(180),
            weight_limit_per_minute: 1200,
            orders_per_10s: 100,
            initial_balances: vec![
                ("USD".into(), Decimal::new(100_000, 0)),
                ("BTC".into(), Decimal::new(2, 0)),
                ("ETH".into(), Decimal::new(20, 0)),
            ],
        }
    }
}

impl SimConfig {
    /// Checks the whole config and reports every problem at once.
    ///
    /// # Errors
    /// [`SimError::InvalidConfig`] listing each problem, one per line.
    pub fn validate(&self) -> Result<(), SimError> {
        let mut problems = Vec::new();
        if self.symbols.is_empty() {
            problems.push("symbols: at least one symbol is required".to_owned());
        }
        if self.tick_interval.is_zero() {
            problems.push("tick_interval: must be greater than zero".to_owned());
        }
        if self.ws_ping_interval.is_zero() {
            problems.push("ws_ping_interval: must be greater than zero".to_owned());
        }
        let day = Duration::from_secs(86_400);
        if self.tick_interval > day {
            problems
                .push("tick_interval: must be at most 24h (pause the market instead)".to_owned());
        }
        if self.ws_ping_interval > day {
            problems.push("ws_ping_interval: must be at most 24h".to_owned());
        }
        if self.weight_limit_per_minute == 0 {
            problems.push("weight_limit_per_minute: must be greater than zero".to_owned());
        }
        if self.orders_per_10s == 0 {
            problems.push("orders_per_10s: must be greater than zero".to_owned());
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.symbols {
            let name = &s.symbol;
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                problems.push(format!(
                    "symbols.{name}: symbol must be non-empty uppercase ASCII"
                ));
            }
            if !seen.insert(name.clone()) {
                problems.push(format!("symbols.{name}: duplicate symbol"));
            }
            if s.base.is_empty() || s.quote.is_empty() || s.base == s.quote {
                problems.push(format!(
                    "symbols.{name}: base and quote must be distinct, non-empty assets"
                ));
            }
            for (field, v) in [
                ("start_price", s.start_price),
                ("tick_size", s.tick_size),
                ("step_size", s.step_size),
                ("min_qty", s.min_qty),
                ("max_qty", s.max_qty),
            ] {
                if v <= Decimal::ZERO {
                    problems.push(format!("symbols.{name}.{field}: must be greater than zero"));
                }
            }
            // Bounds keep every product of price and quantity far inside Decimal's range.
            if s.start_price > Decimal::from(1_000_000_000u64) {
                problems.push(format!(
                    "symbols.{name}.start_price: must be at most 1000000000"
                ));
            }
            if s.max_qty > Decimal::from(1_000_000_000_000u64) {
                problems.push(format!(
                    "symbols.{name}.max_qty: must be at most 1000000000000"
                ));
            }
            for (field, v) in [("tick_size", s.tick_size), ("step_size", s.step_size)] {
                if v.normalize().scale() > 8 {
                    problems.push(format!("symbols.{name}.{field}: at most 8 decimals"));
                }
            }
            if s.min_notional < Decimal::ZERO {
                problems.push(format!("symbols.{name}.min_notional: must not be negative"));
            }
            if s.min_qty > s.max_qty {
                problems.push(format!("symbols.{name}: min_qty is greater than max_qty"));
            }
            if s.tick_size > Decimal::ZERO
                && s.start_price > Decimal::ZERO
                && s.start_price / s.tick_size < Decimal::from(1000)
            {
                problems.push(format!("symbols.{name}: start_price must be at least 1000 ticks so the book stays positive"));
            }
        }
        let mut keys = std::collections::HashSet::new();
        for k in &self.api_keys {
            if k.api_key.is_empty() || !k.api_key.chars().all(|c| c.is_ascii_graphic()) {
                problems.push(
                    "api_keys: an api_key is empty or has non-printable characters".to_owned(),
                );
            }
            if !keys.insert(k.api_key.clone()) {
                problems.push(format!("api_keys.{}: duplicate api key", k.api_key));
            }
        }
        for (asset, amount) in &self.initial_balances {
            if *amount < Decimal::ZERO {
                problems.push(format!("initial_balances.{asset}: must not be negative"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SimError::InvalidConfig(problems.join("\n")))
        }
    }
}

/// One API key (one account) known to the simulator.
#[derive(Clone)]
pub struct SimApiKey {
    /// The value clients send in `X-MBX-APIKEY`.
    pub api_key: String,
    /// How requests signed with this key are verified.
    pub auth: SimKeyAuth,
}

impl std::fmt::Debug for SimApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimApiKey")
            .field("api_key", &self.api_key)
            .field("auth", &self.auth)
            .finish()
    }
}

impl std::fmt::Debug for SimKeyAuth {
    // Never print the HMAC secret; the public key is not secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hmac { .. } => f.write_str("Hmac { secret: <redacted> }"),
            Self::Ed25519 { public_key } => f
                .debug_struct("Ed25519")
                .field("public_key", &hex::encode(public_key))
                .finish(),
        }
    }
}

impl SimApiKey {
    /// The paper-trading key: `api_key` `"paper-key"`, HMAC secret `"paper-secret"`.
    #[must_use]
    pub fn paper() -> Self {
        Self::hmac("paper-key", "paper-secret")
    }

    /// An HMAC-SHA256 key.
    #[must_use]
    pub fn hmac(api_key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            api_key: api_key.into(),
            auth: SimKeyAuth::Hmac {
                secret: secret.into(),
            },
        }
    }
}

/// How a key's signatures are checked.
#[derive(Clone, PartialEq, Eq)]
pub enum SimKeyAuth {
    /// `signature` = lowercase or uppercase hex of HMAC-SHA256(secret, totalParams).
    Hmac {
        /// The shared secret, used as ASCII bytes.
        secret: String,
    },
    /// `signature` = base64 of the Ed25519 signature over totalParams (URL-encoded on the
    /// wire), the scheme binance.com documents for Ed25519 keys.
    Ed25519 {
        /// The raw 32-byte Ed25519 public key.
        public_key: [u8; 32],
    },
}
