//! Configuration of the Coinbase Advanced Trade simulator.
//!
//! One plain struct, [`SimConfig`], so a test starts from [`SimConfig::default`] and
//! overrides what it cares about. API keys are registered by their **public** key only,
//! because that is all the real venue knows of a CDP key: the simulator can verify a
//! client's JWTs but could never forge one, which keeps it an honest oracle. Everything
//! the venue reference marks as unconfirmed (page sizes, the legacy issuer, nonce replay
//! refusal, the `nbf` tolerance) is a field here rather than a constant in the code.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;

pub use crate::engine::SimSymbol;

/// A registered API key: its name (the JWT `kid` and `sub`) and its public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimApiKey {
    /// Key name, `organizations/{org}/apiKeys/{id}` or a bare UUID.
    pub name: String,
    /// Public key PEM (`-----BEGIN PUBLIC KEY-----`, SPKI): EC P-256 (ES256) or Ed25519
    /// (EdDSA).
    pub public_key_pem: String,
}

/// Where the TLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// A self-signed certificate generated at start (SANs `localhost`, `127.0.0.1`);
    /// its PEM is on the handle and, when `cert_out` is set, written there.
    SelfSigned {
        /// Where to write the certificate PEM, if anywhere.
        cert_out: Option<PathBuf>,
    },
    /// A given certificate chain and private key (PEM files).
    Files {
        /// Certificate chain PEM.
        cert: PathBuf,
        /// Private key PEM (PKCS#8, SEC1 or PKCS#1).
        key: PathBuf,
    },
}

/// How the simulator is set up.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address of the REST listener (`127.0.0.1:0` picks a free port).
    pub rest_addr: SocketAddr,
    /// Address of the market-data websocket listener (the venue's
    /// `wss://advanced-trade-ws.coinbase.com`).
    pub ws_addr: SocketAddr,
    /// Address of the user-order websocket listener (the venue's
    /// `wss://advanced-trade-ws-user.coinbase.com`: `user` and `heartbeats` only).
    pub ws_user_addr: SocketAddr,
    /// Seed of the market generator and of generated identifiers.
    pub seed: u64,
    /// TLS certificate source.
    pub tls: TlsSource,
    /// Serve plain HTTP instead of TLS (debugging only; the official SDK needs TLS).
    pub plain_http: bool,
    /// Registered API keys; each is one account (one set of balances).
    pub api_keys: Vec<SimApiKey>,
    /// Tradable products; `symbol` is the product id (`BTC-USD`). `tick_size` is the
    /// `quote_increment`, `step_size` the `base_increment`, `min_qty`/`max_qty` the
    /// base size bounds and `min_notional` the `quote_min_size`.
    pub products: Vec<SimSymbol>,
    /// Starting balances `(currency, available)` of every account.
    pub initial_balances: Vec<(String, Decimal)>,
    /// How often the market generator moves every book (default 200 ms).
    pub tick_interval: Duration,
    /// Private (JWT) requests per second per key (default 30, reference 1.5).
    pub private_rate_per_s: u32,
    /// Public requests per second (default 10, reference 1.5).
    pub public_rate_per_s: u32,
    /// How far in the future a JWT's `nbf` may be, in seconds (client clock ahead).
    pub nbf_leeway_s: i64,
    /// Refuse a JWT whose header nonce was already seen while its token was valid.
    pub reject_reused_nonces: bool,
    /// Also accept `iss: "coinbase-cloud"` (an older Coinbase sample's issuer).
    pub accept_legacy_issuer: bool,
    /// Default page size of list endpoints (reference: 49, unconfirmed).
    pub default_page_size: usize,
    /// Largest accepted `limit` of list endpoints (reference: 250, unconfirmed).
    pub max_page_size: usize,
    /// How long a websocket may stay open without a successful subscribe before the
    /// server closes it (reference 1.6: 5 s).
    pub ws_subscribe_timeout: Duration,
    /// Period of the `heartbeats` channel (reference 1.6: 1 s).
    pub ws_heartbeat_interval: Duration,
    /// Period of the `ticker_batch` channel (reference 1.6: 5 s).
    pub ws_ticker_batch_interval: Duration,
}

impl Default for SimConfig {
    /// Paper-trading defaults: BTC-USD and ETH-USD, no keys, balances USD 100000,
    /// BTC 2, ETH 20, a generated self-signed certificate, ephemeral ports.
    fn default() -> Self {
        Self {
            rest_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ws_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ws_user_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            seed: 42,
            tls: TlsSource::SelfSigned { cert_out: None },
            plain_http: false,
            api_keys: Vec::new(),
            products: vec![
                SimSymbol {
                    symbol: "BTC-USD".into(),
                    base: "BTC".into(),
                    quote: "USD".into(),
                    start_price: Decimal::new(60_000, 0),
                    tick_size: Decimal::new(1, 2),
                    step_size: Decimal::new(1, 8),
                    min_qty: Decimal::new(1, 8),
                    max_qty: Decimal::new(3_400, 0),
                    min_notional: Decimal::new(1, 0),
                },
                SimSymbol {
                    symbol: "ETH-USD".into(),
                    base: "ETH".into(),
                    quote: "USD".into(),
                    start_price: Decimal::new(3_000, 0),
                    tick_size: Decimal::new(1, 2),
                    step_size: Decimal::new(1, 8),
                    min_qty: Decimal::new(1, 8),
                    max_qty: Decimal::new(50_000, 0),
                    min_notional: Decimal::new(1, 0),
                },
            ],
            initial_balances: vec![
                ("USD".into(), Decimal::new(100_000, 0)),
                ("BTC".into(), Decimal::new(2, 0)),
                ("ETH".into(), Decimal::new(20, 0)),
            ],
            tick_interval: Duration::from_millis(200),
            private_rate_per_s: 30,
            public_rate_per_s: 10,
            nbf_leeway_s: 5,
            reject_reused_nonces: true,
            accept_legacy_issuer: false,
            default_page_size: 49,
            max_page_size: 250,
            ws_subscribe_timeout: Duration::from_secs(5),
            ws_heartbeat_interval: Duration::from_secs(1),
            ws_ticker_batch_interval: Duration::from_secs(5),
        }
    }
}

impl SimConfig {
    /// Checks the config; every problem is listed in one message.
    ///
    /// # Errors
    /// `InvalidInput` naming each problem.
    pub fn validate(&self) -> std::io::Result<()> {
        let mut problems = Vec::new();
        let mut names = std::collections::HashSet::new();
        for k in &self.api_keys {
            if k.name.trim().is_empty() {
                problems.push("an API key has an empty name".to_owned());
            }
            if !names.insert(k.name.as_str()) {
                problems.push(format!("API key {:?} is registered twice", k.name));
            }
            if let Err(e) = super::auth::PublicKey::from_pem(&k.public_key_pem) {
                problems.push(format!("API key {:?}: {e}", k.name));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for p in &self.products {
            let id = &p.symbol;
            if !ids.insert(id.as_str()) {
                problems.push(format!("product {id} is defined twice"));
            }
            if id != &format!("{}-{}", p.base, p.quote) {
                problems.push(format!(
                    "product id {id} must be BASE-QUOTE ({}-{})",
                    p.base, p.quote
                ));
            }
            for (what, v) in [
                ("start price", p.start_price),
                ("quote increment", p.tick_size),
                ("base increment", p.step_size),
                ("base min size", p.min_qty),
            ] {
                if v <= Decimal::ZERO {
                    problems.push(format!("product {id}: {what} must be positive"));
                }
            }
            if p.max_qty < p.min_qty {
                problems.push(format!("product {id}: base max size is below the min size"));
            }
            if p.min_notional < Decimal::ZERO {
                problems.push(format!("product {id}: quote min size must not be negative"));
            }
        }
        if self.products.is_empty() {
            problems.push("no products".to_owned());
        }
        if self.private_rate_per_s == 0 || self.public_rate_per_s == 0 {
            problems.push("rate limits must be positive".to_owned());
        }
        if self.default_page_size == 0 || self.max_page_size < self.default_page_size {
            problems.push("page sizes: need 0 < default <= max".to_owned());
        }
        if self.tick_interval.is_zero() {
            problems.push("tick interval must be positive".to_owned());
        }
        if self.ws_subscribe_timeout.is_zero()
            || self.ws_heartbeat_interval.is_zero()
            || self.ws_ticker_batch_interval.is_zero()
        {
            problems.push(
                "websocket subscribe timeout, heartbeat and ticker_batch periods must be positive"
                    .to_owned(),
            );
        }
        if let TlsSource::Files { cert, key } = &self.tls
            && !self.plain_http
        {
            for (what, p) in [("certificate", cert), ("key", key)] {
                if !p.is_file() {
                    problems.push(format!("TLS {what} file {} does not exist", p.display()));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid sim-coinbase config: {}", problems.join("; ")),
            ))
        }
    }
}
