//! Binance.US request signing: HMAC-SHA256 (hex) or Ed25519 (base64).
//!
//! The venue verifies a signature over `totalParams`: the query string concatenated
//! directly with the request body (no `&` between them), exactly as sent. gekko sends every
//! parameter in the query string, so `totalParams` is the query, but [`total_params`]
//! reproduces the mixed form for the official vectors and for the simulator.
//!
//! * **HMAC-SHA256** (the documented scheme): `hex(HMAC(secret, totalParams))`.
//! * **Ed25519** (documented for binance.com; not confirmed for Binance.US, hence
//!   configurable): `base64(Ed25519(seed, totalParams))`, percent-encoded when appended as
//!   `&signature=` because base64 contains `+`, `/` and `=`.
//!
//! Secrets are parsed once into key objects here; nothing in this module prints them.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::Signer as _;
use gekko_net::{AuthError, ClockOffset, OutgoingRequest, RequestAuth, Signer};
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::common::consts::HEADER_API_KEY;

/// Characters escaped in a form-encoded value: everything but unreserved characters.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A key could not be used for signing. The message never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    /// The secret is empty.
    #[error("the API secret is empty")]
    Empty,
    /// The Ed25519 private key is not a 32-byte seed in hex or base64, a 64-byte
    /// seed‖public key in base64, or a PKCS#8 PEM.
    #[error("invalid Ed25519 private key: {0}")]
    InvalidEd25519(&'static str),
}

#[derive(Clone)]
enum Key {
    /// A keyed MAC state, cloned per signature (cheaper than re-keying).
    Hmac(Hmac<Sha256>),
    Ed25519 {
        key: Box<ed25519_dalek::SigningKey>,
        url_encode: bool,
    },
}

/// Signs Binance.US requests with the account's HMAC secret or Ed25519 key.
#[derive(Clone)]
pub struct BinanceUsSigner {
    key: Key,
}

impl std::fmt::Debug for BinanceUsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.key {
            Key::Hmac(_) => "hmac-sha256",
            Key::Ed25519 { .. } => "ed25519",
        };
        f.debug_struct("BinanceUsSigner")
            .field("scheme", &scheme)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl BinanceUsSigner {
    /// An HMAC-SHA256 signer; the secret is used as ASCII bytes, as the venue does.
    ///
    /// # Errors
    /// [`SigningError::Empty`] for an empty secret.
    pub fn hmac(secret: &str) -> Result<Self, SigningError> {
        if secret.is_empty() {
            return Err(SigningError::Empty);
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
            .map_err(|_| SigningError::Empty)?;
        Ok(Self {
            key: Key::Hmac(mac),
        })
    }

    /// An Ed25519 signer from a private key in any of the forms users are handed:
    /// a 32-byte seed as hex (64 chars) or base64, a 64-byte seed‖public key in base64
    /// (checked for consistency), or a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    /// Signatures are percent-encoded when appended; see [`Self::with_url_encoding`].
    ///
    /// # Errors
    /// [`SigningError`] when the key is in none of those forms.
    pub fn ed25519(private_key: &str) -> Result<Self, SigningError> {
        let seed = parse_ed25519_seed(private_key)?;
        Ok(Self::ed25519_from_seed(&seed))
    }

    /// An Ed25519 signer from a raw 32-byte seed.
    #[must_use]
    pub fn ed25519_from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: Key::Ed25519 {
                key: Box::new(ed25519_dalek::SigningKey::from_bytes(seed)),
                url_encode: true,
            },
        }
    }

    /// Whether an Ed25519 signature is percent-encoded when appended (default true). No
    /// effect on HMAC, whose hex needs no encoding.
    #[must_use]
    pub fn with_url_encoding(mut self, on: bool) -> Self {
        if let Key::Ed25519 { url_encode, .. } = &mut self.key {
            *url_encode = on;
        }
        self
    }

    /// The raw signature: lower-case hex (HMAC) or standard base64 (Ed25519).
    #[must_use]
    pub fn sign_bytes(&self, payload: &[u8]) -> String {
        match &self.key {
            Key::Hmac(mac) => {
                let mut mac = mac.clone();
                mac.update(payload);
                hex::encode(mac.finalize().into_bytes())
            }
            Key::Ed25519 { key, .. } => B64.encode(key.sign(payload).to_bytes()),
        }
    }

    /// The value to put after `signature=`: the raw signature, percent-encoded for
    /// Ed25519 when configured.
    #[must_use]
    pub fn signature_param(&self, total_params: &str) -> String {
        let raw = self.sign_bytes(total_params.as_bytes());
        match &self.key {
            Key::Ed25519 {
                url_encode: true, ..
            } => utf8_percent_encode(&raw, VALUE).to_string(),
            _ => raw,
        }
    }

    /// `query&signature=<sig>`: the query string with its signature appended.
    #[must_use]
    pub fn sign_query(&self, query: &str) -> String {
        let sig = self.signature_param(query);
        if query.is_empty() {
            format!("signature={sig}")
        } else {
            format!("{query}&signature={sig}")
        }
    }
}

impl gekko_net::Signer for BinanceUsSigner {
    fn sign(&self, payload: &[u8]) -> String {
        self.sign_bytes(payload)
    }

    fn sign_param(&self, payload: &[u8]) -> String {
        match &self.key {
            Key::Ed25519 {
                url_encode: true, ..
            } => utf8_percent_encode(&self.sign_bytes(payload), VALUE).to_string(),
            _ => self.sign_bytes(payload),
        }
    }
}

/// The Binance.US query signature as a [`RequestAuth`] hook: the `X-MBX-APIKEY` header,
/// then `recvWindow` and `timestamp` (the venue's clock, through [`ClockOffset`]) and
/// `signature` over `totalParams` (query ‖ body), appended to whichever part is sent last
/// (the body when there is one, else the query).
///
/// Signs through the [`Signer`] trait, so any signer (HMAC, Ed25519, a test double) fits.
pub struct BinanceUsQuerySigner {
    api_key: SecretString,
    signer: Arc<dyn Signer>,
    recv_window_ms: u64,
    clock: Arc<ClockOffset>,
}

impl BinanceUsQuerySigner {
    /// A hook signing with `signer`, stamping `clock.now_ms()` and `recv_window_ms`.
    #[must_use]
    pub fn new(
        api_key: SecretString,
        signer: Arc<dyn Signer>,
        recv_window_ms: u64,
        clock: Arc<ClockOffset>,
    ) -> Self {
        Self {
            api_key,
            signer,
            recv_window_ms,
            clock,
        }
    }
}

impl std::fmt::Debug for BinanceUsQuerySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinanceUsQuerySigner")
            .field("api_key", &"<redacted>")
            .field("signer", &self.signer)
            .field("recv_window_ms", &self.recv_window_ms)
            .finish_non_exhaustive()
    }
}

impl RequestAuth for BinanceUsQuerySigner {
    fn authorize(&self, req: &mut OutgoingRequest) -> Result<(), AuthError> {
        req.set_header(HEADER_API_KEY, self.api_key.expose_secret())?;
        let window = self.recv_window_ms.to_string();
        let timestamp = self.clock.now_ms().to_string();
        let in_body = !req.body.is_empty();
        let append = |part: &mut String, k: &str, v: &str| {
            if !part.is_empty() {
                part.push('&');
            }
            part.push_str(k);
            part.push('=');
            part.push_str(v);
        };
        let part = if in_body {
            &mut req.body
        } else {
            &mut req.query
        };
        append(part, "recvWindow", &window);
        append(part, "timestamp", &timestamp);
        let sig = self
            .signer
            .sign_param(total_params(&req.query, &req.body).as_bytes());
        let part = if in_body {
            &mut req.body
        } else {
            &mut req.query
        };
        append(part, "signature", &sig);
        Ok(())
    }
}

/// `totalParams` = query string concatenated directly with the body (no `&`).
#[must_use]
pub fn total_params(query: &str, body: &str) -> String {
    let mut s = String::with_capacity(query.len() + body.len());
    s.push_str(query);
    s.push_str(body);
    s
}

/// Percent-encodes one query-string value (for user-supplied strings such as client ids).
#[must_use]
pub fn encode_value(v: &str) -> String {
    utf8_percent_encode(v, VALUE).to_string()
}

/// PKCS#8 v1 DER prefix for an Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn parse_ed25519_seed(input: &str) -> Result<[u8; 32], SigningError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(SigningError::Empty);
    }
    if s.starts_with("-----BEGIN") {
        if !s.starts_with("-----BEGIN PRIVATE KEY-----") {
            return Err(SigningError::InvalidEd25519(
                "only PKCS#8 `BEGIN PRIVATE KEY` PEM is supported",
            ));
        }
        let body: String = s
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .flat_map(|l| l.trim().chars())
            .collect();
        let der = B64
            .decode(body)
            .map_err(|_| SigningError::InvalidEd25519("PEM body is not base64"))?;
        let seed =
            der.strip_prefix(&PKCS8_ED25519_PREFIX[..])
                .ok_or(SigningError::InvalidEd25519(
                    "PEM is not an Ed25519 PKCS#8 key",
                ))?;
        return seed
            .try_into()
            .map_err(|_| SigningError::InvalidEd25519("PEM seed is not 32 bytes"));
    }
    if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        let bytes = hex::decode(s).map_err(|_| SigningError::InvalidEd25519("bad hex"))?;
        return bytes
            .try_into()
            .map_err(|_| SigningError::InvalidEd25519("hex seed is not 32 bytes"));
    }
    let bytes = B64
        .decode(s)
        .map_err(|_| SigningError::InvalidEd25519("neither 64 hex chars nor base64"))?;
    match bytes.len() {
        32 => bytes
            .try_into()
            .map_err(|_| SigningError::InvalidEd25519("seed is not 32 bytes")),
        64 => {
            let (seed, public) = bytes.split_at(32);
            let seed: [u8; 32] = seed
                .try_into()
                .map_err(|_| SigningError::InvalidEd25519("seed is not 32 bytes"))?;
            let derived = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            if derived.as_bytes() != public {
                return Err(SigningError::InvalidEd25519(
                    "the public half does not match the seed",
                ));
            }
            Ok(seed)
        }
        _ => Err(SigningError::InvalidEd25519(
            "base64 key must decode to 32 or 64 bytes",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The official example secret (Binance.US `rest-api.md`, §2.3.1).
    const SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
    /// The official example order parameters.
    const ORDER: &str = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";

    fn hmac() -> BinanceUsSigner {
        BinanceUsSigner::hmac(SECRET).unwrap()
    }

    #[test]
    fn official_vector_body_or_query() {
        // Examples 1 and 2: the whole payload as body, or as query string.
        assert_eq!(
            hmac().sign_bytes(total_params("", ORDER).as_bytes()),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
        assert_eq!(
            hmac().sign_query(ORDER),
            format!(
                "{ORDER}&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
            )
        );
    }

    #[test]
    fn official_vector_mixed_query_and_body() {
        // Example 3: no `&` between the query's `GTC` and the body's `quantity`.
        let tp = total_params(
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
            "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
        );
        assert_eq!(
            tp,
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTCquantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
        );
        assert_eq!(
            hmac().sign_bytes(tp.as_bytes()),
            "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
        );
    }

    #[test]
    fn official_vector_websocket_api() {
        let payload = "apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&newOrderRespType=ACK&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT";
        assert_eq!(
            hmac().sign_bytes(payload.as_bytes()),
            "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"
        );
    }

    #[test]
    fn derived_vectors() {
        let cases = [
            (
                "timestamp=1499827319559",
                "2222d49722f6af5da13f6da6bfc0d7de19ca2815ebc98bbc49e4942268472f3f",
            ),
            (
                "recvWindow=5000&timestamp=1499827319559",
                "82f4e72e95e63d666b6da651e82a701722ad8a785a169318d91f36f279c55821",
            ),
            (
                "symbol=BTCUSD&orderId=12345&recvWindow=5000&timestamp=1499827319559",
                "0269a4caf922efea558771975c58f52976d2f51a3dc774763027f10902ec7cfe",
            ),
            (
                "symbol=BTCUSD&side=BUY&type=MARKET&quoteOrderQty=10&timestamp=1499827319559",
                "e4bedd76461033440b50365a480faed63a83bed00ee5a266c1c86b65a1eb5533",
            ),
        ];
        let s = hmac();
        for (tp, sig) in cases {
            assert_eq!(s.sign_bytes(tp.as_bytes()), sig, "{tp}");
            // The Signer trait gives the same answer.
            assert_eq!(gekko_net::Signer::sign(&s, tp.as_bytes()), sig);
        }
    }

    /// Ed25519 seed of the Coinbase SDK test key (reference §1.2.1); Ed25519 is
    /// deterministic, so these signatures were computed independently with Python's
    /// `cryptography` package and must match byte for byte.
    const ED_SEED_HEX: &str = "9340549e2d29d2f646d417695634baa20049ee4c66eb7d0027674dfadba9bad0";

    #[test]
    fn ed25519_derived_vectors() {
        let s = BinanceUsSigner::ed25519(ED_SEED_HEX).unwrap();
        assert_eq!(
            s.sign_bytes(ORDER.as_bytes()),
            "e3MXnot2o8izVnxo9wg6l+yalFod0zux07dETNO2a4gIZxG5RiYLU5juK+uy07HTxA5NAQgmI3nwoo4H11QYDw=="
        );
        assert_eq!(
            s.signature_param(ORDER),
            "e3MXnot2o8izVnxo9wg6l%2ByalFod0zux07dETNO2a4gIZxG5RiYLU5juK%2Buy07HTxA5NAQgmI3nwoo4H11QYDw%3D%3D"
        );
        let mixed = total_params(
            "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
            "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
        );
        assert_eq!(
            s.sign_bytes(mixed.as_bytes()),
            "gS4lFXi1+lixwmw66Phw9nk0XUuTLNuJg660ZBUKRqZsO4rxRjt5SVtQm1Ee80atiWKGctJwbN41eh7zL2NmAw=="
        );
        assert_eq!(
            s.sign_query("timestamp=1499827319559"),
            "timestamp=1499827319559&signature=pMroMOihVdspN0kJ9MmKsmqLX93Jizqj5CCu%2B88pmYSu75EPoX1TgtnlS%2Fu8gpdC4SvNiASNVvfA15t7WsH9CA%3D%3D"
        );
        let raw = s.clone().with_url_encoding(false);
        assert_eq!(
            raw.signature_param("timestamp=1499827319559"),
            "pMroMOihVdspN0kJ9MmKsmqLX93Jizqj5CCu+88pmYSu75EPoX1TgtnlS/u8gpdC4SvNiASNVvfA15t7WsH9CA=="
        );
    }

    #[test]
    fn ed25519_key_formats_all_give_the_same_key() {
        let forms = [
            ED_SEED_HEX.to_owned(),
            "k0BUni0p0vZG1BdpVjS6ogBJ7kxm630AJ2dN+tuputA=".to_owned(),
            "k0BUni0p0vZG1BdpVjS6ogBJ7kxm630AJ2dN+tuputDOKsRAwgyrpEQLeBtS1znTmzPX6Xr2eOWpzx6nW8knkA=="
                .to_owned(),
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJNAVJ4tKdL2RtQXaVY0uqIASe5MZut9ACdnTfrbqbrQ\n-----END PRIVATE KEY-----\n"
                .to_owned(),
        ];
        let expected = BinanceUsSigner::ed25519(ED_SEED_HEX)
            .unwrap()
            .sign_bytes(b"x");
        for f in forms {
            assert_eq!(
                BinanceUsSigner::ed25519(&f).unwrap().sign_bytes(b"x"),
                expected
            );
        }
    }

    #[test]
    fn bad_keys_are_rejected_without_echoing_them() {
        assert_eq!(BinanceUsSigner::hmac("").unwrap_err(), SigningError::Empty);
        for bad in [
            "",
            "not a key",
            "abcd",
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----",
            // 64 bytes whose public half does not match.
            "k0BUni0p0vZG1BdpVjS6ogBJ7kxm630AJ2dN+tuputAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        ] {
            let e = BinanceUsSigner::ed25519(bad).unwrap_err();
            if !bad.is_empty() {
                assert!(!e.to_string().contains(bad), "{e}");
            }
        }
    }

    #[test]
    fn debug_never_prints_secrets() {
        let d = format!(
            "{:?} {:?}",
            hmac(),
            BinanceUsSigner::ed25519(ED_SEED_HEX).unwrap()
        );
        assert!(!d.contains(SECRET) && !d.contains(ED_SEED_HEX), "{d}");
        assert!(d.contains("<redacted>"));
    }

    #[test]
    fn values_are_form_encoded() {
        assert_eq!(encode_value("gk-1_a.b~c"), "gk-1_a.b~c");
        assert_eq!(encode_value("[\"BTCUSD\"]"), "%5B%22BTCUSD%22%5D");
    }

    #[test]
    fn query_signer_hook_appends_window_timestamp_and_signature() {
        use gekko_net::{ClockOffset, OutgoingRequest, RequestAuth};
        let auth = BinanceUsQuerySigner::new(
            SecretString::from("my-key"),
            Arc::new(hmac()),
            5000,
            Arc::new(ClockOffset::default()),
        );
        // Everything in the query.
        let mut r = OutgoingRequest::new(reqwest::Method::GET, "http://h", "/api/v3/account");
        r.query = "symbol=BTCUSD".to_owned();
        auth.authorize(&mut r).unwrap();
        assert_eq!(r.headers[crate::common::consts::HEADER_API_KEY], "my-key");
        let (signed, sig) = r.query.rsplit_once("&signature=").unwrap();
        assert!(
            signed.starts_with("symbol=BTCUSD&recvWindow=5000&timestamp="),
            "{signed}"
        );
        assert_eq!(hmac().sign_bytes(signed.as_bytes()), sig);
        // Mixed: the parameters and signature go in the body, sent last, and the signature
        // covers query ‖ body with no `&` between them.
        let mut r = OutgoingRequest::new(reqwest::Method::POST, "http://h", "/api/v3/order");
        r.query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC".to_owned();
        r.body = "quantity=1&price=0.1".to_owned();
        auth.authorize(&mut r).unwrap();
        assert_eq!(r.query, "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC");
        let (body, sig) = r.body.rsplit_once("&signature=").unwrap();
        assert_eq!(
            hmac().sign_bytes(total_params(&r.query, body).as_bytes()),
            sig
        );
        assert!(!format!("{auth:?}").contains("my-key"));
    }

    #[test]
    fn signer_trait_param_is_percent_encoded_for_ed25519() {
        use gekko_net::Signer;
        let s = BinanceUsSigner::ed25519_from_seed(&[7; 32]);
        let raw = Signer::sign(&s, b"timestamp=1");
        assert_eq!(
            Signer::sign_param(&s, b"timestamp=1"),
            s.signature_param("timestamp=1")
        );
        assert_eq!(
            Signer::sign_param(&s.clone().with_url_encoding(false), b"timestamp=1"),
            raw
        );
        assert_eq!(Signer::sign_param(&hmac(), b"x"), hmac().sign_bytes(b"x"));
    }
}
