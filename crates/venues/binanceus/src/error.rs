//! The Binance.US adapter's error type, and how it maps onto the gateway's errors.
//!
//! The distinction that matters most is for order submits: a definitive rejection (the
//! venue answered 4xx with its own code, or nothing was ever sent) versus an **ambiguous**
//! outcome (timeout, reset after writing, 5xx, `-1006`/`-1007`, an unparseable 2xx) where
//! the order may be live and must be reconciled by client order id, never resubmitted.

use std::time::Duration;

use gekko_net::NetError;
use gekko_venue::{RejectReason, SubmitError, VenueError};

use crate::common::consts::codes;
use crate::signing::SigningError;

/// Why a Binance.US call failed.
#[derive(Debug, thiserror::Error)]
pub enum BinanceUsError {
    /// The configuration is unusable (each problem on its own line).
    #[error("invalid Binance.US configuration:\n{}", .0.join("\n"))]
    Config(Vec<String>),
    /// The signing key is unusable.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// Transport failure, non-JSON error status, or an unparseable body (payload kept).
    #[error(transparent)]
    Net(#[from] NetError),
    /// The venue answered with its own error code.
    #[error("Binance.US error {code}: {msg} (HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Venue error code, e.g. `-2010`.
        code: i64,
        /// Venue message.
        msg: String,
    },
    /// Rate limited: refused locally, or the venue answered 429. The request was not
    /// executed.
    #[error("rate limited; retry in {retry_after:?}")]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// The venue banned this IP (418). Nothing is sent until the ban ends.
    #[error("IP banned by Binance.US; retry in {retry_after:?}")]
    Banned {
        /// Until the ban ends.
        retry_after: Duration,
    },
    /// The circuit for this endpoint family is open on every configured base URL.
    #[error("circuit open for {family}; retry in {retry_after:?}")]
    CircuitOpen {
        /// Endpoint family.
        family: &'static str,
        /// Until a probe is allowed.
        retry_after: Duration,
    },
}

impl BinanceUsError {
    /// Whether an **idempotent** call may be retried right away with backoff: transport
    /// trouble, 5xx, and the venue's transient codes. Rate limits, bans and open circuits
    /// are not retried here: they are surfaced so the caller can wait.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            BinanceUsError::Net(e) => e.is_retryable(),
            BinanceUsError::Api { status, code, .. } => {
                *status >= 500 || matches!(*code, codes::DISCONNECTED | codes::SERVER_BUSY)
            }
            _ => false,
        }
    }

    /// The venue error code, when the venue gave one.
    #[must_use]
    pub fn code(&self) -> Option<i64> {
        match self {
            BinanceUsError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// For an order submit: whether the order may have been placed despite the error.
    #[must_use]
    pub fn outcome_unknown(&self) -> bool {
        match self {
            BinanceUsError::Net(e) => match e {
                NetError::Request(_) | NetError::Connect(_) => false,
                NetError::Timeout(_) | NetError::Transport(_) | NetError::Decode { .. } => true,
                NetError::Status { status, .. } => *status >= 500,
            },
            BinanceUsError::Api { status, code, .. } => {
                *status >= 500 || matches!(*code, codes::UNEXPECTED_RESP | codes::TIMEOUT)
            }
            _ => false,
        }
    }

    /// Maps a submit failure to the gateway's [`SubmitError`].
    #[must_use]
    pub fn into_submit_error(self) -> SubmitError {
        if self.outcome_unknown() {
            SubmitError::Ambiguous(self.to_string())
        } else {
            SubmitError::NotPlaced(self.into())
        }
    }
}

/// The neutral reason for a Binance.US error code. `-2010` covers several causes that
/// only the message tells apart (the messages are fixed strings in the API reference).
#[must_use]
pub fn reject_reason(code: i64, msg: &str) -> RejectReason {
    match code {
        codes::NEW_ORDER_REJECTED => {
            let m = msg.to_ascii_lowercase();
            if m.contains("insufficient balance") {
                RejectReason::InsufficientFunds
            } else if m.contains("duplicate order") {
                RejectReason::Duplicate
            } else {
                RejectReason::Other
            }
        }
        codes::CANCEL_REJECTED | codes::NO_SUCH_ORDER => RejectReason::UnknownOrder,
        codes::FILTER_FAILURE => RejectReason::Filter,
        codes::TOO_MANY_REQUESTS | codes::TOO_MANY_ORDERS => RejectReason::RateLimited,
        _ => RejectReason::Other,
    }
}

impl From<BinanceUsError> for VenueError {
    fn from(e: BinanceUsError) -> Self {
        match e {
            BinanceUsError::Api { code, msg, status } => match code {
                codes::UNAUTHORIZED
                | codes::INVALID_SIGNATURE
                | codes::BAD_API_KEY_FMT
                | codes::REJECTED_MBX_KEY => VenueError::Auth(format!("{code} {msg}")),
                _ if status == 401 => VenueError::Auth(format!("{code} {msg}")),
                _ => VenueError::Rejected {
                    code: code.to_string(),
                    reason: reject_reason(code, &msg),
                    message: msg,
                },
            },
            BinanceUsError::RateLimited { retry_after }
            | BinanceUsError::Banned { retry_after } => VenueError::RateLimited { retry_after },
            BinanceUsError::CircuitOpen {
                family,
                retry_after,
            } => VenueError::CircuitOpen {
                family: family.to_owned(),
                retry_after,
            },
            BinanceUsError::Net(NetError::Decode { reason, payload }) => {
                VenueError::Malformed { reason, payload }
            }
            BinanceUsError::Net(NetError::Status { status, body, .. }) if status < 500 => {
                // A non-JSON 4xx (e.g. a 403 WAF page): definitive. The HTTP status stands in
                // for the code; venue codes are negative, so they cannot collide.
                if status == 401 {
                    VenueError::Auth(body)
                } else {
                    VenueError::Rejected {
                        code: status.to_string(),
                        reason: if status == 429 {
                            RejectReason::RateLimited
                        } else {
                            RejectReason::Other
                        },
                        message: body,
                    }
                }
            }
            BinanceUsError::Net(e) => VenueError::Transport(e.to_string()),
            BinanceUsError::Config(p) => VenueError::Auth(p.join("; ")),
            BinanceUsError::Signing(s) => VenueError::Auth(s.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: i64) -> BinanceUsError {
        BinanceUsError::Api {
            status,
            code,
            msg: "m".to_owned(),
        }
    }

    #[test]
    fn submit_classification() {
        // Definitive rejections.
        assert!(matches!(
            api(400, -2010).into_submit_error(),
            SubmitError::NotPlaced(VenueError::Rejected { ref code, .. }) if code == "-2010"
        ));
        assert!(matches!(
            api(400, -1013).into_submit_error(),
            SubmitError::NotPlaced(_)
        ));
        assert!(matches!(
            BinanceUsError::RateLimited {
                retry_after: Duration::from_secs(1)
            }
            .into_submit_error(),
            SubmitError::NotPlaced(VenueError::RateLimited { .. })
        ));
        assert!(matches!(
            BinanceUsError::Banned {
                retry_after: Duration::from_secs(120)
            }
            .into_submit_error(),
            SubmitError::NotPlaced(VenueError::RateLimited { .. })
        ));
        assert!(matches!(
            BinanceUsError::CircuitOpen {
                family: "order",
                retry_after: Duration::from_secs(1)
            }
            .into_submit_error(),
            SubmitError::NotPlaced(VenueError::CircuitOpen { .. })
        ));
        assert!(matches!(
            api(401, -2015).into_submit_error(),
            SubmitError::NotPlaced(VenueError::Auth(_))
        ));
        // Ambiguous: unknown execution status.
        assert!(matches!(
            api(400, -1006).into_submit_error(),
            SubmitError::Ambiguous(_)
        ));
        assert!(matches!(
            api(400, -1007).into_submit_error(),
            SubmitError::Ambiguous(_)
        ));
        assert!(matches!(
            api(503, -1001).into_submit_error(),
            SubmitError::Ambiguous(_)
        ));
        let status = |s| {
            BinanceUsError::Net(NetError::Status {
                status: s,
                body: String::new(),
                retry_after: None,
            })
        };
        assert!(matches!(
            status(502).into_submit_error(),
            SubmitError::Ambiguous(_)
        ));
        assert!(matches!(
            status(403).into_submit_error(),
            SubmitError::NotPlaced(VenueError::Rejected { ref code, .. }) if code == "403"
        ));
        assert!(matches!(
            BinanceUsError::Net(NetError::decode("eof", "{")).into_submit_error(),
            SubmitError::Ambiguous(_)
        ));
    }

    #[test]
    fn codes_map_to_neutral_reasons() {
        let reason = |code, msg| reject_reason(code, msg);
        assert_eq!(
            reason(
                -2010,
                "Account has insufficient balance for requested action."
            ),
            RejectReason::InsufficientFunds
        );
        assert_eq!(
            reason(-2010, "Duplicate order sent."),
            RejectReason::Duplicate
        );
        assert_eq!(reason(-2010, "Market is closed."), RejectReason::Other);
        assert_eq!(
            reason(-2011, "Unknown order sent."),
            RejectReason::UnknownOrder
        );
        assert_eq!(
            reason(-2013, "Order does not exist."),
            RejectReason::UnknownOrder
        );
        assert_eq!(
            reason(-1013, "Filter failure: LOT_SIZE"),
            RejectReason::Filter
        );
        assert_eq!(
            reason(-1015, "Too many new orders"),
            RejectReason::RateLimited
        );
        let VenueError::Rejected { code, reason, .. } = VenueError::from(api(400, -2013)) else {
            panic!("not a rejection");
        };
        assert_eq!(
            (code.as_str(), reason),
            ("-2013", RejectReason::UnknownOrder)
        );
    }

    #[test]
    fn retryability() {
        assert!(api(503, -1001).is_retryable());
        assert!(api(400, -1001).is_retryable());
        assert!(!api(400, -2010).is_retryable());
        assert!(
            !BinanceUsError::RateLimited {
                retry_after: Duration::ZERO
            }
            .is_retryable()
        );
        assert_eq!(api(400, -2010).code(), Some(-2010));
    }
}
