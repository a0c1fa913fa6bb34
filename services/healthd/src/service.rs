//! healthd as a hosted service: its HTTP listener, the poller and the gRPC service.

use std::sync::{Mutex, OnceLock};

use gekko_config::GekkoConfig;
use gekko_runtime::{BoxError, Service, ServiceCtx, Started};
use tokio::net::TcpListener;

use crate::alerts::{Alerts, Publisher};
use crate::poller::{HealthState, Poller};
use crate::settings::HealthdSettings;

/// [`Service::resolve`] sees only the validated gekko config, so `main` leaves the
/// validated `HEALTHD_*` settings here before the host runs. A `Mutex<Option<…>>` so a
/// test process can host healthd more than once.
static BOOTSTRAP: OnceLock<Mutex<Option<HealthdSettings>>> = OnceLock::new();

/// Hands `settings` to the next [`HealthdService`] the host resolves.
pub fn set_settings(settings: HealthdSettings) {
    let slot = BOOTSTRAP.get_or_init(|| Mutex::new(None));
    *gekko_core::sync::lock(slot) = Some(settings);
}

/// The hosted `healthd` service.
#[derive(Debug)]
pub struct HealthdService;

impl Service for HealthdService {
    const NAME: &'static str = "healthd";
    type Settings = (HealthdSettings, Option<String>);

    fn resolve(cfg: &GekkoConfig) -> Result<Self::Settings, Vec<String>> {
        let s = BOOTSTRAP
            .get()
            .and_then(|m| gekko_core::sync::lock(m).clone());
        s.map(|s| (s, cfg.redis_url.clone()))
            .ok_or_else(|| vec!["healthd was started without its settings".to_owned()])
    }

    async fn start(
        (settings, redis_url): Self::Settings,
        ctx: &ServiceCtx,
    ) -> Result<Started, BoxError> {
        crate::metrics::describe();
        let prometheus = gekko_runtime::install_prometheus()?;
        let listener = TcpListener::bind(settings.http_addr)
            .await
            .map_err(|e| format!("HEALTHD_HTTP_ADDR {}: cannot bind: {e}", settings.http_addr))?;
        let http_addr = listener.local_addr()?;
        let publisher = Publisher::new(
            ctx.bus().clone(),
            settings.webhook_url.clone(),
            settings.timeout,
        );
        let state = HealthState::new(Alerts::new(publisher, settings.escalate_after));
        let first_poll = ctx.readiness().component("first-poll");
        let targets = settings.targets.len();
        let poller = Poller::new(settings, redis_url);
        let cancel = ctx.cancel();
        let poll_state = state.clone();
        ctx.spawn("healthd-poller", async move {
            poller.run(poll_state, first_poll, cancel).await;
            Ok::<(), std::convert::Infallible>(())
        });
        ctx.spawn(
            "healthd-http",
            crate::http::serve(
                listener,
                crate::http::router(state.clone(), prometheus),
                ctx.cancel(),
            ),
        );
        tracing::info!(%http_addr, targets, "healthd serving");
        Ok(Started::new()
            .grpc(crate::grpc::HealthGrpc::new(state.clone()).into_server())
            .provide(state))
    }
}
