//! The readiness latch: one source of truth for "can this process take traffic?".
//!
//! Every component that must be up before the process is useful (a venue connection, the
//! bus, a loaded model) registers itself with [`Readiness::component`] and receives a
//! [`ReadyHandle`]. It flips the handle to ready once it works and back to not-ready, with
//! a reason, when it degrades. The process is ready only when at least one component is
//! registered and every component is ready, so a process that has not wired anything yet
//! is never reported healthy by accident.
//!
//! The same state feeds `/readyz` ([`crate::http`]), gRPC health ([`crate::grpc`]) and the
//! `gekko_ready` / `gekko_component_ready` gauges, so they cannot disagree.
//!
//! A handle marks its component not ready when dropped: a component whose task ended or
//! panicked must not keep the process looking healthy.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::watch;

use crate::metrics::{COMPONENT_READY, READY};

/// The detail of a component that registered but has not reported ready yet.
pub const DETAIL_STARTING: &str = "starting";
/// The detail of a component whose [`ReadyHandle`] was dropped.
pub const DETAIL_STOPPED: &str = "component stopped";

/// The readiness of one component, as reported by [`Readiness::report`] and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentReport {
    /// The name the component registered with.
    pub name: String,
    /// Whether the component is ready.
    pub ready: bool,
    /// Why the component is not ready; empty when it is, unless the component gave a
    /// note with [`ReadyHandle::set_ready_noting`].
    pub detail: String,
}

/// The process-wide readiness latch. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Readiness {
    inner: Arc<Inner>,
}

/// Shared state behind [`Readiness`] and every [`ReadyHandle`].
///
/// Concurrency: a `std::sync::Mutex`, not an async one, because every critical section is
/// a few field writes with no `.await` inside, and handles are updated from sync and async
/// code alike (including `Drop`). The watch channel is sent to while the lock is held so
/// that subscribers observe transitions in the same order as the state changed; `send` on
/// a watch channel never blocks, so this cannot stall.
struct Inner {
    state: Mutex<State>,
    ready_tx: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    components: Vec<Entry>,
}

struct Entry {
    /// Identifies the registration, so a superseded handle cannot change its successor.
    id: u64,
    report: ComponentReport,
}

impl State {
    fn overall(&self) -> bool {
        !self.components.is_empty() && self.components.iter().all(|c| c.report.ready)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written (each
        // section only assigns whole fields), so a poisoned lock is still usable.
        gekko_core::sync::lock(&self.state)
    }

    /// Applies `change` to the registration `id`, if it is still current, then publishes.
    fn update(&self, id: u64, change: impl FnOnce(&mut ComponentReport)) {
        let mut state = self.lock();
        let Some(entry) = state.components.iter_mut().find(|c| c.id == id) else {
            return;
        };
        let before = entry.report.clone();
        change(&mut entry.report);
        if entry.report == before {
            return;
        }
        if entry.report.ready != before.ready {
            tracing::info!(
                component = %entry.report.name,
                ready = entry.report.ready,
                detail = %entry.report.detail,
                "component readiness changed"
            );
        }
        set_component_gauge(&entry.report);
        self.publish_overall(&state);
    }

    /// Updates the overall gauge and notifies subscribers if overall readiness changed.
    fn publish_overall(&self, state: &State) {
        let ready = state.overall();
        ::metrics::gauge!(READY).set(f64::from(u8::from(ready)));
        self.ready_tx.send_if_modified(|current| {
            let changed = *current != ready;
            *current = ready;
            changed
        });
    }
}

fn set_component_gauge(report: &ComponentReport) {
    ::metrics::gauge!(COMPONENT_READY, "component" => report.name.clone())
        .set(f64::from(u8::from(report.ready)));
}

impl Readiness {
    /// Creates a latch with no components; it is not ready until one registers and
    /// reports ready.
    #[must_use]
    pub fn new() -> Self {
        let (ready_tx, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                ready_tx,
            }),
        }
    }

    /// Registers a component, initially not ready (detail `"starting"`), and returns the
    /// handle it reports through.
    ///
    /// Registering a name that already exists replaces the earlier registration: that is
    /// how a restarted component takes over from the one that stopped. The old handle
    /// keeps working as a value but its updates are ignored from then on.
    #[must_use = "the component is marked not ready as soon as its handle is dropped"]
    pub fn component(&self, name: &str) -> ReadyHandle {
        let mut state = self.inner.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.components.retain(|c| c.report.name != name);
        let report = ComponentReport {
            name: name.to_owned(),
            ready: false,
            detail: DETAIL_STARTING.to_owned(),
        };
        set_component_gauge(&report);
        state.components.push(Entry { id, report });
        self.inner.publish_overall(&state);
        drop(state);
        ReadyHandle {
            inner: Arc::clone(&self.inner),
            id,
            name: name.to_owned(),
        }
    }

    /// True when at least one component is registered and every one is ready.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.inner.lock().overall()
    }

    /// Every registered component in registration order.
    #[must_use]
    pub fn report(&self) -> Vec<ComponentReport> {
        self.inner
            .lock()
            .components
            .iter()
            .map(|c| c.report.clone())
            .collect()
    }

    /// A receiver of overall readiness; it is notified each time readiness flips.
    ///
    /// Intermediate flips may be coalesced (a watch channel keeps only the latest value),
    /// which is what a health endpoint wants.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.inner.ready_tx.subscribe()
    }

    /// Re-sets the `gekko_ready` and `gekko_component_ready` gauges from the current state.
    ///
    /// Gauges are set on every change already; this exists for a recorder installed after
    /// components registered, and the `/metrics` route calls it before rendering.
    pub fn publish_metrics(&self) {
        let state = self.inner.lock();
        for c in &state.components {
            set_component_gauge(&c.report);
        }
        ::metrics::gauge!(READY).set(f64::from(u8::from(state.overall())));
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readiness")
            .field("ready", &self.is_ready())
            .field("components", &self.report())
            .finish()
    }
}

/// A component's grip on the readiness latch.
///
/// Not `Clone`: dropping the handle marks the component stopped, so there must be exactly
/// one owner. Share it behind an `Arc` if several tasks report for one component.
pub struct ReadyHandle {
    inner: Arc<Inner>,
    id: u64,
    name: String,
}

impl ReadyHandle {
    /// The name the component registered with.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Marks the component ready and clears its detail.
    pub fn set_ready(&self) {
        self.inner.update(self.id, |r| {
            r.ready = true;
            r.detail.clear();
        });
    }

    /// Marks the component ready with a note shown in `/readyz` (a role, a mode): what a
    /// ready component wants an operator to see, never a reason for not being ready.
    pub fn set_ready_noting(&self, note: impl Into<String>) {
        let note = note.into();
        self.inner.update(self.id, |r| {
            r.ready = true;
            r.detail = note;
        });
    }

    /// Marks the component not ready, saying why (shown in `/readyz`).
    pub fn set_not_ready(&self, detail: impl Into<String>) {
        let detail = detail.into();
        self.inner.update(self.id, |r| {
            r.ready = false;
            r.detail = detail;
        });
    }

    /// Whether this component is currently ready. False once the registration has been
    /// replaced by a newer one with the same name.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.inner
            .lock()
            .components
            .iter()
            .find(|c| c.id == self.id)
            .is_some_and(|c| c.report.ready)
    }
}

impl Drop for ReadyHandle {
    fn drop(&mut self) {
        self.set_not_ready(DETAIL_STOPPED);
    }
}

impl fmt::Debug for ReadyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadyHandle")
            .field("name", &self.name)
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn no_components_is_not_ready() {
        let readiness = Readiness::new();
        assert!(!readiness.is_ready());
        assert!(readiness.report().is_empty());
    }

    #[test]
    fn ready_only_when_all_components_are_ready() {
        let readiness = Readiness::new();
        let bus = readiness.component("bus");
        let venue = readiness.component("venue");
        assert!(!readiness.is_ready());
        assert_eq!(readiness.report()[0].detail, DETAIL_STARTING);

        bus.set_ready();
        assert!(bus.is_ready());
        assert!(!readiness.is_ready());

        venue.set_ready();
        assert!(readiness.is_ready());
        assert!(
            readiness
                .report()
                .iter()
                .all(|c| c.ready && c.detail.is_empty())
        );
    }

    #[test]
    fn not_ready_component_is_listed_with_its_reason() {
        let readiness = Readiness::new();
        let bus = readiness.component("bus");
        let venue = readiness.component("venue");
        bus.set_ready();
        venue.set_ready();
        venue.set_not_ready("websocket reconnecting");

        assert!(!readiness.is_ready());
        let report = readiness.report();
        assert_eq!(
            report,
            vec![
                ComponentReport {
                    name: "bus".into(),
                    ready: true,
                    detail: String::new()
                },
                ComponentReport {
                    name: "venue".into(),
                    ready: false,
                    detail: "websocket reconnecting".into()
                },
            ]
        );
    }

    #[test]
    fn dropping_a_handle_marks_the_component_stopped() {
        let readiness = Readiness::new();
        let bus = readiness.component("bus");
        bus.set_ready();
        assert!(readiness.is_ready());

        drop(bus);
        assert!(!readiness.is_ready());
        let report = readiness.report();
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].detail, DETAIL_STOPPED);
    }

    #[test]
    fn re_registering_a_name_supersedes_the_old_handle() {
        let readiness = Readiness::new();
        let old = readiness.component("venue");
        old.set_ready();
        let new = readiness.component("venue");
        assert!(
            !readiness.is_ready(),
            "the new registration starts not ready"
        );

        new.set_ready();
        drop(old);
        assert!(
            readiness.is_ready(),
            "the superseded handle no longer counts"
        );
        assert_eq!(readiness.report().len(), 1);
        assert!(!new.name().is_empty());
    }

    #[tokio::test]
    async fn subscribers_see_every_flip() {
        let readiness = Readiness::new();
        let mut rx = readiness.subscribe();
        assert!(!*rx.borrow_and_update());

        let bus = readiness.component("bus");
        bus.set_ready();
        tokio::time::timeout(Duration::from_secs(1), rx.changed())
            .await
            .expect("readiness change was not published")
            .expect("sender alive");
        assert!(*rx.borrow_and_update());

        bus.set_not_ready("redis down");
        tokio::time::timeout(Duration::from_secs(1), rx.changed())
            .await
            .expect("readiness change was not published")
            .expect("sender alive");
        assert!(!*rx.borrow_and_update());

        // Same overall value: no spurious notification.
        bus.set_not_ready("still down");
        assert!(!rx.has_changed().expect("sender alive"));
    }
}
