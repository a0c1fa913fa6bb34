//! Typed topics and the envelope every bus message travels in.
//!
//! A [`Topic<T>`] binds a stream name, a retention and a schema version to a payload type,
//! so a publisher cannot put a `Quote` on the order stream by accident. Each message is an
//! [`Envelope<T>`] serialised as JSON: readers can check the schema version and the
//! source, de-duplicate on `id` (at-least-once delivery means duplicates happen), and
//! measure latency from `ts_ms`.

use std::borrow::Cow;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Bus, BusError, Delivery, Retention, StreamSpec};

/// Documented stream and channel names. `{venue}` is the venue's lower-case id.
///
/// Stream keys carry a Redis Cluster hash tag (the part in braces): only the tag is hashed,
/// so a stream and every key derived from it (`<stream>:...`) share one slot, and the
/// consumer groups that live inside a stream never touch another slot. Each venue's
/// market-data, order and fill streams have their own tags, so they spread over the
/// shards of a cluster. On a single Redis the braces are just part of the name.
/// The audit stream (`AUDIT_LOGGING_SETTINGS stream`, default `gekko:audit`) is one key
/// and needs no tag. Pub/sub channels are not keys; in cluster mode they are sharded
/// channels, placed by the hash of the whole name.
pub mod names {
    /// Best bid/ask per venue (capped).
    #[must_use]
    pub fn quotes(venue: &str) -> String {
        format!("gekko:{{md:quotes:{venue}}}")
    }
    /// Public trades per venue (capped).
    #[must_use]
    pub fn trades(venue: &str) -> String {
        format!("gekko:{{md:trades:{venue}}}")
    }
    /// Order-book updates per venue (capped).
    #[must_use]
    pub fn book(venue: &str) -> String {
        format!("gekko:{{md:book:{venue}}}")
    }
    /// Order events per venue (durable).
    #[must_use]
    pub fn orders(venue: &str) -> String {
        format!("gekko:{{orders:{venue}}}")
    }
    /// Fills (executions) per venue (durable), one record per venue trade id.
    #[must_use]
    pub fn fills(venue: &str) -> String {
        format!("gekko:{{fills:{venue}}}")
    }
    /// Commands to services (durable).
    pub const COMMANDS: &str = "gekko:{commands}";
    /// Audit trail (durable).
    pub const AUDIT: &str = "gekko:audit";
    /// Model signals (capped).
    pub const SIGNALS: &str = "gekko:{signals}";
    /// Pub/sub: control notices (halt, resume, shutdown).
    pub const CONTROL_CHANNEL: &str = "gekko:control";
    /// Pub/sub: configuration-change notices.
    pub const CONFIG_CHANNEL: &str = "gekko:config";
    /// Default cap for market-data streams.
    pub const MARKET_DATA_MAX_LEN: usize = 100_000;
}

/// The wire form of every typed bus message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Schema version of `payload`; bumped on incompatible changes.
    #[serde(rename = "v")]
    pub schema: u16,
    /// Unique message id (UUIDv7: time-ordered), for de-duplication.
    pub id: uuid::Uuid,
    /// The publishing service, e.g. `gateway-binanceus`.
    pub source: String,
    /// Publish time, ms since the epoch.
    pub ts_ms: i64,
    /// The payload.
    pub payload: T,
}

/// A stream bound to a payload type.
#[derive(Debug)]
pub struct Topic<T> {
    name: Cow<'static, str>,
    retention: Retention,
    schema: u16,
    _payload: PhantomData<fn() -> T>,
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            retention: self.retention,
            schema: self.schema,
            _payload: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Topic<T> {
    /// A durable topic (orders, commands, audit).
    #[must_use]
    pub fn durable(name: impl Into<Cow<'static, str>>, schema: u16) -> Self {
        Self {
            name: name.into(),
            retention: Retention::Durable,
            schema,
            _payload: PhantomData,
        }
    }

    /// A capped, lossy topic (market data, signals).
    #[must_use]
    pub fn capped(name: impl Into<Cow<'static, str>>, max_len: usize, schema: u16) -> Self {
        Self {
            name: name.into(),
            retention: Retention::Capped { max_len },
            schema,
            _payload: PhantomData,
        }
    }

    /// The stream name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stream spec for raw bus calls.
    #[must_use]
    pub fn spec(&self) -> StreamSpec {
        StreamSpec {
            name: self.name.to_string(),
            retention: self.retention,
        }
    }

    /// Wraps a payload in a fresh envelope and encodes it; returns the envelope id too.
    ///
    /// # Errors
    /// [`BusError::Encode`] if `T` fails to serialise.
    pub fn encode(&self, source: &str, payload: &T) -> Result<(uuid::Uuid, Bytes), BusError> {
        let env = Envelope {
            schema: self.schema,
            id: uuid::Uuid::now_v7(),
            source: source.to_owned(),
            ts_ms: gekko_core::now_ms(),
            payload,
        };
        let bytes = serde_json::to_vec(&env).map_err(BusError::Encode)?;
        Ok((env.id, Bytes::from(bytes)))
    }

    /// Publishes one payload; returns the envelope id once the bus acknowledged it.
    ///
    /// # Errors
    /// Encoding failures and the errors of [`Bus::append`].
    pub async fn publish(
        &self,
        bus: &dyn Bus,
        source: &str,
        payload: &T,
    ) -> Result<uuid::Uuid, BusError> {
        let (id, bytes) = self.encode(source, payload)?;
        bus.append(&self.spec(), bytes).await?;
        Ok(id)
    }

    /// Reads the whole stream from its first entry to its current end, handing every
    /// envelope to `f` in order; entries that do not decode are logged and skipped. For
    /// rebuilding state from a durable stream (an order tracker at start-up, a report).
    ///
    /// # Errors
    /// Backend failures while reading.
    pub async fn replay(
        &self,
        bus: &dyn Bus,
        mut f: impl FnMut(Envelope<T>),
    ) -> Result<(), BusError> {
        let mut reader = bus
            .tail_reader(&self.name, crate::StartFrom::Beginning)
            .await?;
        loop {
            let batch = reader.read(1000, std::time::Duration::ZERO).await?;
            if batch.is_empty() {
                return Ok(());
            }
            for d in &batch {
                match self.decode(d) {
                    Ok(env) => f(env),
                    Err(e) => {
                        tracing::error!(error = %e, stream = %self.name, "skipping undecodable entry");
                    }
                }
            }
        }
    }

    /// Decodes a delivery from this topic's stream.
    ///
    /// # Errors
    /// [`BusError::Decode`] with the raw payload when it is not a valid envelope of `T`;
    /// [`BusError::Invalid`] when its schema version is newer than this build understands.
    pub fn decode(&self, delivery: &Delivery) -> Result<Envelope<T>, BusError> {
        let env: Envelope<T> =
            serde_json::from_slice(&delivery.payload).map_err(|source| BusError::Decode {
                stream: self.name.to_string(),
                id: delivery.id.clone(),
                payload: delivery.payload.clone(),
                source,
            })?;
        if env.schema > self.schema {
            return Err(BusError::Invalid(format!(
                "entry {} on {} has schema v{}, this build reads up to v{}",
                delivery.id, self.name, env.schema, self.schema
            )));
        }
        Ok(env)
    }
}
