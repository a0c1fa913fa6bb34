//! Turning HTTP transport failures into a [`NetError`] that says what is known.
//!
//! For a venue client the important question about a failed request is not "what went
//! wrong" but "could it have reached the venue?". A connect failure never left this host,
//! so even an order submit is definitively *not placed*; a timeout or a reset after the
//! request was written may have been executed, and an order in that state is *in flight*
//! and must be reconciled, never resubmitted (hummingbot#8457: orders the exchange had
//! accepted were marked failed during a DNS outage). [`NetError::may_have_been_sent`]
//! answers that question; [`NetError::is_retryable`] says whether an *idempotent* call may
//! be tried again.
//!
//! Bad responses keep their payload (truncated) so logs show what the venue actually said.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// The longest payload kept in an error, in bytes.
pub const MAX_ERROR_PAYLOAD: usize = 2048;

/// Why an HTTP exchange with a venue failed below the venue's own error semantics.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The request could not be built (bad URL, header). Nothing was sent.
    #[error("invalid request: {0}")]
    Request(String),
    /// Connecting (DNS, TCP, TLS) failed. Nothing was sent.
    #[error("connect failed: {0}")]
    Connect(#[source] reqwest::Error),
    /// No complete response within the timeout. The request may have been executed.
    #[error("request timed out after it may have been sent: {0}")]
    Timeout(#[source] reqwest::Error),
    /// The connection failed after the request may have been written (reset, broken pipe,
    /// truncated body). The request may have been executed.
    #[error("transport failed: {0}")]
    Transport(#[source] reqwest::Error),
    /// A non-success HTTP status. `body` is the (truncated) payload.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The response body, truncated to [`MAX_ERROR_PAYLOAD`].
        body: String,
        /// The `Retry-After` header, if any.
        retry_after: Option<Duration>,
    },
    /// A success status with a body that did not parse. Keeps the payload.
    #[error("malformed response ({reason}): {payload}")]
    Decode {
        /// What the parser said.
        reason: String,
        /// The offending payload, truncated to [`MAX_ERROR_PAYLOAD`].
        payload: String,
    },
}

impl NetError {
    /// Classifies a `reqwest` error.
    #[must_use]
    pub fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_builder() {
            NetError::Request(e.to_string())
        } else if e.is_connect() {
            // Checked before `is_timeout`: a connect timeout also never sent anything.
            NetError::Connect(e)
        } else if e.is_timeout() {
            NetError::Timeout(e)
        } else if let Some(status) = e.status() {
            NetError::Status {
                status: status.as_u16(),
                body: String::new(),
                retry_after: None,
            }
        } else {
            NetError::Transport(e)
        }
    }

    /// A decode error keeping (a truncated copy of) the payload.
    #[must_use]
    pub fn decode(reason: impl std::fmt::Display, payload: &str) -> Self {
        NetError::Decode {
            reason: reason.to_string(),
            payload: truncate(payload, MAX_ERROR_PAYLOAD).to_owned(),
        }
    }

    /// Whether an **idempotent** call may be retried: transport trouble, timeouts, 5xx and
    /// 408. Never use this to decide whether to resubmit an order.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            NetError::Connect(_) | NetError::Timeout(_) | NetError::Transport(_) => true,
            NetError::Status { status, .. } => *status >= 500 || *status == 408,
            NetError::Request(_) | NetError::Decode { .. } => false,
        }
    }

    /// Whether the venue may have received (and executed) the request. `false` only when
    /// it certainly never left this host.
    #[must_use]
    pub fn may_have_been_sent(&self) -> bool {
        !matches!(self, NetError::Request(_) | NetError::Connect(_))
    }

    /// Whether the failure is a server-side (5xx) status, whose execution status is unknown.
    #[must_use]
    pub fn is_server_error(&self) -> bool {
        matches!(self, NetError::Status { status, .. } if *status >= 500)
    }
}

/// Truncates `s` to at most `max` bytes on a char boundary.
#[must_use]
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Parses a `Retry-After` header given in seconds (the form venues use). HTTP-date values
/// are not used by the venues gekko speaks and read as absent.
#[must_use]
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(7.0 * 86_400.0)))
}

/// Reads a header as an unsigned integer (e.g. `X-MBX-USED-WEIGHT-1M`).
#[must_use]
pub fn header_u32(headers: &HeaderMap, name: &str) -> Option<u32> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;

    #[test]
    fn retry_after_reads_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("-3"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn header_u32_parses_or_is_absent() {
        let mut h = HeaderMap::new();
        h.insert("x-mbx-used-weight-1m", HeaderValue::from_static(" 42 "));
        assert_eq!(header_u32(&h, "X-MBX-USED-WEIGHT-1M"), Some(42));
        h.insert("x-mbx-used-weight-1m", HeaderValue::from_static("lots"));
        assert_eq!(header_u32(&h, "x-mbx-used-weight-1m"), None);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
        let e = NetError::decode("bad", &"x".repeat(10_000));
        assert!(
            matches!(e, NetError::Decode { ref payload, .. } if payload.len() == MAX_ERROR_PAYLOAD)
        );
        assert!(!e.is_retryable());
        assert!(e.may_have_been_sent());
    }

    #[test]
    fn status_classification() {
        let s = |status| NetError::Status {
            status,
            body: String::new(),
            retry_after: None,
        };
        assert!(s(503).is_retryable() && s(503).is_server_error());
        assert!(s(408).is_retryable());
        assert!(!s(400).is_retryable());
        assert!(s(400).may_have_been_sent());
    }

    #[tokio::test]
    async fn connect_failures_are_never_sent_and_timeouts_may_have_been() {
        // A port nothing listens on: bind, learn the port, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = reqwest::Client::new();
        let e = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        let e = NetError::from_reqwest(e);
        assert!(matches!(e, NetError::Connect(_)), "{e:?}");
        assert!(!e.may_have_been_sent());
        assert!(e.is_retryable());

        // A server that accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (_sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let e = client
            .get(format!("http://{addr}/"))
            .timeout(Duration::from_millis(200))
            .send()
            .await
            .unwrap_err();
        let e = NetError::from_reqwest(e);
        assert!(matches!(e, NetError::Timeout(_)), "{e:?}");
        assert!(e.may_have_been_sent());
        server.abort();
    }
}
