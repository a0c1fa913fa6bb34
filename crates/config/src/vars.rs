//! The raw variable view: names, deprecated aliases, and the "empty means unset" rule.
//!
//! Everything downstream asks this view for a canonical name and gets back the value plus
//! the name the operator actually used, so problems point at the variable they set (even
//! when it is a deprecated alias).

use std::collections::BTreeMap;

use crate::problem::ConfigWarning;

/// The names of every variable gekko reads, as constants so the loader, the docs table and
/// the tests cannot drift apart.
pub mod names {
    /// Path of a `.env` file to read.
    pub const GEKKO_ENV_FILE: &str = "GEKKO_ENV_FILE";
    /// Redis connection URL.
    pub const REDIS_URL: &str = "REDIS_URL";
    /// Per-venue REST base URLs.
    pub const TRADING_API_ENDPOINTS: &str = "TRADING_API_ENDPOINTS";
    /// Per-venue request rate limits.
    pub const TRADING_RATE_LIMITS: &str = "TRADING_RATE_LIMITS";
    /// Extra trusted roots (PEM file) for venue TLS connections.
    pub const TRADING_TLS_CA_FILE: &str = "TRADING_TLS_CA_FILE";
    /// Pairs gekko may trade.
    pub const SUPPORTED_TRADING_PAIRS: &str = "SUPPORTED_TRADING_PAIRS";
    /// Per-pair maximum absolute position.
    pub const POSITION_LIMITS: &str = "POSITION_LIMITS";
    /// Model name to location.
    pub const ML_MODEL_ENDPOINTS: &str = "ML_MODEL_ENDPOINTS";
    /// Prediction window, horizon and interval.
    pub const PREDICTION_PARAMETERS: &str = "PREDICTION_PARAMETERS";
    /// How often each model is checked for a new version.
    pub const MODEL_UPDATE_FREQUENCIES: &str = "MODEL_UPDATE_FREQUENCIES";
    /// Minimum confidence per model.
    pub const CONFIDENCE_THRESHOLDS: &str = "CONFIDENCE_THRESHOLDS";
    /// Batching, in-flight and timeout settings.
    pub const SYSTEM_PERFORMANCE_PARAMS: &str = "SYSTEM_PERFORMANCE_PARAMS";
    /// Inference device, GPU memory and CPU threads.
    pub const RESOURCE_ALLOCATION_SETTINGS: &str = "RESOURCE_ALLOCATION_SETTINGS";
    /// Listen addresses, log format and level, staleness.
    pub const MONITORING_CONFIGURATIONS: &str = "MONITORING_CONFIGURATIONS";
    /// Local backups.
    pub const BACKUP_SETTINGS: &str = "BACKUP_SETTINGS";
    /// Where a service fetches its venue credentials (configd) at start-up.
    pub const CONFIG_SERVICE: &str = "CONFIG_SERVICE";
    /// At-rest encryption key and algorithm.
    pub const ENCRYPTION_SETTINGS: &str = "ENCRYPTION_SETTINGS";
    /// gRPC auth token, read-only mode and client allow-list.
    pub const ACCESS_CONTROL_CONFIG: &str = "ACCESS_CONTROL_CONFIG";
    /// Audit stream settings.
    pub const AUDIT_LOGGING_SETTINGS: &str = "AUDIT_LOGGING_SETTINGS";
    /// Notional limits, restricted pairs and the trading kill switch.
    pub const COMPLIANCE_SETTINGS: &str = "COMPLIANCE_SETTINGS";
    /// Shutdown mode, step deadline, reports directory and required start-up checks.
    pub const CONTROLLER_SETTINGS: &str = "CONTROLLER_SETTINGS";
    /// The signal-to-order trading loop (off by default).
    pub const STRATEGY_SETTINGS: &str = "STRATEGY_SETTINGS";
    /// The MCP server's risk guard and HTTP transport address.
    pub const MCP_SETTINGS: &str = "MCP_SETTINGS";
    /// External MCP servers gekko connects to as a client.
    pub const MCP_SERVERS: &str = "MCP_SERVERS";
    /// Bearer tokens for the HTTP servers of `MCP_SERVERS` (secret).
    pub const MCP_SERVER_TOKENS: &str = "MCP_SERVER_TOKENS";
    /// Leader election between replicas of one gateway (Redis lease, fencing token).
    pub const GATEWAY_HA_SETTINGS: &str = "GATEWAY_HA_SETTINGS";
    /// Binance.US API key.
    pub const BINANCEUS_API_KEY: &str = "BINANCEUS_API_KEY";
    /// Binance.US API secret.
    pub const BINANCEUS_API_SECRET: &str = "BINANCEUS_API_SECRET";
    /// How the Binance.US secret signs: `hmac` (default) or `ed25519`.
    pub const BINANCEUS_KEY_TYPE: &str = "BINANCEUS_KEY_TYPE";
    /// Binance.US `recvWindow`: how long a signed request stays valid (1 ms to 60 s).
    pub const BINANCEUS_RECV_WINDOW: &str = "BINANCEUS_RECV_WINDOW";
    /// Coinbase CDP API key name.
    pub const COINBASE_API_KEY_NAME: &str = "COINBASE_API_KEY_NAME";
    /// Coinbase CDP API secret: an EC P-256 PEM or an Ed25519 key.
    pub const COINBASE_API_SECRET: &str = "COINBASE_API_SECRET";
    /// OANDA personal access token.
    pub const OANDA_API_TOKEN: &str = "OANDA_API_TOKEN";
    /// OANDA account id.
    pub const OANDA_ACCOUNT_ID: &str = "OANDA_ACCOUNT_ID";
    /// OANDA environment: `practice` (default) or `live`.
    pub const OANDA_ENVIRONMENT: &str = "OANDA_ENVIRONMENT";
    /// OpenRouter API key (secret).
    pub const OPENROUTER_API_KEY: &str = "OPENROUTER_API_KEY";
    /// OpenRouter API base URL.
    pub const OPENROUTER_BASE_URL: &str = "OPENROUTER_BASE_URL";
    /// The app URL sent to OpenRouter as `HTTP-Referer`.
    pub const OPENROUTER_APP_URL: &str = "OPENROUTER_APP_URL";
    /// The app title sent to OpenRouter as `X-OpenRouter-Title` and `X-Title`.
    pub const OPENROUTER_APP_TITLE: &str = "OPENROUTER_APP_TITLE";
    /// LiteLLM proxy key (secret, `sk-...`).
    pub const LITELLM_API_KEY: &str = "LITELLM_API_KEY";
    /// LiteLLM proxy base URL.
    pub const LITELLM_BASE_URL: &str = "LITELLM_BASE_URL";
    /// LLM models per role: a primary and an optional secondary.
    pub const LLM_MODELS: &str = "LLM_MODELS";
    /// LLM timeouts, circuit breaker and retries.
    pub const LLM_SETTINGS: &str = "LLM_SETTINGS";

    /// Every name above, in documentation order.
    pub const ALL: &[&str] = &[
        GEKKO_ENV_FILE,
        REDIS_URL,
        TRADING_API_ENDPOINTS,
        TRADING_RATE_LIMITS,
        TRADING_TLS_CA_FILE,
        SUPPORTED_TRADING_PAIRS,
        POSITION_LIMITS,
        ML_MODEL_ENDPOINTS,
        PREDICTION_PARAMETERS,
        MODEL_UPDATE_FREQUENCIES,
        CONFIDENCE_THRESHOLDS,
        SYSTEM_PERFORMANCE_PARAMS,
        RESOURCE_ALLOCATION_SETTINGS,
        MONITORING_CONFIGURATIONS,
        BACKUP_SETTINGS,
        CONFIG_SERVICE,
        ENCRYPTION_SETTINGS,
        ACCESS_CONTROL_CONFIG,
        AUDIT_LOGGING_SETTINGS,
        COMPLIANCE_SETTINGS,
        CONTROLLER_SETTINGS,
        STRATEGY_SETTINGS,
        MCP_SETTINGS,
        MCP_SERVERS,
        MCP_SERVER_TOKENS,
        GATEWAY_HA_SETTINGS,
        BINANCEUS_API_KEY,
        BINANCEUS_API_SECRET,
        BINANCEUS_KEY_TYPE,
        BINANCEUS_RECV_WINDOW,
        COINBASE_API_KEY_NAME,
        COINBASE_API_SECRET,
        OANDA_API_TOKEN,
        OANDA_ACCOUNT_ID,
        OANDA_ENVIRONMENT,
        OPENROUTER_API_KEY,
        OPENROUTER_BASE_URL,
        OPENROUTER_APP_URL,
        OPENROUTER_APP_TITLE,
        LITELLM_API_KEY,
        LITELLM_BASE_URL,
        LLM_MODELS,
        LLM_SETTINGS,
    ];
}

/// Old names still read, each with the name that replaced it.
pub const DEPRECATED_NAMES: &[(&str, &str)] = &[
    ("BINANCE_US_API_KEY", names::BINANCEUS_API_KEY),
    ("BINANCE_US_API_SECRET", names::BINANCEUS_API_SECRET),
    ("COINBASE_API_PRIVATE_KEY", names::COINBASE_API_SECRET),
    ("REDIS_URI", names::REDIS_URL),
    ("TRADING_PAIRS", names::SUPPORTED_TRADING_PAIRS),
];

/// A set variable: the name the operator used and its trimmed, non-empty value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Value<'a> {
    /// The variable actually set (a deprecated alias, or the canonical name).
    pub name: &'a str,
    /// The value, trimmed.
    pub raw: &'a str,
}

/// Read-only access to a variable map with aliases resolved.
#[derive(Debug)]
pub(crate) struct Vars<'a> {
    map: &'a BTreeMap<String, String>,
}

impl<'a> Vars<'a> {
    /// Wraps `map` and returns the deprecation warnings it deserves.
    pub(crate) fn new(map: &'a BTreeMap<String, String>) -> (Self, Vec<ConfigWarning>) {
        let vars = Self { map };
        let mut warnings = Vec::new();
        for &(old, new) in DEPRECATED_NAMES {
            if vars.raw(old).is_none() {
                continue;
            }
            let message = if vars.raw(new).is_some() {
                format!("deprecated and ignored because {new} is also set; remove it")
            } else {
                format!("deprecated; its value is used for now, rename it to {new}")
            };
            warnings.push(ConfigWarning {
                variable: old.to_owned(),
                message,
            });
        }
        (vars, warnings)
    }

    /// The trimmed value of exactly `name`, if it is set and not blank.
    fn raw(&self, name: &str) -> Option<&'a str> {
        self.map
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of canonical variable `name`, falling back to its deprecated alias.
    pub(crate) fn get(&self, name: &'static str) -> Option<Value<'a>> {
        if let Some(raw) = self.raw(name) {
            return Some(Value { name, raw });
        }
        DEPRECATED_NAMES
            .iter()
            .filter(|(_, new)| *new == name)
            .find_map(|&(old, _)| self.raw(old).map(|raw| Value { name: old, raw }))
    }
}
