//! The in-process bus: the Redis streams contract on plain data structures.
//!
//! Used by `gekko up` when no `REDIS_URL` is set, where every service lives in one
//! process. It mirrors Redis semantics closely enough that one contract test suite passes
//! against both: entry ids are `<ms>-<seq>` and strictly increasing, groups track a last
//! delivered id and a pending-entries list per consumer, `claim_idle` behaves like
//! `XAUTOCLAIM`, and capped streams trim. Nothing survives the process, by design.
//!
//! Concurrency: one `std::sync::Mutex` over all streams. Critical sections are short and
//! never await, so a blocking mutex is cheaper than an async one; blocked readers wait on
//! a per-stream `Notify` outside the lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{Notify, broadcast};

use crate::{
    Bus, BusError, Delivery, GroupReader, Retention, StartFrom, StreamSpec, Subscription,
    TailReader,
};

/// A stream entry id, ordered like Redis ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct EntryId {
    ms: u64,
    seq: u64,
}

impl EntryId {
    const ZERO: EntryId = EntryId { ms: 0, seq: 0 };

    fn parse(s: &str) -> Option<Self> {
        let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[derive(Debug)]
struct PendingEntry {
    consumer: String,
    delivered_at: Instant,
}

#[derive(Debug, Default)]
struct Group {
    last_delivered: Option<EntryId>,
    pending: BTreeMap<EntryId, PendingEntry>,
}

#[derive(Debug, Default)]
struct Stream {
    entries: BTreeMap<EntryId, Bytes>,
    last_id: Option<EntryId>,
    groups: HashMap<String, Group>,
    notify: Arc<Notify>,
}

impl Stream {
    fn next_id(&self) -> EntryId {
        let now = u64::try_from(gekko_core::now_ms()).unwrap_or(0);
        match self.last_id {
            Some(last) if last.ms >= now => EntryId {
                ms: last.ms,
                seq: last.seq + 1,
            },
            _ => EntryId { ms: now, seq: 0 },
        }
    }

    fn append(&mut self, retention: Retention, payload: Bytes) -> EntryId {
        let id = self.next_id();
        self.entries.insert(id, payload);
        self.last_id = Some(id);
        if let Retention::Capped { max_len } = retention {
            while self.entries.len() > max_len {
                self.entries.pop_first();
            }
        }
        id
    }
}

#[derive(Debug, Default)]
struct State {
    streams: HashMap<String, Stream>,
    channels: HashMap<String, broadcast::Sender<Bytes>>,
}

/// The in-process [`Bus`]. Clones share the same streams.
#[derive(Debug, Clone, Default)]
pub struct MemoryBus {
    state: Arc<Mutex<State>>,
}

impl MemoryBus {
    /// An empty bus.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the bus, so poisoning is ignored.
        gekko_core::sync::lock(&self.state)
    }

    fn notifier(&self, stream: &str) -> Arc<Notify> {
        self.lock()
            .streams
            .entry(stream.to_owned())
            .or_default()
            .notify
            .clone()
    }

    /// Runs `f` until it returns entries or `block` runs out, waking on appends.
    async fn blocking<F>(
        &self,
        stream: &str,
        block: Duration,
        mut f: F,
    ) -> Result<Vec<Delivery>, BusError>
    where
        F: FnMut(&mut State) -> Result<Vec<Delivery>, BusError> + Send,
    {
        let notify = self.notifier(stream);
        let deadline = tokio::time::Instant::now() + block;
        loop {
            // Register interest before looking, so an append between the look and the wait
            // still wakes us.
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = f(&mut self.lock())?;
            if !got.is_empty() || block.is_zero() {
                return Ok(got);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }
}

#[async_trait]
impl Bus for MemoryBus {
    fn kind(&self) -> &'static str {
        "in-process"
    }

    fn is_ready(&self) -> bool {
        true
    }

    async fn append(&self, stream: &StreamSpec, payload: Bytes) -> Result<String, BusError> {
        let mut ids = self
            .append_batch(stream, std::slice::from_ref(&payload))
            .await?;
        ids.pop()
            .ok_or_else(|| BusError::Invalid("append produced no id".to_owned()))
    }

    async fn append_batch(
        &self,
        stream: &StreamSpec,
        payloads: &[Bytes],
    ) -> Result<Vec<String>, BusError> {
        let (ids, notify) = {
            let mut state = self.lock();
            let s = state.streams.entry(stream.name.clone()).or_default();
            let ids: Vec<String> = payloads
                .iter()
                .map(|p| s.append(stream.retention, p.clone()).to_string())
                .collect();
            (ids, s.notify.clone())
        };
        notify.notify_waiters();
        metrics::counter!("gekko_bus_appended_total", "stream" => stream.name.clone())
            .increment(payloads.len() as u64);
        Ok(ids)
    }

    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), BusError> {
        let mut state = self.lock();
        let s = state.streams.entry(stream.to_owned()).or_default();
        s.groups.entry(group.to_owned()).or_default();
        Ok(())
    }

    async fn group_reader(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
    ) -> Result<Box<dyn GroupReader>, BusError> {
        let state = self.lock();
        let exists = state
            .streams
            .get(stream)
            .is_some_and(|s| s.groups.contains_key(group));
        if !exists {
            return Err(BusError::Invalid(format!(
                "NOGROUP: no consumer group {group} on stream {stream}; call ensure_group first"
            )));
        }
        Ok(Box::new(MemoryGroupReader {
            bus: self.clone(),
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
        let after = match from {
            StartFrom::Beginning => EntryId::ZERO,
            StartFrom::Latest => self
                .lock()
                .streams
                .get(stream)
                .and_then(|s| s.last_id)
                .unwrap_or(EntryId::ZERO),
            StartFrom::After(id) => EntryId::parse(&id)
                .ok_or_else(|| BusError::Invalid(format!("bad stream id {id:?}")))?,
        };
        Ok(Box::new(MemoryTailReader {
            bus: self.clone(),
            stream: stream.to_owned(),
            after,
        }))
    }

    async fn stream_len(&self, stream: &str) -> Result<u64, BusError> {
        Ok(self
            .lock()
            .streams
            .get(stream)
            .map_or(0, |s| s.entries.len() as u64))
    }

    async fn last_entry(&self, stream: &str) -> Result<Option<Delivery>, BusError> {
        Ok(self.lock().streams.get(stream).and_then(|s| {
            s.entries.last_key_value().map(|(id, p)| Delivery {
                id: id.to_string(),
                payload: p.clone(),
            })
        }))
    }

    async fn trim_before(&self, stream: &str, min_id: &str) -> Result<u64, BusError> {
        let min = EntryId::parse(min_id)
            .ok_or_else(|| BusError::Invalid(format!("bad stream id {min_id:?}")))?;
        let mut state = self.lock();
        let Some(s) = state.streams.get_mut(stream) else {
            return Ok(0);
        };
        // Like XTRIM MINID: the entries go, the stream's last id (and so the next id
        // handed out) does not move back.
        let kept = s.entries.split_off(&min);
        let removed = std::mem::replace(&mut s.entries, kept).len();
        Ok(removed as u64)
    }

    async fn pending_count(&self, stream: &str, group: &str) -> Result<u64, BusError> {
        self.lock()
            .streams
            .get(stream)
            .and_then(|s| s.groups.get(group))
            .map(|g| g.pending.len() as u64)
            .ok_or_else(|| BusError::Invalid(format!("NOGROUP: no group {group} on {stream}")))
    }

    async fn notify(&self, channel: &str, payload: Bytes) -> Result<(), BusError> {
        if let Some(tx) = self.lock().channels.get(channel) {
            // No receivers is fine: pub/sub notices are fire and forget.
            let _ = tx.send(payload);
        }
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, BusError> {
        let mut rx = self
            .lock()
            .channels
            .entry(channel.to_owned())
            .or_insert_with(|| broadcast::channel(1024).0)
            .subscribe();
        let (tx, out) = tokio::sync::mpsc::channel(1024);
        let cancel = tokio_util::sync::CancellationToken::new();
        let stop = cancel.clone();
        // Forward the broadcast into the subscription's own queue so both bus kinds hand
        // out the same `Subscription` type. The task ends when the subscription is dropped.
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    msg = rx.recv() => match msg {
                        Ok(m) => if tx.send(m).await.is_err() { break },
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(skipped = n, "pub/sub subscriber lagged");
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            }
        });
        Ok(Subscription::new(out, Some(cancel.drop_guard())))
    }
}

#[derive(Debug)]
struct MemoryGroupReader {
    bus: MemoryBus,
    stream: String,
    group: String,
    consumer: String,
}

impl MemoryGroupReader {
    fn group_mut<'a>(
        &self,
        state: &'a mut State,
    ) -> Result<(&'a mut Group, &'a BTreeMap<EntryId, Bytes>), BusError> {
        let s = state
            .streams
            .get_mut(&self.stream)
            .ok_or_else(|| BusError::Invalid(format!("no stream {}", self.stream)))?;
        let g = s
            .groups
            .get_mut(&self.group)
            .ok_or_else(|| BusError::Invalid(format!("NOGROUP: no group {}", self.group)))?;
        Ok((g, &s.entries))
    }
}

#[async_trait]
impl GroupReader for MemoryGroupReader {
    async fn read(&mut self, count: usize, block: Duration) -> Result<Vec<Delivery>, BusError> {
        let bus = self.bus.clone();
        let stream = self.stream.clone();
        bus.blocking(&stream, block, |state| {
            let consumer = self.consumer.clone();
            let (group, entries) = self.group_mut(state)?;
            let start = group.last_delivered.map_or(EntryId::ZERO, |id| EntryId {
                ms: id.ms,
                seq: id.seq + 1,
            });
            let now = Instant::now();
            let got: Vec<Delivery> = entries
                .range(start..)
                .take(count)
                .map(|(id, p)| Delivery {
                    id: id.to_string(),
                    payload: p.clone(),
                })
                .collect();
            for d in &got {
                if let Some(id) = EntryId::parse(&d.id) {
                    group.last_delivered = Some(id);
                    group.pending.insert(
                        id,
                        PendingEntry {
                            consumer: consumer.clone(),
                            delivered_at: now,
                        },
                    );
                }
            }
            Ok(got)
        })
        .await
    }

    async fn read_own_pending(&mut self, count: usize) -> Result<Vec<Delivery>, BusError> {
        let mut state = self.bus.lock();
        let (group, entries) = self.group_mut(&mut state)?;
        Ok(group
            .pending
            .iter()
            .filter(|(_, p)| p.consumer == self.consumer)
            .filter_map(|(id, _)| {
                entries.get(id).map(|p| Delivery {
                    id: id.to_string(),
                    payload: p.clone(),
                })
            })
            .take(count)
            .collect())
    }

    async fn ack(&mut self, ids: &[String]) -> Result<u64, BusError> {
        let mut state = self.bus.lock();
        let (group, _) = self.group_mut(&mut state)?;
        Ok(ids
            .iter()
            .filter_map(|id| EntryId::parse(id))
            .filter(|id| group.pending.remove(id).is_some())
            .count() as u64)
    }

    async fn claim_idle(
        &mut self,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, BusError> {
        let mut state = self.bus.lock();
        let consumer = self.consumer.clone();
        let (group, entries) = self.group_mut(&mut state)?;
        let now = Instant::now();
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (id, p) in &mut group.pending {
            if out.len() >= count {
                break;
            }
            if now.duration_since(p.delivered_at) < min_idle {
                continue;
            }
            match entries.get(id) {
                Some(payload) => {
                    p.consumer.clone_from(&consumer);
                    p.delivered_at = now;
                    out.push(Delivery {
                        id: id.to_string(),
                        payload: payload.clone(),
                    });
                }
                // Like XAUTOCLAIM: entries deleted from the stream leave the PEL.
                None => gone.push(*id),
            }
        }
        for id in gone {
            group.pending.remove(&id);
        }
        Ok(out)
    }
}

#[derive(Debug)]
struct MemoryTailReader {
    bus: MemoryBus,
    stream: String,
    after: EntryId,
}

#[async_trait]
impl TailReader for MemoryTailReader {
    async fn read(&mut self, count: usize, block: Duration) -> Result<Vec<Delivery>, BusError> {
        let bus = self.bus.clone();
        let stream = self.stream.clone();
        let after = self.after;
        let got = bus
            .blocking(&stream, block, |state| {
                let Some(s) = state.streams.get(&stream) else {
                    return Ok(Vec::new());
                };
                Ok(s.entries
                    .range(
                        EntryId {
                            ms: after.ms,
                            seq: after.seq + 1,
                        }..,
                    )
                    .take(count)
                    .map(|(id, p)| Delivery {
                        id: id.to_string(),
                        payload: p.clone(),
                    })
                    .collect())
            })
            .await?;
        if let Some(last) = got.last().and_then(|d| EntryId::parse(&d.id)) {
            self.after = last;
        }
        Ok(got)
    }
}
