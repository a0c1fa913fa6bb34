//! `gekko status`: asks a running healthd for the system's health
//! (`HealthAggregator.GetSystemHealth`) and prints the tree, service → replicas →
//! components, with the reason of everything that is not OK and the open alerts.
//!
//! Exits 0 when the system is ready, 1 when it is not (the tree says why), 69 when healthd
//! cannot be reached and 77 when it refuses the token.

use std::fmt::Write as _;
use std::time::Duration;

use gekko_proto::v1 as pb;
use gekko_proto::v1::health_aggregator_client::HealthAggregatorClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;

use crate::exit::Exit;

/// `gekko status` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// healthd's gRPC address (compose publishes it on 127.0.0.1:50066).
    #[arg(long, env = "GEKKO_HEALTHD", default_value = "http://127.0.0.1:50066")]
    healthd: String,
    /// A viewer token, when healthd has tokens configured.
    #[arg(long, env = "GEKKO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the OK components too (by default only their count).
    #[arg(long)]
    verbose: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10)]
    timeout_s: u64,
}

fn status_name(s: i32) -> &'static str {
    match pb::HealthStatus::try_from(s) {
        Ok(pb::HealthStatus::Ok) => "ok",
        Ok(pb::HealthStatus::Warning) => "WARNING",
        Ok(pb::HealthStatus::Down) => "DOWN",
        _ => "unknown",
    }
}

fn is_ok(s: i32) -> bool {
    s == pb::HealthStatus::Ok as i32
}

/// The tree as text.
pub(crate) fn render(h: &pb::SystemHealth, verbose: bool) -> String {
    let mut out = String::new();
    if h.ready {
        let _ = writeln!(out, "system: READY (poll {})", h.generation);
    } else {
        let _ = writeln!(out, "system: NOT READY: {}", h.reason);
    }
    for s in &h.services {
        let required = if s.required { " [required]" } else { "" };
        let _ = write!(out, "{}{required}: {}", s.name, status_name(s.status));
        if !s.reason.is_empty() && !is_ok(s.status) {
            let _ = write!(out, ": {}", s.reason);
        }
        out.push('\n');
        if s.replicas.is_empty() {
            let _ = writeln!(out, "  (no replica found)");
        }
        for r in &s.replicas {
            let _ = writeln!(out, "  {}: {}", r.address, status_name(r.status));
            let mut hidden = 0;
            for c in &r.components {
                if is_ok(c.status) && !verbose {
                    hidden += 1;
                    continue;
                }
                let _ = write!(out, "    {}: {}", c.name, status_name(c.status));
                if !c.reason.is_empty() {
                    let _ = write!(out, ": {}", c.reason);
                }
                if verbose && !c.details.is_empty() {
                    let mut d: Vec<_> = c.details.iter().collect();
                    d.sort();
                    let d: Vec<String> = d.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let _ = write!(out, " ({})", d.join(", "));
                }
                out.push('\n');
            }
            if hidden > 0 {
                let _ = writeln!(out, "    {hidden} components ok");
            }
        }
    }
    if !h.open_alerts.is_empty() {
        let _ = writeln!(out, "open alerts:");
        for a in &h.open_alerts {
            let mut flags = Vec::new();
            if a.escalated {
                flags.push("escalated");
            }
            if a.acknowledged {
                flags.push("acknowledged");
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", flags.join(", "))
            };
            let _ = writeln!(
                out,
                "  {} {} {} ({}): {}{flags}",
                a.id, a.severity, a.kind, a.subject, a.summary
            );
        }
    }
    out
}

/// Calls healthd and prints the tree.
pub(crate) async fn run(args: StatusArgs) -> Exit {
    let timeout = Duration::from_secs(args.timeout_s.max(1));
    let endpoint = match Endpoint::from_shared(args.healthd.clone()) {
        Ok(e) => e.connect_timeout(timeout).timeout(timeout),
        Err(e) => {
            eprintln!("gekko status: `{}` is not a URL: {e}", args.healthd);
            return Exit::Config;
        }
    };
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "gekko status: cannot reach healthd at {}: {e}",
                args.healthd
            );
            return Exit::Unavailable;
        }
    };
    let mut request = tonic::Request::new(pb::GetSystemHealthRequest {});
    if let Some(t) = &args.token {
        match MetadataValue::try_from(format!("Bearer {t}").as_str()) {
            Ok(v) => {
                request.metadata_mut().insert("authorization", v);
            }
            Err(_) => {
                eprintln!("gekko status: the token holds characters a header cannot carry");
                return Exit::Config;
            }
        }
    }
    match HealthAggregatorClient::new(channel)
        .get_system_health(request)
        .await
    {
        Ok(r) => {
            let h = r.into_inner();
            print!("{}", render(&h, args.verbose));
            if h.ready { Exit::Ok } else { Exit::CheckFailed }
        }
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
            ) =>
        {
            eprintln!("gekko status: healthd refused: {}", s.message());
            Exit::NoPermission
        }
        Err(s) => {
            eprintln!(
                "gekko status: GetSystemHealth failed: {:?}: {}",
                s.code(),
                s.message()
            );
            Exit::Unavailable
        }
    }
}
