//! Shared by the Coinbase simulator's integration tests (`coinbase.rs`,
//! `coinbase_ws.rs`): the official SDK's test keys and CDP JWTs built by hand from the
//! venue reference (1.2), independently of any gekko code, so both suites sign exactly
//! the same way without copying it.
//!
//! Each test binary uses a different part of this module, hence the `dead_code` allow.
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePublicKey as _;
use gekko_sim::coinbase::SimApiKey;
use p256::pkcs8::LineEnding;
use serde_json::json;

/// Name of the EC (ES256) test key.
pub(crate) const EC_NAME: &str = "organizations/test-organization/apiKeys/test-api-key";
/// Name of the Ed25519 (EdDSA) test key.
pub(crate) const ED_NAME: &str = "9d4d3f6c-6a3b-4a5e-9a8e-0c2d5f1b7e21";
/// The official SDK's EC test key (SEC1 PEM).
pub(crate) const EC_SECRET: &str = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIKwf3Uox30cRWzRBOPoPOH5p0Gpb0Dt8zUKXUEM5fMkGoAoGCCqGSM49\nAwEHoUQDQgAEbAtpLlSZYVOwYICz+uEyxcS29vRIujiES/gQ1DC7FV4zK4JuYE9v\nqDyGZQYjdXHLM7I6f/QnnOITL+dXYWBHRA==\n-----END EC PRIVATE KEY-----\n";
/// The Ed25519 test key's seed (base64).
pub(crate) const ED_SEED_B64: &str = "k0BUni0p0vZG1BdpVjS6ogBJ7kxm630AJ2dN+tuputA=";

/// A signing key of either kind.
pub(crate) enum Key {
    Ec(p256::ecdsa::SigningKey),
    Ed(ed25519_dalek::SigningKey),
}

impl Key {
    /// The EC test key.
    pub(crate) fn ec() -> Self {
        let sk = p256::SecretKey::from_sec1_pem(EC_SECRET).expect("EC test key");
        Self::Ec(p256::ecdsa::SigningKey::from(&sk))
    }

    /// The Ed25519 test key.
    pub(crate) fn ed() -> Self {
        let seed = base64::engine::general_purpose::STANDARD
            .decode(ED_SEED_B64)
            .expect("seed");
        let seed: [u8; 32] = seed.try_into().expect("32 bytes");
        Self::Ed(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// SPKI PEM of the public half (what the simulator registers).
    pub(crate) fn public_pem(&self) -> String {
        match self {
            Self::Ec(k) => {
                p256::pkcs8::EncodePublicKey::to_public_key_pem(k.verifying_key(), LineEnding::LF)
                    .expect("pem")
            }
            Self::Ed(k) => k
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("pem"),
        }
    }

    /// The JWT `alg` of this key.
    pub(crate) fn alg(&self) -> &'static str {
        match self {
            Self::Ec(_) => "ES256",
            Self::Ed(_) => "EdDSA",
        }
    }

    /// A JWS signature (`r||s` for ES256).
    pub(crate) fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Self::Ec(k) => {
                let s: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(k, msg);
                s.to_bytes().to_vec()
            }
            Self::Ed(k) => ed25519_dalek::Signer::sign(k, msg).to_bytes().to_vec(),
        }
    }
}

/// What a token claims; tests break one field at a time.
pub(crate) struct Jwt<'a> {
    /// Signing key.
    pub(crate) key: &'a Key,
    /// `kid` and `sub`.
    pub(crate) kid: &'a str,
    /// `iss`.
    pub(crate) iss: &'a str,
    /// `nbf`.
    pub(crate) nbf: i64,
    /// `exp`.
    pub(crate) exp: i64,
    /// `uri` (REST tokens); `None` omits the claim, as websocket tokens do.
    pub(crate) uri: Option<String>,
}

impl Jwt<'_> {
    /// The signed token, with a fresh nonce.
    pub(crate) fn token(&self) -> String {
        let nonce = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let header = json!({"alg": self.key.alg(), "kid": self.kid, "nonce": nonce, "typ": "JWT"});
        let mut claims =
            json!({"sub": self.kid, "iss": self.iss, "nbf": self.nbf, "exp": self.exp});
        if let Some(uri) = &self.uri {
            claims["uri"] = json!(uri);
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = URL_SAFE_NO_PAD.encode(self.key.sign(input.as_bytes()));
        format!("{input}.{sig}")
    }
}

/// Wall-clock seconds.
pub(crate) fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The two test keys registered by their public keys.
pub(crate) fn api_keys(ec: &Key, ed: &Key) -> Vec<SimApiKey> {
    vec![
        SimApiKey {
            name: EC_NAME.into(),
            public_key_pem: ec.public_pem(),
        },
        SimApiKey {
            name: ED_NAME.into(),
            public_key_pem: ed.public_pem(),
        },
    ]
}

/// A valid websocket token (no `uri`) of `key` named `kid`.
pub(crate) fn ws_jwt(key: &Key, kid: &str) -> String {
    let nbf = now_s();
    Jwt {
        key,
        kid,
        iss: "cdp",
        nbf,
        exp: nbf + 120,
        uri: None,
    }
    .token()
}
