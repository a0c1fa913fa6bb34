//! The health tree: service → replicas → components, each with a status and a reason,
//! and its protobuf form.

use std::collections::BTreeMap;

use gekko_proto::v1 as pb;

/// A component's, replica's or service's status; ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Working.
    Ok,
    /// Working, with something to look at; never makes the system not ready.
    Warning,
    /// Not working.
    Down,
}

impl Status {
    /// `ok`, `warning`, `down`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Down => "down",
        }
    }

    fn to_pb(self) -> pb::HealthStatus {
        match self {
            Self::Ok => pb::HealthStatus::Ok,
            Self::Warning => pb::HealthStatus::Warning,
            Self::Down => pb::HealthStatus::Down,
        }
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// `readyz`, `grpc`, `ping`, `aof`, `memory`.
    pub name: String,
    /// Its status.
    pub status: Status,
    /// Why it is not OK; empty when it is.
    pub reason: String,
    /// Facts the check read.
    pub details: BTreeMap<String, String>,
}

impl Component {
    /// An OK component.
    #[must_use]
    pub fn ok(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status: Status::Ok,
            reason: String::new(),
            details: BTreeMap::new(),
        }
    }

    /// A component in `status` because of `reason`.
    #[must_use]
    pub fn with(name: impl Into<String>, status: Status, reason: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status,
            reason: reason.into(),
            details: BTreeMap::new(),
        }
    }

    /// Adds a detail.
    #[must_use]
    pub fn detail(mut self, key: &str, value: impl ToString) -> Self {
        self.details.insert(key.to_owned(), value.to_string());
        self
    }
}

/// One instance of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    /// Its address (or container name, Redis URL, `localhost`).
    pub address: String,
    /// Its checks.
    pub components: Vec<Component>,
}

impl Replica {
    /// The worst of its components (OK with none).
    #[must_use]
    pub fn status(&self) -> Status {
        self.components
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Ok)
    }

    /// The reasons of its worst components, `name: reason` joined with `; `.
    #[must_use]
    pub fn reason(&self) -> String {
        let worst = self.status();
        if worst == Status::Ok {
            return String::new();
        }
        self.components
            .iter()
            .filter(|c| c.status == worst)
            .map(|c| format!("{}: {}", c.name, c.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One service of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceNode {
    /// The target name, or `redis`, `docker`, `host`.
    pub name: String,
    /// Whether the aggregate readiness waits on it.
    pub required: bool,
    /// Its replicas.
    pub replicas: Vec<Replica>,
    /// Why there are no replicas (a DNS failure), when there are none.
    pub discovery_error: Option<String>,
}

impl ServiceNode {
    /// DOWN with no replica OK (or none found), WARNING when some replica is not OK.
    #[must_use]
    pub fn status(&self) -> Status {
        if self.replicas.is_empty() {
            return if self.discovery_error.is_some() {
                Status::Down
            } else {
                Status::Ok
            };
        }
        let statuses: Vec<Status> = self.replicas.iter().map(Replica::status).collect();
        if statuses.iter().all(|s| *s == Status::Down) {
            Status::Down
        } else if statuses.iter().all(|s| *s == Status::Ok) {
            Status::Ok
        } else {
            Status::Warning
        }
    }

    /// Why it is not OK.
    #[must_use]
    pub fn reason(&self) -> String {
        if let Some(e) = &self.discovery_error
            && self.replicas.is_empty()
        {
            return e.clone();
        }
        self.replicas
            .iter()
            .filter(|r| r.status() != Status::Ok)
            .map(|r| format!("{}: {}", r.address, r.reason()))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A tree without its details and times: per service its name, status and every
/// `address/component` with its status and reason.
pub type Shape = Vec<(String, Status, Vec<(String, Status, String)>)>;

/// One whole poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Counts polls; 0 before the first.
    pub generation: u64,
    /// When the poll finished.
    pub checked_at_unix_ms: i64,
    /// Every service, targets first, then `redis`, `docker`, `host`.
    pub services: Vec<ServiceNode>,
}

impl Snapshot {
    /// The state before the first poll: nothing known, not ready.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            generation: 0,
            checked_at_unix_ms: 0,
            services: Vec::new(),
        }
    }

    /// Why the system is not ready, `None` when it is: every required service that is
    /// down, with its reason.
    #[must_use]
    pub fn not_ready_reason(&self) -> Option<String> {
        if self.generation == 0 {
            return Some("no poll has completed yet".to_owned());
        }
        let down: Vec<String> = self
            .services
            .iter()
            .filter(|s| s.required && s.status() == Status::Down)
            .map(|s| format!("{} is down ({})", s.name, s.reason()))
            .collect();
        if down.is_empty() {
            None
        } else {
            Some(down.join("; "))
        }
    }

    /// The same tree without the facts that change on every poll (details, times), so a
    /// `Watch` only sends real changes.
    #[must_use]
    pub fn shape(&self) -> Shape {
        self.services
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.status(),
                    s.replicas
                        .iter()
                        .flat_map(|r| {
                            r.components.iter().map(|c| {
                                (
                                    format!("{}/{}", r.address, c.name),
                                    c.status,
                                    c.reason.clone(),
                                )
                            })
                        })
                        .collect(),
                )
            })
            .collect()
    }

    /// The protobuf tree (without alerts; the caller adds them).
    #[must_use]
    pub fn to_pb(&self) -> pb::SystemHealth {
        let reason = self.not_ready_reason();
        pb::SystemHealth {
            ready: reason.is_none(),
            reason: reason.unwrap_or_default(),
            generation: self.generation,
            checked_at_unix_ms: self.checked_at_unix_ms,
            open_alerts: Vec::new(),
            services: self
                .services
                .iter()
                .map(|s| pb::ServiceHealth {
                    name: s.name.clone(),
                    required: s.required,
                    status: s.status().to_pb().into(),
                    reason: s.reason(),
                    replicas: s
                        .replicas
                        .iter()
                        .map(|r| pb::ReplicaHealth {
                            address: r.address.clone(),
                            status: r.status().to_pb().into(),
                            reason: r.reason(),
                            components: r
                                .components
                                .iter()
                                .map(|c| pb::HealthComponent {
                                    name: c.name.clone(),
                                    status: c.status.to_pb().into(),
                                    reason: c.reason.clone(),
                                    details: c
                                        .details
                                        .iter()
                                        .map(|(k, v)| (k.clone(), v.clone()))
                                        .collect(),
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(addr: &str, status: Status) -> Replica {
        Replica {
            address: addr.to_owned(),
            components: vec![Component::with("readyz", status, "503: bus: redis down")],
        }
    }

    #[test]
    fn a_service_is_down_only_when_every_replica_is() {
        let mut s = ServiceNode {
            name: "gw".to_owned(),
            required: true,
            replicas: vec![replica("a", Status::Down), replica("b", Status::Ok)],
            discovery_error: None,
        };
        assert_eq!(s.status(), Status::Warning, "one replica of two is down");
        s.replicas.remove(1);
        assert_eq!(s.status(), Status::Down);
        let snap = Snapshot {
            generation: 1,
            checked_at_unix_ms: 0,
            services: vec![s],
        };
        let why = snap.not_ready_reason().expect("not ready");
        assert!(
            why.contains("gw is down") && why.contains("503: bus: redis down"),
            "{why}"
        );
    }
}
