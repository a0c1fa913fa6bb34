//! The admin API under `/_sim`, so a simulator in another process (`sim-llm`) can be
//! driven by tests and by hand: `POST /_sim/faults` queues one fault, `DELETE
//! /_sim/faults` clears the queue, `GET /_sim/stats` reads the counters. The JSON shapes
//! are in the module docs of [`crate::llm`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::Fault;
use super::error::ApiError;
use super::state::LlmState;

/// The JSON form of a [`Fault`].
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FaultSpec {
    Status {
        code: u16,
        #[serde(default)]
        retry_after_s: Option<u32>,
        #[serde(default = "one")]
        count: u32,
    },
    MidStreamError {
        code: u16,
        #[serde(default)]
        after_chunks: u32,
        #[serde(default = "one")]
        count: u32,
    },
    SlowStream {
        delay_ms: u64,
        #[serde(default = "one")]
        count: u32,
    },
    Hang {
        #[serde(default = "one")]
        count: u32,
    },
}

const fn one() -> u32 {
    1
}

impl FaultSpec {
    fn into_fault(self) -> Result<Fault, String> {
        let check = |code: u16| {
            if (400..=599).contains(&code) {
                Ok(code)
            } else {
                Err(format!("code {code} is not an HTTP error status (400-599)"))
            }
        };
        Ok(match self {
            Self::Status {
                code,
                retry_after_s,
                count,
            } => Fault::Status {
                code: check(code)?,
                retry_after_s,
                count,
            },
            Self::MidStreamError {
                code,
                after_chunks,
                count,
            } => Fault::MidStreamError {
                code: check(code)?,
                after_chunks,
                count,
            },
            Self::SlowStream { delay_ms, count } => Fault::SlowStream {
                delay: Duration::from_millis(delay_ms),
                count,
            },
            Self::Hang { count } => Fault::Hang { count },
        })
    }
}

pub(crate) fn router() -> Router<Arc<LlmState>> {
    Router::new()
        .route("/_sim/faults", post(inject).delete(clear))
        .route("/_sim/stats", get(stats))
}

async fn inject(State(state): State<Arc<LlmState>>, body: Bytes) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return ApiError::bad_request(format!("invalid fault: {e}")).into_response(),
    };
    match spec.into_fault() {
        Ok(fault) => {
            state.faults.push(fault);
            (StatusCode::OK, axum::Json(json!({"queued": true}))).into_response()
        }
        Err(p) => ApiError::bad_request(format!("invalid fault: {p}")).into_response(),
    }
}

async fn clear(State(state): State<Arc<LlmState>>) -> Response {
    state.faults.clear();
    axum::Json(json!({"cleared": true})).into_response()
}

async fn stats(State(state): State<Arc<LlmState>>) -> Response {
    axum::Json(state.stats.snapshot()).into_response()
}
