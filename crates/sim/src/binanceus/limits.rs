//! Request-weight and order-count limits, 429 escalation and IP bans.
//!
//! The venue counts request weight per IP in one-minute windows and order counts per
//! account in 10-second and 1-day windows. A client that exceeds the weight gets 429 with
//! `Retry-After`; one that keeps sending before `Retry-After` elapses is banned with 418
//! (bans "scale from 2 minutes to 3 days"; the simulator uses 2 minutes). Exceeding the
//! order count gives 429 -1015 *without* `Retry-After`.
//!
//! All clients of the simulator share one "IP" (everything is loopback). Windows are
//! aligned to the simulator's start rather than to the calendar minute, so a test that
//! starts a fresh simulator has a full window ahead of it and cannot flake on a minute
//! boundary; clients that honour the headers cannot tell the difference.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::error::ApiError;
use crate::harness::fault::deadline;

const WEIGHT_WINDOW: Duration = Duration::from_secs(60);
const ORDER_WINDOW: Duration = Duration::from_secs(10);
const DAY: Duration = Duration::from_secs(86_400);
/// Violations of a pending `Retry-After` that trigger a ban.
const VIOLATIONS_TO_BAN: u32 = 3;
/// Length of an escalation ban.
const ESCALATION_BAN: Duration = Duration::from_secs(120);
/// Orders per day per account (documented example value).
pub(crate) const ORDERS_PER_DAY: u32 = 200_000;

#[derive(Debug, Default, Clone, Copy)]
struct OrderCounts {
    window_10s: u64,
    count_10s: u32,
    day: u64,
    count_day: u32,
}

/// Counts of an account's orders in the current windows, for the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrderCount {
    /// `X-MBX-ORDER-COUNT-10S`.
    pub ten_seconds: u32,
    /// `X-MBX-ORDER-COUNT-1D`.
    pub day: u32,
}

/// What the limiter decided about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admission {
    /// `X-MBX-USED-WEIGHT-1M`, including this request.
    pub used_weight: u32,
    /// `Err` with the 429/418 answer when the request must not be served.
    pub verdict: Result<(), ApiError>,
}

/// The limiter state (one per simulator, behind a mutex).
#[derive(Debug)]
pub(crate) struct Limits {
    origin: Instant,
    weight_limit: u32,
    orders_per_10s: u32,
    window: u64,
    used: u32,
    retry_until: Option<Instant>,
    violations: u32,
    ban_until: Option<Instant>,
    storm_until: Option<Instant>,
    orders: HashMap<String, OrderCounts>,
}

fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs();
    if d.subsec_nanos() > 0 {
        s + 1
    } else {
        s.max(1)
    }
}

fn index(origin: Instant, now: Instant, window: Duration) -> u64 {
    let elapsed = now.saturating_duration_since(origin).as_millis();
    u64::try_from(elapsed / window.as_millis().max(1)).unwrap_or(u64::MAX)
}

impl Limits {
    /// A limiter whose windows start now.
    #[must_use]
    pub(crate) fn new(weight_limit: u32, orders_per_10s: u32) -> Self {
        Self {
            origin: Instant::now(),
            weight_limit,
            orders_per_10s,
            window: 0,
            used: 0,
            retry_until: None,
            violations: 0,
            ban_until: None,
            storm_until: None,
            orders: HashMap::new(),
        }
    }

    /// The REQUEST_WEIGHT limit.
    #[must_use]
    pub(crate) fn weight_limit(&self) -> u32 {
        self.weight_limit
    }

    /// The ORDERS per 10 s limit.
    #[must_use]
    pub(crate) fn orders_per_10s(&self) -> u32 {
        self.orders_per_10s
    }

    /// Starts (or extends) a rate-limit storm.
    pub(crate) fn storm(&mut self, d: Duration) {
        let until = deadline(d);
        self.storm_until = Some(self.storm_until.map_or(until, |u| u.max(until)));
    }

    /// Bans the IP for `d`.
    pub(crate) fn ban(&mut self, d: Duration) {
        let until = deadline(d);
        self.ban_until = Some(self.ban_until.map_or(until, |u| u.max(until)));
    }

    fn banned_answer(&self, now: Instant, server_ms: i64) -> Option<ApiError> {
        let until = self.ban_until.filter(|u| now < *u)?;
        let left = until - now;
        let until_ms = server_ms + i64::try_from(left.as_millis()).unwrap_or(i64::MAX / 2);
        Some(ApiError::banned(until_ms, ceil_secs(left)))
    }

    /// Charges `weight` for one request and decides whether it may be served.
    /// `server_ms` is the venue clock, used in the ban message.
    pub(crate) fn admit(&mut self, weight: u32, server_ms: i64) -> Admission {
        let now = Instant::now();
        let window = index(self.origin, now, WEIGHT_WINDOW);
        if window != self.window {
            self.window = window;
            self.used = 0;
        }
        self.used = self.used.saturating_add(weight);
        let used_weight = self.used;
        let verdict = self.verdict(now, server_ms);
        Admission {
            used_weight,
            verdict,
        }
    }

    fn verdict(&mut self, now: Instant, server_ms: i64) -> Result<(), ApiError> {
        if let Some(e) = self.banned_answer(now, server_ms) {
            return Err(e);
        }
        match self.retry_until {
            Some(until) if now < until => {
                // The client ignored a pending Retry-After.
                self.violations += 1;
                if self.violations >= VIOLATIONS_TO_BAN {
                    self.violations = 0;
                    self.retry_until = None;
                    self.ban(ESCALATION_BAN);
                    return Err(self
                        .banned_answer(now, server_ms)
                        .unwrap_or_else(ApiError::unknown));
                }
                return Err(ApiError::too_much_weight(
                    self.weight_limit,
                    ceil_secs(until - now),
                ));
            }
            Some(_) => {
                self.retry_until = None;
                self.violations = 0;
            }
            None => {}
        }
        if self.storm_until.is_some_and(|u| now < u) {
            self.retry_until = Some(now + Duration::from_secs(1));
            return Err(ApiError::too_much_weight(self.weight_limit, 1));
        }
        if self.used > self.weight_limit {
            let window_end = u32::try_from(self.window + 1)
                .ok()
                .and_then(|n| WEIGHT_WINDOW.checked_mul(n))
                .and_then(|d| self.origin.checked_add(d))
                .unwrap_or(now + WEIGHT_WINDOW);
            let left = window_end.saturating_duration_since(now);
            self.retry_until = Some(window_end);
            return Err(ApiError::too_much_weight(
                self.weight_limit,
                ceil_secs(left),
            ));
        }
        Ok(())
    }

    /// Counts one new order of `api_key`.
    ///
    /// # Errors
    /// 429 -1015 (no `Retry-After`) when the 10-second count exceeds the limit; the
    /// counts are returned either way for the headers.
    pub(crate) fn count_order(&mut self, api_key: &str) -> (OrderCount, Result<(), ApiError>) {
        let now = Instant::now();
        let w10 = index(self.origin, now, ORDER_WINDOW);
        let day = index(self.origin, now, DAY);
        let c = self.orders.entry(api_key.to_owned()).or_default();
        if c.window_10s != w10 {
            c.window_10s = w10;
            c.count_10s = 0;
        }
        if c.day != day {
            c.day = day;
            c.count_day = 0;
        }
        c.count_10s = c.count_10s.saturating_add(1);
        c.count_day = c.count_day.saturating_add(1);
        let counts = OrderCount {
            ten_seconds: c.count_10s,
            day: c.count_day,
        };
        let verdict = if c.count_10s > self.orders_per_10s || c.count_day > ORDERS_PER_DAY {
            Err(ApiError::too_many_orders(self.orders_per_10s))
        } else {
            Ok(())
        };
        (counts, verdict)
    }

    /// Current order counts of `api_key` (for `GET /api/v3/rateLimit/order`).
    #[must_use]
    pub(crate) fn order_counts(&self, api_key: &str) -> OrderCount {
        let now = Instant::now();
        let w10 = index(self.origin, now, ORDER_WINDOW);
        let day = index(self.origin, now, DAY);
        self.orders.get(api_key).map_or(
            OrderCount {
                ten_seconds: 0,
                day: 0,
            },
            |c| OrderCount {
                ten_seconds: if c.window_10s == w10 { c.count_10s } else { 0 },
                day: if c.day == day { c.count_day } else { 0 },
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[tokio::test(start_paused = true)]
    async fn weight_then_429_then_418_when_retry_after_is_ignored() {
        let mut l = Limits::new(10, 100);
        for i in 1..=10 {
            let a = l.admit(1, 0);
            assert_eq!(a.used_weight, i);
            assert_eq!(a.verdict, Ok(()));
        }
        let e = l.admit(1, 0).verdict.expect_err("429");
        assert_eq!((e.status, e.code), (StatusCode::TOO_MANY_REQUESTS, -1003));
        assert!(e.retry_after.is_some_and(|s| (1..=60).contains(&s)));
        // Two ignored Retry-Afters are still 429s; the third is a ban.
        assert_eq!(
            l.admit(1, 0).verdict.expect_err("v1").status,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            l.admit(1, 0).verdict.expect_err("v2").status,
            StatusCode::TOO_MANY_REQUESTS
        );
        let ban = l.admit(1, 0).verdict.expect_err("ban");
        assert_eq!((ban.status, ban.code), (StatusCode::IM_A_TEAPOT, -1003));
        assert_eq!(ban.retry_after, Some(120));
        // The next window does not lift a ban.
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(
            l.admit(1, 0).verdict.expect_err("still").status,
            StatusCode::IM_A_TEAPOT
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(l.admit(1, 0).verdict, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn storm_respected_retry_after_never_bans() {
        let mut l = Limits::new(1200, 100);
        l.storm(Duration::from_secs(5));
        for _ in 0..4 {
            let e = l.admit(1, 0).verdict.expect_err("storm");
            assert_eq!(e.retry_after, Some(1));
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(l.admit(1, 0).verdict, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn order_count_limit_has_no_retry_after() {
        let mut l = Limits::new(1200, 2);
        assert!(l.count_order("k").1.is_ok());
        assert!(l.count_order("k").1.is_ok());
        let (c, v) = l.count_order("k");
        let e = v.expect_err("-1015");
        assert_eq!((e.code, e.retry_after, c.ten_seconds), (-1015, None, 3));
        assert!(l.count_order("other").1.is_ok());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(l.count_order("k").1.is_ok());
        assert_eq!(
            l.order_counts("k"),
            OrderCount {
                ten_seconds: 1,
                day: 4
            }
        );
    }
}
