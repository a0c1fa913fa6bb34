//! The simulator's shared state: configuration checked once at start, the fault queue,
//! the counters and the key's running usage.
//!
//! Each part has the cheapest synchronisation that keeps it correct: counters are relaxed
//! atomics (independent, only read as a snapshot), the fault queue and the usage total are
//! tiny mutexes held for a few instructions and never across an `.await`.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;

use super::{Fault, LlmSimConfig, LlmSimStats};

/// A served model with its prices parsed.
#[derive(Debug)]
pub(crate) struct ModelEntry {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) context_length: u32,
    /// The configured strings, served as they are.
    pub(crate) prompt_price_text: String,
    pub(crate) completion_price_text: String,
    pub(crate) prompt_price: Decimal,
    pub(crate) completion_price: Decimal,
}

impl ModelEntry {
    /// The vendor part of the id (`openai` for `openai/gpt-4o-mini`).
    pub(crate) fn vendor(&self) -> &str {
        self.id.split_once('/').map_or("", |(v, _)| v)
    }

    /// The id without its vendor prefix (`gpt-4o-mini`).
    pub(crate) fn short_id(&self) -> &str {
        self.id.split_once('/').map_or(self.id.as_str(), |(_, m)| m)
    }

    /// The provider OpenRouter names in its answers.
    pub(crate) fn provider(&self) -> String {
        match self.vendor() {
            "openai" => "OpenAI".to_owned(),
            "anthropic" => "Anthropic".to_owned(),
            "meta-llama" => "Meta".to_owned(),
            "google" => "Google".to_owned(),
            "mistralai" => "Mistral".to_owned(),
            "" => "Sim".to_owned(),
            other => other.to_owned(),
        }
    }

    pub(crate) fn is_free(&self) -> bool {
        self.id.ends_with(":free")
    }
}

/// A fault as one request is served by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    Status {
        code: u16,
        retry_after_s: Option<u32>,
    },
    MidStreamError {
        code: u16,
        after_chunks: u32,
    },
    SlowStream {
        delay: Duration,
    },
    Hang,
}

/// The ordered fault queue.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue(Mutex<VecDeque<Fault>>);

impl FaultQueue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Fault>> {
        // A panic while holding this lock leaves a queue that is still consistent (every
        // change is one push, pop or decrement), so a poisoned lock is used as it is.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, fault: Fault) {
        let count = match &fault {
            Fault::Status { count, .. }
            | Fault::MidStreamError { count, .. }
            | Fault::SlowStream { count, .. }
            | Fault::Hang { count } => *count,
        };
        if count > 0 {
            self.lock().push_back(fault);
        }
    }

    pub(crate) fn clear(&self) {
        self.lock().clear();
    }

    /// Takes one use of the first queued fault that applies to a chat request
    /// (`stream`: whether it asked for a stream).
    pub(crate) fn take(&self, stream: bool) -> Option<Served> {
        let mut q = self.lock();
        let idx = q.iter().position(|f| match f {
            Fault::Status { .. } | Fault::Hang { .. } => true,
            Fault::MidStreamError { .. } | Fault::SlowStream { .. } => stream,
        })?;
        let (served, left) = match q.get_mut(idx)? {
            Fault::Status {
                code,
                retry_after_s,
                count,
            } => {
                *count = count.saturating_sub(1);
                (
                    Served::Status {
                        code: *code,
                        retry_after_s: *retry_after_s,
                    },
                    *count,
                )
            }
            Fault::MidStreamError {
                code,
                after_chunks,
                count,
            } => {
                *count = count.saturating_sub(1);
                (
                    Served::MidStreamError {
                        code: *code,
                        after_chunks: *after_chunks,
                    },
                    *count,
                )
            }
            Fault::SlowStream { delay, count } => {
                *count = count.saturating_sub(1);
                (Served::SlowStream { delay: *delay }, *count)
            }
            Fault::Hang { count } => {
                *count = count.saturating_sub(1);
                (Served::Hang, *count)
            }
        };
        if left == 0 {
            q.remove(idx);
        }
        Some(served)
    }
}

/// The counters behind [`LlmSimStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) models_requests: AtomicU64,
    pub(crate) key_requests: AtomicU64,
    pub(crate) chat_requests: AtomicU64,
    pub(crate) stream_requests: AtomicU64,
    pub(crate) auth_failures: AtomicU64,
    pub(crate) faults_served: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> LlmSimStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LlmSimStats {
            models_requests: get(&self.models_requests),
            key_requests: get(&self.key_requests),
            chat_requests: get(&self.chat_requests),
            stream_requests: get(&self.stream_requests),
            auth_failures: get(&self.auth_failures),
            faults_served: get(&self.faults_served),
        }
    }
}

/// What `GET /api/v1/generation` reports about one answer.
#[derive(Debug, Clone)]
pub(crate) struct Generation {
    pub(crate) id: String,
    pub(crate) model: String,
    pub(crate) provider: String,
    /// Nanoseconds since the Unix epoch.
    pub(crate) created_ns: i128,
    pub(crate) streamed: bool,
    pub(crate) finish_reason: &'static str,
    pub(crate) tokens_prompt: u64,
    pub(crate) tokens_completion: u64,
    pub(crate) cost: Decimal,
}

/// How many generations the simulator remembers (the oldest are forgotten first).
const GENERATIONS_KEPT: usize = 1024;

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct LlmState {
    keys: Vec<String>,
    pub(crate) models: Vec<ModelEntry>,
    pub(crate) keepalive_every: Duration,
    pub(crate) faults: FaultQueue,
    pub(crate) stats: Counters,
    /// USD spent through the simulator since start (the key's `usage`).
    usage: Mutex<Decimal>,
    /// Requests to `:free` models since start (`free_model_daily_requests.used`).
    pub(crate) free_requests: AtomicU64,
    gen_seq: AtomicU64,
    /// The latest generations, oldest first.
    generations: Mutex<VecDeque<Generation>>,
}

impl LlmState {
    /// Checks the configuration; the error names the first problem found.
    pub(crate) fn new(cfg: &LlmSimConfig) -> Result<Self, String> {
        let mut problems = Vec::new();
        if cfg.api_keys.is_empty() {
            problems.push("api_keys is empty: no request could authenticate".to_owned());
        }
        if cfg.api_keys.iter().any(String::is_empty) {
            problems.push("api_keys holds an empty key".to_owned());
        }
        if cfg.keepalive_every.is_zero() {
            problems.push("keepalive_every must be above zero".to_owned());
        }
        let mut models = Vec::with_capacity(cfg.models.len());
        for m in &cfg.models {
            if m.id.trim().is_empty() {
                problems.push("a model has an empty id".to_owned());
                continue;
            }
            if models.iter().any(|e: &ModelEntry| e.id == m.id) {
                problems.push(format!("model {} is listed twice", m.id));
                continue;
            }
            let price = |what: &str, s: &str| match Decimal::from_str(s) {
                Ok(d) if d >= Decimal::ZERO => Ok(d),
                Ok(_) => Err(format!("model {}: {what} price {s:?} is negative", m.id)),
                Err(e) => Err(format!(
                    "model {}: {what} price {s:?} is not a decimal ({e})",
                    m.id
                )),
            };
            match (
                price("prompt", &m.prompt_price),
                price("completion", &m.completion_price),
            ) {
                (Ok(prompt_price), Ok(completion_price)) => models.push(ModelEntry {
                    id: m.id.clone(),
                    name: m.name.clone(),
                    context_length: m.context_length,
                    prompt_price_text: m.prompt_price.clone(),
                    completion_price_text: m.completion_price.clone(),
                    prompt_price,
                    completion_price,
                }),
                (a, b) => problems.extend(a.err().into_iter().chain(b.err())),
            }
        }
        if !problems.is_empty() {
            return Err(format!(
                "invalid LLM simulator config: {}",
                problems.join("; ")
            ));
        }
        Ok(Self {
            keys: cfg.api_keys.clone(),
            models,
            keepalive_every: cfg.keepalive_every,
            faults: FaultQueue::default(),
            stats: Counters::default(),
            usage: Mutex::new(Decimal::ZERO),
            free_requests: AtomicU64::new(0),
            gen_seq: AtomicU64::new(0),
            generations: Mutex::new(VecDeque::new()),
        })
    }

    /// The accepted key equal to `presented`, if any.
    pub(crate) fn key(&self, presented: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|k| k.as_str() == presented)
            .map(String::as_str)
    }

    /// The model `requested` names: its exact id, or (`allow_short`, the OpenAI path) its
    /// id without the vendor prefix when exactly one model has it.
    pub(crate) fn model(&self, requested: &str, allow_short: bool) -> Option<&ModelEntry> {
        if let Some(m) = self.models.iter().find(|m| m.id == requested) {
            return Some(m);
        }
        if !allow_short {
            return None;
        }
        let mut it = self.models.iter().filter(|m| m.short_id() == requested);
        match (it.next(), it.next()) {
            (Some(m), None) => Some(m),
            _ => None,
        }
    }

    pub(crate) fn add_usage(&self, cost: Decimal) {
        let mut u = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        *u += cost;
    }

    pub(crate) fn usage(&self) -> Decimal {
        *self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn record(&self, generation: Generation) {
        let mut g = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if g.len() == GENERATIONS_KEPT {
            g.pop_front();
        }
        g.push_back(generation);
    }

    pub(crate) fn generation(&self, id: &str) -> Option<Generation> {
        let g = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        g.iter().rev().find(|x| x.id == id).cloned()
    }

    /// A fresh generation id, `gen-<unix seconds>-<sequence>`: unique within a run and
    /// across restarts in different seconds.
    pub(crate) fn generation_id(&self) -> String {
        let seq = self.gen_seq.fetch_add(1, Ordering::Relaxed) + 1;
        format!("gen-{}-{seq:08}", unix_now())
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    u64::try_from(unix_now_ns() / 1_000_000_000).unwrap_or(0)
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_in_order_and_streaming_ones_wait_for_a_stream() {
        let q = FaultQueue::default();
        q.push(Fault::MidStreamError {
            code: 502,
            after_chunks: 1,
            count: 1,
        });
        q.push(Fault::Status {
            code: 429,
            retry_after_s: Some(1),
            count: 2,
        });
        q.push(Fault::Hang { count: 0 });
        let status = Some(Served::Status {
            code: 429,
            retry_after_s: Some(1),
        });
        assert_eq!(q.take(false), status);
        assert_eq!(
            q.take(true),
            Some(Served::MidStreamError {
                code: 502,
                after_chunks: 1
            })
        );
        assert_eq!(q.take(true), status);
        assert_eq!(q.take(true), None, "a zero-count fault is never queued");
    }

    #[test]
    fn config_problems_are_named() {
        let mut cfg = LlmSimConfig::default();
        cfg.models[0].prompt_price = "cheap".into();
        cfg.models[1].completion_price = "-1".into();
        cfg.api_keys.clear();
        let err = LlmState::new(&cfg).expect_err("invalid");
        assert!(
            err.contains("openai/gpt-4o-mini: prompt price \"cheap\""),
            "{err}"
        );
        assert!(
            err.contains("anthropic/claude-3.5-haiku: completion price \"-1\" is negative"),
            "{err}"
        );
        assert!(err.contains("api_keys is empty"), "{err}");
    }

    #[test]
    fn short_model_names_resolve_only_when_unique_and_allowed() {
        let s = LlmState::new(&LlmSimConfig::default()).expect("valid");
        assert!(s.model("gpt-4o-mini", true).is_some());
        assert!(s.model("gpt-4o-mini", false).is_none());
        assert!(s.model("openai/gpt-4o-mini", false).is_some());
        assert!(s.model("gpt-5", true).is_none());
    }
}
