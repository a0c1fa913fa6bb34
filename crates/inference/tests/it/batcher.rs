//! Dynamic batching: flush on size, flush on time, hot reload under load,
//! load shedding and shutdown.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use candle_core::{DType, Device};
use gekko_inference::{Batcher, BatcherConfig, ComputeBudget, InferenceError, ModelRegistry};
use tokio_util::sync::CancellationToken;

use crate::common::{TempDir, install_copy};

fn registry(tmp: &TempDir) -> Arc<ModelRegistry> {
    install_copy(tmp.path(), "direction", 1);
    Arc::new(ModelRegistry::open(tmp.path(), "direction", Device::Cpu, DType::F32).expect("open"))
}

fn row(seed: usize) -> Vec<f32> {
    (0..128)
        .map(|j| ((seed * 31 + j) % 17) as f32 / 17.0 - 0.5)
        .collect()
}

fn config(max_batch: usize, max_wait: Duration) -> BatcherConfig {
    BatcherConfig {
        max_batch,
        max_wait,
        queue_capacity: 256,
    }
}

#[tokio::test(start_paused = true)]
async fn flushes_when_the_batch_is_full() {
    let tmp = TempDir::new("batch-size");
    let cancel = CancellationToken::new();
    // A long max_wait: only reaching max_batch can flush in time.
    let budget = ComputeBudget {
        cpu_threads: 1,
        ..ComputeBudget::default()
    };
    let handle = Batcher::spawn_with_budget(
        registry(&tmp),
        config(8, Duration::from_secs(60)),
        budget,
        cancel.clone(),
    );
    // The CPU ignores the GPU memory budget: max_batch is as configured.
    assert_eq!(handle.max_batch(), 8);
    let begin = tokio::time::Instant::now();
    let scored = handle
        .predict_many((0..8).map(row).collect())
        .await
        .expect("scored");
    assert_eq!(scored.len(), 8);
    for s in &scored {
        assert_eq!(s.batch_size, 8);
        assert_eq!((s.model.as_str(), s.version), ("direction", 1));
        assert!(s.queue_wait < Duration::from_secs(1), "{:?}", s.queue_wait);
    }
    assert!(begin.elapsed() < Duration::from_secs(1));
    // Answers come back in request order: compare with direct scoring.
    let model = handle.registry().current();
    for (i, s) in scored.iter().enumerate() {
        let direct = model.predict(&row(i), 1).expect("direct");
        assert!((direct[0].p_up - s.prediction.p_up).abs() < 1e-6);
    }
    // Sixteen rows with max_batch 8 make two full batches.
    let scored = handle
        .predict_many((0..16).map(row).collect())
        .await
        .expect("scored");
    assert!(scored.iter().all(|s| s.batch_size == 8));
    cancel.cancel();
    handle.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn flushes_a_lone_request_after_max_wait() {
    let tmp = TempDir::new("batch-time");
    let cancel = CancellationToken::new();
    let max_wait = Duration::from_millis(50);
    let handle = Batcher::spawn(registry(&tmp), config(64, max_wait), cancel.clone());
    let begin = tokio::time::Instant::now();
    let scored = handle.predict(row(1)).await.expect("scored");
    assert_eq!(scored.batch_size, 1);
    // Paused time advances exactly to the deadline, so the wait is max_wait.
    assert!(scored.queue_wait >= max_wait, "{:?}", scored.queue_wait);
    assert!(
        scored.queue_wait < max_wait + Duration::from_millis(10),
        "{:?}",
        scored.queue_wait
    );
    assert!(begin.elapsed() >= max_wait);
    cancel.cancel();
    handle.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn rejects_bad_rows_before_queueing() {
    let tmp = TempDir::new("batch-bad");
    let cancel = CancellationToken::new();
    let handle = Batcher::spawn(
        registry(&tmp),
        config(8, Duration::from_millis(1)),
        cancel.clone(),
    );
    let mut nan = row(0);
    nan[3] = f32::NAN;
    assert!(matches!(
        handle.predict(nan.clone()).await,
        Err(InferenceError::InvalidInput(_))
    ));
    assert!(matches!(
        handle.predict(vec![0.0; 3]).await,
        Err(InferenceError::InvalidInput(_))
    ));
    let Err(InferenceError::InvalidInput(msg)) = handle.predict_many(vec![row(0), nan]).await
    else {
        panic!("a bad row must fail predict_many");
    };
    assert!(msg.contains("request row 1"), "{msg}");
    // The batcher still works afterwards.
    assert!(handle.predict(row(2)).await.is_ok());
    cancel.cancel();
    handle.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn sheds_when_the_queue_is_full_and_closes_on_cancel() {
    let tmp = TempDir::new("batch-shed");
    let cancel = CancellationToken::new();
    let cfg = BatcherConfig {
        queue_capacity: 4,
        ..config(4, Duration::from_millis(5))
    };
    let handle = Batcher::spawn(registry(&tmp), cfg, cancel.clone());
    let Err(InferenceError::InvalidInput(_)) = handle.predict_many((0..5).map(row).collect()).await
    else {
        panic!("more rows than the queue holds is a client error");
    };
    // Fill the queue without yielding to the collector: poll a 4-row request once
    // (which enqueues all four rows), then a fifth row finds the queue full.
    let fill = handle.predict_many((0..4).map(row).collect());
    tokio::pin!(fill);
    tokio::select! {
        biased;
        _ = &mut fill => panic!("cannot be answered before the collector runs"),
        () = std::future::ready(()) => {}
    }
    let shed = handle.predict(row(9)).await;
    let Err(e) = shed else {
        panic!("the fifth request must be shed");
    };
    assert!(
        matches!(e, InferenceError::Overloaded) && e.is_retryable(),
        "{e}"
    );
    assert_eq!(fill.await.expect("queued rows are answered").len(), 4);
    cancel.cancel();
    handle.stopped().await;
    assert!(matches!(
        handle.predict(row(1)).await,
        Err(InferenceError::Closed)
    ));
}

/// A client fires requests continuously while version 2 is written and swapped
/// in: no request fails, and answers come from both versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_load_fails_nothing() {
    let tmp = TempDir::new("batch-reload");
    let reg = registry(&tmp);
    let cancel = CancellationToken::new();
    let handle = Batcher::spawn(
        Arc::clone(&reg),
        config(16, Duration::from_millis(1)),
        cancel.clone(),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (h, stop, failures) = (handle.clone(), Arc::clone(&stop), Arc::clone(&failures));
        clients.push(tokio::spawn(async move {
            let mut versions = BTreeSet::new();
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                match h.predict(row(i)).await {
                    Ok(s) => {
                        versions.insert(s.version);
                    }
                    Err(e) => {
                        eprintln!("request failed: {e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 4;
            }
            versions
        }));
    }
    let wait_for = |n: usize| {
        let h = handle.clone();
        async move {
            // Poll until some traffic has been served (bounded).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            let mut served = 0;
            while served < n && tokio::time::Instant::now() < deadline {
                if h.predict(row(0)).await.is_ok() {
                    served += 1;
                }
            }
        }
    };
    wait_for(20).await;
    let root = tmp.path().to_path_buf();
    let reg2 = Arc::clone(&reg);
    let swapped = tokio::task::spawn_blocking(move || {
        install_copy(&root, "direction", 2);
        reg2.reload_if_newer()
    })
    .await
    .expect("join")
    .expect("reload");
    assert_eq!(swapped, Some(2));
    wait_for(20).await;
    stop.store(true, Ordering::Relaxed);

    let mut seen = BTreeSet::new();
    for c in clients {
        seen.extend(c.await.expect("client"));
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert_eq!(
        seen,
        BTreeSet::from([1, 2]),
        "both versions must have served"
    );
    cancel.cancel();
    handle.stopped().await;
}

#[tokio::test(start_paused = true)]
async fn watcher_picks_up_new_versions() {
    let tmp = TempDir::new("watcher");
    let reg = registry(&tmp);
    let cancel = CancellationToken::new();
    let watcher = Arc::clone(&reg).spawn_watcher(Duration::from_secs(30), cancel.clone());
    install_copy(tmp.path(), "direction", 2);
    // Poll with a bounded number of simulated ticks.
    for _ in 0..10 {
        if reg.current().meta().version == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    assert_eq!(reg.current().meta().version, 2);
    cancel.cancel();
    watcher.await.expect("watcher stops on cancel");
}
