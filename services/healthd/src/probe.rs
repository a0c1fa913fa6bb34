//! Probing the configured targets: discovery through DNS (every address a name resolves
//! to is a replica), each replica's `/readyz` (and the components its body lists),
//! `grpc.health.v1.Health/Check`, and the gauges and counters of its `/metrics` that
//! alerts derive from.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::alerts::{Condition, Severity};
use crate::model::{Component, Replica, ServiceNode, Status};
use crate::promtext::{self, Sample};
use crate::settings::{Target, Thresholds};

/// `gekko_venue_ws_connected{venue,stream}`: 1 connected, 0 not (gekko-net's streams).
pub const METRIC_WS_CONNECTED: &str = "gekko_venue_ws_connected";
/// `gekko_gateway_market_data_age_seconds{venue}`: the age of the newest market data.
pub const METRIC_MARKET_DATA_AGE: &str = "gekko_gateway_market_data_age_seconds";
/// `gekko_gateway_clock_offset_ms{venue}`: the venue clock's offset from ours.
pub const METRIC_CLOCK_OFFSET: &str = "gekko_gateway_clock_offset_ms";
/// `gekko_venue_circuit_state{venue,family}`: 0 closed, 1 half-open, 2 open.
pub const METRIC_CIRCUIT: &str = "gekko_venue_circuit_state";
/// `gekko_venue_http_418_total{venue,...}`: a venue's IP bans (HTTP 418).
pub const METRIC_HTTP_418: &str = "gekko_venue_http_418_total";
/// `gekko_gateway_reconciliation_differences_total{venue}`.
pub const METRIC_RECONCILIATION: &str = "gekko_gateway_reconciliation_differences_total";

const WANTED: &[&str] = &[
    METRIC_WS_CONNECTED,
    METRIC_MARKET_DATA_AGE,
    METRIC_CLOCK_OFFSET,
    METRIC_CIRCUIT,
    METRIC_HTTP_418,
    METRIC_RECONCILIATION,
];

/// The body of a gekko `/readyz`.
#[derive(Debug, Deserialize)]
struct ReadyBody {
    #[serde(default)]
    components: Vec<ReadyComponent>,
}

#[derive(Debug, Deserialize)]
struct ReadyComponent {
    name: String,
    ready: bool,
    #[serde(default)]
    detail: String,
}

/// Remembers counters between polls, so a rise (a 418, a reconciliation difference)
/// keeps its alert open for `counter_window_s`.
#[derive(Debug, Default)]
pub struct CounterMemory {
    seen: BTreeMap<String, (f64, Option<Instant>)>,
}

impl CounterMemory {
    /// Records `value` for `key`; true while the counter rose within `window`. The first
    /// sight of a counter is its baseline (a rise before healthd started is not seen), and
    /// a counter that went down (the process restarted) starts a new baseline.
    pub fn rose_within(&mut self, key: String, value: f64, window: Duration) -> bool {
        let now = Instant::now();
        let entry = self.seen.entry(key).or_insert((value, None));
        if value > entry.0 {
            entry.1 = Some(now);
        }
        entry.0 = value;
        entry.1.is_some_and(|t| now.duration_since(t) < window)
    }
}

/// A probe's HTTP client and timeout.
#[derive(Debug, Clone)]
pub struct Prober {
    http: reqwest::Client,
    timeout: Duration,
}

impl Prober {
    /// A prober whose every request gives up after `timeout`.
    #[must_use]
    pub fn new(timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .unwrap_or_default();
        Self { http, timeout }
    }

    /// The addresses `target`'s name resolves to now.
    async fn discover(&self, target: &Target) -> Result<Vec<IpAddr>, String> {
        let ep = target
            .http
            .as_ref()
            .or(target.grpc.as_ref())
            .ok_or_else(|| "no endpoint".to_owned())?;
        let found = tokio::time::timeout(self.timeout, tokio::net::lookup_host(ep.authority()))
            .await
            .map_err(|_| format!("resolving {} timed out", ep.host))?
            .map_err(|e| format!("cannot resolve {}: {e}", ep.host))?;
        let ips: BTreeSet<IpAddr> = found.map(|a: SocketAddr| a.ip()).collect();
        if ips.is_empty() {
            Err(format!("{} resolves to no address", ep.host))
        } else {
            Ok(ips.into_iter().collect())
        }
    }

    /// Polls every replica of `target`; also returns the conditions found.
    pub async fn target(
        &self,
        target: &Target,
        thresholds: &Thresholds,
        counters: &mut CounterMemory,
    ) -> (ServiceNode, Vec<Condition>) {
        let mut node = ServiceNode {
            name: target.name.clone(),
            required: target.required,
            replicas: Vec::new(),
            discovery_error: None,
        };
        let ips = match self.discover(target).await {
            Ok(ips) => ips,
            Err(e) => {
                node.discovery_error = Some(e);
                return (node, Vec::new());
            }
        };
        let probes = ips.iter().map(|ip| self.replica(target, *ip));
        let results = futures_util::future::join_all(probes).await;
        let mut conditions = Vec::new();
        for (replica, samples) in results {
            conditions.extend(metric_conditions(
                &target.name,
                &replica.address,
                &samples,
                thresholds,
                counters,
            ));
            node.replicas.push(replica);
        }
        (node, conditions)
    }

    async fn replica(&self, target: &Target, ip: IpAddr) -> (Replica, Vec<Sample>) {
        let mut components = Vec::new();
        let mut samples = Vec::new();
        let address;
        if let Some(http) = &target.http {
            let base = format!("http://{}", SocketAddr::new(ip, http.port));
            address = SocketAddr::new(ip, http.port).to_string();
            let ready = self.readyz(&base).await;
            // A replica that does not answer /readyz has no /metrics to read either.
            let answered = ready
                .first()
                .is_some_and(|c| c.details.contains_key("http_status"));
            components.extend(ready);
            if answered {
                match self.metrics(&base).await {
                    Ok(s) => samples = s,
                    Err(e) => components.push(Component::with("metrics", Status::Warning, e)),
                }
            }
        } else {
            address = target
                .grpc
                .as_ref()
                .map_or_else(String::new, |g| SocketAddr::new(ip, g.port).to_string());
        }
        if let Some(grpc) = &target.grpc {
            components.push(self.grpc(SocketAddr::new(ip, grpc.port)).await);
        }
        components.extend(metric_components(&samples));
        (
            Replica {
                address,
                components,
            },
            samples,
        )
    }

    async fn readyz(&self, base: &str) -> Vec<Component> {
        let started = Instant::now();
        let resp = match self.http.get(format!("{base}/readyz")).send().await {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_timeout() {
                    format!("no answer within {} ms", self.timeout.as_millis())
                } else if e.is_connect() {
                    "unreachable: connection refused or no route".to_owned()
                } else {
                    format!("request failed: {e}")
                };
                return vec![Component::with("readyz", Status::Down, why)];
            }
        };
        let code = resp.status();
        let latency = started.elapsed();
        let body: Option<ReadyBody> = resp
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let mut out = Vec::new();
        let parts = body.map(|b| b.components).unwrap_or_default();
        let not_ready: Vec<String> = parts
            .iter()
            .filter(|c| !c.ready)
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        let head = if code.is_success() {
            Component::ok("readyz")
        } else if not_ready.is_empty() {
            Component::with("readyz", Status::Down, format!("HTTP {}", code.as_u16()))
        } else {
            Component::with(
                "readyz",
                Status::Down,
                format!("HTTP {}: {}", code.as_u16(), not_ready.join("; ")),
            )
        };
        out.push(
            head.detail("http_status", code.as_u16())
                .detail("latency_ms", latency.as_millis()),
        );
        for c in parts {
            out.push(if c.ready {
                Component::ok(format!("readyz/{}", c.name))
            } else {
                Component::with(format!("readyz/{}", c.name), Status::Down, c.detail)
            });
        }
        out
    }

    async fn metrics(&self, base: &str) -> Result<Vec<Sample>, String> {
        let resp = self
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .map_err(|e| format!("/metrics: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("/metrics: HTTP {}", resp.status().as_u16()));
        }
        let text = resp.text().await.map_err(|e| format!("/metrics: {e}"))?;
        Ok(promtext::parse(&text, WANTED))
    }

    async fn grpc(&self, addr: SocketAddr) -> Component {
        let check = async {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| e.to_string())?
                .connect_timeout(self.timeout)
                .timeout(self.timeout)
                .connect()
                .await
                .map_err(|e| format!("unreachable: {e}"))?;
            let resp = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
            Ok::<_, String>(resp.into_inner().status)
        };
        match tokio::time::timeout(self.timeout, check).await {
            Err(_) => Component::with(
                "grpc",
                Status::Down,
                format!("no answer within {} ms", self.timeout.as_millis()),
            ),
            Ok(Err(e)) => Component::with("grpc", Status::Down, e),
            Ok(Ok(s)) if s == ServingStatus::Serving as i32 => Component::ok("grpc"),
            Ok(Ok(s)) => Component::with(
                "grpc",
                Status::Down,
                format!(
                    "health says {}",
                    ServingStatus::try_from(s).map_or("an unknown status", |s| s.as_str_name())
                ),
            ),
        }
    }
}

fn label(s: &Sample, key: &str) -> String {
    s.labels
        .get(key)
        .cloned()
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The tree's view of a replica's metrics: one `venue/<venue>` component per venue its
/// streams report, WARNING while a stream is disconnected or its circuit open (the
/// replica's `/readyz` says whether it is down).
fn metric_components(samples: &[Sample]) -> Vec<Component> {
    let mut venues: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in samples {
        let problem = match s.name.as_str() {
            METRIC_WS_CONNECTED if s.value < 0.5 => {
                Some(format!("{} stream disconnected", label(s, "stream")))
            }
            METRIC_CIRCUIT if s.value > 1.5 => {
                Some(format!("circuit open ({})", label(s, "family")))
            }
            METRIC_WS_CONNECTED | METRIC_CIRCUIT => None,
            _ => continue,
        };
        let entry = venues.entry(label(s, "venue")).or_default();
        entry.extend(problem);
    }
    venues
        .into_iter()
        .map(|(venue, problems)| {
            if problems.is_empty() {
                Component::ok(format!("venue/{venue}"))
            } else {
                Component::with(
                    format!("venue/{venue}"),
                    Status::Warning,
                    problems.join("; "),
                )
            }
        })
        .collect()
}

/// The alerts a replica's metrics call for.
pub fn metric_conditions(
    service: &str,
    address: &str,
    samples: &[Sample],
    t: &Thresholds,
    counters: &mut CounterMemory,
) -> Vec<Condition> {
    let window = Duration::from_secs(t.counter_window_s);
    let mut out = Vec::new();
    for s in samples {
        let venue = label(s, "venue");
        let subject = format!("{service}/{address}/{}", s.label_text());
        match s.name.as_str() {
            METRIC_WS_CONNECTED if s.value < 0.5 => out.push(Condition::new(
                "venue_disconnected",
                Severity::Critical,
                subject,
                format!("{venue}: the {} stream is disconnected", label(s, "stream")),
            )),
            METRIC_MARKET_DATA_AGE if s.value > t.market_data_stale_s => out.push(Condition::new(
                "market_data_stale",
                Severity::Warning,
                subject,
                format!(
                    "{venue}: market data is {:.0} s old (threshold {} s)",
                    s.value, t.market_data_stale_s
                ),
            )),
            METRIC_CLOCK_OFFSET if s.value.abs() > t.clock_offset_ms => out.push(Condition::new(
                "clock_offset",
                Severity::Warning,
                subject,
                format!(
                    "{venue}: the venue clock is {:.0} ms off (threshold {} ms)",
                    s.value, t.clock_offset_ms
                ),
            )),
            METRIC_CIRCUIT if s.value > 1.5 => out.push(Condition::new(
                "circuit_open",
                Severity::Warning,
                subject,
                format!("{venue}: the {} circuit is open", label(s, "family")),
            )),
            METRIC_HTTP_418 if counters.rose_within(format!("418|{subject}"), s.value, window) => {
                out.push(Condition::new(
                    "venue_banned",
                    Severity::Critical,
                    subject,
                    format!(
                        "{venue}: the venue answered 418 (IP ban) within {} s",
                        t.counter_window_s
                    ),
                ));
            }
            METRIC_RECONCILIATION
                if counters.rose_within(format!("recon|{subject}"), s.value, window) =>
            {
                out.push(Condition::new(
                    "reconciliation_differences",
                    Severity::Critical,
                    subject,
                    format!(
                        "{venue}: reconciliation found differences with the venue within {} s",
                        t.counter_window_s
                    ),
                ));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_metrics_become_the_alerts_the_issue_lists() {
        let text = "gekko_venue_ws_connected{venue=\"binanceus\",stream=\"market\"} 0\n\
                    gekko_venue_ws_connected{venue=\"binanceus\",stream=\"user\"} 1\n\
                    gekko_gateway_market_data_age_seconds{venue=\"binanceus\"} 45\n\
                    gekko_gateway_market_data_age_seconds{venue=\"oanda\"} 1\n\
                    gekko_gateway_clock_offset_ms{venue=\"binanceus\"} -2500\n\
                    gekko_venue_circuit_state{venue=\"binanceus\",family=\"orders\"} 2\n\
                    gekko_venue_http_418_total{venue=\"binanceus\"} 0\n\
                    gekko_gateway_reconciliation_differences_total{venue=\"binanceus\"} 3\n";
        let samples = promtext::parse(text, WANTED);
        let t = Thresholds::default();
        let mut mem = CounterMemory::default();
        let kinds = |c: &[Condition]| c.iter().map(|c| c.kind.clone()).collect::<Vec<_>>();
        let first = metric_conditions("gw", "10.0.0.2:9464", &samples, &t, &mut mem);
        assert_eq!(
            kinds(&first),
            [
                "venue_disconnected",
                "market_data_stale",
                "clock_offset",
                "circuit_open"
            ],
            "counters are a baseline at first sight"
        );
        let text2 = text
            .replace(
                "http_418_total{venue=\"binanceus\"} 0",
                "http_418_total{venue=\"binanceus\"} 1",
            )
            .replace(
                "differences_total{venue=\"binanceus\"} 3",
                "differences_total{venue=\"binanceus\"} 4",
            );
        let second = metric_conditions(
            "gw",
            "10.0.0.2:9464",
            &promtext::parse(&text2, WANTED),
            &t,
            &mut mem,
        );
        assert!(
            kinds(&second).contains(&"venue_banned".to_owned()),
            "{second:?}"
        );
        assert!(kinds(&second).contains(&"reconciliation_differences".to_owned()));
        let comps = metric_components(&samples);
        assert_eq!(comps.len(), 1);
        assert_eq!(comps[0].status, Status::Warning);
        assert!(
            comps[0].reason.contains("market stream disconnected")
                && comps[0].reason.contains("circuit open (orders)")
        );
    }
}
