//! `GATEWAY_HA_SETTINGS`: leader election between replicas of one gateway (a scaled
//! compose service). The lease itself lives in `gekko-gateway`; this is only its settings.

use std::time::Duration;

use crate::parse::Section;
use crate::problem::Problems;
use crate::vars::{Vars, names};

const KEYS: &[&str] = &[
    "enabled",
    "lease_ttl",
    "renew_interval",
    "lease_key",
    "advertise_addr",
    "replica_id",
];

/// Leader election between replicas of one gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayHaSettings {
    /// Whether gateways elect a leader through a Redis lease (needs `REDIS_URL`). Off by
    /// default: a single gateway process needs none.
    pub enabled: bool,
    /// How long a lease lives without renewal: the longest a dead leader blocks a
    /// takeover.
    pub lease_ttl: Duration,
    /// How often the leader renews and a standby tries to take over; below `lease_ttl`.
    pub renew_interval: Duration,
    /// The lease key; `None`: `gekko:{orders:<venue>}:leader`.
    pub lease_key: Option<String>,
    /// The `host:port` standbys forward gRPC calls to while this replica leads; `None`:
    /// the bound gRPC address, with the host name in place of an unspecified IP.
    pub advertise_addr: Option<String>,
    /// This replica's identity; `None`: `<host name>/<advertised address>`. A restarted
    /// replica with the same identity reclaims its lease at once.
    pub replica_id: Option<String>,
}

impl Default for GatewayHaSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            lease_ttl: Duration::from_secs(5),
            renew_interval: Duration::from_secs(1),
            lease_key: None,
            advertise_addr: None,
            replica_id: None,
        }
    }
}

fn host_port(v: &str) -> Result<Option<String>, String> {
    let (host, port) = v
        .rsplit_once(':')
        .ok_or_else(|| format!("`{v}` has no port"))?;
    if host.is_empty() || host.contains('|') || host.contains('/') {
        return Err(format!("`{v}` has no usable host"));
    }
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{v}` has no valid port"))?;
    Ok(Some(v.to_owned()))
}

fn token(v: &str) -> Result<Option<String>, String> {
    if v.is_empty() || v.contains('|') || v.chars().any(char::is_whitespace) {
        return Err(format!("`{v}` is empty or holds `|` or spaces"));
    }
    Ok(Some(v.to_owned()))
}

pub(crate) fn read(
    vars: &Vars<'_>,
    redis_url_set: bool,
    problems: &mut Problems,
) -> GatewayHaSettings {
    let mut out = GatewayHaSettings::default();
    let mut s = Section::open(
        names::GATEWAY_HA_SETTINGS,
        vars.get(names::GATEWAY_HA_SETTINGS),
        KEYS,
        false,
        problems,
    );
    let enabled_ok = s.bool("enabled", &mut out.enabled);
    let ttl_ok = s.duration(
        "lease_ttl",
        &mut out.lease_ttl,
        Duration::from_millis(500),
        Some(Duration::from_secs(300)),
    );
    let renew_ok = s.duration(
        "renew_interval",
        &mut out.renew_interval,
        Duration::from_millis(50),
        Some(Duration::from_secs(60)),
    );
    s.set(
        "lease_key",
        &mut out.lease_key,
        "a Redis key without spaces or `|`",
        token,
    );
    s.set(
        "advertise_addr",
        &mut out.advertise_addr,
        "host:port reachable by the other replicas",
        host_port,
    );
    s.set(
        "replica_id",
        &mut out.replica_id,
        "a name without spaces or `|`, unique per replica",
        token,
    );
    if ttl_ok && renew_ok && out.renew_interval >= out.lease_ttl {
        s.problem(
            format!(
                "renew_interval ({:?}) is not below lease_ttl ({:?})",
                out.renew_interval, out.lease_ttl
            ),
            "renew_interval well below lease_ttl (a third or less)",
        );
    }
    if enabled_ok && out.enabled && !redis_url_set {
        s.problem(
            "enabled=true, but REDIS_URL is not set: the lease lives in Redis",
            "REDIS_URL set, or enabled=false",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    fn load(pairs: &[(&str, &str)]) -> Result<crate::GekkoConfig, String> {
        let vars: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        crate::from_vars(&vars)
            .map(|l| l.config)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_off_and_settings_are_read() {
        let cfg = load(&[]).unwrap();
        assert!(!cfg.gateway_ha.enabled);
        let cfg = load(&[
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            (
                "GATEWAY_HA_SETTINGS",
                "enabled=true,lease_ttl=3s,renew_interval=500ms,advertise_addr=gw-1:50051,replica_id=gw-1",
            ),
        ])
        .unwrap();
        let ha = cfg.gateway_ha;
        assert!(ha.enabled);
        assert_eq!(ha.lease_ttl, std::time::Duration::from_secs(3));
        assert_eq!(ha.renew_interval, std::time::Duration::from_millis(500));
        assert_eq!(ha.advertise_addr.as_deref(), Some("gw-1:50051"));
        assert_eq!(ha.replica_id.as_deref(), Some("gw-1"));
    }

    #[test]
    fn every_problem_is_named() {
        let err = load(&[(
            "GATEWAY_HA_SETTINGS",
            "enabled=true,lease_ttl=1s,renew_interval=2s,advertise_addr=nohost,replica_id=a|b",
        )])
        .unwrap_err();
        for want in [
            "renew_interval (2s) is not below lease_ttl (1s)",
            "REDIS_URL is not set",
            "advertise_addr: `nohost` has no port",
            "replica_id: `a|b`",
        ] {
            assert!(err.contains(want), "missing {want:?} in:\n{err}");
        }
    }
}
