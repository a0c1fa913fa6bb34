//! The LLM variables: OPENROUTER_*, LITELLM_*, LLM_MODELS and LLM_SETTINGS.

use std::collections::BTreeMap;
use std::time::Duration;

use gekko_config::{ConfigErrors, GekkoConfig, LlmProvider, from_vars};
use secrecy::ExposeSecret as _;

fn load(pairs: &[(&str, &str)]) -> Result<GekkoConfig, ConfigErrors> {
    let vars: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    from_vars(&vars).map(|l| l.config)
}

#[test]
fn defaults_mean_no_llm_service() {
    let cfg = load(&[]).unwrap();
    assert!(!cfg.llm.enabled());
    assert_eq!(cfg.llm.openrouter.base_url, "https://openrouter.ai/api/v1");
    assert_eq!(cfg.llm.litellm.base_url, "http://127.0.0.1:4000");
    assert_eq!(cfg.llm.settings.first_byte_timeout, Duration::from_secs(30));
    assert_eq!(cfg.llm.settings.breaker_threshold, 3);
}

#[test]
fn roles_with_primary_and_secondary() {
    let cfg = load(&[
        ("OPENROUTER_API_KEY", "sk-or-v1-abc"),
        ("OPENROUTER_BASE_URL", "http://127.0.0.1:9480/api/v1/"),
        ("OPENROUTER_APP_URL", "https://example.com/gekko"),
        ("OPENROUTER_APP_TITLE", "gekko"),
        ("LITELLM_API_KEY", "sk-master"),
        (
            "LLM_MODELS",
            "analyst=openrouter:openai/gpt-4o-mini|litellm:gpt-4o-mini; summary=litellm:gpt-4o-mini",
        ),
        (
            "LLM_SETTINGS",
            "first_byte_timeout=5s,total_timeout=1m,breaker_threshold=2,breaker_cooldown=250ms,max_retries=1",
        ),
    ])
    .unwrap();
    let llm = &cfg.llm;
    assert!(llm.enabled());
    assert_eq!(llm.openrouter.base_url, "http://127.0.0.1:9480/api/v1");
    assert_eq!(llm.openrouter.app_title.as_deref(), Some("gekko"));
    assert_eq!(
        llm.litellm
            .api_key
            .as_ref()
            .map(|k| k.expose_secret().to_owned()),
        Some("sk-master".to_owned())
    );
    let analyst = llm.role("analyst").unwrap();
    assert_eq!(analyst.primary.to_string(), "openrouter:openai/gpt-4o-mini");
    assert_eq!(
        analyst.secondary.as_ref().map(ToString::to_string),
        Some("litellm:gpt-4o-mini".to_owned())
    );
    assert!(llm.role("summary").unwrap().secondary.is_none());
    assert_eq!(
        llm.providers_in_use(),
        vec![LlmProvider::OpenRouter, LlmProvider::LiteLlm]
    );
    assert_eq!(llm.models_at(LlmProvider::LiteLlm), vec!["gpt-4o-mini"]);
    assert_eq!(llm.settings.breaker_cooldown, Duration::from_millis(250));
    assert_eq!(llm.settings.max_retries, 1);
    // Keys never reach Debug.
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("sk-or-v1-abc") && !debug.contains("sk-master"));
}

#[test]
fn every_problem_is_named_at_once_and_keys_are_not_echoed() {
    let err = load(&[
        ("LITELLM_API_KEY", "not-a-litellm-key"),
        ("OPENROUTER_BASE_URL", "ftp://x"),
        ("OPENROUTER_APP_URL", "nope"),
        (
            "LLM_MODELS",
            "analyst=openrouter:a/b;analyst=litellm:c;bad role=litellm:x;three=litellm:a|litellm:b|litellm:c;same=litellm:a|litellm:a;odd=mystery:m;empty=litellm:",
        ),
        (
            "LLM_SETTINGS",
            "first_byte_timeout=10s,total_timeout=5s,breaker_threshold=0,colour=blue",
        ),
    ])
    .unwrap_err();
    let text = err.to_string();
    for needle in [
        "LITELLM_API_KEY: the key (17 characters) does not start with `sk-`",
        "OPENROUTER_BASE_URL: the URL scheme is `ftp`",
        "OPENROUTER_APP_URL",
        "role `analyst` is given more than once",
        "`bad role` is not a name",
        "three: 3 targets given",
        "same: the secondary is the primary (litellm:a)",
        "odd: `mystery` is not a provider",
        "empty: `litellm:` names no model",
        "role analyst uses openrouter but OPENROUTER_API_KEY is not set",
        "LLM_SETTINGS: unknown key `colour`",
        "breaker_threshold: 0 is out of range",
        "total_timeout is shorter than first_byte_timeout",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("not-a-litellm-key"), "key echoed:\n{text}");
}

#[test]
fn a_litellm_role_needs_the_litellm_key() {
    let err = load(&[("LLM_MODELS", "a=litellm:m;b=litellm:n")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("roles a, b use litellm but LITELLM_API_KEY is not set"),
        "{err}"
    );
    assert!(err.mentions("LLM_MODELS"));
}
