//! Logging and tracing set-up, done once per process.
//!
//! Every gekko service logs the same way so that one log pipeline can read all of them:
//! JSON lines on stdout in containers, a human-readable format on a developer's terminal.
//! `RUST_LOG` wins over the configured filter so an operator can turn up verbosity without
//! touching configuration.
//!
//! Distributed tracing is opt-in through the standard `OTEL_EXPORTER_OTLP_ENDPOINT`
//! variable: when it is set, spans also go to an OTLP collector over gRPC. The exporter
//! reuses the workspace's tonic stack (no second HTTP client) and runs behind the SDK's
//! batch processor, which exports from its own thread and keeps the exporter's own
//! telemetry from feeding back into itself.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;

use crate::RuntimeError;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// The handle that swaps the installed filter ([`set_log_filter`]), set by [`init`].
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Whether `RUST_LOG` chose the filter at [`init`]; a configured level then never
/// overrides it.
static RUST_LOG_WINS: OnceLock<bool> = OnceLock::new();

/// What [`set_log_filter`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterChange {
    /// The new directive is in force.
    Applied,
    /// `RUST_LOG` chose the filter at start-up and keeps winning.
    RustLogWins,
    /// This process's subscriber was not installed by [`init`] (an embedded host).
    NotInstalled,
}

/// Replaces the process's log filter with `directive` (an `EnvFilter` directive such as
/// `debug` or `info,gekko_gateway=debug`) while it runs: the hot `log_level` of
/// `MONITORING_CONFIGURATIONS`.
///
/// # Errors
/// [`RuntimeError::LogFilter`] if the directive does not parse; the old filter stays.
pub fn set_log_filter(directive: &str) -> Result<FilterChange, RuntimeError> {
    let Some(handle) = FILTER.get() else {
        return Ok(FilterChange::NotInstalled);
    };
    if RUST_LOG_WINS.get().copied().unwrap_or(false) {
        return Ok(FilterChange::RustLogWins);
    }
    let filter = build_filter(None, directive)?;
    // Fails only when the subscriber is gone, i.e. never while the process logs.
    match handle.reload(filter) {
        Ok(()) => Ok(FilterChange::Applied),
        Err(_) => Ok(FilterChange::NotInstalled),
    }
}

/// The environment variable that turns on OTLP trace export.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// How log lines are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line, for containers and log shippers.
    #[default]
    Json,
    /// Multi-line, coloured output for a developer's terminal.
    Pretty,
}

/// What [`init`] needs to know.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// The service name, exported as the OTLP `service.name` resource attribute.
    pub service: String,
    /// The log line format.
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `"info"` or `"info,gekko_gateway=debug"`.
    /// `RUST_LOG`, when set and not empty, takes precedence.
    pub filter: String,
}

impl TelemetryConfig {
    /// The settings of `MONITORING_CONFIGURATIONS` for `service`.
    #[must_use]
    pub fn from_monitoring(service: &str, m: &gekko_config::Monitoring) -> Self {
        Self {
            service: service.to_owned(),
            format: match m.log_format {
                gekko_config::LogFormat::Json => LogFormat::Json,
                gekko_config::LogFormat::Pretty => LogFormat::Pretty,
            },
            filter: m.log_level.clone(),
        }
    }
}

/// Keeps the OTLP pipeline alive; flushes and shuts it down on [`shutdown`](Self::shutdown)
/// or on drop.
///
/// Hold it in `main` until the very end. Shutting down blocks for up to five seconds
/// while the batch processor exports what it still holds. The exporter's network I/O runs
/// on the Tokio runtime it was built in, so from async code prefer
/// [`shutdown_async`](Self::shutdown_async): on a current-thread runtime a blocking
/// [`shutdown`](Self::shutdown) (or a drop) on the runtime thread starves that I/O and the
/// flush can only time out.
#[derive(Debug)]
#[must_use = "dropping the guard shuts the trace exporter down immediately"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are being exported over OTLP.
    #[must_use]
    pub fn otlp_enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes buffered spans and shuts the exporter down.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::TracerShutdown`] if the flush failed or timed out; the spans still
    /// buffered are lost.
    pub fn shutdown(mut self) -> Result<(), RuntimeError> {
        match self.provider.take() {
            Some(provider) => provider.shutdown().map_err(RuntimeError::TracerShutdown),
            None => Ok(()),
        }
    }

    /// Like [`shutdown`](Self::shutdown), but runs the blocking flush on Tokio's blocking
    /// pool so the runtime stays free to drive the exporter's I/O, whatever its flavour.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::TracerShutdown`] as for [`shutdown`](Self::shutdown), also when the
    /// blocking task could not run to completion.
    pub async fn shutdown_async(mut self) -> Result<(), RuntimeError> {
        let Some(provider) = self.provider.take() else {
            return Ok(());
        };
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(result) => result.map_err(RuntimeError::TracerShutdown),
            Err(join) => Err(RuntimeError::TracerShutdown(
                opentelemetry_sdk::error::OTelSdkError::InternalFailure(join.to_string()),
            )),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            // The subscriber may be the only place this can go; it is still installed.
            tracing::warn!(error = %err, "tracer provider shutdown failed");
        }
    }
}

/// Installs the global tracing subscriber described by `cfg`.
///
/// Logs go to stdout. If `OTEL_EXPORTER_OTLP_ENDPOINT` is set and not empty, spans are
/// also exported to that collector over OTLP/gRPC with `service.name = cfg.service`, the
/// global OpenTelemetry tracer provider is set, and W3C trace-context propagation is
/// installed so services can continue each other's traces.
///
/// # Errors
///
/// - [`RuntimeError::LogFilter`] if the filter directive does not parse.
/// - [`RuntimeError::NoTokioRuntime`] if OTLP export is requested outside a Tokio runtime.
/// - [`RuntimeError::OtlpExporter`] if the exporter cannot be built.
/// - [`RuntimeError::SubscriberAlreadySet`] if a global subscriber already exists, for
///   example on a second call.
pub fn init(cfg: &TelemetryConfig) -> Result<TelemetryGuard, RuntimeError> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = build_filter(rust_log.as_deref(), &cfg.filter)?;
    let (filter, filter_handle) = reload::Layer::new(filter);

    let endpoint = std::env::var(OTLP_ENDPOINT_ENV).unwrap_or_default();
    let provider = if endpoint.trim().is_empty() {
        None
    } else {
        Some(build_provider(&cfg.service)?)
    };
    // Built before the subscriber is installed so that a failed install (a second call)
    // can shut it down again instead of leaking a background export thread.
    let guard = TelemetryGuard { provider };

    let otel_layer = guard.provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer(cfg.service.clone()))
    });
    // Two optional layers rather than a boxed one: `Option<Layer>` is itself a layer, and
    // the concrete types keep per-event dispatch static.
    let json_layer = (cfg.format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stdout)
    });
    let pretty_layer = (cfg.format == LogFormat::Pretty).then(|| {
        tracing_subscriber::fmt::layer()
            .pretty()
            .with_writer(std::io::stdout)
    });

    tracing_subscriber::registry()
        .with(filter)
        .with(json_layer)
        .with(pretty_layer)
        .with(otel_layer)
        .try_init()
        .map_err(RuntimeError::SubscriberAlreadySet)?;
    let _ = FILTER.set(filter_handle);
    let _ = RUST_LOG_WINS.set(rust_log.is_some_and(|v| !v.trim().is_empty()));

    if let Some(provider) = &guard.provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        tracing::info!(endpoint = %endpoint, service = %cfg.service, "OTLP trace export enabled");
    }
    Ok(guard)
}

/// Picks `RUST_LOG` over the configured directive when it is set and not blank.
fn build_filter(rust_log: Option<&str>, configured: &str) -> Result<EnvFilter, RuntimeError> {
    let directive = match rust_log {
        Some(env) if !env.trim().is_empty() => env,
        _ => configured,
    };
    EnvFilter::try_new(directive).map_err(|source| RuntimeError::LogFilter {
        directive: directive.to_owned(),
        source,
    })
}

/// Builds the OTLP/gRPC exporter behind a batch processor.
///
/// The exporter reads its endpoint, headers and timeout from the standard `OTEL_EXPORTER_OTLP_*`
/// variables itself, so a signal-specific `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is honoured.
fn build_provider(service: &str) -> Result<SdkTracerProvider, RuntimeError> {
    // tonic's channel spawns its connection worker on the current runtime; without one
    // the build would panic, so refuse up front instead.
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(RuntimeError::NoTokioRuntime);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(RuntimeError::OtlpExporter)?;
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_configured_filter() {
        assert!(build_filter(Some("debug"), "not a [valid directive").is_ok());
    }

    #[test]
    fn blank_rust_log_falls_back_to_configured_filter() {
        assert!(build_filter(Some("  "), "info").is_ok());
        assert!(build_filter(None, "info,gekko=debug").is_ok());
    }

    #[test]
    fn bad_directive_is_an_error_not_a_panic() {
        let err = build_filter(None, "info,[").unwrap_err();
        assert!(
            matches!(err, RuntimeError::LogFilter { ref directive, .. } if directive == "info,[")
        );
    }
}
