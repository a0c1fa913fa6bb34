//! The TLS transport: a given certificate or a generated self-signed one, and the loop
//! that serves the REST router over it.
//!
//! Coinbase's official Python SDK only speaks `https`, so TLS is not optional for a
//! simulator that the SDK must run against unmodified. A generated certificate (rcgen,
//! SANs `localhost` and `127.0.0.1`) is the default because it needs no files; its PEM is
//! handed back so a client can trust exactly this one certificate. `axum::serve` only
//! takes a plain TCP listener, so connections are accepted here, the TLS handshake is run
//! with `tokio-rustls`, and each connection is served by hyper (HTTP/1.1 and HTTP/2).
//! The websocket listeners present the same certificate (`wss://`, like the venue's
//! hosts) through their own acceptor.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::config::TlsSource;
use crate::harness::Lifecycle;

/// How long a TLS handshake may take before the connection is dropped.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server certificate: the chain's PEM (what a client trusts) and the rustls config.
pub(crate) struct ServerCert {
    /// PEM of the certificate chain.
    pub(crate) cert_pem: String,
    /// The acceptor built from it for REST (ALPN `h2`, `http/1.1`).
    pub(crate) acceptor: TlsAcceptor,
    /// The acceptor for the websocket listeners: same certificate, ALPN `http/1.1` only,
    /// because a websocket upgrade is an HTTP/1.1 request and a client that also offers
    /// `h2` must not be talked into HTTP/2.
    pub(crate) ws_acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
}

/// Loads or generates the certificate and writes the PEM to `cert_out` if asked.
///
/// # Errors
/// Unreadable or invalid PEM files, a failed generation, an unwritable `cert_out`.
pub(crate) fn server_cert(src: &TlsSource) -> std::io::Result<ServerCert> {
    let (cert_pem, key_pem) = match src {
        TlsSource::Files { cert, key } => {
            let c = std::fs::read_to_string(cert)
                .map_err(|e| invalid(format!("reading TLS certificate {}: {e}", cert.display())))?;
            let k = std::fs::read_to_string(key)
                .map_err(|e| invalid(format!("reading TLS key {}: {e}", key.display())))?;
            (c, k)
        }
        TlsSource::SelfSigned { cert_out } => {
            let generated =
                rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                    .map_err(|e| invalid(format!("generating a TLS certificate: {e}")))?;
            let c = generated.cert.pem();
            if let Some(path) = cert_out {
                std::fs::write(path, &c).map_err(|e| {
                    invalid(format!(
                        "writing the certificate to {}: {e}",
                        path.display()
                    ))
                })?;
            }
            (c, generated.signing_key.serialize_pem())
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("TLS certificate PEM: {e}")))?;
    if chain.is_empty() {
        return Err(invalid("TLS certificate PEM holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| invalid(format!("TLS key PEM: {e}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid(format!("TLS certificate and key: {e}")))?;
    let mut ws_cfg = cfg.clone();
    ws_cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(ServerCert {
        cert_pem,
        acceptor: TlsAcceptor::from(Arc::new(cfg)),
        ws_acceptor: TlsAcceptor::from(Arc::new(ws_cfg)),
    })
}

/// Serves `router` over TLS on `listener` until the lifecycle is cancelled. A failed
/// handshake only ends that connection.
pub(crate) fn serve_tls(
    lifecycle: &Lifecycle,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: axum::Router,
) {
    let cancel = lifecycle.token().clone();
    let tracker = lifecycle.tracker().clone();
    lifecycle.spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => break,
                a = listener.accept() => a,
            };
            let stream = match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "sim-coinbase: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (acceptor, router, cancel) = (acceptor.clone(), router.clone(), cancel.clone());
            tracker.spawn(async move {
                let tls =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "sim-coinbase: TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                let builder = Builder::new(TokioExecutor::new());
                let conn =
                    builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(router));
                tokio::select! {
                    r = conn => if let Err(e) = r {
                        tracing::debug!(error = %e, "sim-coinbase: connection ended with an error");
                    },
                    () = cancel.cancelled() => {}
                }
            });
        }
    });
}
