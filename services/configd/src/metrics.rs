//! configd's metrics: `gekko_config_version`, `gekko_config_reloads_total{outcome}` and
//! `gekko_config_restart_needed`.

/// Describes the metrics once, so `/metrics` carries their help text.
pub fn describe() {
    metrics::describe_gauge!(
        "gekko_config_version",
        "The number of the config version in force."
    );
    metrics::describe_counter!(
        "gekko_config_reloads_total",
        "Env file reloads by outcome: accepted, rejected (invalid, the old version stays) or unchanged."
    );
    metrics::describe_gauge!(
        "gekko_config_restart_needed",
        "1 when an accepted change since start needs the services to restart."
    );
}

pub(crate) fn version(v: u64) {
    #[allow(clippy::cast_precision_loss)] // version numbers stay far below 2^52
    metrics::gauge!("gekko_config_version").set(v as f64);
}

pub(crate) fn reload(outcome: &'static str) {
    metrics::counter!("gekko_config_reloads_total", "outcome" => outcome).increment(1);
}

pub(crate) fn restart_needed(yes: bool) {
    metrics::gauge!("gekko_config_restart_needed").set(if yes { 1.0 } else { 0.0 });
}
