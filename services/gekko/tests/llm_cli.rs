//! `gekko llm models`, `gekko llm ask`, the LLM rows of `gekko check`, and the `llm`
//! service inside `gekko up` (readiness and gRPC), run as processes against `LlmSim`s
//! (real TCP).

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use gekko_sim::llm::{Fault, LlmSim, LlmSimConfig, PAPER_KEY};

const BIN: &str = env!("CARGO_BIN_EXE_gekko");

fn run_gekko(args: &[&str], env: &[(&str, String)]) -> Output {
    let env_file = std::env::temp_dir().join(format!("gekko-llm-cli-{}.env", std::process::id()));
    std::fs::write(&env_file, "# empty\n").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GEKKO_ENV_FILE", &env_file)
        .current_dir(std::env::temp_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("gekko runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn env_for(primary: &LlmSim, secondary: Option<&LlmSim>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("OPENROUTER_API_KEY", PAPER_KEY.to_owned()),
        (
            "OPENROUTER_BASE_URL",
            format!("{}/api/v1", primary.base_url()),
        ),
    ];
    match secondary {
        Some(s) => {
            env.push(("LITELLM_API_KEY", PAPER_KEY.to_owned()));
            env.push(("LITELLM_BASE_URL", s.base_url()));
            env.push((
                "LLM_MODELS",
                "analyst=openrouter:openai/gpt-4o-mini|litellm:openai/gpt-4o-mini".to_owned(),
            ));
        }
        None => env.push((
            "LLM_MODELS",
            "analyst=openrouter:openai/gpt-4o-mini".to_owned(),
        )),
    }
    env
}

#[test]
fn models_and_ask_print_provider_model_tokens_and_cost() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(LlmSim::start(LlmSimConfig::default())).unwrap();
    let env = env_for(&sim, None);

    let out = run_gekko(&["llm", "models"], &env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("role analyst: primary openrouter:openai/gpt-4o-mini"),
        "{stdout}"
    );
    assert!(stdout.contains("* openai/gpt-4o-mini"), "{stdout}");
    assert!(stdout.contains("anthropic/claude-3.5-haiku"), "{stdout}");

    let out = run_gekko(&["llm", "ask", "hello cli"], &env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("sim reply to: hello cli"), "{stdout}");
    assert!(
        stdout.contains(
            "role=analyst provider=openrouter model=openai/gpt-4o-mini failover=none tokens=2+5=7 cost_usd=0.0000033"
        ),
        "{stdout}"
    );

    let out = run_gekko(&["llm", "ask", "--stream", "stream cli"], &env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("sim reply to: stream cli"), "{stdout}");
    assert!(stdout.contains("provider=openrouter"), "{stdout}");

    // 402 is reported: exit 1, provider and code named, the key never printed.
    sim.inject(Fault::Status {
        code: 402,
        retry_after_s: None,
        count: 1,
    });
    let out = run_gekko(&["llm", "ask", "pay"], &env);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("openrouter") && stderr.contains("402"),
        "{stderr}"
    );
    assert!(!format!("{stdout}{stderr}").contains(PAPER_KEY));

    let out = run_gekko(&["llm", "ask", "--role", "nobody", "x"], &env);
    assert_eq!(out.status.code(), Some(64), "{:?}", text(&out));
    rt.block_on(sim.stop());
}

#[test]
fn ask_reports_a_failover() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let primary = rt.block_on(LlmSim::start(LlmSimConfig::default())).unwrap();
    let secondary = rt.block_on(LlmSim::start(LlmSimConfig::default())).unwrap();
    primary.inject(Fault::Status {
        code: 503,
        retry_after_s: None,
        count: 1,
    });
    let out = run_gekko(
        &["llm", "ask", "fail me over"],
        &env_for(&primary, Some(&secondary)),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("sim reply to: fail me over"), "{stdout}");
    assert!(
        stdout.contains(
            "provider=litellm model=openai/gpt-4o-mini failover=openrouter:openai/gpt-4o-mini->litellm:openai/gpt-4o-mini"
        ),
        "{stdout}"
    );
    assert_eq!(primary.stats().chat_requests, 1);
    assert_eq!(secondary.stats().chat_requests, 1);
    rt.block_on(primary.stop());
    rt.block_on(secondary.stop());
}

#[test]
fn check_shows_one_row_per_provider_or_not_configured() {
    let out = run_gekko(&["check"], &[]);
    let (stdout, _) = text(&out);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("llm "))
        .unwrap_or_else(|| panic!("an llm row:\n{stdout}"));
    assert!(line.contains("not configured"), "{line}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(LlmSim::start(LlmSimConfig::default())).unwrap();
    let mut env = env_for(&sim, None);
    let out = run_gekko(&["check"], &env);
    let (stdout, _) = text(&out);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("llm openrouter"))
        .unwrap_or_else(|| panic!("an llm openrouter row:\n{stdout}"));
    assert!(
        line.contains("PASS") && line.contains("3 models listed"),
        "{line}"
    );

    env.retain(|(k, _)| *k != "LLM_MODELS");
    env.push(("LLM_MODELS", "analyst=openrouter:vendor/absent".to_owned()));
    let out = run_gekko(&["check"], &env);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("llm openrouter"))
        .unwrap_or_else(|| panic!("an llm openrouter row:\n{stdout}"));
    assert!(
        line.contains("FAIL") && line.contains("vendor/absent") && line.contains("missing"),
        "{line}"
    );

    // `llm` among the required checks: `gekko up` stops (69) before binding anything when
    // a provider is unreachable, and names it.
    let out = run_gekko(
        &["up"],
        &[
            ("OPENROUTER_API_KEY", PAPER_KEY.to_owned()),
            (
                "OPENROUTER_BASE_URL",
                "http://127.0.0.1:1/api/v1".to_owned(),
            ),
            (
                "LLM_MODELS",
                "analyst=openrouter:openai/gpt-4o-mini".to_owned(),
            ),
            ("LLM_SETTINGS", "connect_timeout=300ms".to_owned()),
            (
                "CONTROLLER_SETTINGS",
                "required_checks=config;llm".to_owned(),
            ),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(69), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("llm openrouter") && stderr.contains("not reachable"),
        "{stderr}"
    );

    // A role on a provider without its key is a config problem, named.
    let out = run_gekko(
        &["llm", "models"],
        &[("LLM_MODELS", "analyst=litellm:gpt-4o-mini".to_owned())],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("LITELLM_API_KEY is not set"), "{stderr}");
    rt.block_on(sim.stop());
}

#[test]
fn gekko_up_hosts_the_llm_service_in_readiness_and_grpc() {
    use gekko_proto::v1 as pb;
    use gekko_proto::v1::llm_service_client::LlmServiceClient;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(LlmSim::start(LlmSimConfig::default())).unwrap();
    let reports = std::env::temp_dir().join(format!("gekko-llm-up-{}", std::process::id()));
    let (http, grpc) = (
        gekko_testkit::free_port().unwrap(),
        gekko_testkit::free_port().unwrap(),
    );
    let mut cmd = common::gekko(&["up"]);
    cmd.env(
        "MONITORING_CONFIGURATIONS",
        common::monitoring(http, grpc, "json"),
    )
    .env(
        "CONTROLLER_SETTINGS",
        format!("reports_dir={}", reports.display()),
    )
    .env(
        "AUDIT_LOGGING_SETTINGS",
        format!("archive_dir={}", reports.join("audit").display()),
    )
    .env("LLM_SETTINGS", "probe_interval=200ms,connect_timeout=300ms");
    // Tokens: a viewer may list models, only a trader may spend credits.
    let (viewer, viewer_entry) = new_token("viewer");
    let (trader, trader_entry) = new_token("trader");
    cmd.env(
        "ACCESS_CONTROL_CONFIG",
        format!("tokens={viewer_entry};{trader_entry}"),
    );
    for (k, v) in env_for(&sim, None) {
        cmd.env(k, v);
    }
    let mut up = common::Up::start(cmd);
    let row = up.wait_for_line("llm openrouter", Duration::from_secs(60));
    assert!(row.contains("PASS"), "{row}");
    up.wait_for_line("gekko up: mode=paper", Duration::from_secs(60));
    let addr = format!("127.0.0.1:{http}");
    let body = common::wait_ready(&addr);
    assert!(body.contains("llm"), "{body}");

    let ask = |token: &str| {
        let mut req = tonic::Request::new(pb::LlmCompleteRequest {
            role: "analyst".to_owned(),
            messages: vec![pb::LlmChatMessage {
                role: "user".to_owned(),
                content: "through gekko up".to_owned(),
            }],
            max_tokens: 0,
        });
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("metadata"),
        );
        req
    };
    let answer = rt.block_on(async {
        let mut client = LlmServiceClient::connect(format!("http://127.0.0.1:{grpc}"))
            .await
            .expect("gRPC connects");
        let mut list = tonic::Request::new(pb::LlmListModelsRequest {});
        list.metadata_mut().insert(
            "authorization",
            format!("Bearer {viewer}").parse().expect("metadata"),
        );
        let models = client
            .list_models(list)
            .await
            .expect("a viewer lists models");
        assert_eq!(models.into_inner().roles.len(), 1);
        let refused = client.complete(ask(&viewer)).await.expect_err("viewer");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
        assert_eq!(sim.stats().chat_requests, 0, "nothing spent for a viewer");
        client
            .complete(ask(&trader))
            .await
            .expect("a trader completes")
            .into_inner()
    });
    assert_eq!(answer.content, "sim reply to: through gekko up");
    assert_eq!(answer.provider, "openrouter");
    let (_, metrics) = common::http_get(&addr, "/metrics").expect("metrics");
    for needle in [
        "gekko_llm_request_duration_seconds",
        "gekko_llm_tokens_total{",
        "kind=\"completion\"",
        "gekko_llm_cost_usd_total{",
        "gekko_llm_provider_up{provider=\"openrouter\"} 1",
    ] {
        assert!(metrics.contains(needle), "{needle} not in /metrics");
    }

    // The provider goes away: /readyz fails and says why.
    rt.block_on(sim.stop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((503, body)) = common::http_get(&addr, "/readyz")
            && body.contains("not reachable")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not report the unreachable provider"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, lines) = up.terminate();
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let _ = std::fs::remove_dir_all(&reports);
}

/// A fresh token of `role` from `gekko token new`: the token and its `tokens=` entry.
fn new_token(role: &str) -> (String, String) {
    let out = run_gekko(&["token", "new", "--role", role, "--name", role], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let token = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("gk_"))
        .unwrap_or_else(|| panic!("a token in:\n{stdout}"))
        .to_owned();
    let entry = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("tokens="))
        .unwrap_or_else(|| panic!("an entry in:\n{stdout}"))
        .to_owned();
    (token, entry)
}
