//! A gRPC server builder that every gekko service uses, so every server looks the same
//! from outside.
//!
//! Whatever services a binary adds, [`GrpcServer::serve`] also adds:
//!
//! - `grpc.health.v1.Health`, driven by the [`Readiness`] latch: the overall service `""`
//!   and every added service report `SERVING` exactly when the process is ready, so a
//!   gRPC-aware load balancer and `/readyz` agree.
//! - Server reflection, both `grpc.reflection.v1` (grpcurl ≥ 1.8.8) and `v1alpha` (older
//!   grpcurl, Postman, evans), built from gekko's descriptor set plus the health and
//!   reflection protos and any set registered with [`GrpcServer::with_descriptor_set`].
//!
//! Access control wraps the whole server: [`GrpcServer::serve`] puts the
//! [`AuthLayer`] (from [`GrpcServer::with_auth`], else [`AuthLayer::default`], which still
//! refuses methods missing from the access table) around the router, health and reflection
//! included, so no service can be added without it. With [`GrpcServer::with_tls`] the
//! listener speaks TLS (and requires client certificates when the material says so).
//!
//! Shutdown is graceful: when the token is cancelled the listener stops accepting, health
//! turns `NOT_SERVING`, open health `Watch` streams are ended (they would otherwise hold
//! the graceful shutdown open forever), and in-flight calls finish. Bound the wait with
//! [`crate::Shutdown::drain`].

use std::convert::Infallible;
use std::fmt;

use gekko_security::{AuthLayer, ServerTls};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::Request;
use tonic::server::NamedService;
use tonic::service::{Routes, RoutesBuilder};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::RuntimeError;
use crate::health::Readiness;

/// Builds and runs a tonic server with health and reflection always on.
pub struct GrpcServer {
    readiness: Readiness,
    routes: RoutesBuilder,
    service_names: Vec<&'static str>,
    descriptor_sets: Vec<&'static [u8]>,
    auth: AuthLayer,
    tls: Option<tonic::transport::ServerTlsConfig>,
}

impl GrpcServer {
    /// A server whose health follows `readiness`, with no application services yet.
    #[must_use]
    pub fn new(readiness: Readiness) -> Self {
        Self {
            readiness,
            routes: Routes::builder(),
            service_names: Vec::new(),
            descriptor_sets: vec![gekko_proto::FILE_DESCRIPTOR_SET],
            auth: AuthLayer::default(),
            tls: None,
        }
    }

    /// Enforces `auth` on every call (see the module docs).
    #[must_use]
    pub fn with_auth(mut self, auth: AuthLayer) -> Self {
        self.auth = auth;
        self
    }

    /// Serves TLS (mTLS when `tls` has a client CA).
    #[must_use]
    pub fn with_tls(mut self, tls: &ServerTls) -> Self {
        self.tls = Some(tls.tonic_config());
        self
    }

    /// Adds a tonic service (a generated `…Server<T>`, possibly wrapped in an
    /// interceptor). Its name also gets a health status that follows readiness.
    #[must_use]
    pub fn add_service<S>(mut self, svc: S) -> Self
    where
        S: Service<Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.routes.add_service(svc);
        self.service_names.push(S::NAME);
        self
    }

    /// Registers another encoded `FileDescriptorSet` for reflection, for services whose
    /// protos are not in `gekko_proto::FILE_DESCRIPTOR_SET`. Files already registered are
    /// skipped, so overlapping sets are fine.
    #[must_use]
    pub fn with_descriptor_set(mut self, encoded: &'static [u8]) -> Self {
        self.descriptor_sets.push(encoded);
        self
    }

    /// Serves on `listener` until `shutdown` is cancelled, then shuts down gracefully.
    ///
    /// # Errors
    ///
    /// - [`RuntimeError::Reflection`] if a registered descriptor set does not decode;
    ///   nothing is served then.
    /// - [`RuntimeError::Grpc`] if the transport fails while serving.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), RuntimeError> {
        let Self {
            readiness,
            mut routes,
            service_names,
            descriptor_sets,
            auth,
            tls,
        } = self;

        let (reporter, health_service) = tonic_health::server::health_reporter();
        let mut health = HealthSync {
            reporter,
            service_names,
        };
        // Subscribed before the first publish: a flip between reading the state and
        // subscribing would otherwise be marked seen and never published, leaving health
        // NOT_SERVING for a ready process (the host flips `startup` right after spawning
        // this server). Set before the first connection is accepted, so no client sees
        // the reporter's default of SERVING for a process that is not ready.
        let mut ready_rx = readiness.subscribe();
        let ready = *ready_rx.borrow_and_update();
        health.publish(ready).await;

        routes.add_service(health_service);
        routes.add_service(
            reflection_builder(&descriptor_sets)
                .build_v1()
                .map_err(RuntimeError::Reflection)?,
        );
        routes.add_service(
            reflection_builder(&descriptor_sets)
                .build_v1alpha()
                .map_err(RuntimeError::Reflection)?,
        );

        if let Ok(addr) = listener.local_addr() {
            tracing::info!(
                %addr,
                services = ?health.service_names,
                tls = tls.is_some(),
                auth = auth.policy().auth_enabled(),
                "serving gRPC"
            );
        }
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls).map_err(RuntimeError::Grpc)?;
        }
        let server = builder
            .layer(auth)
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                shutdown.clone().cancelled_owned(),
            );
        tokio::pin!(server);

        // The health sync runs inside this future rather than as a spawned task: it lives
        // exactly as long as the server, and nothing is left behind to track or abort.
        let sync = async {
            loop {
                tokio::select! {
                    changed = ready_rx.changed() => {
                        if changed.is_err() {
                            // Cannot happen while `readiness` is alive here; stop syncing.
                            break;
                        }
                        let ready = *ready_rx.borrow_and_update();
                        health.publish(ready).await;
                    }
                    () = shutdown.cancelled() => break,
                }
            }
        };

        tokio::select! {
            result = &mut server => return result.map_err(RuntimeError::Grpc),
            () = sync => {}
        }
        if shutdown.is_cancelled() {
            health.close().await;
        }
        server.await.map_err(RuntimeError::Grpc)
    }
}

impl fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcServer")
            .field("services", &self.service_names)
            .field("descriptor_sets", &self.descriptor_sets.len())
            .field("auth", self.auth.policy())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// A reflection builder over every registered set plus the health protos.
///
/// Both reflection protos are registered for both versions, so either endpoint lists both
/// reflection services; the builder skips files it has already seen.
fn reflection_builder(sets: &[&'static [u8]]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    sets.iter().fold(builder, |b, set| {
        b.register_encoded_file_descriptor_set(set)
    })
}

/// Mirrors overall readiness into the health reporter.
struct HealthSync {
    reporter: HealthReporter,
    service_names: Vec<&'static str>,
}

impl HealthSync {
    /// Sets `""` and every added service to `SERVING` or `NOT_SERVING`.
    async fn publish(&self, ready: bool) {
        let status = if ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
        for name in &self.service_names {
            self.reporter.set_service_status(name, status).await;
        }
        tracing::debug!(?status, "gRPC health updated");
    }

    /// Reports `NOT_SERVING`, then removes every status. Removing drops the reporter's
    /// senders, which ends open `Watch` streams after they deliver `NOT_SERVING`; otherwise
    /// they would keep their connections, and so the graceful shutdown, open forever.
    async fn close(&mut self) {
        self.publish(false).await;
        self.reporter.clear_service_status("").await;
        for name in &self.service_names {
            self.reporter.clear_service_status(name).await;
        }
    }
}
