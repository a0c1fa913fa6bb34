//! Backups against real `redis-server`s: the round trip (orders, fills and audit records
//! written through gekko's own writers, a config stream, a binary field and a consumer
//! group with pending entries, snapshotted and restored into a second, empty Redis, every
//! entry and id compared, the audit chain verified there), retention, damaged snapshots
//! refused, a non-empty target refused, an encrypted snapshot and a wrong key, and the
//! periodic service writing snapshots on its interval.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gekko_audit::{AuditKey, AuditLog, AuditRecord};
use gekko_backup::{
    BackupError, BackupKey, BackupService, BackupServiceSettings, RestoreOptions, connect,
    durable_streams, list_snapshots, read_snapshot, read_streams, restore, take_snapshot,
};
use gekko_bus::{Bus, MemoryBus, RedisBus, RedisBusOptions, Topic, names};
use gekko_config::{AuditLogging, EncryptionSettings};
use gekko_core::{ClientOrderId, Fill, InstrumentId, OrderRequest, OrderType, Side, VenueId};
use gekko_gateway::orders::{OrderEvent, OrderEventKind, pending};
use gekko_runtime::{Readiness, Service, ServiceCtx, Shutdown};
use gekko_testkit::RedisServer;
use rust_decimal::Decimal;
use secrecy::SecretString;

const AUDIT_SECRET: [u8; 32] = [0x42; 32];
const AUDIT_STREAM: &str = "gekko:audit";

fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let dir = std::env::temp_dir().join(format!(
        "gekko-backup-{tag}-{}-{}",
        std::process::id(),
        nanos ^ (N.fetch_add(1, Ordering::Relaxed) << 40)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn audit_settings(dir: &Path) -> AuditLogging {
    AuditLogging {
        stream: AUDIT_STREAM.to_owned(),
        key: Some(SecretString::from(hex::encode(AUDIT_SECRET))),
        archive_dir: dir.join("audit-archive"),
        ..AuditLogging::default()
    }
}

fn order_event(venue: VenueId, i: usize) -> OrderEvent {
    let request = OrderRequest {
        client_order_id: ClientOrderId::parse(&format!("bk-{venue}-{i}")).unwrap(),
        instrument: InstrumentId::new(venue, "BTC", "USD"),
        side: if i.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        },
        order_type: OrderType::Limit,
        qty: Decimal::new(125 + i as i64, 3),
        price: Some(Decimal::new(6_512_345 + i as i64, 2)),
        time_in_force: None,
    };
    OrderEvent {
        kind: OrderEventKind::Submitting,
        order: pending(request, 1_700_000_000_000 + i as i64),
        sent_ms: None,
        notional: Some(Decimal::new(81_404, 1)),
    }
}

fn fill(venue: VenueId, i: usize) -> Fill {
    Fill {
        client_order_id: ClientOrderId::parse(&format!("bk-{venue}-{i}")).unwrap(),
        venue_order_id: format!("v-{i}"),
        trade_id: format!("t-{i}"),
        instrument: InstrumentId::new(venue, "BTC", "USD"),
        side: Side::Buy,
        price: Decimal::new(6_512_345, 2),
        qty: Decimal::new(125, 3),
        fee: Decimal::new(81, 3),
        fee_asset: "USD".to_owned(),
        ts_ms: 1_700_000_000_000 + i as i64,
    }
}

/// Fills `server` with gekko's durable streams: order events and fills through their
/// typed topics, audit records through the audit log, a config stream, a non-UTF-8 field,
/// a consumer group with pending entries, and a market-data stream a backup must skip.
/// Returns the number of entries in the streams a backup covers.
async fn populate(server: &RedisServer, dir: &Path, orders: usize) -> u64 {
    let bus: Arc<dyn Bus> = Arc::new(
        RedisBus::connect(&server.url(), RedisBusOptions::default())
            .await
            .unwrap(),
    );
    let mut total = 0u64;
    for venue in [VenueId::BinanceUs, VenueId::Oanda] {
        let orders_topic: Topic<OrderEvent> = Topic::durable(names::orders(venue.as_str()), 1);
        let fills_topic: Topic<Fill> = Topic::durable(names::fills(venue.as_str()), 1);
        for i in 0..orders {
            orders_topic
                .publish(&*bus, "gateway-test", &order_event(venue, i))
                .await
                .unwrap();
            if i.is_multiple_of(3) {
                fills_topic
                    .publish(&*bus, "gateway-test", &fill(venue, i))
                    .await
                    .unwrap();
                total += 1;
            }
            total += 1;
        }
    }
    let audit = AuditLog::open(bus.clone(), &audit_settings(dir), "backup-test")
        .await
        .unwrap();
    for i in 0..25 {
        audit
            .record(
                AuditRecord::new("tester", "order.place", "ok")
                    .with_detail(serde_json::json!({"client_id": format!("bk-{i}")})),
            )
            .await
            .unwrap();
        total += 1;
    }
    let mut conn = connect(&server.url()).await.unwrap();
    for v in 1..=3 {
        let () = redis::cmd("XADD")
            .arg("gekko:config")
            .arg("*")
            .arg("version")
            .arg(v)
            .arg("env")
            .arg(format!("RISK_LIMITS=max_order_notional={v}000"))
            .query_async(&mut conn)
            .await
            .map(|_: String| ())
            .unwrap();
        total += 1;
    }
    // A binary value and a binary field name survive the round trip byte for byte.
    let _: String = redis::cmd("XADD")
        .arg("gekko:kill_switch:binanceus")
        .arg("*")
        .arg(&b"bin\xff\x00"[..])
        .arg(&b"\x80\x81\x82"[..])
        .query_async(&mut conn)
        .await
        .unwrap();
    total += 1;
    // A consumer group that read 4 order events and acknowledged 2.
    let stream = names::orders("binanceus");
    let () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("reporter")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let read: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("reporter")
        .arg("c1")
        .arg("COUNT")
        .arg(4)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    drop(read);
    let ids: Vec<String> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(2)
        .query_async::<Vec<(String, Vec<(String, String)>)>>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let _: i64 = redis::cmd("XACK")
        .arg(&stream)
        .arg("reporter")
        .arg(&ids)
        .query_async(&mut conn)
        .await
        .unwrap();
    // Capped market data is not backed up.
    let _: String = redis::cmd("XADD")
        .arg(names::quotes("binanceus"))
        .arg("*")
        .arg("d")
        .arg("{}")
        .query_async(&mut conn)
        .await
        .unwrap();
    total
}

async fn dump(url: &str) -> Vec<gekko_backup::StreamData> {
    let mut conn = connect(url).await.unwrap();
    let names = durable_streams(&mut conn, AUDIT_STREAM).await.unwrap();
    read_streams(&mut conn, &names).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_restores_every_entry_with_its_id_into_an_empty_redis() {
    let dir = temp_dir("roundtrip");
    let source = RedisServer::start();
    // More than one XRANGE page (1000) on the order streams.
    let total = populate(&source, &dir, 1_200).await;

    let mut conn = connect(&source.url()).await.unwrap();
    let started = std::time::Instant::now();
    let out = take_snapshot(&mut conn, AUDIT_STREAM, &dir.join("backups"), 7, None)
        .await
        .unwrap();
    eprintln!(
        "snapshot: {} entries, {} bytes in {:?}",
        out.manifest.total_entries(),
        out.bytes,
        started.elapsed()
    );
    assert_eq!(out.manifest.total_entries(), total);
    let names: Vec<&str> = out
        .manifest
        .streams
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "gekko:audit",
            "gekko:config",
            "gekko:kill_switch:binanceus",
            "gekko:{fills:binanceus}",
            "gekko:{fills:oanda}",
            "gekko:{orders:binanceus}",
            "gekko:{orders:oanda}",
        ]
    );

    let target = RedisServer::start();
    let snap = read_snapshot(&out.path, None).unwrap();
    let mut tconn = connect(&target.url()).await.unwrap();
    let started = std::time::Instant::now();
    let restored = restore(&mut tconn, &snap, RestoreOptions::default())
        .await
        .unwrap();
    eprintln!("restore: {restored:?} in {:?}", started.elapsed());
    assert_eq!(restored.entries, total);
    assert_eq!(restored.groups, 1);

    // Every stream, entry, id, field and group position is the source's.
    let before = dump(&source.url()).await;
    let after = dump(&target.url()).await;
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.manifest.name, a.manifest.name);
        assert_eq!(b.entries, a.entries, "entries of {}", b.manifest.name);
        assert_eq!(b.manifest.last_id, a.manifest.last_id);
    }
    // The group resumes before its oldest pending entry: the two read but unacknowledged
    // order events are delivered again, and nothing before them.
    let orders = after
        .iter()
        .find(|s| s.manifest.name == "gekko:{orders:binanceus}")
        .unwrap();
    assert_eq!(orders.manifest.groups.len(), 1);
    let group = &orders.manifest.groups[0];
    assert_eq!(group.name, "reporter");
    let redelivered: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("reporter")
        .arg("c9")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg("gekko:{orders:binanceus}")
        .arg(">")
        .query_async(&mut tconn)
        .await
        .unwrap();
    let third_id = &orders.entries[2].0;
    assert!(
        format!("{redelivered:?}").contains(third_id.as_str()),
        "the first pending entry ({third_id}) comes again: {redelivered:?}"
    );

    // The typed readers see the same records.
    let tbus = RedisBus::connect(&target.url(), RedisBusOptions::default())
        .await
        .unwrap();
    let topic: Topic<OrderEvent> = Topic::durable(names::orders("oanda"), 1);
    let mut events = Vec::new();
    topic
        .replay(&tbus, |e| events.push(e.payload))
        .await
        .unwrap();
    assert_eq!(events.len(), 1_200);
    assert_eq!(events[7], order_event(VenueId::Oanda, 7));

    // The audit chain verifies on the target, as `gekko audit verify` would.
    let report = gekko_audit::verify(
        &tbus,
        &AuditKey::from_secret(&AUDIT_SECRET),
        AUDIT_STREAM,
        &dir.join("audit-archive"),
    )
    .await
    .unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries, 25);

    // New entries after the restore get ids after the restored ones.
    let new_id: String = redis::cmd("XADD")
        .arg("gekko:{orders:oanda}")
        .arg("*")
        .arg("d")
        .arg("{}")
        .query_async(&mut tconn)
        .await
        .unwrap();
    let last = &after
        .iter()
        .find(|s| s.manifest.name == "gekko:{orders:oanda}")
        .unwrap()
        .manifest
        .last_id;
    assert!(id_key(&new_id) > id_key(last), "{new_id} after {last}");
    // Market data was not in the snapshot.
    let exists: i64 = redis::cmd("EXISTS")
        .arg(names::quotes("binanceus"))
        .query_async(&mut tconn)
        .await
        .unwrap();
    assert_eq!(exists, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

fn id_key(id: &str) -> (u64, u64) {
    let (a, b) = id.split_once('-').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_newest_snapshots() {
    let dir = temp_dir("retention");
    let server = RedisServer::start();
    populate(&server, &dir, 5).await;
    let mut conn = connect(&server.url()).await.unwrap();
    let backups = dir.join("backups");
    std::fs::write(backups.join("notes.txt"), "not a snapshot").ok();
    let mut written = Vec::new();
    for _ in 0..5 {
        let out = take_snapshot(&mut conn, AUDIT_STREAM, &backups, 3, None)
            .await
            .unwrap();
        written.push(out.path);
    }
    assert_eq!(list_snapshots(&backups).unwrap(), written[2..].to_vec());
    // No temp files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_or_truncated_snapshot_is_refused() {
    let dir = temp_dir("tamper");
    let server = RedisServer::start();
    populate(&server, &dir, 20).await;
    let mut conn = connect(&server.url()).await.unwrap();
    let out = take_snapshot(&mut conn, AUDIT_STREAM, &dir.join("b"), 7, None)
        .await
        .unwrap();
    let good = std::fs::read(&out.path).unwrap();
    assert!(gekko_backup::format::decode(&good, None).is_ok());
    let body_at = good
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0
        + 1;

    // One byte of the body changed: the hash does not check.
    let mut edited = good.clone();
    let at = body_at + (good.len() - body_at) / 2;
    edited[at] = if edited[at] == b'7' { b'8' } else { b'7' };
    let e = gekko_backup::format::decode(&edited, None).unwrap_err();
    assert!(matches!(e, BackupError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("SHA-256"), "{e}");

    // Truncated anywhere: refused, never partly restored.
    for cut in [good.len() - 1, body_at + 10, body_at - 5, 8] {
        let e = gekko_backup::format::decode(&good[..cut], None).unwrap_err();
        assert!(matches!(e, BackupError::Invalid(_)), "cut at {cut}: {e}");
    }
    // A manifest whose count was edited (and its hash left alone) is caught too.
    let text = String::from_utf8(good.clone()).unwrap();
    let edited = text.replacen("\"entries\":25", "\"entries\":24", 1);
    assert_ne!(edited, text);
    let e = gekko_backup::format::decode(edited.as_bytes(), None).unwrap_err();
    assert!(e.to_string().contains("manifest says 24"), "{e}");

    // Through the file API, a restore of a damaged file writes nothing.
    let bad = dir.join("bad.gkb");
    std::fs::write(&bad, &good[..good.len() - 3]).unwrap();
    assert!(read_snapshot(&bad, None).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_empty_target_is_refused_unless_forced() {
    let dir = temp_dir("nonempty");
    let source = RedisServer::start();
    populate(&source, &dir, 10).await;
    let mut conn = connect(&source.url()).await.unwrap();
    let out = take_snapshot(&mut conn, AUDIT_STREAM, &dir.join("b"), 7, None)
        .await
        .unwrap();
    let snap = read_snapshot(&out.path, None).unwrap();

    let target = RedisServer::start();
    let mut t = connect(&target.url()).await.unwrap();
    let () = redis::cmd("SET")
        .arg("someone:else")
        .arg("1")
        .query_async(&mut t)
        .await
        .unwrap();
    // A stale order stream with an entry newer than the snapshot's.
    let _: String = redis::cmd("XADD")
        .arg("gekko:{orders:binanceus}")
        .arg("99999999999999-0")
        .arg("d")
        .arg("stale")
        .query_async(&mut t)
        .await
        .unwrap();
    let e = restore(&mut t, &snap, RestoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, BackupError::NotEmpty { keys: 2 }), "{e}");
    let len: u64 = redis::cmd("XLEN")
        .arg("gekko:{orders:binanceus}")
        .query_async(&mut t)
        .await
        .unwrap();
    assert_eq!(len, 1, "nothing written on refusal");

    // Forced: the snapshot's streams are replaced, other keys stay.
    restore(&mut t, &snap, RestoreOptions { force: true })
        .await
        .unwrap();
    let after = dump(&target.url()).await;
    let before = dump(&source.url()).await;
    assert_eq!(
        before.iter().map(|s| &s.entries).collect::<Vec<_>>(),
        after.iter().map(|s| &s.entries).collect::<Vec<_>>()
    );
    let other: String = redis::cmd("GET")
        .arg("someone:else")
        .query_async(&mut t)
        .await
        .unwrap();
    assert_eq!(other, "1");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_snapshot_needs_its_key() {
    let dir = temp_dir("sealed");
    let source = RedisServer::start();
    populate(&source, &dir, 10).await;
    let key_file = dir.join("backup.key");
    std::fs::write(&key_file, format!("{}\n", hex::encode([7u8; 32]))).unwrap();
    let key = BackupKey::from_settings(&EncryptionSettings {
        key_file: Some(key_file),
        ..EncryptionSettings::default()
    })
    .unwrap()
    .unwrap();
    assert!(!format!("{key:?}").contains(&hex::encode([7u8; 32])));
    let mut conn = connect(&source.url()).await.unwrap();
    let out = take_snapshot(&mut conn, AUDIT_STREAM, &dir.join("b"), 7, Some(&key))
        .await
        .unwrap();
    let bytes = std::fs::read(&out.path).unwrap();
    // The body is not readable: no client id or audit action appears in the file.
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("bk-binanceus-3"));
    assert!(!text.contains("order.place"));
    assert_eq!(out.manifest.encryption, "xchacha20poly1305");
    assert_eq!(out.manifest.key_id.as_deref(), Some(key.id()));

    // No key, another key: clear refusals.
    let e = read_snapshot(&out.path, None).unwrap_err();
    assert!(e.to_string().contains("no key is configured"), "{e}");
    let other = BackupKey::from_settings(&EncryptionSettings {
        key: Some(SecretString::from(hex::encode([8u8; 32]))),
        ..EncryptionSettings::default()
    })
    .unwrap()
    .unwrap();
    let e = read_snapshot(&out.path, Some(&other)).unwrap_err();
    assert!(matches!(e, BackupError::Key(_)));
    assert!(e.to_string().contains("wrong key"), "{e}");
    assert!(!e.to_string().contains(&hex::encode([8u8; 32])));

    // An edited sealed body, or an edited manifest, fails authentication.
    let mut edited = bytes.clone();
    let last = edited.len() - 20;
    edited[last] ^= 1;
    let e = gekko_backup::format::decode(&edited, Some(&key)).unwrap_err();
    assert!(e.to_string().contains("fails authentication"), "{e}");
    // The manifest edited, the sealed body untouched: the manifest is associated data.
    let needle = b"\"created_ms\":";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
        + needle.len();
    let mut edited = bytes[..at].to_vec();
    edited.push(b'1');
    edited.extend_from_slice(&bytes[at..]);
    let e = gekko_backup::format::decode(&edited, Some(&key)).unwrap_err();
    assert!(e.to_string().contains("fails authentication"), "{e}");
    let e = gekko_backup::format::decode(&bytes[..bytes.len() - 1], Some(&key)).unwrap_err();
    assert!(e.to_string().contains("fails authentication"), "{e}");

    // The right key restores it.
    let snap = read_snapshot(&out.path, Some(&key)).unwrap();
    let target = RedisServer::start();
    let mut t = connect(&target.url()).await.unwrap();
    let r = restore(&mut t, &snap, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(r.entries, out.manifest.total_entries());
    assert_eq!(
        dump(&source.url())
            .await
            .iter()
            .map(|s| &s.entries)
            .collect::<Vec<_>>(),
        dump(&target.url())
            .await
            .iter()
            .map(|s| &s.entries)
            .collect::<Vec<_>>()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_writes_a_snapshot_every_interval() {
    let dir = temp_dir("service");
    let server = RedisServer::start();
    populate(&server, &dir, 5).await;
    let backups = dir.join("backups");
    let settings = BackupServiceSettings {
        redis_url: server.url(),
        audit_stream: AUDIT_STREAM.to_owned(),
        dir: backups.clone(),
        interval: Duration::from_millis(400),
        retention: 2,
        encryption: EncryptionSettings::default(),
    };
    let shutdown = Shutdown::new();
    let ctx = ServiceCtx::new(Arc::new(MemoryBus::new()), Readiness::new(), &shutdown);
    let started = std::time::Instant::now();
    let _started = BackupService::start(settings, &ctx).await.unwrap();
    // Watch the directory: every snapshot name seen, while retention keeps 2 (a new file
    // exists for a moment before retention removes the oldest).
    let mut seen = std::collections::BTreeSet::new();
    let mut first_at = None;
    while seen.len() < 4 && started.elapsed() < Duration::from_secs(20) {
        let now = list_snapshots(&backups).unwrap();
        assert!(now.len() <= 3, "retention 2: {now:?}");
        if first_at.is_none() && !now.is_empty() {
            first_at = Some(started.elapsed());
        }
        seen.extend(now);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    assert!(seen.len() >= 4, "4 snapshots within 20 s: {seen:?}");
    // One at start-up, then one per interval: 4 take at least 3 intervals.
    assert!(elapsed >= Duration::from_millis(1_150), "{elapsed:?}");
    assert!(first_at.unwrap() < Duration::from_secs(5), "{first_at:?}");
    eprintln!("4 snapshots in {elapsed:?}, the first after {first_at:?}");
    shutdown.trigger();
    assert!(
        shutdown.drain(Duration::from_secs(5)).await,
        "the service stops"
    );
    // Stopped: the directory holds exactly the newest 2, each a complete snapshot.
    let kept = list_snapshots(&backups).unwrap();
    assert_eq!(kept.len(), 2, "{kept:?}");
    for p in kept {
        let snap = read_snapshot(&p, None).unwrap();
        assert!(snap.manifest.total_entries() > 0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
