//! Listen keys: the tokens that open a Binance.US user-data stream.
//!
//! A listen key names an account for `/ws/<listenKey>`; it lives 60 minutes unless kept
//! alive, and an account has at most one live key (creating again returns and extends
//! it). Keys are drawn from the engine's seeded id stream ([`Engine::random_id`]), so a
//! same-seed run hands out the same keys and client order ids in the same order, and
//! the registry lives under the same lock as the engine so a websocket handshake sees
//! exactly the keys the REST API has answered.

use std::collections::HashMap;

use super::error::ApiError;
use crate::engine::{Engine, EventSink};

/// A listenKey lives 60 minutes unless kept alive.
const LISTEN_KEY_TTL_MS: i64 = 60 * 60 * 1000;
/// Length of a generated key.
const LISTEN_KEY_LEN: usize = 60;

#[derive(Debug, Clone)]
struct ListenKey {
    api_key: String,
    expires_ms: i64,
}

/// The live (and expired, until replaced) listen keys.
#[derive(Debug, Default)]
pub(crate) struct ListenKeys {
    keys: HashMap<String, ListenKey>,
}

impl ListenKeys {
    /// `POST /api/v3/userDataStream`: the account's active key (extended) or a new one.
    pub(crate) fn create<S: EventSink>(
        &mut self,
        engine: &mut Engine<S>,
        api_key: &str,
        now: i64,
    ) -> String {
        let existing = self
            .keys
            .iter()
            .find(|(_, v)| v.api_key == api_key && v.expires_ms > now)
            .map(|(k, _)| k.clone());
        let key = match existing {
            Some(k) => k,
            None => engine.random_id(LISTEN_KEY_LEN),
        };
        self.keys.insert(
            key.clone(),
            ListenKey {
                api_key: api_key.to_owned(),
                expires_ms: now + LISTEN_KEY_TTL_MS,
            },
        );
        key
    }

    /// `PUT /api/v3/userDataStream`: extends a key by 60 minutes.
    ///
    /// # Errors
    /// -1125 when the key is unknown, expired, or belongs to another account.
    pub(crate) fn keepalive(&mut self, api_key: &str, key: &str, now: i64) -> Result<(), ApiError> {
        match self.keys.get_mut(key) {
            Some(v) if v.api_key == api_key && v.expires_ms > now => {
                v.expires_ms = now + LISTEN_KEY_TTL_MS;
                Ok(())
            }
            _ => Err(ApiError::invalid_listen_key()),
        }
    }

    /// `DELETE /api/v3/userDataStream`.
    ///
    /// # Errors
    /// -1125 when the key is unknown or belongs to another account.
    pub(crate) fn delete(&mut self, api_key: &str, key: &str) -> Result<(), ApiError> {
        match self.keys.get(key) {
            Some(v) if v.api_key == api_key => {
                self.keys.remove(key);
                Ok(())
            }
            _ => Err(ApiError::invalid_listen_key()),
        }
    }

    /// The account of a live key.
    pub(crate) fn resolve(&self, key: &str, now: i64) -> Option<String> {
        self.keys
            .get(key)
            .filter(|v| v.expires_ms > now)
            .map(|v| v.api_key.clone())
    }
}
