//! `gekko check` and `gekko up`'s start-up report: one table of checks.
//!
//! One row per check, each `PASS`, `WARN` or `FAIL` with a detail, in the design's
//! start-up order: environment (config), Docker, Redis, every configured venue endpoint
//! (DNS, TCP, TLS handshake, clock offset), MCP and LLM connections, GPU, the host, and
//! the security posture. `gekko check` exits 1 on any `FAIL`. `gekko up` prints the same
//! table before it binds anything, stores it as its first audit entry, and stops (exit 69)
//! only when a check named in `CONTROLLER_SETTINGS required_checks` fails (a posture
//! finding marked required counts as required too); a missing Docker daemon or GPU is a
//! warning or a note, because gekko runs fine without them (in-process, on CPU).

use std::fmt;
use std::time::Duration;

use gekko_config::{ConfigErrors, Loaded};

use crate::exit::Exit;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Status {
    Pass,
    Warn,
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        })
    }
}

/// One row of the table.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Row {
    /// The row's name (`redis`, `venue binanceus tls`).
    pub check: String,
    /// The family `required_checks` names (`redis`, `venues`, `security`).
    pub family: &'static str,
    #[serde(serialize_with = "status_str")]
    pub status: Status,
    pub detail: String,
    /// A failure of this row stops `gekko up`.
    pub required: bool,
}

fn status_str<S: serde::Serializer>(s: &Status, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&s.to_string())
}

fn row(check: &'static str, status: Status, detail: impl Into<String>) -> Row {
    Row {
        check: check.to_owned(),
        family: check,
        status,
        detail: detail.into(),
        required: false,
    }
}

fn row_in(family: &'static str, check: String, status: Status, detail: impl Into<String>) -> Row {
    Row {
        check,
        family,
        status,
        detail: detail.into(),
        required: false,
    }
}

/// Runs every check, prints the table, and returns the exit code.
pub(crate) async fn run(config: Result<Loaded, ConfigErrors>) -> Exit {
    let config_failed = config.is_err();
    let (rows, notes) = collect(config.as_ref()).await;
    print!("{}", render(&rows));
    for n in &notes {
        println!("  {n}");
    }
    let worst = rows.iter().map(|r| r.status).max().unwrap_or(Status::Pass);
    println!("\n{}", summary(&rows));
    if config_failed {
        Exit::Config
    } else if worst == Status::Fail {
        Exit::CheckFailed
    } else {
        Exit::Ok
    }
}

/// `N checks: a pass, b warn, c fail`.
pub(crate) fn summary(rows: &[Row]) -> String {
    format!(
        "{} checks: {} pass, {} warn, {} fail",
        rows.len(),
        rows.iter().filter(|r| r.status == Status::Pass).count(),
        rows.iter().filter(|r| r.status == Status::Warn).count(),
        rows.iter().filter(|r| r.status == Status::Fail).count(),
    )
}

/// Every check, in start-up order, with the notes to print under the table.
pub(crate) async fn collect(config: Result<&Loaded, &ConfigErrors>) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let redis_url = match config {
        Ok(loaded) => {
            if loaded.warnings.is_empty() {
                rows.push(row("config", Status::Pass, "all variables valid"));
            } else {
                rows.push(row(
                    "config",
                    Status::Warn,
                    format!("valid, {} warnings (below)", loaded.warnings.len()),
                ));
                notes.extend(
                    loaded
                        .warnings
                        .iter()
                        .map(|w| format!("config warning: {w}")),
                );
            }
            loaded.config.redis_url.clone()
        }
        Err(errors) => {
            rows.push(row(
                "config",
                Status::Fail,
                format!("{} problems (below)", errors.problems.len()),
            ));
            notes.extend(
                errors
                    .problems
                    .iter()
                    .map(|p| format!("config problem: {p}")),
            );
            // Still probe Redis if the variable itself is usable.
            std::env::var("REDIS_URL").ok().filter(|s| !s.is_empty())
        }
    };
    rows.push(check_docker().await);
    let live: Vec<&str> = match config {
        Ok(loaded) => live_venues(&loaded.config),
        Err(_) => Vec::new(),
    };
    rows.push(check_redis(redis_url.as_deref(), &live).await);
    if let Ok(loaded) = config {
        rows.extend(crate::probe::venues(&loaded.config).await);
        rows.push(crate::mcp::check_row(&loaded.config));
        rows.push(crate::backup::check_row(&loaded.config));
    }
    match config {
        Ok(loaded) if !loaded.config.mcp_servers.is_empty() => {
            rows.extend(mcp_client_rows(&loaded.config.mcp_servers).await);
        }
        _ => rows.push(row(
            "mcp",
            Status::Pass,
            "no MCP server connections are configured",
        )),
    }
    match config {
        Ok(loaded) => rows.extend(crate::llm::check_rows(&loaded.config).await),
        Err(_) => rows.push(row(
            "llm",
            Status::Warn,
            "not checked: the configuration is invalid",
        )),
    }
    rows.push(check_accelerator());
    rows.extend(check_host());
    if let Ok(loaded) = config {
        rows.extend(security_rows(&loaded.config));
        let required = &loaded.config.controller.required_checks;
        for r in &mut rows {
            r.required |= required.iter().any(|c| c == r.family);
        }
    }
    (rows, notes)
}

/// One row per `MCP_SERVERS` entry, probed at once: connect, `initialize`, list the tools
/// (`ok: 3 tools`), each within the server's `init_timeout`. A required server that fails
/// fails its row (gekko up then starts but stays not ready until it connects); an
/// optional one warns.
async fn mcp_client_rows(servers: &[gekko_config::McpServer]) -> Vec<Row> {
    let results = futures::future::join_all(servers.iter().map(gekko_mcp_client::probe)).await;
    servers
        .iter()
        .zip(results)
        .map(|(server, result)| {
            let (status, detail) = match result {
                Ok(tools) => (
                    Status::Pass,
                    format!(
                        "ok: {} tool{} ({})",
                        tools.len(),
                        if tools.len() == 1 { "" } else { "s" },
                        server.describe()
                    ),
                ),
                Err(e) if server.required => (
                    Status::Fail,
                    format!("{e}; required: gekko stays not ready until it connects"),
                ),
                Err(e) => (Status::Warn, format!("{e}; optional")),
            };
            row_in("mcp", format!("mcp {}", server.name), status, detail)
        })
        .collect()
}

/// The security posture, from `gekko-security`, and where the audit key comes from.
fn security_rows(cfg: &gekko_config::GekkoConfig) -> Vec<Row> {
    let env_file = std::env::var_os("GEKKO_ENV_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let p = std::path::PathBuf::from(".env");
            p.exists().then_some(p)
        });
    let mut rows: Vec<Row> = gekko_security::posture(cfg, env_file.as_deref())
        .into_iter()
        .map(|f| {
            let status = match (f.ok, f.required) {
                (true, _) => Status::Pass,
                (false, true) => Status::Fail,
                (false, false) => Status::Warn,
            };
            Row {
                check: format!("security {}", f.check),
                family: "security",
                status,
                detail: f.detail,
                required: f.required,
            }
        })
        .collect();
    if cfg.audit_logging.enabled {
        let source = gekko_audit::key_source(&cfg.audit_logging);
        let (status, detail) = match &source {
            gekko_audit::KeySource::Inline => (
                Status::Pass,
                "audit key from AUDIT_LOGGING_SETTINGS key".to_owned(),
            ),
            gekko_audit::KeySource::File(p) => {
                (Status::Pass, format!("audit key from {}", p.display()))
            }
            gekko_audit::KeySource::Generated(p) => (
                if cfg_is_live(cfg) {
                    Status::Warn
                } else {
                    Status::Pass
                },
                format!(
                    "audit key generated by gekko at {}; set AUDIT_LOGGING_SETTINGS key_file to a key you keep apart from the data",
                    p.display()
                ),
            ),
        };
        rows.push(row_in(
            "security",
            "security audit-key".to_owned(),
            status,
            detail,
        ));
    } else {
        rows.push(row_in(
            "security",
            "security audit".to_owned(),
            Status::Warn,
            "AUDIT_LOGGING_SETTINGS enabled=false: no audit trail is written",
        ));
    }
    rows
}

fn cfg_is_live(cfg: &gekko_config::GekkoConfig) -> bool {
    gekko_config::VenueId::ALL
        .iter()
        .any(|v| !cfg.paper_mode(*v))
}

/// Renders rows as an aligned text table.
pub(crate) fn render(rows: &[Row]) -> String {
    let w = rows.iter().map(|r| r.check.len()).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:<w$}  {:<6}  {:<8}  DETAIL\n",
        "CHECK", "STATUS", "REQUIRED"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<w$}  {:<6}  {:<8}  {}\n",
            r.check,
            r.status.to_string(),
            if r.required { "yes" } else { "" },
            r.detail
        ));
    }
    out
}

/// A Redis Cluster (`REDIS_URL` lists several nodes): the first listed node that answers
/// must report `cluster_state:ok`. AOF is not required there: durable appends wait for a
/// replica (`WAIT 1`).
async fn check_redis_cluster(nodes: &[&str]) -> Row {
    let mut last = String::new();
    for node in nodes {
        let shown = gekko_bus::redis_bus_redact(node);
        let probe = async {
            let client = redis::Client::open(*node).map_err(|e| e.to_string())?;
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(
                info.lines()
                    .find_map(|l| l.strip_prefix("cluster_state:"))
                    .unwrap_or("?")
                    .trim()
                    .to_owned(),
            )
        };
        match tokio::time::timeout(Duration::from_secs(3), probe).await {
            Ok(Ok(state)) if state == "ok" => {
                return row(
                    "redis",
                    Status::Pass,
                    format!(
                        "Redis Cluster of {} listed nodes: {shown} reachable, cluster_state:ok",
                        nodes.len()
                    ),
                );
            }
            Ok(Ok(state)) => {
                return row(
                    "redis",
                    Status::Fail,
                    format!("Redis Cluster: {shown} reports cluster_state:{state}"),
                );
            }
            Ok(Err(e)) => last = format!("{shown}: {e}"),
            Err(_) => last = format!("{shown}: no answer within 3 s"),
        }
    }
    row(
        "redis",
        Status::Fail,
        format!(
            "Redis Cluster: none of the {} listed nodes answered (last: {last})",
            nodes.len()
        ),
    )
}

/// The venues that trade live (credentials configured), by name.
fn live_venues(cfg: &gekko_config::GekkoConfig) -> Vec<&'static str> {
    gekko_config::VenueId::ALL
        .iter()
        .filter(|v| !cfg.paper_mode(**v))
        .map(|v| v.as_str())
        .collect()
}

/// The `redis` row. Without `REDIS_URL` the bus is in-process: fine for paper, but with a
/// live venue everything that must outlive the process is then in memory, so it warns
/// (a warning, not a failure, even though `redis` is required by default: a live
/// single-process run without Redis is allowed, only not silently).
async fn check_redis(url: Option<&str>, live: &[&str]) -> Row {
    let Some(url) = url else {
        if !live.is_empty() {
            return row(
                "redis",
                Status::Warn,
                format!(
                    "REDIS_URL not set while {} {} live: the in-process bus keeps the daily \
                     notional, the kill switch and the audit trail in memory only, and none \
                     of them will survive a restart; set REDIS_URL for live trading",
                    live.join(", "),
                    if live.len() == 1 { "trades" } else { "trade" },
                ),
            );
        }
        return row(
            "redis",
            Status::Pass,
            "REDIS_URL not set: in-process bus will be used",
        );
    };
    let nodes = match gekko_bus::redis_node_urls(url) {
        Ok(nodes) => nodes,
        Err(e) => return row("redis", Status::Fail, e.to_string()),
    };
    if nodes.len() > 1 {
        return check_redis_cluster(&nodes).await;
    }
    let shown = gekko_bus::redis_bus_redact(url);
    let probe = async {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let aof: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("?")
            .trim()
            .to_owned();
        Ok::<_, String>((version, aof.get(1).cloned().unwrap_or_default()))
    };
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok((version, aof))) if aof == "yes" => row(
            "redis",
            Status::Pass,
            format!("{shown} reachable, redis {version}, appendonly on"),
        ),
        Ok(Ok((version, _))) => row(
            "redis",
            Status::Warn,
            format!(
                "{shown} reachable, redis {version}, but appendonly is off: \
                 acknowledged order events can be lost if Redis crashes"
            ),
        ),
        Ok(Err(e)) => row("redis", Status::Fail, format!("{shown} unreachable: {e}")),
        Err(_) => row(
            "redis",
            Status::Fail,
            format!("{shown} did not answer within 3 s"),
        ),
    }
}

async fn check_docker() -> Row {
    let probe = async {
        let docker = bollard::Docker::connect_with_defaults().map_err(|e| e.to_string())?;
        let v = docker.version().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(v.version.unwrap_or_else(|| "unknown".to_owned()))
    };
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok(v)) => row(
            "docker",
            Status::Pass,
            format!("daemon reachable, engine {v}"),
        ),
        Ok(Err(e)) => row(
            "docker",
            Status::Warn,
            format!("no Docker daemon ({e}); only needed for docker compose"),
        ),
        Err(_) => row(
            "docker",
            Status::Warn,
            "Docker daemon did not answer within 3 s",
        ),
    }
}

fn check_accelerator() -> Row {
    if cfg!(target_os = "macos") {
        return row(
            "accelerator",
            Status::Pass,
            "Apple Metal available (build inference with --features metal); CPU otherwise",
        );
    }
    if let Ok(v) = std::fs::read_to_string("/proc/driver/nvidia/version") {
        let first = v.lines().next().unwrap_or("").trim().to_owned();
        return row(
            "accelerator",
            Status::Pass,
            format!("NVIDIA driver: {first} (build inference with --features cuda)"),
        );
    }
    row(
        "accelerator",
        Status::Pass,
        "no CUDA or Metal device; inference falls back to CPU",
    )
}

fn check_host() -> Vec<Row> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let cpu = if cores >= 2 {
        row("cpu", Status::Pass, format!("{cores} cores"))
    } else {
        row(
            "cpu",
            Status::Warn,
            format!("{cores} core; 2 or more recommended"),
        )
    };

    let memory = match sysinfo::System::new() {
        Ok(mut sys) => {
            sys.refresh_memory();
            memory_row(sys.total_memory(), sys.available_memory())
        }
        Err(e) => row(
            "memory",
            Status::Warn,
            format!("cannot read memory figures: {e}"),
        ),
    };

    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let disk_row = match sysinfo::Disks::new_with_refreshed_list() {
        Ok(disks) => disk_row(&disks, &cwd),
        Err(e) => row(
            "disk",
            Status::Warn,
            format!("cannot list filesystems: {e}"),
        ),
    };
    vec![cpu, memory, disk_row]
}

fn gib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0 * 1024.0)
}

fn memory_row(total: u64, avail: u64) -> Row {
    let mem_detail = format!(
        "{:.1} GiB total, {:.1} GiB available",
        gib(total),
        gib(avail)
    );
    if avail >= 1 << 30 {
        row("memory", Status::Pass, mem_detail)
    } else if avail >= 256 << 20 {
        row(
            "memory",
            Status::Warn,
            format!("{mem_detail}; 1 GiB recommended"),
        )
    } else {
        row(
            "memory",
            Status::Fail,
            format!("{mem_detail}; at least 256 MiB needed"),
        )
    }
}

fn disk_row(disks: &sysinfo::Disks, cwd: &std::path::Path) -> Row {
    let disk = disks
        .into_iter()
        .filter(|d| cwd.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len());
    match disk {
        Some(d) => {
            let free = d.available_space();
            let detail = format!(
                "{:.1} GiB free on {} (holding {})",
                gib(free),
                d.mount_point().display(),
                cwd.display()
            );
            if free >= 1 << 30 {
                row("disk", Status::Pass, detail)
            } else if free >= 100 << 20 {
                row("disk", Status::Warn, format!("{detail}; 1 GiB recommended"))
            } else {
                row(
                    "disk",
                    Status::Fail,
                    format!("{detail}; at least 100 MiB needed"),
                )
            }
        }
        None => row(
            "disk",
            Status::Warn,
            format!("cannot find the filesystem of {}", cwd.display()),
        ),
    }
}
