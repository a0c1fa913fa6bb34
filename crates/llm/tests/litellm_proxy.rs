//! gekko's LiteLLM client against the real LiteLLM proxy (`litellm[proxy]==1.108.7` in
//! `.venv-litellm`, built by `scripts/test.sh` from `scripts/litellm-requirements.txt`),
//! whose one model `gpt-4o-mini` (`openai/gpt-4o-mini`) points at an `LlmSim`.
//!
//! The proxy takes 15–25 s to start, so one proxy (and the sim behind it, on a dedicated
//! thread with its own runtime, so it lives exactly as long as the proxy) is shared by
//! every test of this file and stopped by `gekko_testkit::reaped` when the binary exits.
//! `LITELLM_LOCAL_MODEL_COST_MAP=True` keeps it from fetching the cost map.
//!
//! The failover test puts an OpenRouter-shaped `LlmSim` in front as the primary and this
//! proxy as the secondary, kills the primary mid-run and brings it back on the same port.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use gekko_config::{LlmConfig, LlmProvider};
use gekko_llm::{ChatRequest, LiteLlmClient, LlmError, LlmRouter, StreamEvent};
use gekko_sim::llm::{LlmSim, LlmSimConfig, PAPER_KEY};
use rust_decimal::Decimal;

const MASTER_KEY: &str = "sk-gekko-test-master";
const PUBLIC_MODEL: &str = "gpt-4o-mini";

/// The venv's `litellm`: `$GEKKO_LITELLM_BIN`, else `.venv-litellm/bin/litellm`.
fn litellm_bin() -> PathBuf {
    if let Ok(p) = std::env::var("GEKKO_LITELLM_BIN") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-litellm/bin/litellm")
}

struct Proxy {
    base_url: String,
    upstream: LlmSim,
    /// The reaper wrapper; its stdin pipe closing (the test binary exiting) stops the proxy.
    _child: Mutex<Child>,
    _dir: PathBuf,
}

fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn start_upstream() -> LlmSim {
    let (tx, rx) = std::sync::mpsc::channel();
    // The sim's tasks run on this thread's runtime, which never stops: the sim must
    // outlive every test runtime, as long as the proxy that calls it.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime for the upstream sim");
        rt.block_on(async move {
            let sim = LlmSim::start(LlmSimConfig::default())
                .await
                .expect("upstream sim starts");
            let _ = tx.send(sim);
            std::future::pending::<()>().await;
        });
    });
    rx.recv().expect("upstream sim handle")
}

fn proxy() -> &'static Proxy {
    static PROXY: OnceLock<Proxy> = OnceLock::new();
    PROXY.get_or_init(|| {
        let bin = litellm_bin();
        assert!(
            bin.exists(),
            "{} not found: run scripts/test.sh (it creates .venv-litellm from \
             scripts/litellm-requirements.txt), or build it by hand: python3 -m venv .venv-litellm && \
             .venv-litellm/bin/pip install -r scripts/litellm-requirements.txt",
            bin.display()
        );
        let upstream = start_upstream();
        let dir = std::env::temp_dir().join(format!("gekko-litellm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let config = format!(
            "model_list:\n  - model_name: {PUBLIC_MODEL}\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {}/v1\n      api_key: {PAPER_KEY}\n\ngeneral_settings:\n  master_key: {MASTER_KEY}\n",
            upstream.base_url()
        );
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, config).expect("config file");
        let port = gekko_testkit::free_port().expect("free port");
        let mut cmd = Command::new(&bin);
        cmd.args(["--config"])
            .arg(&config_path)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("LITELLM_LOG", "ERROR")
            .env("NO_PROXY", "*")
            .current_dir(&dir);
        let log = std::fs::File::create(dir.join("litellm.log")).expect("log file");
        let mut child = gekko_testkit::reaped(&cmd)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("litellm starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if get(addr, "/health/liveliness").is_some_and(|r| r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200")) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("litellm.log")).unwrap_or_default();
                panic!("litellm exited at start-up with {status}:\n{log}");
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("litellm.log")).unwrap_or_default();
                panic!("litellm did not answer /health/liveliness within 90 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Proxy {
            base_url: format!("http://127.0.0.1:{port}"),
            upstream,
            _child: Mutex::new(child),
            _dir: dir,
        }
    })
}

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

fn client(key: &str) -> LiteLlmClient {
    let p = proxy();
    let cfg = config(&[
        ("LITELLM_API_KEY", key.to_owned()),
        ("LITELLM_BASE_URL", p.base_url.clone()),
    ]);
    LiteLlmClient::new(&cfg.litellm, &cfg.settings).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_models_and_model_info() {
    let c = client(MASTER_KEY);
    let alive = c.liveliness().await.expect("liveliness");
    assert!(alive.contains("alive"), "{alive}");
    let ready = c.readiness().await.expect("readiness");
    assert_eq!(ready.status, "healthy", "{ready:?}");
    // Without a database the proxy says so (1.108.7 sends no version to this route).
    assert_eq!(ready.db.as_deref(), Some("Not connected"), "{ready:?}");
    let models = c.models().await.expect("models");
    assert_eq!(
        models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        vec![PUBLIC_MODEL]
    );
    let info = c.model_info().await.expect("model info");
    let m = info
        .iter()
        .find(|m| m.model_name == PUBLIC_MODEL)
        .expect("listed in /model/info");
    assert_eq!(m.upstream.as_deref(), Some("openai/gpt-4o-mini"));
    assert_eq!(m.mode.as_deref(), Some("chat"));
    assert!(
        m.input_cost_per_token.is_some_and(|c| c > Decimal::ZERO),
        "{m:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_stream_through_the_proxy() {
    let c = client(MASTER_KEY);
    let before = proxy().upstream.stats().chat_requests;
    let done = c
        .chat(PUBLIC_MODEL, &ChatRequest::ask("via the proxy"))
        .await
        .expect("chat");
    assert_eq!(done.content, "sim reply to: via the proxy");
    assert_eq!(done.provider, LlmProvider::LiteLlm);
    let u = done.usage.expect("usage");
    assert_eq!((u.prompt_tokens, u.completion_tokens), (3, 6));
    assert!(u.cost.is_some(), "x-litellm-response-cost read: {u:?}");

    let mut s = c
        .chat_stream(PUBLIC_MODEL, &ChatRequest::ask("stream via the proxy"))
        .await
        .expect("stream opens");
    let mut content = String::new();
    let last = loop {
        match s.next().await.expect("an event") {
            Ok(StreamEvent::Content(t)) => content.push_str(&t),
            Ok(StreamEvent::Done(c)) => break c,
            Err(e) => panic!("stream: {e}"),
        }
    };
    assert_eq!(content, "sim reply to: stream via the proxy");
    assert_eq!(last.content, content);
    assert!(last.usage.is_some(), "final usage chunk passed through");
    assert!(proxy().upstream.stats().chat_requests >= before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_is_refused_without_echoing_it() {
    let c = client("sk-wrong-key-42");
    let err = c.models().await.expect_err("refused");
    assert!(
        matches!(err, LlmError::Status { status, .. } if (400..600).contains(&status)),
        "refused: {err:?}"
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains("wrong-key-42"), "key echoed: {text}");
    let err = c
        .chat(PUBLIC_MODEL, &ChatRequest::ask("hi"))
        .await
        .expect_err("refused");
    assert!(matches!(err, LlmError::Status { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_killed_mid_run_fails_over_to_litellm_and_comes_back() {
    let p = proxy();
    let primary = LlmSim::start(LlmSimConfig::default())
        .await
        .expect("primary");
    let addr = primary.addr();
    let cfg = config(&[
        ("OPENROUTER_API_KEY", PAPER_KEY.to_owned()),
        ("OPENROUTER_BASE_URL", format!("{}/api/v1", primary.base_url())),
        ("LITELLM_API_KEY", MASTER_KEY.to_owned()),
        ("LITELLM_BASE_URL", p.base_url.clone()),
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
    for n in 0..3 {
        let a = router.complete("analyst", &ask(n)).await.expect("primary");
        assert_eq!(a.completion.provider, LlmProvider::OpenRouter);
    }
    primary.stop().await;
    for n in 3..8 {
        let a = router
            .complete("analyst", &ask(n))
            .await
            .expect("requests continue through the secondary");
        assert_eq!(a.completion.provider, LlmProvider::LiteLlm);
        assert_eq!(a.completion.content, format!("sim reply to: request {n}"));
        assert!(a.failover.is_some());
    }
    // A stream fails over too while the primary is down.
    let mut s = router
        .complete_stream("analyst", &ask(99))
        .await
        .expect("stream via the secondary");
    assert_eq!(s.provider(), LlmProvider::LiteLlm);
    while let Some(ev) = s.next().await {
        ev.expect("secondary stream");
    }

    let primary = LlmSim::start(LlmSimConfig {
        addr,
        ..LlmSimConfig::default()
    })
    .await
    .expect("primary restarts on the same address");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 100;
    loop {
        let a = router.complete("analyst", &ask(n)).await.expect("answered");
        n += 1;
        if a.completion.provider == LlmProvider::OpenRouter {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "traffic did not come back to the primary within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..3 {
        let a = router.complete("analyst", &ask(n)).await.expect("primary");
        n += 1;
        assert_eq!(a.completion.provider, LlmProvider::OpenRouter);
        assert!(a.failover.is_none());
    }
    assert!(primary.stats().chat_requests >= 4);
    primary.stop().await;
}
