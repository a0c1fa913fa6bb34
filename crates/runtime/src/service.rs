//! What a service is, as far as the [host](crate::host) is concerned.
//!
//! Every gekko process does the same plumbing (config, telemetry, listeners, readiness,
//! shutdown) around a small amount of service-specific wiring. This module is the seam
//! between the two. A service states three things and nothing else:
//!
//! 1. its settings, resolved from the validated [`GekkoConfig`] by a *pure* function
//!    ([`Service::resolve`]). The host resolves every service before it binds a port or
//!    opens the bus, so a bad venue URL or a model location it cannot use exits 64 exactly
//!    like a bad environment variable, with nothing half started;
//! 2. how it starts ([`Service::start`]), given a [`ServiceCtx`] with the bus, the
//!    readiness latch, the process's task tracker and a cancellation token;
//! 3. what it hands back ([`Started`]): its gRPC services, values other parts of the
//!    process may need (for example a running gateway, so one router can serve every
//!    hosted gateway), and values that must stay alive until the drain is over.
//!
//! Services are unit types with associated types (like barter-rs venues), so a process's
//! list of services is a list of [`ServiceEntry`] values: type-erased, chosen at run time
//! by config, and adding a service is adding an entry.

use std::any::Any;
use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use gekko_audit::AuditLog;
use gekko_bus::Bus;
use gekko_config::GekkoConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::body::Body;
use tonic::codegen::Service as TowerService;
use tonic::codegen::http::Request;
use tonic::server::NamedService;

use crate::grpc::GrpcServer;
use crate::health::Readiness;
use crate::shutdown::Shutdown;

/// The error a service's start-up fails with: any error, with its source chain intact.
///
/// A boxed error rather than a crate enum because each service has its own failure modes
/// (a venue that rejects the key, a model file that does not load); the host only needs to
/// print the chain and exit 69.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A future a service's start-up returns, boxed so services can be held in one list.
pub type StartFuture<'a> = Pin<Box<dyn Future<Output = Result<Started, BoxError>> + Send + 'a>>;

/// One part of a process that the [host](crate::host::Host) starts and stops.
///
/// Implement it on a unit struct; the struct is never instantiated.
pub trait Service: 'static {
    /// The name used in logs and in problem and error messages (`inference`,
    /// `gateway-binanceus`).
    const NAME: &'static str;

    /// Everything the service needs from config, in the form it wants it.
    type Settings: Send + 'static;

    /// Resolves the settings from the validated config.
    ///
    /// Must be pure: no I/O, no sockets, no files, no clock. The host calls it before
    /// binding anything, for every service, and reports all problems together.
    ///
    /// # Errors
    ///
    /// Every problem found, one line each, naming the variable at fault where there is
    /// one. The host prefixes each line with [`NAME`](Self::NAME) and exits 64.
    fn resolve(cfg: &GekkoConfig) -> Result<Self::Settings, Vec<String>>;

    /// Starts the service: spawns its tasks on [`ServiceCtx::tracker`] (or through
    /// [`ServiceCtx::spawn`]), registers its readiness components, and returns what it
    /// serves.
    ///
    /// The host calls it after both listeners are bound and the bus is open, in list
    /// order, so a service may rely on the ones listed before it having started.
    ///
    /// # Errors
    ///
    /// Anything that stops the service from starting (a venue that cannot be reached, a
    /// model that does not load). The host then cancels everything started so far, drains
    /// briefly and exits 69.
    fn start(
        settings: Self::Settings,
        ctx: &ServiceCtx,
    ) -> impl Future<Output = Result<Started, BoxError>> + Send;
}

/// What a starting service gets from the host.
///
/// Cheap to clone (a few `Arc`s). The token is a child of the process's root token, one
/// per service, so a service can cancel its own subtree without stopping the process.
#[derive(Clone)]
pub struct ServiceCtx {
    bus: Arc<dyn Bus>,
    readiness: Readiness,
    shutdown: Shutdown,
    cancel: CancellationToken,
    provided: Provided,
    audit: AuditLog,
    grpc_addr: Option<std::net::SocketAddr>,
    hot: Option<tokio::sync::watch::Receiver<crate::hot::HotConfig>>,
}

impl ServiceCtx {
    /// A context over an opened bus, a readiness latch and a shutdown tree. The host builds
    /// one per service; tests can build their own.
    #[must_use]
    pub fn new(bus: Arc<dyn Bus>, readiness: Readiness, shutdown: &Shutdown) -> Self {
        Self {
            bus,
            readiness,
            cancel: shutdown.child_token(),
            shutdown: shutdown.clone(),
            provided: Provided::default(),
            audit: AuditLog::disabled(),
            grpc_addr: None,
            hot: None,
        }
    }

    /// The same context, following the hot config versions on `hot` (the host passes
    /// every service the receiver of its [`crate::hot`] watcher).
    #[must_use]
    pub fn with_hot_config(
        mut self,
        hot: tokio::sync::watch::Receiver<crate::hot::HotConfig>,
    ) -> Self {
        self.hot = Some(hot);
        self
    }

    /// The hot config versions announced by configd, as the process applies them: wait
    /// with `changed()`, then read the new [`HotConfig`](crate::hot::HotConfig) and apply
    /// the variables it names as changed. `None` in a context built without a host.
    #[must_use]
    pub fn hot_config(&self) -> Option<tokio::sync::watch::Receiver<crate::hot::HotConfig>> {
        self.hot.clone()
    }

    /// The same context, knowing the address the process's gRPC listener is bound to (the
    /// host binds it before any service starts, and serves it once all have started).
    #[must_use]
    pub fn with_grpc_addr(mut self, addr: std::net::SocketAddr) -> Self {
        self.grpc_addr = Some(addr);
        self
    }

    /// The process's own gRPC address, for a service that is a client of the process's
    /// gRPC services (the MCP server); `None` in a context built without one.
    #[must_use]
    pub fn grpc_addr(&self) -> Option<std::net::SocketAddr> {
        self.grpc_addr
    }

    /// The same context, recording through `audit`. The host gives every service the
    /// process's one audit log; a context built with [`new`](Self::new) records nothing.
    #[must_use]
    pub fn with_audit(mut self, audit: AuditLog) -> Self {
        self.audit = audit;
        self
    }

    /// The process's tamper-evident audit trail: record order commands, cancels,
    /// close-positions, auth failures, config changes and secret access through it
    /// ([`AuditLog::record`] where the caller can wait, [`AuditLog::record_detached`]
    /// where it cannot).
    #[must_use]
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The same context, seeing `provided`: what the services started before this one
    /// offered. The host passes each service what the earlier ones provided.
    #[must_use]
    pub fn with_provided(mut self, provided: Provided) -> Self {
        self.provided = provided;
        self
    }

    /// What the services started before this one [provided](Started::provide), e.g. the
    /// gateways a strategy sends its orders through.
    #[must_use]
    pub fn provided(&self) -> &Provided {
        &self.provided
    }

    /// The stop requested so far, if any (see [`request_stop`](Self::request_stop)).
    #[must_use]
    pub fn stop_request(&self) -> Option<crate::StopRequest> {
        self.shutdown.stop_request()
    }

    /// Asks the process to stop in `mode` (`None`: the configured default) on behalf of
    /// `origin`, running the controller's shutdown steps first; `false` when a stop was
    /// already requested. See [`crate::StopRequest`].
    pub fn request_stop(&self, mode: Option<gekko_config::ShutdownMode>, origin: String) -> bool {
        self.shutdown
            .request_stop(crate::StopRequest { mode, origin })
    }

    /// The process's bus (Redis or in-process).
    #[must_use]
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// The process's readiness latch; register components with
    /// [`Readiness::component`].
    #[must_use]
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The process's task tracker. Tasks spawned on it are waited for, with the grace
    /// period, when the process drains.
    #[must_use]
    pub fn tracker(&self) -> &TaskTracker {
        self.shutdown.tracker()
    }

    /// This service's cancellation token: cancelled when the process shuts down.
    #[must_use]
    pub fn cancel(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Shuts the whole process down, as a signal would: for a service that hits a
    /// failure it cannot recover from.
    pub fn trigger_shutdown(&self) {
        self.shutdown.trigger();
    }

    /// Spawns a named, tracked task (see [`Shutdown::spawn`]); a task still running when
    /// the grace period ends is named in the log.
    pub fn spawn<F, E>(&self, name: &'static str, fut: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        drop(self.shutdown.spawn(name, fut));
    }
}

impl fmt::Debug for ServiceCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceCtx")
            .field("bus", &self.bus.kind())
            .field("readiness", &self.readiness)
            .field("audit", &self.audit)
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// Adds one tonic service to the process's gRPC server.
pub(crate) type Registration = Box<dyn FnOnce(GrpcServer) -> GrpcServer + Send>;
/// A value offered to the rest of the process.
pub(crate) type ProvidedValue = Arc<dyn Any + Send + Sync>;
/// A value kept alive until the drain is over.
pub(crate) type HeldValue = Box<dyn Any + Send>;

/// What a service hands back once it has started.
#[derive(Default)]
#[must_use = "a service's gRPC registrations and held values live in `Started`"]
pub struct Started {
    grpc: Vec<Registration>,
    provided: Vec<ProvidedValue>,
    held: Vec<HeldValue>,
}

impl Started {
    /// Nothing served, provided or held yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `svc` (a generated `…Server<T>`) on the process's gRPC port, with a health
    /// status that follows readiness (see [`GrpcServer::add_service`]).
    pub fn grpc<S>(mut self, svc: S) -> Self
    where
        S: TowerService<Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.grpc
            .push(Box::new(move |server| server.add_service(svc)));
        self
    }

    /// Registers an encoded `FileDescriptorSet` for reflection, for protos outside
    /// `gekko_proto` (see [`GrpcServer::with_descriptor_set`]).
    pub fn descriptor_set(mut self, encoded: &'static [u8]) -> Self {
        self.grpc
            .push(Box::new(move |server| server.with_descriptor_set(encoded)));
        self
    }

    /// Offers `value` to the rest of the process: later services and the host's gRPC
    /// composers ([`crate::host::Host::grpc`]) find it with [`Provided::all`]. This is how
    /// one registration can serve every hosted gateway.
    pub fn provide<T: Any + Send + Sync>(mut self, value: T) -> Self {
        self.provided.push(Arc::new(value));
        self
    }

    /// Keeps `value` alive until the process has drained, then drops it (after every
    /// tracked task has stopped). For handles whose drop stops something, such as an
    /// in-process venue simulator the service's tasks talk to.
    pub fn hold<T: Any + Send>(mut self, value: T) -> Self {
        self.held.push(Box::new(value));
        self
    }

    /// Splits into gRPC registrations, provided values and held values.
    pub(crate) fn into_parts(self) -> (Vec<Registration>, Vec<ProvidedValue>, Vec<HeldValue>) {
        (self.grpc, self.provided, self.held)
    }
}

impl fmt::Debug for Started {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Started")
            .field("grpc", &self.grpc.len())
            .field("provided", &self.provided.len())
            .field("held", &self.held.len())
            .finish()
    }
}

/// The values every started service [provided](Started::provide), in start order.
#[derive(Default, Clone)]
pub struct Provided {
    values: Vec<ProvidedValue>,
}

impl Provided {
    /// Clones of every provided value of type `T`, in the order they were provided.
    #[must_use]
    pub fn all<T: Any + Clone>(&self) -> Vec<T> {
        self.values
            .iter()
            .filter_map(|v| v.downcast_ref::<T>())
            .cloned()
            .collect()
    }

    pub(crate) fn extend(&mut self, values: Vec<ProvidedValue>) {
        self.values.extend(values);
    }
}

impl fmt::Debug for Provided {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provided")
            .field("values", &self.values.len())
            .finish()
    }
}

/// A service whose settings are resolved and which is ready to start.
pub struct ResolvedService {
    name: &'static str,
    start: Box<dyn for<'a> FnOnce(&'a ServiceCtx) -> StartFuture<'a> + Send>,
}

impl ResolvedService {
    fn of<S: Service>(settings: S::Settings) -> Self {
        Self {
            name: S::NAME,
            start: Box::new(move |ctx| Box::pin(S::start(settings, ctx))),
        }
    }

    /// The service's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Starts the service (see [`Service::start`]).
    ///
    /// # Errors
    ///
    /// Whatever the service's start-up failed with.
    pub fn start(self, ctx: &ServiceCtx) -> StartFuture<'_> {
        (self.start)(ctx)
    }
}

impl fmt::Debug for ResolvedService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedService")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A [`Service`] as a value, so a process can hold a list of different services.
#[derive(Clone, Copy)]
pub struct ServiceEntry {
    name: &'static str,
    resolve: fn(&GekkoConfig) -> Result<ResolvedService, Vec<String>>,
}

impl ServiceEntry {
    /// The entry for service `S`.
    #[must_use]
    pub fn of<S: Service>() -> Self {
        Self {
            name: S::NAME,
            resolve: |cfg| S::resolve(cfg).map(ResolvedService::of::<S>),
        }
    }

    /// The service's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Resolves the service's settings (pure; see [`Service::resolve`]).
    ///
    /// # Errors
    ///
    /// Every problem the service found, unprefixed.
    pub fn resolve(&self, cfg: &GekkoConfig) -> Result<ResolvedService, Vec<String>> {
        (self.resolve)(cfg)
    }
}

impl fmt::Debug for ServiceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ServiceEntry").field(&self.name).finish()
    }
}
