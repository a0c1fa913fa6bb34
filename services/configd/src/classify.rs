//! Which variables apply live, what a change between two versions is, and how values are
//! redacted for `GetConfig`.

use std::collections::{BTreeMap, BTreeSet};

use gekko_config::{REDACTED, names, redact_url};

/// Variables whose changes the services apply without a restart.
pub const HOT: &[&str] = &[
    names::TRADING_RATE_LIMITS,
    names::POSITION_LIMITS,
    names::COMPLIANCE_SETTINGS,
    names::CONFIDENCE_THRESHOLDS,
    names::MODEL_UPDATE_FREQUENCIES,
];

/// Keys of `MONITORING_CONFIGURATIONS` that apply live (the rest, such as the listen
/// addresses, need a restart).
const HOT_MONITORING_KEYS: &[&str] = &["log_level"];

/// Variables whose whole value is a secret.
const SECRET_VARIABLES: &[&str] = &[
    names::BINANCEUS_API_KEY,
    names::BINANCEUS_API_SECRET,
    names::COINBASE_API_SECRET,
    names::OANDA_API_TOKEN,
    names::OPENROUTER_API_KEY,
    names::LITELLM_API_KEY,
    names::MCP_SERVER_TOKENS,
    "BINANCE_US_API_KEY",
    "BINANCE_US_API_SECRET",
    "COINBASE_API_PRIVATE_KEY",
];

/// Keys inside `k=v,k=v` sections whose values are secrets (keys, token lists with their
/// hashes and TOTP secrets).
const SECRET_KEYS: &[&str] = &["key", "tokens", "grpc_auth_token", "totp"];

/// One variable that differs between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The variable.
    pub variable: String,
    /// Applied live.
    pub hot: bool,
}

/// The `k=v` pairs of a section value; `None` when it is not one.
fn section(value: &str) -> Option<BTreeMap<&str, &str>> {
    value
        .split(',')
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.trim(), v.trim())))
        .collect()
}

/// Whether a change of `variable` from `old` to `new` applies live.
#[must_use]
pub fn is_hot(variable: &str, old: Option<&str>, new: Option<&str>) -> bool {
    if HOT.contains(&variable) {
        return true;
    }
    if variable == names::MONITORING_CONFIGURATIONS {
        let (Some(a), Some(b)) = (
            section(old.unwrap_or_default()),
            section(new.unwrap_or_default()),
        ) else {
            return false;
        };
        let keys: BTreeSet<&str> = a.keys().chain(b.keys()).copied().collect();
        return keys
            .into_iter()
            .filter(|k| a.get(k) != b.get(k))
            .all(|k| HOT_MONITORING_KEYS.contains(&k));
    }
    false
}

/// Every variable whose value differs, in name order.
#[must_use]
pub fn diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<Change> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter_map(|k| {
            let (a, b) = (
                old.get(k).map(String::as_str),
                new.get(k).map(String::as_str),
            );
            let blank = |v: Option<&str>| v.is_none_or(|v| v.trim().is_empty());
            if a == b || (blank(a) && blank(b)) {
                return None;
            }
            Some(Change {
                variable: k.clone(),
                hot: is_hot(k, a, b),
            })
        })
        .collect()
}

/// `value` of `variable` as `GetConfig` shows it: secret variables and secret section
/// keys become [`REDACTED`], passwords in URLs are masked.
#[must_use]
pub fn redact(variable: &str, value: &str) -> String {
    if SECRET_VARIABLES.contains(&variable) {
        return REDACTED.to_owned();
    }
    if value.contains("://") && !value.contains(',') {
        return redact_url(value);
    }
    if value.contains('=') {
        return value
            .split(',')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if SECRET_KEYS.contains(&k.trim()) => format!("{k}={REDACTED}"),
                Some((k, v)) if v.contains("://") => format!("{k}={}", redact_url(v)),
                _ => kv.to_owned(),
            })
            .collect::<Vec<_>>()
            .join(",");
    }
    value.to_owned()
}

/// Whether `name` is a variable gekko reads (the only ones configd serves).
#[must_use]
pub fn is_gekko_variable(name: &str) -> bool {
    names::ALL.contains(&name)
        || gekko_config::DEPRECATED_NAMES
            .iter()
            .any(|(o, _)| *o == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_level_alone_is_hot_addresses_are_not() {
        let m = names::MONITORING_CONFIGURATIONS;
        assert!(is_hot(
            m,
            Some("log_level=info,http_addr=127.0.0.1:1"),
            Some("log_level=debug,http_addr=127.0.0.1:1")
        ));
        assert!(!is_hot(
            m,
            Some("log_level=info"),
            Some("log_level=info,http_addr=127.0.0.1:2")
        ));
        assert!(is_hot(names::POSITION_LIMITS, None, Some("BTC-USD=1")));
        assert!(!is_hot(names::REDIS_URL, None, Some("redis://x")));
    }

    #[test]
    fn secrets_never_show() {
        assert_eq!(redact(names::BINANCEUS_API_SECRET, "hunter2"), REDACTED);
        let r = redact(
            names::ENCRYPTION_SETTINGS,
            "key=00ff,algorithm=xchacha20poly1305",
        );
        assert!(
            !r.contains("00ff") && r.contains("algorithm=xchacha20poly1305"),
            "{r}"
        );
        let r = redact(names::REDIS_URL, "redis://:pw@host:6379");
        assert!(!r.contains("pw"), "{r}");
        let r = redact(
            names::ACCESS_CONTROL_CONFIG,
            "tokens=a:admin:abcd:totp=SECRET,read_only=true",
        );
        assert!(
            !r.contains("abcd") && !r.contains("SECRET") && r.contains("read_only=true"),
            "{r}"
        );
    }
}
