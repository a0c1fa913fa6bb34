//! Configuration of the OANDA v20 simulator.
//!
//! One plain struct, [`SimConfig`], so a test starts from [`SimConfig::default`] and
//! overrides what it cares about. The defaults are a paper account: token
//! [`PAPER_TOKEN`], account [`PAPER_ACCOUNT_ID`] in USD with 100 000 USD, and four
//! instruments with OANDA's real precisions (`EUR_USD`, `GBP_USD` five decimals,
//! `USD_JPY` and `XAU_USD` three). What the reference marks as unconfirmed (the heartbeat
//! interval, the absence of rate-limit headers) is a field here, not a constant.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use rust_decimal::Decimal;

pub use crate::coinbase::TlsSource;
use crate::engine::SimSymbol;

/// The documented paper token (`Authorization: Bearer <PAPER_TOKEN>`).
pub const PAPER_TOKEN: &str = "paper-oanda-token";
/// The documented paper account id (`{site}-{division}-{user}-{account}`).
pub const PAPER_ACCOUNT_ID: &str = "101-001-0000000-001";

/// One instrument and the trading rules `/v3/accounts/{id}/instruments` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimInstrument {
    /// Wire name, `EUR_USD` (base and quote joined by `_`).
    pub name: String,
    /// `CURRENCY`, `METAL` or `CFD`.
    pub kind: String,
    /// `EUR/USD`.
    pub display_name: String,
    /// Location of the pip (`-4` for EUR_USD, `-2` for USD_JPY).
    pub pip_location: i32,
    /// Decimals of a price.
    pub display_precision: u32,
    /// Decimals of units (0: whole units).
    pub trade_units_precision: u32,
    /// Smallest order, in units.
    pub minimum_trade_size: Decimal,
    /// Largest order, in units.
    pub maximum_order_units: Decimal,
    /// Margin rate (0.02 = 50:1).
    pub margin_rate: Decimal,
    /// Mid price the seeded walk starts from.
    pub start_price: Decimal,
    /// The narrowest bid/ask spread the market quotes (about a pip on the majors).
    pub typical_spread: Decimal,
}

impl SimInstrument {
    fn fx(
        name: &str,
        pip: i32,
        precision: u32,
        (margin, start, spread): (Decimal, Decimal, Decimal),
    ) -> Self {
        Self {
            name: name.to_owned(),
            kind: if name.starts_with("XAU") {
                "METAL".to_owned()
            } else {
                "CURRENCY".to_owned()
            },
            display_name: name.replace('_', "/"),
            pip_location: pip,
            display_precision: precision,
            trade_units_precision: 0,
            minimum_trade_size: Decimal::ONE,
            maximum_order_units: Decimal::from(100_000_000),
            margin_rate: margin,
            start_price: start,
            typical_spread: spread,
        }
    }

    /// Base currency (`EUR` of `EUR_USD`).
    #[must_use]
    pub fn base(&self) -> &str {
        self.name.split_once('_').map_or(&*self.name, |(b, _)| b)
    }

    /// Quote currency (`USD` of `EUR_USD`).
    #[must_use]
    pub fn quote(&self) -> &str {
        self.name.split_once('_').map_or("", |(_, q)| q)
    }

    /// The engine's view: a price grid of one display digit, a unit grid of one unit
    /// precision digit, no minimum notional.
    pub(crate) fn engine_symbol(&self) -> SimSymbol {
        let step = Decimal::new(1, self.trade_units_precision);
        SimSymbol {
            symbol: self.name.clone(),
            base: self.base().to_owned(),
            quote: self.quote().to_owned(),
            start_price: self.start_price,
            tick_size: Decimal::new(1, self.display_precision),
            step_size: step,
            min_qty: self.minimum_trade_size.max(step),
            max_qty: self.maximum_order_units,
            min_notional: Decimal::ZERO,
        }
    }
}

/// The default instruments: EUR_USD, USD_JPY, GBP_USD, XAU_USD.
#[must_use]
pub fn default_instruments() -> Vec<SimInstrument> {
    // Spreads as the practice venue usually quotes them: EUR_USD about 1.2 pips,
    // USD_JPY 1.4, GBP_USD 1.6, gold 35 cents.
    vec![
        SimInstrument::fx(
            "EUR_USD",
            -4,
            5,
            (
                Decimal::new(2, 2),
                Decimal::new(108_500, 5),
                Decimal::new(12, 5),
            ),
        ),
        SimInstrument::fx(
            "USD_JPY",
            -2,
            3,
            (
                Decimal::new(4, 2),
                Decimal::new(150_000, 3),
                Decimal::new(14, 3),
            ),
        ),
        SimInstrument::fx(
            "GBP_USD",
            -4,
            5,
            (
                Decimal::new(5, 2),
                Decimal::new(127_000, 5),
                Decimal::new(16, 5),
            ),
        ),
        SimInstrument::fx(
            "XAU_USD",
            -2,
            3,
            (
                Decimal::new(5, 2),
                Decimal::new(2_350_000, 3),
                Decimal::new(350, 3),
            ),
        ),
    ]
}

/// How the simulator is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// REST listener (the venue's `api-fx*` host); `127.0.0.1:0` picks a free port.
    pub rest_addr: SocketAddr,
    /// Streaming listener (the venue's `stream-fx*` host: pricing and transaction
    /// streams only).
    pub stream_addr: SocketAddr,
    /// The one accepted bearer token.
    pub token: String,
    /// The one account (`NNN-NNN-NNNNNNN-NNN`).
    pub account_id: String,
    /// Account currency (every P/L and margin figure is converted into it).
    pub currency: String,
    /// Starting balance in the account currency.
    pub initial_balance: Decimal,
    /// Seed of the market generator.
    pub seed: u64,
    /// Tradable instruments.
    pub instruments: Vec<SimInstrument>,
    /// Serve TLS (`https`) with this certificate source; `None` is plain HTTP (default,
    /// as the `v20` SDK's `ssl=False`).
    pub tls: Option<TlsSource>,
    /// How often the market moves (default 100 ms; the stream still sends at most one
    /// price per instrument per [`SimConfig::price_window`]).
    pub tick_interval: Duration,
    /// The stream's price window (default 250 ms: at most 4 prices/s/instrument).
    pub price_window: Duration,
    /// Heartbeat interval of both streams (default 5 s, reference 3.7 \[U\]).
    pub heartbeat_interval: Duration,
    /// REST requests per second before 429 (default 120).
    pub rest_rate_per_s: u32,
    /// Streams open at once before new ones are refused (default 20).
    pub max_streams: u32,
    /// Price levels per side in a price (default 3).
    pub price_levels: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            rest_addr: any,
            stream_addr: any,
            token: PAPER_TOKEN.to_owned(),
            account_id: PAPER_ACCOUNT_ID.to_owned(),
            currency: "USD".to_owned(),
            initial_balance: Decimal::from(100_000),
            seed: 42,
            instruments: default_instruments(),
            tls: None,
            tick_interval: Duration::from_millis(100),
            price_window: Duration::from_millis(250),
            heartbeat_interval: Duration::from_secs(5),
            rest_rate_per_s: 120,
            max_streams: 20,
            price_levels: 3,
        }
    }
}

/// `true` for `NNN-NNN-NNNNNNN-NNN` (digits only, groups 3-3-7-3).
#[must_use]
pub fn is_account_id(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 4
        && groups
            .iter()
            .zip([3, 3, 7, 3])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_digit()))
}

impl SimConfig {
    /// Checks the config; every problem is listed.
    ///
    /// # Errors
    /// `InvalidInput` naming each problem.
    pub fn validate(&self) -> std::io::Result<()> {
        let mut p = Vec::new();
        if self.token.trim().is_empty() {
            p.push("token is empty".to_owned());
        }
        if !is_account_id(&self.account_id) {
            p.push(format!(
                "account id {:?} is not NNN-NNN-NNNNNNN-NNN",
                self.account_id
            ));
        }
        if self.instruments.is_empty() {
            p.push("no instruments".to_owned());
        }
        for i in &self.instruments {
            if i.quote().is_empty() || i.start_price <= Decimal::ZERO {
                p.push(format!(
                    "instrument {:?} is not BASE_QUOTE with a price",
                    i.name
                ));
            }
        }
        if self.tick_interval.is_zero() || self.price_window.is_zero() {
            p.push("tick interval and price window must be positive".to_owned());
        }
        if self.heartbeat_interval.is_zero() {
            p.push("heartbeat interval must be positive".to_owned());
        }
        if self.price_levels == 0 {
            p.push("price levels must be at least 1".to_owned());
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("sim-oanda: invalid config: {}", p.join("; ")),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ids_are_checked() {
        SimConfig::default().validate().expect("valid");
        assert!(is_account_id(PAPER_ACCOUNT_ID));
        assert!(!is_account_id("101-001-000000-001"));
        assert!(!is_account_id("101-001-000000a-001"));
        let bad = SimConfig {
            token: String::new(),
            account_id: "x".into(),
            ..SimConfig::default()
        };
        let e = bad.validate().expect_err("invalid").to_string();
        assert!(e.contains("token") && e.contains("account id"), "{e}");
        let i = &default_instruments()[1];
        assert_eq!((i.base(), i.quote()), ("USD", "JPY"));
        assert_eq!(i.engine_symbol().tick_size, Decimal::new(1, 3));
    }
}
