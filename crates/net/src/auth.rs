//! The request-auth hook: one trait for the three ways gekko's venues authenticate REST.
//!
//! The venues disagree on *where* a credential goes, so the hook sees the whole outgoing
//! request and may rewrite any part of it:
//!
//! * **Query signature** (Binance.US): `timestamp`, `recvWindow` and a signature over
//!   `totalParams` (query ‖ body) are appended to the query or body. Lives in the venue crate
//!   and signs through the [`Signer`](crate::Signer) trait.
//! * **Per-request JWT header** (Coinbase): a fresh short-lived token, whose claims name the
//!   method, host and path, goes in `Authorization: Bearer`. [`PerRequestBearer`] is the shape;
//!   the venue supplies the token builder.
//! * **Static bearer token** (OANDA): `Authorization: Bearer <token>` on every request,
//!   [`BearerToken`].
//! * The fourth model, a token inside websocket subscribe messages, is not an HTTP concern:
//!   see [`StreamHooks::subscribe_messages`](crate::stream::StreamHooks::subscribe_messages).
//!
//! The hook runs inside the REST pipeline *after* the base URL is chosen (a fallback host
//! changes what a JWT must claim) and *after* rate-limit budget is granted (a signed
//! timestamp must not age while the request waits), immediately before sending.
//!
//! Hooks are synchronous: every scheme above is pure computation over key material already
//! in memory, and a sync hook cannot hold a request open across an `.await`.

use std::fmt;

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};

use crate::http::NetError;

/// An outgoing request as the auth hook sees it. Every field may be rewritten.
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    /// HTTP method.
    pub method: Method,
    /// Scheme and authority, without a trailing slash: `https://api.binance.us`.
    pub base_url: String,
    /// Path under the base URL, starting with `/`.
    pub path: String,
    /// The encoded query string, without `?` (empty for none). Sent exactly as is.
    pub query: String,
    /// The request body (empty for none). Sent exactly as is.
    pub body: String,
    /// Request headers (a `Content-Type` for the body belongs here).
    pub headers: HeaderMap,
}

impl OutgoingRequest {
    /// A request with no query, body or headers.
    #[must_use]
    pub fn new(method: Method, base_url: &str, path: &str) -> Self {
        Self {
            method,
            base_url: base_url.trim_end_matches('/').to_owned(),
            path: path.to_owned(),
            query: String::new(),
            body: String::new(),
            headers: HeaderMap::new(),
        }
    }

    /// The host (and port, if any) of [`Self::base_url`]: `api.coinbase.com`. Empty when the
    /// base URL has no authority.
    #[must_use]
    pub fn host(&self) -> &str {
        let rest = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, r)| r);
        rest.split(['/', '?']).next().unwrap_or_default()
    }

    /// The full URL: base, path and (when non-empty) `?query`.
    #[must_use]
    pub fn url(&self) -> String {
        if self.query.is_empty() {
            format!("{}{}", self.base_url, self.path)
        } else {
            format!("{}{}?{}", self.base_url, self.path, self.query)
        }
    }

    /// Sets a header.
    ///
    /// # Errors
    /// [`AuthError`] when the name or value is not a legal header (e.g. a token with a
    /// newline); the message never contains the value.
    pub fn set_header(&mut self, name: &str, value: &str) -> Result<(), AuthError> {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| AuthError::new(format!("illegal header name {name:?}")))?;
        let mut v = HeaderValue::from_str(value)
            .map_err(|_| AuthError::new(format!("illegal value for header {name}")))?;
        v.set_sensitive(true);
        self.headers.insert(n, v);
        Ok(())
    }

    /// Appends `key=value` (already encoded) to the query string.
    pub fn push_query(&mut self, key: &str, value: &str) {
        if !self.query.is_empty() {
            self.query.push('&');
        }
        self.query.push_str(key);
        self.query.push('=');
        self.query.push_str(value);
    }

    /// Builds the `reqwest` request on `client`.
    pub fn to_reqwest(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        let mut req = client
            .request(self.method.clone(), self.url())
            .headers(self.headers.clone());
        if !self.body.is_empty() {
            req = req.body(self.body.clone());
        }
        req
    }
}

/// An auth hook failed; nothing was sent. The message never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request authentication failed: {0}")]
pub struct AuthError(pub String);

impl AuthError {
    /// An error with a message (which must not contain secrets).
    #[must_use]
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl From<AuthError> for NetError {
    fn from(e: AuthError) -> Self {
        NetError::Request(e.to_string())
    }
}

/// Authenticates one outgoing request by rewriting it. See the module docs.
///
/// Implementations hold key material; their `Debug` must redact it.
pub trait RequestAuth: Send + Sync + fmt::Debug {
    /// Rewrites `req` so the venue accepts it (headers, query parameters, body).
    ///
    /// # Errors
    /// [`AuthError`] when the request cannot be authenticated (bad key, illegal header
    /// value); the pipeline then sends nothing.
    fn authorize(&self, req: &mut OutgoingRequest) -> Result<(), AuthError>;
}

impl<A: RequestAuth + ?Sized> RequestAuth for std::sync::Arc<A> {
    fn authorize(&self, req: &mut OutgoingRequest) -> Result<(), AuthError> {
        (**self).authorize(req)
    }
}

impl<A: RequestAuth + ?Sized> RequestAuth for Box<A> {
    fn authorize(&self, req: &mut OutgoingRequest) -> Result<(), AuthError> {
        (**self).authorize(req)
    }
}

/// A static `Authorization: Bearer <token>` on every request (OANDA's personal access
/// token).
pub struct BearerToken {
    token: SecretString,
}

impl BearerToken {
    /// A hook sending `token`.
    #[must_use]
    pub fn new(token: SecretString) -> Self {
        Self { token }
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerToken")
            .field("token", &"<redacted>")
            .finish()
    }
}

impl RequestAuth for BearerToken {
    fn authorize(&self, req: &mut OutgoingRequest) -> Result<(), AuthError> {
        let token = self.token.expose_secret();
        if token.trim().is_empty() {
            return Err(AuthError::new("the bearer token is empty"));
        }
        req.set_header(AUTHORIZATION.as_str(), &format!("Bearer {token}"))
    }
}

/// A fresh bearer token per request, built from the request itself (Coinbase's JWT whose
/// `uri` claim is `"<METHOD> <host><path>"`, valid for two minutes). The builder is the
/// venue's; this type only puts the token in `Authorization: Bearer`.
pub struct PerRequestBearer<F> {
    build: F,
}

impl<F> PerRequestBearer<F>
where
    F: Fn(&OutgoingRequest) -> Result<String, AuthError> + Send + Sync,
{
    /// A hook calling `build` for every request.
    #[must_use]
    pub fn new(build: F) -> Self {
        Self { build }
    }
}

impl<F> fmt::Debug for PerRequestBearer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerRequestBearer")
            .field("key", &"<redacted>")
            .finish()
    }
}

impl<F> RequestAuth for PerRequestBearer<F>
where
    F: Fn(&OutgoingRequest) -> Result<String, AuthError> + Send + Sync,
{
    fn authorize(&self, req: &mut OutgoingRequest) -> Result<(), AuthError> {
        let token = (self.build)(req)?;
        req.set_header(AUTHORIZATION.as_str(), &format!("Bearer {token}"))
    }
}

/// A static header (an API key header such as `X-MBX-APIKEY`).
pub struct ApiKeyHeader {
    name: HeaderName,
    key: SecretString,
}

impl ApiKeyHeader {
    /// A hook setting `name: key`.
    ///
    /// # Errors
    /// [`AuthError`] when `name` is not a legal header name.
    pub fn new(name: &str, key: SecretString) -> Result<Self, AuthError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| AuthError::new(format!("illegal header name {name:?}")))?;
        Ok(Self { name, key })
    }
}

impl fmt::Debug for ApiKeyHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyHeader")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl RequestAuth for ApiKeyHeader {
    fn authorize(&self, req: &mut OutgoingRequest) -> Result<(), AuthError> {
        req.set_header(self.name.as_str(), self.key.expose_secret())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> OutgoingRequest {
        OutgoingRequest::new(Method::GET, "https://api.coinbase.com/", "/api/v3/x")
    }

    #[test]
    fn host_and_url() {
        let mut r = req();
        assert_eq!(r.host(), "api.coinbase.com");
        assert_eq!(r.url(), "https://api.coinbase.com/api/v3/x");
        r.push_query("a", "1");
        r.push_query("b", "2");
        assert_eq!(r.url(), "https://api.coinbase.com/api/v3/x?a=1&b=2");
        let r = OutgoingRequest::new(Method::GET, "http://127.0.0.1:8080", "/");
        assert_eq!(r.host(), "127.0.0.1:8080");
    }

    #[test]
    fn static_bearer_sets_the_header_and_redacts() {
        let auth = BearerToken::new(SecretString::from("tok-123"));
        let mut r = req();
        auth.authorize(&mut r).unwrap();
        assert_eq!(r.headers[AUTHORIZATION], "Bearer tok-123");
        assert!(!format!("{auth:?}").contains("tok-123"));
        let empty = BearerToken::new(SecretString::from(" "));
        assert!(empty.authorize(&mut req()).is_err());
    }

    /// A toy JWT builder: the claims a Coinbase token carries, unsigned, plus a counter so
    /// each token is fresh.
    #[test]
    fn per_request_bearer_builds_a_fresh_token_from_the_request() {
        let n = std::sync::atomic::AtomicU32::new(0);
        let auth = PerRequestBearer::new(move |r: &OutgoingRequest| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(format!("uri={} {}{}.nonce={i}", r.method, r.host(), r.path))
        });
        let mut a = req();
        auth.authorize(&mut a).unwrap();
        assert_eq!(
            a.headers[AUTHORIZATION],
            "Bearer uri=GET api.coinbase.com/api/v3/x.nonce=0"
        );
        let mut b = req();
        b.base_url = "https://fallback.example".to_owned();
        auth.authorize(&mut b).unwrap();
        assert_eq!(
            b.headers[AUTHORIZATION],
            "Bearer uri=GET fallback.example/api/v3/x.nonce=1"
        );
        let boxed: Box<dyn RequestAuth> = Box::new(auth);
        assert!(format!("{boxed:?}").contains("redacted"));
    }

    #[test]
    fn illegal_values_are_errors_without_the_value() {
        let auth = PerRequestBearer::new(|_: &OutgoingRequest| Ok("bad\nsecret".to_owned()));
        let e = auth.authorize(&mut req()).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(ApiKeyHeader::new("bad header", SecretString::from("k")).is_err());
        let k = ApiKeyHeader::new("X-MBX-APIKEY", SecretString::from("key-1")).unwrap();
        let mut r = req();
        k.authorize(&mut r).unwrap();
        assert_eq!(r.headers["x-mbx-apikey"], "key-1");
        assert!(!format!("{k:?}").contains("key-1"));
    }
}
