//! configd as a hosted service: the store, the watcher and the gRPC service.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use gekko_config::{GekkoConfig, Key};
use gekko_runtime::{BoxError, Service, ServiceCtx, Started};

use crate::settings::ConfigdSettings;
use crate::state::ConfigStore;

/// What `main` found before the host started: the settings, the key, the process
/// environment and the first candidate (already validated, which the host also uses for
/// its own listeners and bus).
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// `CONFIGD_*`.
    pub settings: ConfigdSettings,
    /// The key sealed files are opened with.
    pub key: Option<Key>,
    /// The gekko variables of configd's process environment (they win over the file).
    pub process_vars: BTreeMap<String, String>,
    /// The first version's variables.
    pub vars: BTreeMap<String, String>,
}

/// [`Service::resolve`] sees only the validated config, so `main` leaves the rest here
/// before the host runs. A `Mutex<Option<…>>` rather than a plain `OnceLock` so a test
/// process can host configd more than once.
static BOOTSTRAP: OnceLock<Mutex<Option<Bootstrap>>> = OnceLock::new();

/// Hands the bootstrap to the next [`ConfigdService`] the host resolves.
pub fn set_bootstrap(b: Bootstrap) {
    let slot = BOOTSTRAP.get_or_init(|| Mutex::new(None));
    *gekko_core::sync::lock(slot) = Some(b);
}

/// The hosted `configd` service.
#[derive(Debug)]
pub struct ConfigdService;

impl Service for ConfigdService {
    const NAME: &'static str = "configd";
    type Settings = (Bootstrap, GekkoConfig);

    fn resolve(cfg: &GekkoConfig) -> Result<Self::Settings, Vec<String>> {
        let b = BOOTSTRAP
            .get()
            .and_then(|m| gekko_core::sync::lock(m).clone());
        b.map(|b| (b, cfg.clone()))
            .ok_or_else(|| vec!["configd was started without its bootstrap".to_owned()])
    }

    async fn start((b, config): Self::Settings, ctx: &ServiceCtx) -> Result<Started, BoxError> {
        crate::metrics::describe();
        let store = ConfigStore::open_audited(
            ctx.bus().clone(),
            b.settings.env_file.clone(),
            b.key.clone(),
            b.process_vars,
            b.vars,
            config,
            ctx.audit().clone(),
        )
        .await?;
        let watcher = crate::watcher::spawn(
            store.clone(),
            b.settings.env_file.clone(),
            b.settings.debounce,
            ctx.cancel(),
        )?;
        ctx.spawn("configd-watcher", watcher);
        tracing::info!(
            version = store.current().version,
            file = %b.settings.env_file.display(),
            sealed = b.key.is_some(),
            "configd serving"
        );
        Ok(Started::new()
            .grpc(
                crate::grpc::ConfigGrpc::new(store.clone(), b.key, ctx.audit().clone())
                    .into_server(),
            )
            .provide(store))
    }
}
