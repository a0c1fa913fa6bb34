//! The LLM simulator over real TCP with reqwest: every route on both path styles, auth
//! refused, malformed bodies, each fault (statuses with their headers, a mid-stream error,
//! a slow stream with keep-alives, a hang ended by stop), the stats, the admin API, and a
//! restart on the same port after `stop()`.
//!
//! The expected shapes come from the protocol reference (sections 4 and 5 of
//! `venues-and-services.md`), not from the simulator's code.

use std::time::{Duration, Instant};

use gekko_sim::llm::{Fault, LlmSim, LlmSimConfig, LlmSimStats, PAPER_KEY, SimModel};
use serde_json::{Value, json};

const KEY: &str = PAPER_KEY;

async fn sim() -> LlmSim {
    LlmSim::start(LlmSimConfig::default())
        .await
        .expect("the simulator starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn chat_body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": text},
    ]})
}

async fn post_chat(sim: &LlmSim, path: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = client()
        .post(format!("{}{path}", sim.base_url()))
        .json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.expect("chat request")
}

/// Reads a whole SSE body, returning the raw text and the time each line arrived
/// (relative to the start of reading).
async fn read_sse(mut resp: reqwest::Response) -> (String, Vec<(Duration, String)>) {
    let start = Instant::now();
    let mut text = String::new();
    let mut pending = String::new();
    let mut lines = Vec::new();
    while let Some(chunk) = resp.chunk().await.expect("stream chunk") {
        let s = String::from_utf8(chunk.to_vec()).expect("utf-8");
        text.push_str(&s);
        pending.push_str(&s);
        while let Some(i) = pending.find('\n') {
            let line: String = pending.drain(..=i).collect();
            let line = line.trim_end_matches('\n').to_owned();
            if !line.is_empty() {
                lines.push((start.elapsed(), line));
            }
        }
    }
    (text, lines)
}

/// The JSON payloads of `data:` lines (not `[DONE]`).
fn data_events(lines: &[(Duration, String)]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|(_, l)| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("data events are JSON"))
        .collect()
}

fn content_of(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn openrouter_models_are_public_with_string_prices() {
    let sim = sim().await;
    let resp = client()
        .get(format!("{}/api/v1/models", sim.base_url()))
        .send()
        .await
        .expect("models");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    let data = v["data"].as_array().expect("data array");
    let ids: Vec<&str> = data.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "openai/gpt-4o-mini",
            "anthropic/claude-3.5-haiku",
            "meta-llama/llama-3.1-8b-instruct:free"
        ]
    );
    for m in data {
        for field in [
            "canonical_slug",
            "name",
            "created",
            "context_length",
            "architecture",
        ] {
            assert!(!m[field].is_null(), "{field} missing in {m}");
        }
        assert!(
            m["pricing"]["prompt"].is_string(),
            "prices are strings: {m}"
        );
        assert!(
            m["pricing"]["completion"].is_string(),
            "prices are strings: {m}"
        );
        assert!(m["top_provider"]["context_length"].is_u64());
        assert!(
            m["supported_parameters"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        );
        assert_eq!(m["architecture"]["modality"], "text->text");
    }
    // One page: OpenRouter's pagination links and count.
    assert!(v["links"]["next"].is_null(), "{v}");
    assert_eq!(v["total_count"], 3);
    assert!(data[0]["links"]["details"].is_string(), "{v}");
    assert_eq!(data[0]["pricing"]["prompt"], "0.00000015");
    assert_eq!(data[2]["pricing"]["completion"], "0");
    assert_eq!(sim.stats().models_requests, 1);
    assert_eq!(sim.stats().auth_failures, 0);
    sim.stop().await;
}

#[tokio::test]
async fn openai_models_need_a_key_and_use_the_list_format() {
    let sim = sim().await;
    let url = format!("{}/v1/models", sim.base_url());
    let refused = client().get(&url).send().await.expect("models");
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], 401);
    assert!(body["error"]["message"].is_string());
    let wrong = client()
        .get(&url)
        .bearer_auth("sk-or-v1-wrong-key-0000")
        .send()
        .await
        .expect("models");
    assert_eq!(wrong.status(), 401);
    let text = wrong.text().await.expect("body");
    assert!(
        !text.contains("sk-or-v1-wrong"),
        "the key is not echoed: {text}"
    );

    let ok = client()
        .get(&url)
        .bearer_auth(KEY)
        .send()
        .await
        .expect("models");
    assert_eq!(ok.status(), 200);
    let v: Value = ok.json().await.expect("json");
    assert_eq!(v["object"], "list");
    let first = &v["data"][0];
    assert_eq!(first["id"], "openai/gpt-4o-mini");
    assert_eq!(first["object"], "model");
    assert!(first["created"].is_u64());
    assert_eq!(first["owned_by"], "openai");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(3));
    let stats = sim.stats();
    assert_eq!((stats.models_requests, stats.auth_failures), (3, 2));
    sim.stop().await;
}

#[tokio::test]
async fn key_info_answers_on_both_paths_and_tracks_usage() {
    let sim = sim().await;
    for path in ["/api/v1/key", "/api/v1/auth/key"] {
        let url = format!("{}{path}", sim.base_url());
        let refused = client().get(&url).send().await.expect("key");
        assert_eq!(refused.status(), 401, "{path}");
        let v: Value = client()
            .get(&url)
            .bearer_auth(KEY)
            .send()
            .await
            .expect("key")
            .json()
            .await
            .expect("json");
        let d = &v["data"];
        assert!(
            d["label"].as_str().is_some_and(|l| l.starts_with("sk-")),
            "{v}"
        );
        assert!(d["limit"].is_null(), "unlimited: {v}");
        assert!(d["limit_remaining"].is_null(), "{v}");
        assert_eq!(d["usage"], json!(0), "{v}");
        assert_eq!(d["is_free_tier"], false);
        assert!(d["free_model_daily_requests"]["limit"].is_u64());
    }
    let resp = post_chat(
        &sim,
        "/api/v1/chat/completions",
        Some(KEY),
        &chat_body("openai/gpt-4o-mini", "hi"),
    )
    .await;
    let cost = resp.json::<Value>().await.expect("json")["usage"]["cost"].clone();
    assert!(cost.as_f64().is_some_and(|c| c > 0.0), "{cost}");
    let v: Value = client()
        .get(format!("{}/api/v1/key", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("key")
        .json()
        .await
        .expect("json");
    assert_eq!(v["data"]["usage"], cost, "usage adds up the costs served");
    let stats = sim.stats();
    assert_eq!((stats.key_requests, stats.auth_failures), (5, 2));
    sim.stop().await;
}

#[tokio::test]
async fn plain_chat_is_deterministic_with_usage_cost_and_generation_id() {
    let sim = sim().await;
    let body = chat_body("openai/gpt-4o-mini", "what is   the spread");
    for path in ["/api/v1/chat/completions", "/v1/chat/completions"] {
        let resp = post_chat(&sim, path, Some(KEY), &body).await;
        assert_eq!(resp.status(), 200, "{path}");
        let gen_header = resp
            .headers()
            .get("x-generation-id")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .expect("X-Generation-Id");
        let raw = resp.text().await.expect("body");
        // 7 × 0.00000015 + 7 × 0.0000006 = 0.00000525, exact digits on the wire.
        assert!(raw.contains("\"cost\":0.00000525"), "{raw}");
        let v: Value = serde_json::from_str(&raw).expect("json");
        assert_eq!(v["id"], gen_header.as_str());
        assert!(gen_header.starts_with("gen-"), "{gen_header}");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "openai/gpt-4o-mini");
        assert_eq!(v["provider"], "OpenAI");
        assert!(v["created"].is_u64());
        let choice = &v["choices"][0];
        assert_eq!(choice["message"]["role"], "assistant");
        assert_eq!(
            choice["message"]["content"],
            "sim reply to: what is the spread"
        );
        assert_eq!(choice["finish_reason"], "stop");
        // Prompt: "You are terse." (3) + "what is the spread" (4); reply: 7 words.
        let u = &v["usage"];
        assert_eq!(u["prompt_tokens"], 7);
        assert_eq!(u["completion_tokens"], 7);
        assert_eq!(u["total_tokens"], 14);
    }
    // Two different generations.
    let a: Value = post_chat(&sim, "/api/v1/chat/completions", Some(KEY), &body)
        .await
        .json()
        .await
        .expect("json");
    let b: Value = post_chat(&sim, "/api/v1/chat/completions", Some(KEY), &body)
        .await
        .json()
        .await
        .expect("json");
    assert_ne!(a["id"], b["id"]);
    assert_eq!(a["choices"], b["choices"], "same question, same answer");

    // max_tokens truncates by words and says so.
    let mut short = body.clone();
    short["max_tokens"] = json!(3);
    let v: Value = post_chat(&sim, "/api/v1/chat/completions", Some(KEY), &short)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["choices"][0]["message"]["content"], "sim reply to:");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 3);

    // A free model costs nothing; the OpenAI path also takes the name without its vendor.
    let free: Value = post_chat(
        &sim,
        "/api/v1/chat/completions",
        Some(KEY),
        &chat_body("meta-llama/llama-3.1-8b-instruct:free", "x"),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(free["usage"]["cost"], json!(0));
    let short_name = post_chat(
        &sim,
        "/v1/chat/completions",
        Some(KEY),
        &chat_body("gpt-4o-mini", "x"),
    )
    .await;
    assert_eq!(short_name.status(), 200);
    let v: Value = short_name.json().await.expect("json");
    assert_eq!(v["model"], "openai/gpt-4o-mini");
    let not_on_openrouter = post_chat(
        &sim,
        "/api/v1/chat/completions",
        Some(KEY),
        &chat_body("gpt-4o-mini", "x"),
    )
    .await;
    assert_eq!(not_on_openrouter.status(), 400);

    let stats = sim.stats();
    assert_eq!(stats.chat_requests, 8);
    assert_eq!(stats.stream_requests, 0);
    sim.stop().await;
}

#[tokio::test]
async fn chat_without_a_valid_key_is_refused() {
    let sim = sim().await;
    let body = chat_body("openai/gpt-4o-mini", "hi");
    for (path, key) in [
        ("/api/v1/chat/completions", None),
        ("/v1/chat/completions", Some("sk-or-v1-nope")),
    ] {
        let resp = post_chat(&sim, path, key, &body).await;
        assert_eq!(resp.status(), 401, "{path}");
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["error"]["code"], 401);
    }
    let basic = client()
        .post(format!("{}/api/v1/chat/completions", sim.base_url()))
        .header("authorization", format!("Basic {KEY}"))
        .json(&body)
        .send()
        .await
        .expect("chat");
    assert_eq!(basic.status(), 401);
    assert_eq!(sim.stats().auth_failures, 3);
    sim.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_400s_naming_the_problem() {
    let sim = sim().await;
    let url = format!("{}/api/v1/chat/completions", sim.base_url());
    let raw = |body: Vec<u8>| {
        client()
            .post(&url)
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "invalid JSON body"),
        (b"".to_vec(), "invalid JSON body"),
        (vec![0xff, 0xfe, 0x00, 0x01], "invalid JSON body"),
        (b"[1,2]".to_vec(), "JSON object"),
        (br#"{"messages":[{"role":"user","content":"x"}]}"#.to_vec(), "`model`"),
        (br#"{"model":"openai/gpt-4o-mini"}"#.to_vec(), "`messages`"),
        (br#"{"model":"openai/gpt-4o-mini","messages":[]}"#.to_vec(), "`messages` must not be empty"),
        (br#"{"model":42,"messages":[{"role":"user","content":"x"}]}"#.to_vec(), "`model` must be a string"),
        (br#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":{"a":1}}]}"#.to_vec(), "`messages[0].content`"),
        (br#"{"model":"openai/gpt-4o-mini","messages":[{"content":"x"}]}"#.to_vec(), "`messages[0].role`"),
        (br#"{"model":"openai/gpt-4o-mini","max_tokens":"ten","messages":[{"role":"user","content":"x"}]}"#.to_vec(), "`max_tokens`"),
        (br#"{"model":"openai/gpt-4o-mini","max_tokens":0,"messages":[{"role":"user","content":"x"}]}"#.to_vec(), "`max_tokens`"),
        (br#"{"model":"openai/gpt-4o-mini","stream":1,"messages":[{"role":"user","content":"x"}]}"#.to_vec(), "`stream`"),
        (br#"{"model":"openai/gpt-4o-mini","temperature":"hot","messages":[{"role":"user","content":"x"}]}"#.to_vec(), "`temperature`"),
        (br#"{"model":"nobody/nothing","messages":[{"role":"user","content":"x"}]}"#.to_vec(), "nobody/nothing is not a valid model ID"),
    ];
    for (body, needle) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let resp = raw(body).await.expect("chat");
        assert_eq!(resp.status(), 400, "{shown}");
        let v: Value = resp.json().await.expect("error JSON");
        assert_eq!(v["error"]["code"], 400, "{shown}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{shown}: {msg}");
    }
    // A prompt over the model's context window.
    let cfg = LlmSimConfig {
        models: vec![SimModel {
            id: "tiny/model".into(),
            name: "Tiny".into(),
            context_length: 3,
            prompt_price: "0.001".into(),
            completion_price: "0.002".into(),
        }],
        ..LlmSimConfig::default()
    };
    let tiny = LlmSim::start(cfg).await.expect("starts");
    let resp = post_chat(
        &tiny,
        "/api/v1/chat/completions",
        Some(KEY),
        &chat_body("tiny/model", "one two three four"),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("maximum context length is 3")),
        "{v}"
    );
    tiny.stop().await;
    // Still serving after all of that.
    let ok = post_chat(
        &sim,
        "/api/v1/chat/completions",
        Some(KEY),
        &chat_body("openai/gpt-4o-mini", "still there?"),
    )
    .await;
    assert_eq!(ok.status(), 200);
    let unknown_route = client()
        .get(format!("{}/api/v1/nothing", sim.base_url()))
        .send()
        .await
        .expect("404");
    assert_eq!(unknown_route.status(), 404);
    sim.stop().await;
}

#[tokio::test]
async fn a_stream_sends_a_comment_deltas_finish_usage_and_done() {
    let sim = sim().await;
    let mut body = chat_body("anthropic/claude-3.5-haiku", "list the open orders please");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    for path in ["/api/v1/chat/completions", "/v1/chat/completions"] {
        let resp = post_chat(&sim, path, Some(KEY), &body).await;
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        let gen_id = resp.headers()["x-generation-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let (text, lines) = read_sse(resp).await;
        assert_eq!(lines[0].1, ": OPENROUTER PROCESSING", "{text}");
        assert_eq!(
            lines.last().map(|l| l.1.as_str()),
            Some("data: [DONE]"),
            "{text}"
        );
        let events = data_events(&lines);
        assert!(
            events
                .iter()
                .all(|e| e["object"] == "chat.completion.chunk" && e["id"] == gen_id.as_str()),
            "{text}"
        );
        assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
        assert!(
            events[1..]
                .iter()
                .all(|e| e["choices"][0]["delta"]["role"].is_null())
        );
        let deltas = events
            .iter()
            .filter(|e| e["choices"][0]["delta"]["content"].is_string())
            .count();
        assert!((2..=4).contains(&deltas), "a few deltas: {text}");
        assert_eq!(
            content_of(&events),
            "sim reply to: list the open orders please"
        );
        let finish = &events[events.len() - 2];
        assert_eq!(finish["choices"][0]["finish_reason"], "stop", "{text}");
        let usage = events.last().expect("usage chunk");
        assert_eq!(usage["choices"], json!([]), "{text}");
        assert_eq!(usage["usage"]["prompt_tokens"], 8);
        assert_eq!(usage["usage"]["completion_tokens"], 8);
        assert_eq!(usage["usage"]["total_tokens"], 16);
        // 8 × 0.0000008 + 8 × 0.000004 = 0.0000384, exact digits on the wire.
        assert!(text.contains("\"cost\":0.0000384"), "{text}");
    }
    // max_tokens ends a stream with "length".
    body["max_tokens"] = json!(2);
    let (_, lines) =
        read_sse(post_chat(&sim, "/api/v1/chat/completions", Some(KEY), &body).await).await;
    let events = data_events(&lines);
    assert_eq!(content_of(&events), "sim reply");
    assert_eq!(
        events[events.len() - 2]["choices"][0]["finish_reason"],
        "length"
    );
    let stats = sim.stats();
    assert_eq!((stats.chat_requests, stats.stream_requests), (3, 3));
    sim.stop().await;
}

#[tokio::test]
async fn status_faults_answer_with_their_headers_then_stop() {
    let sim = sim().await;
    let body = chat_body("openai/gpt-4o-mini", "hi");
    let path = "/api/v1/chat/completions";
    sim.inject(Fault::Status {
        code: 429,
        retry_after_s: Some(7),
        count: 2,
    });
    for _ in 0..2 {
        let resp = post_chat(&sim, path, Some(KEY), &body).await;
        assert_eq!(resp.status(), 429);
        let h = resp.headers();
        assert_eq!(h["retry-after"], "7");
        assert_eq!(h["x-ratelimit-remaining"], "0");
        assert!(
            h["x-ratelimit-limit"]
                .to_str()
                .expect("ascii")
                .parse::<u64>()
                .is_ok()
        );
        let reset: u64 = h["x-ratelimit-reset"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("ms");
        assert!(reset > 1_700_000_000_000, "a Unix time in ms: {reset}");
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["error"]["code"], 429);
        assert_eq!(v["error"]["metadata"]["error_type"], "rate_limit_exceeded");
    }
    assert_eq!(
        post_chat(&sim, path, Some(KEY), &body).await.status(),
        200,
        "count used up"
    );

    sim.inject(Fault::Status {
        code: 402,
        retry_after_s: None,
        count: 1,
    });
    sim.inject(Fault::Status {
        code: 503,
        retry_after_s: None,
        count: 1,
    });
    let resp = post_chat(&sim, path, Some(KEY), &body).await;
    assert_eq!(resp.status(), 402);
    assert!(resp.headers().get("retry-after").is_none());
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["code"], 402);
    assert_eq!(v["error"]["metadata"]["limit_source"], "openrouter_credits");
    // A status fault answers a streaming request too, before any stream starts.
    let mut streaming = body.clone();
    streaming["stream"] = json!(true);
    let resp = post_chat(&sim, "/v1/chat/completions", Some(KEY), &streaming).await;
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["code"], 503);

    sim.inject(Fault::Status {
        code: 500,
        retry_after_s: None,
        count: 5,
    });
    assert_eq!(post_chat(&sim, path, Some(KEY), &body).await.status(), 500);
    sim.clear_faults();
    assert_eq!(post_chat(&sim, path, Some(KEY), &body).await.status(), 200);
    let stats = sim.stats();
    assert_eq!((stats.faults_served, stats.chat_requests), (5, 7));
    sim.stop().await;
}

#[tokio::test]
async fn a_mid_stream_error_is_an_event_after_some_chunks() {
    let sim = sim().await;
    sim.inject(Fault::MidStreamError {
        code: 502,
        after_chunks: 2,
        count: 1,
    });
    let mut body = chat_body("openai/gpt-4o-mini", "one two three four five six");
    // A plain request passes over a streaming-only fault.
    let plain = post_chat(&sim, "/api/v1/chat/completions", Some(KEY), &body).await;
    assert_eq!(plain.status(), 200);
    body["stream"] = json!(true);
    let resp = post_chat(&sim, "/api/v1/chat/completions", Some(KEY), &body).await;
    assert_eq!(resp.status(), 200, "the stream had started");
    let (text, lines) = read_sse(resp).await;
    assert!(!text.contains("[DONE]"), "{text}");
    let events = data_events(&lines);
    assert_eq!(
        events.len(),
        3,
        "two content chunks, then the error: {text}"
    );
    assert!(events[..2].iter().all(|e| {
        e["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    }));
    let err = &events[2];
    assert_eq!(err["error"]["code"], 502, "{text}");
    assert!(err["error"]["message"].is_string());
    assert_eq!(err["choices"][0]["finish_reason"], "error");
    // The next stream is whole again.
    let (text, _) =
        read_sse(post_chat(&sim, "/api/v1/chat/completions", Some(KEY), &body).await).await;
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(sim.stats().faults_served, 1);
    sim.stop().await;
}

#[tokio::test]
async fn a_slow_stream_keeps_sending_keepalive_comments() {
    let sim = LlmSim::start(LlmSimConfig {
        keepalive_every: Duration::from_millis(40),
        ..LlmSimConfig::default()
    })
    .await
    .expect("starts");
    let delay = Duration::from_millis(250);
    sim.inject(Fault::SlowStream { delay, count: 1 });
    // Eight words: four chunks of two.
    let mut body = chat_body("openai/gpt-4o-mini", "a b c d e");
    body["stream"] = json!(true);
    let started = Instant::now();
    let resp = post_chat(&sim, "/api/v1/chat/completions", Some(KEY), &body).await;
    assert_eq!(resp.status(), 200);
    let (text, lines) = read_sse(resp).await;
    let elapsed = started.elapsed();
    let events = data_events(&lines);
    let chunks = events
        .iter()
        .filter(|e| e["choices"][0]["delta"]["content"].is_string())
        .count();
    assert_eq!(chunks, 4, "{text}");
    assert!(elapsed >= delay * 4, "{elapsed:?}");
    let keepalives: Vec<Duration> = lines
        .iter()
        .filter(|(_, l)| l.as_str() == ": OPENROUTER PROCESSING")
        .map(|(t, _)| *t)
        .collect();
    // About 250/40 = 6 comments per wait, four waits, plus the first comment.
    assert!(
        keepalives.len() >= 4 * 5,
        "{} comments: {text}",
        keepalives.len()
    );
    // The stream never goes quiet for a whole wait: the median gap between lines is near
    // the keep-alive interval (a median, so one scheduling stall on a loaded machine
    // cannot fail it), far below the 250 ms wait.
    let times: Vec<Duration> = lines.iter().map(|(t, _)| *t).collect();
    let mut gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort();
    let median = gaps[gaps.len() / 2];
    assert!(median < Duration::from_millis(150), "median gap {median:?}");
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert_eq!(content_of(&events), "sim reply to: a b c d e");
    // The fault is used up: the next stream has no wait, so only the opening comment.
    let (text, lines) =
        read_sse(post_chat(&sim, "/api/v1/chat/completions", Some(KEY), &body).await).await;
    let comments = lines.iter().filter(|(_, l)| l.starts_with(':')).count();
    assert_eq!(comments, 1, "{text}");
    sim.stop().await;
}

#[tokio::test]
async fn a_hung_request_never_answers_and_stop_ends_it() {
    let sim = sim().await;
    sim.inject(Fault::Hang { count: 2 });
    let body = chat_body("openai/gpt-4o-mini", "hello?");
    let url = format!("{}/api/v1/chat/completions", sim.base_url());
    let short = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(400))
        .build()
        .expect("client");
    let err = short
        .post(&url)
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .expect_err("no answer");
    assert!(err.is_timeout(), "{err}");
    // The second hangs until the simulator stops, which aborts the connection.
    let pending = tokio::spawn({
        let (url, body) = (url.clone(), body.clone());
        async move {
            client()
                .post(&url)
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!pending.is_finished());
    let stats = sim.stats();
    assert_eq!((stats.chat_requests, stats.faults_served), (2, 2));
    let addr = sim.addr();
    let started = Instant::now();
    sim.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stop does not wait for hung requests: {:?}",
        started.elapsed()
    );
    let outcome = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the hung request ends when the simulator stops")
        .expect("task");
    assert!(
        outcome.is_err(),
        "the connection was aborted, not answered: {outcome:?}"
    );
    // The port is free.
    let rebound = tokio::net::TcpListener::bind(addr).await;
    assert!(rebound.is_ok(), "{rebound:?}");
}

#[tokio::test]
async fn stop_aborts_an_open_stream_and_the_sim_restarts_on_the_same_port() {
    let first = sim().await;
    let addr = first.addr();
    first.inject(Fault::SlowStream {
        delay: Duration::from_secs(30),
        count: 1,
    });
    let mut body = chat_body("openai/gpt-4o-mini", "slow");
    body["stream"] = json!(true);
    let resp = post_chat(&first, "/api/v1/chat/completions", Some(KEY), &body).await;
    assert_eq!(resp.status(), 200);
    let reader = tokio::spawn(async move {
        let mut resp = resp;
        let mut got = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => got.extend_from_slice(&c),
                Ok(None) => return Ok(got),
                Err(e) => return Err(e),
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    first.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let ended = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("the stream ends")
        .expect("task");
    if let Ok(bytes) = &ended {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains("[DONE]"), "cut short, not finished: {text}");
    }

    let second = LlmSim::start(LlmSimConfig {
        addr,
        ..LlmSimConfig::default()
    })
    .await
    .expect("restarts on the same port");
    assert_eq!(second.addr(), addr);
    assert_eq!(second.base_url(), format!("http://{addr}"));
    let resp = post_chat(
        &second,
        "/api/v1/chat/completions",
        Some(KEY),
        &chat_body("openai/gpt-4o-mini", "back"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        second.stats().chat_requests,
        1,
        "a fresh simulator, fresh counters"
    );
    second.stop().await;
}

#[tokio::test]
async fn the_admin_api_queues_faults_and_reports_stats() {
    let sim = sim().await;
    let admin = |path: &str| format!("{}/_sim/{path}", sim.base_url());
    let queued = client()
        .post(admin("faults"))
        .json(&json!({"kind": "status", "code": 429, "retry_after_s": 3}))
        .send()
        .await
        .expect("inject");
    assert_eq!(queued.status(), 200);
    let resp = post_chat(
        &sim,
        "/v1/chat/completions",
        Some(KEY),
        &chat_body("openai/gpt-4o-mini", "x"),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");

    for (bad, needle) in [
        (
            json!({"kind": "status", "code": 200}),
            "not an HTTP error status",
        ),
        (json!({"kind": "explode"}), "unknown variant"),
        (
            json!({"kind": "hang", "count": 1, "extra": true}),
            "unknown field",
        ),
        (json!({"kind": "slow_stream"}), "delay_ms"),
    ] {
        let resp = client()
            .post(admin("faults"))
            .json(&bad)
            .send()
            .await
            .expect("inject");
        assert_eq!(resp.status(), 400, "{bad}");
        let v: Value = resp.json().await.expect("json");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{bad}: {msg}");
    }

    for fault in [
        json!({"kind": "mid_stream_error", "code": 500, "after_chunks": 1}),
        json!({"kind": "slow_stream", "delay_ms": 10, "count": 2}),
        json!({"kind": "hang"}),
    ] {
        let resp = client()
            .post(admin("faults"))
            .json(&fault)
            .send()
            .await
            .expect("inject");
        assert_eq!(resp.status(), 200, "{fault}");
    }
    let mut streaming = chat_body("openai/gpt-4o-mini", "x y z");
    streaming["stream"] = json!(true);
    let (text, _) =
        read_sse(post_chat(&sim, "/api/v1/chat/completions", Some(KEY), &streaming).await).await;
    assert!(text.contains("\"finish_reason\":\"error\""), "{text}");
    let cleared = client()
        .delete(admin("faults"))
        .send()
        .await
        .expect("clear");
    assert_eq!(cleared.status(), 200);
    let (text, _) =
        read_sse(post_chat(&sim, "/api/v1/chat/completions", Some(KEY), &streaming).await).await;
    assert!(text.ends_with("data: [DONE]\n\n"), "cleared: {text}");

    let over_http: Value = client()
        .get(admin("stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    let expected = LlmSimStats {
        models_requests: 0,
        key_requests: 0,
        chat_requests: 3,
        stream_requests: 2,
        auth_failures: 0,
        faults_served: 2,
    };
    assert_eq!(sim.stats(), expected);
    assert_eq!(over_http, serde_json::to_value(&expected).expect("json"));
    sim.stop().await;
}

#[tokio::test]
async fn an_invalid_config_is_refused_at_start() {
    let mut cfg = LlmSimConfig::default();
    cfg.models[0].prompt_price = "free".into();
    cfg.models.push(cfg.models[1].clone());
    let err = LlmSim::start(cfg).await.expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let msg = err.to_string();
    assert!(msg.contains("prompt price \"free\""), "{msg}");
    assert!(
        msg.contains("anthropic/claude-3.5-haiku is listed twice"),
        "{msg}"
    );
    let err = LlmSim::start(LlmSimConfig {
        api_keys: vec![],
        ..LlmSimConfig::default()
    })
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("api_keys is empty"), "{err}");
}

#[tokio::test]
async fn debug_output_hides_the_keys() {
    let sim = LlmSim::start(LlmSimConfig {
        api_keys: vec!["sk-or-v1-very-secret-key".into()],
        ..LlmSimConfig::default()
    })
    .await
    .expect("starts");
    let shown = format!("{sim:?}");
    assert!(!shown.contains("very-secret"), "{shown}");
    assert!(shown.contains("LlmSim"), "{shown}");
    sim.stop().await;
}

#[test]
fn config_debug_hides_the_keys() {
    let cfg = LlmSimConfig {
        api_keys: vec!["sk-or-v1-very-secret-key".into()],
        ..LlmSimConfig::default()
    };
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("very-secret"), "{shown}");
    assert!(shown.contains("1 redacted"), "{shown}");
}

#[tokio::test]
async fn every_truncation_of_a_body_and_deep_nesting_are_clean_400s() {
    let sim = sim().await;
    let url = format!("{}/api/v1/chat/completions", sim.base_url());
    let full = serde_json::to_vec(&json!({
        "model": "openai/gpt-4o-mini", "stream": false, "max_tokens": 5,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "héllo ✓"}]}],
    }))
    .expect("json");
    let c = client();
    for cut in 0..full.len() {
        let resp = c
            .post(&url)
            .bearer_auth(KEY)
            .header("content-type", "application/json")
            .body(full[..cut].to_vec())
            .send()
            .await
            .expect("chat");
        assert_eq!(resp.status(), 400, "cut at {cut}");
        let v: Value = resp.json().await.expect("error JSON");
        assert_eq!(v["error"]["code"], 400, "cut at {cut}");
    }
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let resp = c
        .post(&url)
        .bearer_auth(KEY)
        .body(deep)
        .send()
        .await
        .expect("chat");
    assert_eq!(resp.status(), 400);
    let whole = c
        .post(&url)
        .bearer_auth(KEY)
        .body(full)
        .send()
        .await
        .expect("chat");
    assert_eq!(whole.status(), 200, "and the whole body is served");
    let v: Value = whole.json().await.expect("json");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "sim reply to: héllo ✓"
    );
    sim.stop().await;
}

#[tokio::test]
async fn refused_requests_take_no_fault() {
    let sim = sim().await;
    sim.inject(Fault::Status {
        code: 429,
        retry_after_s: None,
        count: 1,
    });
    let body = chat_body("openai/gpt-4o-mini", "x");
    let path = "/api/v1/chat/completions";
    assert_eq!(
        post_chat(&sim, path, Some("sk-or-v1-bad"), &body)
            .await
            .status(),
        401
    );
    let unknown = chat_body("nobody/nothing", "x");
    assert_eq!(
        post_chat(&sim, path, Some(KEY), &unknown).await.status(),
        400
    );
    assert_eq!(sim.stats().faults_served, 0);
    assert_eq!(post_chat(&sim, path, Some(KEY), &body).await.status(), 429);
    assert_eq!(post_chat(&sim, path, Some(KEY), &body).await.status(), 200);
    assert_eq!(sim.stats().faults_served, 1);
    sim.stop().await;
}

#[tokio::test]
async fn a_generation_can_be_looked_up_with_its_exact_cost() {
    let sim = sim().await;
    let resp = post_chat(
        &sim,
        "/api/v1/chat/completions",
        Some(KEY),
        &chat_body("openai/gpt-4o-mini", "what is   the spread"),
    )
    .await;
    let id = resp.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut streaming = chat_body("anthropic/claude-3.5-haiku", "stream");
    streaming["stream"] = json!(true);
    let resp = post_chat(&sim, "/api/v1/chat/completions", Some(KEY), &streaming).await;
    let stream_id = resp.headers()["x-generation-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let _ = read_sse(resp).await;

    let url = format!("{}/api/v1/generation", sim.base_url());
    let get = |id: String| {
        client()
            .get(&url)
            .bearer_auth(KEY)
            .query(&[("id", id)])
            .send()
    };
    let raw = get(id.clone())
        .await
        .expect("generation")
        .text()
        .await
        .expect("body");
    // 7 × 0.00000015 + 7 × 0.0000006, the same exact digits as the answer's usage.cost.
    assert!(raw.contains("\"total_cost\":0.00000525"), "{raw}");
    let v: Value = serde_json::from_str(&raw).expect("json");
    let d = &v["data"];
    assert_eq!(d["id"], id.as_str());
    assert_eq!(d["model"], "openai/gpt-4o-mini");
    assert_eq!(d["provider_name"], "OpenAI");
    assert_eq!(
        (d["tokens_prompt"].as_u64(), d["tokens_completion"].as_u64()),
        (Some(7), Some(7))
    );
    assert_eq!(d["streamed"], false);
    assert_eq!(d["finish_reason"], "stop");
    assert!(
        d["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
        "{d}"
    );
    let s: Value = get(stream_id)
        .await
        .expect("generation")
        .json()
        .await
        .expect("json");
    assert_eq!(s["data"]["streamed"], true, "{s}");

    let missing = get("gen-0-00000000".into()).await.expect("generation");
    assert_eq!(missing.status(), 404);
    let no_id = client()
        .get(&url)
        .bearer_auth(KEY)
        .send()
        .await
        .expect("generation");
    assert_eq!(no_id.status(), 400);
    let v: Value = no_id.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`id`")),
        "{v}"
    );
    let no_key = client()
        .get(&url)
        .query(&[("id", id)])
        .send()
        .await
        .expect("generation");
    assert_eq!(no_key.status(), 401);
    // The key's usage is the exact sum too: the stream was 4 prompt and 4 completion
    let raw = client()
        .get(format!("{}/api/v1/key", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("key")
        .text()
        .await
        .expect("body");
    // words on haiku, 4 × 0.0000008 + 4 × 0.000004 = 0.0000192; plus 0.00000525.
    assert!(raw.contains("\"usage\":0.00002445"), "{raw}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_plain_and_streaming_chats_each_get_their_own_answer() {
    let sim = sim().await;
    let base = sim.base_url();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..24_u32 {
        let url = format!("{base}/api/v1/chat/completions");
        set.spawn(async move {
            let stream = i % 2 == 0;
            let mut body = chat_body("openai/gpt-4o-mini", &format!("question {i}"));
            body["stream"] = json!(stream);
            let resp = client()
                .post(&url)
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .expect("chat");
            assert_eq!(resp.status(), 200);
            let content = if stream {
                content_of(&data_events(&read_sse(resp).await.1))
            } else {
                let v: Value = resp.json().await.expect("json");
                v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            };
            assert_eq!(content, format!("sim reply to: question {i}"));
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("request task");
    }
    let stats = sim.stats();
    assert_eq!((stats.chat_requests, stats.stream_requests), (24, 12));
    sim.stop().await;
}
