//! The OANDA adapter's error type, and how it maps onto the venue contract's errors.
//!
//! OANDA answers failures with one JSON body shape, `{"errorCode"?, "errorMessage"}`
//! (reference §3.4): 401 for a refused token, 403 (or 404) for an account the token may
//! not use, 404 for an unknown order, and for order creation a 400/404 that adds the
//! `orderRejectTransaction` whose `rejectReason` (`INSUFFICIENT_MARGIN`, `UNITS_INVALID`,
//! ...) is the real verdict. Each gets its own variant, so the mapping into
//! [`VenueError`]/[`SubmitError`] is decided in one place.
//!
//! For order submits the distinction that matters is definitive (the venue answered
//! with a verdict, or nothing left this process) versus **ambiguous** (timeout or reset
//! after the request may have been written, any 5xx, an unparseable 2xx): the order may
//! be live and is reconciled through `@<clientID>`, never resubmitted.

use std::time::Duration;

use gekko_net::NetError;
use gekko_venue::{RejectReason, SubmitError, VenueError};

/// Why an OANDA call failed.
#[derive(Debug, thiserror::Error)]
pub enum OandaError {
    /// The configuration is unusable (each problem on its own line).
    #[error("invalid OANDA configuration:\n{}", .0.join("\n"))]
    Config(Vec<String>),
    /// Transport failure, a non-JSON error status, or an unparseable body (payload kept).
    #[error(transparent)]
    Net(#[from] NetError),
    /// 401: the token was refused.
    #[error("OANDA refused the token (HTTP 401): {message}")]
    Unauthorized {
        /// `errorMessage` (`Insufficient authorization to perform request.`).
        message: String,
    },
    /// 403, or 404 on an account path: the account is unknown to this token.
    #[error("OANDA does not know account {account_id} for this token (HTTP {status}): {message}")]
    UnknownAccount {
        /// HTTP status.
        status: u16,
        /// The account asked for.
        account_id: String,
        /// `errorMessage`.
        message: String,
    },
    /// 404 on an order path: the order (or client id) is unknown.
    #[error("OANDA does not know the order (HTTP 404): {code} {message}")]
    UnknownOrder {
        /// `errorCode` or the reject reason (`ORDER_DOESNT_EXIST`).
        code: String,
        /// `errorMessage`.
        message: String,
    },
    /// The venue refused an order, cancel or close with a reject transaction; `code` is
    /// its `rejectReason` (or `errorCode` when there is none), as spelled.
    #[error("OANDA rejected the request: {code} {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// `rejectReason` (`INSUFFICIENT_MARGIN`).
        code: String,
        /// The neutral reason.
        reason: RejectReason,
        /// `errorMessage`.
        message: String,
        /// The whole body, truncated.
        payload: String,
    },
    /// Any other JSON error answer (4xx/5xx).
    #[error("OANDA error {code} (HTTP {status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// `errorCode`, or the status when absent.
        code: String,
        /// `errorMessage`.
        message: String,
        /// The whole body, truncated.
        payload: String,
    },
    /// gekko's own pre-trade check refused the order; nothing was sent.
    #[error("order refused before sending ({rule}): {message}")]
    PreTrade {
        /// Which rule (`trade_units_precision`, `minimum_trade_size`, `margin`, ...).
        rule: &'static str,
        /// The neutral reason (`InsufficientFunds` for margin, `Filter` otherwise).
        reason: RejectReason,
        /// What was wrong, with the numbers.
        message: String,
    },
    /// Rate limited: refused locally, or the venue answered 429. Not executed.
    #[error("rate limited; retry in {retry_after:?}")]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// The circuit for this endpoint family is open; nothing was sent.
    #[error("circuit open for {family}; retry in {retry_after:?}")]
    CircuitOpen {
        /// Endpoint family.
        family: &'static str,
        /// Until a probe is allowed.
        retry_after: Duration,
    },
}

impl OandaError {
    /// A malformed-payload error keeping (a truncated copy of) the payload.
    #[must_use]
    pub fn malformed(reason: impl std::fmt::Display, payload: &str) -> Self {
        OandaError::Net(NetError::decode(reason, payload))
    }

    /// Whether an **idempotent** call may be retried with backoff: transport trouble,
    /// 5xx, and 429. Auth failures, unknown accounts, rejections and local refusals are
    /// final.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            OandaError::Net(e) => e.is_retryable(),
            OandaError::Api { status, .. } => *status >= 500 || *status == 429,
            OandaError::RateLimited { .. } => true,
            _ => false,
        }
    }

    /// How long to wait before a retry, when the venue or the limiter said so.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            OandaError::RateLimited { retry_after }
            | OandaError::CircuitOpen { retry_after, .. } => Some(*retry_after),
            OandaError::Net(NetError::Status { retry_after, .. }) => *retry_after,
            _ => None,
        }
    }

    /// The venue's code, when it gave one.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            OandaError::Api { code, .. }
            | OandaError::Rejected { code, .. }
            | OandaError::UnknownOrder { code, .. } => Some(code),
            _ => None,
        }
    }

    /// For an order submit: whether the order may have been placed despite the error
    /// (timeout or reset after sending, 5xx, a 2xx that did not parse).
    #[must_use]
    pub fn outcome_unknown(&self) -> bool {
        match self {
            OandaError::Net(e) => match e {
                NetError::Request(_) | NetError::Connect(_) => false,
                NetError::Timeout(_) | NetError::Transport(_) | NetError::Decode { .. } => true,
                NetError::Status { status, .. } => *status >= 500,
            },
            OandaError::Api { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Maps a submit failure to the contract's [`SubmitError`].
    #[must_use]
    pub fn into_submit_error(self) -> SubmitError {
        if self.outcome_unknown() {
            SubmitError::Ambiguous(self.to_string())
        } else {
            SubmitError::NotPlaced(self.into())
        }
    }
}

impl From<OandaError> for SubmitError {
    fn from(e: OandaError) -> Self {
        e.into_submit_error()
    }
}

/// The neutral reason of an OANDA `rejectReason` or `errorCode`, matched by its words
/// (the live API has more codes than the 2018 spec lists).
#[must_use]
pub fn reject_reason(code: &str) -> RejectReason {
    let c = code.to_ascii_uppercase();
    if c.contains("ALREADY_EXISTS") || c.contains("DUPLICATE") {
        RejectReason::Duplicate
    } else if c.contains("DOESNT_EXIST")
        || c.contains("DOES_NOT_EXIST")
        || c.contains("NOT_FOUND")
        || c.contains("NO_SUCH_ORDER")
    {
        RejectReason::UnknownOrder
    } else if c.contains("MARGIN") || c.contains("INSUFFICIENT_FUNDS") {
        RejectReason::InsufficientFunds
    } else if c.contains("RATE_LIMIT") {
        RejectReason::RateLimited
    } else if c.starts_with("UNITS_")
        || c.contains("PRECISION")
        || c.starts_with("PRICE_")
        || c.contains("POSITION_SIZE")
        || c.contains("MINIMUM")
        || c.contains("MAXIMUM")
    {
        RejectReason::Filter
    } else {
        RejectReason::Other
    }
}

impl From<OandaError> for VenueError {
    fn from(e: OandaError) -> Self {
        match e {
            OandaError::Config(p) => VenueError::Auth(format!("configuration: {}", p.join("; "))),
            OandaError::Unauthorized { message } => VenueError::Auth(format!("HTTP 401 {message}")),
            OandaError::UnknownAccount {
                status,
                account_id,
                message,
            } => VenueError::Auth(format!("HTTP {status} account {account_id}: {message}")),
            OandaError::UnknownOrder { code, message } => VenueError::Rejected {
                code,
                reason: RejectReason::UnknownOrder,
                message,
            },
            OandaError::Rejected {
                code,
                reason,
                message,
                ..
            } => VenueError::Rejected {
                code,
                reason,
                message,
            },
            OandaError::Api {
                status,
                code,
                message,
                ..
            } => {
                if status >= 500 {
                    VenueError::Transport(format!("HTTP {status} {code} {message}"))
                } else {
                    let reason = reject_reason(&code);
                    VenueError::Rejected {
                        code,
                        reason,
                        message,
                    }
                }
            }
            OandaError::PreTrade {
                rule,
                reason,
                message,
            } => VenueError::Rejected {
                code: format!("gekko:{rule}"),
                reason,
                message,
            },
            OandaError::RateLimited { retry_after } => VenueError::RateLimited { retry_after },
            OandaError::CircuitOpen {
                family,
                retry_after,
            } => VenueError::CircuitOpen {
                family: family.to_owned(),
                retry_after,
            },
            OandaError::Net(NetError::Decode { reason, payload }) => {
                VenueError::Malformed { reason, payload }
            }
            OandaError::Net(NetError::Status { status, body, .. }) if status < 500 => {
                match status {
                    401 | 403 => VenueError::Auth(format!("HTTP {status} {body}")),
                    _ => VenueError::rejected(status.to_string(), RejectReason::Other, body),
                }
            }
            OandaError::Net(n) => VenueError::Transport(n.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_reasons_keep_their_meaning() {
        for (code, want) in [
            ("INSUFFICIENT_MARGIN", RejectReason::InsufficientFunds),
            ("UNITS_INVALID", RejectReason::Filter),
            ("UNITS_MINIMUM_NOT_MET", RejectReason::Filter),
            ("UNITS_LIMIT_EXCEEDED", RejectReason::Filter),
            ("PRICE_PRECISION_EXCEEDED", RejectReason::Filter),
            ("POSITION_SIZE_EXCEEDED", RejectReason::Filter),
            ("CLIENT_ORDER_ID_ALREADY_EXISTS", RejectReason::Duplicate),
            ("ORDER_DOESNT_EXIST", RejectReason::UnknownOrder),
            ("MARKET_HALTED", RejectReason::Other),
            ("INSTRUMENT_UNKNOWN", RejectReason::Other),
            ("TIME_IN_FORCE_INVALID", RejectReason::Other),
        ] {
            assert_eq!(reject_reason(code), want, "{code}");
        }
    }

    #[test]
    fn submit_outcomes_are_definitive_or_ambiguous() {
        let rejected = OandaError::Rejected {
            status: 400,
            code: "INSUFFICIENT_MARGIN".into(),
            reason: RejectReason::InsufficientFunds,
            message: "no margin".into(),
            payload: String::new(),
        };
        match rejected.into_submit_error() {
            SubmitError::NotPlaced(VenueError::Rejected { code, reason, .. }) => {
                assert_eq!(code, "INSUFFICIENT_MARGIN");
                assert_eq!(reason, RejectReason::InsufficientFunds);
            }
            other => panic!("{other:?}"),
        }
        let five = OandaError::Api {
            status: 503,
            code: "503".into(),
            message: "busy".into(),
            payload: String::new(),
        };
        assert!(five.is_retryable());
        assert!(matches!(
            five.into_submit_error(),
            SubmitError::Ambiguous(_)
        ));
        let bad_body = OandaError::malformed("eof", "{");
        assert!(matches!(
            bad_body.into_submit_error(),
            SubmitError::Ambiguous(_)
        ));
        let auth = OandaError::Unauthorized {
            message: "Insufficient authorization to perform request.".into(),
        };
        assert!(!auth.is_retryable());
        assert!(matches!(VenueError::from(auth), VenueError::Auth(_)));
    }
}
