//! The `llm` service: the router behind gRPC `gekko.v1.LlmService`, and the `llm`
//! readiness component.
//!
//! `gekko up` hosts it when `LLM_MODELS` is set. At start it registers the `llm` component
//! (not ready until the first check passes) and re-runs the start-up check every
//! `probe_interval`: a provider that cannot be reached, or whose model list lacks a
//! configured model, keeps `/readyz` failing with that provider's line. The router is
//! provided to the rest of the process ([`gekko_runtime::Started::provide`]).

use std::pin::Pin;

use gekko_config::{GekkoConfig, LlmConfig, LlmTarget};
use gekko_net::CircuitState;
use gekko_proto::v1 as pb;
use gekko_proto::v1::llm_service_server::{LlmService as LlmServiceApi, LlmServiceServer};
use gekko_runtime::{BoxError, Service, ServiceCtx, Started};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::error::LlmError;
use crate::router::{Answer, Failover, LlmRouter};
use crate::types::{ChatMessage, ChatRequest, Completion, StreamEvent};

/// The hosted `llm` service (see the module docs).
#[derive(Debug)]
pub struct LlmLinkService;

impl Service for LlmLinkService {
    const NAME: &'static str = "llm";
    type Settings = LlmConfig;

    fn resolve(cfg: &GekkoConfig) -> Result<LlmConfig, Vec<String>> {
        if cfg.llm.enabled() {
            Ok(cfg.llm.clone())
        } else {
            Err(vec![
                "LLM_MODELS is not set: there is no role to serve".to_owned(),
            ])
        }
    }

    async fn start(settings: LlmConfig, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        crate::metrics::describe();
        let router = LlmRouter::from_config(&settings)?;
        let ready = ctx.readiness().component("llm");
        ready.set_not_ready("checking the LLM providers' model lists");
        let probe = router.clone();
        let cancel = ctx.cancel();
        let every = settings.settings.probe_interval;
        ctx.spawn("llm-probe", async move {
            loop {
                let checks = probe.check().await;
                let bad: Vec<String> = checks
                    .iter()
                    .filter(|c| !c.ok())
                    .map(crate::router::ProviderCheck::summary)
                    .collect();
                if bad.is_empty() {
                    ready.set_ready();
                } else {
                    ready.set_not_ready(bad.join("; "));
                }
                tokio::select! {
                    () = cancel.cancelled() => return Ok::<(), String>(()),
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
        Ok(Started::new()
            .grpc(LlmGrpc::new(router.clone()).into_server())
            .provide(router))
    }
}

/// `gekko.v1.LlmService` over a router.
#[derive(Debug, Clone)]
pub struct LlmGrpc {
    router: LlmRouter,
}

impl LlmGrpc {
    /// Serves `router`.
    #[must_use]
    pub fn new(router: LlmRouter) -> Self {
        Self { router }
    }

    /// The tonic server.
    #[must_use]
    pub fn into_server(self) -> LlmServiceServer<Self> {
        LlmServiceServer::new(self)
    }

    fn request(&self, r: pb::LlmCompleteRequest) -> Result<(String, ChatRequest), Status> {
        let role = if r.role.is_empty() {
            self.router
                .roles()
                .first()
                .map(|r| r.name.clone())
                .ok_or_else(|| Status::failed_precondition("no LLM role is configured"))?
        } else {
            r.role
        };
        if r.messages.is_empty() {
            return Err(Status::invalid_argument(
                "messages: at least one message is needed",
            ));
        }
        let mut messages = Vec::with_capacity(r.messages.len());
        for (i, m) in r.messages.into_iter().enumerate() {
            if !matches!(m.role.as_str(), "system" | "user" | "assistant") {
                return Err(Status::invalid_argument(format!(
                    "messages[{i}].role: `{}` is not system, user or assistant",
                    m.role.chars().take(40).collect::<String>()
                )));
            }
            messages.push(ChatMessage {
                role: m.role,
                content: m.content,
            });
        }
        Ok((
            role,
            ChatRequest {
                messages,
                max_tokens: (r.max_tokens > 0).then_some(r.max_tokens),
                temperature: None,
            },
        ))
    }
}

/// The gRPC status for an LLM error.
#[must_use]
pub fn status_of(e: &LlmError) -> Status {
    let text = e.to_string();
    match e {
        LlmError::UnknownRole(_) => Status::not_found(text),
        LlmError::Invalid(_) => Status::invalid_argument(text),
        LlmError::Status { status: 400, .. } => Status::invalid_argument(text),
        LlmError::Status { status, .. } if (400..500).contains(status) => {
            Status::failed_precondition(text)
        }
        LlmError::MidStream { code, .. } if code.starts_with('4') && code != "429" => {
            Status::failed_precondition(text)
        }
        LlmError::Timeout { .. } => Status::deadline_exceeded(text),
        LlmError::Setup { .. } => Status::internal(text),
        _ => Status::unavailable(text),
    }
}

fn failover_pb(f: &Failover) -> pb::LlmFailover {
    pb::LlmFailover {
        from: f.from.to_string(),
        to: f.to.to_string(),
        reason: f.reason.clone(),
    }
}

fn completion_pb(role: &str, c: &Completion, failover: Option<&Failover>) -> pb::LlmCompletion {
    pb::LlmCompletion {
        role: role.to_owned(),
        provider: c.provider.to_string(),
        model: c.model.clone(),
        id: c.id.clone(),
        content: c.content.clone(),
        finish_reason: c.finish_reason.clone().unwrap_or_default(),
        usage: c.usage.as_ref().map(|u| pb::LlmUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            cost_usd: u.cost.map(|d| d.to_string()).unwrap_or_default(),
        }),
        failover: failover.map(failover_pb),
    }
}

fn target_text(t: Option<&LlmTarget>) -> String {
    t.map(ToString::to_string).unwrap_or_default()
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::LlmStreamEvent, Status>> + Send>>;

#[tonic::async_trait]
impl LlmServiceApi for LlmGrpc {
    async fn list_models(
        &self,
        _request: Request<pb::LlmListModelsRequest>,
    ) -> Result<Response<pb::LlmListModelsResponse>, Status> {
        let roles = self
            .router
            .roles()
            .iter()
            .map(|r| pb::LlmRoleInfo {
                role: r.name.clone(),
                primary: r.primary.to_string(),
                secondary: target_text(r.secondary.as_ref()),
            })
            .collect();
        let mut providers = Vec::new();
        for p in self.router.providers() {
            let Some(client) = self.router.client(p) else {
                continue;
            };
            let configured: Vec<String> = self
                .router
                .roles()
                .iter()
                .flat_map(|r| r.targets())
                .filter(|t| t.provider == p)
                .map(|t| t.model.clone())
                .collect();
            let circuit = match self.router.circuit(p) {
                Some(CircuitState::Closed) | None => "closed",
                Some(CircuitState::HalfOpen) => "half_open",
                Some(CircuitState::Open) => "open",
            };
            let mut entry = pb::LlmProviderModels {
                provider: p.to_string(),
                base_url: client.base_url().to_owned(),
                circuit: circuit.to_owned(),
                ..Default::default()
            };
            match client.models().await {
                Ok(models) => {
                    entry.reachable = true;
                    entry.missing = configured
                        .iter()
                        .filter(|m| !models.iter().any(|e| &e.id == *m))
                        .cloned()
                        .collect();
                    entry.models = models
                        .into_iter()
                        .map(|m| pb::LlmModel {
                            configured: configured.contains(&m.id),
                            id: m.id,
                            name: m.name.unwrap_or_default(),
                            context_length: m.context_length.unwrap_or(0),
                            prompt_price: m.prompt_price.map(|d| d.to_string()).unwrap_or_default(),
                            completion_price: m
                                .completion_price
                                .map(|d| d.to_string())
                                .unwrap_or_default(),
                        })
                        .collect();
                }
                Err(e) => entry.error = e.to_string(),
            }
            providers.push(entry);
        }
        Ok(Response::new(pb::LlmListModelsResponse {
            roles,
            providers,
        }))
    }

    async fn complete(
        &self,
        request: Request<pb::LlmCompleteRequest>,
    ) -> Result<Response<pb::LlmCompletion>, Status> {
        let (role, req) = self.request(request.into_inner())?;
        let Answer {
            completion,
            failover,
        } = self
            .router
            .complete(&role, &req)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(completion_pb(
            &role,
            &completion,
            failover.as_ref(),
        )))
    }

    type CompleteStreamStream = EventStream;

    async fn complete_stream(
        &self,
        request: Request<pb::LlmCompleteRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let (role, req) = self.request(request.into_inner())?;
        let mut stream = self
            .router
            .complete_stream(&role, &req)
            .await
            .map_err(|e| status_of(&e))?;
        // A small channel: the pump waits on a slow client instead of buffering the
        // whole answer. The pump is a plain task, not on the service's tracker: it is
        // bounded by `total_timeout` and stops as soon as the client goes away (the send
        // fails), so the drain never waits on a request that nobody reads.
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let failover = stream.failover().cloned();
            while let Some(item) = stream.next().await {
                let msg = match item {
                    Ok(StreamEvent::Content(delta)) => Ok(pb::LlmStreamEvent { delta, done: None }),
                    Ok(StreamEvent::Done(c)) => Ok(pb::LlmStreamEvent {
                        delta: String::new(),
                        done: Some(completion_pb(&role, &c, failover.as_ref())),
                    }),
                    Err(e) => Err(status_of(&e)),
                };
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
