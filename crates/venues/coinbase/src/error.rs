//! The Coinbase adapter's error type, and how it maps onto the venue contract's errors.
//!
//! Coinbase reports failures three ways (reference 1.4): a plain-text `401 Unauthorized`
//! (bad or expired JWT, wrong `uri` claim), a JSON body `{error, message, error_details}`
//! for other 4xx/5xx (403 `Missing required scopes` when the key lacks a permission), and
//! HTTP **200** with `success:false` for business rejections of an order. Each gets its
//! own variant so the mapping into [`VenueError`]/[`SubmitError`] is decided in one place.
//!
//! For order submits the distinction that matters is definitive (the venue answered with a
//! verdict, or nothing left this process) versus **ambiguous** (timeout or reset after the
//! request may have been written, any 5xx, an unparseable 2xx): the order may be live and
//! must be reconciled by client order id, never resubmitted blindly.

use std::time::Duration;

use gekko_net::NetError;
use gekko_venue::{RejectReason, SubmitError, VenueError};

use crate::auth::{CdpKeyError, JwtError};

/// Why a Coinbase call failed.
#[derive(Debug, thiserror::Error)]
pub enum CoinbaseError {
    /// The configuration is unusable (each problem on its own line).
    #[error("invalid Coinbase configuration:\n{}", .0.join("\n"))]
    Config(Vec<String>),
    /// The CDP key is unusable.
    #[error(transparent)]
    Key(#[from] CdpKeyError),
    /// A JWT could not be signed.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// Transport failure, a non-JSON error status, or an unparseable body (payload kept).
    #[error(transparent)]
    Net(#[from] NetError),
    /// 401: the JWT was refused (bad key, expired or not yet valid, wrong `uri`).
    #[error("Coinbase refused the credentials (HTTP 401): {body}")]
    Unauthorized {
        /// The response body (`Unauthorized`).
        body: String,
    },
    /// 403: the key lacks a permission (`Missing required scopes`), or access is denied.
    #[error("Coinbase denied access (HTTP 403): {message} {details}")]
    Forbidden {
        /// `message` of the body.
        message: String,
        /// `error_details` of the body (`Missing required scopes`).
        details: String,
    },
    /// Any other JSON error answer (4xx/5xx).
    #[error("Coinbase error {code} (HTTP {status}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The venue's `error` code (`INVALID_ARGUMENT`, `NOT_FOUND`, `UNAVAILABLE`).
        code: String,
        /// The venue's `message`.
        message: String,
        /// The whole body, truncated.
        payload: String,
    },
    /// The venue refused an order or a cancel with `success:false` (HTTP 200). `code` is
    /// the most specific of `error_response.error`, `preview_failure_reason`,
    /// `new_order_failure_reason` and `failure_reason`.
    #[error("Coinbase rejected the order: {code} {message}")]
    Rejected {
        /// The venue's code, as spelled (`INSUFFICIENT_FUND`).
        code: String,
        /// The neutral reason.
        reason: RejectReason,
        /// The venue's message.
        message: String,
        /// The whole body, truncated.
        payload: String,
    },
    /// gekko's own pre-trade check refused the order; nothing was sent.
    #[error("order refused before sending ({rule}): {message}")]
    PreTrade {
        /// Which rule (`base_increment`, `quote_min_size`, `trading_disabled`, ...).
        rule: &'static str,
        /// What was wrong, with the numbers.
        message: String,
    },
    /// Rate limited: refused locally, or the venue answered 429. The request was not
    /// executed.
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

impl CoinbaseError {
    /// A malformed-payload error keeping (a truncated copy of) the payload.
    #[must_use]
    pub fn malformed(reason: impl std::fmt::Display, payload: &str) -> Self {
        CoinbaseError::Net(NetError::decode(reason, payload))
    }

    /// Whether an **idempotent** call may be retried with backoff: transport trouble,
    /// 5xx, and 429 once its wait has passed (see [`CoinbaseError::retry_after`]). Auth
    /// failures, missing scopes, rejections and local refusals are final.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            CoinbaseError::Net(e) => e.is_retryable(),
            CoinbaseError::Api { status, .. } => *status >= 500 || *status == 429,
            CoinbaseError::RateLimited { .. } => true,
            _ => false,
        }
    }

    /// How long to wait before a retry, when the venue or the limiter said so.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CoinbaseError::RateLimited { retry_after }
            | CoinbaseError::CircuitOpen { retry_after, .. } => Some(*retry_after),
            CoinbaseError::Net(NetError::Status { retry_after, .. }) => *retry_after,
            _ => None,
        }
    }

    /// The venue's error code, when it gave one.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            CoinbaseError::Api { code, .. } | CoinbaseError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }

    /// For an order submit: whether the order may have been placed despite the error.
    #[must_use]
    pub fn outcome_unknown(&self) -> bool {
        match self {
            CoinbaseError::Net(e) => match e {
                NetError::Request(_) | NetError::Connect(_) => false,
                NetError::Timeout(_) | NetError::Transport(_) | NetError::Decode { .. } => true,
                NetError::Status { status, .. } => *status >= 500,
            },
            CoinbaseError::Api { status, .. } => *status >= 500,
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

/// The neutral reason for a Coinbase error or failure-reason code.
///
/// Codes are matched by their words rather than by a closed list, because the reference
/// marks the enum spellings as unconfirmed and the venue prefixes the same cause
/// differently in different fields (`INSUFFICIENT_FUND`, `PREVIEW_INSUFFICIENT_FUND`).
#[must_use]
pub fn reject_reason(code: &str) -> RejectReason {
    let c = code.to_ascii_uppercase();
    if c.contains("INSUFFICIENT") {
        RejectReason::InsufficientFunds
    } else if c.contains("DUPLICATE") || c.contains("ALREADY_EXISTS") {
        RejectReason::Duplicate
    } else if c.contains("UNKNOWN_CANCEL_ORDER")
        || c.contains("ORDER_NOT_FOUND")
        || c == "NOT_FOUND"
    {
        RejectReason::UnknownOrder
    } else if c.contains("RATE_LIMIT") || c.contains("RESOURCE_EXHAUSTED") {
        RejectReason::RateLimited
    } else if c.contains("SIZE")
        || c.contains("PRECISION")
        || c.contains("PRICE")
        || c.contains("TOO_SMALL")
        || c.contains("TOO_LARGE")
    {
        RejectReason::Filter
    } else {
        RejectReason::Other
    }
}

impl From<CoinbaseError> for VenueError {
    fn from(e: CoinbaseError) -> Self {
        match e {
            CoinbaseError::Unauthorized { body } => VenueError::Auth(format!("HTTP 401 {body}")),
            CoinbaseError::Forbidden { message, details } => {
                VenueError::Auth(format!("HTTP 403 {message} {details}"))
            }
            CoinbaseError::Api {
                status,
                code,
                message,
                ..
            } => {
                if status >= 500 {
                    VenueError::Transport(format!("HTTP {status} {code} {message}"))
                } else {
                    let reason = if status == 404 {
                        RejectReason::UnknownOrder
                    } else {
                        reject_reason(&code)
                    };
                    VenueError::Rejected {
                        code,
                        reason,
                        message,
                    }
                }
            }
            CoinbaseError::Rejected {
                code,
                reason,
                message,
                ..
            } => VenueError::Rejected {
                code,
                reason,
                message,
            },
            CoinbaseError::PreTrade { rule, message } => VenueError::Rejected {
                code: format!("gekko:{rule}"),
                reason: match rule {
                    "trading_disabled" | "status" | "cancel_only" | "limit_only" | "post_only" => {
                        RejectReason::Other
                    }
                    _ => RejectReason::Filter,
                },
                message,
            },
            CoinbaseError::RateLimited { retry_after } => VenueError::RateLimited { retry_after },
            CoinbaseError::CircuitOpen {
                family,
                retry_after,
            } => VenueError::CircuitOpen {
                family: family.to_owned(),
                retry_after,
            },
            CoinbaseError::Net(NetError::Decode { reason, payload }) => {
                VenueError::Malformed { reason, payload }
            }
            CoinbaseError::Net(NetError::Status { status, body, .. }) if status < 500 => {
                match status {
                    401 | 403 => VenueError::Auth(format!("HTTP {status} {body}")),
                    404 => VenueError::rejected("404", RejectReason::UnknownOrder, body),
                    _ => VenueError::rejected(status.to_string(), RejectReason::Other, body),
                }
            }
            CoinbaseError::Net(e) => VenueError::Transport(e.to_string()),
            CoinbaseError::Config(p) => VenueError::Auth(p.join("; ")),
            CoinbaseError::Key(k) => VenueError::Auth(k.to_string()),
            CoinbaseError::Jwt(j) => VenueError::Auth(j.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> CoinbaseError {
        CoinbaseError::Api {
            status,
            code: code.to_owned(),
            message: "m".to_owned(),
            payload: String::new(),
        }
    }

    #[test]
    fn submit_classification() {
        assert!(matches!(
            CoinbaseError::Unauthorized {
                body: "Unauthorized".into()
            }
            .into_submit_error(),
            SubmitError::NotPlaced(VenueError::Auth(_))
        ));
        assert!(matches!(
            CoinbaseError::Forbidden {
                message: "m".into(),
                details: "Missing required scopes".into()
            }
            .into_submit_error(),
            SubmitError::NotPlaced(VenueError::Auth(_))
        ));
        assert!(matches!(
            api(400, "INVALID_ARGUMENT").into_submit_error(),
            SubmitError::NotPlaced(VenueError::Rejected { .. })
        ));
        assert!(matches!(
            CoinbaseError::RateLimited {
                retry_after: Duration::from_secs(1)
            }
            .into_submit_error(),
            SubmitError::NotPlaced(VenueError::RateLimited { .. })
        ));
        assert!(matches!(
            CoinbaseError::PreTrade {
                rule: "base_increment",
                message: "x".into()
            }
            .into_submit_error(),
            SubmitError::NotPlaced(VenueError::Rejected {
                reason: RejectReason::Filter,
                ..
            })
        ));
        assert!(matches!(
            api(503, "UNAVAILABLE").into_submit_error(),
            SubmitError::Ambiguous(_)
        ));
        assert!(matches!(
            CoinbaseError::malformed("eof", "{").into_submit_error(),
            SubmitError::Ambiguous(_)
        ));
        let status = |s| {
            CoinbaseError::Net(NetError::Status {
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
            status(401).into_submit_error(),
            SubmitError::NotPlaced(VenueError::Auth(_))
        ));
    }

    #[test]
    fn codes_map_to_neutral_reasons() {
        assert_eq!(
            reject_reason("INSUFFICIENT_FUND"),
            RejectReason::InsufficientFunds
        );
        assert_eq!(
            reject_reason("PREVIEW_INSUFFICIENT_FUND"),
            RejectReason::InsufficientFunds
        );
        assert_eq!(
            reject_reason("INVALID_SIZE_PRECISION"),
            RejectReason::Filter
        );
        assert_eq!(
            reject_reason("PREVIEW_INVALID_BASE_SIZE_TOO_SMALL"),
            RejectReason::Filter
        );
        assert_eq!(
            reject_reason("INVALID_LIMIT_PRICE_POST_ONLY"),
            RejectReason::Filter
        );
        assert_eq!(
            reject_reason("UNKNOWN_CANCEL_ORDER"),
            RejectReason::UnknownOrder
        );
        assert_eq!(reject_reason("NOT_FOUND"), RejectReason::UnknownOrder);
        assert_eq!(
            reject_reason("RESOURCE_EXHAUSTED"),
            RejectReason::RateLimited
        );
        assert_eq!(
            reject_reason("UNSUPPORTED_ORDER_CONFIGURATION"),
            RejectReason::Other
        );
        let VenueError::Rejected { code, reason, .. } = VenueError::from(api(404, "NOT_FOUND"))
        else {
            panic!("not a rejection");
        };
        assert_eq!(
            (code.as_str(), reason),
            ("NOT_FOUND", RejectReason::UnknownOrder)
        );
    }

    #[test]
    fn retryability() {
        assert!(api(503, "UNAVAILABLE").is_retryable());
        assert!(api(429, "RESOURCE_EXHAUSTED").is_retryable());
        assert!(!api(400, "INVALID_ARGUMENT").is_retryable());
        assert!(
            !CoinbaseError::Unauthorized {
                body: String::new()
            }
            .is_retryable()
        );
        assert!(
            CoinbaseError::RateLimited {
                retry_after: Duration::ZERO
            }
            .is_retryable()
        );
        assert_eq!(api(400, "X").code(), Some("X"));
    }
}
