//! Access control for gekko: who may call what, over which transport.
//!
//! Today anyone who reaches a gRPC port could call `PlaceOrder`; this crate is what stops
//! that. It is one place for every rule, so the servers only have to apply it:
//!
//! - [`methods`]: the one table of gRPC method → minimum [`Role`], state-changing or not,
//!   second factor or not. A method without a row is refused.
//! - [`auth`]: the [`AuthLayer`], a tower layer `GrpcServer::serve` puts around the whole
//!   server: tokens (`authorization: Bearer`), roles, `read_only`, `allowed_clients`, the
//!   TOTP second factor, the per-peer failure limit, metrics and the [`AuthObserver`]
//!   that the host wires to the audit log. Handlers read the [`Caller`].
//! - [`token`]: tokens are random, shown once, and configured only by SHA-256.
//! - [`totp`]: RFC 6238 codes for admin actions.
//! - [`tls`]: certificate, key and client-CA loading for the gRPC and HTTP servers
//!   (rustls with aws-lc-rs), and the client side for tonic channels.
//! - [`certs`]: `gekko certs dev` (a local CA with server and client certificates).
//! - [`posture`]: the findings `gekko check` and the start-up report print.
//!
//! Nothing here logs a token, a TOTP secret or code, or a key; errors name files and
//! token names, never contents.

pub mod auth;
pub mod certs;
pub mod limiter;
pub mod methods;
pub mod posture;
pub mod tls;
pub mod token;
pub mod totp;

pub use auth::{
    ANONYMOUS, AuthLayer, AuthObserver, AuthPolicy, AuthService, Caller, DeniedCall, DenyReason,
    TOTP_HEADER,
};
pub use gekko_config::Role;
pub use methods::{METHODS, MethodRule, OpenGroup};
pub use posture::{Finding, posture};
pub use tls::{ClientAuth, ClientTls, ServerTls, TlsError, connect};
pub use token::{NewToken, TokenSet, generate_token, sha256_hex};
pub use totp::Totp;
