//! OANDA DateTimes to epoch nanoseconds and milliseconds, without a date-time crate.
//!
//! gekko asks for `Accept-Datetime-Format: RFC3339`, which gives nanosecond strings
//! (`2016-06-22T18:41:29.264030555Z`); the `UNIX` form (`"1466620889.264030555"`, a string
//! of seconds) is read as well, so an answer in either format parses.

use gekko_core::calendar::days_from_civil;

/// Epoch nanoseconds of an OANDA DateTime: RFC 3339 (`Z` or `±hh:mm`, up to 9 fraction
/// digits, more are truncated) or UNIX seconds with a fraction. `None` for anything else
/// or out of the `i64` range. Never panics.
#[must_use]
pub fn parse_time_ns(s: &str) -> Option<i64> {
    if s.len() >= 20 && s.as_bytes().get(4) == Some(&b'-') {
        parse_rfc3339_ns(s)
    } else {
        parse_unix_ns(s)
    }
}

/// Epoch milliseconds of an OANDA DateTime (see [`parse_time_ns`]), truncated.
#[must_use]
pub fn parse_time_ms(s: &str) -> Option<i64> {
    parse_time_ns(s).map(|ns| ns.div_euclid(1_000_000))
}

/// Nanoseconds of up to 9 fraction digits (more are ignored); `None` when there are none
/// or one is not a digit.
fn fraction_ns(frac: &str) -> Option<i64> {
    if frac.is_empty() || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(
        frac.bytes()
            .chain(std::iter::repeat(b'0'))
            .take(9)
            .fold(0_i64, |acc, c| acc * 10 + i64::from(c - b'0')),
    )
}

fn parse_unix_ns(s: &str) -> Option<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if secs.is_empty() || secs.len() > 12 || !secs.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let ns = if frac.is_empty() && !s.contains('.') {
        0
    } else {
        fraction_ns(frac)?
    };
    secs.parse::<i64>()
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(ns)
}

fn parse_rfc3339_ns(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse::<i64>().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut ns = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        ns = fraction_ns(frac.get(..n)?)?;
        rest = frac.get(n..)?;
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            let sign = match rb.first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rb.len() != 6 || rb[3] != b':' {
                return None;
            }
            let oh = num_str(rest.get(1..3)?)?;
            let om = num_str(rest.get(4..6)?)?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset_s;
    secs.checked_mul(1_000_000_000)?.checked_add(ns)
}

fn num_str(s: &str) -> Option<i64> {
    if s.bytes().all(|c| c.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_formats_to_the_nanosecond() {
        assert_eq!(
            parse_time_ns("2023-11-14T22:13:20.123456789Z"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20.123456789Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_time_ns("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(
            parse_time_ns("1700000000.123456789"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(parse_time_ms("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time_ms("1700000000.1"), Some(1_700_000_000_100));
        for bad in [
            "",
            "x",
            "1700000000.",
            "17000x0000",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0100",
            "2023-11-14T22:13:20+0a:00",
            "2023-11-14T22:13:20.12é",
            "99999999999999999999.1",
        ] {
            assert_eq!(parse_time_ns(bad), None, "{bad}");
        }
    }
}
