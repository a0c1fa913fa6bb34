//! Hosts, headers, error codes and the endpoint table with documented weights.
//!
//! Every REST call goes through an [`Endpoint`] so its weight is charged to the limiter
//! *before* the request leaves, its security type decides what gets signed, and its
//! [`Family`] picks the circuit breaker. Weights are the documented ones (Binance.US
//! `rest-api.md`); the venue's `X-MBX-USED-WEIGHT-1M` header corrects any drift.

use std::time::Duration;

use reqwest::Method;

/// The venue id used in metric labels.
pub const VENUE: &str = "binanceus";
/// Production REST base URL.
pub const REST_BASE: &str = "https://api.binance.us";
/// Production market/user-data stream base URL.
pub const WS_BASE: &str = "wss://stream.binance.us:9443";

/// API key header (case-sensitive value, header name case-insensitive).
pub const HEADER_API_KEY: &str = "X-MBX-APIKEY";
/// Request weight used in the current minute, sent on every response.
pub const HEADER_USED_WEIGHT_1M: &str = "x-mbx-used-weight-1m";
/// Orders placed in the last 10 s, sent on successful order responses.
pub const HEADER_ORDER_COUNT_10S: &str = "x-mbx-order-count-10s";

/// Default `recvWindow`, ms.
pub const DEFAULT_RECV_WINDOW_MS: u64 = 5_000;
/// Largest `recvWindow` the venue accepts, ms.
pub const MAX_RECV_WINDOW_MS: u64 = 60_000;
/// Documented request-weight limit per minute (per IP).
pub const DEFAULT_WEIGHT_PER_MINUTE: u32 = 1_200;
/// Documented order-count limit per 10 s (per account).
pub const DEFAULT_ORDERS_PER_10S: u32 = 100;
/// Pause after a 429 that carries no `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Ban assumed after a 418 without `Retry-After`: the documented minimum ban.
pub const DEFAULT_BAN: Duration = Duration::from_secs(120);
/// Listen keys live 60 min; the docs recommend a keepalive every 30 min.
pub const DEFAULT_LISTEN_KEY_KEEPALIVE: Duration = Duration::from_secs(30 * 60);
/// Depth snapshot size fetched for local books (weight 10).
pub const DEFAULT_DEPTH_LIMIT: u32 = 1_000;

/// Binance.US error codes gekko acts on.
pub mod codes {
    /// Internal error; unable to process your request.
    pub const DISCONNECTED: i64 = -1001;
    /// Not authorised to execute this request.
    pub const UNAUTHORIZED: i64 = -1002;
    /// Too many requests / too much weight.
    pub const TOO_MANY_REQUESTS: i64 = -1003;
    /// Unexpected response from the message bus; execution status unknown.
    pub const UNEXPECTED_RESP: i64 = -1006;
    /// Timeout waiting for the backend; execution status unknown.
    pub const TIMEOUT: i64 = -1007;
    /// Server busy.
    pub const SERVER_BUSY: i64 = -1008;
    /// Too many new orders.
    pub const TOO_MANY_ORDERS: i64 = -1015;
    /// Timestamp outside `recvWindow` (rejected before reaching the matching engine).
    pub const INVALID_TIMESTAMP: i64 = -1021;
    /// Signature not valid.
    pub const INVALID_SIGNATURE: i64 = -1022;
    /// Unknown symbol.
    pub const BAD_SYMBOL: i64 = -1121;
    /// A request parameter failed an exchange filter (`Filter failure: LOT_SIZE`, ...).
    pub const FILTER_FAILURE: i64 = -1013;
    /// Listen key does not exist.
    pub const INVALID_LISTEN_KEY: i64 = -1125;
    /// New order rejected.
    pub const NEW_ORDER_REJECTED: i64 = -2010;
    /// Cancel rejected (e.g. unknown order).
    pub const CANCEL_REJECTED: i64 = -2011;
    /// Order does not exist.
    pub const NO_SUCH_ORDER: i64 = -2013;
    /// API-key format invalid.
    pub const BAD_API_KEY_FMT: i64 = -2014;
    /// Invalid API key, IP or permissions.
    pub const REJECTED_MBX_KEY: i64 = -2015;
}

/// How a request is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Public.
    None,
    /// `X-MBX-APIKEY` only (`MARKET_DATA`, `USER_STREAM`).
    ApiKey,
    /// Key header + `timestamp` + `recvWindow` + `signature` (`TRADE`, `USER_DATA`).
    Signed,
}

/// Endpoint families, each with its own circuit breaker: a failing order path must not
/// stop market data, and vice versa.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Public market data and server time.
    Market,
    /// Signed account reads.
    Account,
    /// Order placement, query and cancel.
    Order,
    /// User-data stream listen keys.
    UserStream,
}

impl Family {
    /// Every family, in breaker-array order.
    pub const ALL: [Family; 4] = [
        Family::Market,
        Family::Account,
        Family::Order,
        Family::UserStream,
    ];

    /// The `family` metric label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Family::Market => "market",
            Family::Account => "account",
            Family::Order => "order",
            Family::UserStream => "user_stream",
        }
    }

    /// Index into per-family arrays.
    #[must_use]
    pub const fn index(self) -> usize {
        match self {
            Family::Market => 0,
            Family::Account => 1,
            Family::Order => 2,
            Family::UserStream => 3,
        }
    }
}

/// One REST endpoint: method, path, documented weight, security and family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// HTTP method.
    pub method: Method,
    /// Path under the base URL.
    pub path: &'static str,
    /// Documented request weight.
    pub weight: u32,
    /// Authentication.
    pub security: Security,
    /// Breaker family.
    pub family: Family,
    /// Whether it counts against the order-rate limit.
    pub counts_as_order: bool,
    /// The `endpoint` metric label.
    pub name: &'static str,
}

const fn ep(
    method: Method,
    path: &'static str,
    weight: u32,
    security: Security,
    family: Family,
    name: &'static str,
) -> Endpoint {
    Endpoint {
        method,
        path,
        weight,
        security,
        family,
        counts_as_order: false,
        name,
    }
}

/// `GET /api/v3/ping`, weight 1.
pub const PING: Endpoint = ep(
    Method::GET,
    "/api/v3/ping",
    1,
    Security::None,
    Family::Market,
    "ping",
);
/// `GET /api/v3/time`, weight 1.
pub const TIME: Endpoint = ep(
    Method::GET,
    "/api/v3/time",
    1,
    Security::None,
    Family::Market,
    "time",
);
/// `GET /api/v3/exchangeInfo`, weight 10.
pub const EXCHANGE_INFO: Endpoint = ep(
    Method::GET,
    "/api/v3/exchangeInfo",
    10,
    Security::None,
    Family::Market,
    "exchange_info",
);
/// `GET /api/v3/depth`; weight depends on `limit`, see [`depth_weight`].
pub const DEPTH: Endpoint = ep(
    Method::GET,
    "/api/v3/depth",
    1,
    Security::None,
    Family::Market,
    "depth",
);
/// `GET /api/v3/ticker/bookTicker` for one symbol, weight 1.
pub const BOOK_TICKER: Endpoint = ep(
    Method::GET,
    "/api/v3/ticker/bookTicker",
    1,
    Security::None,
    Family::Market,
    "book_ticker",
);
/// `GET /api/v3/account`, weight 10.
pub const ACCOUNT: Endpoint = ep(
    Method::GET,
    "/api/v3/account",
    10,
    Security::Signed,
    Family::Account,
    "account",
);
/// `POST /api/v3/order`, weight 1, counts as an order.
pub const ORDER_NEW: Endpoint = Endpoint {
    method: Method::POST,
    path: "/api/v3/order",
    weight: 1,
    security: Security::Signed,
    family: Family::Order,
    counts_as_order: true,
    name: "order_new",
};
/// `POST /api/v3/order/test`, weight 1 (validated, never sent to the engine).
pub const ORDER_TEST: Endpoint = ep(
    Method::POST,
    "/api/v3/order/test",
    1,
    Security::Signed,
    Family::Order,
    "order_test",
);
/// `GET /api/v3/order`, weight 2.
pub const ORDER_QUERY: Endpoint = ep(
    Method::GET,
    "/api/v3/order",
    2,
    Security::Signed,
    Family::Order,
    "order_query",
);
/// `DELETE /api/v3/order`, weight 1.
pub const ORDER_CANCEL: Endpoint = ep(
    Method::DELETE,
    "/api/v3/order",
    1,
    Security::Signed,
    Family::Order,
    "order_cancel",
);
/// `GET /api/v3/openOrders` with a symbol, weight 3 (40 without; gekko always sends one).
pub const OPEN_ORDERS: Endpoint = ep(
    Method::GET,
    "/api/v3/openOrders",
    3,
    Security::Signed,
    Family::Order,
    "open_orders",
);
/// `DELETE /api/v3/openOrders`, weight 1.
pub const CANCEL_OPEN_ORDERS: Endpoint = ep(
    Method::DELETE,
    "/api/v3/openOrders",
    1,
    Security::Signed,
    Family::Order,
    "cancel_open_orders",
);
/// `POST /api/v3/userDataStream`, weight 1, key header only.
pub const USER_STREAM_NEW: Endpoint = ep(
    Method::POST,
    "/api/v3/userDataStream",
    1,
    Security::ApiKey,
    Family::UserStream,
    "user_stream_new",
);
/// `PUT /api/v3/userDataStream`, weight 1.
pub const USER_STREAM_KEEPALIVE: Endpoint = ep(
    Method::PUT,
    "/api/v3/userDataStream",
    1,
    Security::ApiKey,
    Family::UserStream,
    "user_stream_keepalive",
);
/// `DELETE /api/v3/userDataStream`, weight 1.
pub const USER_STREAM_CLOSE: Endpoint = ep(
    Method::DELETE,
    "/api/v3/userDataStream",
    1,
    Security::ApiKey,
    Family::UserStream,
    "user_stream_close",
);

/// The documented weight of `GET /api/v3/depth` for a `limit`.
#[must_use]
pub const fn depth_weight(limit: u32) -> u32 {
    match limit {
        0..=100 => 1,
        101..=500 => 5,
        501..=1000 => 10,
        _ => 50,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_weights_follow_the_docs() {
        assert_eq!(depth_weight(5), 1);
        assert_eq!(depth_weight(100), 1);
        assert_eq!(depth_weight(500), 5);
        assert_eq!(depth_weight(1000), 10);
        assert_eq!(depth_weight(5000), 50);
    }

    #[test]
    fn only_order_submits_count_as_orders() {
        let endpoints = [
            ORDER_NEW,
            ORDER_TEST,
            ORDER_CANCEL,
            CANCEL_OPEN_ORDERS,
            ACCOUNT,
        ];
        let orders: Vec<&str> = endpoints
            .iter()
            .filter(|e| e.counts_as_order)
            .map(|e| e.name)
            .collect();
        assert_eq!(orders, ["order_new"]);
        for (i, f) in Family::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }
}
