//! The one error type of the inference crate.
//!
//! Callers (the gRPC service, the bus consumer) need to tell four situations apart
//! and map each to a different answer: the *request* was wrong (`InvalidInput`, a
//! client error that retrying will not fix), a *model file* is unusable
//! (`ModelLoad`, an operator problem that names the file), the *machine* cannot
//! do the work (`Device`, `Unsupported`, `Compute`), or the batcher is *busy or
//! stopping* (`Overloaded`, `Closed`). Candle's own errors are kept as the source
//! so the chain reaches the logs, behind an `Arc` so that one failed batch can
//! answer every request in it with the same error.

use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InferenceError {
    /// The caller's input is unusable: wrong number of features, a NaN or infinite
    /// value, an empty or oversized request. The message says which row and feature.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A model directory could not be loaded; `path` is the offending file
    /// (`meta.json` or `model.safetensors`) and `reason` says exactly what is wrong.
    #[error("cannot load model file {}: {reason}", path.display())]
    ModelLoad {
        /// The file that is missing, unreadable or inconsistent.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The accelerator (or the CPU thread pool) could not be set up or used.
    #[error("device error: {0}")]
    Device(String),

    /// The requested dtype cannot run on this device (for example bf16 matmul on the
    /// CPU backend of candle 0.11).
    #[error("{dtype} is not supported on {device}: {reason}")]
    Unsupported {
        /// The dtype asked for, e.g. `bf16`.
        dtype: String,
        /// The device kind, e.g. `cpu`.
        device: String,
        /// Candle's explanation.
        reason: String,
    },

    /// A tensor operation failed while running a model.
    #[error("model computation failed while {context}: {source}")]
    Compute {
        /// What was being done (e.g. "running the forward pass").
        context: String,
        /// Candle's error.
        #[source]
        source: Arc<candle_core::Error>,
    },

    /// Training could not produce a model (bad config, degenerate data, I/O).
    #[error("training failed: {0}")]
    Train(String),

    /// Writing or reading model files failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: Arc<std::io::Error>,
    },

    /// The batcher queue is full; the request was shed without being run.
    #[error("inference queue is full; request shed")]
    Overloaded,

    /// The batcher has shut down (or is shutting down) and takes no more requests.
    #[error("inference batcher is closed")]
    Closed,
}

impl InferenceError {
    /// Whether the same request may succeed if sent again later.
    ///
    /// Only load shedding (`Overloaded`) is transient by nature. Invalid input and
    /// broken model files stay broken; `Closed` means this process is stopping, so a
    /// caller should go elsewhere rather than retry here; device and compute
    /// failures are treated as persistent so that callers do not hammer a sick GPU.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Overloaded)
    }

    /// Wraps a candle error with what was being done.
    pub(crate) fn compute(context: impl Into<String>, source: candle_core::Error) -> Self {
        Self::Compute {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// Wraps an I/O error with the path involved.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// A `ModelLoad` error for `path`.
    pub(crate) fn model_load(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::ModelLoad {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_overload_is_retryable() {
        assert!(InferenceError::Overloaded.is_retryable());
        assert!(!InferenceError::Closed.is_retryable());
        assert!(!InferenceError::InvalidInput("x".into()).is_retryable());
        assert!(!InferenceError::model_load("/m/model.safetensors", "truncated").is_retryable());
    }

    #[test]
    fn model_load_message_names_the_file() {
        let e = InferenceError::model_load("/m/2/model.safetensors", "file is truncated");
        let text = e.to_string();
        assert!(text.contains("/m/2/model.safetensors"), "{text}");
        assert!(text.contains("truncated"), "{text}");
    }
}
