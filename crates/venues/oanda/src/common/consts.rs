//! Hosts, paths and headers of the v20 API (reference §3.1–3.3).

/// Practice (demo) REST host.
pub const PRACTICE_REST: &str = "https://api-fxpractice.oanda.com";
/// Practice (demo) stream host.
pub const PRACTICE_STREAM: &str = "https://stream-fxpractice.oanda.com";
/// Live (fxTrade) REST host.
pub const LIVE_REST: &str = "https://api-fxtrade.oanda.com";
/// Live (fxTrade) stream host.
pub const LIVE_STREAM: &str = "https://stream-fxtrade.oanda.com";

/// The header that picks the DateTime format of requests and answers.
pub const DATETIME_HEADER: &str = "Accept-Datetime-Format";
/// The format gekko asks for: nanosecond RFC 3339 strings.
pub const DATETIME_RFC3339: &str = "RFC3339";

/// Requests per second spent by default: the best-practices figure for an established
/// connection, under the 120/s per-IP limit.
pub const DEFAULT_RATE_PER_S: u32 = 100;
/// The documented per-IP REST limit.
pub const MAX_RATE_PER_S: u32 = 120;
