//! Bus errors.

/// What went wrong on the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The backend could not be reached within the deadline. Retrying later may succeed.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// Cluster mode: a durable append reached its master but fewer replicas than
    /// required acknowledged it (`WAIT`) in time, so it is not known to survive a
    /// failover. Not retried inside the bus: a retry appends again (payloads carry ids
    /// for de-duplication).
    #[error("append not replicated: {0}")]
    NotReplicated(String),
    /// The backend answered with an error.
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    /// A payload could not be decoded into the topic's type. Keeps the raw payload.
    #[error("cannot decode entry {id} on {stream}: {source}")]
    Decode {
        /// The stream.
        stream: String,
        /// The entry id.
        id: String,
        /// The raw bytes that failed to decode.
        payload: bytes::Bytes,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A value could not be encoded.
    #[error("cannot encode payload: {0}")]
    Encode(#[source] serde_json::Error),
    /// The caller asked for something the bus does not support (e.g. a missing group).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// An entry read from Redis had an unexpected shape.
    #[error("malformed entry {id} on {stream}: {reason}")]
    Malformed {
        /// The stream.
        stream: String,
        /// The entry id.
        id: String,
        /// What was wrong.
        reason: String,
    },
}

impl BusError {
    /// Whether retrying the same call later may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            BusError::Unavailable(_) | BusError::NotReplicated(_) => true,
            BusError::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                    || matches!(
                        e.code(),
                        Some("LOADING" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN")
                    )
            }
            _ => false,
        }
    }
}
