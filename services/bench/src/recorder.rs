//! The bench's own `metrics` recorder: keeps every histogram value and counter total by
//! name, so the bench reads back the gateway's stage histograms and drop counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

#[derive(Debug, Default)]
struct Store {
    histograms: Mutex<HashMap<String, Arc<Values>>>,
    counters: Mutex<HashMap<String, Arc<Total>>>,
}

#[derive(Debug, Default)]
struct Values(Mutex<Vec<f64>>);

impl HistogramFn for Values {
    fn record(&self, value: f64) {
        crate::lock(&self.0).push(value);
    }
}

#[derive(Debug, Default)]
struct Total(AtomicU64);

impl CounterFn for Total {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct BenchRecorder(Arc<Store>);

impl Recorder for BenchRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let t = crate::lock(&self.0.counters)
            .entry(key.name().to_owned())
            .or_default()
            .clone();
        Counter::from_arc(t)
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let v = crate::lock(&self.0.histograms)
            .entry(key.name().to_owned())
            .or_default()
            .clone();
        Histogram::from_arc(v)
    }
}

static STORE: OnceLock<Arc<Store>> = OnceLock::new();

/// Installs the recorder (once per process; later calls do nothing).
pub(crate) fn install() {
    let store = STORE.get_or_init(Arc::default).clone();
    // A second install in the same process fails harmlessly: the first one is in place.
    let _ = metrics::set_global_recorder(BenchRecorder(store));
}

/// Takes (and clears) every value recorded so far in histogram `name`, in seconds.
pub(crate) fn take_histogram(name: &str) -> Vec<f64> {
    STORE
        .get()
        .and_then(|s| crate::lock(&s.histograms).get(name).cloned())
        .map(|v| std::mem::take(&mut *crate::lock(&v.0)))
        .unwrap_or_default()
}

/// The total of counter `name` so far (0 when never incremented).
pub(crate) fn counter(name: &str) -> u64 {
    STORE
        .get()
        .and_then(|s| crate::lock(&s.counters).get(name).cloned())
        .map_or(0, |t| t.0.load(Ordering::Relaxed))
}
