//! Per-role routing with failover and a circuit breaker per provider.
//!
//! A role has a primary target and an optional secondary (`LLM_MODELS`). A call tries the
//! primary and moves to the secondary when the primary
//!
//! - answers 429: the provider is then skipped until its `Retry-After` (or, without it,
//!   OpenRouter's `X-RateLimit-Reset`) has passed: its breaker is held open for exactly
//!   that long, then lets one probe through; a 429 with neither counts as an ordinary
//!   failure;
//! - answers 408 or 5xx, times out, cannot be reached, or sends something unreadable
//!   (each a breaker failure; 5xx and connection errors may first be retried on the same
//!   provider `max_retries` times);
//! - is skipped because its circuit is open.
//!
//! 400, 401, 402, 403 and other 4xx are **not** failed over: the provider is healthy and
//! refused this request (a malformed request, a wrong key, no credits), and sending it
//! elsewhere would hide the problem or spend twice. They come back as
//! [`LlmError::Status`] naming provider, code and message, and count as a breaker success.
//!
//! Streams fail over only before their first content token: [`LlmRouter::complete_stream`]
//! returns once content (or the end) has arrived from some provider, so everything the
//! caller sees comes from one provider. An error after that is the stream's last item,
//! with the partial content kept, and is never retried elsewhere (no silent duplication).
//!
//! The breaker is `gekko_net`'s [`CircuitBreaker`] (consecutive failures open it for
//! `breaker_cooldown`, then one probe; `force_open_until` for `Retry-After`). When the
//! primary's probe succeeds, its circuit closes and the role's traffic returns to it.
//!
//! Concurrency: the router is an `Arc` over immutable clients and the breakers' own
//! short-held mutexes; calls run concurrently and never hold a lock across an `.await`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use gekko_config::{LlmConfig, LlmProvider, LlmRole, LlmSettings, LlmTarget};
use gekko_net::{BreakerPermit, CircuitBreaker, CircuitState};
use tokio::time::Instant;

use crate::error::{Disposition, LlmError};
use crate::http::ChatStream;
use crate::litellm::LiteLlmClient;
use crate::metrics;
use crate::openrouter::OpenRouterClient;
use crate::types::{ChatRequest, Completion, ModelEntry, StreamEvent};

/// The `family` label of the breakers' `gekko_venue_circuit_state` gauge.
const BREAKER_FAMILY: &str = "llm";

/// A client for one provider.
#[derive(Debug, Clone)]
pub enum ProviderClient {
    /// OpenRouter.
    OpenRouter(OpenRouterClient),
    /// A LiteLLM proxy.
    LiteLlm(LiteLlmClient),
}

impl ProviderClient {
    /// Which provider.
    #[must_use]
    pub fn provider(&self) -> LlmProvider {
        match self {
            Self::OpenRouter(_) => LlmProvider::OpenRouter,
            Self::LiteLlm(_) => LlmProvider::LiteLlm,
        }
    }

    /// Its base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        match self {
            Self::OpenRouter(c) => c.base_url(),
            Self::LiteLlm(c) => c.base_url(),
        }
    }

    /// Its model list.
    ///
    /// # Errors
    /// As the client's `models`.
    pub async fn models(&self) -> Result<Vec<ModelEntry>, LlmError> {
        match self {
            Self::OpenRouter(c) => c.models().await,
            Self::LiteLlm(c) => c.models().await,
        }
    }

    /// One chat completion.
    ///
    /// # Errors
    /// As the client's `chat`.
    pub async fn chat(&self, model: &str, req: &ChatRequest) -> Result<Completion, LlmError> {
        match self {
            Self::OpenRouter(c) => c.chat(model, req).await,
            Self::LiteLlm(c) => c.chat(model, req).await,
        }
    }

    /// One streamed chat completion.
    ///
    /// # Errors
    /// As the client's `chat_stream`.
    pub async fn chat_stream(
        &self,
        model: &str,
        req: &ChatRequest,
    ) -> Result<ChatStream, LlmError> {
        match self {
            Self::OpenRouter(c) => c.chat_stream(model, req).await,
            Self::LiteLlm(c) => c.chat_stream(model, req).await,
        }
    }
}

#[derive(Debug)]
struct Slot {
    client: ProviderClient,
    breaker: CircuitBreaker,
}

#[derive(Debug)]
struct Inner {
    roles: Vec<LlmRole>,
    slots: BTreeMap<LlmProvider, Slot>,
    settings: LlmSettings,
}

/// A role moved from one target to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    /// The target that failed or was skipped.
    pub from: LlmTarget,
    /// The target that was tried next.
    pub to: LlmTarget,
    /// Why (the error's text).
    pub reason: String,
}

/// A completion and how it was routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The completion.
    pub completion: Completion,
    /// Set when the primary was not the one that answered.
    pub failover: Option<Failover>,
}

/// The start-up check of one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCheck {
    /// The provider.
    pub provider: LlmProvider,
    /// Where it was asked.
    pub base_url: String,
    /// How many models it lists, or why it could not be asked (unreachable, key refused).
    pub listed: Result<usize, String>,
    /// Configured models its list lacks.
    pub missing: Vec<String>,
    /// The configured models at this provider.
    pub configured: Vec<String>,
}

impl ProviderCheck {
    /// Reachable, and every configured model is listed.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.listed.is_ok() && self.missing.is_empty()
    }

    /// One line for `gekko check` and `/readyz`.
    #[must_use]
    pub fn summary(&self) -> String {
        match &self.listed {
            Err(e) => format!("{} at {}: not reachable: {e}", self.provider, self.base_url),
            Ok(n) if self.missing.is_empty() => format!(
                "{} at {}: {n} models listed, configured {} present",
                self.provider,
                self.base_url,
                self.configured.join(", ")
            ),
            Ok(n) => format!(
                "{} at {}: {n} models listed, but configured model{} {} missing from its model list",
                self.provider,
                self.base_url,
                if self.missing.len() == 1 { "" } else { "s" },
                self.missing.join(", ")
            ),
        }
    }
}

/// Routes each role's calls to its primary or secondary. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LlmRouter {
    inner: Arc<Inner>,
}

/// What to do after one failed attempt.
enum Next {
    Report(LlmError),
    Retry(LlmError),
    FailOver(LlmError),
}

impl LlmRouter {
    /// A router with a client and a breaker for every provider some role uses.
    ///
    /// # Errors
    /// [`LlmError::Setup`] when a client cannot be built.
    pub fn from_config(cfg: &LlmConfig) -> Result<Self, LlmError> {
        let settings = cfg.settings.clone();
        let mut slots = BTreeMap::new();
        for provider in cfg.providers_in_use() {
            let client = match provider {
                LlmProvider::OpenRouter => {
                    ProviderClient::OpenRouter(OpenRouterClient::new(&cfg.openrouter, &settings)?)
                }
                LlmProvider::LiteLlm => {
                    ProviderClient::LiteLlm(LiteLlmClient::new(&cfg.litellm, &settings)?)
                }
            };
            let breaker = CircuitBreaker::new(
                provider.as_str(),
                BREAKER_FAMILY,
                settings.breaker_threshold,
                settings.breaker_cooldown,
            );
            slots.insert(provider, Slot { client, breaker });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                roles: cfg.roles.clone(),
                slots,
                settings,
            }),
        })
    }

    /// The configured roles.
    #[must_use]
    pub fn roles(&self) -> &[LlmRole] {
        &self.inner.roles
    }

    /// The client of `provider`, if a role uses it.
    #[must_use]
    pub fn client(&self, provider: LlmProvider) -> Option<&ProviderClient> {
        self.inner.slots.get(&provider).map(|s| &s.client)
    }

    /// The providers in use.
    #[must_use]
    pub fn providers(&self) -> Vec<LlmProvider> {
        self.inner.slots.keys().copied().collect()
    }

    /// The circuit state of `provider`.
    #[must_use]
    pub fn circuit(&self, provider: LlmProvider) -> Option<CircuitState> {
        self.inner.slots.get(&provider).map(|s| s.breaker.state())
    }

    fn role(&self, name: &str) -> Result<&LlmRole, LlmError> {
        self.inner
            .roles
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| LlmError::UnknownRole(name.to_owned()))
    }

    fn slot(&self, p: LlmProvider) -> Result<&Slot, LlmError> {
        // `from_config` made a slot for every provider a role names; the error is for a
        // router whose roles and slots disagree, which cannot be built today.
        self.inner.slots.get(&p).ok_or(LlmError::Setup {
            provider: p,
            message: "no client for this provider".to_owned(),
        })
    }

    fn publish_up(slot: &Slot, answered: bool) {
        metrics::provider_up(
            slot.client.provider(),
            answered && slot.breaker.state() == CircuitState::Closed,
        );
    }

    /// Decides what a failure means; reports it to the breaker through `permit`.
    fn after_failure(
        &self,
        slot: &Slot,
        permit: BreakerPermit<'_>,
        e: LlmError,
        attempt: u32,
    ) -> Next {
        let provider = slot.client.provider();
        metrics::error(provider, &e);
        let next = match e.disposition() {
            Disposition::Report => {
                permit.success();
                Next::Report(e)
            }
            Disposition::RateLimited(Some(wait)) => {
                // Skipped until Retry-After, then one probe (the breaker's half-open).
                slot.breaker.force_open_until(Instant::now() + wait);
                drop(permit);
                Next::FailOver(e)
            }
            Disposition::RateLimited(None) => {
                permit.failure();
                Next::FailOver(e)
            }
            Disposition::FailOver { retry_same } => {
                permit.failure();
                if retry_same && attempt < self.inner.settings.max_retries {
                    Next::Retry(e)
                } else {
                    Next::FailOver(e)
                }
            }
        };
        tracing::warn!(provider = %provider, error = %match &next {
            Next::Report(e) | Next::Retry(e) | Next::FailOver(e) => e,
        }, "llm call failed");
        Self::publish_up(slot, matches!(next, Next::Report(_)));
        next
    }

    fn note_failover(role: &LlmRole, from: &LlmTarget, to: &LlmTarget, why: &LlmError) -> Failover {
        metrics::failover(&role.name, from.provider, to.provider);
        tracing::info!(role = %role.name, from = %from, to = %to, reason = %why, "llm failover");
        Failover {
            from: from.clone(),
            to: to.clone(),
            reason: why.to_string(),
        }
    }

    /// One completion for `role`, failing over as the module docs describe.
    ///
    /// # Errors
    /// [`LlmError::UnknownRole`]; a reported [`LlmError::Status`] (400/401/402/...) from the
    /// provider that refused; [`LlmError::Exhausted`] with every attempt when all failed.
    pub async fn complete(&self, role: &str, req: &ChatRequest) -> Result<Answer, LlmError> {
        let (completion, failover, started) = self
            .route(role, |client, model| client.chat(model, req))
            .await?;
        metrics::success(&completion, started.elapsed());
        Ok(Answer {
            completion,
            failover,
        })
    }

    /// A streamed completion for `role`. Returns once the first content (or the end) has
    /// arrived from some provider; failover happens only before that point.
    ///
    /// # Errors
    /// As [`LlmRouter::complete`].
    pub async fn complete_stream(
        &self,
        role: &str,
        req: &ChatRequest,
    ) -> Result<RoutedStream, LlmError> {
        let ((stream, buffered), failover, started) = self
            .route(role, |client, model| open_until_content(client, model, req))
            .await?;
        Ok(RoutedStream {
            stream,
            buffered,
            failover,
            started,
            ended: false,
        })
    }

    /// The failover loop both kinds of completion share: `role`'s targets in order, each
    /// behind its provider's breaker, retried or failed over as [`Self::after_failure`]
    /// decides. Returns the first success, the failover that led to it, and when its
    /// attempt started.
    async fn route<'a, T, F, Fut>(
        &'a self,
        role: &str,
        mut call: F,
    ) -> Result<(T, Option<Failover>, Instant), LlmError>
    where
        F: FnMut(&'a ProviderClient, &'a str) -> Fut,
        Fut: Future<Output = Result<T, LlmError>>,
    {
        let role = self.role(role)?;
        let mut attempts: Vec<LlmError> = Vec::new();
        let mut failover: Option<Failover> = None;
        let mut prev: Option<&LlmTarget> = None;
        for target in role.targets() {
            if let (Some(from), Some(why)) = (prev, attempts.last()) {
                failover = Some(Self::note_failover(role, from, target, why));
            }
            prev = Some(target);
            let slot = self.slot(target.provider)?;
            let mut attempt = 0;
            loop {
                let permit = match slot.breaker.try_acquire() {
                    Ok(p) => p,
                    Err(open) => {
                        attempts.push(LlmError::CircuitOpen {
                            provider: target.provider,
                            retry_after: open.retry_after,
                        });
                        break;
                    }
                };
                let started = Instant::now();
                match call(&slot.client, &target.model).await {
                    Ok(value) => {
                        permit.success();
                        Self::publish_up(slot, true);
                        return Ok((value, failover, started));
                    }
                    Err(e) => match self.after_failure(slot, permit, e, attempt) {
                        Next::Report(e) => return Err(e),
                        Next::Retry(_) => {
                            attempt += 1;
                            tokio::time::sleep(retry_pause(attempt)).await;
                        }
                        Next::FailOver(e) => {
                            attempts.push(e);
                            break;
                        }
                    },
                }
            }
        }
        Err(LlmError::Exhausted {
            role: role.name.clone(),
            attempts,
        })
    }

    /// The start-up check: asks every provider in use for its model list (OpenRouter's
    /// key too) and names the configured models it lacks.
    pub async fn check(&self) -> Vec<ProviderCheck> {
        let mut out = Vec::new();
        for (provider, slot) in &self.inner.slots {
            let configured: Vec<String> = {
                let mut v: Vec<String> = Vec::new();
                for t in self.inner.roles.iter().flat_map(LlmRole::targets) {
                    if t.provider == *provider && !v.contains(&t.model) {
                        v.push(t.model.clone());
                    }
                }
                v
            };
            let listed = match &slot.client {
                ProviderClient::OpenRouter(c) => match c.models().await {
                    Ok(models) => match c.key_info().await {
                        Ok(_) => Ok(models),
                        Err(e) => Err(format!("key refused: {e}")),
                    },
                    Err(e) => Err(e.to_string()),
                },
                ProviderClient::LiteLlm(c) => c.models().await.map_err(|e| e.to_string()),
            };
            let (listed, missing) = match listed {
                Ok(models) => {
                    let missing = configured
                        .iter()
                        .filter(|m| !models.iter().any(|e| &e.id == *m))
                        .cloned()
                        .collect();
                    (Ok(models.len()), missing)
                }
                Err(e) => (Err(e), Vec::new()),
            };
            Self::publish_up(slot, listed.is_ok());
            out.push(ProviderCheck {
                provider: *provider,
                base_url: slot.client.base_url().to_owned(),
                listed,
                missing,
                configured,
            });
        }
        out
    }
}

fn retry_pause(attempt: u32) -> Duration {
    Duration::from_millis(100 * u64::from(attempt.min(10)))
}

/// Opens a stream and reads until its first content or its end, so a failure before any
/// content can still fail over.
async fn open_until_content(
    client: &ProviderClient,
    model: &str,
    req: &ChatRequest,
) -> Result<(ChatStream, VecDeque<StreamEvent>), LlmError> {
    let mut stream = client.chat_stream(model, req).await?;
    let mut buffered = VecDeque::new();
    match stream.next().await {
        Some(Ok(ev)) => buffered.push_back(ev),
        Some(Err(e)) => return Err(e),
        None => {
            return Err(LlmError::Decode {
                provider: client.provider(),
                message: "the stream ended with no event".to_owned(),
            });
        }
    }
    Ok((stream, buffered))
}

/// A stream committed to one provider (see [`LlmRouter::complete_stream`]).
#[derive(Debug)]
pub struct RoutedStream {
    stream: ChatStream,
    buffered: VecDeque<StreamEvent>,
    failover: Option<Failover>,
    started: Instant,
    ended: bool,
}

impl RoutedStream {
    /// The provider streaming.
    #[must_use]
    pub fn provider(&self) -> LlmProvider {
        self.stream.provider()
    }

    /// Set when the primary was not the one that answered.
    #[must_use]
    pub fn failover(&self) -> Option<&Failover> {
        self.failover.as_ref()
    }

    /// Keep-alive comments seen so far.
    #[must_use]
    pub fn keepalives(&self) -> u64 {
        self.stream.keepalives()
    }

    /// The next content piece, the final completion, or the error that ended the stream
    /// (with the partial content in it); `None` after either.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, LlmError>> {
        if self.ended {
            return None;
        }
        let item = match self.buffered.pop_front() {
            Some(ev) => Some(Ok(ev)),
            None => self.stream.next().await,
        };
        match &item {
            Some(Ok(StreamEvent::Done(c))) => {
                self.ended = true;
                metrics::success(c, self.started.elapsed());
            }
            Some(Err(e)) => {
                self.ended = true;
                metrics::error(self.stream.provider(), e);
            }
            Some(Ok(StreamEvent::Content(_))) => {}
            None => self.ended = true,
        }
        item
    }
}
