//! `gekko llm models` and `gekko llm ask "…" [--role R]`, and the LLM rows of
//! `gekko check`.
//!
//! Both commands build the router from config directly (the same `gekko-llm` clients,
//! failover and breakers the `llm` service uses); no running gekko is needed. `ask`
//! prints the answer, then one line with provider, model, failover (if any), tokens and
//! cost. Exit codes: 64 without `LLM_MODELS` or with an unknown role, 69 when every
//! provider failed, 1 when a provider refused the request (400, 401, 402, ...).

use std::time::Duration;

use clap::{Args, Subcommand};
use gekko_config::{GekkoConfig, Loaded};
use gekko_llm::{Answer, ChatRequest, Completion, LlmError, LlmRouter, StreamEvent};

use crate::check::{Row, Status};
use crate::exit::Exit;

/// `gekko llm`.
#[derive(Debug, Args)]
pub(crate) struct LlmArgs {
    #[command(subcommand)]
    command: LlmCommand,
}

#[derive(Debug, Subcommand)]
enum LlmCommand {
    /// List the configured roles and every provider's models (configured ones marked).
    Models,
    /// Ask one question and print the answer, provider, model, failover, tokens and cost.
    Ask {
        /// The question.
        question: String,
        /// The role of LLM_MODELS to ask (default: the first one).
        #[arg(long)]
        role: Option<String>,
        /// Largest answer, in tokens.
        #[arg(long)]
        max_tokens: Option<u32>,
        /// Print the answer as it streams.
        #[arg(long)]
        stream: bool,
    },
}

/// Runs `gekko llm …`.
pub(crate) async fn run(loaded: &Loaded, args: LlmArgs) -> Exit {
    let cfg = &loaded.config.llm;
    if !cfg.enabled() {
        eprintln!("gekko llm: LLM_MODELS is not set: no LLM role is configured (see docs/llm.md)");
        return Exit::Config;
    }
    let router = match LlmRouter::from_config(cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gekko llm: {e}");
            return Exit::Internal;
        }
    };
    match args.command {
        LlmCommand::Models => models(&router).await,
        LlmCommand::Ask {
            question,
            role,
            max_tokens,
            stream,
        } => {
            let Some(role) = role.or_else(|| router.roles().first().map(|r| r.name.clone())) else {
                eprintln!("gekko llm: LLM_MODELS names no role");
                return Exit::Config;
            };
            let req = ChatRequest {
                max_tokens,
                ..ChatRequest::ask(question)
            };
            if stream {
                ask_stream(&router, &role, &req).await
            } else {
                match router.complete(&role, &req).await {
                    Ok(answer) => {
                        println!("{}", answer.completion.content);
                        println!("{}", footer(&role, &answer.completion, &answer));
                        Exit::Ok
                    }
                    Err(e) => failed(&e),
                }
            }
        }
    }
}

async fn models(router: &LlmRouter) -> Exit {
    for r in router.roles() {
        let secondary = r
            .secondary
            .as_ref()
            .map(|s| format!(" | secondary {s}"))
            .unwrap_or_default();
        println!("role {}: primary {}{secondary}", r.name, r.primary);
    }
    let mut exit = Exit::Ok;
    for p in router.providers() {
        let Some(client) = router.client(p) else {
            continue;
        };
        let configured: Vec<&str> = router
            .roles()
            .iter()
            .flat_map(|r| r.targets())
            .filter(|t| t.provider == p)
            .map(|t| t.model.as_str())
            .collect();
        match client.models().await {
            Ok(models) => {
                println!("{p} ({}): {} models", client.base_url(), models.len());
                for m in &models {
                    let mark = if configured.contains(&m.id.as_str()) {
                        "*"
                    } else {
                        " "
                    };
                    let price = match (m.prompt_price, m.completion_price) {
                        (Some(i), Some(o)) => {
                            format!("  prompt {i} / completion {o} USD per token")
                        }
                        _ => String::new(),
                    };
                    println!("  {mark} {}{price}", m.id);
                }
                for c in &configured {
                    if !models.iter().any(|m| m.id == *c) {
                        println!("  ! {c} is configured but missing from {p}'s model list");
                        exit = Exit::CheckFailed;
                    }
                }
            }
            Err(e) => {
                println!("{p} ({}): not reachable: {e}", client.base_url());
                exit = Exit::Unavailable;
            }
        }
    }
    exit
}

async fn ask_stream(router: &LlmRouter, role: &str, req: &ChatRequest) -> Exit {
    use std::io::Write as _;
    let mut stream = match router.complete_stream(role, req).await {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    let failover = stream.failover().cloned();
    let mut out = std::io::stdout();
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamEvent::Content(t)) => {
                let _ = write!(out, "{t}");
                let _ = out.flush();
            }
            Ok(StreamEvent::Done(c)) => {
                println!();
                let answer = Answer {
                    completion: c.clone(),
                    failover: failover.clone(),
                };
                println!("{}", footer(role, &c, &answer));
                return Exit::Ok;
            }
            Err(e) => {
                println!();
                return failed(&e);
            }
        }
    }
    Exit::Internal
}

/// `role=R provider=P model=M failover=none tokens=2+5=7 cost_usd=0.0000033`.
fn footer(role: &str, c: &Completion, answer: &Answer) -> String {
    let failover = answer.failover.as_ref().map_or_else(
        || "none".to_owned(),
        |f| format!("{}->{} ({})", f.from, f.to, f.reason),
    );
    let (tokens, cost) = match &c.usage {
        Some(u) => (
            format!(
                "{}+{}={}",
                u.prompt_tokens, u.completion_tokens, u.total_tokens
            ),
            u.cost
                .map_or_else(|| "unknown".to_owned(), |d| d.to_string()),
        ),
        None => ("unknown".to_owned(), "unknown".to_owned()),
    };
    format!(
        "role={role} provider={} model={} failover={failover} tokens={tokens} cost_usd={cost}",
        c.provider, c.model
    )
}

fn failed(e: &LlmError) -> Exit {
    eprintln!("gekko llm: {e}");
    if !e.partial().is_empty() {
        eprintln!(
            "gekko llm: partial answer before the error: {}",
            e.partial()
        );
    }
    match e {
        LlmError::UnknownRole(_) | LlmError::Invalid(_) => Exit::Config,
        LlmError::Status { .. } | LlmError::MidStream { .. } => Exit::CheckFailed,
        _ => Exit::Unavailable,
    }
}

/// One `gekko check` row per provider in use (`llm openrouter`, `llm litellm`), or one
/// `llm` row saying it is not configured.
pub(crate) async fn check_rows(cfg: &GekkoConfig) -> Vec<Row> {
    let row = |check: String, status: Status, detail: String| Row {
        check,
        family: "llm",
        status,
        detail,
        required: false,
    };
    if !cfg.llm.enabled() {
        return vec![row(
            "llm".to_owned(),
            Status::Pass,
            "not configured (LLM_MODELS is not set)".to_owned(),
        )];
    }
    let router = match LlmRouter::from_config(&cfg.llm) {
        Ok(r) => r,
        Err(e) => return vec![row("llm".to_owned(), Status::Fail, e.to_string())],
    };
    // Each request has its own timeouts; this bounds the whole check as well.
    let limit = (cfg.llm.settings.first_byte_timeout * 2).min(Duration::from_secs(20));
    match tokio::time::timeout(limit, router.check()).await {
        Ok(checks) => checks
            .into_iter()
            .map(|c| {
                let status = if c.ok() { Status::Pass } else { Status::Fail };
                row(format!("llm {}", c.provider), status, c.summary())
            })
            .collect(),
        Err(_) => vec![row(
            "llm".to_owned(),
            Status::Fail,
            format!("the LLM providers did not answer within {limit:?}"),
        )],
    }
}
