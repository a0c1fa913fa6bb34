//! The HTTP core both clients share: auth and attribution headers, the three timeouts,
//! error bodies, the OpenAI chat shape (plain and streamed).
//!
//! OpenRouter and the LiteLLM proxy both speak OpenAI's chat completions; they differ in
//! paths, in the extra routes they have, and in where cost comes from (`usage.cost` on
//! OpenRouter, the `x-litellm-response-cost` header on LiteLLM). Those differences live in
//! the two client modules; everything on the wire that they share is here, once.
//!
//! Timeouts: `connect_timeout` is reqwest's; `first_byte_timeout` bounds the wait for
//! response headers and, in a stream, every silence between two reads (keep-alive
//! comments reset it, which is what they are for); `total_timeout` is one deadline for
//! the whole request, body or stream included.

use std::collections::VecDeque;
use std::time::Duration;

use gekko_config::{LlmProvider, LlmSettings};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::error::{LlmError, redact};
use crate::sse::{SseItem, SseParser};
use crate::types::{ChatRequest, Completion, StreamEvent, Usage, decimal_from_json, parse_decimal};

/// LiteLLM's cost header.
pub(crate) const LITELLM_COST_HEADER: &str = "x-litellm-response-cost";

/// One provider's HTTP settings and connection pool.
#[derive(Clone)]
pub(crate) struct HttpCore {
    client: reqwest::Client,
    pub(crate) provider: LlmProvider,
    pub(crate) base: String,
    key: Option<SecretString>,
    headers: HeaderMap,
    first_byte: Duration,
    total: Duration,
}

impl std::fmt::Debug for HttpCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCore")
            .field("provider", &self.provider)
            .field("base", &self.base)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl HttpCore {
    /// A client for `provider` at `base` (no trailing `/`).
    ///
    /// # Errors
    /// [`LlmError::Setup`] when a header value is not usable or the TLS stack fails.
    pub(crate) fn new(
        provider: LlmProvider,
        base: &str,
        key: Option<SecretString>,
        extra: &[(&'static str, String)],
        settings: &LlmSettings,
    ) -> Result<Self, LlmError> {
        let setup = |message: String| LlmError::Setup { provider, message };
        let mut headers = HeaderMap::new();
        for (name, value) in extra {
            let v = HeaderValue::from_str(value)
                .map_err(|_| setup(format!("{name} is not a valid header value")))?;
            headers.insert(HeaderName::from_static(name), v);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .build()
            .map_err(|e| setup(e.to_string()))?;
        Ok(Self {
            client,
            provider,
            base: base.trim_end_matches('/').to_owned(),
            key,
            headers,
            first_byte: settings.first_byte_timeout,
            total: settings.total_timeout,
        })
    }

    fn key_text(&self) -> &str {
        self.key.as_ref().map_or("", |k| k.expose_secret())
    }

    fn request(&self, method: reqwest::Method, path: &str, auth: bool) -> reqwest::RequestBuilder {
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.base))
            .headers(self.headers.clone());
        if auth && let Some(key) = &self.key {
            rb = rb.bearer_auth(key.expose_secret());
        }
        rb
    }

    fn transport_error(&self, e: &reqwest::Error) -> LlmError {
        let mut message = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            message.push_str(": ");
            message.push_str(&s.to_string());
            src = s.source();
        }
        LlmError::Connect {
            provider: self.provider,
            message: redact(&message, self.key_text()),
        }
    }

    /// Sends and waits for the headers (within `first_byte_timeout` and the deadline); an
    /// error status becomes [`LlmError::Status`] with the body's code and message.
    async fn send(
        &self,
        rb: reqwest::RequestBuilder,
        deadline: Instant,
    ) -> Result<reqwest::Response, LlmError> {
        let wait = self
            .first_byte
            .min(deadline.saturating_duration_since(Instant::now()));
        let resp = match tokio::time::timeout(wait, rb.send()).await {
            Err(_) => {
                return Err(LlmError::Timeout {
                    provider: self.provider,
                    phase: "response headers",
                    after: wait,
                    partial: String::new(),
                });
            }
            Ok(Err(e)) if e.is_timeout() => {
                return Err(LlmError::Timeout {
                    provider: self.provider,
                    phase: "connect",
                    after: wait,
                    partial: String::new(),
                });
            }
            Ok(Err(e)) => return Err(self.transport_error(&e)),
            Ok(Ok(r)) => r,
        };
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let retry_after = retry_after(resp.headers(), status);
        let body = match tokio::time::timeout_at(deadline, resp.bytes()).await {
            Ok(Ok(b)) => String::from_utf8_lossy(&b).into_owned(),
            _ => String::new(),
        };
        let (code, message) = error_fields(&body, status);
        Err(LlmError::Status {
            provider: self.provider,
            status,
            code,
            message: redact(&message, self.key_text()),
            retry_after,
        })
    }

    /// `GET path` as JSON, with the bearer key when `auth`.
    pub(crate) async fn get_json(&self, path: &str, auth: bool) -> Result<Value, LlmError> {
        let deadline = Instant::now() + self.total;
        let resp = self
            .send(self.request(reqwest::Method::GET, path, auth), deadline)
            .await?;
        self.body_json(resp, deadline).await.map(|(v, _)| v)
    }

    async fn body_json(
        &self,
        resp: reqwest::Response,
        deadline: Instant,
    ) -> Result<(Value, HeaderMap), LlmError> {
        let headers = resp.headers().clone();
        let bytes = match tokio::time::timeout_at(deadline, resp.bytes()).await {
            Err(_) => {
                return Err(LlmError::Timeout {
                    provider: self.provider,
                    phase: "request",
                    after: self.total,
                    partial: String::new(),
                });
            }
            Ok(Err(e)) => return Err(self.transport_error(&e)),
            Ok(Ok(b)) => b,
        };
        let v = serde_json::from_slice(&bytes).map_err(|e| LlmError::Decode {
            provider: self.provider,
            message: format!("body is not JSON ({e})"),
        })?;
        Ok((v, headers))
    }

    fn chat_body(model: &str, req: &ChatRequest, stream: bool) -> Value {
        let mut body = json!({ "model": model, "messages": req.messages });
        if let Some(m) = req.max_tokens {
            body["max_tokens"] = json!(m);
        }
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        if stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({ "include_usage": true });
        }
        body
    }

    fn check_request(req: &ChatRequest) -> Result<(), LlmError> {
        if req.messages.is_empty() {
            return Err(LlmError::Invalid(
                "a chat request needs at least one message".into(),
            ));
        }
        Ok(())
    }

    /// `POST path` (a chat completions route), not streamed.
    pub(crate) async fn chat(
        &self,
        path: &str,
        model: &str,
        req: &ChatRequest,
    ) -> Result<Completion, LlmError> {
        Self::check_request(req)?;
        let deadline = Instant::now() + self.total;
        let rb = self
            .request(reqwest::Method::POST, path, true)
            .json(&Self::chat_body(model, req, false));
        let resp = self.send(rb, deadline).await?;
        let (v, headers) = self.body_json(resp, deadline).await?;
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            let (code, message) = error_object(err, 200);
            return Err(LlmError::MidStream {
                provider: self.provider,
                code,
                message: redact(&message, self.key_text()),
                partial: String::new(),
            });
        }
        let choice = v
            .get("choices")
            .and_then(|c| c.get(0))
            .ok_or_else(|| LlmError::Decode {
                provider: self.provider,
                message: "the answer has no choices".to_owned(),
            })?;
        let content = choice
            .pointer("/message/content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut usage = v.get("usage").and_then(usage_of);
        let header_cost = header_cost(&headers);
        if let (Some(u), Some(c)) = (&mut usage, header_cost)
            && u.cost.is_none()
        {
            u.cost = Some(c);
        }
        Ok(Completion {
            provider: self.provider,
            model: str_field(&v, "model").unwrap_or_else(|| model.to_owned()),
            id: str_field(&v, "id").unwrap_or_default(),
            content,
            finish_reason: choice
                .get("finish_reason")
                .and_then(Value::as_str)
                .map(str::to_owned),
            usage,
        })
    }

    /// `POST path` with `"stream": true`; returns once the headers are in.
    pub(crate) async fn chat_stream(
        &self,
        path: &str,
        model: &str,
        req: &ChatRequest,
    ) -> Result<ChatStream, LlmError> {
        Self::check_request(req)?;
        let deadline = Instant::now() + self.total;
        let rb = self
            .request(reqwest::Method::POST, path, true)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(&Self::chat_body(model, req, true));
        let resp = self.send(rb, deadline).await?;
        let header_cost = header_cost(resp.headers());
        Ok(ChatStream {
            provider: self.provider,
            key: SecretString::from(self.key_text()),
            resp,
            parser: SseParser::new(),
            queue: VecDeque::new(),
            content: String::new(),
            id: String::new(),
            model: model.to_owned(),
            finish_reason: None,
            usage: None,
            header_cost,
            silence: self.first_byte,
            total: self.total,
            deadline,
            done: false,
            keepalives: 0,
        })
    }
}

/// How long to leave a provider alone: `Retry-After` in seconds, else for a 429
/// OpenRouter's `X-RateLimit-Reset` (a Unix time in milliseconds); capped at an hour.
fn retry_after(headers: &HeaderMap, status: u16) -> Option<Duration> {
    const CAP: Duration = Duration::from_secs(3600);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(s) = header("retry-after") {
        return Some(Duration::from_secs(s).min(CAP));
    }
    if status != 429 {
        return None;
    }
    let reset_ms = header("x-ratelimit-reset")?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis();
    let wait = u128::from(reset_ms).saturating_sub(now_ms);
    Some(Duration::from_millis(u64::try_from(wait).unwrap_or(u64::MAX)).min(CAP))
}

fn str_field(v: &Value, name: &str) -> Option<String> {
    v.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn header_cost(headers: &HeaderMap) -> Option<Decimal> {
    headers
        .get(LITELLM_COST_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_decimal)
}

fn usage_of(u: &Value) -> Option<Usage> {
    if !u.is_object() {
        return None;
    }
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (p, c) = (n("prompt_tokens"), n("completion_tokens"));
    Some(Usage {
        prompt_tokens: p,
        completion_tokens: c,
        total_tokens: u
            .get("total_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(p + c),
        cost: u.get("cost").and_then(decimal_from_json),
    })
}

/// `(code, message)` of an error object `{"code": 402 | "402", "message": "..."}`.
fn error_object(err: &Value, status: u16) -> (String, String) {
    let code = match err.get("code") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => status.to_string(),
    };
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| err.to_string(), str::to_owned);
    (code, message)
}

/// `(code, message)` from an error body: OpenRouter/OpenAI `{"error":{...}}`, FastAPI
/// `{"detail": ...}`, or the text itself.
fn error_fields(body: &str, status: u16) -> (String, String) {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => {
            if let Some(err) = v.get("error") {
                if err.is_object() {
                    return error_object(err, status);
                }
                if let Some(s) = err.as_str() {
                    return (status.to_string(), s.to_owned());
                }
            }
            if let Some(d) = v.get("detail") {
                let text = d.as_str().map_or_else(|| d.to_string(), str::to_owned);
                return (status.to_string(), text);
            }
            (status.to_string(), v.to_string())
        }
        Err(_) if body.trim().is_empty() => (status.to_string(), "(empty body)".to_owned()),
        Err(_) => (status.to_string(), body.trim().to_owned()),
    }
}

/// A streamed completion being read; call [`ChatStream::next`] until it returns `None`.
///
/// Ends with exactly one [`StreamEvent::Done`] (the whole completion, usage included) or
/// one error. A mid-stream `error` event becomes [`LlmError::MidStream`] with the content
/// received so far; a stream that closes before `[DONE]` is a connection error.
pub struct ChatStream {
    provider: LlmProvider,
    /// Only to redact it from error events; never in `Debug`.
    key: SecretString,
    resp: reqwest::Response,
    parser: SseParser,
    queue: VecDeque<SseItem>,
    content: String,
    id: String,
    model: String,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    header_cost: Option<Decimal>,
    silence: Duration,
    total: Duration,
    deadline: Instant,
    done: bool,
    keepalives: u64,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("id", &self.id)
            .field("content_chars", &self.content.chars().count())
            .field("keepalives", &self.keepalives)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ChatStream {
    /// Who is streaming.
    #[must_use]
    pub fn provider(&self) -> LlmProvider {
        self.provider
    }

    /// Keep-alive comments seen so far.
    #[must_use]
    pub fn keepalives(&self) -> u64 {
        self.keepalives
    }

    /// The content received so far.
    #[must_use]
    pub fn content(&self) -> &str {
        &self.content
    }

    fn fail(&mut self, e: LlmError) -> Option<Result<StreamEvent, LlmError>> {
        self.done = true;
        Some(Err(e))
    }

    fn completion(&self) -> Completion {
        let mut usage = self.usage.clone();
        if let (Some(u), Some(c)) = (&mut usage, self.header_cost)
            && u.cost.is_none()
        {
            u.cost = Some(c);
        }
        Completion {
            provider: self.provider,
            model: self.model.clone(),
            id: self.id.clone(),
            content: self.content.clone(),
            finish_reason: self.finish_reason.clone(),
            usage,
        }
    }

    /// The next piece of content, the final completion, or the error that ended the
    /// stream; `None` after either.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, LlmError>> {
        if self.done {
            return None;
        }
        loop {
            while let Some(item) = self.queue.pop_front() {
                let data = match item {
                    SseItem::Comment(_) => {
                        self.keepalives += 1;
                        continue;
                    }
                    SseItem::Event { data, .. } => data,
                };
                if data.trim() == "[DONE]" {
                    self.done = true;
                    return Some(Ok(StreamEvent::Done(self.completion())));
                }
                let v: Value = match serde_json::from_str(&data) {
                    Ok(v) => v,
                    Err(e) => {
                        let provider = self.provider;
                        return self.fail(LlmError::Decode {
                            provider,
                            message: format!("a stream event is not JSON ({e})"),
                        });
                    }
                };
                if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
                    let (code, message) = error_object(err, 200);
                    let e = LlmError::MidStream {
                        provider: self.provider,
                        code,
                        message: redact(&message, self.key.expose_secret()),
                        partial: self.content.clone(),
                    };
                    return self.fail(e);
                }
                if self.id.is_empty()
                    && let Some(id) = str_field(&v, "id")
                {
                    self.id = id;
                }
                if let Some(m) = str_field(&v, "model") {
                    self.model = m;
                }
                if let Some(u) = v.get("usage").and_then(usage_of) {
                    self.usage = Some(u);
                }
                let Some(choice) = v.get("choices").and_then(|c| c.get(0)) else {
                    continue;
                };
                if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
                    self.finish_reason = Some(f.to_owned());
                }
                if let Some(text) = choice.pointer("/delta/content").and_then(Value::as_str)
                    && !text.is_empty()
                {
                    self.content.push_str(text);
                    return Some(Ok(StreamEvent::Content(text.to_owned())));
                }
            }
            let now = Instant::now();
            if now >= self.deadline {
                let e = LlmError::Timeout {
                    provider: self.provider,
                    phase: "request",
                    after: self.total,
                    partial: self.content.clone(),
                };
                return self.fail(e);
            }
            let wait = self.silence.min(self.deadline - now);
            match tokio::time::timeout(wait, self.resp.chunk()).await {
                Err(_) => {
                    let phase = if wait < self.silence {
                        "request"
                    } else {
                        "stream silence"
                    };
                    let e = LlmError::Timeout {
                        provider: self.provider,
                        phase,
                        after: if wait < self.silence {
                            self.total
                        } else {
                            wait
                        },
                        partial: self.content.clone(),
                    };
                    return self.fail(e);
                }
                Ok(Err(e)) => {
                    let mut message = e.to_string();
                    if let Some(s) = std::error::Error::source(&e) {
                        message.push_str(": ");
                        message.push_str(&s.to_string());
                    }
                    let provider = self.provider;
                    return self.fail(LlmError::Connect {
                        provider,
                        message: format!("stream broke: {message}"),
                    });
                }
                Ok(Ok(None)) => {
                    let provider = self.provider;
                    return self.fail(LlmError::Connect {
                        provider,
                        message: "the stream closed before `data: [DONE]`".to_owned(),
                    });
                }
                Ok(Ok(Some(bytes))) => {
                    let items = self.parser.push(&bytes);
                    self.queue.extend(items);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_fields(
                r#"{"error":{"code":402,"message":"no credits","metadata":{}}}"#,
                402
            ),
            ("402".into(), "no credits".into())
        );
        assert_eq!(
            error_fields(
                r#"{"error":{"message":"bad key","type":"auth_error","code":"400"}}"#,
                400
            ),
            ("400".into(), "bad key".into())
        );
        assert_eq!(
            error_fields(r#"{"detail":"Service Unhealthy"}"#, 503),
            ("503".into(), "Service Unhealthy".into())
        );
        assert_eq!(error_fields("oops", 502), ("502".into(), "oops".into()));
        assert_eq!(error_fields("", 500).1, "(empty body)");
    }
}
