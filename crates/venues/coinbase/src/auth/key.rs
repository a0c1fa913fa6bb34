//! CDP API keys: the key name and the private key, parsed once into signing keys.
//!
//! Coinbase hands out a CDP "Secret API key" as a name plus a secret, and the secret comes in
//! more shapes than any one SDK documents (reference §1.2): an EC P-256 key as a SEC1 PEM
//! (`BEGIN EC PRIVATE KEY`, the original CDP format) or a PKCS#8 PEM (`BEGIN PRIVATE KEY`),
//! signing ES256; or an Ed25519 key as base64 of 64 bytes (seed ‖ public key, the current CDP
//! download), base64 of the bare 32-byte seed, or a PKCS#8 PEM, signing EdDSA.
//!
//! Parsing happens once, at start-up, so that a bad key is a configuration error naming what
//! is wrong ("an EC key on P-384", "64 bytes whose public half does not match") instead of a
//! 401 on the first request. Env files often carry a PEM on one line with literal `\n`
//! sequences; those are normalised first.
//!
//! Secrets never appear in errors or `Debug` output, and every intermediate copy (the
//! normalised text, the decoded DER or base64 bytes) is wiped on drop with [`Zeroizing`];
//! the signing keys themselves (`p256::SecretKey`, `ed25519_dalek::SigningKey`) zeroize on
//! drop too.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use p256::pkcs8::der::Decode as _;
use p256::pkcs8::{EncodePublicKey as _, LineEnding, ObjectIdentifier, PrivateKeyInfoRef};
use zeroize::Zeroizing;

/// Longest key name echoed back in an error (names are not secret, but may be pasted junk).
const MAX_ECHOED_NAME: usize = 80;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Curves and algorithms an error can name, by OID.
const KNOWN_OIDS: &[(&str, &str)] = &[
    ("1.2.840.10045.3.1.7", "P-256"),
    ("1.3.132.0.34", "P-384"),
    ("1.3.132.0.35", "P-521"),
    ("1.3.132.0.10", "secp256k1"),
    ("1.2.840.10045.3.1.1", "P-192"),
    ("1.3.132.0.33", "P-224"),
    ("1.3.36.3.3.2.8.1.1.7", "brainpoolP256r1"),
    ("1.3.36.3.3.2.8.1.1.11", "brainpoolP384r1"),
    ("1.3.101.110", "X25519"),
    ("1.3.101.111", "X448"),
    ("1.3.101.112", "Ed25519"),
    ("1.3.101.113", "Ed448"),
    ("1.2.840.113549.1.1.1", "RSA"),
    ("1.2.840.10040.4.1", "DSA"),
];

/// The JWS algorithm a key signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// ECDSA P-256 with SHA-256; the signature is the 64-byte `r ‖ s`.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl JwtAlgorithm {
    /// The JWS `alg` header value: `ES256` or `EdDSA`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::Es256 => "ES256",
            JwtAlgorithm::EdDsa => "EdDSA",
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CDP key name or secret is unusable. Messages name the problem and never contain the
/// secret (the key name, which is not secret, is echoed, shortened).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdpKeyError {
    /// The key name is empty.
    #[error("the CDP API key name is empty")]
    EmptyName,
    /// The key name has neither accepted shape.
    #[error(
        "the CDP API key name {0:?} is neither `organizations/{{org_id}}/apiKeys/{{key_id}}` nor a bare UUID"
    )]
    BadName(String),
    /// The secret is empty.
    #[error("the CDP API secret is empty")]
    EmptySecret,
    /// A PEM whose label is not a private key CDP issues.
    #[error(
        "the CDP API secret is a PEM {0:?}; expected `EC PRIVATE KEY` (SEC1) or `PRIVATE KEY` (PKCS#8)"
    )]
    UnsupportedPem(String),
    /// An encrypted private key; CDP keys are downloaded unencrypted.
    #[error(
        "the CDP API secret is an encrypted private key; decrypt it first (e.g. `openssl pkey`)"
    )]
    EncryptedPem,
    /// A public key where the private key belongs.
    #[error("the CDP API secret is a public key; the private key is needed")]
    PublicKey,
    /// An RSA key.
    #[error("the CDP API secret is an RSA key; CDP keys are EC P-256 (ES256) or Ed25519 (EdDSA)")]
    Rsa,
    /// An EC key on a curve other than P-256.
    #[error("the CDP API secret is an EC key on {0}, not P-256")]
    WrongCurve(String),
    /// A PKCS#8 key of an algorithm that is neither EC nor Ed25519.
    #[error(
        "the CDP API secret is a PKCS#8 {0} key; CDP keys are EC P-256 (ES256) or Ed25519 (EdDSA)"
    )]
    UnsupportedAlgorithm(String),
    /// The PEM structure or its DER contents are broken.
    #[error("the CDP API secret is a malformed {kind} PEM: {reason}")]
    MalformedPem {
        /// Which PEM: `EC PRIVATE KEY` or `PRIVATE KEY`.
        kind: &'static str,
        /// What is wrong (never key material).
        reason: &'static str,
    },
    /// Not a PEM, and not valid base64 either.
    #[error(
        "the CDP API secret is neither a PEM private key nor base64 (an Ed25519 key is base64 of 32 or 64 bytes)"
    )]
    NotBase64,
    /// Base64 of the wrong number of bytes for an Ed25519 key.
    #[error(
        "the CDP API secret decodes to {0} bytes; an Ed25519 key is 32 bytes (seed) or 64 bytes (seed followed by public key)"
    )]
    BadLength(usize),
    /// A 64-byte Ed25519 key whose second half is not the seed's public key.
    #[error(
        "the CDP API secret's 64 bytes are not an Ed25519 key pair: the public half does not match the seed"
    )]
    PublicHalfMismatch,
}

/// The parsed private key.
enum KeyMaterial {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

/// A parsed CDP API key: its name (the JWT `kid` and `sub`) and its signing key.
///
/// `Debug` shows the name and algorithm only.
pub struct CdpKey {
    name: String,
    key: KeyMaterial,
}

impl fmt::Debug for CdpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CdpKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl CdpKey {
    /// Parses a key name and a secret in any accepted form (see the module docs).
    ///
    /// Surrounding whitespace is ignored on both; a PEM with literal `\n` (or `\r\n`)
    /// sequences, as env files carry them, is normalised; a secret wrapped in one pair of
    /// matching quotes is unwrapped.
    ///
    /// # Errors
    /// [`CdpKeyError`] naming what is wrong with the name or the secret. The name is checked
    /// first.
    pub fn parse(name: &str, secret: &str) -> Result<Self, CdpKeyError> {
        let name = validate_name(name)?;
        let key = parse_secret(secret)?;
        Ok(Self { name, key })
    }

    /// Checks only the key name's shape (what [`Self::parse`] checks first), so that a
    /// caller can report a bad name and a bad secret as two problems.
    ///
    /// # Errors
    /// [`CdpKeyError::EmptyName`] or [`CdpKeyError::BadName`].
    pub fn check_name(name: &str) -> Result<(), CdpKeyError> {
        validate_name(name).map(drop)
    }

    /// Checks only the secret (what [`Self::parse`] checks after the name); the key
    /// material is dropped (zeroised) before returning.
    ///
    /// # Errors
    /// [`CdpKeyError`] naming what is wrong with the secret, never echoing it.
    pub fn check_secret(secret: &str) -> Result<(), CdpKeyError> {
        parse_secret(secret).map(drop)
    }

    /// A fresh random key of `algorithm` under `name` (paper trading and tests: the
    /// simulator is given [`Self::public_key_pem`]).
    ///
    /// # Errors
    /// [`CdpKeyError`] when `name` has neither accepted shape.
    pub fn generate(name: &str, algorithm: JwtAlgorithm) -> Result<Self, CdpKeyError> {
        let name = validate_name(name)?;
        let key = match algorithm {
            JwtAlgorithm::EdDsa => {
                let seed = Zeroizing::new(rand::random::<[u8; 32]>());
                KeyMaterial::EdDsa(ed25519_dalek::SigningKey::from_bytes(&seed))
            }
            JwtAlgorithm::Es256 => loop {
                // A uniformly random 32-byte string is a valid scalar except with
                // probability ~2^-32 (zero or at least the group order); draw again then.
                let bytes = Zeroizing::new(rand::random::<[u8; 32]>());
                if let Ok(sk) = p256::SecretKey::from_slice(bytes.as_slice()) {
                    break KeyMaterial::Es256(p256::ecdsa::SigningKey::from(&sk));
                }
            },
        };
        Ok(Self { name, key })
    }

    /// The key name, as sent in `kid` and `sub`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn algorithm(&self) -> JwtAlgorithm {
        match self.key {
            KeyMaterial::Es256(_) => JwtAlgorithm::Es256,
            KeyMaterial::EdDsa(_) => JwtAlgorithm::EdDsa,
        }
    }

    /// The public key as an SPKI PEM (`BEGIN PUBLIC KEY`), the form a venue (or the
    /// simulator) registers.
    #[must_use]
    pub fn public_key_pem(&self) -> String {
        let pem = match &self.key {
            KeyMaterial::Es256(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
            KeyMaterial::EdDsa(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
        };
        // Encoding a valid public key into a PEM cannot fail (the only error is a write
        // past a fixed buffer, and these encoders allocate).
        pem.unwrap_or_default()
    }

    /// Signs `message` with the raw algorithm: the 64-byte JOSE signature (`r ‖ s` for
    /// ES256, the Ed25519 signature for EdDSA). The JWT builder signs through this; it is
    /// public so benchmarks can compare a whole token with the bare signature.
    ///
    /// # Errors
    /// [`SignError`] if ECDSA signing fails, which RFC 6979 deterministic nonces make
    /// practically impossible; the error is still surfaced rather than panicking.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        match &self.key {
            KeyMaterial::Es256(k) => {
                let sig: p256::ecdsa::Signature =
                    p256::ecdsa::signature::Signer::try_sign(k, message).map_err(|_| SignError)?;
                Ok(sig.to_bytes().into())
            }
            KeyMaterial::EdDsa(k) => Ok(ed25519_dalek::Signer::sign(k, message).to_bytes()),
        }
    }
}

/// Signing failed (see [`CdpKey::sign`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ES256 signing failed")]
pub struct SignError;

/// Checks the key name's shape and returns it trimmed.
fn validate_name(name: &str) -> Result<String, CdpKeyError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(CdpKeyError::EmptyName);
    }
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let ok = match name.split('/').collect::<Vec<_>>().as_slice() {
        ["organizations", org, "apiKeys", id] => segment_ok(org) && segment_ok(id),
        [bare] => is_uuid(bare),
        _ => false,
    };
    if ok {
        Ok(name.to_owned())
    } else {
        let shown: String = name.chars().take(MAX_ECHOED_NAME).collect();
        Err(CdpKeyError::BadName(shown))
    }
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Trims, unwraps one pair of matching quotes, and turns literal `\r\n` / `\n` sequences
/// into newlines.
fn normalise(secret: &str) -> Zeroizing<String> {
    let mut s = secret.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            s = s[1..s.len() - 1].trim();
            break;
        }
    }
    let mut out = Zeroizing::new(String::with_capacity(s.len()));
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("\\r\\n") {
            out.push('\n');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("\\n") {
            out.push('\n');
            rest = t;
        } else {
            out.push('\\');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn parse_secret(secret: &str) -> Result<KeyMaterial, CdpKeyError> {
    let text = normalise(secret);
    if text.is_empty() {
        return Err(CdpKeyError::EmptySecret);
    }
    if text.starts_with("-----BEGIN ") {
        let (label, der) = decode_pem(&text)?;
        match label.as_str() {
            "EC PRIVATE KEY" => parse_sec1(&der),
            "PRIVATE KEY" => parse_pkcs8(&der),
            "ENCRYPTED PRIVATE KEY" => Err(CdpKeyError::EncryptedPem),
            "RSA PRIVATE KEY" => Err(CdpKeyError::Rsa),
            "PUBLIC KEY" | "EC PUBLIC KEY" | "RSA PUBLIC KEY" => Err(CdpKeyError::PublicKey),
            _ => Err(CdpKeyError::UnsupportedPem(label)),
        }
    } else {
        parse_ed25519_base64(&text)
    }
}

/// Splits a PEM into its label and DER body. Header lines (`Proc-Type: ...`, as legacy
/// encrypted keys carry) are skipped; their presence means an encrypted key.
fn decode_pem(text: &str) -> Result<(String, Zeroizing<Vec<u8>>), CdpKeyError> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    let label = first
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or(CdpKeyError::MalformedPem {
            kind: "PEM",
            reason: "the BEGIN line is broken",
        })?
        .to_owned();
    let kind = pem_kind(&label);
    let end = format!("-----END {label}-----");
    let mut body = Zeroizing::new(String::new());
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        if line.contains(':') {
            if line.starts_with("Proc-Type") || line.starts_with("DEK-Info") {
                return Err(CdpKeyError::EncryptedPem);
            }
            continue;
        }
        body.push_str(line);
    }
    if !ended {
        return Err(CdpKeyError::MalformedPem {
            kind,
            reason: "no matching END line",
        });
    }
    let der = B64
        .decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| CdpKeyError::MalformedPem {
            kind,
            reason: "the body is not valid base64",
        })?;
    Ok((label, der))
}

/// A `'static` name for the PEM kinds this module parses (for error messages).
fn pem_kind(label: &str) -> &'static str {
    match label {
        "EC PRIVATE KEY" => "EC PRIVATE KEY",
        "PRIVATE KEY" => "PRIVATE KEY",
        _ => "PEM",
    }
}

/// The name of the first known curve or algorithm whose OID appears in `der`, for errors
/// about a key this module cannot use.
fn named_oid_in(der: &[u8]) -> Option<&'static str> {
    KNOWN_OIDS.iter().find_map(|(oid, name)| {
        let oid = ObjectIdentifier::new(oid).ok()?;
        let value = oid.as_bytes();
        let mut tlv = Vec::with_capacity(value.len() + 2);
        tlv.push(0x06);
        tlv.push(u8::try_from(value.len()).ok()?);
        tlv.extend_from_slice(value);
        der.windows(tlv.len()).any(|w| w == tlv).then_some(*name)
    })
}

fn oid_name(oid: ObjectIdentifier) -> String {
    let dotted = oid.to_string();
    KNOWN_OIDS
        .iter()
        .find(|(o, _)| *o == dotted)
        .map_or(dotted, |(_, name)| (*name).to_owned())
}

/// SEC1 `ECPrivateKey`: must be on P-256.
fn parse_sec1(der: &[u8]) -> Result<KeyMaterial, CdpKeyError> {
    match p256::SecretKey::from_sec1_der(der) {
        Ok(sk) => Ok(KeyMaterial::Es256(p256::ecdsa::SigningKey::from(&sk))),
        Err(_) => match named_oid_in(der) {
            Some(curve) if curve != "P-256" => Err(CdpKeyError::WrongCurve(curve.to_owned())),
            _ => Err(CdpKeyError::MalformedPem {
                kind: "EC PRIVATE KEY",
                reason: "the contents are not a valid P-256 private key",
            }),
        },
    }
}

/// PKCS#8 `PrivateKeyInfo`: EC P-256 or Ed25519, by its algorithm identifier.
fn parse_pkcs8(der: &[u8]) -> Result<KeyMaterial, CdpKeyError> {
    let malformed = |reason| CdpKeyError::MalformedPem {
        kind: "PRIVATE KEY",
        reason,
    };
    let info =
        PrivateKeyInfoRef::from_der(der).map_err(|_| malformed("not a PKCS#8 PrivateKeyInfo"))?;
    let alg = info.algorithm.oid;
    if alg == OID_EC_PUBLIC_KEY {
        let curve = info
            .algorithm
            .parameters_oid()
            .map_err(|_| malformed("the EC key names no curve"))?;
        if curve != OID_P256 {
            return Err(CdpKeyError::WrongCurve(oid_name(curve)));
        }
        let sk = <p256::SecretKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_der(der)
            .map_err(|_| malformed("the contents are not a valid P-256 private key"))?;
        Ok(KeyMaterial::Es256(p256::ecdsa::SigningKey::from(&sk)))
    } else if alg == OID_ED25519 {
        let sk = ed25519_dalek::SigningKey::from_pkcs8_der(der)
            .map_err(|_| malformed("the contents are not a valid Ed25519 private key"))?;
        Ok(KeyMaterial::EdDsa(sk))
    } else if alg == OID_RSA {
        Err(CdpKeyError::Rsa)
    } else {
        Err(CdpKeyError::UnsupportedAlgorithm(oid_name(alg)))
    }
}

/// Base64 of a 64-byte seed ‖ public key (the halves must agree) or a 32-byte seed.
fn parse_ed25519_base64(text: &str) -> Result<KeyMaterial, CdpKeyError> {
    let compact: Zeroizing<String> =
        Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
    let bytes = B64
        .decode(compact.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| CdpKeyError::NotBase64)?;
    match bytes.len() {
        64 => {
            let mut pair = Zeroizing::new([0u8; 64]);
            pair.copy_from_slice(&bytes);
            ed25519_dalek::SigningKey::from_keypair_bytes(&pair)
                .map(KeyMaterial::EdDsa)
                .map_err(|_| CdpKeyError::PublicHalfMismatch)
        }
        32 => {
            let mut seed = Zeroizing::new([0u8; 32]);
            seed.copy_from_slice(&bytes);
            Ok(KeyMaterial::EdDsa(ed25519_dalek::SigningKey::from_bytes(
                &seed,
            )))
        }
        n => Err(CdpKeyError::BadLength(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("organizations/test-organization/apiKeys/test-api-key").is_ok());
        assert!(validate_name(" 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0\n").is_ok());
        for bad in [
            "organizations//apiKeys/x",
            "organizations/o/apiKeys/",
            "organization/o/apiKeys/k",
            "organizations/o/apikeys/k",
            "organizations/o/apiKeys/k/extra",
            "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f",
            "0b1c2d3e4f5061728394a5b6c7d8e9f0",
            "organizations/o o/apiKeys/k",
        ] {
            assert!(
                matches!(validate_name(bad), Err(CdpKeyError::BadName(_))),
                "{bad}"
            );
        }
        assert_eq!(validate_name("  "), Err(CdpKeyError::EmptyName));
    }

    #[test]
    fn normalisation() {
        assert_eq!(&*normalise("\"a\\nb\\r\\nc\""), "a\nb\nc");
        assert_eq!(&*normalise("  'x'  "), "x");
        assert_eq!(&*normalise("a\\tb"), "a\\tb");
        assert_eq!(&*normalise("\"unbalanced"), "\"unbalanced");
    }

    #[test]
    fn oids_are_named() {
        let p384 = ObjectIdentifier::new_unwrap("1.3.132.0.34");
        assert_eq!(oid_name(p384), "P-384");
        assert_eq!(oid_name(ObjectIdentifier::new_unwrap("1.2.3.4")), "1.2.3.4");
    }
}
