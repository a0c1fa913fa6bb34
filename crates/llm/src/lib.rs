//! LLM links: OpenRouter and LiteLLM proxy clients with per-role failover, circuit
//! breakers, SSE streaming and usage metrics.
//!
//! - [`openrouter::OpenRouterClient`]: `GET /models`, `GET /key`, `POST /chat/completions`
//!   (plain and streamed), with the attribution headers from config.
//! - [`litellm::LiteLlmClient`]: `/health/liveliness`, `/health/readiness`, `/v1/models`,
//!   `/model/info`, `/v1/chat/completions` (plain and streamed), cost from
//!   `x-litellm-response-cost`.
//! - [`sse::SseParser`]: server-sent events over arbitrary byte chunking (keep-alive
//!   comments, mid-stream `error` events, the final usage chunk are read by
//!   [`ChatStream`]).
//! - [`router::LlmRouter`]: a primary and a secondary per role, failover on 429 (with
//!   `Retry-After`), 5xx, timeouts and connection errors, a breaker per provider, and
//!   400/401/402 reported instead of failed over. See the module for the rules.
//! - [`service::LlmLinkService`]: the `llm` service `gekko up` hosts (gRPC `LlmService`,
//!   readiness from the start-up model-list check).
//! - [`metrics`](crate::metrics): `gekko_llm_*`.
//!
//! Money is [`rust_decimal::Decimal`]; keys are `SecretString` and are redacted from
//! every provider message ([`error::redact`]).

pub mod error;
mod http;
pub mod litellm;
pub mod metrics;
pub mod openrouter;
pub mod router;
pub mod service;
pub mod sse;
pub mod types;

pub use error::{Disposition, LlmError};
pub use http::ChatStream;
pub use litellm::{LiteLlmClient, LiteLlmModelInfo, LiteLlmReadiness};
pub use openrouter::{KeyInfo, OpenRouterClient};
pub use router::{Answer, Failover, LlmRouter, ProviderCheck, ProviderClient, RoutedStream};
pub use service::{LlmGrpc, LlmLinkService, status_of};
pub use types::{ChatMessage, ChatRequest, Completion, ModelEntry, StreamEvent, Usage};
