//! The LLM links: OpenRouter and LiteLLM proxy settings, the models per role and the
//! failover/timeout knobs (`OPENROUTER_*`, `LITELLM_*`, `LLM_MODELS`, `LLM_SETTINGS`).
//!
//! Kept in one module (model types and their reading) so the LLM variables sit apart from
//! the trading ones; `gekko-llm` builds its clients and router from [`LlmConfig`].
//!
//! `LLM_MODELS` is `role=provider:model|provider:model;role=...`: each role has a primary
//! and at most one secondary, `provider` is `openrouter` or `litellm`. A role that names a
//! provider whose key is unset is a problem, so a missing key is found before any port
//! binds. No `LLM_MODELS` means no LLM service at all.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use crate::parse::{Section, http_url, ident, split_list};
use crate::problem::Problems;
use crate::vars::{Vars, names};

/// The default OpenRouter API base.
pub const DEFAULT_OPENROUTER_BASE_URL: &str = "https://openrouter.ai/api/v1";
/// The default LiteLLM proxy address.
pub const DEFAULT_LITELLM_BASE_URL: &str = "http://127.0.0.1:4000";

/// An LLM provider gekko can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LlmProvider {
    /// OpenRouter (`/api/v1` OpenAI-compatible API with its own models and key routes).
    OpenRouter,
    /// A LiteLLM proxy (OpenAI-compatible `/v1` routes plus health and model info).
    LiteLlm,
}

impl LlmProvider {
    /// Both providers, in a fixed order.
    pub const ALL: [LlmProvider; 2] = [LlmProvider::OpenRouter, LlmProvider::LiteLlm];

    /// `openrouter` or `litellm`: the config spelling and the metric label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OpenRouter => "openrouter",
            Self::LiteLlm => "litellm",
        }
    }

    /// The variable that holds this provider's key.
    #[must_use]
    pub const fn key_variable(self) -> &'static str {
        match self {
            Self::OpenRouter => names::OPENROUTER_API_KEY,
            Self::LiteLlm => names::LITELLM_API_KEY,
        }
    }
}

impl fmt::Display for LlmProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LlmProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "openrouter" => Ok(Self::OpenRouter),
            "litellm" => Ok(Self::LiteLlm),
            other => Err(format!("`{other}` is not a provider")),
        }
    }
}

/// One model at one provider: `openrouter:openai/gpt-4o-mini`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmTarget {
    /// Who serves it.
    pub provider: LlmProvider,
    /// The model id as that provider names it.
    pub model: String,
}

impl fmt::Display for LlmTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.model)
    }
}

/// A model role (`analyst`, `summary`): a primary target and an optional secondary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmRole {
    /// The role's name.
    pub name: String,
    /// Tried first.
    pub primary: LlmTarget,
    /// Tried when the primary fails in a way that allows failover.
    pub secondary: Option<LlmTarget>,
}

impl LlmRole {
    /// The primary, then the secondary if any.
    pub fn targets(&self) -> impl Iterator<Item = &LlmTarget> {
        std::iter::once(&self.primary).chain(self.secondary.iter())
    }
}

/// OpenRouter connection settings.
#[derive(Debug, Clone)]
pub struct OpenRouterSettings {
    /// `OPENROUTER_API_KEY` (secret).
    pub api_key: Option<SecretString>,
    /// `OPENROUTER_BASE_URL`, without a trailing `/`.
    pub base_url: String,
    /// `OPENROUTER_APP_URL`, sent as `HTTP-Referer`.
    pub app_url: Option<String>,
    /// `OPENROUTER_APP_TITLE`, sent as `X-OpenRouter-Title` and `X-Title`.
    pub app_title: Option<String>,
}

impl Default for OpenRouterSettings {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: DEFAULT_OPENROUTER_BASE_URL.to_owned(),
            app_url: None,
            app_title: None,
        }
    }
}

/// LiteLLM proxy connection settings.
#[derive(Debug, Clone)]
pub struct LiteLlmSettings {
    /// `LITELLM_API_KEY` (secret; starts with `sk-`).
    pub api_key: Option<SecretString>,
    /// `LITELLM_BASE_URL`, without a trailing `/`.
    pub base_url: String,
}

impl Default for LiteLlmSettings {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: DEFAULT_LITELLM_BASE_URL.to_owned(),
        }
    }
}

/// `LLM_SETTINGS`: timeouts, the breaker and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmSettings {
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for the response headers, and for a streaming response the longest
    /// silence between any two bytes (keep-alive comments count as bytes).
    pub first_byte_timeout: Duration,
    /// Longest a whole request (a whole stream included) may take.
    pub total_timeout: Duration,
    /// Consecutive failures that open a provider's circuit.
    pub breaker_threshold: u32,
    /// How long an open circuit stays open before one probe is let through.
    pub breaker_cooldown: Duration,
    /// Extra attempts on the same provider after a 5xx or connection error, before
    /// failing over (timeouts and 429s never retry the same provider).
    pub max_retries: u32,
    /// How often the `llm` service re-checks each provider's model list for readiness.
    pub probe_interval: Duration,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(120),
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_secs(30),
            max_retries: 0,
            probe_interval: Duration::from_secs(30),
        }
    }
}

/// Everything about the LLM links.
#[derive(Debug, Clone, Default)]
pub struct LlmConfig {
    /// OpenRouter.
    pub openrouter: OpenRouterSettings,
    /// The LiteLLM proxy.
    pub litellm: LiteLlmSettings,
    /// `LLM_MODELS`, in the order written; empty means no LLM service.
    pub roles: Vec<LlmRole>,
    /// `LLM_SETTINGS`.
    pub settings: LlmSettings,
}

impl LlmConfig {
    /// Whether any role is configured (the `llm` service runs only then).
    #[must_use]
    pub fn enabled(&self) -> bool {
        !self.roles.is_empty()
    }

    /// The role named `name`.
    #[must_use]
    pub fn role(&self, name: &str) -> Option<&LlmRole> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The providers some role uses, each once, in [`LlmProvider::ALL`] order.
    #[must_use]
    pub fn providers_in_use(&self) -> Vec<LlmProvider> {
        LlmProvider::ALL
            .into_iter()
            .filter(|p| {
                self.roles
                    .iter()
                    .any(|r| r.targets().any(|t| t.provider == *p))
            })
            .collect()
    }

    /// The models configured at `provider`, each once, in configuration order.
    #[must_use]
    pub fn models_at(&self, provider: LlmProvider) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.roles.iter().flat_map(LlmRole::targets) {
            if t.provider == provider && !out.contains(&t.model) {
                out.push(t.model.clone());
            }
        }
        out
    }
}

const MODELS_FORM: &str = "`;`-separated role=provider:model entries with an optional `|provider:model` secondary, provider openrouter or litellm, such as analyst=openrouter:openai/gpt-4o-mini|litellm:gpt-4o-mini";

/// Reads every LLM variable.
pub(crate) fn read(vars: &Vars<'_>, problems: &mut Problems) -> LlmConfig {
    let mut out = LlmConfig::default();
    let url = |name: &'static str, slot: &mut String, problems: &mut Problems| {
        if let Some(v) = vars.get(name) {
            match http_url(v.raw) {
                Ok(u) => *slot = u.trim_end_matches('/').to_owned(),
                Err(e) => problems.push(v.name, e, "an http:// or https:// URL"),
            }
        }
    };
    out.openrouter.api_key = vars
        .get(names::OPENROUTER_API_KEY)
        .map(|v| SecretString::from(v.raw));
    url(
        names::OPENROUTER_BASE_URL,
        &mut out.openrouter.base_url,
        problems,
    );
    if let Some(v) = vars.get(names::OPENROUTER_APP_URL) {
        match http_url(v.raw) {
            Ok(u) => out.openrouter.app_url = Some(u),
            Err(e) => problems.push(v.name, e, "an http:// or https:// URL"),
        }
    }
    if let Some(v) = vars.get(names::OPENROUTER_APP_TITLE) {
        if v.raw.chars().any(char::is_control) {
            problems.push(
                v.name,
                "contains a control character",
                "a title usable as an HTTP header value",
            );
        } else {
            out.openrouter.app_title = Some(v.raw.to_owned());
        }
    }
    if let Some(v) = vars.get(names::LITELLM_API_KEY) {
        // Never echo the key: say only what is wrong with its shape.
        if v.raw.starts_with("sk-") && v.raw.len() > 3 {
            out.litellm.api_key = Some(SecretString::from(v.raw));
        } else {
            problems.push(
                v.name,
                format!(
                    "the key ({} characters) does not start with `sk-`",
                    v.raw.len()
                ),
                "a LiteLLM key starting with sk- (the proxy's master key or a virtual key)",
            );
        }
    }
    url(names::LITELLM_BASE_URL, &mut out.litellm.base_url, problems);
    out.roles = roles(vars, problems);
    let keys_given = [
        vars.get(names::OPENROUTER_API_KEY).is_some(),
        vars.get(names::LITELLM_API_KEY).is_some(),
    ];
    for provider in out.providers_in_use() {
        let given = match provider {
            LlmProvider::OpenRouter => keys_given[0],
            LlmProvider::LiteLlm => keys_given[1],
        };
        if !given {
            let users: Vec<&str> = out
                .roles
                .iter()
                .filter(|r| r.targets().any(|t| t.provider == provider))
                .map(|r| r.name.as_str())
                .collect();
            problems.push(
                names::LLM_MODELS,
                format!(
                    "role{} {} use{} {provider} but {} is not set",
                    if users.len() == 1 { "" } else { "s" },
                    users.join(", "),
                    if users.len() == 1 { "s" } else { "" },
                    provider.key_variable()
                ),
                format!("{} set, or no role on {provider}", provider.key_variable()),
            );
        }
    }
    out.settings = settings(vars, problems);
    out
}

fn target(s: &str) -> Result<LlmTarget, String> {
    let Some((provider, model)) = s.split_once(':') else {
        return Err(format!("`{s}` has no `provider:` in front of the model"));
    };
    let provider: LlmProvider = provider.trim().parse()?;
    let model = model.trim();
    if model.is_empty() {
        return Err(format!("`{s}` names no model"));
    }
    if model.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("model `{model}` contains whitespace"));
    }
    Ok(LlmTarget {
        provider,
        model: model.to_owned(),
    })
}

fn roles(vars: &Vars<'_>, problems: &mut Problems) -> Vec<LlmRole> {
    let Some(v) = vars.get(names::LLM_MODELS) else {
        return Vec::new();
    };
    let before = problems.len();
    let mut out: Vec<LlmRole> = Vec::new();
    for entry in split_list(v.raw, ';') {
        let Some((name, targets)) = entry.split_once('=') else {
            problems.push(v.name, format!("entry `{entry}` has no `=`"), MODELS_FORM);
            continue;
        };
        let name = match ident(name.trim()) {
            Ok(n) => n,
            Err(e) => {
                problems.push(v.name, e, "a role name of letters, digits, `_` and `-`");
                continue;
            }
        };
        if out.iter().any(|r| r.name == name) {
            problems.push(
                v.name,
                format!("role `{name}` is given more than once"),
                "each role once",
            );
            continue;
        }
        let parts: Vec<&str> = targets.split('|').map(str::trim).collect();
        if parts.len() > 2 {
            problems.push(
                v.name,
                format!("{name}: {} targets given", parts.len()),
                "a primary and at most one secondary, separated by `|`",
            );
            continue;
        }
        let parsed: Vec<Result<LlmTarget, String>> = parts.iter().map(|p| target(p)).collect();
        let mut ok = Vec::new();
        for r in parsed {
            match r {
                Ok(t) => ok.push(t),
                Err(e) => problems.push(v.name, format!("{name}: {e}"), MODELS_FORM),
            }
        }
        if ok.len() != parts.len() {
            continue;
        }
        let mut ok = ok.into_iter();
        let Some(primary) = ok.next() else {
            continue;
        };
        let secondary = ok.next();
        if secondary.as_ref() == Some(&primary) {
            problems.push(
                v.name,
                format!("{name}: the secondary is the primary ({primary})"),
                "a secondary different from the primary",
            );
            continue;
        }
        out.push(LlmRole {
            name,
            primary,
            secondary,
        });
    }
    if out.is_empty() && problems.len() == before {
        problems.push(v.name, "names no role", MODELS_FORM);
    }
    out
}

fn settings(vars: &Vars<'_>, problems: &mut Problems) -> LlmSettings {
    const MS: Duration = Duration::from_millis(1);
    let mut out = LlmSettings::default();
    let mut s = Section::open(
        names::LLM_SETTINGS,
        vars.get(names::LLM_SETTINGS),
        &[
            "connect_timeout",
            "first_byte_timeout",
            "total_timeout",
            "breaker_threshold",
            "breaker_cooldown",
            "max_retries",
            "probe_interval",
        ],
        false,
        problems,
    );
    let minute = Duration::from_mins(1);
    let hour = Duration::from_hours(1);
    s.duration(
        "connect_timeout",
        &mut out.connect_timeout,
        10 * MS,
        Some(minute),
    );
    let first_ok = s.duration(
        "first_byte_timeout",
        &mut out.first_byte_timeout,
        10 * MS,
        Some(10 * minute),
    );
    let total_ok = s.duration("total_timeout", &mut out.total_timeout, 10 * MS, Some(hour));
    s.int("breaker_threshold", &mut out.breaker_threshold, &(1..=100));
    s.duration(
        "breaker_cooldown",
        &mut out.breaker_cooldown,
        10 * MS,
        Some(hour),
    );
    s.int("max_retries", &mut out.max_retries, &(0..=5));
    s.duration(
        "probe_interval",
        &mut out.probe_interval,
        100 * MS,
        Some(hour),
    );
    if first_ok && total_ok && out.total_timeout < out.first_byte_timeout {
        s.problem(
            "total_timeout is shorter than first_byte_timeout",
            "total_timeout at least first_byte_timeout",
        );
    }
    out
}
