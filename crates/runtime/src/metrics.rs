//! The process-wide Prometheus recorder and the metrics every gekko process exports.
//!
//! The `metrics` facade has exactly one global recorder per process, so installing it is
//! made idempotent here: the first call installs, later calls (another component, or the
//! next test in the same test binary) get a clone of the same handle. The recorder is
//! rendered by the `/metrics` route in [`crate::http`] rather than by the exporter's own
//! HTTP listener, which keeps the exporter's hyper/TLS features out of the build.
//!
//! Metric names ending in `_seconds` get latency buckets from 50 µs to 10 s, which covers
//! both in-process hops and venue round trips; everything else uses summaries.

use std::sync::Mutex;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::RuntimeError;

/// Buckets, in seconds, for every histogram whose name ends in `_seconds`.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Gauge set to 1 with a `version` label; lets dashboards show what is deployed.
pub const BUILD_INFO: &str = "gekko_build_info";
/// Gauge: 1 when the process is ready (see [`crate::health::Readiness`]), else 0.
pub const READY: &str = "gekko_ready";
/// Gauge with a `component` label: 1 when that component is ready, else 0.
pub const COMPONENT_READY: &str = "gekko_component_ready";

/// How often histogram data is drained when nobody scrapes `/metrics`.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The installed handle, if any.
///
/// A `Mutex<Option<_>>` rather than a `OnceLock`: installing can fail, and a failed
/// attempt must leave the slot empty for the caller to see the error, which
/// `OnceLock::get_or_init` cannot express on stable Rust. The lock is held only while
/// installing or cloning the handle, never across an await.
static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the global Prometheus recorder, or returns the handle of the one this function
/// installed earlier.
///
/// On first install it also describes the common process metrics (see
/// [`describe_common`]) and starts a small background thread that runs the recorder's
/// upkeep every few seconds, so histogram samples cannot pile up in memory when nothing
/// scrapes. A thread rather than a Tokio task because this function may run before, or
/// outside, any runtime, and the upkeep must live exactly as long as the global recorder:
/// the whole process.
///
/// # Errors
///
/// [`RuntimeError::Prometheus`] if the recorder cannot be built or another global
/// `metrics` recorder was installed by someone else first.
pub fn install_prometheus() -> Result<PrometheusHandle, RuntimeError> {
    // A poisoned lock only means another thread panicked while holding it; the slot is
    // still either empty or a valid handle, so carry on with it.
    let mut slot = gekko_core::sync::lock(&HANDLE);
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
        .map_err(RuntimeError::Prometheus)?
        .install_recorder()
        .map_err(RuntimeError::Prometheus)?;
    *slot = Some(handle.clone());
    drop(slot);

    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("gekko-metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        });
    if let Err(err) = spawned {
        // Rendering also drains histograms, so a scraped process is still fine.
        tracing::warn!(error = %err, "could not start the metrics upkeep thread");
    }

    describe_common();
    Ok(handle)
}

/// Describes the process metrics this crate registers and sets
/// `gekko_build_info{version="…"}` to 1.
///
/// Descriptions go to whichever recorder is installed when this runs, so call it after
/// [`install_prometheus`] (which already calls it once). Calling it again is harmless.
pub fn describe_common() {
    ::metrics::describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label says which gekko build is running."
    );
    ::metrics::describe_gauge!(
        READY,
        "1 when every registered component of the process is ready, else 0."
    );
    ::metrics::describe_gauge!(
        COMPONENT_READY,
        "1 when the labelled component is ready, else 0."
    );
    ::metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_install_returns_the_same_recorder() {
        let first = install_prometheus().unwrap();
        let second = install_prometheus().unwrap();
        ::metrics::counter!("gekko_runtime_unit_test_total").increment(3);
        ::metrics::histogram!("gekko_runtime_unit_test_seconds").record(0.003);
        // Both handles read the one global recorder.
        assert!(first.render().contains("gekko_runtime_unit_test_total 3"));
        let rendered = second.render();
        assert!(
            rendered.contains("gekko_runtime_unit_test_total 3"),
            "{rendered}"
        );
        assert!(rendered.contains("gekko_build_info{version="), "{rendered}");
        assert!(
            rendered.contains("gekko_runtime_unit_test_seconds_bucket{le=\"0.005\"} 1"),
            "{rendered}"
        );
    }

    #[test]
    fn buckets_are_sorted() {
        assert!(SECONDS_BUCKETS.windows(2).all(|w| w[0] < w[1]));
    }
}
