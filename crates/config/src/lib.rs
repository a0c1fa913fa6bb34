//! Typed configuration for every gekko binary, read once from the environment.
//!
//! Configuration comes only from environment variables, optionally layered over a `.env`
//! file (see [`load`]). One loader turns them into a [`GekkoConfig`] and validates all of
//! it in one pass: presence, ranges and cross-field rules (a position limit for a pair that
//! is not supported, a threshold for a model that does not exist, ...). On failure it
//! returns *every* problem, one line each, naming the variable, what is wrong and what is
//! expected, so a binary can print them all and exit 64 before binding any port.
//!
//! Credentials are [`secrecy::SecretString`]: redacted in `Debug`, zeroized on drop, and
//! never echoed in problem text. [`GekkoConfig`]'s `Debug` also redacts URL passwords.
//!
//! Deprecated variable names are still read, with a [`ConfigWarning`] in [`Loaded`].
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! let vars = BTreeMap::from([("POSITION_LIMITS".to_owned(), "DOGE-USD=5".to_owned())]);
//! let errors = gekko_config::from_vars(&vars).unwrap_err();
//! assert_eq!(
//!     errors.to_string(),
//!     "POSITION_LIMITS: DOGE-USD is not in SUPPORTED_TRADING_PAIRS \
//!      (expected only pairs listed in SUPPORTED_TRADING_PAIRS)"
//! );
//! ```

mod config_service;
mod docs;
mod env_file;
mod gateway_ha;
mod llm;
mod loader;
mod mcp;
mod mcp_servers;
mod model;
pub mod parse;
mod problem;
pub mod sealed;
mod vars;

use std::collections::BTreeMap;
use std::path::Path;

pub use config_service::ConfigServiceSettings;
pub use docs::{VariableDoc, documented_variables, markdown_table};
pub use env_file::{read_env_file, sealing_key};
pub use gateway_ha::GatewayHaSettings;
pub use gekko_core::VenueId;
pub use llm::{
    DEFAULT_LITELLM_BASE_URL, DEFAULT_OPENROUTER_BASE_URL, LiteLlmSettings, LlmConfig, LlmProvider,
    LlmRole, LlmSettings, LlmTarget, OpenRouterSettings,
};
pub use mcp::{
    DEFAULT_MCP_ORDER_NOTIONAL, McpMode, McpSettings, load_mcp_settings, mcp_settings_from_vars,
};
pub use model::{
    AccessControl, AccessToken, AuditLogging, BackupSettings, BinanceUsCredentials,
    BinanceUsKeyType, CoinbaseCredentials, Compliance, ControllerSettings, Credentials,
    DEFAULT_MODEL_UPDATE_FREQUENCY, DevicePreference, EncryptionSettings, GekkoConfig, LogFormat,
    Monitoring, OandaCredentials, OandaEnvironment, OpenServices, Pair, ParseValueError,
    PerformanceParams, PredictionParams, REDACTED, RateLimit, ResourceAllocation, Role,
    ShutdownMode, StrategySettings, default_confidence_threshold, default_rate_limit,
    default_rate_limits, redact_url,
};
pub use model::{McpServer, McpTransport};
pub use problem::{ConfigErrors, ConfigProblem, ConfigWarning};
pub use sealed::{Key, SealError, is_sealed, seal, unseal};
pub use vars::{DEPRECATED_NAMES, names};

/// The venue type used as a map key in this crate: gekko-core's [`VenueId`].
pub type Venue = VenueId;

/// A validated configuration and the warnings found while loading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: GekkoConfig,
    /// Things to fix that did not stop the load (deprecated names).
    pub warnings: Vec<ConfigWarning>,
}

impl Loaded {
    /// Emits each warning as a `tracing` warning. Call it once logging is set up.
    pub fn log_warnings(&self) {
        for w in &self.warnings {
            tracing::warn!(variable = %w.variable, "{}", w.message);
        }
    }
}

/// Loads the configuration from the process environment, layered over a `.env` file.
///
/// The file is the one `GEKKO_ENV_FILE` names, else `./.env` if it exists, else none. A
/// variable set (non-blank) in the process environment wins over the file. The process
/// environment is never modified.
///
/// # Errors
/// Returns every problem found: a `GEKKO_ENV_FILE` that does not exist, unparsable `.env`
/// lines, non-UTF-8 values of gekko variables, and everything [`from_vars`] reports.
pub fn load() -> Result<Loaded, ConfigErrors> {
    load_with_served(&BTreeMap::new())
}

/// [`load`], with `served` (a venue's credentials from configd's `GetSecrets`, see
/// `CONFIG_SERVICE`) layered on top of the environment and the `.env` file.
///
/// # Errors
/// Everything [`load`] reports, plus one problem per served variable that is also set in
/// the environment or the file (a credential has exactly one source).
pub fn load_with_served(served: &BTreeMap<String, String>) -> Result<Loaded, ConfigErrors> {
    let mut vars = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, value) in std::env::vars_os() {
        match (key.into_string(), value.into_string()) {
            (Ok(key), Ok(value)) => {
                vars.insert(key, value);
            }
            (Ok(key), Err(_)) if is_gekko_variable(&key) => {
                problems.push(ConfigProblem::new(
                    key,
                    "is not valid UTF-8",
                    "a UTF-8 value",
                ));
            }
            _ => {}
        }
    }
    env_file::load_layered_with(vars, problems, Path::new(".env"), served)
}

/// Validates a map of variables; the pure core of [`load`], and what tests call.
///
/// A blank value counts as unset. Deprecated names are used when their replacement is
/// unset, with a warning either way.
///
/// # Errors
/// Returns every problem found, one per mistake, in documentation order (see
/// [`documented_variables`]).
pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Loaded, ConfigErrors> {
    let (vars, mut warnings) = vars::Vars::new(vars);
    let mut problems = problem::Problems::default();
    let config = loader::build(&vars, &mut problems);
    if config.access_control.grpc_auth_token.is_some() {
        warnings.push(ConfigWarning {
            variable: names::ACCESS_CONTROL_CONFIG.to_owned(),
            message: "grpc_auth_token is deprecated: it works as the admin token `legacy`; \
                      replace it with tokens=NAME:ROLE:SHA256 (see `gekko token new`)"
                .to_owned(),
        });
    }
    problems.into_result(Loaded { config, warnings })
}

/// Whether `name` is a variable gekko reads (current or deprecated).
fn is_gekko_variable(name: &str) -> bool {
    names::ALL.contains(&name) || DEPRECATED_NAMES.iter().any(|(old, _)| *old == name)
}
