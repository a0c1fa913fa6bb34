//! The rustls client configuration for gekko's outgoing websocket connections.
//!
//! Venues serve `wss://` with certificates from public CAs, which the webpki root set
//! covers. The simulators (and a venue reached through a corporate TLS proxy) serve one
//! signed by a root nobody ships, so a stream must be able to trust extra PEM roots
//! *besides* the webpki ones, never instead of them. [`client_config`] builds that
//! configuration once; a stream hands it to the websocket transport through
//! [`StreamConfig::tls`](crate::StreamConfig::tls).
//!
//! The provider is aws-lc-rs, named explicitly rather than taken from the process default:
//! rustls's builder panics when no default is installed or when two providers are compiled
//! in, and a library must not depend on what its binary installed.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// A client configuration trusting the webpki roots plus every certificate in
/// `extra_roots_pem` (each entry one PEM document holding one or more `CERTIFICATE`s).
///
/// # Errors
/// A reason naming the entry (by position) when an entry is not PEM, holds no
/// certificate, or holds one rustls refuses as a trust anchor. The message never quotes the
/// PEM itself.
pub fn client_config(extra_roots_pem: &[String]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for (n, pem) in extra_roots_pem.iter().enumerate() {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("extra root #{n} is not valid PEM ({e})"))?;
        if certs.is_empty() {
            return Err(format!("extra root #{n} holds no CERTIFICATE"));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("extra root #{n} is not a usable trust anchor: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webpki_roots_alone_build_a_config() {
        assert!(client_config(&[]).is_ok());
    }

    #[test]
    fn bad_extra_roots_are_refused_with_their_position() {
        let err = client_config(&["not a pem".to_owned()]).unwrap_err();
        assert!(
            err.contains("#0") && err.contains("no CERTIFICATE"),
            "{err}"
        );
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = client_config(&[broken.to_owned()]).unwrap_err();
        assert!(err.contains("#0"), "{err}");
        assert!(!err.contains("AAAA"), "the PEM is never quoted: {err}");
    }
}
