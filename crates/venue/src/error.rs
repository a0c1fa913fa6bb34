//! Why a venue call failed, in terms the engine can act on.

use std::time::Duration;

/// Why a venue refused a request, independent of the venue's own code.
///
/// The venue's code travels beside it (as a string: Binance `-2010`, Coinbase
/// `INSUFFICIENT_FUND`, OANDA `MARKET_HALTED`), so nothing is lost, but the engine, the
/// metrics and the gRPC mapping only ever look at this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Not enough balance or margin.
    InsufficientFunds,
    /// A price, quantity or notional filter (tick, lot, minimum) refused it.
    Filter,
    /// The client order id was already used.
    Duplicate,
    /// The venue does not know the order (cancel or query of an unknown id).
    UnknownOrder,
    /// The venue refused because of request or order rate limits.
    RateLimited,
    /// Anything else (market closed, invalid parameter, clock outside the window, ...).
    Other,
}

impl RejectReason {
    /// A stable lower-case label for metrics and logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::InsufficientFunds => "insufficient_funds",
            RejectReason::Filter => "filter",
            RejectReason::Duplicate => "duplicate",
            RejectReason::UnknownOrder => "unknown_order",
            RejectReason::RateLimited => "rate_limited",
            RejectReason::Other => "other",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a venue call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VenueError {
    /// The venue refused the request with its own error code. Definitive.
    #[error("venue rejected the request: {code} {message}")]
    Rejected {
        /// The venue's error code, as the venue spells it (`-2010`, `INSUFFICIENT_FUND`).
        code: String,
        /// The neutral reason.
        reason: RejectReason,
        /// The venue's message.
        message: String,
    },
    /// Rate limited or banned; nothing was sent. Retry after the given time.
    #[error("rate limited by the venue; retry in {retry_after:?}")]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// The circuit for this endpoint family is open; nothing was sent.
    #[error("circuit open for {family}; retry in {retry_after:?}")]
    CircuitOpen {
        /// Endpoint family.
        family: String,
        /// Until it half-opens.
        retry_after: Duration,
    },
    /// Credentials are missing or refused.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// Transport failure, timeout, or 5xx. For non-idempotent calls the outcome is unknown.
    #[error("transport error: {0}")]
    Transport(String),
    /// The venue answered with something we could not parse. Keeps the payload.
    #[error("malformed venue payload: {reason}; payload: {payload}")]
    Malformed {
        /// What was wrong.
        reason: String,
        /// The offending payload (truncated).
        payload: String,
    },
    /// The venue has no such call (e.g. a REST book snapshot on a venue without a book).
    #[error("not supported by {venue}: {what}")]
    Unsupported {
        /// The venue.
        venue: &'static str,
        /// The missing call.
        what: &'static str,
    },
}

impl VenueError {
    /// A rejection with the venue's code and a neutral reason.
    pub fn rejected(
        code: impl Into<String>,
        reason: RejectReason,
        message: impl Into<String>,
    ) -> Self {
        VenueError::Rejected {
            code: code.into(),
            reason,
            message: message.into(),
        }
    }

    /// Whether an idempotent call may be retried.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            VenueError::RateLimited { .. }
                | VenueError::CircuitOpen { .. }
                | VenueError::Transport(_)
        )
    }

    /// The neutral reason of a rejection, `None` for other failures.
    #[must_use]
    pub fn reject_reason(&self) -> Option<RejectReason> {
        match self {
            VenueError::Rejected { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

/// The outcome of submitting an order.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    /// Definitively not placed: the venue rejected it, or it never left (rate limit, open
    /// circuit, clock error caught before sending). Safe to report as rejected.
    #[error("order not placed: {0}")]
    NotPlaced(VenueError),
    /// The request may have reached the venue but no definitive answer came back
    /// (timeout, connection reset, 5xx, Binance -1006/-1007). The order is *in flight*: it
    /// must be reconciled by querying the client order id, and never resubmitted.
    #[error("order outcome unknown: {0}")]
    Ambiguous(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_keep_code_and_reason() {
        let e = VenueError::rejected("-2010", RejectReason::InsufficientFunds, "no money");
        assert_eq!(e.to_string(), "venue rejected the request: -2010 no money");
        assert_eq!(e.reject_reason(), Some(RejectReason::InsufficientFunds));
        assert!(!e.is_retryable());
        assert!(VenueError::Transport("x".into()).is_retryable());
        assert_eq!(VenueError::Auth("x".into()).reject_reason(), None);
    }
}
