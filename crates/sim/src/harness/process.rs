//! The standalone-process preamble every simulator binary shares: start, wait for Ctrl-C
//! or SIGTERM, shut down, and one mapping of outcomes to exit codes.
//!
//! A `services/sim-*` binary only parses its flags into a config (reporting problems as
//! [`Failure::Config`]), starts its simulator and logs where it listens;
//! [`run_until_signal`] does the rest. Exit codes, the same for every simulator:
//!
//! | code | when |
//! |---|---|
//! | 0 | stopped by Ctrl-C or SIGTERM, after a clean shutdown |
//! | 64 ([`EXIT_CONFIG`]) | an invalid configuration or flag: every problem printed, one per line |
//! | 1 | the simulator could not start (a port taken, say) |
//!
//! [`parse_faults`] turns the repeatable `--fault '<json>'` flag of the venue simulators
//! into [`Fault`]s with [`Fault::from_json`], the parser of `POST /sim/admin/fault`.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

use super::fault::Fault;

/// `EX_CONFIG`: the exit code for an unusable configuration.
pub const EXIT_CONFIG: u8 = 64;

/// Why a simulator process did not start.
#[derive(Debug)]
pub enum Failure {
    /// The configuration is unusable: each problem, one line each (exit 64).
    Config(Vec<String>),
    /// Starting failed at run time, e.g. a listener could not be bound (exit 1).
    Start(String),
}

impl Failure {
    /// A start error: `InvalidInput` (a bad TLS file, say) is a configuration problem,
    /// anything else a start failure.
    #[must_use]
    pub fn start(e: &std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::InvalidInput {
            Self::Config(vec![e.to_string()])
        } else {
            Self::Start(e.to_string())
        }
    }

    /// One configuration problem.
    pub fn config(problem: impl Display) -> Self {
        Self::Config(vec![problem.to_string()])
    }
}

/// Runs a simulator process: awaits `start`; on success waits for Ctrl-C or SIGTERM, logs
/// the shutdown and awaits `stop` on the handle. Problems are printed to stderr prefixed
/// with `name`; the exit code follows the module's table.
pub async fn run_until_signal<H, S, F>(
    name: &str,
    start: impl Future<Output = Result<H, Failure>>,
    stop: S,
) -> ExitCode
where
    S: FnOnce(H) -> F,
    F: Future<Output = ()>,
{
    let handle = match start.await {
        Ok(h) => h,
        Err(Failure::Config(problems)) => {
            for p in problems {
                eprintln!("{name}: {p}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(Failure::Start(e)) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    wait_for_signal().await;
    tracing::info!("{name}: shutting down");
    stop(handle).await;
    ExitCode::SUCCESS
}

/// Parses every `--fault` value; the problems name the flag and the value.
///
/// # Errors
/// [`Failure::Config`] with one line per unusable value.
pub fn parse_faults(values: &[String]) -> Result<Vec<Fault>, Failure> {
    let mut faults = Vec::new();
    let mut problems = Vec::new();
    for v in values {
        match Fault::from_json(v.as_bytes()) {
            Ok(f) => faults.push(f),
            Err(e) => problems.push(format!("--fault {v}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(faults)
    } else {
        Err(Failure::Config(problems))
    }
}

/// Resolves on Ctrl-C, or on SIGTERM where there is one (containers stop with it).
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_flags_parse_like_the_admin_api_and_name_a_bad_value() {
        let ok = parse_faults(&[
            r#"{"kind":"server_errors","count":2}"#.to_owned(),
            r#"{"kind":"drop_websockets"}"#.to_owned(),
        ])
        .expect("valid faults");
        assert_eq!(
            ok,
            [Fault::ServerErrors { count: 2 }, Fault::DropWebSockets]
        );
        let Err(Failure::Config(problems)) = parse_faults(&[
            r#"{"kind":"ban","duration_ms":10}"#.to_owned(),
            r#"{"kind":"meteor"}"#.to_owned(),
            "not json".to_owned(),
        ]) else {
            panic!("bad values are a config failure");
        };
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with(r#"--fault {"kind":"meteor"}"#),
            "{problems:?}"
        );
        assert!(problems[0].contains("meteor"), "{problems:?}");
        assert!(problems[1].starts_with("--fault not json"), "{problems:?}");
    }

    #[test]
    fn an_invalid_input_start_error_is_a_config_failure() {
        let bad = std::io::Error::new(std::io::ErrorKind::InvalidInput, "no certificate");
        assert!(matches!(Failure::start(&bad), Failure::Config(p) if p == ["no certificate"]));
        let taken = std::io::Error::new(std::io::ErrorKind::AddrInUse, "port taken");
        assert!(matches!(Failure::start(&taken), Failure::Start(e) if e == "port taken"));
    }
}
