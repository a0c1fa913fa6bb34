//! `COMPLIANCE_SETTINGS` and `POSITION_LIMITS`, the settings the gateways enforce before
//! an order is sent: the trading-day reset hour, its range, and that every problem is
//! reported at once.

use std::collections::BTreeMap;

use gekko_config::{ConfigErrors, GekkoConfig, VenueId, from_vars};
use rust_decimal_macros::dec;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn ok(pairs: &[(&str, &str)]) -> GekkoConfig {
    match from_vars(&vars(pairs)) {
        Ok(loaded) => loaded.config,
        Err(e) => panic!("expected valid config, got:\n{e}"),
    }
}

fn err(pairs: &[(&str, &str)]) -> ConfigErrors {
    match from_vars(&vars(pairs)) {
        Ok(loaded) => panic!("expected problems, got {:?}", loaded.config.compliance),
        Err(e) => e,
    }
}

#[test]
fn the_trading_day_starts_at_midnight_utc_by_default() {
    let c = ok(&[]);
    assert_eq!(c.compliance.daily_reset_hour, 0);
    assert!(c.compliance.trading_enabled);
}

#[test]
fn daily_reset_hour_takes_every_hour_of_the_day() {
    for hour in [0_u8, 7, 23] {
        let c = ok(&[(
            "COMPLIANCE_SETTINGS",
            &format!("max_daily_notional=2000000,daily_reset_hour={hour}"),
        )]);
        assert_eq!(c.compliance.daily_reset_hour, hour);
        assert_eq!(c.compliance.max_daily_notional, dec!(2000000));
    }
}

#[test]
fn a_reset_hour_outside_the_day_is_refused_with_its_range() {
    for bad in ["24", "-1", "noon", "7.5"] {
        let e = err(&[("COMPLIANCE_SETTINGS", &format!("daily_reset_hour={bad}"))]);
        assert!(e.mentions("COMPLIANCE_SETTINGS"), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("daily_reset_hour") && text.contains("23"),
            "{bad}: the problem names the key and the range: {text}"
        );
    }
}

#[test]
fn every_compliance_problem_is_reported_at_once() {
    let e = err(&[
        (
            "COMPLIANCE_SETTINGS",
            "daily_reset_hour=25,max_order_notional=0,trading_enabled=perhaps",
        ),
        ("POSITION_LIMITS", "BTC-USD=-1"),
    ]);
    let text = e.to_string();
    for needle in [
        "daily_reset_hour",
        "max_order_notional",
        "trading_enabled",
        "POSITION_LIMITS",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn position_limits_apply_per_venue_with_qualified_overrides() {
    let c = ok(&[
        ("SUPPORTED_TRADING_PAIRS", "BTC-USD,ETH-USD"),
        (
            "POSITION_LIMITS",
            "BTC-USD=2,binanceus:BTC-USD=1,ETH-USD=20",
        ),
    ]);
    let binance = c.position_limits_for(VenueId::BinanceUs);
    assert_eq!(binance["BTC-USD"], dec!(1));
    assert_eq!(binance["ETH-USD"], dec!(20));
    let coinbase = c.position_limits_for(VenueId::Coinbase);
    assert_eq!(coinbase["BTC-USD"], dec!(2));
    let e = err(&[
        ("SUPPORTED_TRADING_PAIRS", "BTC-USD"),
        ("POSITION_LIMITS", "ETH-USD=5"),
    ]);
    assert!(e.mentions("POSITION_LIMITS"), "{e}");
}
