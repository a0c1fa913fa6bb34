//! Decimal strings on the hot path: Binance.US sends every price and quantity as a JSON
//! string such as `"25.35190000"`, and parsing them is most of the cost of a typed frame.
//!
//! [`parse`] reads the plain shape (`-`? digits, optionally `.` digits, at most 19 digits
//! in all, so the mantissa fits a `u64`) in one loop straight into the [`Decimal`]'s
//! parts, keeping the scale as written (`"0.10"` has scale 2), exactly as
//! `Decimal::from_str` would. Anything else (more digits, exponents, a leading `+` or
//! `.`, underscores, a negative zero, garbage) goes to `rust_decimal`'s own parser
//! (`from_str`, then `from_scientific`), so the accepted language and every value are
//! `rust_decimal`'s; a unit test compares the two on generated strings.
//!
//! [`deserialize`] is the serde entry point (`#[serde(deserialize_with = ..)]`): strings
//! only, so a price sent as a JSON number is refused rather than rounded through `f64`.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserializer;
use serde::de::{self, Unexpected, Visitor};

/// The most digits whose value always fits a `u64` (10^19 - 1 < 2^64).
const MAX_FAST_DIGITS: u32 = 19;

/// The plain shape, or `None`.
fn parse_plain(s: &str) -> Option<Decimal> {
    let b = s.as_bytes();
    let (negative, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    let mut mantissa: u64 = 0;
    let mut count: u32 = 0;
    let mut scale: Option<u32> = None;
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                count += 1;
                if count > MAX_FAST_DIGITS {
                    return None;
                }
                mantissa = mantissa * 10 + u64::from(c - b'0');
            }
            // One point, with digits on both sides.
            b'.' if scale.is_none() && i > 0 && i + 1 < digits.len() => {
                scale = Some(u32::try_from(digits.len() - i - 1).ok()?);
            }
            _ => return None,
        }
    }
    if count == 0 || (negative && mantissa == 0) {
        return None;
    }
    // `mantissa` < 10^19 < 2^64: the low and middle words hold it all.
    let lo = u32::try_from(mantissa & u64::from(u32::MAX)).ok()?;
    let mid = u32::try_from(mantissa >> 32).ok()?;
    Some(Decimal::from_parts(
        lo,
        mid,
        0,
        negative,
        scale.unwrap_or(0),
    ))
}

/// Parses a decimal string as `rust_decimal` does, the plain shape without its detour.
///
/// # Errors
/// The string is not a decimal `rust_decimal` reads (`from_str` or `from_scientific`).
pub fn parse(s: &str) -> Result<Decimal, rust_decimal::Error> {
    match parse_plain(s) {
        Some(d) => Ok(d),
        None => Decimal::from_str(s).or_else(|_| Decimal::from_scientific(s)),
    }
}

/// A decimal from a JSON string, for `#[serde(deserialize_with = ..)]`.
///
/// # Errors
/// Not a string ("invalid type"), or a string that is not a decimal ("invalid value",
/// naming the string).
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    d.deserialize_str(DecimalStr)
}

struct DecimalStr;

impl Visitor<'_> for DecimalStr {
    type Value = Decimal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // rust_decimal's own wording, so that errors read as they always have.
        f.write_str("a Decimal type representing a fixed-point number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        parse(v).map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn same(a: Decimal, b: Decimal) -> bool {
        a == b && a.scale() == b.scale() && a.is_sign_negative() == b.is_sign_negative()
    }

    #[test]
    fn plain_strings_take_the_fast_path() {
        for (s, mantissa, scale) in [
            ("25.35190000", 2_535_190_000_i64, 8),
            ("0.001", 1, 3),
            ("100", 100, 0),
            ("-31000.00", -3_100_000, 2),
            ("0", 0, 0),
            ("0.00000000", 0, 8),
            (
                "9999999999999999999",
                9_999_999_999_999_999_999_i128 as i64,
                0,
            ),
        ] {
            let d = parse_plain(s).unwrap_or_else(|| panic!("{s}: not plain"));
            assert!(same(d, Decimal::from_str(s).unwrap()), "{s}");
            if s != "9999999999999999999" {
                assert!(same(d, Decimal::new(mantissa, scale)), "{s}");
            }
        }
    }

    #[test]
    fn everything_else_is_rust_decimals() {
        for s in [
            "",
            "-",
            ".",
            "1.",
            ".5",
            "+1",
            "1e5",
            "1E-3",
            "1_000",
            "1.2.3",
            "--1",
            "-0",
            "-0.0",
            " 1",
            "1 ",
            "0x10",
            "12345678901234567890",
            "1.23456789012345678901234567890",
        ] {
            assert_eq!(parse_plain(s), None, "{s:?} is not the plain shape");
            match (
                parse(s),
                Decimal::from_str(s).or_else(|_| Decimal::from_scientific(s)),
            ) {
                (Ok(a), Ok(b)) => assert!(same(a, b), "{s:?}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{s:?}: {a:?} vs {b:?}"),
            }
        }
    }

    #[test]
    fn only_strings_deserialize() {
        let d: Decimal = deserialize(&mut serde_json::Deserializer::from_str(r#""1.50""#)).unwrap();
        assert!(same(d, Decimal::new(150, 2)));
        let e = deserialize(&mut serde_json::Deserializer::from_str("1.5")).unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        let e = deserialize(&mut serde_json::Deserializer::from_str(r#""x1""#)).unwrap_err();
        assert!(
            e.to_string().contains(r#"invalid value: string "x1""#),
            "{e}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        #[test]
        fn agrees_with_rust_decimal(s in r"-?[0-9]{0,21}(\.[0-9]{0,21})?|[-+.0-9eE_]{0,12}") {
            let ours = parse(&s);
            let theirs = Decimal::from_str(&s).or_else(|_| Decimal::from_scientific(&s));
            match (ours, theirs) {
                (Ok(a), Ok(b)) => prop_assert!(same(a, b), "{:?}: {:?} vs {:?}", s, a, b),
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "{:?}: {:?} vs {:?}", s, a, b),
            }
        }
    }
}
