//! The [`Signer`] trait: how a venue turns a request payload into a signature.
//!
//! Signing is its own trait (as in barter-rs) so the raw client, a mock venue in tests and
//! benchmarks all go through the same code path, and so a venue with several key types
//! (Binance.US HMAC or Ed25519) picks one at construction without the client caring.

/// Signs request payloads for one venue account.
///
/// Implementations hold key material. Their `Debug` output must never include it: a
/// `Signer` ends up in `Debug` dumps of clients, configs and error reports.
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// Signs `payload` (the exact bytes the venue will verify) and returns the signature in
    /// the venue's text encoding (hex for HMAC-SHA256, base64 for Ed25519, ...).
    fn sign(&self, payload: &[u8]) -> String;

    /// The signature as it is appended to a query string or form body: [`Self::sign`] by
    /// default. A signer whose text encoding contains reserved characters (base64's `+`,
    /// `/`, `=`) percent-encodes here.
    fn sign_param(&self, payload: &[u8]) -> String {
        self.sign(payload)
    }
}

impl<S: Signer + ?Sized> Signer for std::sync::Arc<S> {
    fn sign(&self, payload: &[u8]) -> String {
        (**self).sign(payload)
    }

    fn sign_param(&self, payload: &[u8]) -> String {
        (**self).sign_param(payload)
    }
}

impl<S: Signer + ?Sized> Signer for Box<S> {
    fn sign(&self, payload: &[u8]) -> String {
        (**self).sign(payload)
    }

    fn sign_param(&self, payload: &[u8]) -> String {
        (**self).sign_param(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy signer: reverses the payload. Shows the trait is object safe and that wrappers
    /// forward.
    struct Reverse;

    impl std::fmt::Debug for Reverse {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Reverse { key: <redacted> }")
        }
    }

    impl Signer for Reverse {
        fn sign(&self, payload: &[u8]) -> String {
            payload.iter().rev().map(|&b| char::from(b)).collect()
        }
    }

    #[test]
    fn signer_is_object_safe_and_forwards() {
        let boxed: Box<dyn Signer> = Box::new(Reverse);
        assert_eq!(boxed.sign(b"abc"), "cba");
        let arc: std::sync::Arc<dyn Signer> = std::sync::Arc::new(Reverse);
        assert_eq!(arc.sign(b"xy"), "yx");
        assert!(!format!("{arc:?}").contains("abc"));
        assert_eq!(arc.sign_param(b"xy"), "yx", "defaults to sign");
    }
}
