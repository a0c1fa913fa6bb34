//! The Redis implementation of the bus: streams, consumer groups and pub/sub.
//!
//! Connections, and why there are several kinds:
//! - **Writes and short commands** go through a deadpool-redis pool of multiplexed
//!   connections with a short response timeout.
//! - **Blocking reads** (`XREADGROUP`/`XREAD ... BLOCK`) each get a connection of their
//!   own, owned by the reader, with a response timeout longer than the longest block.
//!   Redis serves one connection's commands in order, so a blocking read on a shared
//!   connection would stall every other command queued behind it.
//! - **Pub/sub** uses a dedicated RESP2 pub/sub connection per subscription, re-established
//!   and re-subscribed by a background task after a disconnect.
//!
//! - **Redis Cluster** (`REDIS_URL` is a comma-separated list of node URLs): one
//!   cluster-aware [`ClusterConnection`] carries writes and short commands. It is
//!   multiplexed (one socket per node, concurrent requests pipelined on it, following
//!   `MOVED`/`ASK` redirects and refreshing the slot map), so a pool in front of it
//!   would only add sockets; blocking readers again get a cluster connection of their
//!   own. Pub/sub is sharded (`SPUBLISH`/`SSUBSCRIBE`, RESP3 push messages, re-subscribed
//!   by redis-rs after a failover). Durable appends are followed by `WAIT` on the same
//!   node connection and fail unless enough replicas acknowledged them in time
//!   ([`RedisBusOptions::replicas_to_ack`]).
//!
//! Losing Redis never crashes the caller. A health task pings the server and flips
//! [`Bus::is_ready`]; appends retry with exponential backoff and jitter until a write
//! deadline, and only report success once Redis replied. With Redis running
//! `appendonly yes` + `appendfsync always`, an acknowledged append survives a crash.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use deadpool_redis::{Manager, Pool, Runtime};
use futures_util::StreamExt as _;
use gekko_core::backoff::{Backoff, BackoffConfig, Jitter};
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, Value};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::{
    Bus, BusError, Delivery, GroupReader, Retention, StartFrom, StreamSpec, Subscription,
    TailReader,
};

/// The field every entry's payload is stored under.
const FIELD: &str = "d";
/// Longest block a reader will ask Redis for; longer requests are clamped so that the
/// reader's connection timeout can stay finite and a dead server is noticed.
const MAX_BLOCK: Duration = Duration::from_secs(30);

/// Tuning for [`RedisBus`].
#[derive(Debug, Clone)]
pub struct RedisBusOptions {
    /// How long an append keeps retrying while Redis is unreachable before it fails.
    pub write_deadline: Duration,
    /// How often the health task pings Redis.
    pub health_interval: Duration,
    /// Pool size for writes and short commands.
    pub pool_size: usize,
    /// Upper bound of the reconnect backoff.
    pub max_backoff: Duration,
    /// Response timeout for short commands.
    pub command_timeout: Duration,
    /// Cluster mode only: how many replicas must acknowledge a durable append (`WAIT n`)
    /// before it counts as done. 0 turns `WAIT` off (a cluster without replicas).
    pub replicas_to_ack: u32,
    /// Cluster mode only: how long `WAIT` waits for those replicas. An append not
    /// acknowledged in time is an error ([`BusError::NotReplicated`]); it did reach the
    /// master, so a retry may duplicate it (payloads carry ids for de-duplication).
    pub replica_ack_timeout: Duration,
}

impl Default for RedisBusOptions {
    fn default() -> Self {
        Self {
            write_deadline: Duration::from_secs(10),
            health_interval: Duration::from_millis(500),
            pool_size: 16,
            max_backoff: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            replicas_to_ack: 1,
            replica_ack_timeout: Duration::from_secs(1),
        }
    }
}

/// Where connections come from: one server, or a cluster.
#[derive(Clone)]
enum Source {
    Single(redis::Client),
    Cluster {
        client: Box<ClusterClient>,
        /// The node URLs, for the extra clients sharded pub/sub needs.
        urls: Vec<String>,
    },
}

impl Source {
    /// A connection of its own for a blocking reader, with a response timeout longer
    /// than the longest block.
    async fn dedicated(&self) -> Result<Conn, BusError> {
        let timeout = MAX_BLOCK + Duration::from_secs(5);
        match self {
            Source::Single(client) => {
                let cfg = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_response_timeout(Some(timeout));
                client
                    .get_multiplexed_async_connection_with_config(&cfg)
                    .await
                    .map(Conn::Single)
                    .map_err(|e| BusError::Unavailable(format!("redis connect: {e}")))
            }
            Source::Cluster { client, .. } => {
                let cfg = ClusterConfig::new()
                    .set_connection_timeout(Duration::from_secs(1))
                    .set_response_timeout(timeout);
                client
                    .get_async_connection_with_config(cfg)
                    .await
                    .map(|c| Conn::Cluster(Box::new(c)))
                    .map_err(|e| BusError::Unavailable(format!("redis cluster connect: {e}")))
            }
        }
    }
}

/// Any of the bus's connections; commands and pipelines run on each alike.
enum Conn {
    Single(MultiplexedConnection),
    Manager(ConnectionManager),
    Pooled(deadpool_redis::Connection),
    Cluster(Box<ClusterConnection>),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Manager(c) => c.req_packed_command(cmd),
            Conn::Pooled(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Pooled(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Manager(c) => c.get_db(),
            Conn::Pooled(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The shared connections for writes and short commands.
#[derive(Clone)]
enum Shared {
    /// Hot write path: one multiplexed, auto-reconnecting connection. Concurrent appends
    /// are pipelined on it by redis-rs, and unlike a pool checkout there is no health
    /// round trip (deadpool-redis pings on every recycle) in front of each write. Short
    /// commands go through the pool.
    Single {
        writer: ConnectionManager,
        pool: Pool,
    },
    /// One multiplexed cluster connection for both (see the module docs).
    Cluster(ClusterConnection),
}

impl Shared {
    fn writer(&self) -> Conn {
        match self {
            Shared::Single { writer, .. } => Conn::Manager(writer.clone()),
            Shared::Cluster(c) => Conn::Cluster(Box::new(c.clone())),
        }
    }

    async fn short(&self) -> Result<Conn, BusError> {
        match self {
            Shared::Single { pool, .. } => pool
                .get()
                .await
                .map(Conn::Pooled)
                .map_err(|e| BusError::Unavailable(format!("redis pool: {e}"))),
            Shared::Cluster(c) => Ok(Conn::Cluster(Box::new(c.clone()))),
        }
    }

    fn is_cluster(&self) -> bool {
        matches!(self, Shared::Cluster(_))
    }
}

/// The Redis [`Bus`].
pub struct RedisBus {
    source: Source,
    shared: Shared,
    ready: Arc<AtomicBool>,
    opts: RedisBusOptions,
    redacted_url: String,
    _health: Arc<DropGuard>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("url", &self.redacted_url)
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// `redis://user:secret@host/` becomes `redis://user:***@host/`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split_once(':').map_or("", |(u, _)| u);
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The node URLs of a `REDIS_URL`: one for a single server, several (comma-separated)
/// for a Redis Cluster. Blank items are an error, so is an empty list.
///
/// # Errors
/// [`BusError::Invalid`] naming the problem.
pub fn node_urls(url: &str) -> Result<Vec<&str>, BusError> {
    let urls: Vec<&str> = url.split(',').map(str::trim).collect();
    if urls.iter().any(|u| u.is_empty()) {
        return Err(BusError::Invalid(format!(
            "REDIS_URL {:?} has an empty item; a cluster is a comma-separated list of redis:// node URLs",
            redact_url(url)
        )));
    }
    Ok(urls)
}

impl RedisBus {
    /// Opens a bus on `url`: one `redis://` URL for a single server, a comma-separated
    /// list of node URLs for a Redis Cluster. Does not require the server to be up: the
    /// bus starts not-ready and a background task keeps trying.
    ///
    /// # Errors
    /// [`BusError::Redis`] for a malformed URL, [`BusError::Invalid`] if the pool cannot
    /// be built.
    pub async fn connect(url: &str, opts: RedisBusOptions) -> Result<Self, BusError> {
        let urls = node_urls(url)?;
        if urls.len() > 1 {
            return Self::connect_cluster(&urls, opts).await;
        }
        let client = redis::Client::open(url)?;
        let conn_cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(opts.command_timeout));
        let manager = Manager::new_with_config(url, conn_cfg)?;
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(opts.command_timeout))
            .create_timeout(Some(Duration::from_secs(1)))
            .recycle_timeout(Some(Duration::from_secs(1)))
            .build()
            .map_err(|e| BusError::Invalid(format!("redis pool: {e}")))?;
        let writer_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(opts.command_timeout))
            .set_number_of_retries(1)
            .set_max_delay(opts.max_backoff);
        // `new_lazy` connects on first use, so a bus can be created while Redis is down.
        let writer = ConnectionManager::new_lazy_with_config(client.clone(), writer_cfg)?;
        Ok(Self::start(
            Source::Single(client),
            Shared::Single { writer, pool },
            opts,
            redact_url(url),
        )
        .await)
    }

    /// The cluster side of [`RedisBus::connect`].
    async fn connect_cluster(urls: &[&str], opts: RedisBusOptions) -> Result<Self, BusError> {
        let client = ClusterClientBuilder::new(urls.to_vec())
            .connection_timeout(Duration::from_secs(1))
            .response_timeout(opts.command_timeout)
            .build()?;
        // Pending: connects in the background, so a bus can be created while the cluster
        // is down, like the single-node bus.
        let cfg = ClusterConfig::new()
            .set_connection_timeout(Duration::from_secs(1))
            .set_response_timeout(opts.command_timeout);
        let conn = client.get_pending_async_connection_with_config(cfg);
        let redacted = urls
            .iter()
            .map(|u| redact_url(u))
            .collect::<Vec<_>>()
            .join(",");
        let source = Source::Cluster {
            client: Box::new(client),
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
        };
        Ok(Self::start(source, Shared::Cluster(conn), opts, redacted).await)
    }

    async fn start(source: Source, shared: Shared, opts: RedisBusOptions, url: String) -> Self {
        let ready = Arc::new(AtomicBool::new(false));
        let cancel = CancellationToken::new();
        // First probe inline so a bus on a live server is ready when `connect` returns.
        let up = tokio::time::timeout(opts.command_timeout, ping(&shared))
            .await
            .is_ok_and(|r| r.is_ok());
        set_ready(&ready, up, &url);
        tokio::spawn(health_loop(
            shared.clone(),
            ready.clone(),
            opts.clone(),
            url.clone(),
            cancel.clone(),
        ));
        Self {
            source,
            shared,
            ready,
            opts,
            redacted_url: url,
            _health: Arc::new(cancel.drop_guard()),
        }
    }

    /// Whether this bus runs on a Redis Cluster.
    #[must_use]
    pub fn is_cluster(&self) -> bool {
        self.shared.is_cluster()
    }

    async fn conn(&self) -> Result<Conn, BusError> {
        self.shared.short().await
    }

    /// Runs `op` on a pooled connection, retrying retryable failures with backoff until
    /// the write deadline.
    async fn with_retry<T, F>(&self, what: &str, mut op: F) -> Result<T, BusError>
    where
        F: FnMut(Conn) -> futures_util::future::BoxFuture<'static, Result<T, BusError>> + Send,
        T: Send,
    {
        let deadline = tokio::time::Instant::now() + self.opts.write_deadline;
        let mut backoff = backoff(self.opts.max_backoff);
        loop {
            let err = match op(self.shared.writer()).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && !matches!(e, BusError::NotReplicated(_)) => e,
                Err(e) => return Err(e),
            };
            set_ready(&self.ready, false, &self.redacted_url);
            let wait = backoff.next_delay();
            if tokio::time::Instant::now() + wait > deadline {
                metrics::counter!("gekko_bus_write_failures_total").increment(1);
                return Err(BusError::Unavailable(format!(
                    "{what} on {} failed for {:?}: {err}",
                    self.redacted_url, self.opts.write_deadline
                )));
            }
            tracing::debug!(error = %err, ?wait, "redis {what} failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn dedicated(&self) -> Result<Conn, BusError> {
        self.source.dedicated().await
    }

    /// `WAIT n timeout` after durable appends in cluster mode, else nothing.
    fn wait_for(&self, stream: &StreamSpec) -> Option<(u32, Duration)> {
        (self.is_cluster()
            && stream.retention == Retention::Durable
            && self.opts.replicas_to_ack > 0)
            .then_some((self.opts.replicas_to_ack, self.opts.replica_ack_timeout))
    }

    /// XADDs `payloads` in one pipeline, followed by `WAIT` when `wait` asks for it. The
    /// pipeline goes to the node of the stream's slot on one connection, so `WAIT` counts
    /// the replicas that have these appends.
    async fn xadd(
        &self,
        stream: &StreamSpec,
        payloads: &[Bytes],
        what: &str,
    ) -> Result<Vec<String>, BusError> {
        let wait = self.wait_for(stream);
        let mut pipe = redis::pipe();
        for p in payloads {
            pipe.add_command(xadd_cmd(stream, p));
        }
        if let Some((n, timeout)) = wait {
            pipe.cmd("WAIT").arg(n).arg(
                u64::try_from(timeout.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            );
        }
        let name = stream.name.clone();
        self.with_retry(what, |mut c| {
            let pipe = pipe.clone();
            let name = name.clone();
            Box::pin(async move {
                let mut replies: Vec<Value> = pipe.query_async(&mut c).await?;
                if let Some((n, timeout)) = wait {
                    let acked = match replies.pop() {
                        Some(Value::Int(k)) => k,
                        other => {
                            return Err(BusError::Malformed {
                                stream: name,
                                id: String::new(),
                                reason: format!("unexpected WAIT reply {other:?}"),
                            });
                        }
                    };
                    if acked < i64::from(n) {
                        metrics::counter!("gekko_bus_unreplicated_appends_total").increment(1);
                        return Err(BusError::NotReplicated(format!(
                            "append to {name} reached {acked} of {n} replicas within {timeout:?}"
                        )));
                    }
                }
                replies
                    .into_iter()
                    .map(|v| {
                        parse::string(v).ok_or_else(|| BusError::Malformed {
                            stream: name.clone(),
                            id: String::new(),
                            reason: "XADD replied without an id".to_owned(),
                        })
                    })
                    .collect()
            })
        })
        .await
    }
}

/// Pings the server, or every master of a cluster (redis-rs routes `PING` to all
/// primaries and needs every answer), so a cluster with a shard down is not ready.
async fn ping(shared: &Shared) -> Result<(), BusError> {
    let mut c = shared.short().await?;
    redis::cmd("PING").query_async::<()>(&mut c).await?;
    Ok(())
}

fn set_ready(ready: &AtomicBool, up: bool, url: &str) {
    let was = ready.swap(up, Ordering::AcqRel);
    if was != up {
        if up {
            tracing::info!(redis = url, "redis reachable; bus ready");
            metrics::counter!("gekko_bus_reconnects_total").increment(1);
        } else {
            tracing::warn!(
                redis = url,
                "redis unreachable; bus not ready, reconnecting with backoff"
            );
        }
    }
    metrics::gauge!("gekko_bus_ready").set(if up { 1.0 } else { 0.0 });
}

async fn health_loop(
    shared: Shared,
    ready: Arc<AtomicBool>,
    opts: RedisBusOptions,
    url: String,
    cancel: CancellationToken,
) {
    let mut backoff = backoff(opts.max_backoff);
    loop {
        let up = tokio::time::timeout(opts.command_timeout, ping(&shared))
            .await
            .is_ok_and(|r| r.is_ok());
        set_ready(&ready, up, &url);
        let wait = if up {
            backoff.reset();
            opts.health_interval
        } else {
            backoff.next_delay()
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The bus's backoff: 50 ms doubling up to `max`, equal jitter (Redis is local: an
/// immediate retry is pointless, a floor keeps the loop from spinning).
fn backoff(max: Duration) -> Backoff {
    Backoff::new(BackoffConfig {
        base: Duration::from_millis(50),
        max,
        jitter: Jitter::Equal,
    })
}

/// `<ms>` or `<ms>-<seq>`, both decimal: the ids `XTRIM MINID` accepts.
fn is_stream_id(id: &str) -> bool {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok()
}

fn xadd_cmd(stream: &StreamSpec, payload: &[u8]) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(&stream.name);
    if let Retention::Capped { max_len } = stream.retention {
        cmd.arg("MAXLEN").arg("~").arg(max_len);
    }
    cmd.arg("*").arg(FIELD).arg(payload);
    cmd
}

/// Parsing of stream replies straight from the `Value` tree, moving payload buffers out
/// instead of building redis-rs's per-entry `HashMap`s (measurably cheaper on the hot
/// consume path; see docs/benchmarks.md).
mod parse {
    use bytes::Bytes;
    use redis::Value;

    use super::FIELD;
    use crate::Delivery;

    pub(super) fn string(v: Value) -> Option<String> {
        match v {
            Value::BulkString(b) => String::from_utf8(b).ok(),
            Value::SimpleString(s) => Some(s),
            _ => None,
        }
    }

    /// One entry: `[id, [field, value, ...]]`. The field list is nil for an entry that was
    /// deleted while pending; it is still handed out (with an empty payload) so that it
    /// can be acked. An entry without our field (written by something else) likewise gets
    /// an empty payload: the typed decoder then reports it by id instead of the whole read
    /// failing forever on one poison entry.
    pub(super) fn entry(v: Value) -> Option<Delivery> {
        let Value::Array(mut parts) = v else {
            return None;
        };
        if parts.len() != 2 {
            return None;
        }
        let fields = parts.pop()?;
        let id = string(parts.pop()?)?;
        let mut payload = Bytes::new();
        if let Value::Array(kv) = fields {
            let mut it = kv.into_iter();
            while let (Some(k), Some(val)) = (it.next(), it.next()) {
                let is_ours = matches!(&k, Value::BulkString(b) if b == FIELD.as_bytes());
                if is_ours {
                    if let Value::BulkString(b) = val {
                        payload = Bytes::from(b);
                    }
                    break;
                }
            }
        }
        Some(Delivery { id, payload })
    }

    pub(super) fn entries(v: Value) -> Vec<Delivery> {
        match v {
            Value::Array(items) => items.into_iter().filter_map(entry).collect(),
            _ => Vec::new(),
        }
    }

    /// `XREAD`/`XREADGROUP`: nil on timeout, else `[[key, entries], ...]` (RESP2) or a map
    /// from key to entries (RESP3).
    pub(super) fn read_reply(v: Value) -> Vec<Delivery> {
        match v {
            Value::Array(streams) => streams
                .into_iter()
                .flat_map(|s| match s {
                    Value::Array(mut kv) if kv.len() == 2 => {
                        kv.pop().map(entries).unwrap_or_default()
                    }
                    _ => Vec::new(),
                })
                .collect(),
            Value::Map(streams) => streams.into_iter().flat_map(|(_, e)| entries(e)).collect(),
            _ => Vec::new(),
        }
    }

    /// `XAUTOCLAIM`: `[next_cursor, entries, deleted_ids]`.
    pub(super) fn autoclaim_reply(v: Value) -> Option<(String, Vec<Delivery>)> {
        let Value::Array(parts) = v else {
            return None;
        };
        let mut it = parts.into_iter();
        let cursor = string(it.next()?)?;
        let claimed = entries(it.next()?);
        Some((cursor, claimed))
    }
}

#[async_trait]
impl Bus for RedisBus {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    async fn append(&self, stream: &StreamSpec, payload: Bytes) -> Result<String, BusError> {
        let id = if self.wait_for(stream).is_some() {
            self.xadd(stream, std::slice::from_ref(&payload), "XADD+WAIT")
                .await?
                .pop()
                .ok_or_else(|| BusError::Malformed {
                    stream: stream.name.clone(),
                    id: String::new(),
                    reason: "no id in the XADD reply".to_owned(),
                })?
        } else {
            let cmd = xadd_cmd(stream, &payload);
            self.with_retry("XADD", |mut c| {
                let cmd = cmd.clone();
                Box::pin(async move { Ok(cmd.query_async::<String>(&mut c).await?) })
            })
            .await?
        };
        metrics::counter!("gekko_bus_appended_total", "stream" => stream.name.clone()).increment(1);
        Ok(id)
    }

    async fn append_batch(
        &self,
        stream: &StreamSpec,
        payloads: &[Bytes],
    ) -> Result<Vec<String>, BusError> {
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        let ids = self.xadd(stream, payloads, "XADD pipeline").await?;
        metrics::counter!("gekko_bus_appended_total", "stream" => stream.name.clone())
            .increment(payloads.len() as u64);
        Ok(ids)
    }

    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BusError> {
        let mut c = self.conn().await?;
        create_group(&mut c, stream, group).await
    }

    async fn group_reader(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
    ) -> Result<Box<dyn GroupReader>, BusError> {
        Ok(Box::new(RedisGroupReader {
            source: self.source.clone(),
            conn: Some(self.dedicated().await?),
            stream: stream.to_owned(),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
        }))
    }

    async fn tail_reader(
        &self,
        stream: &str,
        from: StartFrom,
    ) -> Result<Box<dyn TailReader>, BusError> {
        let mut conn = self.dedicated().await?;
        let last_id = match from {
            StartFrom::Beginning => "0-0".to_owned(),
            StartFrom::After(id) => id,
            // Resolve `$` once, now: passing `$` on every call would skip whatever arrived
            // between two reads.
            StartFrom::Latest => {
                let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                    .arg(stream)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut conn)
                    .await?;
                reply
                    .ids
                    .into_iter()
                    .next()
                    .map_or_else(|| "0-0".to_owned(), |e| e.id)
            }
        };
        Ok(Box::new(RedisTailReader {
            source: self.source.clone(),
            conn: Some(conn),
            stream: stream.to_owned(),
            last_id,
        }))
    }

    async fn stream_len(&self, stream: &str) -> Result<u64, BusError> {
        let mut c = self.conn().await?;
        Ok(redis::cmd("XLEN").arg(stream).query_async(&mut c).await?)
    }

    async fn last_entry(&self, stream: &str) -> Result<Option<Delivery>, BusError> {
        let mut c = self.conn().await?;
        let reply: Value = redis::cmd("XREVRANGE")
            .arg(stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut c)
            .await?;
        Ok(parse::entries(reply).into_iter().next())
    }

    async fn trim_before(&self, stream: &str, min_id: &str) -> Result<u64, BusError> {
        if !is_stream_id(min_id) {
            return Err(BusError::Invalid(format!("bad stream id {min_id:?}")));
        }
        let mut c = self.conn().await?;
        // Exact (`=`), not `~`: the caller archived precisely the entries below `min_id`.
        Ok(redis::cmd("XTRIM")
            .arg(stream)
            .arg("MINID")
            .arg("=")
            .arg(min_id)
            .query_async(&mut c)
            .await?)
    }

    async fn pending_count(&self, stream: &str, group: &str) -> Result<u64, BusError> {
        let mut c = self.conn().await?;
        let reply: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
            .arg(stream)
            .arg(group)
            .query_async(&mut c)
            .await?;
        Ok(reply.count() as u64)
    }

    async fn notify(&self, channel: &str, payload: Bytes) -> Result<(), BusError> {
        let mut c = self.shared.writer();
        // Sharded pub/sub on a cluster: the notice goes to the shard of the channel's slot
        // only, instead of being broadcast over the cluster bus to every node.
        let verb = if self.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        redis::cmd(verb)
            .arg(channel)
            .arg(payload.as_ref())
            .query_async::<()>(&mut c)
            .await?;
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, BusError> {
        let client = match &self.source {
            Source::Single(client) => client.clone(),
            Source::Cluster { .. } => return self.subscribe_sharded(channel).await,
        };
        // Subscribe once inline so that notices published after `subscribe` returns are
        // seen; afterwards a task owns the connection and re-subscribes after drops.
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .map_err(|e| BusError::Unavailable(format!("redis pub/sub connect: {e}")))?;
        pubsub.subscribe(channel).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let cancel = CancellationToken::new();
        tokio::spawn(pubsub_loop(
            client,
            channel.to_owned(),
            pubsub,
            tx,
            cancel.clone(),
            self.opts.max_backoff,
        ));
        Ok(Subscription::new(rx, Some(cancel.drop_guard())))
    }
}

impl RedisBus {
    /// `SSUBSCRIBE` on a cluster: a RESP3 cluster connection of its own whose push
    /// messages feed the subscription. redis-rs re-subscribes after reconnects and
    /// follows the channel's slot to its new master after a failover.
    async fn subscribe_sharded(&self, channel: &str) -> Result<Subscription, BusError> {
        let Source::Cluster { urls, .. } = &self.source else {
            return Err(BusError::Invalid(
                "sharded pub/sub needs a cluster".to_owned(),
            ));
        };
        let (push_tx, mut push_rx) = tokio::sync::mpsc::unbounded_channel::<redis::PushInfo>();
        let client = ClusterClientBuilder::new(urls.clone())
            .connection_timeout(Duration::from_secs(1))
            .response_timeout(self.opts.command_timeout)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(push_tx)
            .build()?;
        let mut conn = client
            .get_async_connection()
            .await
            .map_err(|e| BusError::Unavailable(format!("redis cluster pub/sub connect: {e}")))?;
        conn.ssubscribe(channel).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let channel = channel.to_owned();
        tokio::spawn(async move {
            // The connection lives as long as the subscription.
            let _conn = conn;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    push = push_rx.recv() => match push {
                        None => return,
                        Some(p) if p.kind == redis::PushKind::SMessage => {
                            // [channel, payload]
                            if let Some(Value::BulkString(b)) = p.data.into_iter().nth(1)
                                && tx.send(Bytes::from(b)).await.is_err()
                            {
                                return;
                            }
                        }
                        Some(p) if p.kind == redis::PushKind::Disconnection => {
                            tracing::warn!(%channel, "sharded pub/sub connection lost; redis-rs re-subscribes");
                        }
                        Some(_) => {}
                    }
                }
            }
        });
        Ok(Subscription::new(rx, Some(cancel.drop_guard())))
    }
}

async fn pubsub_loop(
    client: redis::Client,
    channel: String,
    first: redis::aio::PubSub,
    tx: tokio::sync::mpsc::Sender<Bytes>,
    cancel: CancellationToken,
    max_backoff: Duration,
) {
    let mut current = Some(first);
    let mut backoff = backoff(max_backoff);
    loop {
        let pubsub = match current.take() {
            Some(p) => p,
            None => {
                let attempt = async {
                    let mut p = client.get_async_pubsub().await?;
                    p.subscribe(&channel).await?;
                    Ok::<_, redis::RedisError>(p)
                };
                tokio::select! {
                    () = cancel.cancelled() => return,
                    r = attempt => match r {
                        Ok(p) => {
                            tracing::info!(%channel, "pub/sub re-subscribed");
                            backoff.reset();
                            p
                        }
                        Err(e) => {
                            let wait = backoff.next_delay();
                            tracing::debug!(%channel, error = %e, ?wait, "pub/sub reconnect failed");
                            tokio::select! {
                                () = cancel.cancelled() => return,
                                () = tokio::time::sleep(wait) => continue,
                            }
                        }
                    }
                }
            }
        };
        let mut stream = pubsub.into_on_message();
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                msg = stream.next() => match msg {
                    Some(m) => {
                        if tx.send(Bytes::copy_from_slice(m.get_payload_bytes())).await.is_err() {
                            return;
                        }
                    }
                    None => {
                        tracing::warn!(%channel, "pub/sub connection lost; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}

async fn create_group<C: redis::aio::ConnectionLike + Send>(
    c: &mut C,
    stream: &str,
    group: &str,
) -> Result<(), BusError> {
    let r: Result<(), redis::RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(c)
        .await;
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

struct RedisGroupReader {
    source: Source,
    conn: Option<Conn>,
    stream: String,
    group: String,
    consumer: String,
}

impl std::fmt::Debug for RedisGroupReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisGroupReader")
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl RedisGroupReader {
    async fn conn(&mut self) -> Result<&mut Conn, BusError> {
        if self.conn.is_none() {
            self.conn = Some(self.source.dedicated().await?);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| BusError::Unavailable("no connection".to_owned()))
    }

    /// Runs a command on the reader's connection. On a connection failure the connection
    /// is dropped and re-made on the next call. A `NOGROUP` (Redis lost its data, or the
    /// stream was deleted) re-creates the group once and retries.
    async fn run<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T, BusError> {
        for attempt in 0..2 {
            let conn = self.conn().await?;
            match cmd.query_async::<T>(conn).await {
                Ok(v) => return Ok(v),
                Err(e) if e.code() == Some("NOGROUP") && attempt == 0 => {
                    tracing::warn!(stream = %self.stream, group = %self.group, "consumer group missing; re-creating it");
                    let (stream, group) = (self.stream.clone(), self.group.clone());
                    create_group(self.conn().await?, &stream, &group).await?;
                }
                Err(e) => {
                    let e = BusError::Redis(e);
                    if e.is_retryable() {
                        self.conn = None;
                    }
                    return Err(e);
                }
            }
        }
        Err(BusError::Invalid(format!(
            "NOGROUP persists for {}",
            self.group
        )))
    }

    fn xreadgroup(&self, count: usize, block: Option<Duration>, id: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(b) = block {
            cmd.arg("BLOCK")
                .arg(u64::try_from(b.min(MAX_BLOCK).as_millis()).unwrap_or(0));
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(id);
        cmd
    }
}

#[async_trait]
impl GroupReader for RedisGroupReader {
    async fn read(&mut self, count: usize, block: Duration) -> Result<Vec<Delivery>, BusError> {
        // BLOCK 0 means "forever" to Redis; a zero block here means "don't wait".
        let block = (!block.is_zero()).then_some(block.max(Duration::from_millis(1)));
        let cmd = self.xreadgroup(count, block, ">");
        Ok(parse::read_reply(self.run(&cmd).await?))
    }

    async fn ack_and_read(
        &mut self,
        ack: &[String],
        count: usize,
        block: Duration,
    ) -> Result<(u64, Vec<Delivery>), BusError> {
        if ack.is_empty() {
            return Ok((0, self.read(count, block).await?));
        }
        // One round trip: XACK goes first on the connection, so it is applied before the
        // blocking XREADGROUP starts waiting.
        let block = (!block.is_zero()).then_some(block.max(Duration::from_millis(1)));
        let mut xack = redis::cmd("XACK");
        xack.arg(&self.stream).arg(&self.group).arg(ack);
        let mut pipe = redis::pipe();
        pipe.add_command(xack)
            .add_command(self.xreadgroup(count, block, ">"));
        let conn = self.conn().await?;
        match pipe.query_async::<(u64, Value)>(conn).await {
            Ok((acked, reply)) => Ok((acked, parse::read_reply(reply))),
            Err(e) => {
                let e = BusError::Redis(e);
                if e.is_retryable() {
                    self.conn = None;
                }
                Err(e)
            }
        }
    }

    async fn read_own_pending(&mut self, count: usize) -> Result<Vec<Delivery>, BusError> {
        let cmd = self.xreadgroup(count, None, "0");
        Ok(parse::read_reply(self.run(&cmd).await?))
    }

    async fn ack(&mut self, ids: &[String]) -> Result<u64, BusError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&self.stream).arg(&self.group).arg(ids);
        self.run(&cmd).await
    }

    async fn claim_idle(
        &mut self,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, BusError> {
        let mut out = Vec::new();
        let mut cursor = "0-0".to_owned();
        // XAUTOCLAIM scans a bounded slice of the PEL per call; follow the cursor until
        // the whole PEL was scanned or enough entries were claimed.
        loop {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(&self.stream)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
                .arg(&cursor)
                .arg("COUNT")
                .arg(count - out.len());
            let reply: Value = self.run(&cmd).await?;
            let (next, claimed) =
                parse::autoclaim_reply(reply).ok_or_else(|| BusError::Malformed {
                    stream: self.stream.clone(),
                    id: cursor.clone(),
                    reason: "unexpected XAUTOCLAIM reply".to_owned(),
                })?;
            out.extend(claimed);
            cursor = next;
            if cursor == "0-0" || out.len() >= count {
                return Ok(out);
            }
        }
    }
}

struct RedisTailReader {
    source: Source,
    conn: Option<Conn>,
    stream: String,
    last_id: String,
}

impl std::fmt::Debug for RedisTailReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTailReader")
            .field("stream", &self.stream)
            .field("last_id", &self.last_id)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TailReader for RedisTailReader {
    async fn read(&mut self, count: usize, block: Duration) -> Result<Vec<Delivery>, BusError> {
        if self.conn.is_none() {
            self.conn = Some(self.source.dedicated().await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(BusError::Unavailable("no connection".to_owned()));
        };
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(count);
        if !block.is_zero() {
            cmd.arg("BLOCK").arg(
                u64::try_from(block.min(MAX_BLOCK).as_millis())
                    .unwrap_or(1)
                    .max(1),
            );
        }
        cmd.arg("STREAMS").arg(&self.stream).arg(&self.last_id);
        match cmd.query_async::<Value>(conn).await {
            Ok(reply) => {
                let got = parse::read_reply(reply);
                if let Some(last) = got.last() {
                    self.last_id.clone_from(&last.id);
                }
                Ok(got)
            }
            Err(e) => {
                let e = BusError::Redis(e);
                if e.is_retryable() {
                    self.conn = None;
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact_url("redis://:pw@h:6379/"), "redis://:***@h:6379/");
        assert_eq!(redact_url("redis://u:pw@h/"), "redis://u:***@h/");
        assert_eq!(redact_url("redis://h:6379/"), "redis://h:6379/");
    }

    #[test]
    fn backoff_grows_and_caps() {
        let mut b = backoff(Duration::from_secs(1));
        let first = b.next_delay();
        assert!(first <= Duration::from_millis(50) && first >= Duration::from_millis(25));
        for _ in 0..20 {
            assert!(b.next_delay() <= Duration::from_secs(1));
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(50));
    }
}
