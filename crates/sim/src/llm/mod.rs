//! An OpenAI- and OpenRouter-compatible LLM endpoint simulator.
//!
//! gekko's LLM clients (OpenRouter directly, and the LiteLLM proxy in front of an
//! OpenAI-compatible upstream) are tested offline against this module, written from the
//! protocol reference (sections 4 and 5 of `venues-and-services.md`) and not from gekko's
//! types: like the venue simulators it depends on no gekko crate, so it is an independent
//! oracle. It is checked in turn by the official `openai` Python SDK.
//!
//! # Routes (one listener, both path styles)
//!
//! | route | auth | answer |
//! |---|---|---|
//! | `GET /api/v1/models` | none | OpenRouter model list (string prices per token) |
//! | `GET /api/v1/key`, `GET /api/v1/auth/key` | Bearer | key info (`label`, `limit`, `usage`, …) |
//! | `POST /api/v1/chat/completions` | Bearer | chat, plain or streaming |
//! | `GET /api/v1/generation?id=gen-…` | Bearer | one answer's model, tokens and exact cost (the last 1024 are kept; 404 for others) |
//! | `GET /v1/models` | Bearer | OpenAI list (`{"object":"list","data":[…]}`) |
//! | `POST /v1/chat/completions` | Bearer | chat, plain or streaming |
//! | `POST /_sim/faults` | none | queue a [`Fault`] (JSON, below) |
//! | `DELETE /_sim/faults` | none | [`LlmSim::clear_faults`] |
//! | `GET /_sim/stats` | none | [`LlmSimStats`] as JSON |
//!
//! A request without `Authorization: Bearer <key>` naming one of
//! [`LlmSimConfig::api_keys`] gets 401 `{"error":{"code":401,"message":"…"}}` and counts in
//! [`LlmSimStats::auth_failures`]. Malformed JSON, a missing `model` or `messages`, or a
//! field of the wrong type is a 400 whose message names the field; an unknown model is a
//! 400 "`<id>` is not a valid model ID"; a body over 2 MB is a 413 in the same shape. No
//! body makes the simulator panic.
//!
//! # Chat
//!
//! The answer is deterministic: `"sim reply to: <text of the last user message>"`. Tokens
//! are whitespace-separated words: the prompt's are counted over every message's text, the
//! completion's over the reply, which `max_tokens` (or `max_completion_tokens`) truncates
//! to that many words with `finish_reason: "length"` (else `"stop"`). `usage.cost` is
//! `prompt_tokens × pricing.prompt + completion_tokens × pricing.completion`, exact, sent
//! as a JSON number as OpenRouter does. The id is `gen-…`, also in `X-Generation-Id`.
//!
//! On the OpenAI path (`/v1/…`) a model may also be named without its vendor prefix
//! (`gpt-4o-mini` for `openai/gpt-4o-mini`) when exactly one model has that name, because
//! that is what LiteLLM sends upstream for a model configured as `openai/<name>`.
//!
//! # Streaming
//!
//! `"stream": true` answers `text/event-stream`: a `: OPENROUTER PROCESSING` comment first,
//! keep-alive comments every [`LlmSimConfig::keepalive_every`] whenever the stream waits,
//! the reply in up to four `chat.completion.chunk` deltas (the role on the first), a chunk
//! with an empty delta and the `finish_reason`, a usage chunk with `"choices": []` (the
//! shape of OpenAI's `stream_options.include_usage`; always sent, as OpenRouter does), and
//! `data: [DONE]`.
//!
//! # Faults
//!
//! [`LlmSim::inject`] queues faults in order. Faults are for requests the endpoint would
//! otherwise serve: one refused for its key or its body (401, 400) takes none. Each such
//! chat request takes the first queued fault that applies to it ([`Fault::Status`] and
//! [`Fault::Hang`] apply to every chat request, [`Fault::MidStreamError`] and
//! [`Fault::SlowStream`] only to streaming ones), and uses up one of its `count`; a fault
//! whose count reaches zero leaves the queue. A plain request therefore passes over a
//! queued streaming-only fault and leaves it for the next stream. A fault with a `count`
//! of 0 is never queued. Every request served by a fault counts in
//! [`LlmSimStats::faults_served`].
//!
//! Over HTTP, `POST /_sim/faults` takes one fault as JSON (`count` defaults to 1):
//!
//! ```json
//! {"kind": "status", "code": 429, "retry_after_s": 2, "count": 1}
//! {"kind": "mid_stream_error", "code": 502, "after_chunks": 2, "count": 1}
//! {"kind": "slow_stream", "delay_ms": 500, "count": 1}
//! {"kind": "hang", "count": 1}
//! ```
//!
//! A status fault's code must be 400–599 and a mid-stream error's 400–599 too; anything
//! else, or an unknown field, is refused with 400 and a message naming the problem.
//!
//! # Stats
//!
//! [`LlmSimStats`] counts requests as they arrive, before auth and validation:
//! `chat_requests` counts every chat request, `stream_requests` the subset that asked for a
//! stream (`"stream": true` in a body that parsed).

mod admin;
mod chat;
mod error;
mod routes;
mod serve;
mod state;
mod stream;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::harness::server::{self, Lifecycle, SHUTDOWN_GRACE};

use state::LlmState;

/// A model the simulator serves.
#[derive(Debug, Clone)]
pub struct SimModel {
    /// `vendor/model` id, e.g. `openai/gpt-4o-mini` (free variants end with `:free`).
    pub id: String,
    /// Display name, e.g. `OpenAI: GPT-4o-mini`.
    pub name: String,
    /// Context window in tokens.
    pub context_length: u32,
    /// USD per prompt token, a decimal string (`"0.00000015"`).
    pub prompt_price: String,
    /// USD per completion token, a decimal string.
    pub completion_price: String,
}

impl SimModel {
    fn new(id: &str, name: &str, context_length: u32, prompt: &str, completion: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            context_length,
            prompt_price: prompt.to_owned(),
            completion_price: completion.to_owned(),
        }
    }
}

/// How to run an [`LlmSim`]. Its `Debug` output shows how many keys there are, never the
/// keys themselves.
#[derive(Clone)]
pub struct LlmSimConfig {
    /// Listen address; the default `127.0.0.1:0` picks a free port. A fixed address lets a
    /// test restart the simulator on the same port.
    pub addr: SocketAddr,
    /// Accepted bearer keys.
    pub api_keys: Vec<String>,
    /// Served models (prices are decimal strings; an unparsable price fails `start`).
    pub models: Vec<SimModel>,
    /// Gap between `: OPENROUTER PROCESSING` comments while a stream waits.
    pub keepalive_every: Duration,
}

impl std::fmt::Debug for LlmSimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmSimConfig")
            .field("addr", &self.addr)
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("models", &self.models)
            .field("keepalive_every", &self.keepalive_every)
            .finish()
    }
}

/// The key [`LlmSimConfig::default`] accepts.
pub const PAPER_KEY: &str = "sk-or-v1-paper";

impl Default for LlmSimConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            api_keys: vec![PAPER_KEY.to_owned()],
            models: vec![
                SimModel::new(
                    "openai/gpt-4o-mini",
                    "OpenAI: GPT-4o-mini",
                    128_000,
                    "0.00000015",
                    "0.0000006",
                ),
                SimModel::new(
                    "anthropic/claude-3.5-haiku",
                    "Anthropic: Claude 3.5 Haiku",
                    200_000,
                    "0.0000008",
                    "0.000004",
                ),
                SimModel::new(
                    "meta-llama/llama-3.1-8b-instruct:free",
                    "Meta: Llama 3.1 8B Instruct (free)",
                    131_072,
                    "0",
                    "0",
                ),
            ],
            keepalive_every: Duration::from_millis(50),
        }
    }
}

/// A misbehaviour to inject (see the module docs for how the queue is consumed).
#[derive(Debug, Clone)]
pub enum Fault {
    /// The next `count` chat requests (plain or streaming) answer `code` with an
    /// OpenRouter-shaped error body; 429 carries `Retry-After: retry_after_s` and
    /// `X-RateLimit-*` headers, 402 carries metadata.limit_source.
    Status {
        /// HTTP status, 400–599 (anything else is served as 500).
        code: u16,
        /// `Retry-After` seconds (sent with any code when set).
        retry_after_s: Option<u32>,
        /// How many requests.
        count: u32,
    },
    /// The next `count` streaming requests answer 200, send `after_chunks` content chunks,
    /// then an SSE `data:` event with `"error":{"code":code,...}` and
    /// `finish_reason:"error"`, then end.
    MidStreamError {
        /// `error.code` of the event.
        code: u16,
        /// Content chunks sent before the error.
        after_chunks: u32,
        /// How many requests.
        count: u32,
    },
    /// The next `count` streaming requests wait `delay` before each content chunk
    /// (keep-alive comments keep flowing).
    SlowStream {
        /// Wait before each content chunk.
        delay: Duration,
        /// How many requests.
        count: u32,
    },
    /// The next `count` chat requests are accepted and never answered (until the sim
    /// stops).
    Hang {
        /// How many requests.
        count: u32,
    },
}

/// What the simulator has served (see the module docs for what each counter counts).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LlmSimStats {
    /// `GET /api/v1/models` and `GET /v1/models`.
    pub models_requests: u64,
    /// `GET /api/v1/key` and `GET /api/v1/auth/key`.
    pub key_requests: u64,
    /// Every chat completion request, plain or streaming.
    pub chat_requests: u64,
    /// Chat requests that asked for a stream.
    pub stream_requests: u64,
    /// Requests refused for a missing or unknown key.
    pub auth_failures: u64,
    /// Requests answered by an injected fault.
    pub faults_served: u64,
}

/// A running simulator. Dropping it stops everything; [`LlmSim::stop`] also waits (a
/// bounded grace) until the port is free.
pub struct LlmSim {
    addr: SocketAddr,
    state: Arc<LlmState>,
    lifecycle: Lifecycle,
}

impl std::fmt::Debug for LlmSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys stay out of Debug output: they are credentials, even simulated ones.
        f.debug_struct("LlmSim")
            .field("addr", &self.addr)
            .field("models", &self.state.models.len())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl LlmSim {
    /// Validates `cfg` (model prices must be decimal strings, ids unique and non-empty),
    /// binds the listener and starts serving.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid configuration (the message names every problem);
    /// otherwise the bind error, with the address.
    pub async fn start(cfg: LlmSimConfig) -> std::io::Result<LlmSim> {
        let state = LlmState::new(&cfg)
            .map_err(|p| std::io::Error::new(std::io::ErrorKind::InvalidInput, p))?;
        let listener = server::bind(cfg.addr, "LLM").await?;
        let addr = server::connectable(listener.local_addr()?);
        let lifecycle = Lifecycle::new("sim-llm");
        let state = Arc::new(state);
        let router = routes::router(Arc::clone(&state));
        serve::serve(&lifecycle, listener, router);
        Ok(LlmSim {
            addr,
            state,
            lifecycle,
        })
    }

    /// The address a client connects to.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:P`: no trailing slash, no path (OpenRouter clients add `/api/v1`,
    /// OpenAI clients and LiteLLM `/v1`).
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues `fault` behind those already queued.
    pub fn inject(&self, fault: Fault) {
        self.state.faults.push(fault);
    }

    /// Drops every queued fault (requests already hanging stay hung until [`Self::stop`]).
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> LlmSimStats {
        self.state.stats.snapshot()
    }

    /// Closes the listener and aborts open connections (hung requests and streams
    /// included); when it returns the port can be bound again.
    pub async fn stop(self) {
        self.lifecycle.shutdown(SHUTDOWN_GRACE).await;
    }
}
