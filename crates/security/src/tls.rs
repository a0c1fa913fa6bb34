//! TLS and mTLS material for gekko's servers, and the client side for tonic channels.
//!
//! The files named by `tls_cert`, `tls_key` and `tls_client_ca` are read and parsed once
//! at start-up, and a rustls configuration is built from them right away, so a missing
//! file, a file that is not PEM or a key that does not match its certificate stops the
//! start with an error that names the file, before any port is bound. Errors never quote
//! file contents.
//!
//! Both listeners use rustls with aws-lc-rs and rustls's protocol versions: TLS 1.3 and
//! 1.2, nothing older. gRPC goes through tonic's own TLS acceptor (the `tls-aws-lc`
//! feature) built from the same PEM; the HTTP `/metrics` listener uses
//! [`ServerTls::acceptor`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gekko_config::AccessControl;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret as _, SecretBox};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// The TLS versions gekko accepts, for posture reports.
pub const TLS_VERSIONS: &str = "TLS 1.3 and TLS 1.2 (rustls; nothing older)";

/// A TLS file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("{what} {}: cannot read it: {source}", path.display())]
    Read {
        /// Which setting (`tls_cert`, `tls_key`, …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no usable PEM item of the expected kind.
    #[error("{what} {}: {problem}", path.display())]
    Pem {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong (never the contents).
        problem: String,
    },
    /// rustls refused the material (a key that does not match the certificate, …).
    #[error("{what}: {source}")]
    Rustls {
        /// Which files.
        what: String,
        /// Why.
        #[source]
        source: rustls::Error,
    },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn certs(
    what: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |problem: String| TlsError::Pem {
        what,
        path: path.to_owned(),
        problem,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("is not valid PEM ({e})")))?;
    if certs.is_empty() {
        return Err(bad("holds no CERTIFICATE".to_owned()));
    }
    Ok(certs)
}

fn key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsError::Pem {
        what: "tls_key",
        path: path.to_owned(),
        problem: "holds no PKCS#8, PKCS#1 or SEC1 PRIVATE KEY".to_owned(),
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A CA bundle as a root store.
fn roots(what: &'static str, path: &Path, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certs(what, path, pem)? {
        store.add(cert).map_err(|source| TlsError::Rustls {
            what: format!("{what} {}", path.display()),
            source,
        })?;
    }
    Ok(store)
}

/// The server side: certificate, key and optional client CA, checked and ready.
pub struct ServerTls {
    cert_pem: Vec<u8>,
    key_pem: SecretBox<Vec<u8>>,
    client_ca_pem: Option<Vec<u8>>,
    rustls: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("mtls", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the files `access` names; `None` when TLS is not configured.
    ///
    /// # Errors
    /// [`TlsError`] naming the file that cannot be read or used.
    pub fn load(access: &AccessControl) -> Result<Option<Self>, TlsError> {
        let (Some(cert), Some(key)) = (&access.tls_cert, &access.tls_key) else {
            return Ok(None);
        };
        Self::from_files(cert, key, access.tls_client_ca.as_deref()).map(Some)
    }

    /// Loads a certificate chain, its key and, for mTLS, the CA client certificates must
    /// chain to.
    ///
    /// # Errors
    /// [`TlsError`] naming the file that cannot be read or used.
    pub fn from_files(
        cert: &Path,
        key_path: &Path,
        client_ca: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let cert_pem = read("tls_cert", cert)?;
        let key_pem = SecretBox::new(Box::new(read("tls_key", key_path)?));
        let client_ca_pem = client_ca.map(|p| read("tls_client_ca", p)).transpose()?;
        let chain = certs("tls_cert", cert, &cert_pem)?;
        let private = key(key_path, key_pem.expose_secret())?;
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsError::Rustls {
                what: "protocol versions".to_owned(),
                source,
            })?;
        let builder = match (&client_ca_pem, client_ca) {
            (Some(pem), Some(path)) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots("tls_client_ca", path, pem)?),
                    provider(),
                )
                .build()
                .map_err(|e| TlsError::Pem {
                    what: "tls_client_ca",
                    path: path.to_owned(),
                    problem: format!("cannot verify clients with it ({e})"),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let mut config =
            builder
                .with_single_cert(chain, private)
                .map_err(|source| TlsError::Rustls {
                    what: format!(
                        "tls_cert {} with tls_key {}",
                        cert.display(),
                        key_path.display()
                    ),
                    source,
                })?;
        // For the HTTP listener (axum serves HTTP/1.1 here); gRPC uses tonic's own
        // acceptor, which offers h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            cert_pem,
            key_pem,
            client_ca_pem,
            rustls: Arc::new(config),
        })
    }

    /// Whether clients must present a certificate.
    #[must_use]
    pub fn mtls(&self) -> bool {
        self.client_ca_pem.is_some()
    }

    /// The tonic server configuration (gRPC).
    #[must_use]
    pub fn tonic_config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(Identity::from_pem(
            &self.cert_pem,
            self.key_pem.expose_secret(),
        ));
        match &self.client_ca_pem {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }

    /// An acceptor for the HTTP listener, offering `http/1.1`.
    #[must_use]
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.rustls.clone())
    }
}

/// The client side of a TLS (or mTLS) gRPC connection.
pub struct ClientTls {
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, SecretBox<Vec<u8>>)>,
    domain: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("client_certificate", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusts the CA in `ca`; with `identity` (certificate, key), presents that client
    /// certificate (mTLS).
    ///
    /// # Errors
    /// [`TlsError`] naming the file that cannot be read or is not PEM.
    pub fn from_files(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, TlsError> {
        let ca_pem = read("CA", ca)?;
        roots("CA", ca, &ca_pem)?;
        let identity = identity
            .map(|(cert, key_path)| {
                let cert_pem = read("client certificate", cert)?;
                certs("client certificate", cert, &cert_pem)?;
                let key_pem = SecretBox::new(Box::new(read("client key", key_path)?));
                key(key_path, key_pem.expose_secret())?;
                Ok::<_, TlsError>((cert_pem, key_pem))
            })
            .transpose()?;
        Ok(Self {
            ca_pem,
            identity,
            domain: None,
        })
    }

    /// Verifies the server as `domain` instead of the URL's host (e.g. `gekko` when
    /// connecting by IP inside compose).
    #[must_use]
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// The tonic client configuration.
    #[must_use]
    pub fn tonic_config(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key.expose_secret()));
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        config
    }
}

/// A channel could not be set up or connected.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {endpoint}: {source}")]
pub struct ConnectError {
    /// The endpoint.
    pub endpoint: String,
    /// Why.
    #[source]
    pub source: tonic::transport::Error,
}

/// Connects a tonic channel to `endpoint` (`http://…`, or `https://…` with `tls`).
///
/// # Errors
/// [`ConnectError`] when the URL is invalid or the connection or handshake fails.
pub async fn connect(
    endpoint: &str,
    tls: Option<&ClientTls>,
) -> Result<tonic::transport::Channel, ConnectError> {
    let err = |source| ConnectError {
        endpoint: endpoint.to_owned(),
        source,
    };
    let mut ep = tonic::transport::Endpoint::from_shared(endpoint.to_owned()).map_err(err)?;
    if let Some(tls) = tls {
        ep = ep.tls_config(tls.tonic_config()).map_err(err)?;
    }
    ep.connect().await.map_err(err)
}

/// A client interceptor that sends a token (and, when set, a TOTP code) on every call:
/// what the CLI uses against a server with auth on.
#[derive(Clone)]
pub struct ClientAuth {
    authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    totp: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("token", &self.authorization.as_ref().map(|_| "***"))
            .field("totp", &self.totp.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A token or code that cannot be sent as a header (not visible ASCII).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {0} is not visible ASCII")]
pub struct BadCredential(&'static str);

impl ClientAuth {
    /// Sends `authorization: Bearer <token>` when `token` is given.
    ///
    /// # Errors
    /// [`BadCredential`] when the token is not visible ASCII.
    pub fn new(token: Option<&str>) -> Result<Self, BadCredential> {
        let authorization = token
            .map(|t| {
                let mut v: tonic::metadata::MetadataValue<_> = format!("Bearer {t}")
                    .parse()
                    .map_err(|_| BadCredential("token"))?;
                v.set_sensitive(true);
                Ok(v)
            })
            .transpose()?;
        Ok(Self {
            authorization,
            totp: None,
        })
    }

    /// Also sends `x-gekko-totp: <code>`.
    ///
    /// # Errors
    /// [`BadCredential`] when the code is not visible ASCII.
    pub fn with_totp(mut self, code: &str) -> Result<Self, BadCredential> {
        let mut v: tonic::metadata::MetadataValue<_> =
            code.parse().map_err(|_| BadCredential("TOTP code"))?;
        v.set_sensitive(true);
        self.totp = Some(v);
        Ok(self)
    }
}

impl tonic::service::Interceptor for ClientAuth {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.authorization {
            request.metadata_mut().insert("authorization", v.clone());
        }
        if let Some(v) = &self.totp {
            request
                .metadata_mut()
                .insert(crate::auth::TOTP_HEADER, v.clone());
        }
        Ok(request)
    }
}
