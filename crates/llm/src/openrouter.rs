//! The OpenRouter client: `GET /models`, `GET /key`, `POST /chat/completions` (plain and
//! streamed), under the configured `/api/v1` base.
//!
//! Every request carries the attribution headers from config (`HTTP-Referer` from
//! `OPENROUTER_APP_URL`; `X-OpenRouter-Title` and the older `X-Title` from
//! `OPENROUTER_APP_TITLE`); they never affect routing or auth. `/models` is public; the
//! rest send `Authorization: Bearer <OPENROUTER_API_KEY>`.

use gekko_config::{LlmProvider, LlmSettings, OpenRouterSettings};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::error::LlmError;
use crate::http::{ChatStream, HttpCore};
use crate::types::{ChatRequest, Completion, ModelEntry, decimal_from_json};

/// What `GET /key` says about the calling key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's label (OpenRouter shows a masked form of the key).
    pub label: String,
    /// Credit limit in USD; `None` is unlimited.
    pub limit: Option<Decimal>,
    /// Credits left under the limit; `None` is unlimited.
    pub limit_remaining: Option<Decimal>,
    /// Credits used, USD.
    pub usage: Option<Decimal>,
    /// Whether the account is on the free tier.
    pub is_free_tier: bool,
}

/// An OpenRouter client. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct OpenRouterClient {
    http: HttpCore,
}

impl OpenRouterClient {
    /// A client from config.
    ///
    /// # Errors
    /// [`LlmError::Setup`] when an attribution value cannot be sent as a header.
    pub fn new(cfg: &OpenRouterSettings, settings: &LlmSettings) -> Result<Self, LlmError> {
        let mut extra = Vec::new();
        if let Some(url) = &cfg.app_url {
            extra.push(("http-referer", url.clone()));
        }
        if let Some(title) = &cfg.app_title {
            extra.push(("x-openrouter-title", title.clone()));
            extra.push(("x-title", title.clone()));
        }
        let http = HttpCore::new(
            LlmProvider::OpenRouter,
            &cfg.base_url,
            cfg.api_key.clone(),
            &extra,
            settings,
        )?;
        Ok(Self { http })
    }

    /// The base URL requests go to.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.http.base
    }

    /// `GET /models`.
    ///
    /// # Errors
    /// Transport, status and decode errors as [`LlmError`].
    pub async fn models(&self) -> Result<Vec<ModelEntry>, LlmError> {
        let v = self.http.get_json("/models", false).await?;
        let data = v
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| LlmError::Decode {
                provider: LlmProvider::OpenRouter,
                message: "the model list has no `data` array".to_owned(),
            })?;
        Ok(data
            .iter()
            .filter_map(|m| {
                let id = m.get("id")?.as_str()?.to_owned();
                Some(ModelEntry {
                    id,
                    name: m.get("name").and_then(Value::as_str).map(str::to_owned),
                    context_length: m.get("context_length").and_then(Value::as_u64),
                    prompt_price: m.pointer("/pricing/prompt").and_then(decimal_from_json),
                    completion_price: m.pointer("/pricing/completion").and_then(decimal_from_json),
                })
            })
            .collect())
    }

    /// `GET /key`: what the key may spend.
    ///
    /// # Errors
    /// A refused key is [`LlmError::Status`] 401; transport and decode errors as usual.
    pub async fn key_info(&self) -> Result<KeyInfo, LlmError> {
        let v = self.http.get_json("/key", true).await?;
        let d = v.get("data").ok_or_else(|| LlmError::Decode {
            provider: LlmProvider::OpenRouter,
            message: "the key answer has no `data`".to_owned(),
        })?;
        let dec = |k: &str| d.get(k).and_then(decimal_from_json);
        Ok(KeyInfo {
            label: d
                .get("label")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            limit: dec("limit"),
            limit_remaining: dec("limit_remaining"),
            usage: dec("usage"),
            is_free_tier: d
                .get("is_free_tier")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// `POST /chat/completions`.
    ///
    /// # Errors
    /// See [`LlmError`]; an error in a 200 body is [`LlmError::MidStream`].
    pub async fn chat(&self, model: &str, req: &ChatRequest) -> Result<Completion, LlmError> {
        self.http.chat("/chat/completions", model, req).await
    }

    /// `POST /chat/completions` with `"stream": true`; returns once the headers are in.
    ///
    /// # Errors
    /// Errors before the stream starts (status, connect, first byte).
    pub async fn chat_stream(
        &self,
        model: &str,
        req: &ChatRequest,
    ) -> Result<ChatStream, LlmError> {
        self.http.chat_stream("/chat/completions", model, req).await
    }
}
