//! The infrastructure checks: Redis (`INFO` and PING latency), Docker through bollard
//! (container state, health, restarts, OOM kills, and CPU, memory, network and block I/O
//! from its stats) and the host (memory and disk usage).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptions, StatsOptions};
use futures_util::StreamExt as _;

use crate::alerts::{Condition, Severity};
use crate::model::{Component, Replica, ServiceNode, Status};
use crate::settings::Thresholds;

/// `INFO` as `field → value`.
#[must_use]
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A Redis URL without its password: `redis://host:port/db`.
#[must_use]
pub fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "redis (unparsable URL)".to_owned(),
    }
}

/// Checks the Redis at `url`: `redis` with one replica (the server).
pub async fn redis(url: &str, timeout: Duration, t: &Thresholds) -> (ServiceNode, Vec<Condition>) {
    let address = redacted_url(url);
    let mut conditions = Vec::new();
    let probe = async {
        let client = redis::Client::open(url).map_err(|e| format!("bad URL: {e}"))?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("unreachable: {e}"))?;
        let started = Instant::now();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("PING failed: {e}"))?;
        let latency = started.elapsed();
        let info: String = redis::cmd("INFO")
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("INFO failed: {e}"))?;
        Ok::<_, String>((latency, parse_info(&info)))
    };
    let answered = tokio::time::timeout(timeout, probe).await;
    metrics::gauge!("gekko_healthd_redis_up").set(if matches!(answered, Ok(Ok(_))) {
        1.0
    } else {
        0.0
    });
    let components = match answered {
        Err(_) => vec![Component::with(
            "ping",
            Status::Down,
            format!("no answer within {} ms", timeout.as_millis()),
        )],
        Ok(Err(e)) => vec![Component::with("ping", Status::Down, e)],
        Ok(Ok((latency, info))) => {
            let get = |k: &str| info.get(k).cloned().unwrap_or_default();
            let ms = latency.as_secs_f64() * 1000.0;
            metrics::gauge!("gekko_healthd_redis_latency_seconds").set(latency.as_secs_f64());
            metrics::gauge!(
                "gekko_healthd_redis_info",
                "role" => get("role"),
                "version" => get("redis_version")
            )
            .set(1.0);
            metrics::gauge!("gekko_healthd_redis_connected_clients")
                .set(get("connected_clients").parse().unwrap_or(0.0));
            let mut out = Vec::new();
            let ping = if ms > t.redis_latency_ms {
                Component::with(
                    "ping",
                    Status::Warning,
                    format!("PING took {ms:.1} ms (threshold {} ms)", t.redis_latency_ms),
                )
            } else {
                Component::ok("ping")
            };
            out.push(ping.detail("latency_ms", format!("{ms:.2}")));
            out.push(
                Component::ok("info")
                    .detail("role", get("role"))
                    .detail("redis_version", get("redis_version"))
                    .detail("connected_clients", get("connected_clients")),
            );
            let aof_enabled = get("aof_enabled") == "1";
            let write = get("aof_last_write_status");
            let rewrite = get("aof_last_bgrewrite_status");
            let aof_bad = [&write, &rewrite]
                .iter()
                .any(|s| !s.is_empty() && s.as_str() != "ok");
            metrics::gauge!("gekko_healthd_redis_aof_enabled").set(if aof_enabled {
                1.0
            } else {
                0.0
            });
            metrics::gauge!("gekko_healthd_redis_aof_ok").set(if aof_bad { 0.0 } else { 1.0 });
            let aof = if aof_bad {
                conditions.push(Condition::new(
                    "redis_aof_error",
                    Severity::Critical,
                    "redis",
                    format!(
                        "Redis AOF is failing (last write {write}, last rewrite {rewrite}): acknowledged events may be lost"
                    ),
                ));
                Component::with(
                    "aof",
                    Status::Down,
                    format!("last write {write}, last rewrite {rewrite}"),
                )
            } else if !aof_enabled {
                Component::with(
                    "aof",
                    Status::Warning,
                    "appendonly is off: acknowledged events can be lost if Redis crashes",
                )
            } else {
                Component::ok("aof")
            };
            out.push(
                aof.detail("aof_enabled", get("aof_enabled"))
                    .detail("aof_last_write_status", write)
                    .detail("aof_last_bgrewrite_status", rewrite),
            );
            let used: f64 = get("used_memory").parse().unwrap_or(0.0);
            let used_mb = used / (1024.0 * 1024.0);
            metrics::gauge!("gekko_healthd_redis_used_memory_bytes").set(used);
            let memory = if t.redis_memory_mb > 0.0 && used_mb > t.redis_memory_mb {
                conditions.push(Condition::new(
                    "redis_memory",
                    Severity::Warning,
                    "redis",
                    format!(
                        "Redis uses {used_mb:.0} MiB (threshold {} MiB)",
                        t.redis_memory_mb
                    ),
                ));
                Component::with(
                    "memory",
                    Status::Warning,
                    format!(
                        "{used_mb:.0} MiB used (threshold {} MiB)",
                        t.redis_memory_mb
                    ),
                )
            } else {
                Component::ok("memory")
            };
            out.push(
                memory
                    .detail("used_memory", get("used_memory"))
                    .detail("used_memory_human", get("used_memory_human")),
            );
            out
        }
    };
    let replica = Replica {
        address,
        components,
    };
    if replica.status() == Status::Down && !conditions.iter().any(|c| c.kind == "redis_aof_error") {
        conditions.push(Condition::new(
            "service_down",
            Severity::Critical,
            "redis",
            format!("Redis is down: {}", replica.reason()),
        ));
    }
    (
        ServiceNode {
            name: "redis".to_owned(),
            required: true,
            replicas: vec![replica],
            discovery_error: None,
        },
        conditions,
    )
}

/// Restart counts seen per container, for the restart-loop alert.
#[derive(Debug, Default)]
pub struct RestartMemory {
    seen: BTreeMap<String, VecDeque<(Instant, i64)>>,
    /// The last restart count per container name, for `gekko_healthd_container_restarts_total`.
    last_by_name: BTreeMap<String, i64>,
}

impl RestartMemory {
    /// Records `count` for the container `name`; returns the restarts since the last
    /// poll. The first sight of a name counts none (healthd may start long after the
    /// container did), and a count that went down (the container was recreated under the
    /// same name) counts from 0.
    pub fn new_restarts(&mut self, name: &str, count: i64) -> u64 {
        let before = self.last_by_name.insert(name.to_owned(), count);
        let new = match before {
            None => 0,
            Some(b) if count >= b => count - b,
            Some(_) => count,
        };
        u64::try_from(new).unwrap_or(0)
    }

    /// Records `count` for `id`; returns how many restarts happened within `window`.
    pub fn restarts_within(&mut self, id: &str, count: i64, window: Duration) -> i64 {
        let now = Instant::now();
        let h = self.seen.entry(id.to_owned()).or_default();
        h.push_back((now, count));
        while h
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > window)
        {
            h.pop_front();
        }
        let oldest = h.front().map_or(count, |(_, c)| *c);
        (count - oldest).max(0)
    }
}

/// Checks Docker: `docker` with one replica per container (or one WARNING replica when
/// there is no daemon). Never required: a missing Docker is a warning, not a failure.
pub async fn docker(
    project: Option<&str>,
    timeout: Duration,
    t: &Thresholds,
    restarts: &mut RestartMemory,
) -> (ServiceNode, Vec<Condition>) {
    let mut node = ServiceNode {
        name: "docker".to_owned(),
        required: false,
        replicas: Vec::new(),
        discovery_error: None,
    };
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned());
    let absent = |why: String| Replica {
        address: host.clone(),
        components: vec![Component::with(
            "daemon",
            Status::Warning,
            format!("no Docker daemon ({why}); container checks are off"),
        )],
    };
    let docker = match Docker::connect_with_defaults() {
        Ok(d) => d,
        Err(e) => {
            metrics::gauge!("gekko_healthd_docker_up").set(0.0);
            node.replicas.push(absent(e.to_string()));
            return (node, Vec::new());
        }
    };
    let mut filters = std::collections::HashMap::new();
    if let Some(p) = project {
        filters.insert(
            "label".to_owned(),
            vec![format!("com.docker.compose.project={p}")],
        );
    }
    let listed = tokio::time::timeout(
        timeout,
        docker.list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..ListContainersOptions::default()
        })),
    )
    .await;
    metrics::gauge!("gekko_healthd_docker_up").set(if matches!(listed, Ok(Ok(_))) {
        1.0
    } else {
        0.0
    });
    let containers = match listed {
        Err(_) => {
            node.replicas.push(absent(format!(
                "no answer within {} ms",
                timeout.as_millis()
            )));
            return (node, Vec::new());
        }
        Ok(Err(e)) => {
            node.replicas.push(absent(e.to_string()));
            return (node, Vec::new());
        }
        Ok(Ok(c)) => c,
    };
    node.replicas.push(Replica {
        address: host.clone(),
        components: vec![Component::ok("daemon").detail("containers", containers.len())],
    });
    let mut conditions = Vec::new();
    let checks = containers.iter().filter_map(|c| c.id.clone()).map(|id| {
        let docker = docker.clone();
        async move {
            let inspect = tokio::time::timeout(timeout, docker.inspect_container(&id, None)).await;
            // stream=false with one_shot=false waits for a second sample, so the CPU
            // figure is a real delta.
            let stats = tokio::time::timeout(
                timeout + Duration::from_secs(2),
                docker
                    .stats(
                        &id,
                        Some(StatsOptions {
                            stream: false,
                            one_shot: false,
                        }),
                    )
                    .next(),
            )
            .await;
            (id, inspect, stats)
        }
    });
    let results = futures_util::future::join_all(checks).await;
    for (id, inspect, stats) in results {
        let Ok(Ok(info)) = inspect else {
            continue;
        };
        let name = info
            .name
            .clone()
            .unwrap_or_else(|| id.chars().take(12).collect())
            .trim_start_matches('/')
            .to_owned();
        let service = info
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get("com.docker.compose.service"))
            .cloned()
            .unwrap_or_default();
        let labels = [("container", name.clone()), ("service", service)];
        let state = info.state.clone().unwrap_or_default();
        let status_text = state
            .status
            .map_or_else(|| "unknown".to_owned(), |s| s.to_string());
        let running = state.running.unwrap_or(false);
        metrics::gauge!("gekko_healthd_container_running", &labels).set(if running {
            1.0
        } else {
            0.0
        });
        let mut components = Vec::new();
        components.push(if running {
            Component::ok("state").detail("status", &status_text)
        } else {
            Component::with(
                "state",
                Status::Down,
                format!(
                    "{status_text} (exit code {})",
                    state.exit_code.unwrap_or_default()
                ),
            )
            .detail("status", &status_text)
        });
        if let Some(h) = state.health.as_ref().and_then(|h| h.status) {
            let text = h.to_string();
            let level = match text.as_str() {
                "healthy" | "none" | "" => 0.0,
                "starting" => 1.0,
                _ => 2.0,
            };
            metrics::gauge!("gekko_healthd_container_health_status", &labels).set(level);
            components.push(match text.as_str() {
                "healthy" | "none" | "" => Component::ok("health").detail("status", &text),
                "starting" => {
                    Component::with("health", Status::Warning, "starting").detail("status", &text)
                }
                _ => {
                    conditions.push(Condition::new(
                        "container_unhealthy",
                        Severity::Warning,
                        format!("container/{name}"),
                        format!("container {name} is {text}"),
                    ));
                    Component::with("health", Status::Down, text.clone()).detail("status", &text)
                }
            });
        }
        let restart_count = info.restart_count.unwrap_or(0);
        #[allow(clippy::cast_precision_loss)] // restart counts are small
        metrics::gauge!("gekko_healthd_container_docker_restarts", &labels)
            .set(restart_count as f64);
        metrics::counter!("gekko_healthd_container_restarts_total", &labels)
            .increment(restarts.new_restarts(&name, restart_count));
        let recent =
            restarts.restarts_within(&id, restart_count, Duration::from_secs(t.restart_window_s));
        let loop_now = u64::try_from(recent).unwrap_or(0) >= t.restart_loop;
        if loop_now {
            conditions.push(Condition::new(
                "container_restart_loop",
                Severity::Critical,
                format!("container/{name}"),
                format!(
                    "container {name} restarted {recent} times within {} s (restart count {restart_count})",
                    t.restart_window_s
                ),
            ));
        }
        components.push(
            if loop_now {
                Component::with(
                    "restarts",
                    Status::Down,
                    format!(
                        "restart loop: {recent} restarts within {} s",
                        t.restart_window_s
                    ),
                )
            } else {
                Component::ok("restarts")
            }
            .detail("restart_count", restart_count),
        );
        let oom = state.oom_killed.unwrap_or(false);
        metrics::gauge!("gekko_healthd_container_oom_killed", &labels).set(if oom {
            1.0
        } else {
            0.0
        });
        if oom {
            conditions.push(Condition::new(
                "container_oom_killed",
                Severity::Warning,
                format!("container/{name}"),
                format!("container {name} was OOM-killed"),
            ));
        }
        components.push(
            if oom {
                Component::with("oom", Status::Warning, "OOM-killed")
            } else {
                Component::ok("oom")
            }
            .detail("oom_killed", oom),
        );
        if let Ok(Some(Ok(s))) = stats {
            components.push(resources(&name, &labels, &s, t, &mut conditions));
        }
        node.replicas.push(Replica {
            address: name,
            components,
        });
    }
    (node, conditions)
}

#[allow(clippy::cast_precision_loss)] // byte and tick counts: a ratio, not money
fn resources(
    name: &str,
    labels: &[(&'static str, String); 2],
    s: &bollard::models::ContainerStatsResponse,
    t: &Thresholds,
    conditions: &mut Vec<Condition>,
) -> Component {
    let cpu = s.cpu_stats.as_ref();
    let pre = s.precpu_stats.as_ref();
    let total = |c: Option<&bollard::models::ContainerCpuStats>| {
        c.and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let system = |c: Option<&bollard::models::ContainerCpuStats>| {
        c.and_then(|c| c.system_cpu_usage).unwrap_or(0)
    };
    let cpus = cpu.and_then(|c| c.online_cpus).unwrap_or(1).max(1);
    let cpu_delta = total(cpu).saturating_sub(total(pre)) as f64;
    let sys_delta = system(cpu).saturating_sub(system(pre)) as f64;
    let cpu_pct = if sys_delta > 0.0 {
        cpu_delta / sys_delta * f64::from(cpus) * 100.0
    } else {
        0.0
    };
    let mem = s.memory_stats.as_ref();
    let usage = mem.and_then(|m| m.usage).unwrap_or(0) as f64;
    let limit = mem.and_then(|m| m.limit).unwrap_or(0) as f64;
    let mem_pct = if limit > 0.0 {
        usage / limit * 100.0
    } else {
        0.0
    };
    let (rx, tx) = s.networks.as_ref().map_or((0, 0), |n| {
        n.values().fold((0u64, 0u64), |(r, t), v| {
            (r + v.rx_bytes.unwrap_or(0), t + v.tx_bytes.unwrap_or(0))
        })
    });
    let (read, write) = s
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref())
        .map_or((0, 0), |entries| {
            entries.iter().fold((0u64, 0u64), |(r, w), e| {
                match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    Some("read") => (r + e.value.unwrap_or(0), w),
                    Some("write") => (r, w + e.value.unwrap_or(0)),
                    _ => (r, w),
                }
            })
        });
    metrics::gauge!("gekko_healthd_container_cpu_ratio", labels).set(cpu_pct / 100.0);
    metrics::gauge!("gekko_healthd_container_memory_bytes", labels).set(usage);
    metrics::gauge!("gekko_healthd_container_memory_limit_bytes", labels).set(limit);
    metrics::gauge!("gekko_healthd_container_network_receive_bytes", labels).set(rx as f64);
    metrics::gauge!("gekko_healthd_container_network_transmit_bytes", labels).set(tx as f64);
    metrics::gauge!("gekko_healthd_container_block_read_bytes", labels).set(read as f64);
    metrics::gauge!("gekko_healthd_container_block_write_bytes", labels).set(write as f64);
    let mut problems = Vec::new();
    if cpu_pct > t.container_cpu_pct {
        problems.push(format!(
            "CPU {cpu_pct:.0}% (threshold {}%)",
            t.container_cpu_pct
        ));
        conditions.push(Condition::new(
            "container_cpu",
            Severity::Warning,
            format!("container/{name}"),
            format!(
                "container {name} uses {cpu_pct:.0}% CPU (threshold {}%)",
                t.container_cpu_pct
            ),
        ));
    }
    if mem_pct > t.container_memory_pct {
        problems.push(format!(
            "memory {mem_pct:.0}% of its limit (threshold {}%)",
            t.container_memory_pct
        ));
        conditions.push(Condition::new(
            "container_memory",
            Severity::Warning,
            format!("container/{name}"),
            format!(
                "container {name} uses {mem_pct:.0}% of its memory limit (threshold {}%)",
                t.container_memory_pct
            ),
        ));
    }
    let c = if problems.is_empty() {
        Component::ok("resources")
    } else {
        Component::with("resources", Status::Warning, problems.join("; "))
    };
    c.detail("cpu_percent", format!("{cpu_pct:.1}"))
        .detail("memory_bytes", usage)
        .detail("memory_limit_bytes", limit)
        .detail("net_rx_bytes", rx)
        .detail("net_tx_bytes", tx)
        .detail("block_read_bytes", read)
        .detail("block_write_bytes", write)
}

/// Checks the host: `host` with one replica, its memory and each checked mount.
#[allow(clippy::cast_precision_loss)] // byte counts as a percentage
pub fn host(disk_paths: &[String], t: &Thresholds) -> (ServiceNode, Vec<Condition>) {
    let mut conditions = Vec::new();
    let mut components = Vec::new();
    let (total, available) = match sysinfo::System::new() {
        Ok(mut sys) => {
            sys.refresh_memory();
            (sys.total_memory(), sys.available_memory())
        }
        Err(_) => (0, 0),
    };
    if total > 0 {
        metrics::gauge!("gekko_healthd_host_memory_total_bytes").set(total as f64);
        metrics::gauge!("gekko_healthd_host_memory_available_bytes").set(available as f64);
        let used_pct = (total.saturating_sub(available)) as f64 / total as f64 * 100.0;
        let c = if used_pct > t.host_memory_pct {
            conditions.push(Condition::new(
                "host_memory",
                Severity::Warning,
                "host/memory",
                format!(
                    "host memory {used_pct:.0}% used (threshold {}%)",
                    t.host_memory_pct
                ),
            ));
            Component::with(
                "memory",
                Status::Warning,
                format!("{used_pct:.0}% used (threshold {}%)", t.host_memory_pct),
            )
        } else {
            Component::ok("memory")
        };
        components.push(
            c.detail("total_bytes", total)
                .detail("available_bytes", available)
                .detail("used_percent", format!("{used_pct:.1}")),
        );
    } else {
        components.push(Component::with(
            "memory",
            Status::Warning,
            "the host's memory cannot be read",
        ));
    }
    let disks = sysinfo::Disks::new_with_refreshed_list();
    for path in disk_paths {
        let Ok(disks) = disks.as_ref() else {
            components.push(Component::with(
                format!("disk:{path}"),
                Status::Warning,
                "the host's file systems cannot be listed",
            ));
            continue;
        };
        let name = format!("disk:{path}");
        // The mount holding `path`: the longest mount point that is a prefix of it.
        let disk = disks
            .into_iter()
            .filter(|d| std::path::Path::new(path).starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len());
        let Some(d) = disk else {
            components.push(Component::with(
                name,
                Status::Warning,
                "no mounted file system holds this path",
            ));
            continue;
        };
        let total = d.total_space();
        let avail = d.available_space();
        if total == 0 {
            components.push(Component::ok(name).detail("total_bytes", 0));
            continue;
        }
        metrics::gauge!("gekko_healthd_host_disk_total_bytes", "path" => path.clone())
            .set(total as f64);
        metrics::gauge!("gekko_healthd_host_disk_available_bytes", "path" => path.clone())
            .set(avail as f64);
        let used_pct = total.saturating_sub(avail) as f64 / total as f64 * 100.0;
        let c = if used_pct > t.disk_pct {
            conditions.push(Condition::new(
                "disk_usage",
                Severity::Warning,
                format!("host/{name}"),
                format!("{path} is {used_pct:.0}% full (threshold {}%)", t.disk_pct),
            ));
            Component::with(
                name,
                Status::Warning,
                format!("{used_pct:.0}% full (threshold {}%)", t.disk_pct),
            )
        } else {
            Component::ok(name)
        };
        components.push(
            c.detail("mount_point", d.mount_point().display())
                .detail("total_bytes", total)
                .detail("available_bytes", avail)
                .detail("used_percent", format!("{used_pct:.1}")),
        );
    }
    (
        ServiceNode {
            name: "host".to_owned(),
            required: false,
            replicas: vec![Replica {
                address: sysinfo::System::host_name().unwrap_or_else(|_| "localhost".to_owned()),
                components,
            }],
            discovery_error: None,
        },
        conditions,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_urls() {
        let info = parse_info("# Replication\r\nrole:master\r\naof_last_write_status:err\r\n");
        assert_eq!(info["role"], "master");
        assert_eq!(info["aof_last_write_status"], "err");
        assert_eq!(
            redacted_url("redis://:hunter2@redis:6379/0"),
            "redis://:***@redis:6379/0"
        );
    }

    #[test]
    fn restart_loops_count_within_the_window() {
        let mut m = RestartMemory::default();
        let w = Duration::from_secs(600);
        assert_eq!(m.restarts_within("a", 5, w), 0);
        assert_eq!(m.restarts_within("a", 7, w), 2);
        assert_eq!(m.restarts_within("a", 9, w), 4);
    }

    #[test]
    fn new_restarts_count_from_the_first_sight_and_across_recreation() {
        let mut m = RestartMemory::default();
        assert_eq!(m.new_restarts("web", 5), 0, "the first sight counts none");
        assert_eq!(m.new_restarts("web", 5), 0);
        assert_eq!(m.new_restarts("web", 7), 2);
        assert_eq!(m.new_restarts("web", 1), 1, "recreated: counts from 0");
        assert_eq!(m.new_restarts("db", 3), 0);
    }
}
