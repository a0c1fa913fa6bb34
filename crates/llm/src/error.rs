//! What can go wrong talking to an LLM provider, and what each failure means for routing.
//!
//! Every error names its provider. [`LlmError::disposition`] is the one place that decides
//! whether a failure fails over to the secondary (429, 408, 5xx, timeouts, connection
//! errors, unreadable answers) or is reported as it is (400, 401, 402, 403 and the other
//! 4xx: the provider is healthy and said no, and asking another one would hide a config or
//! billing problem, or spend twice).
//!
//! Provider messages are passed through [`redact`] so a key echoed by a provider (LiteLLM
//! quotes part of a bad key) never reaches a log or a caller.

use std::fmt;
use std::time::Duration;

use gekko_config::LlmProvider;

/// What the router does after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Report to the caller; the provider is healthy (its breaker records a success).
    Report,
    /// Rate limited: skip this provider until the given time has passed, then fail over.
    RateLimited(Option<Duration>),
    /// Fail over; counts as a breaker failure. `retry_same` when the same provider may be
    /// tried again first (5xx and connection errors, within `max_retries`).
    FailOver {
        /// Whether a retry on the same provider is allowed.
        retry_same: bool,
    },
}

/// An error from an LLM provider or the router.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// The provider answered with an error status.
    #[error("{provider}: HTTP {status} (code {code}): {message}")]
    Status {
        /// Who answered.
        provider: LlmProvider,
        /// The HTTP status.
        status: u16,
        /// The body's `error.code` (a number or a string), else the status.
        code: String,
        /// The body's `error.message` (redacted), else a short excerpt of the body.
        message: String,
        /// `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// A stream reported an error event after it had started (`finish_reason: error`).
    #[error("{provider}: stream error (code {code}): {message} ({} characters of content had arrived)", partial.chars().count())]
    MidStream {
        /// Who streamed.
        provider: LlmProvider,
        /// The event's `error.code`.
        code: String,
        /// The event's `error.message` (redacted).
        message: String,
        /// The content received before the error.
        partial: String,
    },
    /// No answer in time.
    #[error("{provider}: {phase} timed out after {after:?}")]
    Timeout {
        /// Who did not answer.
        provider: LlmProvider,
        /// `response headers`, `stream silence` or `request`.
        phase: &'static str,
        /// The limit that passed.
        after: Duration,
        /// The content received before the timeout (streams).
        partial: String,
    },
    /// The provider could not be reached, or the connection broke.
    #[error("{provider}: connection failed: {message}")]
    Connect {
        /// Who could not be reached.
        provider: LlmProvider,
        /// The transport's error chain.
        message: String,
    },
    /// The answer could not be understood.
    #[error("{provider}: unexpected answer: {message}")]
    Decode {
        /// Who answered.
        provider: LlmProvider,
        /// What was wrong.
        message: String,
    },
    /// The provider's circuit is open (or it is rate limited); nothing was sent.
    #[error("{provider}: skipped, circuit open for another {retry_after:?}")]
    CircuitOpen {
        /// The skipped provider.
        provider: LlmProvider,
        /// How long until it may be tried.
        retry_after: Duration,
    },
    /// The role has no configuration.
    #[error("role `{0}` is not configured in LLM_MODELS")]
    UnknownRole(String),
    /// The request itself is unusable (no messages, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A client for the provider could not be built (bad header value in config, ...).
    #[error("{provider}: cannot build the client: {message}")]
    Setup {
        /// The provider.
        provider: LlmProvider,
        /// Why.
        message: String,
    },
    /// Every target of a role failed; each attempt's error in order.
    #[error("role {role}: every provider failed: {}", Attempts(attempts))]
    Exhausted {
        /// The role.
        role: String,
        /// What each attempt ran into.
        attempts: Vec<LlmError>,
    },
}

struct Attempts<'a>(&'a [LlmError]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; then ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl LlmError {
    /// Whether this failure fails over, counts against the breaker, or is reported.
    #[must_use]
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::Status {
                status: 429,
                retry_after,
                ..
            } => Disposition::RateLimited(*retry_after),
            Self::Status { status: 408, .. } => Disposition::FailOver { retry_same: false },
            Self::Status { status, .. } if *status >= 500 => {
                Disposition::FailOver { retry_same: true }
            }
            Self::MidStream { code, .. } => match code.parse::<u16>() {
                Ok(429) => Disposition::RateLimited(None),
                Ok(c) if c == 408 || c >= 500 => Disposition::FailOver { retry_same: false },
                Ok(_) => Disposition::Report,
                Err(_) => Disposition::FailOver { retry_same: false },
            },
            Self::Timeout { .. } | Self::Decode { .. } | Self::CircuitOpen { .. } => {
                Disposition::FailOver { retry_same: false }
            }
            Self::Connect { .. } => Disposition::FailOver { retry_same: true },
            Self::Status { .. }
            | Self::UnknownRole(_)
            | Self::Invalid(_)
            | Self::Setup { .. }
            | Self::Exhausted { .. } => Disposition::Report,
        }
    }

    /// The provider the error is about, if any.
    #[must_use]
    pub fn provider(&self) -> Option<LlmProvider> {
        match self {
            Self::Status { provider, .. }
            | Self::MidStream { provider, .. }
            | Self::Timeout { provider, .. }
            | Self::Connect { provider, .. }
            | Self::Decode { provider, .. }
            | Self::CircuitOpen { provider, .. }
            | Self::Setup { provider, .. } => Some(*provider),
            Self::UnknownRole(_) | Self::Invalid(_) | Self::Exhausted { .. } => None,
        }
    }

    /// The `code` label of `gekko_llm_errors_total`: the HTTP status or stream code, or
    /// `timeout`, `connect`, `decode`, `circuit_open`, `invalid`.
    #[must_use]
    pub fn code_label(&self) -> String {
        match self {
            Self::Status { status, .. } => status.to_string(),
            Self::MidStream { code, .. } => format!("stream_{code}"),
            Self::Timeout { .. } => "timeout".to_owned(),
            Self::Connect { .. } => "connect".to_owned(),
            Self::Decode { .. } => "decode".to_owned(),
            Self::CircuitOpen { .. } => "circuit_open".to_owned(),
            Self::UnknownRole(_) | Self::Invalid(_) => "invalid".to_owned(),
            Self::Setup { .. } => "setup".to_owned(),
            Self::Exhausted { .. } => "exhausted".to_owned(),
        }
    }

    /// The content that had arrived before a stream failed (empty otherwise).
    #[must_use]
    pub fn partial(&self) -> &str {
        match self {
            Self::MidStream { partial, .. } | Self::Timeout { partial, .. } => partial,
            _ => "",
        }
    }
}

/// Replaces `key` and anything shaped like an API key (`sk-…`) in a provider's text with
/// `sk-***`, and caps its length, so provider messages are safe to log and return.
#[must_use]
pub fn redact(text: &str, key: &str) -> String {
    let mut s = if key.len() >= 4 {
        text.replace(key, "***")
    } else {
        text.to_owned()
    };
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find("sk-") {
        out.push_str(&rest[..i]);
        out.push_str("sk-***");
        let after = &rest[i + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ')' | ']' | '}'))
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    s = out;
    const MAX: usize = 500;
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_redacted_from_provider_text() {
        let msg = "Authentication Error, Received API Key = sk-bad-1234, Key Hash = x";
        let r = redact(msg, "sk-bad-1234");
        assert!(!r.contains("1234"), "{r}");
        let r = redact("token sk-other9 and \"sk-q\"", "");
        assert_eq!(r, "token sk-*** and \"sk-***\"");
        assert!(redact(&"é".repeat(600), "").len() <= 504);
    }

    #[test]
    fn dispositions() {
        let status = |s: u16| LlmError::Status {
            provider: LlmProvider::OpenRouter,
            status: s,
            code: s.to_string(),
            message: String::new(),
            retry_after: None,
        };
        assert_eq!(status(402).disposition(), Disposition::Report);
        assert_eq!(status(400).disposition(), Disposition::Report);
        assert_eq!(status(401).disposition(), Disposition::Report);
        assert_eq!(status(429).disposition(), Disposition::RateLimited(None));
        assert_eq!(
            status(503).disposition(),
            Disposition::FailOver { retry_same: true }
        );
        let mid = |c: &str| LlmError::MidStream {
            provider: LlmProvider::LiteLlm,
            code: c.to_owned(),
            message: String::new(),
            partial: String::new(),
        };
        assert_eq!(mid("402").disposition(), Disposition::Report);
        assert_eq!(
            mid("502").disposition(),
            Disposition::FailOver { retry_same: false }
        );
    }
}
