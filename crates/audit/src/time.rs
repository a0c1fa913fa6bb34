//! RFC 3339 timestamps and `--since` values, without a calendar dependency.
//!
//! The audit trail only needs UTC instants in milliseconds: formatting for exports and
//! parsing `--since`. Both are a few lines of proleptic-Gregorian arithmetic (Howard
//! Hinnant's `days_from_civil`, in `gekko_core::calendar`), cheaper to own than a
//! date-time crate.

use gekko_core::calendar::{civil_from_days, days_from_civil};

/// `2026-12-01T11:52:33.123Z`.
#[must_use]
pub fn format_rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Parses RFC 3339 (`2026-12-01T11:52:33Z`, fractional seconds and `±HH:MM` offsets
/// allowed) into ms since the epoch.
///
/// # Errors
/// A message saying what part is wrong.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}` is not an RFC 3339 time such as 2026-12-01T00:00:00Z");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(r).ok_or_else(bad)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut frac_ms = 0i64;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let mut scaled = f[..digits.min(3)].to_owned();
        while scaled.len() < 3 {
            scaled.push('0');
        }
        frac_ms = scaled.parse().map_err(|_| bad())?;
        rest = &f[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let hh: i64 = o[1..3].parse().map_err(|_| bad())?;
            let mm: i64 = o[4..6].parse().map_err(|_| bad())?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (hh * 60 + mm)
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Ok(secs * 1000 + frac_ms)
}

/// Parses a `--since` value: RFC 3339, whole milliseconds since the epoch, or a duration
/// before `now_ms` (`90s`, `15m`, `24h`, `7d`).
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_since(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| format!("`{s}` is too large for milliseconds since the epoch"));
    }
    let unit = s.char_indices().last();
    if let Some((i, c)) = unit {
        let n = &s[..i];
        let mult = match c {
            's' => Some(1_000),
            'm' => Some(60_000),
            'h' => Some(3_600_000),
            'd' => Some(86_400_000),
            _ => None,
        };
        if let Some(mult) = mult
            && !n.is_empty()
            && n.bytes().all(|c| c.is_ascii_digit())
        {
            let n: i64 = n
                .parse()
                .map_err(|_| format!("`{s}` is too long a duration"))?;
            return n
                .checked_mul(mult)
                .map(|d| now_ms - d)
                .ok_or_else(|| format!("`{s}` is too long a duration"));
        }
    }
    parse_rfc3339(s).map_err(|_| {
        format!("`{s}` is not a time: use RFC 3339 (2026-12-01T00:00:00Z), milliseconds since the epoch, or a duration such as 24h or 7d")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        for ms in [0, 1_764_590_000_123, 951_782_400_000, -1] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Ok(ms), "{ms}");
        }
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            parse_rfc3339("2000-02-29T12:00:00+01:30"),
            Ok(951_825_600_000 - 90 * 60_000)
        );
        assert_eq!(
            parse_rfc3339("2026-12-01T11:52:33.5Z"),
            Ok(1_796_125_953_500)
        );
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-12-01",
            "2026-12-01T00:00:00",
            "x026-12-01T00:00:00Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn since_forms() {
        let now = 10_000_000_000;
        assert_eq!(parse_since("24h", now), Ok(now - 86_400_000));
        assert_eq!(parse_since("7d", now), Ok(now - 7 * 86_400_000));
        assert_eq!(parse_since("90s", now), Ok(now - 90_000));
        assert_eq!(parse_since("1700000000000", now), Ok(1_700_000_000_000));
        assert_eq!(parse_since("1970-01-01T00:00:01Z", now), Ok(1000));
        let err = parse_since("yesterday", now).unwrap_err();
        assert!(err.contains("RFC 3339") && err.contains("24h"), "{err}");
    }
}
