//! LLM failover between real processes: the `sim-llm` binary as the OpenRouter primary,
//! and the real LiteLLM proxy (`litellm[proxy]==1.108.7` in `.venv-litellm`) as the
//! secondary, whose one model points at a second `sim-llm` process. The primary is
//! SIGKILLed in the middle of a streaming chat: the stream in flight ends with an error
//! (content had started, so it is not replayed elsewhere), the next requests go to
//! LiteLLM with `gekko_llm_failovers_total` counting them, LiteLLM's
//! `x-litellm-response-cost` lands in `gekko_llm_cost_usd_total`, and traffic returns to
//! OpenRouter once `sim-llm` is started again on the same port.
//!
//! A second test: a key the `sim-llm` process refuses (401) is reported, not failed over.

mod common;
#[path = "mcp/processes.rs"]
mod processes;
#[path = "mcp/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use gekko_config::{LlmConfig, LlmProvider};
use gekko_llm::{ChatRequest, LlmError, LlmRouter, StreamEvent};
use gekko_sim::llm::PAPER_KEY;
use processes::SimLlm;
use serde_json::json;

const MASTER_KEY: &str = "sk-gekko-test-master";
const PUBLIC_MODEL: &str = "gpt-4o-mini";

fn config(pairs: &[(&str, String)]) -> LlmConfig {
    let vars: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    match gekko_config::from_vars(&vars) {
        Ok(l) => l.config.llm,
        Err(e) => panic!("config: {e}"),
    }
}

/// The venv's `litellm`: `$GEKKO_LITELLM_BIN`, else `.venv-litellm/bin/litellm`.
fn litellm_bin() -> PathBuf {
    let bin = std::env::var("GEKKO_LITELLM_BIN").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-litellm/bin/litellm"),
        PathBuf::from,
    );
    assert!(
        bin.exists(),
        "{} not found: run scripts/test.sh (it creates .venv-litellm from \
         scripts/litellm-requirements.txt), or: python3 -m venv .venv-litellm && \
         .venv-litellm/bin/pip install -r scripts/litellm-requirements.txt",
        bin.display()
    );
    bin
}

/// The LiteLLM proxy in front of `upstream`, started and answering liveliness.
struct LiteLlm {
    base: String,
    wrapper: Child,
    dir: PathBuf,
}

impl LiteLlm {
    fn start(upstream: &SimLlm) -> Self {
        let bin = litellm_bin();
        let dir = std::env::temp_dir().join(format!("gekko-llm-failover-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let config = format!(
            "model_list:\n  - model_name: {PUBLIC_MODEL}\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {}/v1\n      api_key: {PAPER_KEY}\n\ngeneral_settings:\n  master_key: {MASTER_KEY}\n",
            upstream.base
        );
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, config).expect("config file");
        let port = gekko_testkit::free_port().expect("free port");
        let mut cmd = Command::new(&bin);
        cmd.arg("--config")
            .arg(&config_path)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("LITELLM_LOG", "ERROR")
            .env("NO_PROXY", "*")
            .current_dir(&dir);
        let log = std::fs::File::create(dir.join("litellm.log")).expect("log file");
        let mut wrapper = gekko_testkit::reaped(&cmd)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("litellm starts");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if common::http_get(&addr, "/health/liveliness").is_some_and(|(c, _)| c == 200) {
                break;
            }
            if let Ok(Some(status)) = wrapper.try_wait() {
                let log = std::fs::read_to_string(dir.join("litellm.log")).unwrap_or_default();
                panic!("litellm exited at start-up with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "litellm did not answer /health/liveliness within 90 s:\n{}",
                std::fs::read_to_string(dir.join("litellm.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        Self {
            base: format!("http://{addr}"),
            wrapper,
            dir,
        }
    }
}

impl Drop for LiteLlm {
    fn drop(&mut self) {
        drop(self.wrapper.stdin.take());
        let _ = self.wrapper.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The value of the one sample of `name` whose labels include every `labels` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_llm_killed_mid_stream_fails_over_to_litellm_and_comes_back() {
    let prometheus = gekko_runtime::install_prometheus().expect("recorder");
    gekko_llm::metrics::describe();
    let upstream = SimLlm::start("127.0.0.1:0");
    let proxy = LiteLlm::start(&upstream);
    let primary = SimLlm::start("127.0.0.1:0");
    let primary_addr = primary.addr.clone();
    let cfg = config(&[
        ("OPENROUTER_API_KEY", PAPER_KEY.to_owned()),
        ("OPENROUTER_BASE_URL", format!("{}/api/v1", primary.base)),
        ("LITELLM_API_KEY", MASTER_KEY.to_owned()),
        ("LITELLM_BASE_URL", proxy.base.clone()),
        (
            "LLM_MODELS",
            format!("analyst=openrouter:openai/gpt-4o-mini|litellm:{PUBLIC_MODEL}"),
        ),
        (
            "LLM_SETTINGS",
            "connect_timeout=300ms,first_byte_timeout=20s,breaker_threshold=1,breaker_cooldown=500ms"
                .to_owned(),
        ),
    ]);
    let router = LlmRouter::from_config(&cfg).expect("router");
    let ask = |n: u32| ChatRequest::ask(format!("request {n}"));
    for n in 0..2 {
        let a = router.complete("analyst", &ask(n)).await.expect("primary");
        assert_eq!(a.completion.provider, LlmProvider::OpenRouter);
        assert!(a.failover.is_none());
    }

    // A slow stream from the primary; once its first words are in, SIGKILL the process.
    primary.inject(&json!({"kind": "slow_stream", "delay_ms": 400, "count": 1}));
    let mut s = router
        .complete_stream("analyst", &ChatRequest::ask("a long answer, word by word"))
        .await
        .expect("the stream opens on the primary");
    assert_eq!(s.provider(), LlmProvider::OpenRouter);
    let first = s.next().await.expect("an event").expect("first content");
    let StreamEvent::Content(partial) = first else {
        panic!("expected content first, got {first:?}");
    };
    assert!(!partial.is_empty());
    primary.kill();
    let ended = loop {
        match s.next().await {
            Some(Ok(StreamEvent::Content(_))) => {}
            Some(Ok(StreamEvent::Done(c))) => panic!("the stream completed after SIGKILL: {c:?}"),
            Some(Err(e)) => break e,
            None => panic!("the stream ended without an error after SIGKILL"),
        }
    };
    assert!(
        !matches!(ended, LlmError::Status { .. }),
        "a cut stream, not an HTTP status: {ended:?}"
    );
    assert_eq!(
        s.provider(),
        LlmProvider::OpenRouter,
        "a started stream is not replayed elsewhere"
    );

    // The primary is gone: requests continue through LiteLLM, plain and streaming.
    let upstream_before = upstream.stats()["chat_requests"].as_u64().unwrap_or(0);
    for n in 2..6 {
        let a = router
            .complete("analyst", &ask(n))
            .await
            .expect("requests continue through the secondary");
        assert_eq!(a.completion.provider, LlmProvider::LiteLlm);
        assert_eq!(a.completion.content, format!("sim reply to: request {n}"));
        let f = a.failover.expect("a failover is reported");
        assert_eq!(
            (f.from.provider, f.to.provider),
            (LlmProvider::OpenRouter, LlmProvider::LiteLlm)
        );
        let u = a.completion.usage.expect("usage");
        assert!(
            u.cost.is_some_and(|c| c > rust_decimal::Decimal::ZERO),
            "x-litellm-response-cost read: {u:?}"
        );
    }
    let mut s = router
        .complete_stream("analyst", &ask(99))
        .await
        .expect("a stream via the secondary");
    assert_eq!(s.provider(), LlmProvider::LiteLlm);
    let mut content = String::new();
    while let Some(ev) = s.next().await {
        match ev.expect("the secondary's stream") {
            StreamEvent::Content(t) => content.push_str(&t),
            StreamEvent::Done(_) => {}
        }
    }
    assert_eq!(content, "sim reply to: request 99");
    assert!(
        upstream.stats()["chat_requests"].as_u64().unwrap_or(0) >= upstream_before + 5,
        "LiteLLM forwarded to its sim-llm"
    );

    let text = prometheus.render();
    let failovers = sample(
        &text,
        "gekko_llm_failovers_total",
        &[
            ("role", "analyst"),
            ("from", "openrouter"),
            ("to", "litellm"),
        ],
    )
    .unwrap_or_else(|| panic!("no failover series in:\n{text}"));
    assert!(failovers >= 5.0, "{failovers} failovers counted");
    let errors: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("gekko_llm_errors_total{") && l.contains("provider=\"openrouter\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(errors >= 1.0, "the primary's errors counted:\n{text}");
    let cost = sample(
        &text,
        "gekko_llm_cost_usd_total",
        &[("provider", "litellm")],
    )
    .unwrap_or_else(|| panic!("no litellm cost series in:\n{text}"));
    assert!(cost > 0.0, "LiteLLM's response cost in the metric: {cost}");

    // sim-llm again on the same port: traffic comes back to OpenRouter.
    let primary = SimLlm::start(&primary_addr);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut n = 100;
    loop {
        let a = router.complete("analyst", &ask(n)).await.expect("answered");
        n += 1;
        if a.completion.provider == LlmProvider::OpenRouter {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "traffic did not come back to the primary within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..3 {
        let a = router.complete("analyst", &ask(n)).await.expect("primary");
        n += 1;
        assert_eq!(a.completion.provider, LlmProvider::OpenRouter);
        assert!(a.failover.is_none());
    }
    assert!(primary.stats()["chat_requests"].as_u64().unwrap_or(0) >= 4);
    primary.kill();
    upstream.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_from_sim_llm_is_reported_not_failed_over() {
    let primary = SimLlm::start("127.0.0.1:0");
    let secondary = SimLlm::start("127.0.0.1:0");
    let cfg = config(&[
        (
            "OPENROUTER_API_KEY",
            "sk-or-v1-not-a-key-of-the-sim".to_owned(),
        ),
        ("OPENROUTER_BASE_URL", format!("{}/api/v1", primary.base)),
        ("LITELLM_API_KEY", PAPER_KEY.to_owned()),
        ("LITELLM_BASE_URL", secondary.base.clone()),
        (
            "LLM_MODELS",
            "analyst=openrouter:openai/gpt-4o-mini|litellm:openai/gpt-4o-mini".to_owned(),
        ),
    ]);
    let router = LlmRouter::from_config(&cfg).expect("router");
    let err = router
        .complete("analyst", &ChatRequest::ask("hi"))
        .await
        .expect_err("a refused key is reported");
    assert!(
        matches!(
            err,
            LlmError::Status {
                provider: LlmProvider::OpenRouter,
                status: 401,
                ..
            }
        ),
        "{err:?}"
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains("not-a-key-of-the-sim"), "key echoed: {text}");
    let Err(err) = router
        .complete_stream("analyst", &ChatRequest::ask("hi"))
        .await
    else {
        panic!("a refused key is reported for a stream too");
    };
    assert!(
        matches!(err, LlmError::Status { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(
        primary.stats()["auth_failures"],
        json!(2),
        "both reached the primary"
    );
    assert_eq!(
        secondary.stats()["chat_requests"],
        json!(0),
        "nothing went to the secondary"
    );
    primary.kill();
    secondary.kill();
}
