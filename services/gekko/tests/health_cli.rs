//! `gekko status` against a running healthd (hosted in this test process on the runtime's
//! `Host`, with real listeners): it prints the tree, exits 1 while a required target is
//! down (naming it), 0 once it answers, and 69 when healthd cannot be reached.
//!
//! The targets are healthd's own runtime listeners (its `/readyz`, `/metrics` and
//! `grpc.health.v1`) and a real HTTP server this test starts only halfway through.

use std::process::Command;
use std::time::Duration;

use axum::routing::get;
use gekko_runtime::Host;
use gekko_testkit::{free_port, poll_some};
use healthd::settings::RawSettings;
use healthd::{HealthdService, HealthdSettings};

const BIN: &str = env!("CARGO_BIN_EXE_gekko");

fn status(grpc: u16) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["status", "--healthd", &format!("http://127.0.0.1:{grpc}")])
        .env_remove("GEKKO_HEALTHD")
        .env_remove("GEKKO_TOKEN")
        .output()
        .expect("run gekko status");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gekko_status_prints_the_tree_and_exits_by_readiness() {
    let (http, grpc, own, web) = (
        free_port().expect("port"),
        free_port().expect("port"),
        free_port().expect("port"),
        free_port().expect("port"),
    );
    let settings = HealthdSettings::from_raw(RawSettings {
        targets: Some(format!(
            "self=http://127.0.0.1:{http}|grpc://127.0.0.1:{grpc},web=http://127.0.0.1:{web}"
        )),
        http_addr: Some(format!("127.0.0.1:{own}")),
        interval_ms: Some("200".to_owned()),
        timeout_ms: Some("1000".to_owned()),
        docker: Some("off".to_owned()),
        ..RawSettings::default()
    })
    .expect("valid settings");
    let vars = [
        (
            "MONITORING_CONFIGURATIONS".to_owned(),
            format!("http_addr=127.0.0.1:{http},grpc_addr=127.0.0.1:{grpc}"),
        ),
        (
            "AUDIT_LOGGING_SETTINGS".to_owned(),
            "enabled=false".to_owned(),
        ),
    ]
    .into_iter()
    .collect();
    let loaded = gekko_config::from_vars(&vars).expect("valid config");
    healthd::set_settings(settings);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(
            Host::new("healthd")
                .service::<HealthdService>()
                .run(loaded, &()),
        )
    });

    // `web` is required and not there yet: not ready, exit 1, the tree names it.
    let (code, out) = poll_some(
        "a tree with self ok and web down",
        Duration::from_secs(60),
        || async {
            let (code, out, _) = status(grpc);
            (out.contains("self [required]: ok") && out.contains("web [required]: DOWN"))
                .then_some((code, out))
        },
    )
    .await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("system: NOT READY: web is down"), "{out}");
    assert!(out.contains(&format!("  127.0.0.1:{web}: DOWN")), "{out}");
    assert!(out.contains("readyz: DOWN: unreachable"), "{out}");
    assert!(out.contains(&format!("  127.0.0.1:{http}: ok")), "{out}");
    assert!(out.contains("host: "), "{out}");
    assert!(
        out.contains("open alerts:") && out.contains("service_down (web)"),
        "{out}"
    );

    // A real HTTP server on web's port: ready, exit 0.
    let app = axum::Router::new()
        .route(
            "/readyz",
            get(|| async { r#"{"ready":true,"components":[]}"# }),
        )
        .route("/metrics", get(|| async { "" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", web))
        .await
        .expect("bind web");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let out = poll_some(
        "gekko status to exit 0",
        Duration::from_secs(60),
        || async {
            let (code, out, _) = status(grpc);
            (code == Some(0)).then_some(out)
        },
    )
    .await;
    assert!(out.starts_with("system: READY"), "{out}");
    assert!(out.contains("web [required]: ok"), "{out}");

    // Nothing listening: 69, saying so.
    let (code, _, err) = status(free_port().expect("port"));
    assert_eq!(code, Some(69), "{err}");
    assert!(err.contains("cannot reach healthd"), "{err}");
}
