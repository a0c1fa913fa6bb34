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
    describe_infra();
}

/// The Redis, Docker and host figures healthd collects (`infra`), as metrics.
fn describe_infra() {
    use metrics::{Unit, describe_counter, describe_gauge};
    describe_gauge!(
        "gekko_healthd_redis_up",
        "1 when the bus's Redis answered PING and INFO in the last poll, else 0."
    );
    describe_gauge!(
        "gekko_healthd_redis_info",
        "Always 1, labelled with the Redis role (master, slave) and version from INFO."
    );
    describe_gauge!(
        "gekko_healthd_redis_latency_seconds",
        Unit::Seconds,
        "How long the last PING to Redis took."
    );
    describe_gauge!(
        "gekko_healthd_redis_connected_clients",
        "Redis INFO connected_clients."
    );
    describe_gauge!(
        "gekko_healthd_redis_used_memory_bytes",
        Unit::Bytes,
        "Redis INFO used_memory."
    );
    describe_gauge!(
        "gekko_healthd_redis_aof_enabled",
        "1 when Redis has appendonly on (INFO aof_enabled), else 0."
    );
    describe_gauge!(
        "gekko_healthd_redis_aof_ok",
        "0 when Redis's last AOF write or rewrite failed (INFO aof_last_write_status, aof_last_bgrewrite_status), else 1."
    );
    describe_gauge!(
        "gekko_healthd_docker_up",
        "1 when the Docker daemon answered in the last poll, else 0 (absent with HEALTHD_DOCKER=off)."
    );
    describe_gauge!(
        "gekko_healthd_container_running",
        "Per container (name, compose service): 1 running, else 0."
    );
    describe_gauge!(
        "gekko_healthd_container_health_status",
        "Per container with a healthcheck: 0 healthy, 1 starting, 2 unhealthy."
    );
    describe_gauge!(
        "gekko_healthd_container_docker_restarts",
        "Per container: Docker's restart count (RestartCount; 0 again when the container is recreated)."
    );
    describe_counter!(
        "gekko_healthd_container_restarts_total",
        "Per container name: restarts healthd saw since it started (increases of Docker's restart count, recreation included)."
    );
    describe_gauge!(
        "gekko_healthd_container_oom_killed",
        "Per container: 1 when its last exit was an OOM kill, else 0."
    );
    describe_gauge!(
        "gekko_healthd_container_cpu_ratio",
        "Per container: CPU used between two Docker stats samples, in CPUs (1 = one full core)."
    );
    describe_gauge!(
        "gekko_healthd_container_memory_bytes",
        Unit::Bytes,
        "Per container: memory usage from Docker stats."
    );
    describe_gauge!(
        "gekko_healthd_container_memory_limit_bytes",
        Unit::Bytes,
        "Per container: the memory limit from Docker stats (the host's memory when unlimited)."
    );
    describe_gauge!(
        "gekko_healthd_container_network_receive_bytes",
        Unit::Bytes,
        "Per container: bytes received on every network since it started."
    );
    describe_gauge!(
        "gekko_healthd_container_network_transmit_bytes",
        Unit::Bytes,
        "Per container: bytes sent on every network since it started."
    );
    describe_gauge!(
        "gekko_healthd_container_block_read_bytes",
        Unit::Bytes,
        "Per container: block I/O bytes read since it started."
    );
    describe_gauge!(
        "gekko_healthd_container_block_write_bytes",
        Unit::Bytes,
        "Per container: block I/O bytes written since it started."
    );
    describe_gauge!(
        "gekko_healthd_host_memory_total_bytes",
        Unit::Bytes,
        "The host's memory."
    );
    describe_gauge!(
        "gekko_healthd_host_memory_available_bytes",
        Unit::Bytes,
        "The host's available memory."
    );
    describe_gauge!(
        "gekko_healthd_host_disk_total_bytes",
        Unit::Bytes,
        "Per HEALTHD_DISK_PATHS path: the size of the file system holding it."
    );
    describe_gauge!(
        "gekko_healthd_host_disk_available_bytes",
        Unit::Bytes,
        "Per HEALTHD_DISK_PATHS path: the space available on the file system holding it."
    );
}
