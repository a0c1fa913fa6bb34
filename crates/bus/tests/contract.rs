//! One contract, three buses: every scenario here runs against the in-process bus,
//! against a real `redis-server` started by the test harness on a free port, and against
//! a real local Redis Cluster (3 masters, 3 replicas) on free ports.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gekko_bus::{Bus, MemoryBus, RedisBus, RedisBusOptions, StartFrom, StreamSpec, Topic};
use gekko_testkit::{RedisCluster, RedisServer};

type Fixture = (Arc<dyn Bus>, Option<RedisServer>);

fn memory() -> Fixture {
    (Arc::new(MemoryBus::new()), None)
}

async fn redis() -> Fixture {
    let server = RedisServer::start();
    let bus = RedisBus::connect(&server.url(), RedisBusOptions::default())
        .await
        .expect("connect to test redis");
    assert!(bus.is_ready(), "bus on a live server must be ready");
    (Arc::new(bus), Some(server))
}

async fn cluster() -> (Arc<dyn Bus>, Option<RedisCluster>) {
    let cluster = RedisCluster::start(3, 1);
    let bus = RedisBus::connect(&cluster.redis_url(), RedisBusOptions::default())
        .await
        .expect("connect to the test cluster");
    assert!(
        bus.is_cluster(),
        "a comma-separated REDIS_URL means a cluster"
    );
    assert!(bus.is_ready(), "bus on a live cluster must be ready");
    (Arc::new(bus), Some(cluster))
}

fn payloads(n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("msg-{i:05}"))).collect()
}

const SHORT: Duration = Duration::from_millis(50);

mod scenarios {
    use super::*;

    /// Two consumers in one group split the stream with no overlap; a second group sees
    /// everything again, independently.
    pub(crate) async fn group_delivery(bus: &dyn Bus) {
        let s = StreamSpec::durable("t:orders");
        bus.ensure_group(&s.name, "g1").await.unwrap();
        bus.ensure_group(&s.name, "g1").await.unwrap(); // idempotent
        bus.ensure_group(&s.name, "g2").await.unwrap();
        let sent = payloads(100);
        bus.append_batch(&s, &sent).await.unwrap();

        let mut a = bus.group_reader(&s.name, "g1", "a").await.unwrap();
        let mut b = bus.group_reader(&s.name, "g1", "b").await.unwrap();
        let got_a = a.read(60, SHORT).await.unwrap();
        let got_b = b.read(60, SHORT).await.unwrap();
        assert_eq!(got_a.len(), 60);
        assert_eq!(got_b.len(), 40);
        let mut all: Vec<Bytes> = got_a
            .iter()
            .chain(&got_b)
            .map(|d| d.payload.clone())
            .collect();
        all.sort();
        assert_eq!(
            all, sent,
            "every entry exactly once across the group, in order"
        );
        assert!(a.read(10, SHORT).await.unwrap().is_empty());

        let ids: Vec<String> = got_a.iter().map(|d| d.id.clone()).collect();
        assert_eq!(a.ack(&ids).await.unwrap(), 60);
        assert_eq!(bus.pending_count(&s.name, "g1").await.unwrap(), 40);

        let mut c = bus.group_reader(&s.name, "g2", "c").await.unwrap();
        assert_eq!(c.read(1000, SHORT).await.unwrap().len(), 100);

        // ack_and_read: acks b's batch and reads what arrived since, in one call.
        let b_ids: Vec<String> = got_b.iter().map(|d| d.id.clone()).collect();
        bus.append(&s, Bytes::from_static(b"late")).await.unwrap();
        let (acked, more) = b.ack_and_read(&b_ids, 10, SHORT).await.unwrap();
        assert_eq!(acked, 40);
        assert_eq!(more.len(), 1);
        assert_eq!(more[0].payload, Bytes::from_static(b"late"));
        assert_eq!(bus.pending_count(&s.name, "g1").await.unwrap(), 1);
    }

    /// A blocked reader wakes up when an entry arrives.
    pub(crate) async fn blocking_read_wakes(bus: &dyn Bus) {
        let s = StreamSpec::durable("t:wake");
        bus.ensure_group(&s.name, "g").await.unwrap();
        let mut r = bus.group_reader(&s.name, "g", "r").await.unwrap();
        let reader = async { r.read(10, Duration::from_secs(5)).await.unwrap() };
        let writer = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            bus.append(&s, Bytes::from_static(b"late")).await.unwrap();
        };
        let started = std::time::Instant::now();
        let (got, ()) = tokio::join!(reader, writer);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload, Bytes::from_static(b"late"));
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "woke on append, not timeout"
        );
    }

    /// A consumer that crashes before acking gets its entries again when it restarts
    /// under the same name, and nothing is lost.
    pub(crate) async fn crash_before_ack_redelivers(bus: &dyn Bus) {
        let s = StreamSpec::durable("t:crash");
        bus.ensure_group(&s.name, "g").await.unwrap();
        bus.append_batch(&s, &payloads(5)).await.unwrap();
        {
            let mut r = bus.group_reader(&s.name, "g", "worker-1").await.unwrap();
            assert_eq!(r.read(3, SHORT).await.unwrap().len(), 3);
            // dropped here without ack: the "crash"
        }
        let mut r = bus.group_reader(&s.name, "g", "worker-1").await.unwrap();
        let pending = r.read_own_pending(100).await.unwrap();
        assert_eq!(
            pending.len(),
            3,
            "unacked entries come back to the restarted consumer"
        );
        let rest = r.read(100, SHORT).await.unwrap();
        assert_eq!(rest.len(), 2);
        let ids: Vec<String> = pending.iter().chain(&rest).map(|d| d.id.clone()).collect();
        assert_eq!(r.ack(&ids).await.unwrap(), 5);
        assert_eq!(bus.pending_count(&s.name, "g").await.unwrap(), 0);
        assert!(r.read_own_pending(100).await.unwrap().is_empty());
    }

    /// Entries pending on a dead consumer are claimed by another after `min_idle`, and
    /// not before.
    pub(crate) async fn autoclaim_recovers_dead_consumer(bus: &dyn Bus) {
        let s = StreamSpec::durable("t:claim");
        bus.ensure_group(&s.name, "g").await.unwrap();
        let sent = payloads(4);
        bus.append_batch(&s, &sent).await.unwrap();
        let mut dead = bus.group_reader(&s.name, "g", "dead").await.unwrap();
        assert_eq!(dead.read(10, SHORT).await.unwrap().len(), 4);
        drop(dead);

        let mut live = bus.group_reader(&s.name, "g", "live").await.unwrap();
        let early = live.claim_idle(Duration::from_secs(30), 10).await.unwrap();
        assert!(
            early.is_empty(),
            "entries not idle long enough stay with their owner"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        let claimed = live
            .claim_idle(Duration::from_millis(100), 10)
            .await
            .unwrap();
        let got: Vec<Bytes> = claimed.iter().map(|d| d.payload.clone()).collect();
        assert_eq!(got, sent);
        let ids: Vec<String> = claimed.iter().map(|d| d.id.clone()).collect();
        assert_eq!(live.ack(&ids).await.unwrap(), 4);
        assert_eq!(bus.pending_count(&s.name, "g").await.unwrap(), 0);
    }

    /// Capped streams trim; durable streams keep everything.
    pub(crate) async fn capped_trims_durable_keeps(bus: &dyn Bus) {
        let capped = StreamSpec::capped("t:md", 100);
        let durable = StreamSpec::durable("t:keep");
        for chunk in payloads(3000).chunks(500) {
            bus.append_batch(&capped, chunk).await.unwrap();
            bus.append_batch(&durable, chunk).await.unwrap();
        }
        let capped_len = bus.stream_len(&capped.name).await.unwrap();
        // `MAXLEN ~` trims whole radix-tree nodes (100 entries by default), so Redis may
        // keep somewhat more than asked, never unboundedly more.
        assert!(
            (100..300).contains(&capped_len),
            "capped stream has {capped_len}"
        );
        assert_eq!(bus.stream_len(&durable.name).await.unwrap(), 3000);
    }

    /// A tail reader from `Latest` sees only later entries, in order, without gaps.
    pub(crate) async fn tail_reader_follows(bus: &dyn Bus) {
        let s = StreamSpec::capped("t:tail", 10_000);
        bus.append_batch(&s, &payloads(3)).await.unwrap();
        let mut t = bus.tail_reader(&s.name, StartFrom::Latest).await.unwrap();
        assert!(t.read(10, SHORT).await.unwrap().is_empty());
        let sent = payloads(25);
        bus.append_batch(&s, &sent).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 25 {
            let batch = t.read(10, SHORT).await.unwrap();
            assert!(!batch.is_empty(), "tail reader stalled after {}", got.len());
            got.extend(batch.into_iter().map(|d| d.payload));
        }
        assert_eq!(got, sent);
        let mut from_start = bus
            .tail_reader(&s.name, StartFrom::Beginning)
            .await
            .unwrap();
        assert_eq!(from_start.read(1000, SHORT).await.unwrap().len(), 28);
    }

    /// Pub/sub notices reach every subscriber, in order.
    pub(crate) async fn pubsub_notices(bus: &dyn Bus) {
        let mut s1 = bus.subscribe("t:control").await.unwrap();
        let mut s2 = bus.subscribe("t:control").await.unwrap();
        for m in ["halt", "resume"] {
            bus.notify("t:control", Bytes::from(m)).await.unwrap();
        }
        for s in [&mut s1, &mut s2] {
            for want in ["halt", "resume"] {
                let got = tokio::time::timeout(Duration::from_secs(5), s.recv())
                    .await
                    .expect("notice within 5 s")
                    .expect("subscription open");
                assert_eq!(got, Bytes::from(want));
            }
        }
    }

    /// `last_entry` finds a stream's head; `trim_before` removes exactly the entries below
    /// an id, keeps the rest readable in order, and later appends still get higher ids.
    pub(crate) async fn head_and_trim(bus: &dyn Bus) {
        let s = StreamSpec::durable("t:audit");
        assert_eq!(
            bus.last_entry(&s.name).await.unwrap(),
            None,
            "missing stream"
        );
        assert_eq!(bus.trim_before(&s.name, "1-0").await.unwrap(), 0);
        let sent = payloads(10);
        let ids = bus.append_batch(&s, &sent).await.unwrap();
        let head = bus.last_entry(&s.name).await.unwrap().expect("a head");
        assert_eq!(
            (head.id.as_str(), &head.payload),
            (ids[9].as_str(), &sent[9])
        );

        assert_eq!(bus.trim_before(&s.name, &ids[4]).await.unwrap(), 4);
        assert_eq!(bus.stream_len(&s.name).await.unwrap(), 6);
        let mut t = bus
            .tail_reader(&s.name, StartFrom::Beginning)
            .await
            .unwrap();
        let left: Vec<Bytes> = t
            .read(100, SHORT)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.payload)
            .collect();
        assert_eq!(left, sent[4..].to_vec());
        assert_eq!(
            bus.trim_before(&s.name, &ids[4]).await.unwrap(),
            0,
            "idempotent"
        );

        let err = bus.trim_before(&s.name, "not-an-id").await.unwrap_err();
        assert!(err.to_string().contains("not-an-id"), "{err}");

        // Trimming everything leaves an empty stream whose next id is still higher.
        assert_eq!(
            bus.trim_before(&s.name, &format!("{}-0", u64::MAX))
                .await
                .unwrap(),
            6
        );
        assert_eq!(bus.last_entry(&s.name).await.unwrap(), None);
        let next = bus.append(&s, Bytes::from_static(b"after")).await.unwrap();
        assert!(id_key(&next) > id_key(&ids[9]), "{next} after {}", ids[9]);
    }

    fn id_key(id: &str) -> (u64, u64) {
        let (ms, seq) = id.split_once('-').unwrap();
        (ms.parse().unwrap(), seq.parse().unwrap())
    }

    /// Typed topics round-trip through envelopes; garbage is reported by entry id.
    pub(crate) async fn typed_envelopes(bus: &dyn Bus) {
        let topic: Topic<Vec<u32>> = Topic::durable("t:typed", 1);
        bus.ensure_group(topic.name(), "g").await.unwrap();
        let id = topic.publish(bus, "test", &vec![1, 2, 3]).await.unwrap();
        bus.append(&topic.spec(), Bytes::from_static(b"{not json"))
            .await
            .unwrap();
        let newer: Topic<Vec<u32>> = Topic::durable("t:typed", 2);
        newer.publish(bus, "test", &vec![4]).await.unwrap();

        let mut r = bus.group_reader(topic.name(), "g", "r").await.unwrap();
        let got = r.read(10, SHORT).await.unwrap();
        assert_eq!(got.len(), 3);
        let env = topic.decode(&got[0]).unwrap();
        assert_eq!(
            (env.id, env.payload, env.source.as_str()),
            (id, vec![1, 2, 3], "test")
        );
        let err = topic.decode(&got[1]).unwrap_err();
        assert!(err.to_string().contains(&got[1].id), "{err}");
        let err = topic.decode(&got[2]).unwrap_err();
        assert!(err.to_string().contains("schema v2"), "{err}");
    }
}

macro_rules! contract_suite {
    ($name:ident, $fixture:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn group_delivery() {
                let (bus, _server) = $fixture;
                scenarios::group_delivery(&*bus).await;
            }
            #[tokio::test]
            async fn blocking_read_wakes() {
                let (bus, _server) = $fixture;
                scenarios::blocking_read_wakes(&*bus).await;
            }
            #[tokio::test]
            async fn crash_before_ack_redelivers() {
                let (bus, _server) = $fixture;
                scenarios::crash_before_ack_redelivers(&*bus).await;
            }
            #[tokio::test]
            async fn autoclaim_recovers_dead_consumer() {
                let (bus, _server) = $fixture;
                scenarios::autoclaim_recovers_dead_consumer(&*bus).await;
            }
            #[tokio::test]
            async fn capped_trims_durable_keeps() {
                let (bus, _server) = $fixture;
                scenarios::capped_trims_durable_keeps(&*bus).await;
            }
            #[tokio::test]
            async fn tail_reader_follows() {
                let (bus, _server) = $fixture;
                scenarios::tail_reader_follows(&*bus).await;
            }
            #[tokio::test]
            async fn pubsub_notices() {
                let (bus, _server) = $fixture;
                scenarios::pubsub_notices(&*bus).await;
            }
            #[tokio::test]
            async fn head_and_trim() {
                let (bus, _server) = $fixture;
                scenarios::head_and_trim(&*bus).await;
            }
            #[tokio::test]
            async fn typed_envelopes() {
                let (bus, _server) = $fixture;
                scenarios::typed_envelopes(&*bus).await;
            }
        }
    };
}

contract_suite!(in_process, memory());
contract_suite!(on_redis, redis().await);
contract_suite!(on_cluster, cluster().await);

/// In cluster mode a durable append is only reported done once `replicas_to_ack`
/// replicas have it (`WAIT`). Asking for more replicas than the cluster has makes every
/// durable append fail as not replicated, while capped (market-data) appends, which do
/// not wait, still succeed.
#[tokio::test]
async fn cluster_durable_append_needs_replica_ack() {
    let cluster = RedisCluster::start(3, 1);
    let opts = RedisBusOptions {
        replicas_to_ack: 2,
        replica_ack_timeout: Duration::from_millis(200),
        ..RedisBusOptions::default()
    };
    let bus = RedisBus::connect(&cluster.redis_url(), opts).await.unwrap();
    let durable = StreamSpec::durable("t:{wait}");
    let err = bus
        .append(&durable, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, gekko_bus::BusError::NotReplicated(_)),
        "expected NotReplicated, got {err}"
    );
    assert!(err.to_string().contains("1 of 2 replicas"), "{err}");
    let err = bus.append_batch(&durable, &payloads(3)).await.unwrap_err();
    assert!(
        matches!(err, gekko_bus::BusError::NotReplicated(_)),
        "{err}"
    );
    let capped = StreamSpec::capped("t:{md}", 100);
    bus.append(&capped, Bytes::from_static(b"q")).await.unwrap();

    // With the one replica each master has, the same appends are acknowledged.
    let ok = RedisBus::connect(&cluster.redis_url(), RedisBusOptions::default())
        .await
        .unwrap();
    ok.append(&durable, Bytes::from_static(b"y")).await.unwrap();
    assert_eq!(
        ok.append_batch(&durable, &payloads(3)).await.unwrap().len(),
        3
    );
}

/// The master owning a durable stream's slot is SIGKILLed in the middle of a
/// publish/consume run with `WAIT 1`. Its replica is promoted; every append that was
/// acknowledged is readable afterwards and reaches the consumer group; the bus reports
/// not-ready while the shard is down; the writer recovers once the old master is back as
/// a replica (until then the shard has no replica and appends fail as not replicated).
#[tokio::test]
async fn cluster_master_failover_loses_nothing_acknowledged() {
    let mut cluster = RedisCluster::start(3, 1);
    let opts = RedisBusOptions {
        write_deadline: Duration::from_secs(20),
        health_interval: Duration::from_millis(50),
        replica_ack_timeout: Duration::from_millis(500),
        ..RedisBusOptions::default()
    };
    let bus = Arc::new(RedisBus::connect(&cluster.redis_url(), opts).await.unwrap());
    let s = StreamSpec::durable("gekko:{orders:failover}");
    bus.ensure_group(&s.name, "g").await.unwrap();

    let traffic = Traffic::start(&bus, &s);

    assert!(
        grown(&bus, &s.name, 50).await,
        "writer made progress before the kill"
    );
    let killed = cluster.kill_master_of(&s.name);
    assert!(
        gekko_testkit::eventually(Duration::from_secs(10), || async { !bus.is_ready() }).await,
        "bus must report not-ready while a shard is down"
    );
    cluster
        .wait_serving(Duration::from_secs(30))
        .expect("replica promoted");
    assert_ne!(cluster.master_of(&s.name).unwrap(), killed);
    assert!(
        gekko_testkit::eventually(Duration::from_secs(20), || async { bus.is_ready() }).await,
        "bus must become ready again once the promoted replica answers"
    );
    cluster.restart(killed).expect("old master restarts");
    cluster
        .wait_healthy(Duration::from_secs(30))
        .expect("old master back as a replica");
    let before = bus.stream_len(&s.name).await.unwrap();
    assert!(
        grown(&bus, &s.name, before + 50).await,
        "writer recovers after the failover"
    );
    traffic.finish_and_check(&bus, &s, "the failover").await;
}

/// Redis is killed (SIGKILL) and restarted in the middle of a publish/consume run. Every
/// append that was acknowledged must be in the stream afterwards and reach the consumer
/// group; the bus reports not-ready while Redis is down and ready again after.
#[tokio::test]
async fn redis_restart_loses_nothing_acknowledged() {
    let mut server = RedisServer::start();
    let opts = RedisBusOptions {
        write_deadline: Duration::from_secs(20),
        health_interval: Duration::from_millis(50),
        ..RedisBusOptions::default()
    };
    let bus = Arc::new(RedisBus::connect(&server.url(), opts).await.unwrap());
    let s = StreamSpec::durable("t:restart");
    bus.ensure_group(&s.name, "g").await.unwrap();

    let traffic = Traffic::start(&bus, &s);

    assert!(
        grown(&bus, &s.name, 30).await,
        "writer made progress before the kill"
    );
    server.kill();
    assert!(
        gekko_testkit::eventually(Duration::from_secs(5), || async { !bus.is_ready() }).await,
        "bus must report not-ready while redis is down"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart();
    assert!(
        gekko_testkit::eventually(Duration::from_secs(10), || async { bus.is_ready() }).await,
        "bus must become ready again after redis returns"
    );
    let before = bus.stream_len(&s.name).await.unwrap();
    assert!(
        grown(&bus, &s.name, before + 20).await,
        "writer recovers after the restart"
    );
    let acked = traffic.finish_and_check(&bus, &s, "the restart").await;
    assert!(
        acked.len() > 20,
        "writer made progress ({} acked)",
        acked.len()
    );
}

/// A writer appending `order-<i>` every 2 ms and a consumer-group reader on one durable
/// stream, both running until [`Traffic::finish_and_check`]: the load the restart and
/// failover tests disrupt.
struct Traffic {
    stop: tokio_util::sync::CancellationToken,
    writer: tokio::task::JoinHandle<Vec<Bytes>>,
    consumer: tokio::task::JoinHandle<BTreeSet<Bytes>>,
}

impl Traffic {
    fn start(bus: &Arc<RedisBus>, s: &StreamSpec) -> Self {
        let stop = tokio_util::sync::CancellationToken::new();
        let writer = {
            let (bus, s, stop) = (bus.clone(), s.clone(), stop.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut i = 0u32;
                while !stop.is_cancelled() {
                    let p = Bytes::from(format!("order-{i}"));
                    if bus.append(&s, p.clone()).await.is_ok() {
                        acked.push(p);
                    }
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                acked
            })
        };
        let consumer = {
            let (bus, s, stop) = (bus.clone(), s.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = BTreeSet::new();
                let mut reader = bus.group_reader(&s.name, "g", "c").await.unwrap();
                // Keep reading after `stop` until the stream is drained.
                let mut idle_rounds = 0;
                loop {
                    match reader.read(100, Duration::from_millis(100)).await {
                        Ok(batch) if batch.is_empty() => {
                            if stop.is_cancelled() {
                                idle_rounds += 1;
                                if idle_rounds > 5 {
                                    break;
                                }
                            }
                        }
                        Ok(batch) => {
                            idle_rounds = 0;
                            let ids: Vec<String> = batch.iter().map(|d| d.id.clone()).collect();
                            seen.extend(batch.into_iter().map(|d| d.payload));
                            // An ack lost to the outage leaves the entry pending; it is
                            // recovered below via the consumer's own pending list.
                            let _ = reader.ack(&ids).await;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
                for d in reader.read_own_pending(100_000).await.unwrap() {
                    seen.insert(d.payload);
                }
                seen
            })
        };
        Self {
            stop,
            writer,
            consumer,
        }
    }

    /// Stops both tasks and checks that every acknowledged append is in the stream and
    /// reached the consumer group; returns the acknowledged payloads.
    async fn finish_and_check(self, bus: &Arc<RedisBus>, s: &StreamSpec, what: &str) -> Vec<Bytes> {
        self.stop.cancel();
        let acked = self.writer.await.unwrap();
        let seen = self.consumer.await.unwrap();
        let mut tail = bus
            .tail_reader(&s.name, StartFrom::Beginning)
            .await
            .unwrap();
        let mut stored = BTreeSet::new();
        loop {
            let batch = tail.read(1000, Duration::ZERO).await.unwrap();
            if batch.is_empty() {
                break;
            }
            stored.extend(batch.into_iter().map(|d| d.payload));
        }
        let missing_stored: Vec<_> = acked.iter().filter(|p| !stored.contains(*p)).collect();
        assert!(
            missing_stored.is_empty(),
            "acknowledged but lost in {what}: {missing_stored:?}"
        );
        let missing_seen: Vec<_> = acked.iter().filter(|p| !seen.contains(*p)).collect();
        assert!(
            missing_seen.is_empty(),
            "acknowledged but never consumed: {missing_seen:?}"
        );
        acked
    }
}

/// Whether `name` reaches `n` entries within 30 s. Progress is polled, not slept for: the
/// cluster tests beside these load the machine's two cores.
async fn grown(bus: &Arc<RedisBus>, name: &str, n: u64) -> bool {
    gekko_testkit::eventually(Duration::from_secs(30), || async {
        bus.stream_len(name).await.is_ok_and(|l| l >= n)
    })
    .await
}
