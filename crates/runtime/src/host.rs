//! The service host: everything a gekko process does around its services.
//!
//! Every binary used to repeat the same sixty lines (load config, install logging and
//! metrics, bind two ports, open the bus, serve health, start, serve gRPC, wait for a
//! signal, drain), and each copy drifted a little: one mirrored bus readiness and the others
//! did not, exit codes differed. The host does it once, in one order, for any list of
//! [`Service`](crate::service::Service)s:
//!
//! 1. **Resolve** every service's settings from the validated config. Pure, so it runs
//!    before anything is bound; any problem prints every line and exits 64.
//! 2. **Telemetry**: the tracing subscriber and the Prometheus recorder.
//! 3. **Access control**: the `AuthLayer` and TLS material are built from
//!    `ACCESS_CONTROL_CONFIG` (an unreadable certificate or key exits 64), and each failing
//!    security posture finding is printed as a loud warning. Then **bind** the HTTP
//!    (`/metrics`, `/livez`, `/readyz`) and gRPC listeners *before* any service starts, so
//!    a taken port fails the start (exit 69) instead of leaving half a system running.
//!    Both serve TLS when it is configured; refused gRPC calls go to the audit trail.
//! 4. **Readiness**: a `startup` component holds `/readyz` at 503 until every service has
//!    registered its own components and started; a `bus` component mirrors the bus.
//! 5. **Start** the services in list order, each with its own child token. A failure
//!    cancels what started, drains briefly and exits 69.
//! 6. **Serve** gRPC through [`GrpcServer`] (health and reflection always on) with every
//!    service's registrations plus the host's [composers](Host::grpc).
//! 7. **Stop, then drain**: a stop is requested (SIGINT/SIGTERM, or
//!    [`ServiceCtx::request_stop`]); the `stopping` hook runs while every service still
//!    runs (the controller's shutdown steps); then the root token is cancelled, every
//!    tracked task gets the configured grace period, and held values are dropped. A drain
//!    that runs out of time exits 70.
//!
//! [`Lifecycle`] hooks let a binary add to these steps without owning any of them:
//! `opened` once the bus and the audit trail are open and before any service starts (the
//! run's first audit entry), `started`, `stopping` and `stopped` (`gekko up` writes its
//! start-up report, its shutdown steps, the final report and the banner).

use std::error::Error;
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use gekko_audit::AuditLog;
use gekko_bus::Bus;
use gekko_config::{GekkoConfig, Loaded};
use gekko_security::{AuthLayer, AuthPolicy, ServerTls};
use tokio::net::TcpListener;

use crate::grpc::GrpcServer;
use crate::health::Readiness;
use crate::service::{Provided, ResolvedService, Service, ServiceCtx, ServiceEntry};
use crate::shutdown::{Shutdown, StopRequest};
use crate::telemetry::TelemetryConfig;

/// How long a start-up failure waits for the services already started to stop.
const STARTUP_FAILURE_GRACE: Duration = Duration::from_secs(5);

/// How often the bus's readiness is copied into the latch.
const BUS_READINESS_POLL: Duration = Duration::from_millis(250);

/// How a hosted process ends, after `sysexits.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Stopped cleanly after a signal.
    Ok,
    /// Invalid configuration, found before anything was bound (`EX_USAGE`, 64).
    Config,
    /// A port, the bus or a service's dependency is unavailable (`EX_UNAVAILABLE`, 69).
    Unavailable,
    /// An internal failure: telemetry could not be set up, or the drain ran out of time
    /// (`EX_SOFTWARE`, 70).
    Internal,
}

impl Exit {
    /// The process exit status.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Config => 64,
            Self::Unavailable => 69,
            Self::Internal => 70,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
    }
}

/// What [`Lifecycle::opened`] sees: the process before any service started.
#[derive(Clone, Copy)]
pub struct OpenedInfo<'a> {
    /// The program name the host was built with.
    pub program: &'static str,
    /// The validated configuration.
    pub config: &'a GekkoConfig,
    /// The opened bus.
    pub bus: &'a dyn Bus,
    /// The process's audit trail.
    pub audit: &'a AuditLog,
}

impl std::fmt::Debug for OpenedInfo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedInfo")
            .field("program", &self.program)
            .field("bus", &self.bus.kind())
            .finish_non_exhaustive()
    }
}

/// What [`Lifecycle`] hooks see of the running process.
#[derive(Clone, Copy)]
pub struct HostInfo<'a> {
    /// The program name the host was built with.
    pub program: &'static str,
    /// The validated configuration.
    pub config: &'a GekkoConfig,
    /// The opened bus.
    pub bus: &'a dyn Bus,
    /// Where `/metrics`, `/livez` and `/readyz` are served.
    pub http_addr: SocketAddr,
    /// Where gRPC is served.
    pub grpc_addr: SocketAddr,
    /// Every value the services [provided](crate::Started::provide), e.g. the gateways.
    pub provided: &'a Provided,
    /// The gRPC access control in force; [`AuthLayer::observe`] wires its refusals to an
    /// audit log.
    pub auth: &'a AuthLayer,
    /// The process's audit trail (the one every service's [`ServiceCtx::audit`] records
    /// through).
    pub audit: &'a AuditLog,
}

impl std::fmt::Debug for HostInfo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostInfo")
            .field("program", &self.program)
            .field("bus", &self.bus.kind())
            .field("http_addr", &self.http_addr)
            .field("grpc_addr", &self.grpc_addr)
            .finish_non_exhaustive()
    }
}

/// Hooks a binary can add around the host's steps; every one defaults to doing nothing.
pub trait Lifecycle {
    /// The bus and the audit trail are open and no service has started yet: the place
    /// for the run's first audit entry (`gekko up` records its start-up report here).
    fn opened(&self, info: &OpenedInfo<'_>) -> impl Future<Output = ()> {
        let _ = info;
        async {}
    }

    /// Every service has started and gRPC is being served; runs just before the
    /// `startup` component turns ready.
    fn started(&self, info: &HostInfo<'_>) -> impl Future<Output = ()> {
        let _ = info;
        async {}
    }

    /// A stop was requested (a signal, or [`ServiceCtx::request_stop`]); runs while every
    /// service is still running, before anything is cancelled, so it can stop entries,
    /// cancel orders and flatten. The drain begins when it returns. When the request's
    /// origin is `cancelled` the services' tokens are already cancelled.
    fn stopping(&self, info: &HostInfo<'_>, request: &StopRequest) -> impl Future<Output = ()> {
        let _ = (info, request);
        async {}
    }

    /// The drain is over (`clean` is false when it ran out of time) and held values have
    /// been dropped; the bus is still open.
    fn stopped(&self, info: &HostInfo<'_>, clean: bool) -> impl Future<Output = ()> {
        let _ = (info, clean);
        async {}
    }
}

/// No hooks.
impl Lifecycle for () {}

/// Adds registrations that need more than one service's output, such as one router over
/// every hosted gateway. Runs after every service started.
pub type GrpcComposer = fn(&Provided, GrpcServer) -> GrpcServer;

/// A process made of services. Build it, then [`main`](Self::main) or
/// [`run`](Self::run) it.
#[derive(Debug)]
pub struct Host {
    program: &'static str,
    services: Vec<ServiceEntry>,
    composers: Vec<GrpcComposer>,
    owns_audit_stream: bool,
    /// Venues whose credentials [`main`](Self::main) fetches from configd when
    /// `CONFIG_SERVICE` names one.
    served_venues: Vec<gekko_config::VenueId>,
}

impl Host {
    /// A host for the program `program` (its telemetry service name and the prefix of its
    /// messages), with no services yet.
    #[must_use]
    pub fn new(program: &'static str) -> Self {
        Self {
            program,
            services: Vec::new(),
            composers: Vec::new(),
            owns_audit_stream: false,
            served_venues: Vec::new(),
        }
    }

    /// Makes [`main`](Self::main) fetch `venue`'s credentials from configd's `GetSecrets`
    /// before validating the configuration, when `CONFIG_SERVICE` has a `url` (see
    /// [`crate::served`]). Without `CONFIG_SERVICE` this changes nothing.
    #[must_use]
    pub fn credentials_from_configd(mut self, venue: gekko_config::VenueId) -> Self {
        self.served_venues.push(venue);
        self
    }

    /// Makes this program the writer of the configured audit stream
    /// (`AUDIT_LOGGING_SETTINGS stream`). Only one process may be: `gekko up`. Without
    /// this a program writes `<stream>:<program>` ([`gekko_audit::program_stream`]), so a
    /// service binary run on its own never forks the controller's chain.
    #[must_use]
    pub fn owns_audit_stream(mut self) -> Self {
        self.owns_audit_stream = true;
        self
    }

    /// Adds service `S`.
    #[must_use]
    pub fn service<S: Service>(self) -> Self {
        self.services([ServiceEntry::of::<S>()])
    }

    /// Adds services, in start order.
    #[must_use]
    pub fn services(mut self, entries: impl IntoIterator<Item = ServiceEntry>) -> Self {
        self.services.extend(entries);
        self
    }

    /// Adds a gRPC composer (see [`GrpcComposer`]); composers run in the order added.
    #[must_use]
    pub fn grpc(mut self, composer: GrpcComposer) -> Self {
        self.composers.push(composer);
        self
    }

    /// Resolves every service's settings; pure.
    ///
    /// # Errors
    ///
    /// Every problem of every service, each line prefixed with the service's name.
    pub fn resolve(&self, cfg: &GekkoConfig) -> Result<Vec<ResolvedService>, Vec<String>> {
        let mut resolved = Vec::with_capacity(self.services.len());
        let mut problems = Vec::new();
        for entry in &self.services {
            match entry.resolve(cfg) {
                Ok(r) => resolved.push(r),
                Err(p) => problems.extend(p.into_iter().map(|p| format!("{}: {p}", entry.name()))),
            }
        }
        if problems.is_empty() {
            Ok(resolved)
        } else {
            Err(problems)
        }
    }

    /// The whole of a service binary's `main`: loads config from the environment,
    /// builds a multi-threaded Tokio runtime and [`run`](Self::run)s with no hooks.
    #[must_use]
    pub fn main(self) -> ExitCode {
        let loaded = match gekko_config::load() {
            Ok(l) => l,
            Err(errors) => {
                eprint!("{}", errors.render(self.program));
                return Exit::Config.into();
            }
        };
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("{}: cannot start the async runtime: {e}", self.program);
                return Exit::Internal.into();
            }
        };
        let loaded = if self.served_venues.is_empty() || loaded.config.config_service.url.is_none()
        {
            loaded
        } else {
            let settings = loaded.config.config_service.clone();
            let fetched = rt.block_on(crate::served::fetch(&settings, &self.served_venues));
            let served = match fetched {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{}: {e}", self.program);
                    return match e {
                        crate::served::FetchError::Config(_) => Exit::Config,
                        crate::served::FetchError::Unavailable(_) => Exit::Unavailable,
                    }
                    .into();
                }
            };
            match gekko_config::load_with_served(&served) {
                Ok(l) => l,
                Err(errors) => {
                    eprint!("{}", errors.render(self.program));
                    return Exit::Config.into();
                }
            }
        };
        rt.block_on(self.run(loaded, &())).into()
    }

    /// Runs the process until a shutdown signal and a drain (see the module docs for the
    /// order of steps).
    pub async fn run(self, loaded: Loaded, lifecycle: &impl Lifecycle) -> Exit {
        let Loaded { config, warnings } = loaded;
        let program = self.program;
        let resolved = match self.resolve(&config) {
            Ok(r) => r,
            Err(problems) => {
                eprint!("{}", render_problems(program, &problems));
                return Exit::Config;
            }
        };
        let telemetry = TelemetryConfig::from_monitoring(program, &config.monitoring);
        let guard = match crate::telemetry::init(&telemetry) {
            Ok(g) => Some(g),
            // Only when the host is embedded (tests, a tool running several hosts): the
            // subscriber already installed is as good as ours.
            Err(crate::RuntimeError::SubscriberAlreadySet(_)) => None,
            Err(e) => {
                eprintln!("{program}: cannot set up logging: {}", error_chain(&e));
                return Exit::Internal;
            }
        };
        for w in &warnings {
            tracing::warn!(%w, "configuration warning");
        }
        let exit = serve(
            program,
            &config,
            resolved,
            &self.composers,
            lifecycle,
            self.owns_audit_stream,
        )
        .await;
        // The exporter's flush blocks; `shutdown_async` keeps it off the runtime threads
        // whose I/O it needs.
        if let Some(guard) = guard
            && let Err(e) = guard.shutdown_async().await
        {
            eprintln!("{program}: telemetry shutdown: {}", error_chain(&e));
        }
        exit
    }
}

/// The report printed before exiting 64 on settings problems; same shape as
/// `gekko_config::ConfigErrors::render`.
fn render_problems(program: &str, problems: &[String]) -> String {
    let mut out = format!(
        "{program}: invalid configuration ({} problems):\n",
        problems.len()
    );
    for p in problems {
        let _ = writeln!(out, "  - {p}");
    }
    out
}

/// `error: cause: cause`, like `anyhow`'s `{:#}`: an error with its whole source chain on
/// one line, for messages to operators.
#[must_use]
pub fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let _ = write!(out, ": {s}");
        source = s.source();
    }
    out
}

/// How often entries past `retention_days` are moved to the sealed archive (and once at
/// start-up).
const AUDIT_RETENTION_EVERY: Duration = Duration::from_hours(24);

/// The host name (`gekko_core::host::host_name`) reduced to characters safe in a stream
/// name; `unknown-host` when there is none.
fn replica_host_name() -> String {
    let name: String = gekko_core::host::host_name()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(64)
        .collect();
    if name.is_empty() {
        "unknown-host".to_owned()
    } else {
        name
    }
}

/// Opens the process's audit trail on the bus: the configured stream when this program
/// owns it, else `<stream>:<program>`, or `<stream>:<program>:<host>-<grpc port>` for a
/// replica (`GATEWAY_HA_SETTINGS enabled=true`). A key that cannot be loaded exits 64; a
/// chain head that does not verify (the stream was tampered with) exits 69: extending a
/// broken chain would hide where it broke.
async fn open_audit(
    program: &'static str,
    config: &GekkoConfig,
    bus: &Arc<dyn Bus>,
    owns_audit_stream: bool,
) -> Result<AuditLog, Exit> {
    let settings = &config.audit_logging;
    let stream = if owns_audit_stream {
        settings.stream.clone()
    } else if config.gateway_ha.enabled {
        // Replicas of one program run side by side (`--scale`, or two processes on one
        // host); one hash chain cannot have two writers, so each replica writes its own,
        // named by its host name and gRPC port (stable across its restarts).
        format!(
            "{}:{}-{}",
            gekko_audit::program_stream(settings, program),
            replica_host_name(),
            config.monitoring.grpc_addr.port()
        )
    } else {
        gekko_audit::program_stream(settings, program)
    };
    AuditLog::open_stream(bus.clone(), settings, &stream, program)
        .await
        .map_err(|e| {
            let chain = error_chain(&e);
            tracing::error!(error = %chain, "cannot open the audit trail");
            eprintln!("{program}: cannot open the audit trail: {chain}");
            match e {
                gekko_audit::AuditError::Key(_) => Exit::Config,
                _ => Exit::Unavailable,
            }
        })
}

/// Binds `addr`, or says which port could not be bound.
async fn bind(program: &str, what: &str, addr: SocketAddr) -> Result<TcpListener, Exit> {
    TcpListener::bind(addr).await.map_err(|e| {
        tracing::error!(%addr, error = %e, "cannot bind the {what} port");
        eprintln!("{program}: cannot bind {what} port {addr}: {e}");
        Exit::Unavailable
    })
}

/// The access-control layer and TLS material of `config`, with a loud warning for each
/// failing posture finding (plaintext or unauthenticated listeners off loopback).
fn security(
    program: &str,
    config: &GekkoConfig,
) -> Result<(AuthLayer, Option<Arc<ServerTls>>), Exit> {
    let access = &config.access_control;
    let tls = ServerTls::load(access).map_err(|e| {
        let chain = error_chain(&e);
        tracing::error!(error = %chain, "cannot load the TLS material");
        eprintln!("{program}: ACCESS_CONTROL_CONFIG: {chain}");
        Exit::Config
    })?;
    let policy = AuthPolicy::from_config(access).map_err(|e| {
        eprintln!("{program}: ACCESS_CONTROL_CONFIG: {e}");
        Exit::Config
    })?;
    for finding in gekko_security::posture(config, None)
        .into_iter()
        .filter(|f| !f.ok)
    {
        tracing::warn!(
            check = finding.check,
            required = finding.required,
            "SECURITY: {}",
            finding.detail
        );
        eprintln!(
            "{program}: SECURITY WARNING ({}): {}",
            finding.check, finding.detail
        );
    }
    Ok((AuthLayer::new(policy), tls.map(Arc::new)))
}

/// The audit entry of a refused gRPC call: the actor is the token's name once it was
/// recognised, else the peer address.
fn audit_denied(d: &gekko_security::DeniedCall) -> gekko_audit::AuditRecord {
    let actor = match (&d.token_name, d.peer) {
        (Some(name), _) => name.clone(),
        (None, Some(ip)) => ip.to_string(),
        (None, None) => "unknown".to_owned(),
    };
    gekko_audit::AuditRecord::new(actor, "auth.denied", "denied").with_detail(serde_json::json!({
        "method": d.method,
        "reason": d.reason.as_str(),
        "peer": d.peer.map(|ip| ip.to_string()),
        "token": d.token_name,
    }))
}

/// `/metrics`, `/livez`, `/readyz`: over TLS when configured.
async fn serve_ops_http(
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
    readiness: Readiness,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), crate::RuntimeError> {
    match tls {
        Some(tls) => crate::http::serve_https(listener, &tls, readiness, metrics, shutdown).await,
        None => crate::http::serve_http(listener, readiness, metrics, shutdown).await,
    }
}

/// Steps 2 to 7 of the module docs, after resolution and logging.
async fn serve(
    program: &'static str,
    config: &GekkoConfig,
    resolved: Vec<ResolvedService>,
    composers: &[GrpcComposer],
    lifecycle: &impl Lifecycle,
    owns_audit_stream: bool,
) -> Exit {
    let metrics = match crate::metrics::install_prometheus() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "cannot install the metrics recorder");
            return Exit::Internal;
        }
    };
    crate::metrics::describe_common();
    gekko_security::auth::describe_metrics();
    // Access control and TLS material are checked before anything binds: an unreadable
    // certificate or key exits 64, like any other configuration problem.
    let (auth, tls) = match security(program, config) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    tracing::info!(config = ?config, "starting {program}");

    let http = match bind(program, "HTTP", config.monitoring.http_addr).await {
        Ok(l) => l,
        Err(exit) => return exit,
    };
    let grpc = match bind(program, "gRPC", config.monitoring.grpc_addr).await {
        Ok(l) => l,
        Err(exit) => return exit,
    };
    let http_addr = http.local_addr().unwrap_or(config.monitoring.http_addr);
    let grpc_addr = grpc.local_addr().unwrap_or(config.monitoring.grpc_addr);

    let shutdown = Shutdown::new();
    // From here a signal is a stop request, even while services are still starting.
    shutdown.listen_for_signals();
    let readiness = Readiness::new();
    // Held not-ready until every service has started: services register their own
    // components as they start, and until then the latch must not read "all ready".
    let startup = readiness.component("startup");
    let bus_ready = readiness.component("bus");

    let bus: Arc<dyn Bus> = match gekko_bus::open(config.redis_url.as_deref()).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "cannot open the bus");
            eprintln!("{program}: cannot open the bus: {}", error_chain(&e));
            return Exit::Unavailable;
        }
    };
    tracing::info!(bus = bus.kind(), "bus opened");
    let audit = match open_audit(program, config, &bus, owns_audit_stream).await {
        Ok(a) => a,
        Err(exit) => return exit,
    };
    lifecycle
        .opened(&OpenedInfo {
            program,
            config,
            bus: &*bus,
            audit: &audit,
        })
        .await;
    // Every refused gRPC call becomes an `auth.denied` entry. Detached: the observer runs
    // on the request path and must not wait for Redis.
    {
        let audit = audit.clone();
        auth.observe(move |d: &gekko_security::DeniedCall| {
            audit.record_detached(audit_denied(d));
        });
    }
    {
        let audit = audit.clone();
        let token = shutdown.child_token();
        shutdown.spawn("audit-retention", async move {
            audit.run_retention(AUDIT_RETENTION_EVERY, token).await;
            Ok::<(), std::convert::Infallible>(())
        });
    }

    // Mirror the bus's own readiness into the latch; Redis can come and go. Polling (not
    // a notification) because the bus exposes readiness as a cheap flag.
    {
        let bus = bus.clone();
        let token = shutdown.child_token();
        shutdown.spawn("bus-readiness", async move {
            loop {
                if bus.is_ready() {
                    bus_ready.set_ready();
                } else {
                    bus_ready.set_not_ready("redis unreachable; reconnecting");
                }
                tokio::select! {
                    () = token.cancelled() => return Ok::<(), std::convert::Infallible>(()),
                    () = tokio::time::sleep(BUS_READINESS_POLL) => {}
                }
            }
        });
    }
    shutdown.spawn(
        "http",
        serve_ops_http(
            http,
            tls.clone(),
            readiness.clone(),
            metrics,
            shutdown.child_token(),
        ),
    );

    let mut server = GrpcServer::new(readiness.clone()).with_auth(auth.clone());
    if let Some(tls) = &tls {
        server = server.with_tls(tls);
    }
    // configd's versions: followed from before the first service starts, so a start-up
    // that takes a while cannot miss one.
    let hot = crate::hot::spawn(program, config.clone(), bus.clone(), &shutdown);
    let mut provided = Provided::default();
    // Dropped only after the drain: what a service holds (an in-process simulator) may be
    // what its tasks talk to while they wind down.
    let mut held = Vec::new();
    for service in resolved {
        let name = service.name();
        let ctx = ServiceCtx::new(bus.clone(), readiness.clone(), &shutdown)
            .with_grpc_addr(grpc_addr)
            .with_audit(audit.clone())
            .with_hot_config(hot.clone())
            .with_provided(provided.clone());
        // A stop requested while a service is starting (a signal during start-up)
        // abandons the start: this service's start is dropped, the ones after it never
        // start, and what did start is drained. gRPC is not serving yet, so no client
        // can have placed an order, and there are no shutdown steps to run.
        let outcome = tokio::select! {
            outcome = service.start(&ctx) => outcome,
            request = shutdown.wait_for_stop() => {
                tracing::warn!(
                    service = name,
                    origin = %request.origin,
                    "stop requested during start-up; start abandoned"
                );
                eprintln!("{program}: stop requested ({}) while {name} was starting; start abandoned", request.origin);
                shutdown.trigger();
                let clean = shutdown.drain(config.system_performance.shutdown_grace).await;
                drop(held);
                audit.flush().await;
                return if clean { Exit::Ok } else { Exit::Internal };
            }
        };
        match outcome {
            Ok(started) => {
                let (grpc, values, keep) = started.into_parts();
                server = grpc.into_iter().fold(server, |s, register| register(s));
                provided.extend(values);
                held.extend(keep);
                tracing::info!(service = name, "service started");
            }
            Err(e) => {
                let chain = error_chain(&*e);
                tracing::error!(service = name, error = %chain, "service failed to start");
                eprintln!("{program}: {name} failed to start: {chain}");
                shutdown.trigger();
                let _ = shutdown.drain(STARTUP_FAILURE_GRACE).await;
                drop(held);
                return Exit::Unavailable;
            }
        }
    }
    let server = composers
        .iter()
        .fold(server, |s, compose| compose(&provided, s));
    shutdown.spawn("grpc", server.serve(grpc, shutdown.child_token()));

    let info = HostInfo {
        program,
        config,
        bus: &*bus,
        http_addr,
        grpc_addr,
        provided: &provided,
        auth: &auth,
        audit: &audit,
    };
    lifecycle.started(&info).await;
    startup.set_ready();
    tracing::info!(%http_addr, %grpc_addr, "{program} serving");

    let request = shutdown.wait_for_stop().await;
    tracing::info!(origin = %request.origin, "shutdown requested; stopping services");
    lifecycle.stopping(&info, &request).await;
    shutdown.trigger();
    let grace = config.system_performance.shutdown_grace;
    let clean = shutdown.drain(grace).await;
    drop(held);
    drop(startup);
    lifecycle.stopped(&info, clean).await;
    // Records queued without waiting (interceptors, sync callbacks) are written before
    // the process exits; the bus is still open.
    audit.flush().await;
    if clean {
        tracing::info!("{program} stopped cleanly");
        Exit::Ok
    } else {
        tracing::error!(?grace, "some tasks did not stop within the grace period");
        Exit::Internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_sysexits() {
        assert_eq!(
            [Exit::Ok, Exit::Config, Exit::Unavailable, Exit::Internal].map(Exit::code),
            [0, 64, 69, 70]
        );
    }

    #[test]
    fn problems_render_one_per_line() {
        let text = render_problems("svc", &["a: x".to_owned(), "b: y".to_owned()]);
        assert_eq!(
            text,
            "svc: invalid configuration (2 problems):\n  - a: x\n  - b: y\n"
        );
    }

    #[test]
    fn error_chain_joins_sources() {
        let inner = std::io::Error::other("disk full");
        let outer = crate::RuntimeError::Http(inner);
        assert_eq!(error_chain(&outer), "the HTTP server failed: disk full");
    }
}
