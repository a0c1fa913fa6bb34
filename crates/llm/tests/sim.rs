//! gekko's LLM clients and router against `gekko_sim::llm::LlmSim` over real TCP.
//!
//! The OpenRouter client talks to a sim's `/api/v1` routes; where a test needs a second
//! provider, the LiteLLM client talks to another sim's OpenAI-style `/v1` routes (the same
//! shape the LiteLLM proxy serves; the real proxy is checked in `litellm_proxy.rs`). Config
//! goes through `gekko_config::from_vars`, the loader the binaries use.

use std::collections::BTreeMap;
use std::time::Duration;

use gekko_config::{LlmConfig, LlmProvider};
use gekko_llm::{ChatRequest, LlmError, LlmRouter, OpenRouterClient, StreamEvent};
use gekko_net::CircuitState;
use gekko_sim::llm::{Fault, LlmSim, LlmSimConfig, PAPER_KEY};
use rust_decimal::Decimal;

const MODEL: &str = "openai/gpt-4o-mini";

async fn sim() -> LlmSim {
    LlmSim::start(LlmSimConfig::default())
        .await
        .expect("sim starts")
}

async fn sim_with_keepalive(every: Duration) -> LlmSim {
    LlmSim::start(LlmSimConfig {
        keepalive_every: every,
        ..LlmSimConfig::default()
    })
    .await
    .expect("sim starts")
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

/// OpenRouter on `primary` and (when given) LiteLLM-shaped `/v1` on `secondary`, one role
/// `analyst` with primary then secondary.
fn two_providers(primary: &LlmSim, secondary: Option<&LlmSim>, settings: &str) -> LlmConfig {
    let mut pairs = vec![
        ("OPENROUTER_API_KEY", PAPER_KEY.to_owned()),
        (
            "OPENROUTER_BASE_URL",
            format!("{}/api/v1", primary.base_url()),
        ),
        ("OPENROUTER_APP_TITLE", "gekko-tests".to_owned()),
        ("LLM_SETTINGS", settings.to_owned()),
    ];
    match secondary {
        Some(s) => {
            pairs.push(("LITELLM_API_KEY", PAPER_KEY.to_owned()));
            pairs.push(("LITELLM_BASE_URL", s.base_url()));
            pairs.push((
                "LLM_MODELS",
                format!("analyst=openrouter:{MODEL}|litellm:{MODEL}"),
            ));
        }
        None => pairs.push(("LLM_MODELS", format!("analyst=openrouter:{MODEL}"))),
    }
    config(&pairs)
}

fn router(cfg: &LlmConfig) -> LlmRouter {
    LlmRouter::from_config(cfg).expect("router builds")
}

fn openrouter(sim: &LlmSim, key: &str) -> OpenRouterClient {
    let cfg = config(&[
        ("OPENROUTER_API_KEY", key.to_owned()),
        ("OPENROUTER_BASE_URL", format!("{}/api/v1", sim.base_url())),
    ]);
    OpenRouterClient::new(&cfg.openrouter, &cfg.settings).expect("client")
}

#[tokio::test]
async fn models_and_key_info_and_a_refused_key() {
    let sim = sim().await;
    let client = openrouter(&sim, PAPER_KEY);
    let models = client.models().await.expect("models");
    let m = models.iter().find(|m| m.id == MODEL).expect("listed");
    assert_eq!(m.prompt_price, Some(Decimal::new(15, 8)));
    assert_eq!(m.completion_price, Some(Decimal::new(6, 7)));
    assert_eq!(m.context_length, Some(128_000));
    assert_eq!(models.len(), 3);
    let key = client.key_info().await.expect("key info");
    assert!(!key.label.is_empty());

    let bad = openrouter(&sim, "sk-or-v1-wrong-secret");
    let err = bad.key_info().await.expect_err("refused");
    assert!(
        matches!(err, LlmError::Status { status: 401, .. }),
        "{err:?}"
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains("wrong-secret"), "key leaked: {text}");
    assert_eq!(sim.stats().auth_failures, 1);
    sim.stop().await;
}

#[tokio::test]
async fn plain_chat_has_content_usage_and_exact_cost() {
    let sim = sim().await;
    let client = openrouter(&sim, PAPER_KEY);
    let c = client
        .chat(MODEL, &ChatRequest::ask("hello there"))
        .await
        .expect("chat");
    assert_eq!(c.content, "sim reply to: hello there");
    assert_eq!(c.provider, LlmProvider::OpenRouter);
    assert!(c.id.starts_with("gen-"), "{}", c.id);
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
    let u = c.usage.expect("usage");
    assert_eq!(u.prompt_tokens, 2);
    assert_eq!(u.completion_tokens, 5);
    assert_eq!(u.total_tokens, 7);
    // 2 × 0.00000015 + 5 × 0.0000006, read without floats.
    assert_eq!(u.cost, Some(Decimal::new(33, 7)));

    let short = client
        .chat(
            MODEL,
            &ChatRequest {
                max_tokens: Some(2),
                ..ChatRequest::ask("one two three")
            },
        )
        .await
        .expect("chat");
    assert_eq!(short.finish_reason.as_deref(), Some("length"));
    assert_eq!(short.content, "sim reply");
    sim.stop().await;
}

#[tokio::test]
async fn stream_skips_keepalives_and_ends_with_usage() {
    let sim = sim_with_keepalive(Duration::from_millis(10)).await;
    sim.inject(Fault::SlowStream {
        delay: Duration::from_millis(60),
        count: 1,
    });
    let client = openrouter(&sim, PAPER_KEY);
    let mut stream = client
        .chat_stream(MODEL, &ChatRequest::ask("stream this please"))
        .await
        .expect("stream opens");
    let mut pieces = Vec::new();
    let done = loop {
        match stream.next().await.expect("an event") {
            Ok(StreamEvent::Content(t)) => pieces.push(t),
            Ok(StreamEvent::Done(c)) => break c,
            Err(e) => panic!("stream failed: {e}"),
        }
    };
    assert!(stream.next().await.is_none());
    assert!(pieces.len() > 1, "{pieces:?}");
    assert_eq!(pieces.concat(), "sim reply to: stream this please");
    assert_eq!(done.content, pieces.concat());
    assert!(
        stream.keepalives() >= 2,
        "{} keep-alives",
        stream.keepalives()
    );
    let u = done.usage.expect("final usage chunk");
    assert_eq!((u.prompt_tokens, u.completion_tokens), (3, 6));
    assert!(u.cost.is_some_and(|c| c > Decimal::ZERO));
    assert_eq!(sim.stats().stream_requests, 1);
    let debug = format!("{stream:?} {client:?}");
    assert!(!debug.contains(PAPER_KEY), "key in Debug: {debug}");
    sim.stop().await;
}

#[tokio::test]
async fn mid_stream_error_keeps_the_partial_content_and_is_not_failed_over() {
    let (primary, secondary) = (sim().await, sim().await);
    let r = router(&two_providers(&primary, Some(&secondary), ""));
    primary.inject(Fault::MidStreamError {
        code: 502,
        after_chunks: 2,
        count: 1,
    });
    let mut stream = r
        .complete_stream("analyst", &ChatRequest::ask("a b c d e f"))
        .await
        .expect("stream opens on the primary");
    assert_eq!(stream.provider(), LlmProvider::OpenRouter);
    let mut content = String::new();
    let err = loop {
        match stream.next().await.expect("an event") {
            Ok(StreamEvent::Content(t)) => content.push_str(&t),
            Ok(StreamEvent::Done(_)) => panic!("the stream should fail"),
            Err(e) => break e,
        }
    };
    assert!(!content.is_empty());
    match &err {
        LlmError::MidStream {
            provider,
            code,
            partial,
            ..
        } => {
            assert_eq!(*provider, LlmProvider::OpenRouter);
            assert_eq!(code, "502");
            assert_eq!(partial, &content);
        }
        other => panic!("{other:?}"),
    }
    assert!(stream.next().await.is_none());
    assert_eq!(secondary.stats().chat_requests, 0, "no silent duplicate");
    primary.stop().await;
    secondary.stop().await;
}

#[tokio::test]
async fn a_stream_failing_before_content_fails_over() {
    let (primary, secondary) = (sim().await, sim().await);
    let r = router(&two_providers(&primary, Some(&secondary), ""));
    primary.inject(Fault::MidStreamError {
        code: 503,
        after_chunks: 0,
        count: 1,
    });
    let mut stream = r
        .complete_stream("analyst", &ChatRequest::ask("hi"))
        .await
        .expect("fails over");
    assert_eq!(stream.provider(), LlmProvider::LiteLlm);
    let f = stream.failover().expect("failover noted").clone();
    assert_eq!(f.from.provider, LlmProvider::OpenRouter);
    assert!(f.reason.contains("503"), "{}", f.reason);
    let mut content = String::new();
    while let Some(ev) = stream.next().await {
        match ev.expect("secondary streams") {
            StreamEvent::Content(t) => content.push_str(&t),
            StreamEvent::Done(c) => assert_eq!(c.content, content),
        }
    }
    assert_eq!(content, "sim reply to: hi");

    // A 429 on the stream request itself fails over too.
    primary.inject(Fault::Status {
        code: 429,
        retry_after_s: Some(1),
        count: 1,
    });
    let stream = r
        .complete_stream("analyst", &ChatRequest::ask("again"))
        .await
        .expect("fails over");
    assert_eq!(stream.provider(), LlmProvider::LiteLlm);
    primary.stop().await;
    secondary.stop().await;
}

#[tokio::test]
async fn payment_required_is_reported_with_provider_code_and_message() {
    let (primary, secondary) = (sim().await, sim().await);
    let r = router(&two_providers(&primary, Some(&secondary), ""));
    primary.inject(Fault::Status {
        code: 402,
        retry_after_s: None,
        count: 1,
    });
    let err = r
        .complete("analyst", &ChatRequest::ask("hi"))
        .await
        .expect_err("402 is reported");
    match &err {
        LlmError::Status {
            provider,
            status,
            code,
            message,
            ..
        } => {
            assert_eq!(*provider, LlmProvider::OpenRouter);
            assert_eq!(*status, 402);
            assert_eq!(code, "402");
            assert!(!message.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("openrouter"), "{err}");
    assert_eq!(secondary.stats().chat_requests, 0, "402 must not fail over");
    assert_eq!(
        r.circuit(LlmProvider::OpenRouter),
        Some(CircuitState::Closed)
    );
    assert!(
        !format!("{r:?} {err:?}").contains(PAPER_KEY),
        "key in Debug"
    );
    // An unknown model is a 400 from a healthy provider: reported too.
    let cfg = config(&[
        ("OPENROUTER_API_KEY", PAPER_KEY.to_owned()),
        (
            "OPENROUTER_BASE_URL",
            format!("{}/api/v1", primary.base_url()),
        ),
        ("LITELLM_API_KEY", PAPER_KEY.to_owned()),
        ("LITELLM_BASE_URL", secondary.base_url()),
        (
            "LLM_MODELS",
            format!("analyst=openrouter:vendor/nope|litellm:{MODEL}"),
        ),
    ]);
    let err = router(&cfg)
        .complete("analyst", &ChatRequest::ask("hi"))
        .await
        .expect_err("400");
    assert!(
        matches!(err, LlmError::Status { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(secondary.stats().chat_requests, 0);
    primary.stop().await;
    secondary.stop().await;
}

#[tokio::test]
async fn rate_limit_fails_over_and_the_provider_is_skipped_until_retry_after() {
    let (primary, secondary) = (sim().await, sim().await);
    let r = router(&two_providers(&primary, Some(&secondary), ""));
    primary.inject(Fault::Status {
        code: 429,
        retry_after_s: Some(2),
        count: 1,
    });
    let a = r
        .complete("analyst", &ChatRequest::ask("one"))
        .await
        .expect("secondary answers");
    assert_eq!(a.completion.provider, LlmProvider::LiteLlm);
    let f = a.failover.expect("failover");
    assert!(f.reason.contains("429"), "{}", f.reason);
    // Within Retry-After the primary is not asked at all.
    for _ in 0..3 {
        let a = r
            .complete("analyst", &ChatRequest::ask("two"))
            .await
            .expect("secondary answers");
        assert_eq!(a.completion.provider, LlmProvider::LiteLlm);
    }
    assert_eq!(primary.stats().chat_requests, 1);
    assert_eq!(r.circuit(LlmProvider::OpenRouter), Some(CircuitState::Open));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let a = r
        .complete("analyst", &ChatRequest::ask("three"))
        .await
        .expect("primary again");
    assert_eq!(a.completion.provider, LlmProvider::OpenRouter);
    assert!(a.failover.is_none());
    assert_eq!(primary.stats().chat_requests, 2);
    primary.stop().await;
    secondary.stop().await;
}

#[tokio::test]
async fn server_errors_and_hangs_fail_over() {
    let (primary, secondary) = (sim().await, sim().await);
    let r = router(&two_providers(
        &primary,
        Some(&secondary),
        "first_byte_timeout=1s,breaker_threshold=5",
    ));
    primary.inject(Fault::Status {
        code: 503,
        retry_after_s: None,
        count: 1,
    });
    let a = r
        .complete("analyst", &ChatRequest::ask("x"))
        .await
        .expect("fails over");
    assert_eq!(a.completion.provider, LlmProvider::LiteLlm);
    assert!(a.failover.expect("failover").reason.contains("503"));

    primary.inject(Fault::Hang { count: 1 });
    let started = std::time::Instant::now();
    let a = r
        .complete("analyst", &ChatRequest::ask("y"))
        .await
        .expect("fails over after the timeout");
    assert!(started.elapsed() < Duration::from_secs(6));
    assert_eq!(a.completion.provider, LlmProvider::LiteLlm);
    assert!(
        a.failover.expect("failover").reason.contains("timed out"),
        "timeout named"
    );
    // A stream whose headers never come fails over the same way.
    primary.inject(Fault::Hang { count: 1 });
    let s = r
        .complete_stream("analyst", &ChatRequest::ask("z"))
        .await
        .expect("fails over");
    assert_eq!(s.provider(), LlmProvider::LiteLlm);
    // With no secondary every attempt is named.
    let solo = router(&two_providers(&primary, None, "first_byte_timeout=1s"));
    primary.inject(Fault::Status {
        code: 500,
        retry_after_s: None,
        count: 1,
    });
    let err = solo
        .complete("analyst", &ChatRequest::ask("x"))
        .await
        .expect_err("nothing left");
    assert!(matches!(err, LlmError::Exhausted { .. }), "{err:?}");
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    primary.stop().await;
    secondary.stop().await;
}

#[tokio::test]
async fn breaker_opens_then_half_opens_and_traffic_returns_to_the_primary() {
    let (primary, secondary) = (sim().await, sim().await);
    let r = router(&two_providers(
        &primary,
        Some(&secondary),
        "breaker_threshold=2,breaker_cooldown=500ms",
    ));
    primary.inject(Fault::Status {
        code: 500,
        retry_after_s: None,
        count: 2,
    });
    for _ in 0..2 {
        let a = r
            .complete("analyst", &ChatRequest::ask("q"))
            .await
            .expect("secondary");
        assert_eq!(a.completion.provider, LlmProvider::LiteLlm);
    }
    assert_eq!(r.circuit(LlmProvider::OpenRouter), Some(CircuitState::Open));
    let a = r
        .complete("analyst", &ChatRequest::ask("q"))
        .await
        .expect("secondary");
    assert_eq!(a.completion.provider, LlmProvider::LiteLlm);
    assert!(
        a.failover
            .expect("skip noted")
            .reason
            .contains("circuit open"),
        "skip named"
    );
    assert_eq!(primary.stats().chat_requests, 2, "open circuit: not asked");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        r.circuit(LlmProvider::OpenRouter),
        Some(CircuitState::HalfOpen)
    );
    let a = r
        .complete("analyst", &ChatRequest::ask("q"))
        .await
        .expect("probe succeeds");
    assert_eq!(a.completion.provider, LlmProvider::OpenRouter);
    assert!(a.failover.is_none());
    assert_eq!(
        r.circuit(LlmProvider::OpenRouter),
        Some(CircuitState::Closed)
    );
    primary.stop().await;
    secondary.stop().await;
}

#[tokio::test]
async fn startup_check_names_missing_models_and_unreachable_providers() {
    let primary = sim().await;
    let cfg = config(&[
        ("OPENROUTER_API_KEY", PAPER_KEY.to_owned()),
        (
            "OPENROUTER_BASE_URL",
            format!("{}/api/v1", primary.base_url()),
        ),
        ("LITELLM_API_KEY", "sk-x".to_owned()),
        // Nothing listens on port 1.
        ("LITELLM_BASE_URL", "http://127.0.0.1:1".to_owned()),
        (
            "LLM_MODELS",
            format!(
                "analyst=openrouter:{MODEL}|litellm:gpt-4o-mini;summary=openrouter:vendor/absent"
            ),
        ),
        ("LLM_SETTINGS", "connect_timeout=500ms".to_owned()),
    ]);
    let checks = router(&cfg).check().await;
    assert_eq!(checks.len(), 2);
    let or = checks
        .iter()
        .find(|c| c.provider == LlmProvider::OpenRouter)
        .unwrap();
    assert_eq!(or.listed, Ok(3));
    assert_eq!(or.missing, vec!["vendor/absent".to_owned()]);
    assert!(!or.ok());
    assert!(or.summary().contains("vendor/absent"), "{}", or.summary());
    let lite = checks
        .iter()
        .find(|c| c.provider == LlmProvider::LiteLlm)
        .unwrap();
    assert!(lite.listed.is_err(), "{lite:?}");
    assert!(
        lite.summary().contains("not reachable"),
        "{}",
        lite.summary()
    );

    // All present: ok.
    let good = router(&two_providers(&primary, None, "")).check().await;
    assert!(good.iter().all(gekko_llm::ProviderCheck::ok), "{good:?}");
    primary.stop().await;
}

/// What the OpenRouter client puts on the wire, read from the raw request heads by a
/// loopback listener (the simulator does not report headers): attribution on every
/// request, the bearer key only where OpenRouter needs it (`/models` is public).
#[tokio::test]
async fn attribution_headers_on_every_request_and_the_key_only_where_needed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut heads = Vec::new();
        for body in [r#"{"data":[]}"#, r#"{"data":{"label":"sk-or-v1-a...z"}}"#] {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "request head cut short");
                head.extend_from_slice(&buf[..n]);
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(reply.as_bytes()).await.unwrap();
            heads.push(String::from_utf8_lossy(&head).to_ascii_lowercase());
        }
        heads
    });
    let cfg = config(&[
        ("OPENROUTER_API_KEY", PAPER_KEY.to_owned()),
        ("OPENROUTER_BASE_URL", format!("http://{addr}/api/v1")),
        ("OPENROUTER_APP_URL", "https://example.com/gekko".to_owned()),
        ("OPENROUTER_APP_TITLE", "gekko tests".to_owned()),
    ]);
    let client = OpenRouterClient::new(&cfg.openrouter, &cfg.settings).unwrap();
    assert!(client.models().await.unwrap().is_empty());
    client.key_info().await.unwrap();
    let heads = server.await.unwrap();
    for h in &heads {
        assert!(h.contains("http-referer: https://example.com/gekko"), "{h}");
        assert!(h.contains("x-openrouter-title: gekko tests"), "{h}");
        assert!(h.contains("x-title: gekko tests"), "{h}");
    }
    assert!(heads[0].starts_with("get /api/v1/models "), "{}", heads[0]);
    assert!(!heads[0].contains("authorization"), "{}", heads[0]);
    assert!(heads[1].starts_with("get /api/v1/key "), "{}", heads[1]);
    assert!(
        heads[1].contains(&format!("authorization: bearer {PAPER_KEY}")),
        "{}",
        heads[1]
    );
}

#[tokio::test]
async fn keepalives_hold_a_slow_stream_open_and_silence_times_out() {
    // Keep-alives every 20 ms: a 1 s wait between chunks is not silence. (The margins are
    // wide so a loaded machine cannot starve the sim into a false silence.)
    let chatty = sim_with_keepalive(Duration::from_millis(20)).await;
    chatty.inject(Fault::SlowStream {
        delay: Duration::from_secs(1),
        count: 1,
    });
    let r = router(&two_providers(&chatty, None, "first_byte_timeout=500ms"));
    let mut s = r
        .complete_stream("analyst", &ChatRequest::ask("slow but alive"))
        .await
        .expect("opens");
    let mut content = String::new();
    while let Some(ev) = s.next().await {
        match ev.expect("keep-alives keep it open") {
            StreamEvent::Content(t) => content.push_str(&t),
            StreamEvent::Done(_) => {}
        }
    }
    assert_eq!(content, "sim reply to: slow but alive");
    assert!(s.keepalives() > 5, "{}", s.keepalives());
    chatty.stop().await;

    // No keep-alive for 10 s: the same wait is silence, a timeout before any content,
    // so the stream fails over.
    let quiet = sim_with_keepalive(Duration::from_secs(10)).await;
    let secondary = sim().await;
    quiet.inject(Fault::SlowStream {
        delay: Duration::from_millis(1500),
        count: 1,
    });
    let r = router(&two_providers(
        &quiet,
        Some(&secondary),
        "first_byte_timeout=500ms",
    ));
    let s = r
        .complete_stream("analyst", &ChatRequest::ask("quiet"))
        .await
        .expect("fails over");
    assert_eq!(s.provider(), LlmProvider::LiteLlm);
    let reason = &s.failover().expect("failover").reason;
    assert!(reason.contains("stream silence timed out"), "{reason}");
    quiet.stop().await;
    secondary.stop().await;
}

#[tokio::test]
async fn max_retries_retries_the_same_provider_before_failing_over() {
    let (primary, secondary) = (sim().await, sim().await);
    let r = router(&two_providers(&primary, Some(&secondary), "max_retries=1"));
    primary.inject(Fault::Status {
        code: 502,
        retry_after_s: None,
        count: 1,
    });
    let a = r
        .complete("analyst", &ChatRequest::ask("retry"))
        .await
        .expect("retried");
    assert_eq!(a.completion.provider, LlmProvider::OpenRouter);
    assert!(a.failover.is_none());
    assert_eq!(primary.stats().chat_requests, 2);
    assert_eq!(secondary.stats().chat_requests, 0);
    primary.stop().await;
    secondary.stop().await;
}

#[tokio::test]
async fn a_429_without_retry_after_honours_x_ratelimit_reset() {
    let (primary, secondary) = (sim().await, sim().await);
    let r = router(&two_providers(&primary, Some(&secondary), ""));
    // The sim then sends X-RateLimit-Reset 60 s ahead, as OpenRouter's platform 429s do.
    primary.inject(Fault::Status {
        code: 429,
        retry_after_s: None,
        count: 1,
    });
    for _ in 0..3 {
        let a = r
            .complete("analyst", &ChatRequest::ask("limited"))
            .await
            .expect("secondary");
        assert_eq!(a.completion.provider, LlmProvider::LiteLlm);
    }
    assert_eq!(primary.stats().chat_requests, 1, "skipped until the reset");
    assert_eq!(r.circuit(LlmProvider::OpenRouter), Some(CircuitState::Open));
    primary.stop().await;
    secondary.stop().await;
}
