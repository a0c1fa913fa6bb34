//! RFC 6238 time-based one-time passwords: the second factor for admin actions.
//!
//! HMAC-SHA1 over the 30-second step counter, dynamic truncation to 6 digits (RFC 4226
//! §5.3), accepted one step either side of now so a phone a few seconds off still works.
//! SHA-1 is what every authenticator app implements for `otpauth://` secrets; within HMAC
//! its collision weakness does not apply.
//!
//! Replay protection is not here but in [`crate::auth`]: it remembers the last step each
//! token used, which needs shared state across calls.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit as _, Mac as _};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretBox, SecretString};
use sha1::Sha1;
use subtle::ConstantTimeEq as _;

/// The time step, in seconds (RFC 6238's default `X`).
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
pub const SKEW_STEPS: u64 = 1;
/// Bytes in a secret made by [`generate_secret`] (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;

/// A TOTP secret: the raw key bytes, zeroized on drop and never printed.
pub struct Totp {
    key: SecretBox<Vec<u8>>,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Totp(***)")
    }
}

/// A TOTP secret that is not base32 (RFC 4648, `A`-`Z` and `2`-`7`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the TOTP secret is not base32")]
pub struct BadSecret;

impl Totp {
    /// A secret from raw key bytes.
    #[must_use]
    pub fn from_bytes(key: Vec<u8>) -> Self {
        Self {
            key: SecretBox::new(Box::new(key)),
        }
    }

    /// A secret from its base32 text (case-insensitive, padding and spaces ignored), the
    /// form authenticator apps and `tokens=…:totp=` use.
    ///
    /// # Errors
    /// [`BadSecret`] when the text is not base32.
    pub fn from_base32(text: &str) -> Result<Self, BadSecret> {
        let normal: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        data_encoding::BASE32_NOPAD
            .decode(normal.as_bytes())
            .map(Self::from_bytes)
            .map_err(|_| BadSecret)
    }

    /// The step counter for a Unix time in seconds.
    #[must_use]
    pub const fn step_at(unix_secs: u64) -> u64 {
        unix_secs / STEP_SECS
    }

    /// The code for step counter `step` (RFC 4226 HOTP with that counter).
    #[must_use]
    pub fn code_for_step(&self, step: u64) -> u32 {
        // An HMAC key may be any length, so this cannot fail.
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(self.key.expose_secret()) else {
            return 0;
        };
        mac.update(&step.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let offset = usize::from(digest[digest.len() - 1] & 0x0f);
        let bin = (u32::from(digest[offset]) & 0x7f) << 24
            | u32::from(digest[offset + 1]) << 16
            | u32::from(digest[offset + 2]) << 8
            | u32::from(digest[offset + 3]);
        bin % 10u32.pow(DIGITS)
    }

    /// The 6-digit code at Unix time `unix_secs`, zero-padded.
    #[must_use]
    pub fn code_at(&self, unix_secs: u64) -> String {
        format!(
            "{:0width$}",
            self.code_for_step(Self::step_at(unix_secs)),
            width = DIGITS as usize
        )
    }

    /// The code now.
    #[must_use]
    pub fn code_now(&self) -> String {
        self.code_at(unix_now())
    }

    /// The step whose code `code` is, among the steps within [`SKEW_STEPS`] of
    /// `unix_secs`; `None` if it matches none. Every candidate is compared, in constant
    /// time, so the timing says nothing about how close a guess was.
    #[must_use]
    pub fn verify_at(&self, code: &str, unix_secs: u64) -> Option<u64> {
        let code = code.trim();
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = Self::step_at(unix_secs);
        let mut found = None;
        for step in now.saturating_sub(SKEW_STEPS)..=now.saturating_add(SKEW_STEPS) {
            let want = format!(
                "{:0width$}",
                self.code_for_step(step),
                width = DIGITS as usize
            );
            if bool::from(want.as_bytes().ct_eq(code.as_bytes())) {
                found = Some(step);
            }
        }
        found
    }
}

/// A fresh random secret, as base32 without padding.
#[must_use]
pub fn generate_secret() -> SecretString {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let text = data_encoding::BASE32_NOPAD.encode(&bytes);
    bytes.fill(0);
    SecretString::from(text)
}

/// The `otpauth://totp/…` URI authenticator apps import (often as a QR code).
#[must_use]
pub fn otpauth_uri(issuer: &str, account: &str, secret_base32: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_base32}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// Seconds since the Unix epoch (0 if the clock is before it).
#[must_use]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows: the 20-byte ASCII secret and 8-digit codes. Our
    /// codes are the low 6 digits of the same truncated value.
    const RFC_VECTORS: [(u64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    fn rfc_secret() -> Totp {
        Totp::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn rfc_6238_sha1_vectors() {
        let totp = rfc_secret();
        for (time, eight) in RFC_VECTORS {
            assert_eq!(totp.code_at(time), eight[2..], "T={time}");
        }
    }

    #[test]
    fn base32_secret_matches_the_raw_one() {
        let b32 = Totp::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(b32.code_at(59), "287082");
        assert!(Totp::from_base32("not base32!").is_err());
    }

    #[test]
    fn verify_accepts_one_step_either_side_only() {
        let totp = rfc_secret();
        let t = 1_111_111_111;
        let code = totp.code_at(t);
        assert_eq!(totp.verify_at(&code, t), Some(Totp::step_at(t)));
        assert_eq!(totp.verify_at(&code, t + 30), Some(Totp::step_at(t)));
        assert_eq!(totp.verify_at(&code, t - 30), Some(Totp::step_at(t)));
        assert_eq!(totp.verify_at(&code, t + 60), None);
        assert_eq!(totp.verify_at("12345", t), None);
        assert_eq!(totp.verify_at("abcdef", t), None);
    }

    #[test]
    fn generated_secrets_are_fresh_and_usable() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert_eq!(a.expose_secret().len(), 32);
        assert!(Totp::from_base32(a.expose_secret()).is_ok());
        let uri = otpauth_uri("gekko", "ops bot", a.expose_secret());
        assert!(
            uri.starts_with("otpauth://totp/gekko:ops%20bot?secret="),
            "{uri}"
        );
    }
}
