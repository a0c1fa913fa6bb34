//! Server-sent events for `"stream": true`.
//!
//! A stream is planned up front as a list of steps (send these bytes, wait this long) and
//! played by a plain `unfold` stream: no task is spawned per stream, so when the client
//! goes away, or the simulator stops and aborts the connection, dropping the body drops
//! the whole stream with it. While a step waits, keep-alive comments go out every
//! `keepalive_every`, the way OpenRouter keeps idle streams open.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use serde_json::json;

use super::chat::{Chunk, ChunkChoice, Completion, Delta};
use super::error::ApiError;
use super::state::ModelEntry;

/// The comment OpenRouter sends first and as its keep-alive.
pub(crate) const KEEPALIVE: &str = ": OPENROUTER PROCESSING\n\n";

/// How one stream misbehaves (from the fault it was served by, if any).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StreamFault {
    /// Wait before each content chunk.
    pub(crate) delay: Option<Duration>,
    /// `(code, after_chunks)`: an error event after that many content chunks.
    pub(crate) error: Option<(u16, u32)>,
}

#[derive(Debug)]
enum Step {
    Send(Bytes),
    Wait(Duration),
}

fn event<T: serde::Serialize>(value: &T) -> Step {
    // Serializing these derived structs cannot fail (string keys, no maps of non-strings);
    // should it ever, the event carries the reason instead of the stream panicking.
    let data = serde_json::to_string(value)
        .unwrap_or_else(|e| json!({"error": {"code": 500, "message": e.to_string()}}).to_string());
    Step::Send(Bytes::from(format!("data: {data}\n\n")))
}

/// The SSE body for `completion` of `model`, id `id`.
pub(crate) fn body(
    id: &str,
    model: &ModelEntry,
    created: u64,
    completion: &Completion,
    fault: StreamFault,
    keepalive_every: Duration,
) -> Body {
    let provider = model.provider();
    let chunk = |delta: Delta, finish: Option<&'static str>| Chunk {
        id,
        provider: &provider,
        model: &model.id,
        object: "chat.completion.chunk",
        created,
        system_fingerprint: None,
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish,
            native_finish_reason: finish,
            logprobs: None,
        }],
        usage: None,
        error: None,
    };
    let mut steps = VecDeque::new();
    steps.push_back(Step::Send(Bytes::from_static(KEEPALIVE.as_bytes())));
    let deltas = completion.deltas();
    for (i, text) in deltas.iter().enumerate() {
        if let Some((_, after)) = fault.error
            && usize::try_from(after).unwrap_or(usize::MAX) <= i
        {
            break;
        }
        if let Some(d) = fault.delay {
            steps.push_back(Step::Wait(d));
        }
        let role = (i == 0).then_some("assistant");
        steps.push_back(event(&chunk(
            Delta {
                role,
                content: Some(text.clone()),
            },
            None,
        )));
    }
    if let Some((code, _)) = fault.error {
        // Reference 4.3: once the model has started, an error is a `data:` event with an
        // `error` object and `finish_reason: "error"`, and the stream ends (no [DONE]).
        let err = ApiError::injected(code, None, &model.id).body();
        let mut c = chunk(
            Delta {
                role: None,
                content: Some(String::new()),
            },
            Some("error"),
        );
        c.error = err.get("error").cloned();
        steps.push_back(event(&c));
    } else {
        steps.push_back(event(&chunk(
            Delta {
                role: None,
                content: None,
            },
            Some(completion.finish_reason),
        )));
        let mut usage = chunk(
            Delta {
                role: None,
                content: None,
            },
            None,
        );
        usage.choices.clear();
        usage.usage = Some(completion.usage());
        steps.push_back(event(&usage));
        steps.push_back(Step::Send(Bytes::from_static(b"data: [DONE]\n\n")));
    }
    Body::from_stream(play(steps, keepalive_every))
}

/// Plays `steps`, sending a keep-alive comment every `every` of a wait.
fn play(
    steps: VecDeque<Step>,
    every: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send {
    futures_util::stream::unfold(steps, move |mut steps| async move {
        loop {
            match steps.pop_front()? {
                Step::Send(b) => return Some((Ok(b), steps)),
                Step::Wait(d) if d > every => {
                    tokio::time::sleep(every).await;
                    steps.push_front(Step::Wait(d - every));
                    return Some((Ok(Bytes::from_static(KEEPALIVE.as_bytes())), steps));
                }
                Step::Wait(d) => tokio::time::sleep(d).await,
            }
        }
    })
}
