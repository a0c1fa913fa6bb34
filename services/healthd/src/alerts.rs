//! Alerts: conditions found by a poll (or received from Alertmanager) become open alerts;
//! every change is an event on the durable stream `gekko:alerts` (also announced on the
//! pub/sub channel of the same name) and a POST to the webhook.
//!
//! An alert's events are `firing`, `escalated` (still open and not acknowledged
//! `HEALTHD_ESCALATE_AFTER_S` after it fired; sent once), `acknowledged` and `resolved`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gekko_bus::{Bus, StreamSpec};
use gekko_proto::v1 as pb;
use serde::Serialize;

/// The durable stream (and pub/sub channel) alert events go to.
pub const ALERTS_STREAM: &str = "gekko:alerts";

/// An alert's severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Someone must act now.
    Critical,
    /// Someone should look.
    Warning,
    /// For the record.
    Info,
}

impl Severity {
    /// `critical`, `warning`, `info`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }

    /// Alertmanager's `severity` label, `warning` when unknown.
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s {
            "critical" | "page" => Self::Critical,
            "info" | "none" => Self::Info,
            _ => Self::Warning,
        }
    }
}

/// Something a poll found to be wrong right now.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// `service_down`, `venue_disconnected`, ...
    pub kind: String,
    /// How bad.
    pub severity: Severity,
    /// What it is about.
    pub subject: String,
    /// One line for a person.
    pub summary: String,
}

impl Condition {
    /// A condition.
    #[must_use]
    pub fn new(
        kind: &str,
        severity: Severity,
        subject: impl Into<String>,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            kind: kind.to_owned(),
            severity,
            subject: subject.into(),
            summary: summary.into(),
        }
    }
}

/// One open alert.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// Its id (acknowledge with it).
    pub id: String,
    /// What kind.
    pub kind: String,
    /// How bad.
    pub severity: Severity,
    /// What it is about.
    pub subject: String,
    /// One line for a person.
    pub summary: String,
    /// `healthd` or `alertmanager`.
    pub source: String,
    /// When it fired.
    pub raised_at_unix_ms: i64,
    /// Whether someone acknowledged it.
    pub acknowledged: bool,
    /// Who did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// Whether it was escalated.
    pub escalated: bool,
    /// Alertmanager's labels, for a received alert.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip)]
    raised: Instant,
}

impl Alert {
    /// Its protobuf form.
    #[must_use]
    pub fn to_pb(&self) -> pb::AlertInfo {
        pb::AlertInfo {
            id: self.id.clone(),
            kind: self.kind.clone(),
            severity: self.severity.as_str().to_owned(),
            subject: self.subject.clone(),
            summary: self.summary.clone(),
            source: self.source.clone(),
            raised_at_unix_ms: self.raised_at_unix_ms,
            acknowledged: self.acknowledged,
            escalated: self.escalated,
        }
    }
}

/// What is published for every change of an alert.
#[derive(Debug, Clone, Serialize)]
pub struct AlertEvent {
    /// `firing`, `escalated`, `acknowledged`, `resolved`.
    pub event: &'static str,
    /// When.
    pub at_unix_ms: i64,
    /// The alert as it is after the change.
    #[serde(flatten)]
    pub alert: Alert,
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where alert events go: the bus, and the webhook when one is configured.
#[derive(Debug, Clone)]
pub struct Publisher {
    bus: Arc<dyn Bus>,
    webhook: Option<String>,
    http: reqwest::Client,
}

impl Publisher {
    /// A publisher on `bus`, posting to `webhook`.
    #[must_use]
    pub fn new(bus: Arc<dyn Bus>, webhook: Option<String>, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        Self { bus, webhook, http }
    }

    /// Publishes one event: appended to `gekko:alerts`, announced on its channel, POSTed
    /// to the webhook. Failures are logged and counted, never returned: an alert that
    /// cannot be delivered one way still goes the others.
    pub async fn publish(&self, event: AlertEvent) {
        let payload = match serde_json::to_vec(&event) {
            Ok(p) => Bytes::from(p),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an alert event");
                return;
            }
        };
        metrics::counter!("gekko_healthd_alert_events_total", "event" => event.event, "kind" => event.alert.kind.clone())
            .increment(1);
        tracing::warn!(
            event = event.event,
            kind = %event.alert.kind,
            subject = %event.alert.subject,
            summary = %event.alert.summary,
            id = %event.alert.id,
            "alert"
        );
        if let Err(e) = self
            .bus
            .append(&StreamSpec::durable(ALERTS_STREAM), payload.clone())
            .await
        {
            metrics::counter!("gekko_healthd_delivery_failures_total", "to" => "stream")
                .increment(1);
            tracing::error!(error = %e, "cannot append an alert to {ALERTS_STREAM}");
        }
        if let Err(e) = self.bus.notify(ALERTS_STREAM, payload.clone()).await {
            metrics::counter!("gekko_healthd_delivery_failures_total", "to" => "channel")
                .increment(1);
            tracing::warn!(error = %e, "cannot announce an alert on {ALERTS_STREAM}");
        }
        if let Some(url) = &self.webhook {
            let sent = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(payload.to_vec())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    metrics::counter!("gekko_healthd_delivery_failures_total", "to" => "webhook")
                        .increment(1);
                    tracing::warn!(status = %r.status(), "the alert webhook refused an alert");
                }
                Err(e) => {
                    metrics::counter!("gekko_healthd_delivery_failures_total", "to" => "webhook")
                        .increment(1);
                    tracing::warn!(error = %e, "cannot POST an alert to the webhook");
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct Book {
    /// `(kind, subject)` → open alert.
    open: BTreeMap<(String, String), Alert>,
}

/// The open alerts. Cheap to clone; clones share one book.
#[derive(Debug, Clone)]
pub struct Alerts {
    book: Arc<Mutex<Book>>,
    publisher: Publisher,
    escalate_after: Duration,
}

impl Alerts {
    /// An empty book.
    #[must_use]
    pub fn new(publisher: Publisher, escalate_after: Duration) -> Self {
        Self {
            book: Arc::new(Mutex::new(Book::default())),
            publisher,
            escalate_after,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        gekko_core::sync::lock(&self.book)
    }

    fn open_alert(
        &self,
        c: &Condition,
        source: &str,
        id: String,
        labels: BTreeMap<String, String>,
    ) -> Option<AlertEvent> {
        let key = (c.kind.clone(), c.subject.clone());
        let mut book = self.lock();
        if let Some(existing) = book.open.get_mut(&key) {
            existing.summary.clone_from(&c.summary);
            return None;
        }
        let alert = Alert {
            id,
            kind: c.kind.clone(),
            severity: c.severity,
            subject: c.subject.clone(),
            summary: c.summary.clone(),
            source: source.to_owned(),
            raised_at_unix_ms: now_unix_ms(),
            acknowledged: false,
            acknowledged_by: None,
            escalated: false,
            labels,
            raised: Instant::now(),
        };
        book.open.insert(key, alert.clone());
        Some(AlertEvent {
            event: "firing",
            at_unix_ms: alert.raised_at_unix_ms,
            alert,
        })
    }

    /// Makes healthd's own open alerts exactly `conditions`: new ones fire, gone ones
    /// resolve (alerts received from Alertmanager are left alone). Then escalates what is
    /// due.
    pub async fn reconcile(&self, conditions: &[Condition]) {
        let mut events = Vec::new();
        for c in conditions {
            if let Some(e) = self.open_alert(
                c,
                "healthd",
                uuid::Uuid::new_v4().to_string(),
                BTreeMap::new(),
            ) {
                events.push(e);
            }
        }
        {
            let mut book = self.lock();
            let gone: Vec<(String, String)> = book
                .open
                .iter()
                .filter(|(k, a)| {
                    a.source == "healthd"
                        && !conditions.iter().any(|c| c.kind == k.0 && c.subject == k.1)
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in gone {
                if let Some(alert) = book.open.remove(&k) {
                    events.push(AlertEvent {
                        event: "resolved",
                        at_unix_ms: now_unix_ms(),
                        alert,
                    });
                }
            }
        }
        events.extend(self.due_escalations());
        for e in events {
            self.publisher.publish(e).await;
        }
        metrics::gauge!("gekko_healthd_open_alerts").set(f64::from(
            u32::try_from(self.lock().open.len()).unwrap_or(u32::MAX),
        ));
    }

    fn due_escalations(&self) -> Vec<AlertEvent> {
        let mut book = self.lock();
        let mut out = Vec::new();
        for alert in book.open.values_mut() {
            if !alert.acknowledged
                && !alert.escalated
                && alert.raised.elapsed() >= self.escalate_after
            {
                alert.escalated = true;
                out.push(AlertEvent {
                    event: "escalated",
                    at_unix_ms: now_unix_ms(),
                    alert: alert.clone(),
                });
            }
        }
        out
    }

    /// Escalates every alert that is due (also called between polls).
    pub async fn escalate(&self) {
        for e in self.due_escalations() {
            self.publisher.publish(e).await;
        }
    }

    /// An alert received from Alertmanager: `firing` opens (or refreshes) it, `resolved`
    /// closes it; either way it is republished.
    pub async fn received(
        &self,
        firing: bool,
        fingerprint: &str,
        c: &Condition,
        labels: BTreeMap<String, String>,
    ) {
        let event = if firing {
            self.open_alert(c, "alertmanager", format!("am-{fingerprint}"), labels)
        } else {
            let key = (c.kind.clone(), c.subject.clone());
            let removed = self.lock().open.remove(&key);
            Some(AlertEvent {
                event: "resolved",
                at_unix_ms: now_unix_ms(),
                alert: removed.unwrap_or_else(|| Alert {
                    id: format!("am-{fingerprint}"),
                    kind: c.kind.clone(),
                    severity: c.severity,
                    subject: c.subject.clone(),
                    summary: c.summary.clone(),
                    source: "alertmanager".to_owned(),
                    raised_at_unix_ms: now_unix_ms(),
                    acknowledged: false,
                    acknowledged_by: None,
                    escalated: false,
                    labels,
                    raised: Instant::now(),
                }),
            })
        };
        if let Some(e) = event {
            self.publisher.publish(e).await;
        }
    }

    /// Acknowledges the open alert `id`; `None` when there is none. Publishes an
    /// `acknowledged` event the first time.
    pub async fn acknowledge(&self, id: &str, by: &str) -> Option<Alert> {
        let (alert, first) = {
            let mut book = self.lock();
            let alert = book.open.values_mut().find(|a| a.id == id)?;
            let first = !alert.acknowledged;
            alert.acknowledged = true;
            alert.acknowledged_by = Some(if by.trim().is_empty() {
                "unknown".to_owned()
            } else {
                by.trim().chars().take(80).collect()
            });
            (alert.clone(), first)
        };
        if first {
            self.publisher
                .publish(AlertEvent {
                    event: "acknowledged",
                    at_unix_ms: now_unix_ms(),
                    alert: alert.clone(),
                })
                .await;
        }
        Some(alert)
    }

    /// Every open alert, oldest first.
    #[must_use]
    pub fn open(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self.lock().open.values().cloned().collect();
        v.sort_by_key(|a| a.raised_at_unix_ms);
        v
    }
}
