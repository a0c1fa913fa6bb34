//! The `AuthLayer`: authentication and authorization for every gRPC call.
//!
//! It is a tower layer over the whole tonic server (`GrpcServer::serve` applies it to the
//! router, not per service), so a service cannot be added without it. Per call, in order:
//!
//! 1. Look the path up in [`METHODS`](crate::methods::METHODS); no row is
//!    `PERMISSION_DENIED`. Health and reflection pass untouched when `open=` says so.
//! 2. With no token configured, auth is off: the call passes as `anonymous`, except that
//!    `read_only` still refuses state-changing methods.
//! 3. A peer that has used up its failures this minute gets `RESOURCE_EXHAUSTED`; its
//!    token is not even looked at.
//! 4. `authorization: Bearer <token>` is hashed and compared in constant time; missing or
//!    unknown is `UNAUTHENTICATED` and counts as a failure.
//! 5. A token not in `allowed_clients` (when that is set) is `PERMISSION_DENIED`; so is
//!    every state-changing method under `read_only` (checked after authentication, so an
//!    anonymous caller learns nothing about the mode), and a role below the method's.
//! 6. On a second-factor method, a token with a TOTP secret must send a current code in
//!    `x-gekko-totp`, each code once.
//! 7. The [`Caller`] goes into the request's extensions for the handler to audit.
//!
//! Every refusal is counted in `gekko_auth_failures_total{reason}`, logged (name, method,
//! peer and reason: never the token or code) and handed to the [`AuthObserver`].

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use gekko_config::{AccessControl, OpenServices, Role};
use http::HeaderMap;
use tonic::Status;
use tonic::transport::server::TcpConnectInfo;

use crate::limiter::FailureLimiter;
use crate::methods::{MethodRule, OpenGroup, rule};
use crate::token::{BadTokenConfig, TokenSet};
use crate::totp::{Totp, unix_now};

/// The metadata header that carries the TOTP code.
pub const TOTP_HEADER: &str = "x-gekko-totp";

/// The name of the caller when auth is off or the service is open.
pub const ANONYMOUS: &str = "anonymous";

/// Who made a call that the layer let through; in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name, or [`ANONYMOUS`].
    pub name: String,
    /// The token's role. With auth off, `admin` (everything is allowed); on an open
    /// health or reflection call, `viewer`.
    pub role: Role,
}

impl Caller {
    /// The caller of an unauthenticated call with the given effective role.
    #[must_use]
    pub fn anonymous(role: Role) -> Self {
        Self {
            name: ANONYMOUS.to_owned(),
            role,
        }
    }

    /// The caller the layer recorded on a tonic request, if it went through one.
    #[must_use]
    pub fn of<T>(request: &tonic::Request<T>) -> Option<&Self> {
        request.extensions().get::<Self>()
    }

    /// The caller recorded in HTTP extensions, if any.
    #[must_use]
    pub fn from_extensions(extensions: &http::Extensions) -> Option<&Self> {
        extensions.get::<Self>()
    }
}

/// Why a call was refused; the `reason` label of `gekko_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// No `authorization: Bearer` header.
    MissingToken,
    /// A token that matches no configured hash.
    InvalidToken,
    /// A valid token whose name is not in `allowed_clients`.
    ClientNotAllowed,
    /// A method without a row in the table.
    UnknownMethod,
    /// A state-changing method while `read_only` is set.
    ReadOnly,
    /// The token's role is below the method's.
    RoleTooLow,
    /// A second-factor method called without `x-gekko-totp`.
    TotpRequired,
    /// A TOTP code that is not current.
    TotpInvalid,
    /// A TOTP code (or an older one) that was already used.
    TotpReplayed,
    /// The peer used up its failures for this minute.
    RateLimited,
}

impl DenyReason {
    /// The metric label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::ClientNotAllowed => "client_not_allowed",
            Self::UnknownMethod => "unknown_method",
            Self::ReadOnly => "read_only",
            Self::RoleTooLow => "role_too_low",
            Self::TotpRequired => "totp_required",
            Self::TotpInvalid => "totp_invalid",
            Self::TotpReplayed => "totp_replayed",
            Self::RateLimited => "rate_limited",
        }
    }

    /// Whether this counts against the peer's failure budget: guesses at a token or a
    /// code do; a valid token asking for too much does not.
    #[must_use]
    pub const fn counts_as_failure(self) -> bool {
        matches!(
            self,
            Self::MissingToken | Self::InvalidToken | Self::TotpInvalid | Self::TotpReplayed
        )
    }
}

impl std::fmt::Display for DenyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused call, as the [`AuthObserver`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedCall {
    /// The peer's IP, when the transport knows it.
    pub peer: Option<IpAddr>,
    /// The gRPC path.
    pub method: String,
    /// Why.
    pub reason: DenyReason,
    /// The token's name, once it was recognised.
    pub token_name: Option<String>,
}

/// Told about every refused call (the host writes them to the audit log). Runs on the
/// request path: keep it quick and non-blocking.
pub trait AuthObserver: Send + Sync {
    /// A call was refused.
    fn denied(&self, call: &DeniedCall);
}

impl<F: Fn(&DeniedCall) + Send + Sync> AuthObserver for F {
    fn denied(&self, call: &DeniedCall) {
        self(call);
    }
}

/// What the layer enforces: built from [`AccessControl`].
pub struct AuthPolicy {
    tokens: TokenSet,
    read_only: bool,
    allowed_clients: Vec<String>,
    open: OpenServices,
    limiter: FailureLimiter,
    /// Set once, possibly after the server started (the audit log opens after the bus);
    /// refusals before that are still counted and logged.
    observer: OnceLock<Arc<dyn AuthObserver>>,
    /// The last TOTP step each token used: a code for that step or an earlier one is a
    /// replay. A mutex, as in the limiter: a lookup per second-factor call.
    totp_steps: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for AuthPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthPolicy")
            .field("tokens", &self.tokens)
            .field("read_only", &self.read_only)
            .field("allowed_clients", &self.allowed_clients)
            .field("open", &self.open)
            .field("observer", &self.observer.get().is_some())
            .finish_non_exhaustive()
    }
}

impl AuthPolicy {
    /// The policy of an access-control section.
    ///
    /// # Errors
    /// [`BadTokenConfig`] when a TOTP secret does not decode (the loader prevents this).
    pub fn from_config(access: &AccessControl) -> Result<Self, BadTokenConfig> {
        Ok(Self {
            tokens: TokenSet::from_config(access)?,
            read_only: access.read_only,
            allowed_clients: access.allowed_clients.clone(),
            open: access.open,
            limiter: FailureLimiter::new(access.auth_failures_per_minute, Duration::from_mins(1)),
            observer: OnceLock::new(),
            totp_steps: Mutex::new(HashMap::new()),
        })
    }

    /// No tokens, not read-only, health and reflection open: what an unconfigured
    /// process enforces (only the method table).
    #[must_use]
    pub fn off() -> Self {
        let defaults = AccessControl::default();
        Self {
            tokens: TokenSet::default(),
            read_only: false,
            allowed_clients: Vec::new(),
            open: defaults.open,
            limiter: FailureLimiter::new(defaults.auth_failures_per_minute, Duration::from_mins(1)),
            observer: OnceLock::new(),
            totp_steps: Mutex::new(HashMap::new()),
        }
    }

    /// Reports refusals to `observer`.
    #[must_use]
    pub fn with_observer(self, observer: impl AuthObserver + 'static) -> Self {
        let _ = self.observer.set(Arc::new(observer));
        self
    }

    /// Counts failures over `window` instead of a minute (tests).
    #[must_use]
    pub fn with_failure_window(mut self, window: Duration) -> Self {
        let limit = self.limiter_limit();
        self.limiter = FailureLimiter::new(limit, window);
        self
    }

    fn limiter_limit(&self) -> u32 {
        self.limiter.limit()
    }

    /// Whether any token is configured.
    #[must_use]
    pub fn auth_enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Decides one call: the caller to record, or the status to answer with. Counts,
    /// logs and observes refusals.
    ///
    /// # Errors
    /// The `Status` the call is refused with.
    pub fn check(
        &self,
        path: &str,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Caller, Status> {
        self.decide(path, headers, peer)
            .map_err(|(reason, token_name, status)| {
                self.report(&DeniedCall {
                    peer,
                    method: path.to_owned(),
                    reason,
                    token_name,
                });
                status
            })
    }

    fn decide(
        &self,
        path: &str,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Caller, (DenyReason, Option<String>, Status)> {
        let deny =
            |reason, name: Option<&str>, status| Err((reason, name.map(str::to_owned), status));
        let Some(rule) = rule(path) else {
            return deny(
                DenyReason::UnknownMethod,
                None,
                Status::permission_denied(format!("{path} has no access rule")),
            );
        };
        if self.is_open(rule) {
            return Ok(Caller::anonymous(Role::Viewer));
        }
        let read_only = |name| {
            deny(
                DenyReason::ReadOnly,
                name,
                Status::permission_denied("gekko is read-only: state-changing calls are refused"),
            )
        };
        if self.tokens.is_empty() {
            if self.read_only && rule.state_changing {
                return read_only(None);
            }
            return Ok(Caller::anonymous(Role::Admin));
        }
        if let Some(ip) = peer
            && self.limiter.is_blocked(ip)
        {
            return deny(
                DenyReason::RateLimited,
                None,
                Status::resource_exhausted("too many failed authentications; try again later"),
            );
        }
        let Some(presented) = bearer(headers) else {
            return deny(
                DenyReason::MissingToken,
                None,
                Status::unauthenticated("a token is required: authorization: Bearer <token>"),
            );
        };
        let Some(entry) = self.tokens.authenticate(presented) else {
            return deny(
                DenyReason::InvalidToken,
                None,
                Status::unauthenticated("the token is not valid"),
            );
        };
        let name = Some(entry.name.as_str());
        if !self.allowed_clients.is_empty() && !self.allowed_clients.contains(&entry.name) {
            return deny(
                DenyReason::ClientNotAllowed,
                name,
                Status::permission_denied(format!(
                    "client `{}` is not in allowed_clients",
                    entry.name
                )),
            );
        }
        // After authentication: an anonymous caller learns nothing about the mode.
        if self.read_only && rule.state_changing {
            return read_only(name);
        }
        if entry.role < rule.min_role {
            return deny(
                DenyReason::RoleTooLow,
                name,
                Status::permission_denied(format!(
                    "{path} needs role {}; token `{}` is {}",
                    rule.min_role, entry.name, entry.role
                )),
            );
        }
        if rule.second_factor
            && let Some(totp) = &entry.totp
        {
            self.second_factor(&entry.name, totp, headers)
                .map_err(|(reason, status)| (reason, Some(entry.name.clone()), status))?;
        }
        Ok(Caller {
            name: entry.name.clone(),
            role: entry.role,
        })
    }

    fn is_open(&self, rule: &MethodRule) -> bool {
        match rule.open {
            Some(OpenGroup::Health) => self.open.health,
            Some(OpenGroup::Reflection) => self.open.reflection,
            None => false,
        }
    }

    fn second_factor(
        &self,
        name: &str,
        totp: &Totp,
        headers: &HeaderMap,
    ) -> Result<(), (DenyReason, Status)> {
        let Some(code) = headers.get(TOTP_HEADER).and_then(|v| v.to_str().ok()) else {
            return Err((
                DenyReason::TotpRequired,
                Status::unauthenticated(format!(
                    "a TOTP code is required for this method: send it in {TOTP_HEADER}"
                )),
            ));
        };
        let Some(step) = totp.verify_at(code, unix_now()) else {
            return Err((
                DenyReason::TotpInvalid,
                Status::unauthenticated("the TOTP code is not valid"),
            ));
        };
        let mut steps = self
            .totp_steps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match steps.get(name) {
            Some(&last) if step <= last => Err((
                DenyReason::TotpReplayed,
                Status::unauthenticated("the TOTP code was already used; wait for the next one"),
            )),
            _ => {
                steps.insert(name.to_owned(), step);
                Ok(())
            }
        }
    }

    fn report(&self, call: &DeniedCall) {
        metrics::counter!("gekko_auth_failures_total", "reason" => call.reason.as_str())
            .increment(1);
        if call.reason.counts_as_failure()
            && let Some(ip) = call.peer
        {
            self.limiter.record_failure(ip);
        }
        tracing::warn!(
            method = %call.method,
            reason = call.reason.as_str(),
            token = call.token_name.as_deref().unwrap_or("-"),
            peer = ?call.peer,
            "gRPC call refused"
        );
        if let Some(observer) = self.observer.get() {
            observer.denied(call);
        }
    }
}

/// The token of `authorization: Bearer <token>` (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Describes the layer's metric for the Prometheus exposition.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "gekko_auth_failures_total",
        "gRPC calls refused by the AuthLayer, by reason"
    );
}

/// The tower layer that applies an [`AuthPolicy`] to every call of a server.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    policy: Arc<AuthPolicy>,
}

impl AuthLayer {
    /// A layer enforcing `policy`.
    #[must_use]
    pub fn new(policy: AuthPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }

    /// The policy it enforces.
    #[must_use]
    pub fn policy(&self) -> &AuthPolicy {
        &self.policy
    }

    /// Reports refusals to `observer` from now on, on every clone of this layer (the
    /// host calls it once the audit log is open). Returns `false`, and changes nothing,
    /// when an observer is already set.
    pub fn observe(&self, observer: impl AuthObserver + 'static) -> bool {
        self.policy.observer.set(Arc::new(observer)).is_ok()
    }
}

impl Default for AuthLayer {
    /// [`AuthPolicy::off`].
    fn default() -> Self {
        Self::new(AuthPolicy::off())
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around a server's router.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    policy: Arc<AuthPolicy>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower_service::Service<http::Request<B>> for AuthService<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // tonic puts the TCP peer on plaintext and TLS connections alike (the TLS test
        // of the failure limit relies on it).
        let peer = req
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .map(|a| a.ip());
        match self.policy.check(req.uri().path(), req.headers(), peer) {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                // The clone that was polled ready is the one that must be called; keep a
                // fresh clone for the next call (tower's usual pattern).
                let clone = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, clone);
                Box::pin(ready.call(req))
            }
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(
            bearer(&headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer(&headers(&[("authorization", "bearer  abc ")])),
            Some("abc")
        );
        assert_eq!(bearer(&headers(&[("authorization", "Basic abc")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer ")])), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    #[test]
    fn unknown_methods_are_denied_even_with_auth_off() {
        let p = AuthPolicy::off();
        let e = p
            .check("/gekko.v1.Nope/Nothing", &HeaderMap::new(), None)
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        let ok = p
            .check(
                "/gekko.v1.GatewayService/PlaceOrder",
                &HeaderMap::new(),
                None,
            )
            .unwrap();
        assert_eq!(ok, Caller::anonymous(Role::Admin));
    }
}
