//! healthd's own metrics (every `gekko_healthd_*`).

/// Describes the metrics once, so `/metrics` carries their help text.
pub fn describe() {
    metrics::describe_gauge!(
        "gekko_healthd_ready",
        "1 when every required service is ready (the aggregate /readyz), else 0."
    );
    metrics::describe_gauge!(
        "gekko_healthd_service_status",
        "Per service of the tree: 0 ok, 1 warning, 2 down."
    );
    metrics::describe_gauge!(
        "gekko_healthd_replicas",
        "Per service: the replicas found in the last poll (DNS addresses, containers)."
    );
    metrics::describe_histogram!(
        "gekko_healthd_poll_seconds",
        metrics::Unit::Seconds,
        "How long one poll of every target, Redis, Docker and the host took."
    );
    metrics::describe_gauge!("gekko_healthd_open_alerts", "Alerts open now.");
    metrics::describe_counter!(
        "gekko_healthd_alert_events_total",
        "Alert events published, by event (firing, escalated, acknowledged, resolved) and kind."
    );
    metrics::describe_counter!(
        "gekko_healthd_delivery_failures_total",
        "Alert events that could not be delivered, by destination (stream, channel, webhook)."
    );
    metrics::describe_counter!(
        "gekko_healthd_alertmanager_alerts_total",
        "Alerts received on the Alertmanager webhook."
    );
    metrics::describe_counter!(
        "gekko_healthd_alertmanager_rejected_total",
        "Alertmanager webhook bodies that could not be read."
    );
}
