//! Errors of the Binance.US simulator.
//!
//! Two kinds, kept apart on purpose:
//!
//! - [`ApiError`] is a *venue* answer: the HTTP status plus the `{"code":..,"msg":..}`
//!   body a real Binance.US server would send. Producing one is normal operation (a client
//!   sent a bad request), so it carries everything needed to put it on the wire, and the
//!   constructors below spell the venue's exact messages in one place.
//! - [`SimError`] is a failure of the simulator itself (bad config, a port that will not
//!   bind); it is the harness's, shared by every simulator, re-exported here. It crosses
//!   the crate boundary and is turned into `std::io::Error` by
//!   [`super::SimBinanceUs::start`].
//!
//! The engine refuses requests with neutral [`Reject`] reasons; `From<Reject>` below is
//! the one place they get their Binance.US codes and messages.

use axum::http::StatusCode;

use crate::engine::{FilterKind, Reject};
pub use crate::harness::SimError;

/// An error answer exactly as Binance.US sends it: HTTP status, `code`, `msg`, and for
/// IP rate limits the `Retry-After` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status} {code}: {msg}")]
pub struct ApiError {
    /// HTTP status of the response.
    pub status: StatusCode,
    /// Venue error code (negative), e.g. -1021.
    pub code: i32,
    /// Venue error message.
    pub msg: String,
    /// `Retry-After` in seconds, sent with IP-limit 429s and 418s only.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A 400 answer with the given code and message.
    pub fn bad_request(code: i32, msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            msg: msg.into(),
            retry_after: None,
        }
    }

    /// The JSON body, `{"code":..,"msg":..}`.
    #[must_use]
    pub fn body(&self) -> String {
        serde_json::json!({ "code": self.code, "msg": self.msg }).to_string()
    }

    /// -1000 for an unexpected internal condition (never a panic).
    pub fn unknown() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: -1000,
            msg: "An unknown error occurred while processing the request.".into(),
            retry_after: None,
        }
    }

    /// -1001, sent with HTTP 503 by the `ServerErrors` fault.
    pub fn disconnected() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: -1001,
            msg: "Internal error; unable to process your request. Please try again.".into(),
            retry_after: None,
        }
    }

    /// An unknown path, answered like the venue's gateway with a 404.
    pub fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: -1000,
            msg: "Not found: no such endpoint.".into(),
            retry_after: None,
        }
    }

    /// -2014, HTTP 401: the `X-MBX-APIKEY` header is missing or malformed.
    pub fn bad_api_key_format() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: -2014,
            msg: "API-key format invalid.".into(),
            retry_after: None,
        }
    }

    /// -2015, HTTP 401: the key is unknown.
    pub fn rejected_api_key() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: -2015,
            msg: "Invalid API-key, IP, or permissions for action.".into(),
            retry_after: None,
        }
    }

    /// -1022: the signature does not verify.
    pub fn invalid_signature() -> Self {
        Self::bad_request(-1022, "Signature for this request is not valid.")
    }

    /// -1021: `timestamp` older than `recvWindow`.
    pub fn outside_recv_window() -> Self {
        Self::bad_request(
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        )
    }

    /// -1021: `timestamp` 1000 ms or more ahead of the server clock.
    pub fn ahead_of_server() -> Self {
        Self::bad_request(
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        )
    }

    /// -1131: `recvWindow` above 60000.
    pub fn recv_window_too_large() -> Self {
        Self::bad_request(-1131, "recvWindow must be less than 60000")
    }

    /// -1102: a mandatory parameter is missing, empty or malformed.
    pub fn mandatory(param: &str) -> Self {
        Self::bad_request(
            -1102,
            format!("Mandatory parameter '{param}' was not sent, was empty/null, or malformed."),
        )
    }

    /// -1100: a parameter has characters outside its legal pattern.
    pub fn illegal_chars(param: &str, legal: &str) -> Self {
        Self::bad_request(
            -1100,
            format!("Illegal characters found in parameter '{param}'; legal range is '{legal}'."),
        )
    }

    /// -1100 for a malformed decimal.
    pub fn illegal_decimal(param: &str) -> Self {
        Self::illegal_chars(param, r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
    }

    /// -1100 for a malformed integer.
    pub fn illegal_integer(param: &str) -> Self {
        Self::illegal_chars(param, "^[0-9]{1,20}$")
    }

    /// -1101: the same parameter was sent twice in one part of the request.
    pub fn duplicate_param() -> Self {
        Self::bad_request(-1101, "Duplicate values for a parameter detected.")
    }

    /// -1106: a parameter that this order type does not take.
    pub fn not_required(param: &str) -> Self {
        Self::bad_request(
            -1106,
            format!("Parameter '{param}' sent when not required."),
        )
    }

    /// -1111: more decimals than the asset allows.
    pub fn bad_precision(param: &str) -> Self {
        Self::bad_request(
            -1111,
            format!("Parameter '{param}' has too much precision."),
        )
    }

    /// -1115: unknown `timeInForce`.
    pub fn invalid_tif() -> Self {
        Self::bad_request(-1115, "Invalid timeInForce.")
    }

    /// -1116: unknown or unsupported order `type`.
    pub fn invalid_order_type() -> Self {
        Self::bad_request(-1116, "Invalid orderType.")
    }

    /// -1117: unknown `side`.
    pub fn invalid_side() -> Self {
        Self::bad_request(-1117, "Invalid side.")
    }

    /// -1121: unknown symbol.
    pub fn invalid_symbol() -> Self {
        Self::bad_request(-1121, "Invalid symbol.")
    }

    /// -1125: unknown or expired listenKey.
    pub fn invalid_listen_key() -> Self {
        Self::bad_request(-1125, "This listenKey does not exist.")
    }

    /// -1130: a parameter value outside its allowed range.
    pub fn invalid_parameter(param: &str) -> Self {
        Self::bad_request(
            -1130,
            format!("Invalid data sent for a parameter '{param}'."),
        )
    }

    /// -1013: an exchange filter rejected the order.
    pub fn filter_failure(filter: &str) -> Self {
        Self::bad_request(-1013, format!("Filter failure: {filter}"))
    }

    /// -2010: the account cannot pay for the order.
    pub fn insufficient_balance() -> Self {
        Self::bad_request(
            -2010,
            "Account has insufficient balance for requested action.",
        )
    }

    /// -2010: `newClientOrderId` equals the id of an open order.
    pub fn duplicate_order() -> Self {
        Self::bad_request(-2010, "Duplicate order sent.")
    }

    /// -2011: cancel of an unknown or already closed order.
    pub fn unknown_order() -> Self {
        Self::bad_request(-2011, "Unknown order sent.")
    }

    /// -2013: query of an unknown order.
    pub fn no_such_order() -> Self {
        Self::bad_request(-2013, "Order does not exist.")
    }

    /// -1003 with HTTP 429: request weight over the per-minute limit.
    pub fn too_much_weight(limit: u32, retry_after: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: -1003,
            msg: format!(
                "Too much request weight used; current limit is {limit} request weight per 1 \
                 MINUTE. Please use the websocket for live updates to avoid polling the API."
            ),
            retry_after: Some(retry_after),
        }
    }

    /// -1003 with HTTP 418: the IP is banned until `until_ms` (server time).
    pub fn banned(until_ms: i64, retry_after: u64) -> Self {
        Self {
            status: StatusCode::IM_A_TEAPOT,
            code: -1003,
            msg: format!(
                "Way too much request weight used; IP banned until {until_ms}. Please use the \
                 websocket for live updates to avoid bans."
            ),
            retry_after: Some(retry_after),
        }
    }

    /// -1015 with HTTP 429 and no `Retry-After`: order rate limit.
    pub fn too_many_orders(limit: u32) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: -1015,
            msg: format!("Too many new orders; current limit is {limit} orders per 10 SECOND."),
            retry_after: None,
        }
    }
}

impl From<Reject> for ApiError {
    /// The venue's answer to an engine refusal. Queries of unknown orders are -2013 and
    /// cancels -2011; callers that cancel map [`Reject::UnknownOrder`] themselves.
    fn from(r: Reject) -> Self {
        match r {
            Reject::UnknownInstrument => Self::invalid_symbol(),
            Reject::Filter(f) => Self::filter_failure(filter_name(f)),
            Reject::MissingQuantity => Self::mandatory("quantity"),
            Reject::DuplicateClientOrderId => Self::duplicate_order(),
            Reject::InsufficientBalance => Self::insufficient_balance(),
            Reject::UnknownOrder => Self::no_such_order(),
            Reject::OrderNotOpen => Self::unknown_order(),
            Reject::Internal => Self::unknown(),
        }
    }
}

/// The `filterType` of an instrument rule, as `exchangeInfo` and -1013 messages name it.
#[must_use]
pub(crate) fn filter_name(f: FilterKind) -> &'static str {
    match f {
        FilterKind::Price => "PRICE_FILTER",
        FilterKind::LotSize => "LOT_SIZE",
        FilterKind::MinNotional => "MIN_NOTIONAL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_rejections_get_venue_codes() {
        let cases = [
            (Reject::UnknownInstrument, -1121, "Invalid symbol."),
            (
                Reject::Filter(FilterKind::LotSize),
                -1013,
                "Filter failure: LOT_SIZE",
            ),
            (
                Reject::InsufficientBalance,
                -2010,
                "Account has insufficient balance for requested action.",
            ),
            (
                Reject::DuplicateClientOrderId,
                -2010,
                "Duplicate order sent.",
            ),
            (Reject::UnknownOrder, -2013, "Order does not exist."),
            (Reject::OrderNotOpen, -2011, "Unknown order sent."),
        ];
        for (r, code, msg) in cases {
            let e = ApiError::from(r);
            assert_eq!((e.code, e.msg.as_str()), (code, msg), "{r}");
        }
        assert_eq!(ApiError::from(Reject::Internal).code, -1000);
        assert_eq!(ApiError::from(Reject::MissingQuantity).code, -1102);
    }
}
