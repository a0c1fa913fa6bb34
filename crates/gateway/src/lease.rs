//! Leader election for replicas of one venue account: a Redis lease with a fencing token.
//!
//! Every replica of a gateway (`docker compose up --scale gateway-binanceus=2`) competes
//! for one key. The lease is taken with `SET key record NX PX ttl` and a fencing token
//! `INCR`ed from a counter beside it, in one Lua script, so the token is strictly larger
//! for every new term. The holder renews it every `renew_interval` with a script that
//! extends the TTL only while the key still holds its own record; a replica that fails to
//! renew (Redis unreachable, the process paused past the TTL, another replica took over)
//! steps down.
//!
//! **Fencing.** A lease alone cannot stop a leader that was paused (GC, SIGSTOP, a VM
//! migration) and wakes up still believing it leads. So every durable write a leader makes
//! (order intents and their transitions, fills) goes through [`Lease::fenced_append`]: a
//! script that compares the writer's token with the counter and appends only when no newer
//! token exists, atomically. A stale leader's first write is refused with
//! [`LeaseError::Fenced`], and the engine demotes itself on it. Since an order is persisted
//! before it is sent (see [`crate::engine::Gateway::place_order`]), a refused write means
//! the order is not sent either.
//!
//! The lease record also carries the leader's advertised gRPC address, which standbys
//! forward calls to ([`crate::service`]).
//!
//! Cluster note: the lease key, the fence counter and the order stream share the hash tag
//! of the order stream (`gekko:{orders:<venue>}`), so the scripts that touch two of them
//! stay within one slot for the order stream. The fill stream has its own tag; on a single
//! Redis node (compose) that does not matter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gekko_bus::{Retention, StreamSpec};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The field a bus entry's payload is stored under (the Redis bus's layout; a test reads
/// fenced entries back through the bus to keep the two in step).
const FIELD: &str = "d";

/// Takes the lease when it is free or already ours (a restarted replica with the same
/// identity), with a fresh fencing token. KEYS: lease, counter. ARGV: owner, advertise,
/// ttl ms. Returns the token, or nil when another owner holds it.
const ACQUIRE: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local owner = string.match(cur, '^([^|]*)|')
  if owner ~= ARGV[1] then return nil end
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token .. '|' .. ARGV[2], 'PX', ARGV[3])
return token
";

/// Extends the lease only while it still holds exactly our record. KEYS: lease. ARGV:
/// record, ttl ms. Returns 1 when renewed, 0 when the lease is gone or someone else's.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Deletes the lease only while it holds our record (a clean stop hands over at once).
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Appends to a stream only when no newer fencing token exists. KEYS: counter, stream.
/// ARGV: token, payload, max_len (0 for a durable stream), the payload field. Returns the
/// entry id, or the error `FENCED <current>`.
const FENCED_APPEND: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur ~= tonumber(ARGV[1]) then
  return redis.error_reply('FENCED ' .. cur)
end
if ARGV[3] ~= '0' then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', ARGV[4], ARGV[2])
end
return redis.call('XADD', KEYS[2], '*', ARGV[4], ARGV[2])
";

/// Settings of one replica's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The Redis holding the lease (the bus's `REDIS_URL`).
    pub redis_url: String,
    /// The lease key; the fencing counter is `<key>:fence`.
    pub key: String,
    /// How long a lease lives without renewal: the longest a dead leader blocks takeover.
    pub ttl: Duration,
    /// How often the leader renews (and a standby tries to take over); well under `ttl`.
    pub renew_interval: Duration,
    /// This replica's identity: a restarted replica with the same identity reclaims its
    /// own lease at once instead of waiting for it to expire.
    pub owner: String,
    /// The gRPC address standbys forward to while this replica leads (`host:port`).
    pub advertise: String,
}

impl LeaseConfig {
    /// The default lease key of a venue's gateway: in the order stream's hash slot.
    #[must_use]
    pub fn default_key(venue: &str) -> String {
        format!("gekko:{{orders:{venue}}}:leader")
    }

    /// The fencing counter's key.
    #[must_use]
    pub fn fence_key(&self) -> String {
        format!("{}:fence", self.key)
    }
}

/// This machine's host name (what compose's DNS resolves a container by), or `localhost`.
#[must_use]
pub fn host_name() -> String {
    gekko_core::host::host_name().unwrap_or_else(|| "localhost".to_owned())
}

/// Fills what the settings left empty from the bound gRPC address: the advertised address
/// (the host name in place of an unspecified IP such as `0.0.0.0`) and the identity
/// (`<host name>/<advertised address>`).
pub fn fill_identity(cfg: &mut LeaseConfig, grpc_addr: Option<std::net::SocketAddr>) {
    if cfg.advertise.is_empty() {
        cfg.advertise = match grpc_addr {
            Some(a) if a.ip().is_unspecified() => format!("{}:{}", host_name(), a.port()),
            Some(a) => a.to_string(),
            None => format!("{}:50051", host_name()),
        };
    }
    if cfg.owner.is_empty() {
        cfg.owner = format!("{}/{}", host_name(), cfg.advertise);
    }
}

/// The leader as the lease record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderRecord {
    /// The leader's identity.
    pub owner: String,
    /// Its fencing token.
    pub token: u64,
    /// Its advertised gRPC address.
    pub advertise: String,
}

impl LeaderRecord {
    /// Parses `owner|token|advertise`.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.splitn(3, '|');
        let owner = parts.next()?.to_owned();
        let token = parts.next()?.parse().ok()?;
        let advertise = parts.next()?.to_owned();
        Some(Self {
            owner,
            token,
            advertise,
        })
    }

    fn encode(&self) -> String {
        format!("{}|{}|{}", self.owner, self.token, self.advertise)
    }
}

/// Why a lease operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LeaseError {
    /// A newer leader exists: this replica's token is stale and it must not write.
    #[error("fenced: this replica's token {mine} is stale (the current token is {current})")]
    Fenced {
        /// This replica's token (0 when it holds none).
        mine: u64,
        /// The newest token issued.
        current: u64,
    },
    /// Redis could not be reached or answered an error.
    #[error("lease store: {0}")]
    Redis(String),
    /// The settings are unusable.
    #[error("lease settings: {0}")]
    Invalid(String),
}

impl From<redis::RedisError> for LeaseError {
    fn from(e: redis::RedisError) -> Self {
        Self::Redis(e.to_string())
    }
}

/// One replica's handle on the lease. Cheap to clone; clones share the current token.
#[derive(Clone)]
pub struct Lease {
    conn: ConnectionManager,
    cfg: Arc<LeaseConfig>,
    fence_key: Arc<str>,
    /// The token of the term this replica holds; 0 while it holds none.
    token: Arc<AtomicU64>,
    acquire: Arc<redis::Script>,
    renew: Arc<redis::Script>,
    release: Arc<redis::Script>,
    append: Arc<redis::Script>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.cfg.key)
            .field("owner", &self.cfg.owner)
            .field("token", &self.token())
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// A lease handle on `cfg.redis_url`. Connects lazily: Redis may be down at start.
    ///
    /// # Errors
    /// [`LeaseError::Invalid`] for a malformed URL, a renew interval not below the TTL, or
    /// an identity or address containing `|`.
    pub fn new(cfg: LeaseConfig) -> Result<Self, LeaseError> {
        if cfg.renew_interval >= cfg.ttl || cfg.renew_interval.is_zero() {
            return Err(LeaseError::Invalid(format!(
                "renew_interval ({:?}) must be above zero and below lease_ttl ({:?})",
                cfg.renew_interval, cfg.ttl
            )));
        }
        if cfg.owner.contains('|') || cfg.advertise.contains('|') || cfg.owner.is_empty() {
            return Err(LeaseError::Invalid(
                "the replica identity must be non-empty and neither it nor the advertised address may contain `|`".to_owned(),
            ));
        }
        let client = redis::Client::open(cfg.redis_url.as_str())
            .map_err(|e| LeaseError::Invalid(format!("redis url: {e}")))?;
        // Bounded by half the TTL: a lease call that hangs past the TTL is worse than one
        // that fails, but Redis with `appendfsync always` on a busy disk can take a while.
        let timeout = (cfg.ttl / 2).max(Duration::from_millis(200));
        let mcfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, mcfg)?;
        Ok(Self {
            conn,
            fence_key: cfg.fence_key().into(),
            cfg: Arc::new(cfg),
            token: Arc::new(AtomicU64::new(0)),
            acquire: Arc::new(redis::Script::new(ACQUIRE)),
            renew: Arc::new(redis::Script::new(RENEW)),
            release: Arc::new(redis::Script::new(RELEASE)),
            append: Arc::new(redis::Script::new(FENCED_APPEND)),
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &LeaseConfig {
        &self.cfg
    }

    /// The token of the term this replica holds, or 0.
    #[must_use]
    pub fn token(&self) -> u64 {
        self.token.load(Ordering::Acquire)
    }

    fn record(&self, token: u64) -> String {
        LeaderRecord {
            owner: self.cfg.owner.clone(),
            token,
            advertise: self.cfg.advertise.clone(),
        }
        .encode()
    }

    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.cfg.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    /// Tries to take the lease. `Some(token)` when this replica now leads (a new term
    /// with a new token); `None` when another replica holds it.
    ///
    /// # Errors
    /// [`LeaseError::Redis`] when Redis cannot be reached.
    pub async fn try_acquire(&self) -> Result<Option<u64>, LeaseError> {
        let mut conn = self.conn.clone();
        let token: Option<u64> = self
            .acquire
            .key(&self.cfg.key)
            .key(&*self.fence_key)
            .arg(&self.cfg.owner)
            .arg(&self.cfg.advertise)
            .arg(self.ttl_ms())
            .invoke_async(&mut conn)
            .await?;
        if let Some(t) = token {
            self.token.store(t, Ordering::Release);
        }
        Ok(token)
    }

    /// Renews the lease of the current term. `false` when it was lost (expired and taken,
    /// or never held): the caller must stop leading.
    ///
    /// # Errors
    /// [`LeaseError::Redis`] when Redis cannot be reached (the lease may still be ours,
    /// but only until its TTL: the caller decides how long it keeps leading blind).
    pub async fn renew(&self) -> Result<bool, LeaseError> {
        let token = self.token();
        if token == 0 {
            return Ok(false);
        }
        let mut conn = self.conn.clone();
        let ok: i64 = self
            .renew
            .key(&self.cfg.key)
            .arg(self.record(token))
            .arg(self.ttl_ms())
            .invoke_async(&mut conn)
            .await?;
        Ok(ok == 1)
    }

    /// Gives the lease up, if this replica still holds it, so a standby takes over at
    /// once (a clean stop). Forgets the token either way.
    ///
    /// # Errors
    /// [`LeaseError::Redis`] when Redis cannot be reached (the lease then expires).
    pub async fn release(&self) -> Result<(), LeaseError> {
        let token = self.token.swap(0, Ordering::AcqRel);
        if token == 0 {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let _: i64 = self
            .release
            .key(&self.cfg.key)
            .arg(self.record(token))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Forgets the current term without touching Redis (after losing the lease).
    pub fn forget(&self) {
        self.token.store(0, Ordering::Release);
    }

    /// The leader the lease currently names, if any.
    ///
    /// # Errors
    /// [`LeaseError::Redis`] when Redis cannot be reached.
    pub async fn leader(&self) -> Result<Option<LeaderRecord>, LeaseError> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(&self.cfg.key)
            .query_async(&mut conn)
            .await?;
        Ok(raw.as_deref().and_then(LeaderRecord::parse))
    }

    /// Appends `payload` to `stream` in the Redis bus's entry layout, only if this
    /// replica's token is still the newest one. The check and the append are one script,
    /// so no newer leader can slip in between.
    ///
    /// # Errors
    /// [`LeaseError::Fenced`] when a newer token exists (or this replica holds none), and
    /// [`LeaseError::Redis`] when Redis cannot be reached.
    pub async fn fenced_append(
        &self,
        stream: &StreamSpec,
        payload: &Bytes,
    ) -> Result<String, LeaseError> {
        let mine = self.token();
        let max_len = match stream.retention {
            Retention::Capped { max_len } => max_len,
            Retention::Durable => 0,
        };
        let mut conn = self.conn.clone();
        let result: Result<String, redis::RedisError> = self
            .append
            .key(&*self.fence_key)
            .key(&stream.name)
            .arg(mine)
            .arg(payload.as_ref())
            .arg(max_len)
            .arg(FIELD)
            .invoke_async(&mut conn)
            .await;
        match result {
            Ok(id) => Ok(id),
            Err(e) => match fenced_by(&e) {
                Some(current) => Err(LeaseError::Fenced { mine, current }),
                None => Err(e.into()),
            },
        }
    }
}

/// The current token named by a `FENCED <n>` script error (redis-rs splits it into the
/// code `FENCED` and the detail `<n>`).
fn fenced_by(e: &redis::RedisError) -> Option<u64> {
    let digits = |t: &str| -> Option<u64> {
        t.trim_start_matches(|c: char| !c.is_ascii_digit())
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    if e.code() == Some("FENCED") {
        return e.detail().and_then(digits).or(Some(0));
    }
    let text = e.to_string();
    let at = text.find("FENCED")?;
    digits(&text[at + 6..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_malformed_ones_are_none() {
        let r = LeaderRecord {
            owner: "host-a/10.0.0.2:50051".into(),
            token: 42,
            advertise: "10.0.0.2:50051".into(),
        };
        assert_eq!(LeaderRecord::parse(&r.encode()), Some(r));
        assert_eq!(LeaderRecord::parse("only-owner"), None);
        assert_eq!(LeaderRecord::parse("a|notanumber|b"), None);
    }

    fn cfg(redis: &gekko_testkit::RedisServer, owner: &str, ttl: Duration) -> LeaseConfig {
        LeaseConfig {
            redis_url: redis.url(),
            key: LeaseConfig::default_key("binanceus"),
            ttl,
            renew_interval: ttl / 4,
            owner: owner.into(),
            advertise: format!("{owner}.example:50051"),
        }
    }

    fn order_topic() -> gekko_bus::Topic<serde_json::Value> {
        gekko_bus::Topic::durable(gekko_bus::names::orders("binanceus"), 1)
    }

    /// Appends one order event through the lease's fenced script.
    async fn write(lease: &Lease, n: u64) -> Result<String, LeaseError> {
        let topic = order_topic();
        let (_, bytes) = topic
            .encode("test", &serde_json::json!({ "n": n }))
            .unwrap();
        lease.fenced_append(&topic.spec(), &bytes).await
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_a_stale_holder_is_fenced_off() {
        let redis = gekko_testkit::RedisServer::start();
        let ttl = Duration::from_millis(800);
        let a = Lease::new(cfg(&redis, "a", ttl)).unwrap();
        let b = Lease::new(cfg(&redis, "b", ttl)).unwrap();

        let ta = a
            .try_acquire()
            .await
            .unwrap()
            .expect("a free lease is taken");
        assert_eq!(b.try_acquire().await.unwrap(), None, "held by a");
        assert!(a.renew().await.unwrap(), "the holder renews");
        let rec = b.leader().await.unwrap().expect("a record");
        assert_eq!((rec.owner.as_str(), rec.token), ("a", ta));
        assert_eq!(rec.advertise, "a.example:50051");
        write(&a, 1).await.expect("the holder writes");
        assert!(
            matches!(write(&b, 2).await, Err(LeaseError::Fenced { mine: 0, .. })),
            "a replica holding no token cannot write"
        );

        // a stops renewing (paused); b takes over once the lease expires.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let tb = loop {
            if let Some(t) = b.try_acquire().await.unwrap() {
                break t;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "b takes the expired lease within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(tb > ta, "a new term has a larger token ({tb} > {ta})");
        match write(&a, 3).await {
            Err(LeaseError::Fenced { mine, current }) => assert_eq!((mine, current), (ta, tb)),
            other => panic!("the stale holder must be fenced off, got {other:?}"),
        }
        assert!(!a.renew().await.unwrap(), "the stale holder cannot renew");
        write(&b, 4).await.expect("the new holder writes");

        // What the script wrote is what the bus reads: entries 1 and 4, nothing else.
        let bus = gekko_bus::RedisBus::connect(&redis.url(), gekko_bus::RedisBusOptions::default())
            .await
            .unwrap();
        let mut seen = Vec::new();
        order_topic()
            .replay(&bus, |env| seen.push(env.payload["n"].as_u64().unwrap()))
            .await
            .unwrap();
        assert_eq!(seen, [1, 4]);
    }

    #[tokio::test]
    async fn the_same_replica_reclaims_at_once_and_a_release_hands_over_at_once() {
        let redis = gekko_testkit::RedisServer::start();
        let ttl = Duration::from_secs(60);
        let a = Lease::new(cfg(&redis, "a", ttl)).unwrap();
        let t1 = a.try_acquire().await.unwrap().unwrap();
        // A restarted process with the same identity: a new term, no wait for the TTL.
        let a2 = Lease::new(cfg(&redis, "a", ttl)).unwrap();
        let t2 = a2
            .try_acquire()
            .await
            .unwrap()
            .expect("same identity reclaims");
        assert!(t2 > t1);
        assert!(
            matches!(write(&a, 1).await, Err(LeaseError::Fenced { .. })),
            "the old process is fenced"
        );
        let b = Lease::new(cfg(&redis, "b", ttl)).unwrap();
        assert_eq!(b.try_acquire().await.unwrap(), None);
        a2.release().await.unwrap();
        assert_eq!(a2.token(), 0);
        let t3 = b
            .try_acquire()
            .await
            .unwrap()
            .expect("a released lease is free at once");
        assert!(t3 > t2);
    }

    #[test]
    fn a_renew_interval_not_below_the_ttl_is_refused() {
        let cfg = LeaseConfig {
            redis_url: "redis://127.0.0.1:1/".into(),
            key: LeaseConfig::default_key("binanceus"),
            ttl: Duration::from_secs(1),
            renew_interval: Duration::from_secs(1),
            owner: "a".into(),
            advertise: "127.0.0.1:1".into(),
        };
        let err = Lease::new(cfg).unwrap_err();
        assert!(err.to_string().contains("renew_interval"), "{err}");
    }
}
