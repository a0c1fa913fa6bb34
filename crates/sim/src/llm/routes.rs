//! The HTTP routes: OpenRouter's under `/api/v1`, OpenAI's under `/v1`, the admin API
//! under `/_sim`, all on one router.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

use super::admin;
use super::chat::{self, ChatResponse, Completion};
use super::error::ApiError;
use super::state::{Generation, LlmState, Served, bump, unix_now, unix_now_ns};
use super::stream::{self, StreamFault};

/// When every simulated model was "created" (a fixed time: answers stay deterministic).
const MODELS_CREATED: u64 = 1_721_260_800;

type Shared = State<Arc<LlmState>>;

pub(crate) fn router(state: Arc<LlmState>) -> Router {
    Router::new()
        .route("/api/v1/models", get(openrouter_models))
        .route("/api/v1/key", get(key_info))
        .route("/api/v1/auth/key", get(key_info))
        .route("/api/v1/generation", get(generation))
        .route("/api/v1/chat/completions", post(openrouter_chat))
        .route("/v1/models", get(openai_models))
        .route("/v1/chat/completions", post(openai_chat))
        .merge(admin::router())
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not Found")
}

/// Checks the bearer key.
fn authorize<'s>(state: &'s LlmState, headers: &HeaderMap) -> Result<&'s str, ApiError> {
    let refused = |message: &str| {
        bump(&state.stats.auth_failures);
        ApiError::unauthorized(message)
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(refused("No auth credentials found"));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .ok_or_else(|| refused("The Authorization header must be `Bearer <key>`"))?;
    // The presented key is never echoed back: an error body must not carry a credential.
    state
        .key(presented)
        .ok_or_else(|| refused("User not found: the API key is not valid"))
}

async fn openrouter_models(State(state): Shared) -> Response {
    bump(&state.stats.models_requests);
    let data: Vec<Value> = state
        .models
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "canonical_slug": m.id,
                "hugging_face_id": null,
                "name": m.name,
                "created": MODELS_CREATED,
                "description": format!("{} served by gekko's LLM simulator.", m.name),
                "context_length": m.context_length,
                "architecture": {
                    "modality": "text->text",
                    "input_modalities": ["text"],
                    "output_modalities": ["text"],
                    "tokenizer": "Other",
                    "instruct_type": null,
                },
                "pricing": {
                    "prompt": m.prompt_price_text,
                    "completion": m.completion_price_text,
                    "request": "0",
                    "image": "0",
                },
                "top_provider": {
                    "context_length": m.context_length,
                    "max_completion_tokens": 16_384,
                    "is_moderated": m.vendor() == "openai",
                },
                "per_request_limits": null,
                "links": {"details": format!("/api/v1/models/{}/endpoints", m.id)},
                "supported_voices": null,
                "supported_parameters": ["max_tokens", "temperature", "top_p", "stop", "stream",
                                         "stream_options", "max_completion_tokens"],
                "default_parameters": null,
            })
        })
        .collect();
    // One page holds every model: `links.next` is null.
    let total = data.len();
    axum::Json(json!({ "data": data, "links": {"next": null}, "total_count": total }))
        .into_response()
}

async fn openai_models(State(state): Shared, headers: HeaderMap) -> Response {
    bump(&state.stats.models_requests);
    if let Err(e) = authorize(&state, &headers) {
        return e.into_response();
    }
    let data: Vec<Value> = state
        .models
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "object": "model",
                "created": MODELS_CREATED,
                "owned_by": m.vendor(),
            })
        })
        .collect();
    axum::Json(json!({ "object": "list", "data": data })).into_response()
}

/// `{"data": …}`, serialized straight to the body: going through `serde_json::Value`
/// would turn the exact decimal numbers into floats.
#[derive(Debug, Serialize)]
struct Data<T> {
    data: T,
}

/// `GET /api/v1/key`: the calling key, unlimited, with the usage spent through the sim.
#[derive(Debug, Serialize)]
struct KeyInfo {
    label: String,
    limit: Option<u64>,
    limit_reset: Option<String>,
    limit_remaining: Option<u64>,
    include_byok_in_limit: bool,
    #[serde(serialize_with = "chat::decimal_number")]
    usage: Decimal,
    #[serde(serialize_with = "chat::decimal_number")]
    usage_daily: Decimal,
    #[serde(serialize_with = "chat::decimal_number")]
    usage_weekly: Decimal,
    #[serde(serialize_with = "chat::decimal_number")]
    usage_monthly: Decimal,
    byok_usage: u64,
    byok_usage_daily: u64,
    byok_usage_weekly: u64,
    byok_usage_monthly: u64,
    is_free_tier: bool,
    is_management_key: bool,
    is_provisioning_key: bool,
    expires_at: Option<String>,
    creator_user_id: Option<String>,
    organization_id: Option<String>,
    workspace_id: Option<String>,
    allowed_data_regions: Vec<String>,
    budgets: Vec<Value>,
    effective_budget: Option<Value>,
    free_model_daily_requests: Value,
    rate_limit: Value,
}

/// OpenRouter's label: the key's first 12 characters and its last 3
/// (`sk-or-v1-au7...890`); a short key shows only its first 3.
fn key_label(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() > 16 {
        let head: String = chars[..12].iter().collect();
        let tail: String = chars[chars.len() - 3..].iter().collect();
        format!("{head}...{tail}")
    } else {
        let head: String = chars.iter().take(3).collect();
        format!("{head}...")
    }
}

async fn key_info(State(state): Shared, headers: HeaderMap) -> Response {
    bump(&state.stats.key_requests);
    let key = match authorize(&state, &headers) {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let usage = state.usage();
    let used = state
        .free_requests
        .load(std::sync::atomic::Ordering::Relaxed);
    let info = KeyInfo {
        label: key_label(key),
        limit: None,
        limit_reset: None,
        limit_remaining: None,
        include_byok_in_limit: false,
        usage,
        usage_daily: usage,
        usage_weekly: usage,
        usage_monthly: usage,
        byok_usage: 0,
        byok_usage_daily: 0,
        byok_usage_weekly: 0,
        byok_usage_monthly: 0,
        is_free_tier: false,
        is_management_key: false,
        is_provisioning_key: false,
        expires_at: None,
        creator_user_id: None,
        organization_id: None,
        workspace_id: None,
        allowed_data_regions: Vec::new(),
        budgets: Vec::new(),
        effective_budget: None,
        free_model_daily_requests: json!({
            "used": used, "limit": 1000, "remaining": 1000_u64.saturating_sub(used),
        }),
        rate_limit: json!({
            "requests": 1000, "interval": "1h",
            "note": "This field is deprecated and safe to ignore.",
        }),
    };
    axum::Json(Data { data: info }).into_response()
}

/// `GET /api/v1/generation?id=gen-…`: what one answer of this simulator cost.
#[derive(Debug, Serialize)]
struct GenerationInfo {
    id: String,
    upstream_id: Option<String>,
    #[serde(serialize_with = "chat::decimal_number")]
    total_cost: Decimal,
    #[serde(serialize_with = "chat::decimal_number")]
    usage: Decimal,
    cache_discount: Option<u64>,
    upstream_inference_cost: Option<u64>,
    created_at: String,
    model: String,
    app_id: Option<u64>,
    streamed: Option<bool>,
    cancelled: Option<bool>,
    provider_name: Option<String>,
    provider_responses: Option<Vec<Value>>,
    latency: Option<u64>,
    moderation_latency: Option<u64>,
    generation_time: Option<u64>,
    finish_reason: Option<&'static str>,
    native_finish_reason: Option<&'static str>,
    tokens_prompt: Option<u64>,
    tokens_completion: Option<u64>,
    native_tokens_prompt: Option<u64>,
    native_tokens_completion: Option<u64>,
    native_tokens_completion_images: Option<u64>,
    native_tokens_reasoning: Option<u64>,
    native_tokens_cached: Option<u64>,
    num_media_prompt: Option<u64>,
    num_media_completion: Option<u64>,
    num_input_audio_prompt: Option<u64>,
    num_search_results: Option<u64>,
    num_fetches: Option<u64>,
    origin: &'static str,
    is_byok: bool,
    api_type: Option<&'static str>,
    data_region: &'static str,
    external_user: Option<String>,
    http_referer: Option<String>,
    user_agent: Option<String>,
    preset_id: Option<String>,
    router: Option<String>,
    service_tier: Option<String>,
    web_search_engine: Option<String>,
    workspace_id: Option<String>,
}

impl GenerationInfo {
    fn of(g: Generation) -> Self {
        Self {
            id: g.id,
            upstream_id: None,
            total_cost: g.cost,
            usage: g.cost,
            cache_discount: None,
            upstream_inference_cost: None,
            created_at: crate::oanda::time::rfc3339(g.created_ns),
            model: g.model,
            app_id: None,
            streamed: Some(g.streamed),
            cancelled: Some(false),
            provider_name: Some(g.provider),
            provider_responses: None,
            latency: Some(0),
            moderation_latency: None,
            generation_time: Some(0),
            finish_reason: Some(g.finish_reason),
            native_finish_reason: Some(g.finish_reason),
            tokens_prompt: Some(g.tokens_prompt),
            tokens_completion: Some(g.tokens_completion),
            native_tokens_prompt: Some(g.tokens_prompt),
            native_tokens_completion: Some(g.tokens_completion),
            native_tokens_completion_images: None,
            native_tokens_reasoning: Some(0),
            native_tokens_cached: Some(0),
            num_media_prompt: None,
            num_media_completion: None,
            num_input_audio_prompt: None,
            num_search_results: None,
            num_fetches: None,
            origin: "",
            is_byok: false,
            api_type: Some("completions"),
            data_region: "global",
            external_user: None,
            http_referer: None,
            user_agent: None,
            preset_id: None,
            router: None,
            service_tier: None,
            web_search_engine: None,
            workspace_id: None,
        }
    }
}

async fn generation(
    State(state): Shared,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    if let Err(e) = authorize(&state, &headers) {
        return e.into_response();
    }
    let Ok(Query(query)) = query else {
        return ApiError::bad_request("the query string is malformed").into_response();
    };
    let Some(id) = query.get("id").filter(|id| !id.is_empty()) else {
        return ApiError::bad_request("missing required query parameter `id`").into_response();
    };
    match state.generation(id) {
        Some(g) => axum::Json(Data {
            data: GenerationInfo::of(g),
        })
        .into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, format!("Generation {id} not found"))
            .into_response(),
    }
}

/// A request body, or why it could not be read (over axum's 2 MB default limit, a
/// broken upload), answered in the same JSON error shape as every other refusal.
type Body = Result<Bytes, BytesRejection>;

async fn openrouter_chat(state: Shared, headers: HeaderMap, body: Body) -> Response {
    chat(state, headers, body, false).await
}

async fn openai_chat(state: Shared, headers: HeaderMap, body: Body) -> Response {
    chat(state, headers, body, true).await
}

/// Both chat routes; `openai_path` allows a model named without its vendor prefix.
async fn chat(State(state): Shared, headers: HeaderMap, body: Body, openai_path: bool) -> Response {
    bump(&state.stats.chat_requests);
    let body = match body {
        Ok(b) => b,
        Err(r) => {
            return ApiError::new(r.status(), format!("request body: {}", r.body_text()))
                .into_response();
        }
    };
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    if let Ok(v) = &parsed
        && chat::wants_stream(v)
    {
        bump(&state.stats.stream_requests);
    }
    if let Err(e) = authorize(&state, &headers) {
        return e.into_response();
    }
    let value = match parsed {
        Ok(v) => v,
        Err(e) => return ApiError::bad_request(format!("invalid JSON body: {e}")).into_response(),
    };
    let req = match chat::parse(&value) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let Some(model) = state.model(&req.model, openai_path) else {
        return ApiError::bad_request(format!("{} is not a valid model ID", req.model))
            .into_response();
    };
    let completion = Completion::of(&req, model);
    if completion.prompt_tokens > u64::from(model.context_length) {
        return ApiError::bad_request(format!(
            "This endpoint's maximum context length is {} tokens. However, you requested \
             about {} tokens.",
            model.context_length, completion.prompt_tokens
        ))
        .into_response();
    }
    let mut stream_fault = StreamFault::default();
    if let Some(served) = state.faults.take(req.stream) {
        bump(&state.stats.faults_served);
        match served {
            Served::Status {
                code,
                retry_after_s,
            } => return ApiError::injected(code, retry_after_s, &model.id).into_response(),
            // Accepted and never answered: the handler waits until the simulator stops,
            // which aborts the connection and drops this future.
            Served::Hang => return std::future::pending::<Response>().await,
            Served::SlowStream { delay } => stream_fault.delay = Some(delay),
            Served::MidStreamError { code, after_chunks } => {
                stream_fault.error = Some((code, after_chunks));
            }
        }
    }
    if model.is_free() {
        bump(&state.free_requests);
    }
    let id = state.generation_id();
    let created = unix_now();
    let gen_header = HeaderValue::from_str(&id).ok();
    // A stream cut by an error is not billed (and its generation says so).
    let billed = if stream_fault.error.is_none() {
        state.add_usage(completion.cost);
        completion.cost
    } else {
        Decimal::ZERO
    };
    state.record(Generation {
        id: id.clone(),
        model: model.id.clone(),
        provider: model.provider(),
        created_ns: unix_now_ns(),
        streamed: req.stream,
        finish_reason: if stream_fault.error.is_some() {
            "error"
        } else {
            completion.finish_reason
        },
        tokens_prompt: completion.prompt_tokens,
        tokens_completion: completion.completion_tokens,
        cost: billed,
    });
    let mut response = if req.stream {
        let body = stream::body(
            &id,
            model,
            created,
            &completion,
            stream_fault,
            state.keepalive_every,
        );
        (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response()
    } else {
        axum::Json(ChatResponse::new(id, model, created, &completion)).into_response()
    };
    if let Some(h) = gen_header {
        response.headers_mut().insert("x-generation-id", h);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_hide_the_middle_of_the_key() {
        assert_eq!(key_label("sk-or-v1-au7abcdef890"), "sk-or-v1-au7...890");
        assert_eq!(key_label("sk-short"), "sk-...");
    }
}
