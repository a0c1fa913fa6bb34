//! The LiteLLM proxy client: `/health/liveliness`, `/health/readiness`, `/v1/models`,
//! `/model/info` and `/v1/chat/completions` (plain and streamed).
//!
//! The health routes are public; the rest send `Authorization: Bearer <LITELLM_API_KEY>`.
//! Cost comes from the `x-litellm-response-cost` header when `usage` carries none.
//! Without a database, LiteLLM answers a bad key with 400 or 500 rather than 401, so
//! callers should treat any refusal as refused rather than look for one code.

use gekko_config::{LiteLlmSettings, LlmProvider, LlmSettings};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::error::LlmError;
use crate::http::{ChatStream, HttpCore};
use crate::types::{ChatRequest, Completion, ModelEntry, decimal_from_json};

/// `/health/readiness`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteLlmReadiness {
    /// `healthy` when ready.
    pub status: String,
    /// The database state (`connected`, `Not connected`, ...).
    pub db: Option<String>,
    /// The proxy's version.
    pub version: Option<String>,
}

/// One deployment of `/model/info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteLlmModelInfo {
    /// The public model name (what `model` names).
    pub model_name: String,
    /// The upstream model (`litellm_params.model`, `openai/gpt-4o-mini`).
    pub upstream: Option<String>,
    /// `chat`, `embedding`, ...
    pub mode: Option<String>,
    /// Largest context or output, as the cost map has it.
    pub max_tokens: Option<u64>,
    /// USD per input token.
    pub input_cost_per_token: Option<Decimal>,
    /// USD per output token.
    pub output_cost_per_token: Option<Decimal>,
}

/// A LiteLLM proxy client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LiteLlmClient {
    http: HttpCore,
}

impl LiteLlmClient {
    /// A client from config.
    ///
    /// # Errors
    /// [`LlmError::Setup`] when the HTTP stack cannot be built.
    pub fn new(cfg: &LiteLlmSettings, settings: &LlmSettings) -> Result<Self, LlmError> {
        let http = HttpCore::new(
            LlmProvider::LiteLlm,
            &cfg.base_url,
            cfg.api_key.clone(),
            &[],
            settings,
        )?;
        Ok(Self { http })
    }

    /// The proxy's base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.http.base
    }

    /// `GET /health/liveliness`: the proxy's answer (`I'm alive!`).
    ///
    /// # Errors
    /// Not reachable, or not 200 (503 while shutting down).
    pub async fn liveliness(&self) -> Result<String, LlmError> {
        let v = self.http.get_json("/health/liveliness", false).await?;
        Ok(v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    }

    /// `GET /health/readiness`.
    ///
    /// # Errors
    /// Not reachable, or 503 (unhealthy).
    pub async fn readiness(&self) -> Result<LiteLlmReadiness, LlmError> {
        let v = self.http.get_json("/health/readiness", false).await?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(LiteLlmReadiness {
            status: s("status").unwrap_or_default(),
            db: s("db"),
            version: s("litellm_version"),
        })
    }

    /// `GET /v1/models`: the public model names.
    ///
    /// # Errors
    /// A refused key is a [`LlmError::Status`] (400, 401 or 500, see the module docs).
    pub async fn models(&self) -> Result<Vec<ModelEntry>, LlmError> {
        let v = self.http.get_json("/v1/models", true).await?;
        let data = v
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| LlmError::Decode {
                provider: LlmProvider::LiteLlm,
                message: "the model list has no `data` array".to_owned(),
            })?;
        Ok(data
            .iter()
            .filter_map(|m| {
                Some(ModelEntry {
                    id: m.get("id")?.as_str()?.to_owned(),
                    name: None,
                    context_length: None,
                    prompt_price: None,
                    completion_price: None,
                })
            })
            .collect())
    }

    /// `GET /model/info`: every deployment with its upstream and cost map entry.
    ///
    /// # Errors
    /// As [`LiteLlmClient::models`].
    pub async fn model_info(&self) -> Result<Vec<LiteLlmModelInfo>, LlmError> {
        let v = self.http.get_json("/model/info", true).await?;
        let data = v
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| LlmError::Decode {
                provider: LlmProvider::LiteLlm,
                message: "the model info has no `data` array".to_owned(),
            })?;
        Ok(data
            .iter()
            .filter_map(|m| {
                let info = m.get("model_info");
                let field = |k: &str| info.and_then(|i| i.get(k));
                Some(LiteLlmModelInfo {
                    model_name: m.get("model_name")?.as_str()?.to_owned(),
                    upstream: m
                        .pointer("/litellm_params/model")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    mode: field("mode").and_then(Value::as_str).map(str::to_owned),
                    max_tokens: field("max_tokens").and_then(Value::as_u64),
                    input_cost_per_token: field("input_cost_per_token").and_then(decimal_from_json),
                    output_cost_per_token: field("output_cost_per_token")
                        .and_then(decimal_from_json),
                })
            })
            .collect())
    }

    /// `POST /v1/chat/completions`.
    ///
    /// # Errors
    /// See [`LlmError`].
    pub async fn chat(&self, model: &str, req: &ChatRequest) -> Result<Completion, LlmError> {
        self.http.chat("/v1/chat/completions", model, req).await
    }

    /// `POST /v1/chat/completions` with `"stream": true`.
    ///
    /// # Errors
    /// Errors before the stream starts.
    pub async fn chat_stream(
        &self,
        model: &str,
        req: &ChatRequest,
    ) -> Result<ChatStream, LlmError> {
        self.http
            .chat_stream("/v1/chat/completions", model, req)
            .await
    }
}
