//! The Coinbase REST auth hook: a fresh JWT in `Authorization: Bearer` on every request.
//!
//! The REST pipeline runs the hook after it has chosen the base URL (so a fallback host or a
//! simulator's `127.0.0.1:port` is what the `uri` claim names, as the venue checks against the
//! host the request was sent to) and after the rate limiter granted budget (so the token does
//! not age while the request waits). It builds the token from the outgoing request's method,
//! host and path; the query string is a separate field of the request and never enters the
//! claim. Setting the header itself is [`PerRequestBearer`]'s job, reused here so the header
//! is marked sensitive the same way for every venue.

use std::fmt;
use std::sync::Arc;

use gekko_net::{AuthError, OutgoingRequest, PerRequestBearer, RequestAuth};

use super::jwt::CdpJwtSigner;

type BuildToken = Box<dyn Fn(&OutgoingRequest) -> Result<String, AuthError> + Send + Sync>;

/// [`RequestAuth`] for Coinbase Advanced Trade: `Authorization: Bearer <JWT>` with a token
/// whose `uri` claim is `"{METHOD} {host}{path}"` of the request being sent.
pub struct CoinbaseRequestAuth {
    signer: Arc<CdpJwtSigner>,
    bearer: PerRequestBearer<BuildToken>,
}

impl CoinbaseRequestAuth {
    /// A hook signing with `signer` (shared with the websocket subscribe builder).
    #[must_use]
    pub fn new(signer: Arc<CdpJwtSigner>) -> Self {
        let s = Arc::clone(&signer);
        let build: BuildToken = Box::new(move |req: &OutgoingRequest| {
            s.rest_token(req.method.as_str(), req.host(), &req.path)
                .map_err(|e| AuthError::new(e.to_string()))
        });
        Self {
            signer,
            bearer: PerRequestBearer::new(build),
        }
    }

    /// The signer, for websocket tokens.
    #[must_use]
    pub fn signer(&self) -> &Arc<CdpJwtSigner> {
        &self.signer
    }
}

impl fmt::Debug for CoinbaseRequestAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoinbaseRequestAuth")
            .field("key", self.signer.key())
            .finish_non_exhaustive()
    }
}

impl RequestAuth for CoinbaseRequestAuth {
    fn authorize(&self, req: &mut OutgoingRequest) -> Result<(), AuthError> {
        self.bearer.authorize(req)
    }
}
