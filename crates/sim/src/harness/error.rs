//! Failures of a simulator itself, as opposed to the error answers a venue sends.
//!
//! A venue error answer is normal operation (a client sent a bad request) and is each
//! protocol's own type; a [`SimError`] means the simulator cannot run (bad config, a port
//! that will not bind). It is the same for every simulator, and crosses the crate boundary
//! as `std::io::Error`.

/// A failure of the simulator itself.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration is unusable; the message lists every problem, one per line.
    #[error("invalid simulator config:\n{0}")]
    InvalidConfig(String),
    /// A listener could not be bound or inspected.
    #[error("simulator i/o error on {what}: {source}")]
    Io {
        /// What was being done (e.g. "binding the REST listener on 127.0.0.1:9100").
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl From<SimError> for std::io::Error {
    fn from(e: SimError) -> Self {
        match e {
            SimError::InvalidConfig(_) => std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
            SimError::Io { ref source, .. } => std::io::Error::new(source.kind(), e),
        }
    }
}
