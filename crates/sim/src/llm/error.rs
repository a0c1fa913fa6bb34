//! OpenRouter-shaped error answers (reference 4.3):
//! `{"error":{"code":<status>,"message":"…","metadata":{…}}}`, the HTTP status equal to
//! `error.code`, plus the headers a 429 or a 402 carries.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::state::unix_now;

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    metadata: Option<Value>,
    /// Boxed: most errors carry no header, and a small error keeps `Result`s small.
    headers: Box<HeaderMap>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            metadata: None,
            headers: Box::default(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// The answer of an injected [`super::Fault::Status`].
    pub(crate) fn injected(code: u16, retry_after_s: Option<u32>, model: &str) -> Self {
        let status = match StatusCode::from_u16(code) {
            Ok(s) if s.is_client_error() || s.is_server_error() => s,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let (message, metadata) = match status.as_u16() {
            402 => {
                // OpenRouter's in-flight budget 402s are the ones that carry Retry-After.
                let source = if retry_after_s.is_some() {
                    "openrouter_in_flight_budget"
                } else {
                    "openrouter_credits"
                };
                (
                    "Insufficient credits. This account never purchased credits. Add more \
                     credits at https://openrouter.ai/settings/credits"
                        .to_owned(),
                    Some(json!({
                        "limit_source": source,
                        "reason": "insufficient_credits",
                        "remedy_hint": "add credits or raise the key's limit",
                    })),
                )
            }
            429 => (
                "Rate limit exceeded".to_owned(),
                Some(json!({"error_type": "rate_limit_exceeded"})),
            ),
            403 => (
                "Input was flagged by moderation".to_owned(),
                Some(
                    json!({"reasons": ["simulated"], "flagged_input": "", "provider_name": "Sim",
                            "model_slug": model}),
                ),
            ),
            408 => ("Request timed out".to_owned(), None),
            502 => (
                format!("{model} is temporarily unavailable: invalid upstream response"),
                Some(json!({"provider_name": "Sim", "raw": "upstream error"})),
            ),
            503 => (
                "No endpoints found that meet your routing requirements".to_owned(),
                None,
            ),
            _ => (
                status
                    .canonical_reason()
                    .unwrap_or("simulated error")
                    .to_owned(),
                None,
            ),
        };
        let mut err = Self::new(status, message);
        err.metadata = metadata;
        if let Some(s) = retry_after_s {
            err.headers.insert("retry-after", HeaderValue::from(s));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            // X-RateLimit-Reset is a Unix time in milliseconds.
            let wait_ms = u64::from(retry_after_s.unwrap_or(60)) * 1000;
            let reset = unix_now().saturating_mul(1000).saturating_add(wait_ms);
            err.headers
                .insert("x-ratelimit-limit", HeaderValue::from_static("20"));
            err.headers
                .insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            err.headers
                .insert("x-ratelimit-reset", HeaderValue::from(reset));
        }
        err
    }

    /// The JSON body alone (also the `error` of a mid-stream error event).
    pub(crate) fn body(&self) -> Value {
        let mut error = json!({"code": self.status.as_u16(), "message": self.message});
        if let (Some(meta), Some(obj)) = (&self.metadata, error.as_object_mut()) {
            obj.insert("metadata".to_owned(), meta.clone());
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(self.body());
        (self.status, *self.headers, body).into_response()
    }
}
