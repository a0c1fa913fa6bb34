//! Chat completions: reading the request (every problem named by its field), the
//! deterministic reply, token counts and cost, and the JSON shapes of the answer and of
//! stream chunks.
//!
//! The request is read from a `serde_json::Value` rather than a derived struct so each
//! problem can name the exact field (`messages[2].content`), and so unknown fields
//! (OpenRouter's `provider`, `transforms`, `usage`, OpenAI's `tools`, …) are accepted
//! and ignored as a real endpoint would.

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::error::ApiError;
use super::state::ModelEntry;

/// Roles a message may have.
const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

/// A chat request that passed validation.
#[derive(Debug)]
pub(crate) struct ChatRequest {
    pub(crate) model: String,
    /// The text of every message, in order, with its role.
    pub(crate) messages: Vec<(String, String)>,
    pub(crate) max_tokens: Option<u64>,
    pub(crate) stream: bool,
}

/// Whether a body that parsed as JSON asks for a stream (for counting, before
/// validation).
pub(crate) fn wants_stream(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool).unwrap_or(false)
}

/// Reads `body` (already parsed JSON) as a chat request.
///
/// # Errors
/// A 400 naming the first field that is missing or of the wrong type.
pub(crate) fn parse(body: &Value) -> Result<ChatRequest, ApiError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let model = match obj.get("model") {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request("missing required field `model`"));
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(ApiError::bad_request("`model` must not be empty"));
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::bad_request("`model` must be a string")),
    };
    let messages = match obj.get("messages") {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request("missing required field `messages`"));
        }
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(ApiError::bad_request("`messages` must not be empty"));
        }
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, m)| message(i, m))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "`messages` must be an array of messages",
            ));
        }
    };
    let mut max_tokens = None;
    for field in ["max_tokens", "max_completion_tokens"] {
        match obj.get(field) {
            None | Some(Value::Null) => {}
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => max_tokens = Some(max_tokens.map_or(n, |m: u64| m.min(n))),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "`{field}` must be a positive integer, got {v}"
                    )));
                }
            },
        }
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "`stream` must be a boolean, got {v}"
            )));
        }
    };
    for field in ["temperature", "top_p"] {
        if let Some(v) = obj.get(field)
            && !v.is_null()
            && !v.is_number()
        {
            return Err(ApiError::bad_request(format!(
                "`{field}` must be a number, got {v}"
            )));
        }
    }
    if let Some(v) = obj.get("stream_options")
        && !v.is_null()
        && !v.is_object()
    {
        return Err(ApiError::bad_request("`stream_options` must be an object"));
    }
    Ok(ChatRequest {
        model,
        messages,
        max_tokens,
        stream,
    })
}

/// One message: its role and its text (the text parts of an array content joined by
/// spaces; a missing or null content, as an assistant's tool call has, is empty).
fn message(i: usize, m: &Value) -> Result<(String, String), ApiError> {
    let obj = m
        .as_object()
        .ok_or_else(|| ApiError::bad_request(format!("`messages[{i}]` must be an object")))?;
    let role = match obj.get("role") {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request(format!(
                "missing required field `messages[{i}].role`"
            )));
        }
        Some(Value::String(r)) if ROLES.contains(&r.as_str()) => r.clone(),
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "`messages[{i}].role` must be one of {}, got {v}",
                ROLES.join(", ")
            )));
        }
    };
    let text = match obj.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                let kind = p.get("type").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`messages[{i}].content[{j}].type` must be a string"
                    ))
                })?;
                if kind == "text" {
                    let t = p.get("text").and_then(Value::as_str).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "`messages[{i}].content[{j}].text` must be a string"
                        ))
                    })?;
                    texts.push(t);
                }
            }
            texts.join(" ")
        }
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "`messages[{i}].content` must be a string or an array of content parts"
            )));
        }
    };
    Ok((role, text))
}

/// The reply to a request and what it cost.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    /// The reply's words joined by single spaces.
    pub(crate) words: Vec<String>,
    pub(crate) finish_reason: &'static str,
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) cost: Decimal,
}

impl Completion {
    /// `"sim reply to: <last user text>"`, truncated to `max_tokens` words.
    pub(crate) fn of(req: &ChatRequest, model: &ModelEntry) -> Self {
        let last = req
            .messages
            .iter()
            .rev()
            .find(|(role, _)| role == "user")
            .or_else(|| req.messages.last())
            .map_or("", |(_, t)| t.as_str());
        let reply = format!("sim reply to: {last}");
        let mut words: Vec<String> = reply.split_whitespace().map(str::to_owned).collect();
        let mut finish_reason = "stop";
        if let Some(max) = req.max_tokens
            && u64::try_from(words.len()).unwrap_or(u64::MAX) > max
        {
            words.truncate(usize::try_from(max).unwrap_or(usize::MAX));
            finish_reason = "length";
        }
        let count = |s: &str| u64::try_from(s.split_whitespace().count()).unwrap_or(u64::MAX);
        let prompt_tokens = req.messages.iter().map(|(_, t)| count(t)).sum::<u64>();
        let completion_tokens = u64::try_from(words.len()).unwrap_or(u64::MAX);
        let cost = (Decimal::from(prompt_tokens) * model.prompt_price
            + Decimal::from(completion_tokens) * model.completion_price)
            .normalize();
        Self {
            words,
            finish_reason,
            prompt_tokens,
            completion_tokens,
            cost,
        }
    }

    pub(crate) fn content(&self) -> String {
        self.words.join(" ")
    }

    /// The content in up to four deltas whose concatenation is [`Self::content`].
    pub(crate) fn deltas(&self) -> Vec<String> {
        let per = self.words.len().div_ceil(4).max(1);
        self.words
            .chunks(per)
            .enumerate()
            .map(|(i, w)| {
                let s = w.join(" ");
                if i == 0 { s } else { format!(" {s}") }
            })
            .collect()
    }

    pub(crate) fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            total_tokens: self.prompt_tokens.saturating_add(self.completion_tokens),
            cost: self.cost,
            prompt_tokens_details: TokenDetails {
                cached_tokens: Some(0),
                reasoning_tokens: None,
            },
            completion_tokens_details: TokenDetails {
                cached_tokens: None,
                reasoning_tokens: Some(0),
            },
        }
    }
}

/// `usage` of an answer or of the last stream chunk.
#[derive(Debug, Serialize)]
pub(crate) struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    /// OpenRouter sends the cost as a JSON number; it is written from the exact decimal
    /// (never through a float), so the digits on the wire are the exact sum.
    #[serde(serialize_with = "decimal_number")]
    cost: Decimal,
    prompt_tokens_details: TokenDetails,
    completion_tokens_details: TokenDetails,
}

#[derive(Debug, Serialize)]
struct TokenDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_tokens: Option<u64>,
}

pub(crate) fn decimal_number<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    let raw = serde_json::value::RawValue::from_string(d.normalize().to_string())
        .map_err(serde::ser::Error::custom)?;
    raw.serialize(s)
}

/// The non-streaming answer.
#[derive(Debug, Serialize)]
pub(crate) struct ChatResponse {
    pub(crate) id: String,
    pub(crate) provider: String,
    pub(crate) model: String,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) system_fingerprint: Option<String>,
    pub(crate) choices: Vec<Choice>,
    pub(crate) usage: Usage,
}

#[derive(Debug, Serialize)]
pub(crate) struct Choice {
    pub(crate) index: u32,
    pub(crate) logprobs: Option<Value>,
    pub(crate) finish_reason: &'static str,
    pub(crate) native_finish_reason: &'static str,
    pub(crate) message: Message,
}

#[derive(Debug, Serialize)]
pub(crate) struct Message {
    pub(crate) role: &'static str,
    pub(crate) content: String,
    pub(crate) refusal: Option<String>,
}

impl ChatResponse {
    pub(crate) fn new(id: String, model: &ModelEntry, created: u64, c: &Completion) -> Self {
        Self {
            id,
            provider: model.provider(),
            model: model.id.clone(),
            object: "chat.completion",
            created,
            system_fingerprint: None,
            choices: vec![Choice {
                index: 0,
                logprobs: None,
                finish_reason: c.finish_reason,
                native_finish_reason: c.finish_reason,
                message: Message {
                    role: "assistant",
                    content: c.content(),
                    refusal: None,
                },
            }],
            usage: c.usage(),
        }
    }
}

/// One `chat.completion.chunk`.
#[derive(Debug, Serialize)]
pub(crate) struct Chunk<'a> {
    pub(crate) id: &'a str,
    pub(crate) provider: &'a str,
    pub(crate) model: &'a str,
    pub(crate) object: &'static str,
    pub(crate) created: u64,
    pub(crate) system_fingerprint: Option<String>,
    pub(crate) choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<Value>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChunkChoice {
    pub(crate) index: u32,
    pub(crate) delta: Delta,
    pub(crate) finish_reason: Option<&'static str>,
    pub(crate) native_finish_reason: Option<&'static str>,
    pub(crate) logprobs: Option<Value>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model() -> ModelEntry {
        ModelEntry {
            id: "openai/gpt-4o-mini".into(),
            name: "x".into(),
            context_length: 1,
            prompt_price_text: "0.00000015".into(),
            completion_price_text: "0.0000006".into(),
            prompt_price: "0.00000015".parse().expect("decimal"),
            completion_price: "0.0000006".parse().expect("decimal"),
        }
    }

    #[test]
    fn reply_tokens_and_cost_are_exact() {
        let req = parse(&json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello   there"}]}
        ]}))
        .expect("valid");
        let c = Completion::of(&req, &model());
        assert_eq!(c.content(), "sim reply to: hello there");
        assert_eq!((c.prompt_tokens, c.completion_tokens), (4, 5));
        // 4 * 0.00000015 + 5 * 0.0000006 = 0.0000036
        assert_eq!(c.cost.to_string(), "0.0000036");
        let usage = serde_json::to_string(&c.usage()).expect("json");
        assert!(usage.contains("\"cost\":0.0000036"), "{usage}");
        assert_eq!(c.deltas().concat(), c.content());
        assert!(c.deltas().len() <= 4);
    }

    #[test]
    fn max_tokens_truncates_with_length() {
        let req = parse(&json!({"model": "m", "max_tokens": 2,
            "messages": [{"role": "user", "content": "a b c"}]}))
        .expect("valid");
        let c = Completion::of(&req, &model());
        assert_eq!(
            (c.content().as_str(), c.finish_reason),
            ("sim reply", "length")
        );
    }

    #[test]
    fn problems_name_their_field() {
        let cases = [
            (json!([]), "JSON object"),
            (json!({"messages": []}), "`model`"),
            (
                json!({"model": 3, "messages": []}),
                "`model` must be a string",
            ),
            (json!({"model": "m"}), "`messages`"),
            (
                json!({"model": "m", "messages": "hi"}),
                "`messages` must be an array",
            ),
            (json!({"model": "m", "messages": [1]}), "`messages[0]`"),
            (
                json!({"model": "m", "messages": [{"content": "x"}]}),
                "`messages[0].role`",
            ),
            (
                json!({"model": "m", "messages": [{"role": "king"}]}),
                "`messages[0].role`",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": 5}]}),
                "`messages[0].content`",
            ),
            (
                json!({"model": "m", "max_tokens": -1, "messages": [{"role": "user"}]}),
                "`max_tokens`",
            ),
            (
                json!({"model": "m", "stream": "yes", "messages": [{"role": "user"}]}),
                "`stream`",
            ),
        ];
        for (body, needle) in cases {
            let err = parse(&body).expect_err("invalid");
            let msg = err.body().to_string();
            assert!(msg.contains(needle), "{body}: {msg}");
        }
    }
}
