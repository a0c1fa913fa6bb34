//! `gekko certs dev`: a local CA, a server certificate and a client certificate for
//! compose and tests.
//!
//! ECDSA P-256 keys (rcgen on aws-lc-rs). The server certificate names every compose
//! service and the loopback addresses, so one certificate serves every container; the
//! client certificate is for mTLS. Keys are written with mode 0600 from the start (never
//! world-readable, not even briefly). Certificates are valid from the start of this year
//! for two years: long enough for development, short enough not to live forever.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The names on the dev server certificate: loopback plus every compose service.
pub const SERVER_NAMES: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "gekko",
    "configd",
    "healthd",
    "gateway-binanceus",
    "gateway-coinbase",
    "gateway-oanda",
    "inference",
    "strategy",
    "mcp",
];

/// The common name of the dev client certificate.
pub const CLIENT_NAME: &str = "gekko-client";

/// Making or writing the certificates failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen failed.
    #[error("cannot make the {what}: {source}")]
    Generate {
        /// Which item.
        what: &'static str,
        /// Why.
        #[source]
        source: rcgen::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The files `dev_certs` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCerts {
    /// The CA certificate (trust it in clients; `tls_client_ca` for mTLS).
    pub ca_cert: PathBuf,
    /// The CA key (0600); keep it to sign more certificates, or delete it.
    pub ca_key: PathBuf,
    /// The server certificate (`tls_cert`).
    pub server_cert: PathBuf,
    /// The server key (`tls_key`, 0600).
    pub server_key: PathBuf,
    /// The client certificate (mTLS).
    pub client_cert: PathBuf,
    /// The client key (0600).
    pub client_key: PathBuf,
}

impl DevCerts {
    /// The `ACCESS_CONTROL_CONFIG` entries that serve TLS with mTLS from these files.
    #[must_use]
    pub fn config_entries(&self) -> String {
        format!(
            "tls_cert={},tls_key={},tls_client_ca={}",
            self.server_cert.display(),
            self.server_key.display(),
            self.ca_cert.display()
        )
    }
}

fn generate<T>(what: &'static str, r: Result<T, rcgen::Error>) -> Result<T, CertError> {
    r.map_err(|source| CertError::Generate { what, source })
}

fn validity(params: &mut CertificateParams) {
    let year = i32::try_from(crate::totp::unix_now() / 31_556_952).map_or(2026, |y| 1970 + y);
    params.not_before = rcgen::date_time_ymd(year, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 2, 1, 1);
}

/// Makes the CA, server and client certificates in `out` (created if missing).
///
/// # Errors
/// [`CertError`] when generation fails or a file cannot be written.
pub fn dev_certs(out: &Path) -> Result<DevCerts, CertError> {
    std::fs::create_dir_all(out).map_err(|source| CertError::Write {
        path: out.to_owned(),
        source,
    })?;

    let ca_key = generate("CA key", KeyPair::generate())?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gekko dev CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut ca_params);
    let ca_cert = generate("CA certificate", ca_params.self_signed(&ca_key))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf =
        |names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose, what: &'static str| {
            let key = generate(what, KeyPair::generate())?;
            let mut params = generate(what, CertificateParams::new(names))?;
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![usage];
            validity(&mut params);
            let cert = generate(what, params.signed_by(&key, &issuer))?;
            Ok::<_, CertError>((cert, key))
        };
    let (server_cert, server_key) = leaf(
        SERVER_NAMES.iter().map(|s| (*s).to_owned()).collect(),
        "gekko",
        ExtendedKeyUsagePurpose::ServerAuth,
        "server certificate",
    )?;
    let (client_cert, client_key) = leaf(
        vec![CLIENT_NAME.to_owned()],
        CLIENT_NAME,
        ExtendedKeyUsagePurpose::ClientAuth,
        "client certificate",
    )?;

    let files = DevCerts {
        ca_cert: out.join("ca.pem"),
        ca_key: out.join("ca.key"),
        server_cert: out.join("server.pem"),
        server_key: out.join("server.key"),
        client_cert: out.join("client.pem"),
        client_key: out.join("client.key"),
    };
    write(&files.ca_cert, ca_cert.pem().as_bytes(), false)?;
    write(&files.ca_key, issuer.key().serialize_pem().as_bytes(), true)?;
    write(&files.server_cert, server_cert.pem().as_bytes(), false)?;
    write(
        &files.server_key,
        server_key.serialize_pem().as_bytes(),
        true,
    )?;
    write(&files.client_cert, client_cert.pem().as_bytes(), false)?;
    write(
        &files.client_key,
        client_key.serialize_pem().as_bytes(),
        true,
    )?;
    Ok(files)
}

/// Writes `bytes` to `path`, replacing it; a private file is created 0600 (and an
/// existing one is set to 0600 before it is written).
fn write(path: &Path, bytes: &[u8], private: bool) -> Result<(), CertError> {
    let err = |source| CertError::Write {
        path: path.to_owned(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(if private { 0o600 } else { 0o644 });
        if private && path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        }
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}
