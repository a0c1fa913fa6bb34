//! Request parameters: query string and form body merged the way the venue merges them.
//!
//! Binance.US accepts parameters in the query string, in an
//! `application/x-www-form-urlencoded` body, or split across both; when a name appears in
//! both, the query-string value wins. A name repeated inside one part is an error (-1101).
//! Typed getters turn malformed values into the venue's -1100/-1102 answers, so handlers
//! never see a half-parsed number and nothing on this path can panic.

use std::collections::HashMap;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::error::ApiError;

/// Merged request parameters (decoded).
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    map: HashMap<String, String>,
}

fn parse_part(part: &str) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(part.as_bytes()) {
        if out.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(ApiError::duplicate_param());
        }
    }
    Ok(out)
}

impl Params {
    /// Merges the raw query string and raw body; query values win.
    ///
    /// # Errors
    /// -1101 when a name is repeated within the query or within the body.
    pub(crate) fn parse(raw_query: &str, raw_body: &str) -> Result<Self, ApiError> {
        let mut map = parse_part(raw_body)?;
        map.extend(parse_part(raw_query)?);
        Ok(Self { map })
    }

    /// The raw value of `name`, if sent (possibly empty).
    #[must_use]
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// The value of `name`, treating an empty value as absent.
    #[must_use]
    pub(crate) fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// A mandatory string parameter.
    ///
    /// # Errors
    /// -1102 when missing or empty.
    pub(crate) fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.non_empty(name)
            .ok_or_else(|| ApiError::mandatory(name))
    }

    /// An optional non-negative decimal (`^[0-9]{1,20}(\.[0-9]{1,20})?$`).
    ///
    /// # Errors
    /// -1100 when present but malformed.
    pub(crate) fn decimal(&self, name: &str) -> Result<Option<Decimal>, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        parse_decimal(raw)
            .map(Some)
            .ok_or_else(|| ApiError::illegal_decimal(name))
    }

    /// A mandatory decimal.
    ///
    /// # Errors
    /// -1102 when missing or empty, -1100 when malformed.
    pub(crate) fn required_decimal(&self, name: &str) -> Result<Decimal, ApiError> {
        let raw = self.required(name)?;
        parse_decimal(raw).ok_or_else(|| ApiError::illegal_decimal(name))
    }

    /// An optional unsigned integer.
    ///
    /// # Errors
    /// -1100 when present but not a plain unsigned integer.
    pub(crate) fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        parse_u64(raw)
            .map(Some)
            .ok_or_else(|| ApiError::illegal_integer(name))
    }

    /// A mandatory unsigned integer.
    ///
    /// # Errors
    /// -1102 when missing or empty, -1100 when malformed.
    pub(crate) fn required_u64(&self, name: &str) -> Result<u64, ApiError> {
        let raw = self.required(name)?;
        parse_u64(raw).ok_or_else(|| ApiError::illegal_integer(name))
    }
}

/// Strict venue decimal syntax: digits, optionally a dot and more digits; no sign,
/// exponent or whitespace; at most 20 digits on each side.
#[must_use]
pub(crate) fn parse_decimal(raw: &str) -> Option<Decimal> {
    let (int, frac) = match raw.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (raw, None),
    };
    let digits_ok =
        |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_ok(int) || !frac.is_none_or(digits_ok) {
        return None;
    }
    Decimal::from_str(raw).ok()
}

fn parse_u64(raw: &str) -> Option<u64> {
    if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_wins_over_body() {
        let p = Params::parse("symbol=BTCUSD", "symbol=ETHUSD&side=BUY").expect("parse");
        assert_eq!(p.get("symbol"), Some("BTCUSD"));
        assert_eq!(p.get("side"), Some("BUY"));
    }

    #[test]
    fn duplicates_within_a_part_are_rejected() {
        let e = Params::parse("a=1&a=2", "").expect_err("dup");
        assert_eq!(e.code, -1101);
    }

    #[test]
    fn decimals_are_strict() {
        for bad in ["", "-1", "1e5", " 1", "1.", ".5", "NaN", "1.2.3", "１"] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
        assert_eq!(parse_decimal("0.10000000"), Some(Decimal::new(1, 1)));
        let p = Params::parse("quantity=abc", "").expect("parse");
        assert_eq!(p.required_decimal("quantity").expect_err("bad").code, -1100);
        assert_eq!(
            p.required_decimal("price").expect_err("missing").code,
            -1102
        );
        let p = Params::parse("quantity=", "").expect("parse");
        assert_eq!(
            p.required_decimal("quantity").expect_err("empty").code,
            -1102
        );
    }
}
