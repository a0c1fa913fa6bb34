//! The message bus every gekko service talks over.
//!
//! One trait, [`Bus`], two implementations:
//! - [`RedisBus`]: Redis streams with consumer groups, plus pub/sub; used when `REDIS_URL`
//!   is set, and whenever services run in separate processes.
//! - [`MemoryBus`]: the same contract inside one process; used by `gekko up` when there is
//!   no Redis. The shared contract test suite (`tests/contract.rs`) runs against both.
//!
//! Streams come in two kinds, chosen by [`Retention`]:
//! - **Capped** (market data): trimmed with `MAXLEN ~ n`, so old entries may vanish and
//!   a slow reader may miss some. A quote is worthless a second later; memory is not.
//! - **Durable** (orders, commands, audit): never trimmed. Read at least once through
//!   consumer groups with explicit acks; entries left pending by a consumer that died are
//!   taken over with [`GroupReader::claim_idle`] (`XAUTOCLAIM`).
//!
//! Payloads are opaque bytes at this level; [`envelope`] adds typed topics with a
//! versioned serde envelope on top.

pub mod envelope;
mod error;
mod memory;
mod redis_bus;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use envelope::{Envelope, Topic, names};
pub use error::BusError;
pub use memory::MemoryBus;
pub use redis_bus::{
    RedisBus, RedisBusOptions, node_urls as redis_node_urls, redact_url as redis_bus_redact,
};

/// How long a stream keeps its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Trim to about `max_len` entries on every append (`MAXLEN ~`). Readers may miss data.
    Capped {
        /// Approximate upper bound on the stream length.
        max_len: usize,
    },
    /// Never trimmed, never dropped.
    Durable,
}

/// A stream name together with its retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// The stream key, e.g. `gekko:{orders:binanceus}`.
    pub name: String,
    /// Capped or durable.
    pub retention: Retention,
}

impl StreamSpec {
    /// A durable stream.
    #[must_use]
    pub fn durable(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            retention: Retention::Durable,
        }
    }

    /// A capped stream of about `max_len` entries.
    #[must_use]
    pub fn capped(name: impl Into<String>, max_len: usize) -> Self {
        Self {
            name: name.into(),
            retention: Retention::Capped { max_len },
        }
    }
}

/// One stream entry handed to a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The stream entry id (`<ms>-<seq>`); pass it to [`GroupReader::ack`].
    pub id: String,
    /// The payload as appended.
    pub payload: Bytes,
}

/// Where a [`TailReader`] starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFrom {
    /// Only entries appended after the reader was created (`$`).
    Latest,
    /// Everything still in the stream.
    Beginning,
    /// Entries after this id.
    After(String),
}

/// The bus contract. Implementations are cheap to share behind an `Arc`.
#[async_trait]
pub trait Bus: Send + Sync + std::fmt::Debug + 'static {
    /// `"redis"` or `"in-process"`, for status output.
    fn kind(&self) -> &'static str;

    /// Whether the bus can currently accept writes. A Redis bus that lost its server
    /// reports `false` until it reconnects.
    fn is_ready(&self) -> bool;

    /// Appends one entry and returns its id once the server has acknowledged it.
    ///
    /// # Errors
    /// [`BusError::Unavailable`] if the backend stayed unreachable for the whole write
    /// deadline. An error means the write was not acknowledged; it may or may not have
    /// landed, so payloads carry ids that make a retry de-duplicable.
    async fn append(&self, stream: &StreamSpec, payload: Bytes) -> Result<String, BusError>;

    /// Appends several entries in one round trip (pipelined), in order.
    ///
    /// # Errors
    /// As [`Bus::append`]; on error none of the ids are reported acknowledged.
    async fn append_batch(
        &self,
        stream: &StreamSpec,
        payloads: &[Bytes],
    ) -> Result<Vec<String>, BusError>;

    /// Creates consumer group `group` on `stream` (and the stream itself) if missing. The
    /// group starts at the beginning of the stream, so nothing appended earlier is missed.
    ///
    /// # Errors
    /// Backend failures.
    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BusError>;

    /// A reader in consumer group `group` under the name `consumer`. Each reader owns its
    /// connection, so a blocking read never stalls anybody else's commands.
    ///
    /// # Errors
    /// Backend failures while setting up the reader's connection.
    async fn group_reader(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
    ) -> Result<Box<dyn GroupReader>, BusError>;

    /// A reader that follows a stream without a consumer group (`XREAD`), for market data.
    ///
    /// # Errors
    /// Backend failures while setting up the reader's connection.
    async fn tail_reader(
        &self,
        stream: &str,
        from: StartFrom,
    ) -> Result<Box<dyn TailReader>, BusError>;

    /// Number of entries in a stream (0 if it does not exist).
    ///
    /// # Errors
    /// Backend failures.
    async fn stream_len(&self, stream: &str) -> Result<u64, BusError>;

    /// The newest entry of a stream (`XREVRANGE + - COUNT 1`), or `None` when the stream is
    /// empty or missing. This is how an append-only log (the audit chain) finds its head
    /// after a restart.
    ///
    /// # Errors
    /// Backend failures.
    async fn last_entry(&self, stream: &str) -> Result<Option<Delivery>, BusError>;

    /// Deletes every entry whose id is lower than `min_id` (`XTRIM MINID`, exact) and
    /// returns how many went. Durable streams are never trimmed on append; this is the one
    /// explicit way to remove entries, for a caller that has first copied them somewhere
    /// safe (the audit archive).
    ///
    /// # Errors
    /// [`BusError::Invalid`] for a malformed id; backend failures.
    async fn trim_before(&self, stream: &str, min_id: &str) -> Result<u64, BusError>;

    /// Number of entries delivered to `group` but not yet acknowledged.
    ///
    /// # Errors
    /// Backend failures, or a missing group.
    async fn pending_count(&self, stream: &str, group: &str) -> Result<u64, BusError>;

    /// Publishes a notice on a pub/sub channel (control and config-change notices). Fire
    /// and forget: subscribers that are not connected miss it.
    ///
    /// # Errors
    /// Backend failures.
    async fn notify(&self, channel: &str, payload: Bytes) -> Result<(), BusError>;

    /// Subscribes to a pub/sub channel. The subscription survives reconnects.
    ///
    /// # Errors
    /// Backend failures while subscribing.
    async fn subscribe(&self, channel: &str) -> Result<Subscription, BusError>;
}

/// A member of a consumer group on one durable stream.
#[async_trait]
pub trait GroupReader: Send + std::fmt::Debug {
    /// New entries for this group (`XREADGROUP ... >`), waiting up to `block` for the first.
    /// Delivered entries stay pending until acked.
    ///
    /// # Errors
    /// Backend failures; the reader reconnects on the next call.
    async fn read(&mut self, count: usize, block: Duration) -> Result<Vec<Delivery>, BusError>;

    /// Entries already delivered to *this consumer name* and not yet acked
    /// (`XREADGROUP ... 0`): what a restarted consumer must finish first.
    ///
    /// # Errors
    /// Backend failures.
    async fn read_own_pending(&mut self, count: usize) -> Result<Vec<Delivery>, BusError>;

    /// Acks `ack` and reads the next entries, in one round trip where the backend can
    /// pipeline them. Returns how many of `ack` were pending, and the new entries.
    ///
    /// # Errors
    /// As [`GroupReader::ack`] and [`GroupReader::read`]. On error, the acks may or may
    /// not have been applied; acking again is harmless.
    async fn ack_and_read(
        &mut self,
        ack: &[String],
        count: usize,
        block: Duration,
    ) -> Result<(u64, Vec<Delivery>), BusError> {
        let acked = self.ack(ack).await?;
        Ok((acked, self.read(count, block).await?))
    }

    /// Acknowledges processed entries. Returns how many were pending.
    ///
    /// # Errors
    /// Backend failures.
    async fn ack(&mut self, ids: &[String]) -> Result<u64, BusError>;

    /// Takes over entries that other consumers left pending for at least `min_idle`
    /// (`XAUTOCLAIM`), e.g. because they crashed.
    ///
    /// # Errors
    /// Backend failures.
    async fn claim_idle(
        &mut self,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, BusError>;
}

/// Follows a stream from a position, without acknowledgements.
#[async_trait]
pub trait TailReader: Send + std::fmt::Debug {
    /// The next entries after the last one returned, waiting up to `block` for the first.
    ///
    /// # Errors
    /// Backend failures; the reader reconnects on the next call.
    async fn read(&mut self, count: usize, block: Duration) -> Result<Vec<Delivery>, BusError>;
}

/// A pub/sub subscription: notices arrive in order on an internal channel.
#[derive(Debug)]
pub struct Subscription {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    _guard: Option<tokio_util::sync::DropGuard>,
}

impl Subscription {
    pub(crate) fn new(
        rx: tokio::sync::mpsc::Receiver<Bytes>,
        guard: Option<tokio_util::sync::DropGuard>,
    ) -> Self {
        Self { rx, _guard: guard }
    }

    /// The next notice, or `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }
}

/// Opens the bus the environment asks for: Redis when `redis_url` is given, else in-process.
///
/// # Errors
/// Invalid Redis URL. An unreachable server is *not* an error: the bus starts not-ready and
/// keeps reconnecting in the background.
pub async fn open(redis_url: Option<&str>) -> Result<std::sync::Arc<dyn Bus>, BusError> {
    Ok(match redis_url {
        Some(url) => std::sync::Arc::new(RedisBus::connect(url, RedisBusOptions::default()).await?),
        None => std::sync::Arc::new(MemoryBus::new()),
    })
}
