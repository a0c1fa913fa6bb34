//! OANDA DateTimes: nanosecond RFC 3339 strings or UNIX seconds strings.
//!
//! The `Accept-Datetime-Format` request header chooses how every DateTime of an answer is
//! written (reference 3.2): `RFC3339` (the default) gives `2016-06-22T18:41:29.264030555Z`,
//! `UNIX` gives `"1466620889.264030555"`, a string with nine decimals. The simulator keeps
//! times as integer nanoseconds since the epoch and formats them per request, so one
//! stored transaction can be answered in either format. The crate has no calendar
//! dependency, so the civil-date conversion (Howard Hinnant's `days_from_civil` and its
//! inverse) is written out here; it is exact for every date after 1970.

/// Which DateTime format a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateFormat {
    /// `2016-06-22T18:41:29.264030555Z` (the default).
    #[default]
    Rfc3339,
    /// `1466620889.264030555`.
    Unix,
}

impl DateFormat {
    /// The format an `Accept-Datetime-Format` header value names; `None` for an unknown
    /// value (the venue answers 400 then).
    #[must_use]
    pub fn from_header(v: Option<&str>) -> Option<Self> {
        match v.map(str::trim) {
            None => Some(Self::Rfc3339),
            Some(s) if s.eq_ignore_ascii_case("RFC3339") => Some(Self::Rfc3339),
            Some(s) if s.eq_ignore_ascii_case("UNIX") => Some(Self::Unix),
            Some(_) => None,
        }
    }

    /// `ns` (since the epoch) written in this format.
    #[must_use]
    pub fn format(self, ns: i128) -> String {
        match self {
            Self::Rfc3339 => rfc3339(ns),
            Self::Unix => {
                let secs = ns.div_euclid(1_000_000_000);
                let frac = ns.rem_euclid(1_000_000_000);
                format!("{secs}.{frac:09}")
            }
        }
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `ns` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
#[must_use]
pub fn rfc3339(ns: i128) -> String {
    let secs = i64::try_from(ns.div_euclid(1_000_000_000)).unwrap_or(0);
    let frac = ns.rem_euclid(1_000_000_000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses a DateTime in either format (a client may send either, whatever its header
/// says): RFC 3339 with `Z` or a `±HH:MM` offset and up to nine decimals, or UNIX
/// seconds with up to nine decimals. `None` when it is neither.
#[must_use]
pub fn parse(s: &str) -> Option<i128> {
    let s = s.trim();
    if !s.contains('T') {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let secs: i64 = int.parse().ok()?;
        if !(0..=253_402_300_799).contains(&secs) {
            return None;
        }
        return Some(i128::from(secs) * 1_000_000_000 + frac_ns(frac)?);
    }
    let (date, time) = s.split_once('T')?;
    let mut dp = date.splitn(3, '-');
    let y: i64 = dp.next()?.parse().ok()?;
    let mo: i64 = dp.next()?.parse().ok()?;
    let d: i64 = dp.next()?.parse().ok()?;
    // Years past 9999 would overflow the day arithmetic; no DateTime needs them.
    if !(1..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let (clock, offset_s) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (c, off) = time.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off.get(1..)?.split_once(':')?;
        (c, sign * offset_s(oh, om)?)
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut tp = hms.splitn(3, ':');
    let h: i64 = tp.next()?.parse().ok()?;
    let mi: i64 = tp.next()?.parse().ok()?;
    let se: i64 = tp.next()?.parse().ok()?;
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset_s;
    Some(i128::from(secs) * 1_000_000_000 + frac_ns(frac)?)
}

/// `HH`, `MM` of a UTC offset in seconds; `None` past 23:59.
fn offset_s(h: &str, m: &str) -> Option<i64> {
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=23).contains(&h) && (0..=59).contains(&m)).then_some(h * 3600 + m * 60)
}

fn frac_ns(frac: &str) -> Option<i128> {
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.is_empty() {
        return Some(0);
    }
    let v: i128 = frac.parse().ok()?;
    Some(v * 10i128.pow(9 - u32::try_from(frac.len()).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_round_trip() {
        let ns = 1_466_620_889_264_030_555_i128;
        assert_eq!(rfc3339(ns), "2016-06-22T18:41:29.264030555Z");
        assert_eq!(DateFormat::Unix.format(ns), "1466620889.264030555");
        assert_eq!(parse("2016-06-22T18:41:29.264030555Z"), Some(ns));
        assert_eq!(parse("1466620889.264030555"), Some(ns));
        assert_eq!(parse("2016-06-22T20:41:29.264030555+02:00"), Some(ns));
        assert_eq!(parse("2016-06-22T18:41:29Z"), Some(ns - 264_030_555));
        assert_eq!(parse("nonsense"), None);
        assert_eq!(parse("99999999999999-01-01T00:00:00Z"), None);
        assert_eq!(parse("2016-01-01T00:00:00+99999999999999:00"), None);
        assert_eq!(parse("-5"), None);
        assert_eq!(parse("2016-13-22T18:41:29Z"), None);
        assert_eq!(
            DateFormat::from_header(Some("unix")),
            Some(DateFormat::Unix)
        );
        assert_eq!(DateFormat::from_header(None), Some(DateFormat::Rfc3339));
        assert_eq!(DateFormat::from_header(Some("ISO")), None);
    }
}
