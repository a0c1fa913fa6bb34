//! Hosts, paths, headers and the endpoint table.
//!
//! Every REST call goes through an [`Endpoint`] so that whether it is signed decides
//! which limiter it is charged to (private ~30/s per key, public ~10/s per IP, reference
//! 1.5), its [`Family`] picks the circuit breaker, and whether it is idempotent decides
//! whether the client may retry it.

use reqwest::Method;

/// The venue id used in metric labels.
pub const VENUE: &str = "coinbase";
/// Production REST base URL.
pub const REST_BASE: &str = "https://api.coinbase.com";
/// Production market-data websocket.
pub const WS_MARKET_URL: &str = "wss://advanced-trade-ws.coinbase.com";
/// Production user-order-data websocket.
pub const WS_USER_URL: &str = "wss://advanced-trade-ws-user.coinbase.com";
/// Every REST path starts with this.
pub const API_PREFIX: &str = "/api/v3/brokerage";

/// Request budget of the current window.
pub const HEADER_RATELIMIT_LIMIT: &str = "x-ratelimit-limit";
/// Requests left in the current window.
pub const HEADER_RATELIMIT_REMAINING: &str = "x-ratelimit-remaining";
/// When the window resets. The reference leaves open whether this is an epoch second or
/// seconds-until (1.5, marked \[U\]); the client accepts both (a value above 10^9 is an epoch).
pub const HEADER_RATELIMIT_RESET: &str = "x-ratelimit-reset";

/// Documented private request rate per key (reference 1.5).
pub const DEFAULT_PRIVATE_RATE_PER_S: u32 = 30;
/// Documented public request rate per IP (reference 1.5).
pub const DEFAULT_PUBLIC_RATE_PER_S: u32 = 10;
/// Page size asked of list endpoints (the reference's commonly cited maximum, 250, is
/// unconfirmed; the venue caps a larger ask itself).
pub const DEFAULT_PAGE_SIZE: u32 = 250;
/// Most ids one `batch_cancel` carries (commonly 100, unconfirmed).
pub const MAX_BATCH_CANCEL: usize = 100;
/// Most pages one listing follows before giving up (a cursor loop guard).
pub const MAX_PAGES: usize = 1_000;

/// Endpoint families, each with its own circuit breaker: a failing order path must not
/// stop market data, and vice versa.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Products, books, server time.
    Market,
    /// Accounts.
    Account,
    /// Order placement, query, cancel and fills.
    Order,
}

impl Family {
    /// Every family, in breaker-array order.
    pub const ALL: [Family; 3] = [Family::Market, Family::Account, Family::Order];

    /// The `family` metric label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Family::Market => "market",
            Family::Account => "account",
            Family::Order => "order",
        }
    }

    /// Index into per-family arrays.
    #[must_use]
    pub const fn index(self) -> usize {
        match self {
            Family::Market => 0,
            Family::Account => 1,
            Family::Order => 2,
        }
    }
}

/// One REST endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// HTTP method.
    pub method: Method,
    /// Path under the base URL; for [`Endpoint::with_id`] endpoints, the part before the id.
    pub path: &'static str,
    /// Whether a JWT is sent (and the private limiter charged).
    pub private: bool,
    /// Breaker family.
    pub family: Family,
    /// Whether repeating the call changes nothing at the venue (GETs): only those are
    /// retried.
    pub idempotent: bool,
    /// The `endpoint` metric label.
    pub name: &'static str,
}

impl Endpoint {
    /// The path of an endpoint that ends in an id (`/products/{product_id}`).
    #[must_use]
    pub fn with_id(&self, id: &str) -> String {
        format!("{}{id}", self.path)
    }
}

const fn get(path: &'static str, private: bool, family: Family, name: &'static str) -> Endpoint {
    Endpoint {
        method: Method::GET,
        path,
        private,
        family,
        idempotent: true,
        name,
    }
}

const fn post(path: &'static str, name: &'static str) -> Endpoint {
    Endpoint {
        method: Method::POST,
        path,
        private: true,
        family: Family::Order,
        idempotent: false,
        name,
    }
}

/// `GET /time`, public.
pub const TIME: Endpoint = get("/api/v3/brokerage/time", false, Family::Market, "time");
/// `GET /accounts` (cursor paginated).
pub const ACCOUNTS: Endpoint = get(
    "/api/v3/brokerage/accounts",
    true,
    Family::Account,
    "accounts",
);
/// `GET /products`.
pub const PRODUCTS: Endpoint = get(
    "/api/v3/brokerage/products",
    true,
    Family::Market,
    "products",
);
/// `GET /products/{product_id}`.
pub const PRODUCT: Endpoint = get(
    "/api/v3/brokerage/products/",
    true,
    Family::Market,
    "product",
);
/// `GET /best_bid_ask?product_ids=..`.
pub const BEST_BID_ASK: Endpoint = get(
    "/api/v3/brokerage/best_bid_ask",
    true,
    Family::Market,
    "best_bid_ask",
);
/// `GET /product_book?product_id=..&limit=..`.
pub const PRODUCT_BOOK: Endpoint = get(
    "/api/v3/brokerage/product_book",
    true,
    Family::Market,
    "product_book",
);
/// `POST /orders`: never retried.
pub const CREATE_ORDER: Endpoint = post("/api/v3/brokerage/orders", "create_order");
/// `POST /orders/batch_cancel`: not retried by the client (a cancel is safe to repeat,
/// but the caller decides, knowing what the first answer was).
pub const BATCH_CANCEL: Endpoint = post("/api/v3/brokerage/orders/batch_cancel", "batch_cancel");
/// `GET /orders/historical/batch` (cursor paginated).
pub const ORDERS_BATCH: Endpoint = get(
    "/api/v3/brokerage/orders/historical/batch",
    true,
    Family::Order,
    "orders_batch",
);
/// `GET /orders/historical/{order_id}`.
pub const ORDER: Endpoint = get(
    "/api/v3/brokerage/orders/historical/",
    true,
    Family::Order,
    "order",
);
/// `GET /orders/historical/fills` (cursor paginated).
pub const FILLS: Endpoint = get(
    "/api/v3/brokerage/orders/historical/fills",
    true,
    Family::Order,
    "fills",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_are_idempotent_and_only_time_is_public() {
        let all = [
            TIME,
            ACCOUNTS,
            PRODUCTS,
            PRODUCT,
            BEST_BID_ASK,
            PRODUCT_BOOK,
            CREATE_ORDER,
            BATCH_CANCEL,
            ORDERS_BATCH,
            ORDER,
            FILLS,
        ];
        for e in &all {
            assert_eq!(e.idempotent, e.method == Method::GET, "{}", e.name);
            assert_eq!(e.private, e.name != "time", "{}", e.name);
            assert!(e.path.starts_with(API_PREFIX), "{}", e.name);
        }
        assert_eq!(
            PRODUCT.with_id("BTC-USD"),
            "/api/v3/brokerage/products/BTC-USD"
        );
        for (i, f) in Family::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }
}
