//! Building query strings in a fixed order, with values percent-encoded.
//!
//! The signature covers the exact bytes sent, so the query is built once, as a string, in
//! the order parameters are pushed, and sent verbatim (never re-encoded by an HTTP library).

use crate::signing::encode_value;

/// An ordered, encoded query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    q: String,
}

impl Params {
    /// No parameters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `key=value`, percent-encoding the value. Keys are gekko's own constants.
    pub fn push(&mut self, key: &str, value: &str) -> &mut Self {
        if !self.q.is_empty() {
            self.q.push('&');
        }
        self.q.push_str(key);
        self.q.push('=');
        self.q.push_str(&encode_value(value));
        self
    }

    /// Builder form of [`Self::push`].
    #[must_use]
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.push(key, value);
        self
    }

    /// The encoded query string, without a leading `?`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.q
    }

    /// Whether there are no parameters.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_encodes_values() {
        let p = Params::new()
            .with("symbol", "BTCUSD")
            .with("symbols", "[\"BTCUSD\",\"ETHUSD\"]")
            .with("newClientOrderId", "gk-1");
        assert_eq!(
            p.as_str(),
            "symbol=BTCUSD&symbols=%5B%22BTCUSD%22%2C%22ETHUSD%22%5D&newClientOrderId=gk-1"
        );
        assert!(Params::new().is_empty());
    }
}
