//! The LLM simulator checked by official Python SDKs (pinned in
//! `scripts/sdk-requirements.txt`, installed into `.venv-sdk` by `scripts/test.sh`):
//! OpenAI's `openai` on the OpenAI path (`/v1`: what LiteLLM and OpenAI clients call) and
//! OpenRouter's `openrouter` on the OpenRouter path (`/api/v1`), whose generated response
//! models check every field of every answer.
//!
//! gekko's LLM client and this simulator were written by the same team, so agreeing with
//! each other proves little on its own; the SDKs are an independent check of the JSON
//! shapes, the SSE framing (comments, the usage chunk, `[DONE]`, a mid-stream error event)
//! and the error statuses. The scripts queue faults through the simulator's admin API; the
//! counters read back here prove the requests reached this simulator. A missing venv
//! fails the test with instructions: it never skips.

use std::path::PathBuf;
use std::process::Command;

use gekko_sim::llm::{LlmSim, LlmSimConfig, PAPER_KEY};

/// The venv's Python: `$GEKKO_SDK_PYTHON`, else `.venv-sdk/bin/python` at the workspace root.
fn sdk_python() -> PathBuf {
    if let Ok(p) = std::env::var("GEKKO_SDK_PYTHON") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-sdk/bin/python")
}

/// Runs `script` (in `tests/sdk/`) against a fresh simulator; returns its stdout and the
/// simulator's counters.
async fn run_check(script: &str, package: &str) -> (String, gekko_sim::llm::LlmSimStats) {
    let python = sdk_python();
    assert!(
        python.exists(),
        "{} not found: run scripts/test.sh (it creates .venv-sdk with the pinned official \
         SDKs), or set GEKKO_SDK_PYTHON to a Python with {package} from \
         scripts/sdk-requirements.txt",
        python.display()
    );
    let sim = LlmSim::start(LlmSimConfig::default())
        .await
        .expect("simulator starts");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(script);
    let base = sim.base_url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([&base, PAPER_KEY])
            // The simulator is on loopback; a proxy from the environment must not intercept.
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .output()
            .expect("the SDK check runs")
    })
    .await
    .expect("the SDK check finishes");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{package} check failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    let stats = sim.stats();
    sim.stop().await;
    (stdout, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_lists_chats_streams_and_maps_errors() {
    let (stdout, stats) = run_check("llm_openai_check.py", "openai==3.51.0").await;
    assert!(
        stdout.contains("wrong key: AuthenticationError"),
        "{stdout}"
    );
    assert!(stdout.contains("429: RateLimitError"), "{stdout}");
    // Two models lists (one refused), and every chat the script sent.
    assert_eq!(stats.models_requests, 2, "{stats:?}");
    assert_eq!(stats.auth_failures, 2, "{stats:?}");
    assert_eq!(stats.chat_requests, 12, "{stats:?}");
    assert_eq!(stats.stream_requests, 3, "{stats:?}");
    // mid-stream error, 429, 402, 503.
    assert_eq!(stats.faults_served, 4, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openrouter_sdk_validates_models_key_chat_stream_and_errors() {
    let (stdout, stats) = run_check("llm_openrouter_check.py", "openrouter==1.3.84").await;
    assert!(
        stdout.contains("429: TooManyRequestsResponseError"),
        "{stdout}"
    );
    assert!(
        stdout.contains("402: PaymentRequiredResponseError"),
        "{stdout}"
    );
    assert_eq!(stats.models_requests, 1, "{stats:?}");
    assert_eq!(stats.key_requests, 2, "{stats:?}");
    assert_eq!(stats.chat_requests, 6, "{stats:?}");
    assert_eq!(stats.stream_requests, 1, "{stats:?}");
    assert_eq!(stats.auth_failures, 1, "{stats:?}");
    assert_eq!(stats.faults_served, 2, "{stats:?}");
}
