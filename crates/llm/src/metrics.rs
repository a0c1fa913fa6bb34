//! The LLM metrics, named once.
//!
//! - `gekko_llm_request_duration_seconds{provider,model}`: histogram of successful calls
//!   (a stream: from the request to `[DONE]`).
//! - `gekko_llm_tokens_total{provider,model,kind}`: `kind` is `prompt` or `completion`.
//! - `gekko_llm_cost_usd_total{provider,model}`: reported cost in USD. The `metrics` crate's
//!   counters hold whole numbers, so this is a gauge that only rises; the `Decimal` is
//!   turned into a float once, here, at the metric boundary.
//! - `gekko_llm_errors_total{provider,code}`: `code` as [`LlmError::code_label`].
//! - `gekko_llm_failovers_total{role,from,to}`: a role moved from one provider to another.
//! - `gekko_llm_provider_up{provider}`: 1 when the provider answers and its circuit is
//!   closed, 0 otherwise.

use std::time::Duration;

use gekko_config::LlmProvider;
use rust_decimal::prelude::ToPrimitive as _;

use crate::error::LlmError;
use crate::types::Completion;

/// Histogram of request durations.
pub const REQUEST_DURATION: &str = "gekko_llm_request_duration_seconds";
/// Counter of tokens.
pub const TOKENS: &str = "gekko_llm_tokens_total";
/// Counter of cost in USD.
pub const COST: &str = "gekko_llm_cost_usd_total";
/// Counter of errors.
pub const ERRORS: &str = "gekko_llm_errors_total";
/// Counter of failovers.
pub const FAILOVERS: &str = "gekko_llm_failovers_total";
/// Gauge of provider health.
pub const PROVIDER_UP: &str = "gekko_llm_provider_up";

/// Registers descriptions (once per process; harmless to repeat).
pub fn describe() {
    metrics::describe_histogram!(
        REQUEST_DURATION,
        metrics::Unit::Seconds,
        "LLM request duration, successful calls"
    );
    metrics::describe_counter!(TOKENS, "LLM tokens by kind (prompt, completion)");
    metrics::describe_gauge!(COST, "LLM cost reported by the provider, USD (only rises)");
    metrics::describe_counter!(ERRORS, "LLM errors by provider and code");
    metrics::describe_counter!(FAILOVERS, "LLM failovers by role, from and to provider");
    metrics::describe_gauge!(
        PROVIDER_UP,
        "1 when the LLM provider answers and its circuit is closed"
    );
}

/// A completed call.
pub(crate) fn success(c: &Completion, took: Duration) {
    let provider = c.provider.as_str();
    metrics::histogram!(REQUEST_DURATION, "provider" => provider, "model" => c.model.clone())
        .record(took.as_secs_f64());
    if let Some(u) = &c.usage {
        metrics::counter!(TOKENS, "provider" => provider, "model" => c.model.clone(), "kind" => "prompt")
            .increment(u.prompt_tokens);
        metrics::counter!(TOKENS, "provider" => provider, "model" => c.model.clone(), "kind" => "completion")
            .increment(u.completion_tokens);
        #[expect(
            clippy::disallowed_methods,
            reason = "the metric boundary: Prometheus samples are floats; cost stays Decimal everywhere else"
        )]
        let cost = u.cost.and_then(|d| d.to_f64());
        if let Some(cost) = cost {
            // `metrics` counters count whole numbers; cost is fractional USD, so it is a
            // gauge that only ever rises (the conversion to a float happens only here).
            metrics::gauge!(COST, "provider" => provider, "model" => c.model.clone())
                .increment(cost);
        }
    }
}

/// A failed call.
pub(crate) fn error(provider: LlmProvider, e: &LlmError) {
    metrics::counter!(ERRORS, "provider" => provider.as_str(), "code" => e.code_label())
        .increment(1);
}

/// A role moved from one provider to another.
pub(crate) fn failover(role: &str, from: LlmProvider, to: LlmProvider) {
    metrics::counter!(FAILOVERS, "role" => role.to_owned(), "from" => from.as_str(), "to" => to.as_str())
        .increment(1);
}

/// Sets `gekko_llm_provider_up`.
pub(crate) fn provider_up(provider: LlmProvider, up: bool) {
    metrics::gauge!(PROVIDER_UP, "provider" => provider.as_str()).set(if up { 1.0 } else { 0.0 });
}
