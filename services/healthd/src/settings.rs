//! healthd's own flat settings, `HEALTHD_*`, read with `envy`.
//!
//! As in configd, envy only collects the variables into `Option<String>` fields (which
//! cannot fail for a UTF-8 environment) and [`HealthdSettings::from_raw`] validates every
//! field, listing every problem, so a bad value is named with the rest instead of
//! stopping at the first.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

/// Where healthd serves its own HTTP (aggregate `/readyz`, `/metrics`, the Alertmanager
/// webhook and acknowledgements) by default.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:9500";
/// The default poll interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The default timeout of one probe.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The default escalation delay: 15 minutes.
pub const DEFAULT_ESCALATE_AFTER: Duration = Duration::from_secs(15 * 60);

/// `HEALTHD_*` as envy reads them: every field a string, so envy itself never fails on a
/// value.
#[derive(Debug, Default, Deserialize)]
pub struct RawSettings {
    /// `HEALTHD_TARGETS`: `name=http://host:port|grpc://host:port,...`.
    pub targets: Option<String>,
    /// `HEALTHD_REQUIRED`: target names the aggregate readiness waits on; `all` (default)
    /// or `none`.
    pub required: Option<String>,
    /// `HEALTHD_HTTP_ADDR`: healthd's own HTTP listener.
    pub http_addr: Option<String>,
    /// `HEALTHD_INTERVAL_MS`: the poll interval.
    pub interval_ms: Option<String>,
    /// `HEALTHD_TIMEOUT_MS`: one probe's timeout.
    pub timeout_ms: Option<String>,
    /// `HEALTHD_REDIS`: `on` (default: check the bus's `REDIS_URL` when set) or `off`.
    pub redis: Option<String>,
    /// `HEALTHD_DOCKER`: `auto` (default; `DOCKER_HOST` or the local socket) or `off`.
    pub docker: Option<String>,
    /// `HEALTHD_DOCKER_PROJECT`: only containers of this compose project.
    pub docker_project: Option<String>,
    /// `HEALTHD_DISK_PATHS`: `;`-separated mount points whose usage is checked.
    pub disk_paths: Option<String>,
    /// `HEALTHD_WEBHOOK_URL`: where alert events are POSTed.
    pub webhook_url: Option<String>,
    /// `HEALTHD_ESCALATE_AFTER_S`: an open alert not acknowledged after this is escalated.
    pub escalate_after_s: Option<String>,
    /// `HEALTHD_THRESHOLDS`: `key=value,...` (see [`Thresholds`]).
    pub thresholds: Option<String>,
}

/// One probe address of a target: its HTTP base (`/readyz`, `/metrics`) or its gRPC
/// port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// A DNS name or an IP literal.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Endpoint {
    /// `host:port`, the form `tokio::net::lookup_host` takes.
    #[must_use]
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A service healthd polls. Its name resolves, through DNS, to every replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The name shown in the tree (`gateway-binanceus`).
    pub name: String,
    /// `http://host:port`: `/readyz` and `/metrics` (the runtime's HTTP listener).
    pub http: Option<Endpoint>,
    /// `grpc://host:port`: `grpc.health.v1.Health/Check`.
    pub grpc: Option<Endpoint>,
    /// Whether the aggregate readiness waits on it.
    pub required: bool,
}

/// Alert thresholds (`HEALTHD_THRESHOLDS`).
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// `market_data_stale_s`: `gekko_gateway_market_data_age_seconds` above this is stale.
    pub market_data_stale_s: f64,
    /// `clock_offset_ms`: `|gekko_gateway_clock_offset_ms|` above this alerts.
    pub clock_offset_ms: f64,
    /// `counter_window_s`: a 418 or a reconciliation difference keeps its alert open this
    /// long after the counter last rose.
    pub counter_window_s: u64,
    /// `restart_loop`: a container restarted at least this often since the last poll
    /// window (`restart_window_s`) is in a restart loop.
    pub restart_loop: u64,
    /// `restart_window_s`: the window of `restart_loop`.
    pub restart_window_s: u64,
    /// `host_memory_pct`: host memory used above this percentage alerts.
    pub host_memory_pct: f64,
    /// `disk_pct`: a checked mount's usage above this percentage alerts.
    pub disk_pct: f64,
    /// `container_memory_pct`: a container's memory against its limit.
    pub container_memory_pct: f64,
    /// `container_cpu_pct`: a container's CPU, percent of one core.
    pub container_cpu_pct: f64,
    /// `redis_memory_mb`: Redis `used_memory` above this alerts; 0 = no check.
    pub redis_memory_mb: f64,
    /// `redis_latency_ms`: Redis PING slower than this is a warning.
    pub redis_latency_ms: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            market_data_stale_s: 30.0,
            clock_offset_ms: 1000.0,
            counter_window_s: 600,
            restart_loop: 3,
            restart_window_s: 600,
            host_memory_pct: 90.0,
            disk_pct: 90.0,
            container_memory_pct: 90.0,
            container_cpu_pct: 90.0,
            redis_memory_mb: 0.0,
            redis_latency_ms: 100.0,
        }
    }
}

/// Whether Docker is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerMode {
    /// Through `DOCKER_HOST`, or the local socket; absent is a warning.
    Auto,
    /// Not checked at all.
    Off,
}

/// healthd's validated settings.
#[derive(Debug, Clone)]
pub struct HealthdSettings {
    /// The targets, in the order given.
    pub targets: Vec<Target>,
    /// healthd's own HTTP listener.
    pub http_addr: SocketAddr,
    /// Time between two polls.
    pub interval: Duration,
    /// One probe's timeout.
    pub timeout: Duration,
    /// Whether the bus's Redis is checked.
    pub redis: bool,
    /// Docker.
    pub docker: DockerMode,
    /// Only containers with `com.docker.compose.project=<this>`.
    pub docker_project: Option<String>,
    /// Mount points checked for usage.
    pub disk_paths: Vec<String>,
    /// The alert webhook.
    pub webhook_url: Option<String>,
    /// Escalation delay.
    pub escalate_after: Duration,
    /// Thresholds.
    pub thresholds: Thresholds,
}

fn shown(v: &str) -> String {
    v.chars().take(60).collect()
}

fn non_empty(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

fn millis(
    var: &str,
    v: Option<&str>,
    range: std::ops::RangeInclusive<u64>,
    default: Duration,
    problems: &mut Vec<String>,
) -> Duration {
    match non_empty(v) {
        None => default,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if range.contains(&n) => Duration::from_millis(n),
            _ => {
                problems.push(format!(
                    "{var}: `{}` is not a number of milliseconds from {} to {}",
                    shown(v),
                    range.start(),
                    range.end()
                ));
                default
            }
        },
    }
}

fn endpoint(var: &str, name: &str, raw: &str, problems: &mut Vec<String>) -> Option<Endpoint> {
    let rest = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("grpc://"))
        .unwrap_or(raw)
        .trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p),
        None => {
            problems.push(format!(
                "{var}: target `{name}`: `{}` has no port (expected host:port)",
                shown(raw)
            ));
            return None;
        }
    };
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    match port.parse::<u16>() {
        Ok(port) if port > 0 && valid_host => Some(Endpoint {
            host: host.to_owned(),
            port,
        }),
        _ => {
            problems.push(format!(
                "{var}: target `{name}`: `{}` is not host:port with a port from 1 to 65535",
                shown(raw)
            ));
            None
        }
    }
}

/// Parses `HEALTHD_TARGETS`: comma-separated `name=endpoint|endpoint`, each endpoint
/// `http://host:port` or `grpc://host:port`. Every problem is pushed.
fn parse_targets(raw: &str, problems: &mut Vec<String>) -> Vec<Target> {
    const VAR: &str = "HEALTHD_TARGETS";
    let mut out: Vec<Target> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, spec)) = entry.split_once('=') else {
            problems.push(format!(
                "{VAR}: `{}` is not name=http://host:port|grpc://host:port",
                shown(entry)
            ));
            continue;
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            problems.push(format!(
                "{VAR}: `{}` is not a target name (letters, digits, `-`, `_`, `.`)",
                shown(name)
            ));
            continue;
        }
        if out.iter().any(|t| t.name == name) {
            problems.push(format!("{VAR}: target `{name}` is listed twice"));
            continue;
        }
        let mut target = Target {
            name: name.to_owned(),
            http: None,
            grpc: None,
            required: true,
        };
        for part in spec.split('|').map(str::trim).filter(|p| !p.is_empty()) {
            let slot = if part.starts_with("http://") {
                &mut target.http
            } else if part.starts_with("grpc://") {
                &mut target.grpc
            } else {
                problems.push(format!(
                    "{VAR}: target `{name}`: `{}` must start with http:// (readyz and metrics) or grpc:// (grpc.health.v1)",
                    shown(part)
                ));
                continue;
            };
            if slot.is_some() {
                problems.push(format!(
                    "{VAR}: target `{name}`: `{}` repeats an endpoint kind",
                    shown(part)
                ));
                continue;
            }
            *slot = endpoint(VAR, name, part, problems);
        }
        if target.http.is_none() && target.grpc.is_none() {
            problems.push(format!(
                "{VAR}: target `{name}` has no valid endpoint (expected http://host:port and/or grpc://host:port)"
            ));
            continue;
        }
        out.push(target);
    }
    out
}

fn parse_thresholds(raw: Option<&str>, problems: &mut Vec<String>) -> Thresholds {
    const VAR: &str = "HEALTHD_THRESHOLDS";
    let mut t = Thresholds::default();
    let Some(raw) = non_empty(raw) else {
        return t;
    };
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((key, value)) = entry.split_once('=') else {
            problems.push(format!("{VAR}: `{}` is not key=value", shown(entry)));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let number = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0);
        let count = value.parse::<u64>().ok();
        let pct = number.filter(|v| *v > 0.0 && *v <= 100.0);
        let bad = |what: &str| format!("{VAR}: {key}: `{}` is not {what}", shown(value));
        match key {
            "market_data_stale_s" => match number.filter(|v| *v > 0.0) {
                Some(v) => t.market_data_stale_s = v,
                None => problems.push(bad("a positive number of seconds")),
            },
            "clock_offset_ms" => match number.filter(|v| *v > 0.0) {
                Some(v) => t.clock_offset_ms = v,
                None => problems.push(bad("a positive number of milliseconds")),
            },
            "counter_window_s" => match count.filter(|v| *v > 0) {
                Some(v) => t.counter_window_s = v,
                None => problems.push(bad("a positive whole number of seconds")),
            },
            "restart_loop" => match count.filter(|v| *v > 0) {
                Some(v) => t.restart_loop = v,
                None => problems.push(bad("a positive whole number of restarts")),
            },
            "restart_window_s" => match count.filter(|v| *v > 0) {
                Some(v) => t.restart_window_s = v,
                None => problems.push(bad("a positive whole number of seconds")),
            },
            "host_memory_pct" => match pct {
                Some(v) => t.host_memory_pct = v,
                None => problems.push(bad("a percentage above 0, at most 100")),
            },
            "disk_pct" => match pct {
                Some(v) => t.disk_pct = v,
                None => problems.push(bad("a percentage above 0, at most 100")),
            },
            "container_memory_pct" => match pct {
                Some(v) => t.container_memory_pct = v,
                None => problems.push(bad("a percentage above 0, at most 100")),
            },
            "container_cpu_pct" => match number.filter(|v| *v > 0.0) {
                Some(v) => t.container_cpu_pct = v,
                None => problems.push(bad("a positive percentage of one core")),
            },
            "redis_memory_mb" => match number {
                Some(v) => t.redis_memory_mb = v,
                None => problems.push(bad("a number of MiB (0: no check)")),
            },
            "redis_latency_ms" => match number.filter(|v| *v > 0.0) {
                Some(v) => t.redis_latency_ms = v,
                None => problems.push(bad("a positive number of milliseconds")),
            },
            other => problems.push(format!(
                "{VAR}: unknown key `{}` (known: market_data_stale_s, clock_offset_ms, counter_window_s, restart_loop, restart_window_s, host_memory_pct, disk_pct, container_memory_pct, container_cpu_pct, redis_memory_mb, redis_latency_ms)",
                shown(other)
            )),
        }
    }
    t
}

impl HealthdSettings {
    /// Reads `HEALTHD_*` from the process environment.
    ///
    /// # Errors
    /// Every problem, one line each, naming the variable.
    pub fn from_env() -> Result<Self, Vec<String>> {
        match envy::prefixed("HEALTHD_").from_env::<RawSettings>() {
            Ok(raw) => Self::from_raw(raw),
            Err(e) => Err(vec![format!("HEALTHD_*: {e}")]),
        }
    }

    /// Validates the raw fields.
    ///
    /// # Errors
    /// Every problem, one line each, naming the variable.
    pub fn from_raw(raw: RawSettings) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut targets = non_empty(raw.targets.as_deref())
            .map(|t| parse_targets(t, &mut problems))
            .unwrap_or_default();
        match non_empty(raw.required.as_deref()) {
            None | Some("all") => {}
            Some("none") => targets.iter_mut().for_each(|t| t.required = false),
            Some(list) => {
                let names: BTreeSet<&str> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .collect();
                for n in &names {
                    if !targets.iter().any(|t| t.name == *n) {
                        problems.push(format!(
                            "HEALTHD_REQUIRED: `{}` is not a target of HEALTHD_TARGETS",
                            shown(n)
                        ));
                    }
                }
                for t in &mut targets {
                    t.required = names.contains(t.name.as_str());
                }
            }
        }
        let http_addr = match non_empty(raw.http_addr.as_deref())
            .unwrap_or(DEFAULT_HTTP_ADDR)
            .parse::<SocketAddr>()
        {
            Ok(a) => Some(a),
            Err(_) => {
                problems.push(format!(
                    "HEALTHD_HTTP_ADDR: `{}` is not an ip:port socket address",
                    shown(raw.http_addr.as_deref().unwrap_or_default())
                ));
                None
            }
        };
        let interval = millis(
            "HEALTHD_INTERVAL_MS",
            raw.interval_ms.as_deref(),
            100..=600_000,
            DEFAULT_INTERVAL,
            &mut problems,
        );
        let timeout = millis(
            "HEALTHD_TIMEOUT_MS",
            raw.timeout_ms.as_deref(),
            50..=60_000,
            DEFAULT_TIMEOUT,
            &mut problems,
        );
        let redis = match non_empty(raw.redis.as_deref()) {
            None | Some("on") => true,
            Some("off") => false,
            Some(v) => {
                problems.push(format!("HEALTHD_REDIS: `{}` is not on or off", shown(v)));
                true
            }
        };
        let docker = match non_empty(raw.docker.as_deref()) {
            None | Some("auto") => DockerMode::Auto,
            Some("off") => DockerMode::Off,
            Some(v) => {
                problems.push(format!("HEALTHD_DOCKER: `{}` is not auto or off", shown(v)));
                DockerMode::Auto
            }
        };
        let docker_project = non_empty(raw.docker_project.as_deref()).map(str::to_owned);
        let disk_paths: Vec<String> = match non_empty(raw.disk_paths.as_deref()) {
            None => vec!["/".to_owned()],
            Some(list) => list
                .split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        for p in &disk_paths {
            if !p.starts_with('/') {
                problems.push(format!(
                    "HEALTHD_DISK_PATHS: `{}` is not an absolute path",
                    shown(p)
                ));
            }
        }
        let webhook_url = match non_empty(raw.webhook_url.as_deref()) {
            None => None,
            Some(u)
                if reqwest::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https")) =>
            {
                Some(u.to_owned())
            }
            Some(u) => {
                problems.push(format!(
                    "HEALTHD_WEBHOOK_URL: `{}` is not an http:// or https:// URL",
                    shown(u)
                ));
                None
            }
        };
        let escalate_after = match non_empty(raw.escalate_after_s.as_deref()) {
            None => DEFAULT_ESCALATE_AFTER,
            Some(v) => match v.parse::<u64>() {
                Ok(s) if (1..=7 * 86_400).contains(&s) => Duration::from_secs(s),
                _ => {
                    problems.push(format!(
                        "HEALTHD_ESCALATE_AFTER_S: `{}` is not a number of seconds from 1 to 604800",
                        shown(v)
                    ));
                    DEFAULT_ESCALATE_AFTER
                }
            },
        };
        let thresholds = parse_thresholds(raw.thresholds.as_deref(), &mut problems);
        match http_addr {
            Some(http_addr) if problems.is_empty() => Ok(Self {
                targets,
                http_addr,
                interval,
                timeout,
                redis,
                docker,
                docker_project,
                disk_paths,
                webhook_url,
                escalate_after,
                thresholds,
            }),
            _ => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_with_both_endpoints_and_required_list() {
        let s = HealthdSettings::from_raw(RawSettings {
            targets: Some(
                "gateway-binanceus=http://gateway-binanceus:9464|grpc://gateway-binanceus:50051, configd=http://127.0.0.1:9464"
                    .to_owned(),
            ),
            required: Some("gateway-binanceus".to_owned()),
            ..RawSettings::default()
        })
        .expect("valid");
        assert_eq!(s.targets.len(), 2);
        assert_eq!(
            s.targets[0].grpc,
            Some(Endpoint {
                host: "gateway-binanceus".to_owned(),
                port: 50051
            })
        );
        assert!(s.targets[0].required && !s.targets[1].required);
        assert_eq!(s.targets[1].grpc, None);
        assert_eq!(s.http_addr.to_string(), DEFAULT_HTTP_ADDR);
    }

    #[test]
    fn every_problem_is_reported() {
        let err = HealthdSettings::from_raw(RawSettings {
            targets: Some("a=ftp://x:1,b=http://y,=http://z:1".to_owned()),
            required: Some("nosuch".to_owned()),
            http_addr: Some("here".to_owned()),
            interval_ms: Some("often".to_owned()),
            docker: Some("maybe".to_owned()),
            webhook_url: Some("mailto:x".to_owned()),
            escalate_after_s: Some("0".to_owned()),
            thresholds: Some("disk_pct=120,colour=blue".to_owned()),
            ..RawSettings::default()
        })
        .expect_err("invalid");
        let joined = err.join("\n");
        for var in [
            "HEALTHD_TARGETS",
            "HEALTHD_REQUIRED",
            "HEALTHD_HTTP_ADDR",
            "HEALTHD_INTERVAL_MS",
            "HEALTHD_DOCKER",
            "HEALTHD_WEBHOOK_URL",
            "HEALTHD_ESCALATE_AFTER_S",
            "HEALTHD_THRESHOLDS: disk_pct",
            "unknown key `colour`",
        ] {
            assert!(joined.contains(var), "{var} missing from {joined}");
        }
    }
}
