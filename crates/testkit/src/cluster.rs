//! [`RedisCluster`]: a real local Redis Cluster for tests and benchmarks.
//!
//! `masters × (1 + replicas_per_master)` `redis-server --cluster-enabled yes` processes on
//! free loopback ports, joined with `redis-cli --cluster create`. Every process runs under
//! [`crate::reaped`], so none outlives the test binary, and all are SIGKILLed on drop.
//! Nodes keep no data on disk (`--save ""`, no AOF): durability in a cluster comes from
//! replication (`WAIT`), which is what the failover tests check.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The `redis-cli` binary: `$REDIS_CLI` if set, else from `PATH`.
fn redis_cli_bin() -> String {
    std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_owned())
}

/// `cluster-node-timeout` of test clusters: small, so that a replica is promoted about
/// two seconds after its master died.
const NODE_TIMEOUT_MS: u64 = 1000;

/// One node of a [`RedisCluster`].
#[derive(Debug)]
struct Node {
    port: u16,
    /// The reaper wrapper around `redis-server`.
    child: Option<Child>,
    /// The `redis-server` process id (from `INFO server`), for SIGKILL.
    pid: Option<u32>,
}

/// A running local Redis Cluster owned by one test. Everything is killed on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
    masters: usize,
    replicas_per_master: usize,
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas_per_master` replicas each, creates the
    /// cluster and waits until every node reports `cluster_state:ok` and every master has
    /// its replicas attached.
    ///
    /// # Panics
    /// With an actionable message when the nodes or the cluster cannot be started: a test
    /// that needs a cluster fails loudly, never skips.
    #[must_use]
    pub fn start(masters: usize, replicas_per_master: usize) -> Self {
        match Self::try_start(masters, replicas_per_master) {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot start a local Redis Cluster for this test: {e}\n\
                 install redis-server and redis-tools with `scripts/test.sh` \
                 (or `apt-get install redis-server redis-tools`), or point \
                 $REDIS_SERVER / $REDIS_CLI at the binaries"
            ),
        }
    }

    /// Like [`RedisCluster::start`] but returns the error instead of panicking.
    ///
    /// # Errors
    /// A description of what failed: a node that would not start, `redis-cli --cluster
    /// create` failing, or the cluster not becoming healthy within 30 s.
    pub fn try_start(masters: usize, replicas_per_master: usize) -> Result<Self, String> {
        if masters < 3 {
            return Err(format!(
                "Redis Cluster needs at least 3 masters, {masters} asked for"
            ));
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gekko-redis-cluster-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
            masters,
            replicas_per_master,
        };
        let total = masters * (1 + replicas_per_master);
        for _ in 0..total {
            let port = cluster.pick_port()?;
            let mut node = Node {
                port,
                child: None,
                pid: None,
            };
            cluster.spawn(&mut node)?;
            cluster.nodes.push(node);
        }
        let mut create = Command::new(redis_cli_bin());
        create.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        create
            .arg("--cluster-replicas")
            .arg(replicas_per_master.to_string())
            .arg("--cluster-yes");
        let out = run_with_timeout(&mut create, Duration::from_secs(60))?;
        if !out.status.success() {
            return Err(format!(
                "`redis-cli --cluster create` failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        cluster.wait_healthy(Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// A port `p` in 20000..30000 with both `p` and the cluster bus port `p + 10000` free.
    /// Ports are handed out in sequence from one per-process random start, so clusters
    /// started concurrently by one test binary never pick the same ports.
    fn pick_port(&self) -> Result<u16, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let seed = *SEED.get_or_init(|| {
            u64::from(std::process::id()).wrapping_mul(7919)
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::from(d.subsec_nanos()))
        });
        for _ in 0..200 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let offset = seed.wrapping_add(n) % 10_000;
            let port = 20_000 + u16::try_from(offset).unwrap_or(0);
            let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
            if free(port) && free(port + 10_000) {
                return Ok(port);
            }
        }
        Err("no free port pair (p, p+10000) found in 20000..40000".to_owned())
    }

    fn spawn(&self, node: &mut Node) -> Result<(), String> {
        let port = node.port.to_string();
        let data = self.dir.join(&port);
        std::fs::create_dir_all(&data).map_err(|e| format!("create {}: {e}", data.display()))?;
        let mut cmd = Command::new(crate::redis_server_bin());
        cmd.args([
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &self
                .dir
                .join(format!("nodes-{port}.conf"))
                .to_string_lossy(),
            "--cluster-node-timeout",
            &NODE_TIMEOUT_MS.to_string(),
            "--dir",
            &data.to_string_lossy(),
            "--save",
            "",
            "--appendonly",
            "no",
            // A restarted node re-syncs from its new master at once, without writing an
            // RDB file first or waiting the default 5 s for more replicas.
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
            "--protected-mode",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            &self.dir.join(format!("{port}.log")).to_string_lossy(),
        ]);
        let child = crate::reaped(&cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn `{}`: {e}", crate::redis_server_bin()))?;
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = node.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "redis-server on port {port} exited at start-up with {status} (log: {})",
                    self.dir.join(format!("{port}.log")).display()
                ));
            }
            if crate::ping(node.port) {
                node.pid =
                    info_field(node.port, "server", "process_id").and_then(|p| p.parse().ok());
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "redis-server on port {port} did not answer PING within 10 s"
        ))
    }

    /// The node URLs, `redis://127.0.0.1:PORT/` each, masters and replicas alike.
    #[must_use]
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}/", n.port))
            .collect()
    }

    /// The URLs joined with commas: the `REDIS_URL` of a cluster.
    #[must_use]
    pub fn redis_url(&self) -> String {
        self.urls().join(",")
    }

    /// Ports of every node that is running now.
    #[must_use]
    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// Ports of the nodes that are masters owning slots now, in slot order.
    ///
    /// # Errors
    /// When no live node answers `CLUSTER NODES`.
    pub fn master_ports(&self) -> Result<Vec<u16>, String> {
        let mut masters: Vec<(u16, u16)> = self
            .cluster_nodes()?
            .into_iter()
            .filter(|n| n.master && !n.failed && !n.slots.is_empty())
            .map(|n| (n.slots[0].0, n.port))
            .collect();
        masters.sort_unstable();
        Ok(masters.into_iter().map(|(_, p)| p).collect())
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`).
    ///
    /// # Errors
    /// When no live node answers.
    pub fn slot_of(&self, key: &str) -> Result<u16, String> {
        let port = self.any_live()?;
        cli(port, &["CLUSTER", "KEYSLOT", key])?
            .trim()
            .parse()
            .map_err(|e| format!("CLUSTER KEYSLOT {key}: {e}"))
    }

    /// The port of the live master that owns `key`'s slot.
    ///
    /// # Errors
    /// When no live master owns it (the cluster is failing over) or no node answers.
    pub fn master_of(&self, key: &str) -> Result<u16, String> {
        let slot = self.slot_of(key)?;
        self.cluster_nodes()?
            .into_iter()
            .find(|n| {
                n.master && !n.failed && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
            })
            .map(|n| n.port)
            .ok_or_else(|| format!("no live master owns slot {slot} of {key}"))
    }

    /// SIGKILLs the master that owns `key`'s slot (no clean shutdown) and returns its port.
    /// Its replica is promoted by the cluster after `cluster-node-timeout` (1 s).
    ///
    /// # Panics
    /// When the owner cannot be found.
    pub fn kill_master_of(&mut self, key: &str) -> u16 {
        let port = self
            .master_of(key)
            .unwrap_or_else(|e| panic!("kill_master_of({key}): {e}"));
        self.kill(port);
        port
    }

    /// SIGKILLs the node on `port`. Unknown or stopped ports are ignored.
    pub fn kill(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == port) {
            stop(node);
        }
    }

    /// Starts the node on `port` again with its cluster config file, so it rejoins the
    /// cluster (a killed master comes back as a replica of the one promoted in its place).
    ///
    /// # Errors
    /// When `port` is no node of this cluster or it will not start.
    pub fn restart(&mut self, port: u16) -> Result<(), String> {
        let idx = self
            .nodes
            .iter()
            .position(|n| n.port == port)
            .ok_or_else(|| format!("port {port} is no node of this cluster"))?;
        let mut node = std::mem::replace(
            &mut self.nodes[idx],
            Node {
                port,
                child: None,
                pid: None,
            },
        );
        stop(&mut node);
        let r = self.spawn(&mut node);
        self.nodes[idx] = node;
        r
    }

    /// Waits until every live node reports `cluster_state:ok`, every slot has a live
    /// master, and each master has `replicas_per_master` replicas online, as far as live
    /// nodes allow.
    ///
    /// # Errors
    /// What was still missing when `timeout` ran out.
    pub fn wait_healthy(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let problem = self.health_problem();
            match problem {
                None => return Ok(()),
                Some(p) if Instant::now() >= deadline => {
                    return Err(format!("cluster not healthy after {timeout:?}: {p}"));
                }
                Some(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Waits until `cluster_state:ok` on every live node and every slot has a live master
    /// (replicas not required): what a writer needs after a failover.
    ///
    /// # Errors
    /// What was still missing when `timeout` ran out.
    pub fn wait_serving(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let problem = self.serving_problem();
            match problem {
                None => return Ok(()),
                Some(p) if Instant::now() >= deadline => {
                    return Err(format!("cluster not serving after {timeout:?}: {p}"));
                }
                Some(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn serving_problem(&self) -> Option<String> {
        for port in self.live_ports() {
            match info_field_cluster(port) {
                Ok(state) if state == "ok" => {}
                Ok(state) => return Some(format!("node {port}: cluster_state:{state}")),
                Err(e) => return Some(e),
            }
        }
        let nodes = match self.cluster_nodes() {
            Ok(n) => n,
            Err(e) => return Some(e),
        };
        let covered: usize = nodes
            .iter()
            .filter(|n| n.master && !n.failed)
            .flat_map(|n| n.slots.iter())
            .map(|&(a, b)| usize::from(b - a) + 1)
            .sum();
        (covered != 16_384).then(|| format!("{covered} of 16384 slots have a live master"))
    }

    fn health_problem(&self) -> Option<String> {
        if let Some(p) = self.serving_problem() {
            return Some(p);
        }
        let live = self.live_ports().len();
        let wanted = self
            .replicas_per_master
            .min(live.saturating_sub(self.masters) / self.masters);
        let masters = match self.master_ports() {
            Ok(m) => m,
            Err(e) => return Some(e),
        };
        if masters.len() != self.masters {
            return Some(format!(
                "{} masters own slots, {} expected",
                masters.len(),
                self.masters
            ));
        }
        for port in masters {
            let online = cli(port, &["INFO", "replication"])
                .map(|s| s.matches("state=online").count())
                .unwrap_or(0);
            if online < wanted {
                return Some(format!(
                    "master {port} has {online} replicas online, {wanted} expected"
                ));
            }
        }
        None
    }

    fn any_live(&self) -> Result<u16, String> {
        self.live_ports()
            .into_iter()
            .find(|&p| crate::ping(p))
            .ok_or_else(|| "no live cluster node answers PING".to_owned())
    }

    fn cluster_nodes(&self) -> Result<Vec<NodeLine>, String> {
        let mut last = String::new();
        for port in self.live_ports() {
            match cli(port, &["CLUSTER", "NODES"]) {
                Ok(text) => return Ok(text.lines().filter_map(NodeLine::parse).collect()),
                Err(e) => last = e,
            }
        }
        Err(format!("no live node answered CLUSTER NODES: {last}"))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            stop(node);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SIGKILLs the node's `redis-server` and reaps its wrapper.
fn stop(node: &mut Node) {
    if let Some(pid) = node.pid.take() {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    if let Some(mut child) = node.child.take() {
        // Closing the wrapper's stdin makes it stop the server if the kill above missed.
        drop(child.stdin.take());
        let _ = child.wait();
    }
}

/// One line of `CLUSTER NODES`.
#[derive(Debug)]
struct NodeLine {
    port: u16,
    master: bool,
    failed: bool,
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    /// `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`
    fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            return None;
        }
        let addr = f[1].split('@').next()?;
        let port = addr.rsplit(':').next()?.parse().ok()?;
        let flags = f[2];
        let slots = f[8..]
            .iter()
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| match s.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => s.parse().ok().map(|a| (a, a)),
            })
            .collect();
        Some(Self {
            port,
            master: flags.contains("master"),
            failed: flags.contains("fail") || f[7] != "connected",
            slots,
        })
    }
}

/// Runs `cmd` to completion, killing it after `timeout` (`redis-cli --cluster create`
/// waits forever for a join that cannot happen).
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<std::process::Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run `{}`: {e}", cmd.get_program().to_string_lossy()))?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let out = child.wait_with_output().map_err(|e| e.to_string())?;
                return Err(format!(
                    "`{}` did not finish within {timeout:?}: {}",
                    cmd.get_program().to_string_lossy(),
                    String::from_utf8_lossy(&out.stdout)
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    child.wait_with_output().map_err(|e| e.to_string())
}

/// Runs `redis-cli -p PORT ARGS...` and returns its output.
fn cli(port: u16, args: &[&str]) -> Result<String, String> {
    let out = Command::new(redis_cli_bin())
        .arg("-h")
        .arg("127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run `{}`: {e}", redis_cli_bin()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || text.starts_with("ERR") || text.starts_with("Could not connect") {
        return Err(format!(
            "redis-cli -p {port} {}: {}{}",
            args.join(" "),
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(text)
}

fn info_field(port: u16, section: &str, field: &str) -> Option<String> {
    let text = cli(port, &["INFO", section]).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("{field}:"))
            .map(|v| v.trim().to_owned())
    })
}

fn info_field_cluster(port: u16) -> Result<String, String> {
    let text = cli(port, &["CLUSTER", "INFO"])?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("cluster_state:")
                .map(|v| v.trim().to_owned())
        })
        .ok_or_else(|| format!("node {port}: no cluster_state in CLUSTER INFO"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes_lines() {
        let m = NodeLine::parse(
            "07c3 127.0.0.1:30004@40004 myself,master - 0 0 1 connected 0-5460 7000 [93->-e7d]",
        )
        .unwrap();
        assert_eq!(m.port, 30004);
        assert!(m.master && !m.failed);
        assert_eq!(m.slots, vec![(0, 5460), (7000, 7000)]);
        let r = NodeLine::parse("67ed 127.0.0.1:30002@40002 slave,fail 07c3 0 0 2 disconnected")
            .unwrap();
        assert!(!r.master && r.failed && r.slots.is_empty());
    }

    #[test]
    fn cluster_starts_and_fails_over() {
        let mut c = RedisCluster::start(3, 1);
        assert_eq!(c.urls().len(), 6);
        assert_eq!(c.master_ports().unwrap().len(), 3);
        let killed = c.kill_master_of("gekko:{orders:x}");
        c.wait_serving(Duration::from_secs(20)).unwrap();
        let promoted = c.master_of("gekko:{orders:x}").unwrap();
        assert_ne!(promoted, killed, "the replica took over the slot");
        c.restart(killed).unwrap();
        c.wait_healthy(Duration::from_secs(30)).unwrap();
        assert_eq!(c.master_of("gekko:{orders:x}").unwrap(), promoted);
    }
}
