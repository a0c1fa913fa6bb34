//! Reads each variable into its typed section, then checks the rules that span variables.
//!
//! Each variable is read by one short function that says which generic parser applies and
//! what its bounds are. Every function records its problems and carries on, so one pass
//! finds every mistake. A cross-field check runs only when the variables it compares were
//! themselves valid, so one typo does not cascade into several confusing lines.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use gekko_core::VenueId;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret as _, SecretString};

use crate::model::{
    AccessControl, AccessToken, AuditLogging, BackupSettings, BinanceUsCredentials,
    BinanceUsKeyType, CoinbaseCredentials, Compliance, ControllerSettings, Credentials,
    DevicePreference, EncryptionSettings, GekkoConfig, LogFormat, Monitoring, OandaCredentials,
    OandaEnvironment, OpenServices, Pair, PerformanceParams, PredictionParams, RateLimit,
    ResourceAllocation, Role, ShutdownMode, StrategySettings, default_confidence_threshold,
};
use crate::parse::{
    IDENT_FORM, MapForm, Section, decimal, duration_form, duration_in, format_duration, has_scheme,
    http_url, ident, int_in, parse_items, parse_list, parse_map, positive_decimal,
};
use crate::problem::Problems;
use crate::vars::{Value, Vars, names};

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_mins(1);

const VENUE_FORM: &str = "one of coinbase, binanceus, oanda";
const HTTP_FORM: &str = "an http:// or https:// URL";
const PAIR_LIST_FORM: &str = "comma-separated upper-case BASE-QUOTE pairs such as BTC-USD, each once, optionally venue-qualified as binanceus:BTC-USD";
const NOTIONAL_FORM: &str = "a decimal number greater than zero";

/// Reads every variable. The returned config is only meaningful if `problems` stayed empty.
pub(crate) fn build(vars: &Vars<'_>, problems: &mut Problems) -> GekkoConfig {
    let defaults = GekkoConfig::default();
    let redis_url = redis_url(vars, problems);
    let endpoints = api_endpoints(vars, problems);
    let trading_tls_ca_file = tls_ca_file(vars, problems);
    let mut trading_rate_limits = defaults.trading_rate_limits;
    trading_rate_limits.extend(rate_limits(vars, problems));

    let mut supported_trading_pairs = defaults.supported_trading_pairs;
    let pairs_ok = supported_pairs(vars, &mut supported_trading_pairs, problems);
    let pairs = pairs_ok.then_some(supported_trading_pairs.as_slice());
    let position_limits = position_limits(vars, pairs, problems);

    let mut ml_model_endpoints = defaults.ml_model_endpoints;
    let models_ok = models(vars, &mut ml_model_endpoints, problems);
    let models = models_ok.then_some(&ml_model_endpoints);
    let prediction_parameters = prediction(vars, problems);
    let model_update_frequencies = per_model(
        vars.get(names::MODEL_UPDATE_FREQUENCIES),
        models,
        &MapForm {
            entry: "comma-separated model=duration entries",
            key: IDENT_FORM,
            value: "a duration such as 30s, 5m or 1h, at least 1s",
        },
        |v| duration_in(v, SECOND, None),
        problems,
    );
    let confidence_thresholds = match vars.get(names::CONFIDENCE_THRESHOLDS) {
        None => default_thresholds(&ml_model_endpoints),
        value => per_model(
            value,
            models,
            &MapForm {
                entry: "comma-separated model=threshold entries",
                key: IDENT_FORM,
                value: "a decimal number from 0 to 1",
            },
            unit_interval,
            problems,
        ),
    };

    // Sections are read in documentation order (which is the order problems are listed
    // in); `compliance` borrows the pair list, so the fields read above move in last.
    GekkoConfig {
        system_performance: performance(vars, problems),
        resource_allocation: resources(vars, problems),
        monitoring: monitoring(vars, problems),
        backup: backup(vars, problems),
        config_service: crate::config_service::read(vars, problems),
        encryption: encryption(vars, problems),
        access_control: access_control(vars, problems),
        audit_logging: audit(vars, problems),
        compliance: compliance(vars, pairs, problems),
        controller: controller(vars, problems),
        strategy: strategy(vars, problems),
        mcp: crate::mcp::read(vars, problems),
        mcp_servers: crate::mcp_servers::read(vars, problems),
        gateway_ha: crate::gateway_ha::read(vars, redis_url.is_some(), problems),
        credentials: credentials(vars, problems),
        binanceus_recv_window: binanceus_recv_window(
            vars,
            defaults.binanceus_recv_window,
            problems,
        ),
        llm: crate::llm::read(vars, problems),
        redis_url,
        trading_api_endpoints: endpoints.rest,
        trading_stream_endpoints: endpoints.stream,
        trading_user_stream_endpoints: endpoints.user_stream,
        trading_fallback_endpoints: endpoints.fallback,
        trading_tls_ca_file,
        trading_rate_limits,
        supported_trading_pairs,
        position_limits,
        ml_model_endpoints,
        prediction_parameters,
        model_update_frequencies,
        confidence_thresholds,
    }
}

fn venue(s: &str) -> Result<VenueId, String> {
    s.parse::<VenueId>()
        .map_err(|_| format!("`{s}` is not a venue"))
}

fn pair(s: &str) -> Result<Pair, String> {
    s.parse::<Pair>()
        .map_err(|_| format!("`{s}` is not a valid pair"))
}

fn unit_interval(s: &str) -> Result<Decimal, String> {
    let d = decimal(s)?;
    if (Decimal::ZERO..=Decimal::ONE).contains(&d) {
        Ok(d)
    } else {
        Err(format!("{d} is outside 0 to 1"))
    }
}

fn non_empty(s: &str) -> Result<&str, String> {
    if s.is_empty() {
        Err("is empty".to_owned())
    } else {
        Ok(s)
    }
}

/// One `redis://` URL (a single server), or a comma-separated list of `redis://` or
/// `rediss://` node URLs (a Redis Cluster). Every node URL is checked and every problem
/// reported, naming the item by its position (the URL itself may hold a password).
fn redis_url(vars: &Vars<'_>, problems: &mut Problems) -> Option<String> {
    let value = vars.get(names::REDIS_URL)?;
    if !value.raw.contains(',') {
        return has_scheme(value.raw, &["redis://", "rediss://", "unix://"])
            .map_err(|e| problems.push(value.name, e, "a redis://, rediss:// or unix:// URL"))
            .ok();
    }
    const NODE: &str = "a comma-separated list of redis:// or rediss:// node URLs (host:port), one per Redis Cluster node";
    let items: Vec<&str> = value.raw.split(',').map(str::trim).collect();
    let before = problems.len();
    let mut seen = std::collections::BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let n = i + 1;
        if item.is_empty() {
            problems.push(
                value.name,
                format!("cluster node {n} of {} is empty", items.len()),
                NODE,
            );
            continue;
        }
        if let Err(e) = has_scheme(item, &["redis://", "rediss://"]) {
            problems.push(value.name, format!("cluster node {n}: {e}"), NODE);
            continue;
        }
        match cluster_node_address(item) {
            Ok(addr) => {
                if !seen.insert(addr.clone()) {
                    problems.push(
                        value.name,
                        format!("cluster node {n}: {addr} is listed twice"),
                        NODE,
                    );
                }
            }
            Err(e) => problems.push(value.name, format!("cluster node {n}: {e}"), NODE),
        }
    }
    (problems.len() == before).then(|| items.join(","))
}

/// The `host:port` of a cluster node URL (port 6379 when none is given).
fn cluster_node_address(url: &str) -> Result<String, String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (host_port, None),
    };
    if host.is_empty() {
        return Err("no host".to_owned());
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("port `{p}` is not a number from 1 to 65535"))?,
        None => 6379,
    };
    Ok(format!("{host}:{port}"))
}

/// Which URL of a venue a `TRADING_API_ENDPOINTS` key sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EndpointKind {
    Rest,
    Stream,
    UserStream,
    Fallback,
}

/// The endpoint maps of `TRADING_API_ENDPOINTS`: REST, stream, user stream, fallback REST.
#[derive(Debug, Default)]
struct Endpoints {
    rest: BTreeMap<VenueId, String>,
    stream: BTreeMap<VenueId, String>,
    user_stream: BTreeMap<VenueId, String>,
    fallback: BTreeMap<VenueId, String>,
}

/// `venue=url` overrides the REST base URL; `venue.stream=url` the websocket/stream base;
/// `venue.user_stream=url` the private stream's host where the venue has a separate one
/// (Coinbase's user websocket); `venue.fallback=url` a secondary REST base the client
/// moves to while the primary's circuit is open.
fn api_endpoints(vars: &Vars<'_>, problems: &mut Problems) -> Endpoints {
    let Some(value) = vars.get(names::TRADING_API_ENDPOINTS) else {
        return Endpoints::default();
    };
    let form = MapForm {
        entry: "comma-separated venue=url, venue.stream=url, venue.user_stream=url or venue.fallback=url entries",
        key: "one of coinbase, binanceus, oanda, optionally followed by .stream, .user_stream or .fallback",
        value: "an http(s):// URL for a venue or venue.fallback, a ws(s):// or http(s):// URL for venue.stream and venue.user_stream",
    };
    let all = parse_map(
        value,
        &form,
        problems,
        |k| {
            if let Some(v) = k.strip_suffix(".stream") {
                venue(v).map(|v| (v, EndpointKind::Stream))
            } else if let Some(v) = k.strip_suffix(".user_stream") {
                venue(v).map(|v| (v, EndpointKind::UserStream))
            } else if let Some(v) = k.strip_suffix(".fallback") {
                venue(v).map(|v| (v, EndpointKind::Fallback))
            } else {
                venue(k).map(|v| (v, EndpointKind::Rest))
            }
        },
        |raw| has_scheme(raw, &["http://", "https://", "ws://", "wss://"]),
    );
    let mut out = Endpoints::default();
    for ((v, kind), url) in all {
        match kind {
            EndpointKind::Stream => {
                out.stream.insert(v, url);
            }
            EndpointKind::UserStream => {
                out.user_stream.insert(v, url);
            }
            EndpointKind::Rest | EndpointKind::Fallback => {
                if let Err(e) = http_url(&url) {
                    problems.push(value.name, format!("{v}: {e}"), HTTP_FORM);
                } else if kind == EndpointKind::Rest {
                    out.rest.insert(v, url);
                } else {
                    out.fallback.insert(v, url);
                }
            }
        }
    }
    for (v, url) in &out.fallback {
        if out.rest.get(v) == Some(url) {
            problems.push(
                value.name,
                format!("{v}.fallback is the same URL as {v}"),
                "a fallback different from the primary",
            );
        }
    }
    out
}

/// `TRADING_TLS_CA_FILE`: a PEM file of extra trusted roots for venue connections. It must
/// be readable and hold at least one certificate, so a typo is a start-up error rather than
/// a TLS failure at the first request.
fn tls_ca_file(vars: &Vars<'_>, problems: &mut Problems) -> Option<PathBuf> {
    let value = vars.get(names::TRADING_TLS_CA_FILE)?;
    const FORM: &str = "a readable PEM file with at least one -----BEGIN CERTIFICATE----- block";
    match std::fs::read_to_string(value.raw) {
        Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => Some(PathBuf::from(value.raw)),
        Ok(_) => {
            problems.push(
                value.name,
                format!("`{}` holds no PEM certificate", value.raw),
                FORM,
            );
            None
        }
        Err(e) => {
            problems.push(
                value.name,
                format!("`{}` cannot be read: {e}", value.raw),
                FORM,
            );
            None
        }
    }
}

/// Only the venues listed are overridden; the others keep their built-in limits, so the
/// map always covers every venue.
fn rate_limits(vars: &Vars<'_>, problems: &mut Problems) -> BTreeMap<VenueId, RateLimit> {
    let Some(value) = vars.get(names::TRADING_RATE_LIMITS) else {
        return BTreeMap::new();
    };
    let form = MapForm {
        entry: "comma-separated venue=N/period entries such as coinbase=30/1s",
        key: VENUE_FORM,
        value: "N/period with N at least 1 and period a duration such as 1s or 1m",
    };
    parse_map(value, &form, problems, venue, |raw| {
        let (n, period) = raw
            .split_once('/')
            .ok_or_else(|| format!("`{raw}` has no `/`"))?;
        Ok(RateLimit::new(
            int_in(n, &(1..=u32::MAX))?,
            duration_in(period, MS, None)?,
        ))
    })
}

fn supported_pairs(vars: &Vars<'_>, slot: &mut Vec<Pair>, problems: &mut Problems) -> bool {
    let Some(value) = vars.get(names::SUPPORTED_TRADING_PAIRS) else {
        return true;
    };
    let before = problems.len();
    let mut pairs = Vec::new();
    for item in parse_items(value.raw, ',', pair) {
        match item {
            Ok(p) => pairs.push(p),
            Err(e) => problems.push(value.name, e, PAIR_LIST_FORM),
        }
    }
    if pairs.is_empty() && problems.len() == before {
        problems.push(value.name, "lists no pairs", PAIR_LIST_FORM);
    }
    let ok = problems.len() == before;
    if ok {
        *slot = pairs;
    }
    ok
}

/// `supported` is `None` when `SUPPORTED_TRADING_PAIRS` itself was invalid.
fn position_limits(
    vars: &Vars<'_>,
    supported: Option<&[Pair]>,
    problems: &mut Problems,
) -> BTreeMap<Pair, Decimal> {
    let Some(value) = vars.get(names::POSITION_LIMITS) else {
        return BTreeMap::new();
    };
    let form = MapForm {
        entry: "comma-separated PAIR=max_abs_qty entries such as BTC-USD=2",
        key: Pair::FORM,
        value: "a decimal quantity greater than zero",
    };
    let limits = parse_map(value, &form, problems, pair, positive_decimal);
    if let Some(supported) = supported {
        for p in limits
            .keys()
            .filter(|p| !supported.iter().any(|s| s.covers(p)))
        {
            problems.push(
                value.name,
                format!("{p} is not in {}", names::SUPPORTED_TRADING_PAIRS),
                format!("only pairs listed in {}", names::SUPPORTED_TRADING_PAIRS),
            );
        }
    }
    limits
}

fn models(vars: &Vars<'_>, slot: &mut BTreeMap<String, String>, problems: &mut Problems) -> bool {
    let Some(value) = vars.get(names::ML_MODEL_ENDPOINTS) else {
        return true;
    };
    let form = MapForm {
        entry: "comma-separated name=location entries such as direction=models",
        key: IDENT_FORM,
        value: "a directory path or an http:// or https:// URL",
    };
    let before = problems.len();
    let models = parse_map(value, &form, problems, ident, |location| {
        if location.contains("://") {
            http_url(location)
        } else {
            non_empty(location).map(str::to_owned)
        }
    });
    let ok = problems.len() == before;
    if ok {
        *slot = models;
    }
    ok
}

/// A `model=value` map whose names must be models in `ML_MODEL_ENDPOINTS` (`models` is
/// `None` when that variable was itself invalid, which skips the check).
fn per_model<V>(
    value: Option<Value<'_>>,
    models: Option<&BTreeMap<String, String>>,
    form: &MapForm,
    parse_value: impl Fn(&str) -> Result<V, String>,
    problems: &mut Problems,
) -> BTreeMap<String, V> {
    let Some(value) = value else {
        return BTreeMap::new();
    };
    let map = parse_map(value, form, problems, ident, parse_value);
    if let Some(models) = models {
        for name in map.keys().filter(|name| !models.contains_key(*name)) {
            problems.push(
                value.name,
                format!("model `{name}` is not in {}", names::ML_MODEL_ENDPOINTS),
                format!("only models named in {}", names::ML_MODEL_ENDPOINTS),
            );
        }
    }
    map
}

fn default_thresholds(models: &BTreeMap<String, String>) -> BTreeMap<String, Decimal> {
    models
        .keys()
        .filter(|name| *name == "direction")
        .map(|name| (name.clone(), default_confidence_threshold()))
        .collect()
}

fn prediction(vars: &Vars<'_>, problems: &mut Problems) -> PredictionParams {
    let mut out = PredictionParams::default();
    let mut s = Section::open(
        names::PREDICTION_PARAMETERS,
        vars.get(names::PREDICTION_PARAMETERS),
        &["window", "horizon", "interval"],
        false,
        problems,
    );
    out.window_set = s.has("window");
    out.horizon_set = s.has("horizon");
    let window_ok = s.int("window", &mut out.window, &(2..=4096));
    let horizon_ok = s.int("horizon", &mut out.horizon, &(1..=4096));
    s.duration("interval", &mut out.interval, Duration::ZERO, None);
    if window_ok && horizon_ok && out.horizon > out.window {
        s.problem(
            format!(
                "horizon {} is larger than window {}",
                out.horizon, out.window
            ),
            "horizon from 1 to window",
        );
    }
    out
}

fn performance(vars: &Vars<'_>, problems: &mut Problems) -> PerformanceParams {
    let mut out = PerformanceParams::default();
    let mut s = Section::open(
        names::SYSTEM_PERFORMANCE_PARAMS,
        vars.get(names::SYSTEM_PERFORMANCE_PARAMS),
        &[
            "batch_max_size",
            "batch_max_wait",
            "max_inflight_orders",
            "order_timeout",
            "shutdown_grace",
        ],
        false,
        problems,
    );
    s.int("batch_max_size", &mut out.batch_max_size, &(1..=65_536));
    s.duration(
        "batch_max_wait",
        &mut out.batch_max_wait,
        Duration::ZERO,
        Some(SECOND),
    );
    s.int(
        "max_inflight_orders",
        &mut out.max_inflight_orders,
        &(1..=1_000_000),
    );
    s.duration(
        "order_timeout",
        &mut out.order_timeout,
        Duration::from_millis(100),
        Some(5 * MINUTE),
    );
    s.duration(
        "shutdown_grace",
        &mut out.shutdown_grace,
        Duration::ZERO,
        Some(5 * MINUTE),
    );
    out
}

fn resources(vars: &Vars<'_>, problems: &mut Problems) -> ResourceAllocation {
    let mut out = ResourceAllocation::default();
    let mut s = Section::open(
        names::RESOURCE_ALLOCATION_SETTINGS,
        vars.get(names::RESOURCE_ALLOCATION_SETTINGS),
        &["device", "gpu_memory_budget_mb", "cpu_threads"],
        false,
        problems,
    );
    s.set("device", &mut out.device, DevicePreference::FORM, |v| {
        v.parse().map_err(|_| format!("`{v}` is not a device"))
    });
    s.int(
        "gpu_memory_budget_mb",
        &mut out.gpu_memory_budget_mb,
        &(1..=1_048_576),
    );
    s.int("cpu_threads", &mut out.cpu_threads, &(0..=4096));
    out
}

fn monitoring(vars: &Vars<'_>, problems: &mut Problems) -> Monitoring {
    let mut out = Monitoring::default();
    let mut s = Section::open(
        names::MONITORING_CONFIGURATIONS,
        vars.get(names::MONITORING_CONFIGURATIONS),
        &[
            "http_addr",
            "grpc_addr",
            "log_format",
            "log_level",
            "stale_after",
        ],
        false,
        problems,
    );
    let addr = |v: &str| {
        v.parse::<SocketAddr>()
            .map_err(|_| format!("`{v}` is not an ip:port address"))
    };
    let addr_form = "an ip:port socket address such as 127.0.0.1:9464";
    let http_ok = s.set("http_addr", &mut out.http_addr, addr_form, addr);
    let grpc_ok = s.set("grpc_addr", &mut out.grpc_addr, addr_form, addr);
    s.set("log_format", &mut out.log_format, LogFormat::FORM, |v| {
        v.parse().map_err(|_| format!("`{v}` is not a log format"))
    });
    s.set(
        "log_level",
        &mut out.log_level,
        "a level (trace, debug, info, warn, error, off) or `;`-separated target=level directives",
        log_directives,
    );
    s.duration(
        "stale_after",
        &mut out.stale_after,
        Duration::from_millis(100),
        None,
    );
    // Port 0 asks the OS for a free port, so two port-0 listeners do not collide.
    if http_ok && grpc_ok && out.http_addr == out.grpc_addr && out.http_addr.port() != 0 {
        s.problem(
            format!("http_addr and grpc_addr are both {}", out.http_addr),
            "two different listen addresses",
        );
    }
    out
}

/// Validates a `tracing` filter written with `;` (a `,` would end the key) and returns it
/// in the comma-separated form `tracing_subscriber::EnvFilter` parses.
fn log_directives(raw: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let mut out = Vec::new();
    for directive in raw
        .split([';', ','])
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let (target, level) = directive
            .split_once('=')
            .map_or((None, directive), |(t, l)| (Some(t.trim()), l.trim()));
        let level = level.to_ascii_lowercase();
        if !LEVELS.contains(&level.as_str()) {
            return Err(format!("`{level}` is not a level"));
        }
        match target {
            Some(t)
                if t.is_empty()
                    || !t
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_:-.".contains(c)) =>
            {
                return Err(format!("`{t}` is not a target name"));
            }
            Some(t) => out.push(format!("{t}={level}")),
            None => out.push(level),
        }
    }
    if out.is_empty() {
        return Err("has no directives".to_owned());
    }
    Ok(out.join(","))
}

fn backup(vars: &Vars<'_>, problems: &mut Problems) -> BackupSettings {
    let mut out = BackupSettings::default();
    let mut s = Section::open(
        names::BACKUP_SETTINGS,
        vars.get(names::BACKUP_SETTINGS),
        &["enabled", "dir", "interval", "retention"],
        false,
        problems,
    );
    let enabled_ok = s.bool("enabled", &mut out.enabled);
    s.set("dir", &mut out.dir, "a directory path", |v| {
        Ok(PathBuf::from(v))
    });
    s.duration("interval", &mut out.interval, MINUTE, None);
    s.int("retention", &mut out.retention, &(1..=100_000));
    if enabled_ok && out.enabled && out.dir.as_os_str().is_empty() {
        s.problem("dir is empty while backups are enabled", "a directory path");
    }
    out
}

pub(crate) fn encryption(vars: &Vars<'_>, problems: &mut Problems) -> EncryptionSettings {
    let mut out = EncryptionSettings::default();
    let mut s = Section::open(
        names::ENCRYPTION_SETTINGS,
        vars.get(names::ENCRYPTION_SETTINGS),
        &["key", "key_file", "algorithm"],
        true,
        problems,
    );
    s.set(
        "key",
        &mut out.key,
        "64 hexadecimal characters (32 bytes)",
        |v| {
            if v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()) {
                Ok(Some(SecretString::from(v)))
            } else {
                // Never echo the value: only its shape.
                Err(format!(
                    "the value (withheld) is {} characters{}",
                    v.chars().count(),
                    if v.chars().all(|c| c.is_ascii_hexdigit()) {
                        ""
                    } else {
                        " and not all hexadecimal"
                    }
                ))
            }
        },
    );
    s.set("key_file", &mut out.key_file, "a file path", |v| {
        non_empty(v).map(|v| Some(PathBuf::from(v)))
    });
    s.set(
        "algorithm",
        &mut out.algorithm,
        EncryptionSettings::ALGORITHM,
        |v| {
            if v == EncryptionSettings::ALGORITHM {
                Ok(v.to_owned())
            } else {
                Err(format!("`{v}` is not supported"))
            }
        },
    );
    if out.key.is_some() && out.key_file.is_some() {
        s.problem(
            "key and key_file are both set",
            "at most one of key and key_file",
        );
    }
    out
}

const TOKENS_FORM: &str = "`;`-separated name:role:sha256hex entries (unique names of letters, digits, `_`, `-` and `.`; role viewer, trader or admin; 64 hex characters), each optionally followed by :totp=BASE32SECRET (at least 16 bytes)";

fn access_control(vars: &Vars<'_>, problems: &mut Problems) -> AccessControl {
    const MIN_TOKEN: usize = 16;
    let mut out = AccessControl::default();
    let mut s = Section::open(
        names::ACCESS_CONTROL_CONFIG,
        vars.get(names::ACCESS_CONTROL_CONFIG),
        &[
            "tokens",
            "grpc_auth_token",
            "read_only",
            "allowed_clients",
            "open",
            "auth_failures_per_minute",
            "tls_cert",
            "tls_key",
            "tls_client_ca",
        ],
        true,
        problems,
    );
    let tokens_ok = s.set("tokens", &mut out.tokens, TOKENS_FORM, parse_tokens);
    let legacy_ok = s.set(
        "grpc_auth_token",
        &mut out.grpc_auth_token,
        "a token of at least 16 characters without `,` (deprecated: use tokens=)",
        |v| {
            let n = v.chars().count();
            if n >= MIN_TOKEN {
                Ok(Some(SecretString::from(v)))
            } else {
                Err(format!("the token (withheld) is only {n} characters"))
            }
        },
    );
    if let Some(legacy) = &out.grpc_auth_token {
        if out
            .tokens
            .iter()
            .any(|t| t.name == AccessControl::LEGACY_TOKEN_NAME)
        {
            s.problem(
                "tokens: the name `legacy` is taken by grpc_auth_token",
                "another token name, or no grpc_auth_token",
            );
        } else {
            out.tokens.push(AccessToken {
                name: AccessControl::LEGACY_TOKEN_NAME.to_owned(),
                role: Role::Admin,
                sha256: sha256(legacy.expose_secret().as_bytes()),
                totp_secret: None,
            });
        }
    }
    s.bool("read_only", &mut out.read_only);
    let clients_ok = s.set(
        "allowed_clients",
        &mut out.allowed_clients,
        "`;`-separated token names, each once",
        |v| parse_list(v, ';', ident),
    );
    if tokens_ok && legacy_ok && clients_ok {
        let unknown: Vec<&str> = out
            .allowed_clients
            .iter()
            .filter(|c| !out.tokens.iter().any(|t| &t.name == *c))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            s.problem(
                format!(
                    "allowed_clients: {} not a configured token name",
                    unknown
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                        + if unknown.len() == 1 { " is" } else { " are" }
                ),
                "names from tokens= (or `legacy` for grpc_auth_token)",
            );
        }
    }
    s.set(
        "open",
        &mut out.open,
        "`none`, or `;`-separated services from health and reflection",
        parse_open,
    );
    s.int(
        "auth_failures_per_minute",
        &mut out.auth_failures_per_minute,
        &(1..=100_000),
    );
    for (key, slot) in [
        ("tls_cert", &mut out.tls_cert),
        ("tls_key", &mut out.tls_key),
        ("tls_client_ca", &mut out.tls_client_ca),
    ] {
        s.set(key, slot, "a PEM file path", |v| {
            non_empty(v).map(|v| Some(PathBuf::from(v)))
        });
    }
    match (&out.tls_cert, &out.tls_key) {
        (Some(_), None) => s.problem(
            "tls_cert is set without tls_key",
            "both tls_cert and tls_key, or neither",
        ),
        (None, Some(_)) => s.problem(
            "tls_key is set without tls_cert",
            "both tls_cert and tls_key, or neither",
        ),
        _ => {}
    }
    if out.tls_client_ca.is_some() && out.tls_cert.is_none() {
        s.problem(
            "tls_client_ca is set without tls_cert and tls_key",
            "mTLS only on top of TLS: tls_cert and tls_key as well",
        );
    }
    out
}

/// Parses `tokens=`. Entries are identified by position or name, never echoed whole: the
/// TOTP secret is a secret.
fn parse_tokens(raw: &str) -> Result<Vec<AccessToken>, String> {
    let mut out: Vec<AccessToken> = Vec::new();
    let mut errors = Vec::new();
    for (i, entry) in raw.split(';').map(str::trim).enumerate() {
        if entry.is_empty() {
            continue;
        }
        let position = i + 1;
        let mut fields = entry.splitn(4, ':');
        let (Some(name), Some(role), Some(hash)) = (fields.next(), fields.next(), fields.next())
        else {
            errors.push(format!("entry {position} is not name:role:sha256hex"));
            continue;
        };
        let name = name.trim();
        if let Err(e) = ident(name) {
            errors.push(format!("entry {position}: {e}"));
            continue;
        }
        if out.iter().any(|t| t.name == name) {
            errors.push(format!("`{name}` is listed more than once"));
            continue;
        }
        let role = match role.trim().parse::<Role>() {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("`{name}`: role {e}"));
                continue;
            }
        };
        let Some(sha256) = hex32(hash.trim()) else {
            errors.push(format!(
                "`{name}`: the hash is not 64 hexadecimal characters"
            ));
            continue;
        };
        let totp_secret = match fields.next().map(str::trim) {
            None => None,
            Some(extra) => match extra.strip_prefix("totp=") {
                Some(secret) => match totp_secret(secret) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        errors.push(format!("`{name}`: totp secret (withheld) {e}"));
                        continue;
                    }
                },
                None => {
                    errors.push(format!("`{name}`: the 4th field is not totp=BASE32SECRET"));
                    continue;
                }
            },
        };
        out.push(AccessToken {
            name: name.to_owned(),
            role,
            sha256,
            totp_secret,
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("; "))
    }
}

/// Normalises and checks a base32 TOTP secret: upper case, no padding or spaces, at least
/// 16 bytes (RFC 4226 asks for 128 bits at least).
fn totp_secret(raw: &str) -> Result<SecretString, String> {
    let normal: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match data_encoding::BASE32_NOPAD.decode(normal.as_bytes()) {
        Ok(bytes) if bytes.len() >= 16 => Ok(SecretString::from(normal)),
        Ok(bytes) => Err(format!("is only {} bytes", bytes.len())),
        Err(_) => Err("is not base32 (RFC 4648: A-Z and 2-7)".to_owned()),
    }
}

/// 64 hex characters into 32 bytes.
fn hex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *slot = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

fn parse_open(raw: &str) -> Result<OpenServices, String> {
    if raw.trim() == "none" {
        return Ok(OpenServices {
            health: false,
            reflection: false,
        });
    }
    let mut out = OpenServices {
        health: false,
        reflection: false,
    };
    for item in parse_list(raw, ';', |v| match v {
        "health" | "reflection" => Ok(v.to_owned()),
        other => Err(format!("`{other}` is not health or reflection")),
    })? {
        match item.as_str() {
            "health" => out.health = true,
            _ => out.reflection = true,
        }
    }
    Ok(out)
}

fn audit(vars: &Vars<'_>, problems: &mut Problems) -> AuditLogging {
    let mut out = AuditLogging::default();
    let mut s = Section::open(
        names::AUDIT_LOGGING_SETTINGS,
        vars.get(names::AUDIT_LOGGING_SETTINGS),
        &[
            "enabled",
            "stream",
            "retention_days",
            "key",
            "key_file",
            "archive_dir",
        ],
        true,
        problems,
    );
    s.bool("enabled", &mut out.enabled);
    s.set(
        "stream",
        &mut out.stream,
        "a Redis stream name without spaces",
        |v| {
            if v.is_empty() || v.chars().any(char::is_whitespace) {
                Err(format!("`{v}` is not a stream name"))
            } else {
                Ok(v.to_owned())
            }
        },
    );
    s.int("retention_days", &mut out.retention_days, &(1..=36_500));
    s.set("key", &mut out.key, HEX_KEY_FORM, hex_key);
    s.set("key_file", &mut out.key_file, "a file path", |v| {
        non_empty(v).map(|v| Some(PathBuf::from(v)))
    });
    s.set(
        "archive_dir",
        &mut out.archive_dir,
        "a directory path",
        |v| non_empty(v).map(PathBuf::from),
    );
    if out.key.is_some() && out.key_file.is_some() {
        s.problem(
            "key and key_file are both set",
            "at most one of key and key_file",
        );
    }
    out
}

const HEX_KEY_FORM: &str = "64 hexadecimal characters (32 bytes)";

/// A 32-byte key written as 64 hex characters. The problem names the value's shape only,
/// never the value.
fn hex_key(v: &str) -> Result<Option<SecretString>, String> {
    if v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(Some(SecretString::from(v)))
    } else {
        Err(format!(
            "the value (withheld) is {} characters{}",
            v.chars().count(),
            if v.chars().all(|c| c.is_ascii_hexdigit()) {
                ""
            } else {
                " and not all hexadecimal"
            }
        ))
    }
}

/// `supported` is `None` when `SUPPORTED_TRADING_PAIRS` itself was invalid.
pub(crate) fn compliance(
    vars: &Vars<'_>,
    supported: Option<&[Pair]>,
    problems: &mut Problems,
) -> Compliance {
    let mut out = Compliance::default();
    let mut s = Section::open(
        names::COMPLIANCE_SETTINGS,
        vars.get(names::COMPLIANCE_SETTINGS),
        &[
            "max_order_notional",
            "max_daily_notional",
            "daily_reset_hour",
            "restricted_pairs",
            "trading_enabled",
        ],
        false,
        problems,
    );
    let order_ok = s.set(
        "max_order_notional",
        &mut out.max_order_notional,
        NOTIONAL_FORM,
        positive_decimal,
    );
    let daily_ok = s.set(
        "max_daily_notional",
        &mut out.max_daily_notional,
        NOTIONAL_FORM,
        positive_decimal,
    );
    let restricted_ok = s.set(
        "restricted_pairs",
        &mut out.restricted_pairs,
        "`;`-separated upper-case BASE-QUOTE pairs, each once",
        |v| parse_list(v, ';', pair),
    );
    s.int("daily_reset_hour", &mut out.daily_reset_hour, &(0..=23));
    s.bool("trading_enabled", &mut out.trading_enabled);
    if order_ok && daily_ok && out.max_daily_notional < out.max_order_notional {
        s.problem(
            format!(
                "max_daily_notional {} is less than max_order_notional {}",
                out.max_daily_notional, out.max_order_notional
            ),
            "max_daily_notional at least max_order_notional",
        );
    }
    if let (true, Some(supported)) = (restricted_ok, supported) {
        for p in out
            .restricted_pairs
            .iter()
            .filter(|p| !supported.iter().any(|s| s.covers(p)))
        {
            s.problem(
                format!(
                    "restricted pair {p} is not in {}",
                    names::SUPPORTED_TRADING_PAIRS
                ),
                format!("only pairs listed in {}", names::SUPPORTED_TRADING_PAIRS),
            );
        }
    }
    out
}

/// Both halves of a credential, or neither; a lone half is a problem named after the
/// missing variable.
fn both<'a>(
    vars: &Vars<'a>,
    first: &'static str,
    second: &'static str,
    problems: &mut Problems,
) -> Option<(Value<'a>, Value<'a>)> {
    let expected = format!("both {first} and {second}, or neither for paper mode");
    match (vars.get(first), vars.get(second)) {
        (Some(a), Some(b)) => Some((a, b)),
        (None, None) => None,
        (Some(set), None) => {
            problems.push(second, format!("is not set but {} is", set.name), expected);
            None
        }
        (None, Some(set)) => {
            problems.push(first, format!("is not set but {} is", set.name), expected);
            None
        }
    }
}

/// `BINANCEUS_RECV_WINDOW`: a duration from 1 ms to 60 s (Binance refuses a larger one
/// with -1131), in whole milliseconds as the venue takes it.
fn binanceus_recv_window(vars: &Vars<'_>, default: Duration, problems: &mut Problems) -> Duration {
    let Some(v) = vars.get(names::BINANCEUS_RECV_WINDOW) else {
        return default;
    };
    let (min, max) = (Duration::from_millis(1), Duration::from_secs(60));
    match duration_in(v.raw, min, Some(max)) {
        Ok(d) if d.subsec_nanos().is_multiple_of(1_000_000) => d,
        Ok(d) => {
            problems.push(
                v.name,
                format!(
                    "{} is not a whole number of milliseconds",
                    format_duration(d)
                ),
                duration_form(min, Some(max)),
            );
            default
        }
        Err(e) => {
            problems.push(v.name, e, duration_form(min, Some(max)));
            default
        }
    }
}

fn credentials(vars: &Vars<'_>, problems: &mut Problems) -> Credentials {
    let binanceus = both(
        vars,
        names::BINANCEUS_API_KEY,
        names::BINANCEUS_API_SECRET,
        problems,
    )
    .map(|(key, secret)| BinanceUsCredentials {
        api_key: SecretString::from(key.raw),
        api_secret: SecretString::from(secret.raw),
        key_type: BinanceUsKeyType::Hmac,
    });
    let key_type = match vars.get(names::BINANCEUS_KEY_TYPE) {
        None => BinanceUsKeyType::Hmac,
        Some(v) => match v.raw.to_ascii_lowercase().as_str() {
            "hmac" => BinanceUsKeyType::Hmac,
            "ed25519" => BinanceUsKeyType::Ed25519,
            other => {
                problems.push(
                    v.name,
                    format!("`{other}` is not a key type"),
                    "hmac or ed25519",
                );
                BinanceUsKeyType::Hmac
            }
        },
    };
    let binanceus = binanceus.map(|c| BinanceUsCredentials { key_type, ..c });
    let coinbase = both(
        vars,
        names::COINBASE_API_KEY_NAME,
        names::COINBASE_API_SECRET,
        problems,
    )
    .and_then(|(name, key)| {
        if !cdp_key_name(name.raw) {
            problems.push(
                name.name,
                format!("`{}` is not a CDP key name", name.raw),
                "organizations/{org_id}/apiKeys/{key_id} or a bare key UUID",
            );
            return None;
        }
        Some(CoinbaseCredentials {
            key_name: name.raw.to_owned(),
            api_secret: SecretString::from(pem_newlines(key.raw)),
        })
    });
    let oanda_environment = match vars.get(names::OANDA_ENVIRONMENT) {
        None => OandaEnvironment::Practice,
        Some(v) => match v.raw.to_ascii_lowercase().as_str() {
            "practice" => OandaEnvironment::Practice,
            "live" => OandaEnvironment::Live,
            other => {
                problems.push(
                    v.name,
                    format!("`{other}` is not an OANDA environment"),
                    "practice or live",
                );
                OandaEnvironment::Practice
            }
        },
    };
    let oanda = both(
        vars,
        names::OANDA_API_TOKEN,
        names::OANDA_ACCOUNT_ID,
        problems,
    )
    .and_then(|(token, account)| {
        if !oanda_account_id(account.raw) {
            problems.push(
                account.name,
                format!("`{}` is not an account id", account.raw),
                "an OANDA account id NNN-NNN-NNNNNNN-NNN such as 101-001-1234567-001",
            );
            return None;
        }
        Some(OandaCredentials {
            token: SecretString::from(token.raw),
            account_id: account.raw.to_owned(),
            environment: oanda_environment,
        })
    });
    Credentials {
        binanceus,
        coinbase,
        oanda,
    }
}

/// A PEM key pasted into a single-line variable usually arrives with literal `\n`; turn
/// those back into newlines so the signer sees real PEM.
/// Whether `name` has the shape of a CDP API key name: `organizations/{org}/apiKeys/{id}`
/// (non-empty segments of ASCII letters, digits, `-`, `_` and `.`, the shape
/// `gekko_coinbase::CdpKey` accepts) or a bare UUID (8-4-4-4-12 hex digits). The key
/// itself is checked by the Coinbase gateway, which can parse it.
fn cdp_key_name(name: &str) -> bool {
    let segment = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let parts: Vec<&str> = name.split('/').collect();
    if let ["organizations", org, "apiKeys", id] = parts.as_slice() {
        return segment(org) && segment(id);
    }
    let groups: Vec<&str> = name.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether `id` has the shape of an OANDA v20 account id: four groups of digits
/// separated by `-`, `NNN-NNN-NNNNNNN-NNN` (the third group is the user number, 5 to 9
/// digits).
fn oanda_account_id(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 4
        && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_digit()))
        && groups[0].len() == 3
        && groups[1].len() == 3
        && (5..=9).contains(&groups[2].len())
        && groups[3].len() == 3
}

fn pem_newlines(raw: &str) -> String {
    if raw.contains('\n') {
        raw.to_owned()
    } else {
        raw.replace("\\n", "\n")
    }
}

fn controller(vars: &Vars<'_>, problems: &mut Problems) -> ControllerSettings {
    let mut out = ControllerSettings::default();
    let mut s = Section::open(
        names::CONTROLLER_SETTINGS,
        vars.get(names::CONTROLLER_SETTINGS),
        &[
            "shutdown_mode",
            "step_deadline",
            "reports_dir",
            "required_checks",
        ],
        false,
        problems,
    );
    s.set(
        "shutdown_mode",
        &mut out.shutdown_mode,
        "one of stop-entries, cancel, flatten",
        str::parse::<ShutdownMode>,
    );
    s.duration("step_deadline", &mut out.step_deadline, SECOND, None);
    s.set(
        "reports_dir",
        &mut out.reports_dir,
        "a directory path",
        |v| non_empty(v).map(PathBuf::from),
    );
    let checks_form = format!(
        "`;`-separated check names, each once, from {}, or `none`",
        ControllerSettings::CHECKS.join(", ")
    );
    s.set(
        "required_checks",
        &mut out.required_checks,
        &checks_form,
        |v| {
            if v == "none" {
                return Ok(Vec::new());
            }
            parse_list(v, ';', |c| {
                if ControllerSettings::CHECKS.contains(&c) {
                    Ok(c.to_owned())
                } else {
                    Err(format!("`{c}` is not a start-up check"))
                }
            })
        },
    );
    out
}

fn strategy(vars: &Vars<'_>, problems: &mut Problems) -> StrategySettings {
    let mut out = StrategySettings::default();
    let mut s = Section::open(
        names::STRATEGY_SETTINGS,
        vars.get(names::STRATEGY_SETTINGS),
        &[
            "enabled",
            "allow_live",
            "name",
            "order_notional",
            "cooldown",
        ],
        false,
        problems,
    );
    s.bool("enabled", &mut out.enabled);
    s.bool("allow_live", &mut out.allow_live);
    s.set("name", &mut out.name, IDENT_FORM, ident);
    s.set(
        "order_notional",
        &mut out.order_notional,
        NOTIONAL_FORM,
        positive_decimal,
    );
    s.duration("cooldown", &mut out.cooldown, Duration::ZERO, None);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_directives_are_normalised() {
        assert_eq!(log_directives("info"), Ok("info".to_owned()));
        assert_eq!(
            log_directives("INFO; gekko_bus=debug"),
            Ok("info,gekko_bus=debug".to_owned())
        );
        assert!(log_directives("loud").is_err());
        assert!(log_directives("a b=info").is_err());
        assert!(log_directives(";").is_err());
    }

    #[test]
    fn pem_newlines_are_restored() {
        assert_eq!(pem_newlines("a\\nb"), "a\nb");
        assert_eq!(pem_newlines("a\nb\\n"), "a\nb\\n");
    }
}
