//! Why the gateway refused an operation or could not start.

use gekko_venue::VenueError;

use crate::checks::CheckError;

/// Why the gateway refused an operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    /// A pre-trade check failed; nothing was sent.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// The venue refused or could not be reached.
    #[error(transparent)]
    Venue(#[from] VenueError),
    /// The order could not be persisted, so it was not sent.
    #[error("order not sent: cannot persist it on the bus: {0}")]
    Persist(String),
    /// Unknown order.
    #[error("unknown order {0}")]
    UnknownOrder(String),
    /// Bad request.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A bus stream could not be read.
    #[error("cannot read from the bus: {0}")]
    Bus(String),
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The venue refused the credentials.
    #[error("credentials rejected: {0}")]
    Credentials(VenueError),
    /// None of the configured instruments exists at the venue.
    #[error("none of the configured instruments is offered by the venue: {0}")]
    UnknownInstrument(String),
    /// Strict reconciliation found differences.
    #[error("reconciliation mismatch (strict mode): {0}")]
    Mismatch(String),
    /// The venue stayed unreachable.
    #[error("venue unavailable during start-up: {0}")]
    Venue(VenueError),
    /// The order stream could not be read.
    #[error("cannot replay the order stream: {0}")]
    Bus(String),
}
