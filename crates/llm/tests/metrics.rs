//! The `gekko_llm_*` metrics, read from the Prometheus recorder `gekko up` installs, after
//! a failover and a reported error against `LlmSim`s. One test per binary: the recorder is
//! process-global.

use std::collections::BTreeMap;

use gekko_llm::{ChatRequest, LlmRouter};
use gekko_sim::llm::{Fault, LlmSim, LlmSimConfig, PAPER_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failovers_errors_tokens_cost_and_provider_up_are_recorded() {
    let handle = gekko_runtime::install_prometheus().expect("recorder");
    gekko_llm::metrics::describe();
    let primary = LlmSim::start(LlmSimConfig::default()).await.unwrap();
    let secondary = LlmSim::start(LlmSimConfig::default()).await.unwrap();
    let vars: BTreeMap<String, String> = [
        ("OPENROUTER_API_KEY", PAPER_KEY.to_owned()),
        (
            "OPENROUTER_BASE_URL",
            format!("{}/api/v1", primary.base_url()),
        ),
        ("LITELLM_API_KEY", PAPER_KEY.to_owned()),
        ("LITELLM_BASE_URL", secondary.base_url()),
        (
            "LLM_MODELS",
            "analyst=openrouter:openai/gpt-4o-mini|litellm:openai/gpt-4o-mini".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let cfg = gekko_config::from_vars(&vars).expect("config").config.llm;
    let router = LlmRouter::from_config(&cfg).expect("router");

    router
        .complete("analyst", &ChatRequest::ask("plain"))
        .await
        .expect("primary");
    primary.inject(Fault::Status {
        code: 503,
        retry_after_s: None,
        count: 1,
    });
    router
        .complete("analyst", &ChatRequest::ask("fail over"))
        .await
        .expect("secondary");
    primary.inject(Fault::Status {
        code: 402,
        retry_after_s: None,
        count: 1,
    });
    router
        .complete("analyst", &ChatRequest::ask("pay"))
        .await
        .expect_err("402");

    let text = handle.render();
    for needle in [
        r#"gekko_llm_failovers_total{role="analyst",from="openrouter",to="litellm"} 1"#,
        r#"gekko_llm_errors_total{provider="openrouter",code="503"} 1"#,
        r#"gekko_llm_errors_total{provider="openrouter",code="402"} 1"#,
        r#"gekko_llm_tokens_total{provider="openrouter",model="openai/gpt-4o-mini",kind="prompt"} 1"#,
        r#"gekko_llm_tokens_total{provider="openrouter",model="openai/gpt-4o-mini",kind="completion"} 4"#,
        r#"gekko_llm_tokens_total{provider="litellm",model="openai/gpt-4o-mini",kind="completion"} 5"#,
        r#"gekko_llm_request_duration_seconds_count{provider="litellm",model="openai/gpt-4o-mini"} 1"#,
        r#"gekko_llm_cost_usd_total{provider="openrouter",model="openai/gpt-4o-mini"}"#,
        r#"gekko_llm_provider_up{provider="openrouter"} 1"#,
        r#"gekko_llm_provider_up{provider="litellm"} 1"#,
        r#"gekko_venue_circuit_state{venue="openrouter",family="llm"} 0"#,
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    primary.stop().await;
    secondary.stop().await;
}
