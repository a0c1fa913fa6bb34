//! The typed configuration: what the rest of gekko reads after validation succeeded.
//!
//! Every section has a `Default` that is the value used when its variable is unset, so the
//! defaults live here and nowhere else. Secrets are [`SecretString`]: redacted by `Debug`
//! and zeroized on drop. URLs are plain strings (other crates hand them to HTTP and Redis
//! clients), so [`GekkoConfig`]'s `Debug` redacts any password they carry.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use gekko_core::{InstrumentId, VenueId};
use rust_decimal::Decimal;
use secrecy::SecretString;

/// What replaces a secret in `Debug` output and redacted URLs.
pub const REDACTED: &str = "***";

/// How often a model without an entry in `MODEL_UPDATE_FREQUENCIES` is checked for a new
/// version.
pub const DEFAULT_MODEL_UPDATE_FREQUENCY: Duration = Duration::from_mins(5);

/// A string could not be parsed into one of this crate's small value types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not {expected}")]
pub struct ParseValueError {
    /// The offending input.
    pub value: String,
    /// What would have been accepted.
    pub expected: &'static str,
}

/// A trading pair in canonical `BASE-QUOTE` form, both parts upper-case ASCII letters and
/// digits, optionally qualified by a venue (`binanceus:BTC-USD`).
///
/// A plain pair means "on every venue that lists it": `SUPPORTED_TRADING_PAIRS` spans
/// venues, and each gateway trades the pairs its venue offers, skipping the rest. A
/// qualified pair applies to that venue only. See [`Pair::instrument`] for the
/// venue-bound id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pair {
    /// The venue this entry is limited to; `None` for every venue.
    pub venue: Option<VenueId>,
    /// Base asset (`BTC`).
    pub base: String,
    /// Quote asset (`USD`).
    pub quote: String,
}

impl Pair {
    /// The "expected" text for a pair.
    pub const FORM: &'static str = "an upper-case BASE-QUOTE pair such as BTC-USD, optionally venue-qualified as binanceus:BTC-USD";

    /// A plain (every-venue) pair.
    #[must_use]
    pub fn new(base: &str, quote: &str) -> Self {
        Self {
            venue: None,
            base: base.to_owned(),
            quote: quote.to_owned(),
        }
    }

    /// This pair at `venue`.
    #[must_use]
    pub fn instrument(&self, venue: VenueId) -> InstrumentId {
        InstrumentId::new(venue, &self.base, &self.quote)
    }

    /// Whether this entry applies to `venue` (plain entries apply to every venue).
    #[must_use]
    pub fn applies_to(&self, venue: VenueId) -> bool {
        self.venue.is_none_or(|v| v == venue)
    }

    /// The canonical `BASE-QUOTE` text, without the venue.
    #[must_use]
    pub fn canonical(&self) -> String {
        format!("{}-{}", self.base, self.quote)
    }

    /// Whether `other` names the same pair on a venue this entry covers: a plain entry
    /// covers every qualified spelling of its pair; a qualified one only its own venue.
    #[must_use]
    pub fn covers(&self, other: &Pair) -> bool {
        self.base == other.base
            && self.quote == other.quote
            && (self.venue.is_none() || self.venue == other.venue)
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(v) = self.venue {
            write!(f, "{v}:")?;
        }
        write!(f, "{}-{}", self.base, self.quote)
    }
}

impl FromStr for Pair {
    type Err = ParseValueError;

    /// Parses `BASE-QUOTE` or `venue:BASE-QUOTE`. Lower case is rejected rather than
    /// fixed up, so the spelling in config is the spelling in logs and metrics.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseValueError {
            value: s.to_owned(),
            expected: Self::FORM,
        };
        let (venue, s) = match s.split_once(':') {
            Some((v, rest)) => (Some(v.parse::<VenueId>().map_err(|_| bad())?), rest),
            None => (None, s),
        };
        let part = |p: &str| {
            !p.is_empty()
                && p.len() <= 16
                && p.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        };
        match s.split_once('-') {
            Some((base, quote)) if part(base) && part(quote) => Ok(Self {
                venue,
                base: base.to_owned(),
                quote: quote.to_owned(),
            }),
            _ => Err(ParseValueError {
                value: s.to_owned(),
                expected: Self::FORM,
            }),
        }
    }
}

/// A request budget: at most `max_requests` per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per period; at least 1.
    pub max_requests: u32,
    /// The period; greater than zero.
    pub period: Duration,
}

impl RateLimit {
    /// The budget as whole requests per second (at least 1), for venues whose clients
    /// count per second (Coinbase, OANDA).
    #[must_use]
    pub fn per_second(&self) -> u32 {
        let per_s = u128::from(self.max_requests) * 1000 / self.period.as_millis().max(1);
        u32::try_from(per_s).unwrap_or(u32::MAX).max(1)
    }

    /// Shorthand constructor.
    #[must_use]
    pub const fn new(max_requests: u32, period: Duration) -> Self {
        Self {
            max_requests,
            period,
        }
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.max_requests,
            crate::parse::format_duration(self.period)
        )
    }
}

/// The built-in rate limit of `venue`: its published limit for the endpoints gekko uses.
#[must_use]
pub const fn default_rate_limit(venue: VenueId) -> RateLimit {
    match venue {
        VenueId::BinanceUs => RateLimit::new(1200, Duration::from_mins(1)),
        VenueId::Coinbase => RateLimit::new(30, Duration::from_secs(1)),
        VenueId::Oanda => RateLimit::new(100, Duration::from_secs(1)),
    }
}

/// [`default_rate_limit`] for every venue.
#[must_use]
pub fn default_rate_limits() -> BTreeMap<VenueId, RateLimit> {
    VenueId::ALL
        .into_iter()
        .map(|venue| (venue, default_rate_limit(venue)))
        .collect()
}

/// Inputs of the prediction loop.
///
/// A model's `window` and `horizon` are fixed when it is trained (its `meta.json`); set
/// here, they are the values the operator expects, and the inference service refuses to
/// start on a model trained with others. `interval` samples each instrument's quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PredictionParams {
    /// Number of past observations fed to a model; 2 to 4096.
    pub window: u32,
    /// Whether `window` was set (then the model's must equal it).
    pub window_set: bool,
    /// Steps ahead to predict; 1 to `window`.
    pub horizon: u32,
    /// Whether `horizon` was set (then the model's must equal it).
    pub horizon_set: bool,
    /// Least time between two observations of one instrument, by the quotes' own
    /// timestamps: a quote sooner than that after the last one observed is skipped.
    /// Zero observes every quote.
    pub interval: Duration,
}

impl Default for PredictionParams {
    fn default() -> Self {
        Self {
            window: 32,
            window_set: false,
            horizon: 1,
            horizon_set: false,
            interval: Duration::ZERO,
        }
    }
}

/// Throughput and latency knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerformanceParams {
    /// Largest inference batch; 1 to 65536.
    pub batch_max_size: usize,
    /// Longest a request waits for its batch to fill; at most 1s.
    pub batch_max_wait: Duration,
    /// Orders that may be in flight (sent, not yet acknowledged) per gateway.
    pub max_inflight_orders: u32,
    /// How long an order submit may take before it is treated as "in flight, reconcile".
    pub order_timeout: Duration,
    /// How long shutdown waits for tasks before giving up on them.
    pub shutdown_grace: Duration,
}

impl Default for PerformanceParams {
    fn default() -> Self {
        Self {
            batch_max_size: 64,
            batch_max_wait: Duration::from_millis(2),
            max_inflight_orders: 64,
            order_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Declares a config enum with its lower-case spellings, `as_str`, `Display` and `FromStr`.
macro_rules! spelled_enum {
    ($(#[$meta:meta])* $name:ident, $form:literal, { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The "expected" text listing every spelling.
            pub const FORM: &'static str = $form;

            /// The spelling used in config.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseValueError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(ParseValueError { value: s.to_owned(), expected: $form }),
                }
            }
        }
    };
}

spelled_enum!(
    /// Where inference runs.
    DevicePreference, "one of auto, cuda, metal, cpu", {
        /// The best available accelerator, else CPU.
        #[default]
        Auto = "auto",
        /// An NVIDIA GPU; startup fails if none is usable.
        Cuda = "cuda",
        /// Apple Metal; startup fails if unavailable.
        Metal = "metal",
        /// CPU only.
        Cpu = "cpu",
    }
);

spelled_enum!(
    /// How log lines are written.
    LogFormat, "one of json, pretty", {
        /// One JSON object per line, for log shippers.
        Json = "json",
        /// Human-readable, for terminals.
        #[default]
        Pretty = "pretty",
    }
);

/// Compute resources for inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceAllocation {
    /// Device preference.
    pub device: DevicePreference,
    /// GPU memory the inference service may use, in MiB.
    pub gpu_memory_budget_mb: u64,
    /// CPU threads for inference; 0 means one per core.
    pub cpu_threads: usize,
}

impl Default for ResourceAllocation {
    fn default() -> Self {
        Self {
            device: DevicePreference::Auto,
            gpu_memory_budget_mb: 2048,
            cpu_threads: 0,
        }
    }
}

/// Observability endpoints and logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitoring {
    /// HTTP listener serving `/metrics`, `/livez` and `/readyz`.
    pub http_addr: SocketAddr,
    /// gRPC listener.
    pub grpc_addr: SocketAddr,
    /// Log line format.
    pub log_format: LogFormat,
    /// A `tracing` filter directive string, comma-separated (`info,gekko_bus=debug`).
    pub log_level: String,
    /// How old the latest market data may be before readiness reports it stale.
    pub stale_after: Duration,
}

impl Default for Monitoring {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            log_format: LogFormat::Pretty,
            log_level: "info".to_owned(),
            stale_after: Duration::from_secs(10),
        }
    }
}

/// Periodic local backups of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSettings {
    /// Whether backups run.
    pub enabled: bool,
    /// Where backups are written.
    pub dir: PathBuf,
    /// Time between backups; at least 1m.
    pub interval: Duration,
    /// Backups kept; at least 1.
    pub retention: u32,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            dir: PathBuf::from("./backups"),
            interval: Duration::from_hours(1),
            retention: 7,
        }
    }
}

/// At-rest encryption of stored secrets and backups.
#[derive(Debug, Clone)]
pub struct EncryptionSettings {
    /// The key as 64 hex characters (32 bytes). Exclusive with `key_file`.
    pub key: Option<SecretString>,
    /// A file holding the key. Exclusive with `key`. Not read during validation.
    pub key_file: Option<PathBuf>,
    /// The AEAD; only `xchacha20poly1305`.
    pub algorithm: String,
}

impl EncryptionSettings {
    /// The only algorithm accepted.
    pub const ALGORITHM: &'static str = "xchacha20poly1305";
}

impl Default for EncryptionSettings {
    fn default() -> Self {
        Self {
            key: None,
            key_file: None,
            algorithm: Self::ALGORITHM.to_owned(),
        }
    }
}

/// What a token may do. Ordered: every role may do what the roles below it may.
///
/// `gekko-security` re-exports this as its `Role` and holds the table of which role each
/// gRPC method needs; it lives here because the loader parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads: accounts, orders, quotes, status, predictions.
    Viewer,
    /// Viewer, plus placing and cancelling orders.
    Trader,
    /// Trader, plus closing positions, shutdown and the trading switch.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Self; 3] = [Self::Viewer, Self::Trader, Self::Admin];

    /// The lower-case name used in config (`viewer`, `trader`, `admin`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Trader => "trader",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseValueError {
                value: s.to_owned(),
                expected: "one of viewer, trader, admin",
            })
    }
}

/// One configured API token: its name, its role and the SHA-256 of the token itself.
///
/// The token is never configured in plain text, only its hash, so a leaked env file does
/// not leak a usable token. `Debug` shows the name, role and whether a TOTP secret is set,
/// never the secret.
#[derive(Clone)]
pub struct AccessToken {
    /// A unique name; what audit records and `allowed_clients` call this client.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// SHA-256 of the token string.
    pub sha256: [u8; 32],
    /// The RFC 6238 TOTP secret (base32, upper case, no padding) when this token needs a
    /// second factor on the methods that ask for one.
    pub totp_secret: Option<SecretString>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("totp", &self.totp_secret.as_ref().map(|_| REDACTED))
            .finish_non_exhaustive()
    }
}

/// Which gRPC services answer without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenServices {
    /// `grpc.health.v1.Health`.
    pub health: bool,
    /// Server reflection (`grpc.reflection.v1` and `v1alpha`).
    pub reflection: bool,
}

impl Default for OpenServices {
    fn default() -> Self {
        Self {
            health: true,
            reflection: true,
        }
    }
}

/// Who may talk to gekko's gRPC services and what they may do.
///
/// Enforced by `gekko-security`'s `AuthLayer` on the whole gRPC server; TLS applies to the
/// gRPC and the HTTP (`/metrics`) listeners.
#[derive(Debug, Clone)]
pub struct AccessControl {
    /// The configured tokens (`tokens=`), plus `legacy` (admin) when the deprecated
    /// `grpc_auth_token` is set. None means auth is off (local paper use).
    pub tokens: Vec<AccessToken>,
    /// The deprecated single token, kept so old configs keep working; it is also listed in
    /// `tokens` as `legacy`, so nothing else needs to read this.
    pub grpc_auth_token: Option<SecretString>,
    /// Reject every state-changing call.
    pub read_only: bool,
    /// Token names allowed to connect; empty means any configured token.
    pub allowed_clients: Vec<String>,
    /// Services that answer without a token.
    pub open: OpenServices,
    /// Failed authentications per peer IP per minute before that peer is refused outright.
    pub auth_failures_per_minute: u32,
    /// PEM certificate chain served by gRPC and HTTP; with `tls_key`, TLS is on.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM CA: when set, clients must present a certificate it signed (mTLS).
    pub tls_client_ca: Option<PathBuf>,
}

impl AccessControl {
    /// The name the deprecated `grpc_auth_token` goes by.
    pub const LEGACY_TOKEN_NAME: &'static str = "legacy";

    /// Whether any token is configured (otherwise auth is off).
    #[must_use]
    pub fn auth_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Whether TLS is configured (certificate and key).
    #[must_use]
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }
}

impl Default for AccessControl {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            grpc_auth_token: None,
            read_only: false,
            allowed_clients: Vec::new(),
            open: OpenServices::default(),
            auth_failures_per_minute: 10,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
        }
    }
}

/// The tamper-evident audit trail (see the `gekko-audit` crate).
///
/// `Debug` shows whether a key is configured, never the key.
#[derive(Clone)]
pub struct AuditLogging {
    /// Whether audit records are written.
    pub enabled: bool,
    /// The Redis stream they go to. One stream has one writer process: `gekko up` writes
    /// this stream, a standalone service binary writes `<stream>:<program>`.
    pub stream: String,
    /// Days records stay in the stream before they are moved to a sealed archive file.
    pub retention_days: u32,
    /// The audit key as 64 hex characters (32 bytes). Exclusive with `key_file`.
    pub key: Option<SecretString>,
    /// A file holding the key as 64 hex characters. Exclusive with `key`. Not read during
    /// validation.
    pub key_file: Option<PathBuf>,
    /// Where sealed archives (and, without a configured key, the generated key file
    /// `audit.key`) are written.
    pub archive_dir: PathBuf,
}

impl AuditLogging {
    /// The name of the key file generated in [`archive_dir`](Self::archive_dir) when
    /// neither `key` nor `key_file` is configured.
    pub const GENERATED_KEY_FILE: &'static str = "audit.key";
}

impl Default for AuditLogging {
    fn default() -> Self {
        Self {
            enabled: true,
            stream: "gekko:audit".to_owned(),
            retention_days: 365,
            key: None,
            key_file: None,
            archive_dir: PathBuf::from("./audit-archive"),
        }
    }
}

impl fmt::Debug for AuditLogging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLogging")
            .field("enabled", &self.enabled)
            .field("stream", &self.stream)
            .field("retention_days", &self.retention_days)
            .field("key", &self.key.as_ref().map(|_| REDACTED))
            .field("key_file", &self.key_file)
            .field("archive_dir", &self.archive_dir)
            .finish()
    }
}

/// Pre-trade compliance limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compliance {
    /// Largest notional (price times quantity, quote currency) of one order.
    pub max_order_notional: Decimal,
    /// Largest notional sent per trading day (orders the venue did not refuse); at least
    /// `max_order_notional`.
    pub max_daily_notional: Decimal,
    /// The UTC hour (0..=23) at which the trading day of `max_daily_notional` starts.
    pub daily_reset_hour: u8,
    /// Pairs that may not be traded even though they are supported.
    pub restricted_pairs: Vec<Pair>,
    /// The master switch: `false` rejects every new order (the runtime kill switch,
    /// `SetTradingEnabled`, cannot override it).
    pub trading_enabled: bool,
}

impl Default for Compliance {
    fn default() -> Self {
        Self {
            max_order_notional: Decimal::new(100_000, 0),
            max_daily_notional: Decimal::new(1_000_000, 0),
            daily_reset_hour: 0,
            restricted_pairs: Vec::new(),
            trading_enabled: true,
        }
    }
}

/// What a shutdown does before the process stops, each step a superset of the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum ShutdownMode {
    /// Refuse new orders; leave working orders and positions as they are.
    StopEntries,
    /// Also cancel every working order.
    #[default]
    Cancel,
    /// Also close every position (the venue's native close where it has one).
    Flatten,
}

impl ShutdownMode {
    /// Every mode, in increasing order of what it does.
    pub const ALL: [ShutdownMode; 3] = [Self::StopEntries, Self::Cancel, Self::Flatten];

    /// The name used in config, on the command line and in reports.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::StopEntries => "stop-entries",
            Self::Cancel => "cancel",
            Self::Flatten => "flatten",
        }
    }
}

impl std::fmt::Display for ShutdownMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ShutdownMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a shutdown mode"))
    }
}

/// The controller: how `gekko up` starts and stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerSettings {
    /// What SIGTERM/SIGINT does; `SystemService.Shutdown` and `gekko down` may ask for
    /// another mode.
    pub shutdown_mode: ShutdownMode,
    /// How long each shutdown step (stop entries, cancel, flatten) waits for the venues
    /// to confirm before it reports what could not be done and moves on.
    pub step_deadline: Duration,
    /// Where the final report (`.json` and `.md`) is written on every shutdown.
    pub reports_dir: PathBuf,
    /// Start-up checks whose failure stops `gekko up` (exit 69); the others only warn.
    pub required_checks: Vec<String>,
}

impl ControllerSettings {
    /// The start-up checks a name in `required_checks` may refer to.
    pub const CHECKS: &'static [&'static str] = &[
        "config", "docker", "redis", "venues", "mcp", "llm", "gpu", "security",
    ];
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            shutdown_mode: ShutdownMode::Cancel,
            step_deadline: Duration::from_secs(10),
            reports_dir: PathBuf::from("reports"),
            required_checks: vec!["config".to_owned(), "redis".to_owned()],
        }
    }
}

/// The trading loop: model signals above their confidence threshold become orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrategySettings {
    /// Whether the loop runs. Off by default; `gekko up --paper-trade` turns it on when
    /// every venue is simulated.
    pub enabled: bool,
    /// Whether it may trade on a venue with live credentials. Off by default.
    pub allow_live: bool,
    /// The strategy's name: the namespace of its deterministic client order ids.
    pub name: String,
    /// The notional (quote currency) of one order, capped by `POSITION_LIMITS`.
    pub order_notional: Decimal,
    /// The least time between two orders on one instrument.
    pub cooldown: Duration,
}

impl Default for StrategySettings {
    fn default() -> Self {
        Self {
            enabled: false,
            allow_live: false,
            name: "strategy".to_owned(),
            order_notional: Decimal::new(100, 0),
            cooldown: Duration::from_secs(30),
        }
    }
}

/// How gekko reaches one MCP server of `MCP_SERVERS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A child process speaking MCP on its stdin and stdout (`stdio:COMMAND ARGS`). The
    /// command line is split on whitespace (double quotes keep spaces), never run through
    /// a shell.
    Stdio {
        /// The program to run (looked up in `PATH` when it has no `/`).
        program: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// Streamable HTTP at this `http(s)://` URL (usually ending in `/mcp`).
    Http {
        /// The endpoint.
        url: String,
    },
}

/// One external MCP server gekko connects to as a client (an entry of `MCP_SERVERS`).
#[derive(Clone)]
pub struct McpServer {
    /// The server's name: letters, digits, `_` and `-`; unique. Metrics, `/readyz`, `gekko
    /// check` and `McpService` name the server by it.
    pub name: String,
    /// How to reach it.
    pub transport: McpTransport,
    /// A required server that is down keeps gekko not ready; an optional one (the
    /// default) only warns.
    pub required: bool,
    /// The bearer token sent to an HTTP server (`MCP_SERVER_TOKENS`); never shown in
    /// `Debug`, logs or problems.
    pub token: Option<SecretString>,
    /// How long `initialize` (and the first `tools/list`) may take before the connection
    /// counts as down.
    pub init_timeout: Duration,
    /// How long one `tools/call` may take.
    pub call_timeout: Duration,
}

impl McpServer {
    /// The `init_timeout` of a server that sets none.
    pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The `call_timeout` of a server that sets none.
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

    /// The transport in words, for logs and reports: `stdio:PROGRAM` (arguments left out,
    /// they may carry paths or keys) or the URL with any credential redacted.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.transport {
            McpTransport::Stdio { program, .. } => format!("stdio:{program}"),
            McpTransport::Http { url } => redact_url(url),
        }
    }
}

impl fmt::Debug for McpServer {
    /// The token is redacted, a URL's credentials too, and a command's arguments are only
    /// counted: they may carry a key (`--api-key=...`), and the config is logged at start.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.transport {
            McpTransport::Stdio { program, args } => {
                format!("stdio:{program} ({} arguments)", args.len())
            }
            McpTransport::Http { url } => redact_url(url),
        };
        f.debug_struct("McpServer")
            .field("name", &self.name)
            .field("transport", &transport)
            .field("required", &self.required)
            .field("token", &self.token.as_ref().map(|_| REDACTED))
            .field("init_timeout", &self.init_timeout)
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

/// How a Binance.US secret signs requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BinanceUsKeyType {
    /// HMAC-SHA256 with the API secret (the documented Binance.US scheme).
    #[default]
    Hmac,
    /// Ed25519: the secret is the private key (32-byte seed as hex or base64, or PKCS#8 PEM).
    Ed25519,
}

/// Binance.US credentials.
#[derive(Debug, Clone)]
pub struct BinanceUsCredentials {
    /// `X-MBX-APIKEY`.
    pub api_key: SecretString,
    /// The signing secret: the HMAC secret, or the Ed25519 private key.
    pub api_secret: SecretString,
    /// Which of the two it is (`BINANCEUS_KEY_TYPE`).
    pub key_type: BinanceUsKeyType,
}

/// Coinbase Advanced Trade (CDP) credentials.
#[derive(Debug, Clone)]
pub struct CoinbaseCredentials {
    /// The key name (`organizations/{org}/apiKeys/{id}` or a bare UUID); not secret.
    pub key_name: String,
    /// The signing secret as given (literal `\n` turned into newlines): an EC P-256 key
    /// (SEC1 or PKCS#8 PEM) or an Ed25519 key (base64 of 64 or 32 bytes, or PKCS#8 PEM).
    /// The Coinbase gateway parses it (`gekko_coinbase::CdpKey::parse`) when it resolves
    /// its settings, so `gekko check` and start-up name a bad key before any port binds.
    pub api_secret: SecretString,
}

/// Which OANDA environment a token belongs to (`OANDA_ENVIRONMENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OandaEnvironment {
    /// fxTrade Practice (`api-fxpractice.oanda.com`), the default.
    #[default]
    Practice,
    /// fxTrade live (`api-fxtrade.oanda.com`): real money.
    Live,
}

impl OandaEnvironment {
    /// `practice` or `live`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Practice => "practice",
            Self::Live => "live",
        }
    }
}

/// OANDA v20 credentials.
#[derive(Debug, Clone)]
pub struct OandaCredentials {
    /// Personal access token.
    pub token: SecretString,
    /// Account id (`101-001-1234567-001`); not secret.
    pub account_id: String,
    /// The environment the token is for (`OANDA_ENVIRONMENT`, practice by default).
    pub environment: OandaEnvironment,
}

/// Per-venue credentials. A venue without credentials runs in paper mode.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Binance.US.
    pub binanceus: Option<BinanceUsCredentials>,
    /// Coinbase.
    pub coinbase: Option<CoinbaseCredentials>,
    /// OANDA.
    pub oanda: Option<OandaCredentials>,
}

/// The whole validated configuration.
///
/// `Debug` shows everything except secrets: credentials, the encryption key, the gRPC
/// token and passwords inside URLs are replaced by redaction markers.
#[derive(Clone)]
pub struct GekkoConfig {
    /// Redis URL (`redis://`, `rediss://` or `unix://`); none means the in-process bus.
    pub redis_url: Option<String>,
    /// REST base URL overrides per venue; a venue not listed uses its built-in default
    /// (or the simulator in paper mode).
    pub trading_api_endpoints: BTreeMap<VenueId, String>,
    /// Stream (websocket) base URL overrides per venue, from `venue.stream=url` entries of
    /// `TRADING_API_ENDPOINTS`.
    pub trading_stream_endpoints: BTreeMap<VenueId, String>,
    /// Private-stream base URL overrides per venue, from `venue.user_stream=url` entries of
    /// `TRADING_API_ENDPOINTS`, for venues whose user data has its own host (Coinbase).
    pub trading_user_stream_endpoints: BTreeMap<VenueId, String>,
    /// Secondary REST base URLs per venue, from `venue.fallback=url` entries of
    /// `TRADING_API_ENDPOINTS`: used while the primary's circuit is open.
    pub trading_fallback_endpoints: BTreeMap<VenueId, String>,
    /// `TRADING_TLS_CA_FILE`: a PEM file of roots trusted for venue connections besides the
    /// built-in ones (a simulator's or a corporate proxy's CA). Checked to hold a
    /// certificate at load.
    pub trading_tls_ca_file: Option<std::path::PathBuf>,
    /// Request rate limit per venue. Always holds every venue.
    pub trading_rate_limits: BTreeMap<VenueId, RateLimit>,
    /// Pairs gekko may trade; non-empty, no duplicates.
    pub supported_trading_pairs: Vec<Pair>,
    /// Largest absolute position per pair; a pair not listed has no limit.
    pub position_limits: BTreeMap<Pair, Decimal>,
    /// Model name to a directory or `http(s)://` URL.
    pub ml_model_endpoints: BTreeMap<String, String>,
    /// Window, horizon and interval of predictions.
    pub prediction_parameters: PredictionParams,
    /// How often each model is checked for a new version; see
    /// [`GekkoConfig::model_update_frequency`].
    pub model_update_frequencies: BTreeMap<String, Duration>,
    /// Minimum confidence, in `[0, 1]`, for a model's prediction to be acted on.
    pub confidence_thresholds: BTreeMap<String, Decimal>,
    /// Batching and timeouts.
    pub system_performance: PerformanceParams,
    /// Inference device and budgets.
    pub resource_allocation: ResourceAllocation,
    /// Listen addresses and logging.
    pub monitoring: Monitoring,
    /// Local backups.
    pub backup: BackupSettings,
    /// Where venue credentials come from at start-up (`CONFIG_SERVICE`).
    pub config_service: crate::config_service::ConfigServiceSettings,
    /// At-rest encryption.
    pub encryption: EncryptionSettings,
    /// gRPC access control.
    pub access_control: AccessControl,
    /// Audit trail.
    pub audit_logging: AuditLogging,
    /// Pre-trade limits.
    pub compliance: Compliance,
    /// Start-up checks and shutdown.
    pub controller: ControllerSettings,
    /// The signal-to-order loop.
    pub strategy: StrategySettings,
    /// The MCP server's risk guard and HTTP transport (`MCP_SETTINGS`).
    pub mcp: crate::mcp::McpSettings,
    /// External MCP servers gekko connects to (`MCP_SERVERS`, `MCP_SERVER_TOKENS`), in
    /// configuration order; names are unique.
    pub mcp_servers: Vec<McpServer>,
    /// Leader election between gateway replicas (`GATEWAY_HA_SETTINGS`).
    pub gateway_ha: crate::gateway_ha::GatewayHaSettings,
    /// Venue credentials.
    pub credentials: Credentials,
    /// Binance.US `recvWindow` (`BINANCEUS_RECV_WINDOW`), 1 ms to 60 s: how long after
    /// its timestamp the venue accepts a signed request. The gateway's in-flight
    /// resolver waits this plus a margin before it calls an unseen order "not placed".
    pub binanceus_recv_window: Duration,
    /// The LLM links (OpenRouter, LiteLLM, models per role); see `docs/llm.md`.
    pub llm: crate::llm::LlmConfig,
}

impl Default for GekkoConfig {
    /// The configuration an empty environment produces.
    fn default() -> Self {
        let pair = |base: &str| Pair {
            venue: None,
            base: base.to_owned(),
            quote: "USD".to_owned(),
        };
        Self {
            redis_url: None,
            trading_api_endpoints: BTreeMap::new(),
            trading_stream_endpoints: BTreeMap::new(),
            trading_user_stream_endpoints: BTreeMap::new(),
            trading_fallback_endpoints: BTreeMap::new(),
            trading_tls_ca_file: None,
            trading_rate_limits: default_rate_limits(),
            supported_trading_pairs: vec![
                pair("BTC"),
                pair("ETH"),
                Pair {
                    venue: Some(VenueId::Oanda),
                    base: "EUR".to_owned(),
                    quote: "USD".to_owned(),
                },
                Pair {
                    venue: Some(VenueId::Oanda),
                    base: "USD".to_owned(),
                    quote: "JPY".to_owned(),
                },
            ],
            position_limits: BTreeMap::new(),
            ml_model_endpoints: BTreeMap::from([("direction".to_owned(), "models".to_owned())]),
            prediction_parameters: PredictionParams::default(),
            model_update_frequencies: BTreeMap::new(),
            confidence_thresholds: BTreeMap::from([(
                "direction".to_owned(),
                default_confidence_threshold(),
            )]),
            system_performance: PerformanceParams::default(),
            resource_allocation: ResourceAllocation::default(),
            monitoring: Monitoring::default(),
            backup: BackupSettings::default(),
            config_service: crate::config_service::ConfigServiceSettings::default(),
            encryption: EncryptionSettings::default(),
            access_control: AccessControl::default(),
            audit_logging: AuditLogging::default(),
            compliance: Compliance::default(),
            controller: ControllerSettings::default(),
            strategy: StrategySettings::default(),
            mcp: crate::mcp::McpSettings::default(),
            binanceus_recv_window: Duration::from_millis(5000),
            mcp_servers: Vec::new(),
            gateway_ha: crate::gateway_ha::GatewayHaSettings::default(),
            credentials: Credentials::default(),
            llm: crate::llm::LlmConfig::default(),
        }
    }
}

/// The confidence threshold given to the `direction` model when none is configured.
#[must_use]
pub fn default_confidence_threshold() -> Decimal {
    Decimal::new(55, 2)
}

impl GekkoConfig {
    /// Whether `venue` runs in paper mode, i.e. has no credentials configured.
    #[must_use]
    pub fn paper_mode(&self, venue: VenueId) -> bool {
        match venue {
            VenueId::Coinbase => self.credentials.coinbase.is_none(),
            VenueId::BinanceUs => self.credentials.binanceus.is_none(),
            VenueId::Oanda => self.credentials.oanda.is_none(),
        }
    }

    /// The configured REST base URL for `venue`, if overridden.
    #[must_use]
    pub fn api_endpoint(&self, venue: VenueId) -> Option<&str> {
        self.trading_api_endpoints.get(&venue).map(String::as_str)
    }

    /// The stream (websocket) base URL override for a venue, if configured.
    #[must_use]
    pub fn stream_endpoint(&self, venue: VenueId) -> Option<&str> {
        self.trading_stream_endpoints
            .get(&venue)
            .map(String::as_str)
    }

    /// The PEM of `TRADING_TLS_CA_FILE`, as the roots venue clients trust besides the
    /// built-in ones: empty when unset. Read on each call (the loader has checked the file
    /// holds a certificate); every gateway and the start-up probe read it through here.
    ///
    /// # Errors
    /// The file cannot be read any more, with the variable and the path named.
    pub fn trading_tls_roots(&self) -> Result<Vec<String>, String> {
        let Some(path) = &self.trading_tls_ca_file else {
            return Ok(Vec::new());
        };
        std::fs::read_to_string(path)
            .map(|pem| vec![pem])
            .map_err(|e| {
                format!(
                    "TRADING_TLS_CA_FILE: {} cannot be read: {e}",
                    path.display()
                )
            })
    }

    /// The private-stream base URL override for a venue, if configured.
    #[must_use]
    pub fn user_stream_endpoint(&self, venue: VenueId) -> Option<&str> {
        self.trading_user_stream_endpoints
            .get(&venue)
            .map(String::as_str)
    }

    /// The fallback REST base URL for a venue, if configured.
    #[must_use]
    pub fn fallback_endpoint(&self, venue: VenueId) -> Option<&str> {
        self.trading_fallback_endpoints
            .get(&venue)
            .map(String::as_str)
    }

    /// The rate limit for `venue` (its built-in default if the map lacks it).
    #[must_use]
    pub fn rate_limit(&self, venue: VenueId) -> RateLimit {
        self.trading_rate_limits
            .get(&venue)
            .copied()
            .unwrap_or(default_rate_limit(venue))
    }

    /// How often model `name` is checked for a new version
    /// ([`DEFAULT_MODEL_UPDATE_FREQUENCY`] unless configured).
    #[must_use]
    pub fn model_update_frequency(&self, name: &str) -> Duration {
        self.model_update_frequencies
            .get(name)
            .copied()
            .unwrap_or(DEFAULT_MODEL_UPDATE_FREQUENCY)
    }

    /// Whether `pair` is supported and not restricted by compliance.
    #[must_use]
    pub fn tradable(&self, pair: &Pair) -> bool {
        self.supported_trading_pairs.iter().any(|p| p.covers(pair))
            && !self
                .compliance
                .restricted_pairs
                .iter()
                .any(|p| p.covers(pair))
    }

    /// The instruments configured for `venue`: every plain pair and every pair qualified
    /// with this venue, once each, in configuration order. The gateway then keeps those
    /// the venue lists.
    #[must_use]
    pub fn instruments_for(&self, venue: VenueId) -> Vec<InstrumentId> {
        let mut out: Vec<InstrumentId> = Vec::new();
        for p in self
            .supported_trading_pairs
            .iter()
            .filter(|p| p.applies_to(venue))
        {
            let id = p.instrument(venue);
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// Position limits for `venue`, by canonical pair: a venue-qualified limit overrides
    /// a plain one for the same pair.
    #[must_use]
    pub fn position_limits_for(&self, venue: VenueId) -> BTreeMap<String, Decimal> {
        let mut out = BTreeMap::new();
        for qualified in [false, true] {
            for (p, q) in &self.position_limits {
                if p.venue.is_some() == qualified && p.applies_to(venue) {
                    out.insert(p.canonical(), *q);
                }
            }
        }
        out
    }

    /// Restricted pairs for `venue`, canonical form.
    #[must_use]
    pub fn restricted_pairs_for(&self, venue: VenueId) -> Vec<String> {
        let mut out: Vec<String> = self
            .compliance
            .restricted_pairs
            .iter()
            .filter(|p| p.applies_to(venue))
            .map(Pair::canonical)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl fmt::Debug for GekkoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field fails to compile until it is listed here.
        let Self {
            redis_url,
            trading_api_endpoints,
            trading_stream_endpoints,
            trading_user_stream_endpoints,
            trading_fallback_endpoints,
            trading_tls_ca_file,
            trading_rate_limits,
            supported_trading_pairs,
            position_limits,
            ml_model_endpoints,
            prediction_parameters,
            model_update_frequencies,
            confidence_thresholds,
            system_performance,
            resource_allocation,
            monitoring,
            backup,
            config_service,
            encryption,
            access_control,
            audit_logging,
            compliance,
            controller,
            strategy,
            mcp,
            mcp_servers,
            gateway_ha,
            credentials,
            binanceus_recv_window,
            llm,
        } = self;
        f.debug_struct("GekkoConfig")
            .field("redis_url", &redis_url.as_deref().map(redact_url))
            .field("trading_api_endpoints", &redact_urls(trading_api_endpoints))
            .field(
                "trading_stream_endpoints",
                &redact_urls(trading_stream_endpoints),
            )
            .field(
                "trading_user_stream_endpoints",
                &redact_urls(trading_user_stream_endpoints),
            )
            .field(
                "trading_fallback_endpoints",
                &redact_urls(trading_fallback_endpoints),
            )
            .field("trading_tls_ca_file", trading_tls_ca_file)
            .field("trading_rate_limits", trading_rate_limits)
            .field("supported_trading_pairs", supported_trading_pairs)
            .field("position_limits", position_limits)
            .field("ml_model_endpoints", &redact_urls(ml_model_endpoints))
            .field("prediction_parameters", prediction_parameters)
            .field("model_update_frequencies", model_update_frequencies)
            .field("confidence_thresholds", confidence_thresholds)
            .field("system_performance", system_performance)
            .field("resource_allocation", resource_allocation)
            .field("monitoring", monitoring)
            .field("backup", backup)
            .field("config_service", config_service)
            .field("encryption", encryption)
            .field("access_control", access_control)
            .field("audit_logging", audit_logging)
            .field("compliance", compliance)
            .field("controller", controller)
            .field("strategy", strategy)
            .field("mcp", mcp)
            .field("mcp_servers", mcp_servers)
            .field("binanceus_recv_window", binanceus_recv_window)
            .field("gateway_ha", gateway_ha)
            .field("credentials", credentials)
            .field("llm", llm)
            .finish()
    }
}

/// A copy of a URL map with [`redact_url`] applied to every value, for `Debug`.
fn redact_urls<K: Ord>(map: &BTreeMap<K, String>) -> BTreeMap<&K, String> {
    map.iter().map(|(k, v)| (k, redact_url(v))).collect()
}

/// Replaces the password in a URL's user-info, and the values of query parameters that
/// look like credentials (`pass`, `password`, `token`, `secret`, `key`), with
/// [`REDACTED`]. A lone user-info part without `:` is redacted whole, since some services
/// put a bare token there. Strings that are not URLs come back unchanged.
///
/// Use it whenever a configured URL is logged.
#[must_use]
pub fn redact_url(url: &str) -> String {
    // A Redis Cluster's REDIS_URL: a comma-separated list of node URLs, each redacted.
    if url.contains(',') && url.split(',').all(|u| u.contains("://")) {
        return url.split(',').map(redact_url).collect::<Vec<_>>().join(",");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest
        .find(['/', '?', '#'])
        .map_or((rest, ""), |i| rest.split_at(i));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{REDACTED}@{host}"),
            None => format!("{REDACTED}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = query
                .split_once('#')
                .map_or((query, None), |(q, f)| (q, Some(f)));
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_secret_param(k) => format!("{k}={REDACTED}"),
                    _ => pair.to_owned(),
                })
                .collect();
            let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
            format!("{path}?{}{fragment}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Whether a query parameter name suggests it carries a credential.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "token", "secret", "key"]
        .iter()
        .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://:hunter2@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        assert_eq!(redact_url("redis://u:hunter2@h"), "redis://u:***@h");
        assert_eq!(redact_url("rediss://tok@h"), "rediss://***@h");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(
            redact_url("unix:///tmp/r.sock?db=1&pass=hunter2"),
            "unix:///tmp/r.sock?db=1&pass=***"
        );
        assert_eq!(redact_url("models/dir"), "models/dir");
    }

    #[test]
    fn pairs_parse_strictly() {
        let p: Pair = "BTC-USD".parse().unwrap();
        assert_eq!(p.to_string(), "BTC-USD");
        for bad in ["btc-usd", "BTCUSD", "BTC-", "-USD", "BTC-USD-X", "BTC_USD"] {
            assert!(bad.parse::<Pair>().is_err(), "{bad}");
        }
    }

    #[test]
    fn enums_round_trip() {
        for d in [
            DevicePreference::Auto,
            DevicePreference::Cuda,
            DevicePreference::Metal,
            DevicePreference::Cpu,
        ] {
            assert_eq!(d.as_str().parse::<DevicePreference>(), Ok(d));
        }
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("JSON".parse::<LogFormat>().is_err());
    }
}
