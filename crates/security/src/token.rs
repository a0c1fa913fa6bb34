//! API tokens: how they are made, stored (as SHA-256 only) and checked.
//!
//! A token is `gk_` plus the base64url of 32 random bytes: 256 bits, so a hash without a
//! salt or a slow KDF is enough (nothing to brute-force), and the config holds only the
//! hash. A presented token is hashed and compared, in constant time, with **every**
//! configured hash: the time taken does not depend on which entry (if any) matched or how
//! many leading bytes agreed.

use base64::Engine as _;
use gekko_config::{AccessControl, AccessToken, Role};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::totp::Totp;

/// The prefix of tokens made by [`generate_token`]; it makes them easy to spot in a leak
/// scanner.
pub const TOKEN_PREFIX: &str = "gk_";

/// One configured token as the auth layer holds it.
#[derive(Debug)]
pub struct TokenEntry {
    /// Its unique name.
    pub name: String,
    /// Its role.
    pub role: Role,
    sha256: [u8; 32],
    /// Its second factor, if it has one.
    pub totp: Option<Totp>,
}

/// The configured tokens.
#[derive(Debug, Default)]
pub struct TokenSet {
    entries: Vec<TokenEntry>,
}

/// A configured TOTP secret did not decode (the loader checks it, so this means a
/// config built by hand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token `{0}`: the TOTP secret is not base32")]
pub struct BadTokenConfig(pub String);

impl TokenSet {
    /// The tokens of an access-control section (including `legacy`).
    ///
    /// # Errors
    /// [`BadTokenConfig`] names a token whose TOTP secret does not decode.
    pub fn from_config(access: &AccessControl) -> Result<Self, BadTokenConfig> {
        access
            .tokens
            .iter()
            .map(|t: &AccessToken| {
                let totp = t
                    .totp_secret
                    .as_ref()
                    .map(|s| Totp::from_base32(s.expose_secret()))
                    .transpose()
                    .map_err(|_| BadTokenConfig(t.name.clone()))?;
                Ok(TokenEntry {
                    name: t.name.clone(),
                    role: t.role,
                    sha256: t.sha256,
                    totp,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|entries| Self { entries })
    }

    /// Whether no token is configured (auth off).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry whose hash is the SHA-256 of `presented`, if any.
    #[must_use]
    pub fn authenticate(&self, presented: &str) -> Option<&TokenEntry> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        // Every entry is compared; no early exit.
        for entry in &self.entries {
            if bool::from(entry.sha256.ct_eq(&digest)) {
                found = Some(entry);
            }
        }
        found
    }
}

/// A freshly made token and what to configure for it.
#[derive(Debug)]
pub struct NewToken {
    /// The token itself; shown once, never stored.
    pub token: SecretString,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The SHA-256 of the token, lower-case hex.
    pub sha256_hex: String,
    /// A fresh TOTP secret (base32), when asked for.
    pub totp_secret: Option<SecretString>,
}

impl NewToken {
    /// The `tokens=` entry for this token: `name:role:sha256hex[:totp=SECRET]`.
    #[must_use]
    pub fn config_entry(&self) -> String {
        let mut entry = format!("{}:{}:{}", self.name, self.role, self.sha256_hex);
        if let Some(secret) = &self.totp_secret {
            entry.push_str(":totp=");
            entry.push_str(secret.expose_secret());
        }
        entry
    }
}

/// Makes a random token named `name` with role `role`, and a TOTP secret if `totp`.
#[must_use]
pub fn generate_token(name: &str, role: Role, totp: bool) -> NewToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    bytes.fill(0);
    let sha256_hex = sha256_hex(&token);
    NewToken {
        token: SecretString::from(token),
        name: name.to_owned(),
        role,
        sha256_hex,
        totp_secret: totp.then(crate::totp::generate_secret),
    }
}

/// Lower-case hex SHA-256 of `text`: what `tokens=` holds for a token.
#[must_use]
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_configure_and_authenticate() {
        let new = generate_token("bot", Role::Trader, false);
        assert!(new.token.expose_secret().starts_with(TOKEN_PREFIX));
        assert_eq!(new.token.expose_secret().len(), 3 + 43);
        let vars = std::collections::BTreeMap::from([(
            "ACCESS_CONTROL_CONFIG".to_owned(),
            format!("tokens={}", new.config_entry()),
        )]);
        let cfg = gekko_config::from_vars(&vars).expect("the printed entry is valid config");
        let set = TokenSet::from_config(&cfg.config.access_control).unwrap();
        let hit = set
            .authenticate(new.token.expose_secret())
            .expect("matches");
        assert_eq!((hit.name.as_str(), hit.role), ("bot", Role::Trader));
        assert!(set.authenticate("gk_wrong").is_none());
        assert!(set.authenticate("").is_none());
        assert_ne!(
            generate_token("a", Role::Viewer, false)
                .token
                .expose_secret(),
            new.token.expose_secret()
        );
    }

    #[test]
    fn totp_entries_carry_the_secret() {
        let new = generate_token("ops", Role::Admin, true);
        let entry = new.config_entry();
        assert!(entry.starts_with("ops:admin:"));
        assert!(entry.contains(":totp="));
        let vars = std::collections::BTreeMap::from([(
            "ACCESS_CONTROL_CONFIG".to_owned(),
            format!("tokens={entry}"),
        )]);
        let cfg = gekko_config::from_vars(&vars).expect("valid");
        let set = TokenSet::from_config(&cfg.config.access_control).unwrap();
        assert!(
            set.authenticate(new.token.expose_secret())
                .unwrap()
                .totp
                .is_some()
        );
    }
}
