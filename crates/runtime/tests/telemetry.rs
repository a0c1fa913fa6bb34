//! Installing the global subscriber: its own test binary, because it changes process-wide
//! state that other tests should not inherit.

use gekko_runtime::RuntimeError;
use gekko_runtime::telemetry::{self, LogFormat, TelemetryConfig};

#[tokio::test]
async fn second_init_is_an_error_not_a_panic() {
    let cfg = TelemetryConfig {
        service: "gekko-runtime-test".to_owned(),
        format: LogFormat::Json,
        filter: "warn".to_owned(),
    };
    let guard = telemetry::init(&cfg).expect("first init");
    tracing::warn!("telemetry test log line");

    let second = telemetry::init(&TelemetryConfig {
        format: LogFormat::Pretty,
        ..cfg
    });
    assert!(
        matches!(second, Err(RuntimeError::SubscriberAlreadySet(_))),
        "{second:?}"
    );

    guard.shutdown().expect("shutdown");
}
