//! Small parsers shared by every variable: durations, booleans, bounded numbers, and the
//! `key=value,key=value` shapes most variables use.
//!
//! Each variable is described by *which* helpers it calls, not by hand-written splitting,
//! so every variable reports malformed entries, duplicate keys and unknown keys the same
//! way. Value parsers return `Err(String)` describing what is wrong with the value; the
//! caller pairs that with the variable name and the expected form to make a
//! [`ConfigProblem`](crate::ConfigProblem).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::problem::Problems;
use crate::vars::Value;

/// The form every duration takes, for "expected" texts.
pub(crate) const DURATION_FORM: &str = "a duration such as 250ms, 5s, 2m, 1h or 1d";

/// Parses a duration written as a whole number and a unit: `250ms`, `5s`, `2m`, `1h`, `1d`.
///
/// # Errors
/// Returns a description of the problem if the number is missing or not a whole number, the
/// unit is missing or unknown, or the result overflows.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!("`{s}` does not start with a whole number"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{digits}` is too large"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => return Err(format!("`{s}` has no unit")),
        _ => return Err(format!("`{unit}` in `{s}` is not a unit (ms, s, m, h, d)")),
    };
    n.checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Writes a duration in the largest unit that divides it exactly, the inverse of
/// [`parse_duration`]: `90s` becomes `90s`, `120s` becomes `2m`.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{d:?}");
    }
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Parses `true`/`false`, `1`/`0`, `yes`/`no` (case-insensitive).
///
/// # Errors
/// Returns a description of the problem for anything else.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("`{s}` is not a boolean")),
    }
}

/// The "expected" text for [`parse_bool`].
pub(crate) const BOOL_FORM: &str = "true, false, 1, 0, yes or no";

/// Parses a whole number inside `range`.
pub(crate) fn int_in<T>(s: &str, range: &RangeInclusive<T>) -> Result<T, String>
where
    T: FromStr + PartialOrd + Display,
{
    let n: T = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is out of range"))
    }
}

/// The "expected" text for [`int_in`].
pub(crate) fn int_form<T: Display>(range: &RangeInclusive<T>) -> String {
    format!("a whole number from {} to {}", range.start(), range.end())
}

/// Parses a duration no shorter than `min` and, if given, no longer than `max`.
pub(crate) fn duration_in(
    s: &str,
    min: Duration,
    max: Option<Duration>,
) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < min {
        return Err(format!(
            "{} is shorter than {}",
            format_duration(d),
            format_duration(min)
        ));
    }
    match max {
        Some(max) if d > max => Err(format!(
            "{} is longer than {}",
            format_duration(d),
            format_duration(max)
        )),
        _ => Ok(d),
    }
}

/// The "expected" text for [`duration_in`].
pub(crate) fn duration_form(min: Duration, max: Option<Duration>) -> String {
    match max {
        Some(max) => format!(
            "{DURATION_FORM}, from {} to {}",
            format_duration(min),
            format_duration(max)
        ),
        None if min.is_zero() => DURATION_FORM.to_owned(),
        None => format!("{DURATION_FORM}, at least {}", format_duration(min)),
    }
}

/// Parses a decimal number (no exponent, no floats anywhere on the way).
pub(crate) fn decimal(s: &str) -> Result<Decimal, String> {
    Decimal::from_str(s.trim()).map_err(|_| format!("`{s}` is not a decimal number"))
}

/// Parses a decimal number strictly greater than zero.
pub(crate) fn positive_decimal(s: &str) -> Result<Decimal, String> {
    let d = decimal(s)?;
    if d > Decimal::ZERO {
        Ok(d)
    } else {
        Err(format!("{d} is not greater than zero"))
    }
}

/// Accepts an `http://` or `https://` URL with a host part.
pub(crate) fn http_url(s: &str) -> Result<String, String> {
    has_scheme(s, &["http://", "https://"])
}

/// Accepts `s` if it starts with one of `schemes` and has something after it.
///
/// Only the scheme is echoed in errors: a URL may carry a password.
pub(crate) fn has_scheme(s: &str, schemes: &[&str]) -> Result<String, String> {
    match schemes.iter().find(|scheme| s.starts_with(**scheme)) {
        Some(scheme) if s.len() > scheme.len() => Ok(s.to_owned()),
        Some(scheme) => Err(format!("`{scheme}` is not followed by an address")),
        None => {
            let shown = s
                .split_once("://")
                .map_or("no scheme", |(scheme, _)| scheme);
            Err(format!("the URL scheme is `{shown}`"))
        }
    }
}

/// Accepts a name made of ASCII letters, digits, `_` and `-` (model names, client names).
pub(crate) fn ident(s: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}` is not a name"))
    }
}

/// The "expected" text for [`ident`].
pub(crate) const IDENT_FORM: &str = "a name of letters, digits, `_` and `-`";

/// Splits a list on `sep`, trimming items and skipping empty ones (so a trailing separator
/// is harmless).
pub(crate) fn split_list(raw: &str, sep: char) -> impl Iterator<Item = &str> {
    raw.split(sep)
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// Parses every item of a list, returning each item's own result so the caller can report
/// them one by one. Duplicates are reported as errors too.
pub(crate) fn parse_items<T>(
    raw: &str,
    sep: char,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Vec<Result<T, String>>
where
    T: PartialEq + Display,
{
    let mut out: Vec<Result<T, String>> = Vec::new();
    for item in split_list(raw, sep) {
        let result = parse(item).and_then(|v| {
            if out
                .iter()
                .any(|seen| seen.as_ref().is_ok_and(|seen| *seen == v))
            {
                Err(format!("{v} is listed more than once"))
            } else {
                Ok(v)
            }
        });
        out.push(result);
    }
    out
}

/// Parses a list into one `Result`, joining every item's error with `; `. Used for lists
/// that sit inside a single key, where one problem line per key is the right grain.
pub(crate) fn parse_list<T>(
    raw: &str,
    sep: char,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String>
where
    T: PartialEq + Display,
{
    let (ok, errors): (Vec<_>, Vec<_>) = parse_items(raw, sep, parse)
        .into_iter()
        .partition(Result::is_ok);
    if errors.is_empty() {
        Ok(ok.into_iter().filter_map(Result::ok).collect())
    } else {
        Err(errors
            .into_iter()
            .filter_map(Result::err)
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// Splits `key=value,key=value` into entries, reporting entries without `=`, empty keys and
/// repeated keys. A value may itself contain `=` (only the first one splits).
///
/// With `sensitive`, a malformed entry is identified by position, never echoed, because it
/// may be a secret with a typo in front of it.
pub(crate) fn split_entries<'a>(
    var: &str,
    raw: &'a str,
    shape: &str,
    sensitive: bool,
    problems: &mut Problems,
) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&'a str, &'a str)> = Vec::new();
    for (i, entry) in split_list(raw, ',').enumerate() {
        let position = i + 1;
        let Some((key, value)) = entry.split_once('=') else {
            // A malformed entry may be a URL with a password in it.
            let what = if sensitive {
                format!("entry {position}")
            } else {
                format!("entry `{}`", crate::model::redact_url(entry))
            };
            problems.push(var, format!("{what} has no `=`"), shape);
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            problems.push(var, format!("entry {position} has an empty key"), shape);
        } else if out.iter().any(|(k, _)| *k == key) {
            problems.push(
                var,
                format!("key `{key}` is given more than once"),
                "each key at most once",
            );
        } else {
            out.push((key, value));
        }
    }
    out
}

/// How a `key=value` map variable is described in problems.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapForm {
    /// The whole variable's form, e.g. "comma-separated venue=url entries".
    pub entry: &'static str,
    /// What a key must be.
    pub key: &'static str,
    /// What a value must be.
    pub value: &'static str,
}

/// Parses a `key=value,...` variable whose keys are open-ended (venues, pairs, model names)
/// into a map. Bad entries are reported and left out; good entries are kept, so that
/// cross-field checks can still look at them.
pub(crate) fn parse_map<K: Ord, V>(
    value: Value<'_>,
    form: &MapForm,
    problems: &mut Problems,
    parse_key: impl Fn(&str) -> Result<K, String>,
    parse_value: impl Fn(&str) -> Result<V, String>,
) -> BTreeMap<K, V> {
    let mut out = BTreeMap::new();
    for (key, raw) in split_entries(value.name, value.raw, form.entry, false, problems) {
        let k = match parse_key(key) {
            Ok(k) => k,
            Err(e) => {
                problems.push(value.name, e, form.key);
                continue;
            }
        };
        match parse_value(raw) {
            Ok(v) => {
                out.insert(k, v);
            }
            Err(e) => problems.push(value.name, format!("{key}: {e}"), form.value),
        }
    }
    out
}

/// A variable made of a fixed set of keys, each optional, each with a default.
///
/// Unknown keys are reported when the section is opened; each known key is then read into
/// a slot that already holds its default, which keeps the defaults in one place (the
/// `Default` impls).
pub(crate) struct Section<'a, 'p> {
    var: &'a str,
    entries: Vec<(&'a str, &'a str)>,
    problems: &'p mut Problems,
}

impl<'a, 'p> Section<'a, 'p> {
    /// Opens `value` (or an empty section when the variable is unset) with the given keys.
    /// `name` is used for problems when the variable is unset.
    pub(crate) fn open(
        name: &'a str,
        value: Option<Value<'a>>,
        keys: &[&str],
        sensitive: bool,
        problems: &'p mut Problems,
    ) -> Self {
        let Some(value) = value else {
            return Self {
                var: name,
                entries: Vec::new(),
                problems,
            };
        };
        let shape = format!(
            "comma-separated key=value entries with keys {}",
            keys.join(", ")
        );
        let mut entries = split_entries(value.name, value.raw, &shape, sensitive, problems);
        entries.retain(|(key, _)| {
            let known = keys.contains(key);
            if !known {
                problems.push(
                    value.name,
                    format!("unknown key `{key}`"),
                    format!("one of {}", keys.join(", ")),
                );
            }
            known
        });
        Self {
            var: value.name,
            entries,
            problems,
        }
    }

    /// Records a problem that involves more than one key of this section.
    pub(crate) fn problem(&mut self, problem: impl Into<String>, expected: impl Into<String>) {
        self.problems.push(self.var, problem, expected);
    }

    /// Whether the variable names no known key at all (unset, or only unknown keys).
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the variable names `key` (with any value, valid or not).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| *k == key)
    }

    /// Reads `key` into `slot` with `parse`. Leaves the default in place when the key is
    /// absent. Returns `false` (after recording a problem) when the value is invalid, so
    /// callers can skip checks that depend on it.
    pub(crate) fn set<T>(
        &mut self,
        key: &str,
        slot: &mut T,
        expected: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> bool {
        let Some(&(_, raw)) = self.entries.iter().find(|(k, _)| *k == key) else {
            return true;
        };
        match parse(raw) {
            Ok(v) => {
                *slot = v;
                true
            }
            Err(e) => {
                self.problems
                    .push(self.var, format!("{key}: {e}"), expected);
                false
            }
        }
    }

    /// [`Section::set`] for a whole number within `range`.
    pub(crate) fn int<T>(&mut self, key: &str, slot: &mut T, range: &RangeInclusive<T>) -> bool
    where
        T: FromStr + PartialOrd + Display,
    {
        self.set(key, slot, &int_form(range), |v| int_in(v, range))
    }

    /// [`Section::set`] for a duration of at least `min` and at most `max`.
    pub(crate) fn duration(
        &mut self,
        key: &str,
        slot: &mut Duration,
        min: Duration,
        max: Option<Duration>,
    ) -> bool {
        self.set(key, slot, &duration_form(min, max), |v| {
            duration_in(v, min, max)
        })
    }

    /// [`Section::set`] for a boolean.
    pub(crate) fn bool(&mut self, key: &str, slot: &mut bool) -> bool {
        self.set(key, slot, BOOL_FORM, parse_bool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_mins(2)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_hours(1)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_hours(24)));
        for bad in [
            "",
            "s",
            "5",
            "5x",
            "-1s",
            "1.5s",
            "99999999999999999999d",
            "9999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} should not parse");
        }
        for text in ["250ms", "5s", "2m", "1h", "1d", "0s", "1500ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn bools_parse() {
        for (text, want) in [
            ("true", true),
            ("YES", true),
            ("1", true),
            ("no", false),
            ("0", false),
        ] {
            assert_eq!(parse_bool(text), Ok(want));
        }
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn bounded_values() {
        assert_eq!(int_in::<u32>("5", &(1..=10)), Ok(5));
        assert!(int_in::<u32>("0", &(1..=10)).is_err());
        assert!(int_in::<u32>("x", &(1..=10)).is_err());
        assert!(duration_in("500ms", Duration::from_secs(1), None).is_err());
        assert!(duration_in("2s", Duration::ZERO, Some(Duration::from_secs(1))).is_err());
        assert!(positive_decimal("0").is_err());
        assert!(positive_decimal("0.1").is_ok());
    }

    #[test]
    fn urls_do_not_echo_their_contents() {
        assert!(http_url("https://x").is_ok());
        let err = http_url("ftp://user:hunter2@x").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(http_url("https://").is_err());
    }

    #[test]
    fn lists_report_duplicates_and_bad_items() {
        assert_eq!(
            parse_list("a; b;", ';', ident),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
        let err = parse_list("a;a;b c", ';', ident).unwrap_err();
        assert!(
            err.contains("more than once") && err.contains("`b c`"),
            "{err}"
        );
    }

    #[test]
    fn sections_report_shape_problems() {
        let mut problems = Problems::default();
        let value = Value {
            name: "X",
            raw: "a=1,a=2,nokey,=3,b=2,zzz=1",
        };
        let mut section = Section::open("X", Some(value), &["a", "b"], false, &mut problems);
        let mut a = 0u32;
        let mut b = 0u32;
        assert!(section.int("a", &mut a, &(0..=10)));
        assert!(!section.int("b", &mut b, &(5..=10)));
        assert_eq!(a, 1);
        // Duplicate, missing `=`, empty key, unknown key, out-of-range `b`.
        assert_eq!(problems.len(), 5);
    }
}
