//! The provider-neutral shapes gekko speaks: chat requests, completions, usage, models.
//!
//! Money (prices, cost) is [`Decimal`]. Providers send prices as strings and `usage.cost`
//! as a JSON number; [`decimal_from_json`] reads both without going through a float
//! calculation (a JSON number is read from its shortest decimal text).

use std::str::FromStr;

use gekko_config::LlmProvider;
use rust_decimal::Decimal;
use serde::Serialize;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A `user` message.
    #[must_use]
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user".to_owned(),
            content: content.into(),
        }
    }
}

/// A chat request, without the model (the router picks it per role).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The conversation; at least one message.
    pub messages: Vec<ChatMessage>,
    /// Largest completion, in tokens.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
}

impl ChatRequest {
    /// One user message.
    #[must_use]
    pub fn ask(text: impl Into<String>) -> Self {
        Self {
            messages: vec![ChatMessage::user(text)],
            ..Self::default()
        }
    }
}

/// Token counts and cost of one completion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Their sum, as the provider reported it.
    pub total_tokens: u64,
    /// Cost in USD: `usage.cost` (OpenRouter) or `x-litellm-response-cost` (LiteLLM).
    pub cost: Option<Decimal>,
}

/// A finished completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Who answered.
    pub provider: LlmProvider,
    /// The model as the provider reported it.
    pub model: String,
    /// The generation id (`gen-…`), when given.
    pub id: String,
    /// The assistant's text.
    pub content: String,
    /// `stop`, `length`, ...
    pub finish_reason: Option<String>,
    /// Usage, when reported.
    pub usage: Option<Usage>,
}

/// One step of a streamed completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// A piece of content, in order.
    Content(String),
    /// The stream ended cleanly; the whole completion (all content, usage).
    Done(Completion),
}

/// A model a provider lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// The id to send as `model`.
    pub id: String,
    /// A display name, when given.
    pub name: Option<String>,
    /// Context window, when given.
    pub context_length: Option<u64>,
    /// USD per prompt token, when given.
    pub prompt_price: Option<Decimal>,
    /// USD per completion token, when given.
    pub completion_price: Option<Decimal>,
}

/// Reads a decimal from a JSON string or number.
#[must_use]
pub fn decimal_from_json(v: &serde_json::Value) -> Option<Decimal> {
    match v {
        serde_json::Value::Number(n) => parse_decimal(&n.to_string()),
        serde_json::Value::String(s) => parse_decimal(s),
        _ => None,
    }
}

/// Parses `0.00012`, `12` or `1.2e-4`.
#[must_use]
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    let s = s.trim();
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .ok()
        .map(|d| d.normalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_from_strings_and_numbers() {
        let v: serde_json::Value =
            serde_json::from_str(r#"[0.000123, "0.00006", 1.5e-7, 3, "x", null]"#).unwrap();
        let got: Vec<Option<Decimal>> = v
            .as_array()
            .unwrap()
            .iter()
            .map(decimal_from_json)
            .collect();
        assert_eq!(
            got,
            vec![
                Some(Decimal::new(123, 6)),
                Some(Decimal::new(6, 5)),
                Some(Decimal::new(15, 8)),
                Some(Decimal::new(3, 0)),
                None,
                None
            ]
        );
    }
}
