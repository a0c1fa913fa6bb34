//! Venue credentials served by configd (`CONFIG_SERVICE`), fetched before a service's
//! configuration is validated.
//!
//! In docker compose only configd holds the credentials. A gateway started with
//! `CONFIG_SERVICE url=...,token_file=...` calls configd's `GetSecrets` for each venue it
//! hosts, over gRPC with `authorization: Bearer <token>` (admin role at configd), and the
//! answer is layered over its own variables (`gekko_config::load_with_served`). configd
//! may start after the gateway, so an unreachable or unavailable configd is retried for up
//! to `wait`; a refused token, an unknown venue or a venue with no credentials at configd
//! is not retried. Either way nothing starts with part of its secrets: the fetch is all the
//! venues or nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use gekko_config::{ConfigServiceSettings, VenueId};
use gekko_proto::v1 as pb;
use gekko_proto::v1::config_service_client::ConfigServiceClient;
use secrecy::ExposeSecret as _;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request};

/// Why the credentials could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The setting or configd's answer is wrong; retrying will not help (exit 64).
    Config(String),
    /// configd did not answer within `wait` (exit 69).
    Unavailable(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(m) | Self::Unavailable(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for FetchError {}

/// The bearer token: `token`, or the first line of `token_file`.
fn token(settings: &ConfigServiceSettings) -> Result<String, FetchError> {
    if let Some(t) = &settings.token {
        return Ok(t.expose_secret().to_owned());
    }
    let Some(path) = &settings.token_file else {
        return Err(FetchError::Config(
            "CONFIG_SERVICE: no token or token_file".to_owned(),
        ));
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        FetchError::Config(format!(
            "CONFIG_SERVICE: token_file {} cannot be read: {e}",
            path.display()
        ))
    })?;
    let line = text.lines().next().unwrap_or_default().trim().to_owned();
    if line.is_empty() {
        return Err(FetchError::Config(format!(
            "CONFIG_SERVICE: token_file {} is empty",
            path.display()
        )));
    }
    Ok(line)
}

fn endpoint(settings: &ConfigServiceSettings, url: &str) -> Result<Endpoint, FetchError> {
    let bad =
        |e: &dyn std::fmt::Display| FetchError::Config(format!("CONFIG_SERVICE: url {url}: {e}"));
    let mut ep = Endpoint::from_shared(url.to_owned())
        .map_err(|e| bad(&e))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5));
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = &settings.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                FetchError::Config(format!(
                    "CONFIG_SERVICE: ca_file {} cannot be read: {e}",
                    ca.display()
                ))
            })?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        ep = ep.tls_config(tls).map_err(|e| bad(&e))?;
    }
    Ok(ep)
}

/// Asks configd for the credentials of every venue in `venues`; the variables to layer
/// over the service's own (see the module docs).
///
/// # Errors
/// [`FetchError::Config`] for a bad setting, a refused token, a venue configd does not know
/// or holds no credentials for; [`FetchError::Unavailable`] when configd did not answer
/// within `wait`.
pub async fn fetch(
    settings: &ConfigServiceSettings,
    venues: &[VenueId],
) -> Result<BTreeMap<String, String>, FetchError> {
    let Some(url) = settings.url.as_deref() else {
        return Ok(BTreeMap::new());
    };
    let token = token(settings)?;
    let bearer: tonic::metadata::MetadataValue<_> =
        format!("Bearer {token}").parse().map_err(|_| {
            FetchError::Config("CONFIG_SERVICE: the token is not a valid header value".to_owned())
        })?;
    let ep = endpoint(settings, url)?;
    let deadline = tokio::time::Instant::now() + settings.wait;
    let mut pause = Duration::from_millis(200);
    let mut served = BTreeMap::new();
    for venue in venues {
        let answer = loop {
            let attempt = async {
                let channel: Channel = ep.connect().await.map_err(|e| {
                    tonic::Status::unavailable(format!(
                        "cannot connect: {}",
                        crate::error_chain(&e)
                    ))
                })?;
                let mut req = Request::new(pb::GetSecretsRequest {
                    venue: venue.as_str().to_owned(),
                });
                req.metadata_mut().insert("authorization", bearer.clone());
                ConfigServiceClient::new(channel).get_secrets(req).await
            };
            match attempt.await {
                Ok(r) => break r.into_inner(),
                Err(s) if matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded) => {
                    if tokio::time::Instant::now() + pause > deadline {
                        return Err(FetchError::Unavailable(format!(
                            "configd at {url} did not answer GetSecrets for {venue} within {:?}: {}",
                            settings.wait,
                            s.message()
                        )));
                    }
                    tracing::info!(%url, venue = venue.as_str(), reason = s.message(), "configd not answering yet; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(s) => {
                    return Err(FetchError::Config(format!(
                        "configd at {url} refused GetSecrets for {venue}: {:?}: {}",
                        s.code(),
                        s.message()
                    )));
                }
            }
        };
        if answer.secrets.is_empty() {
            return Err(FetchError::Config(format!(
                "configd at {url} holds no credentials for {venue} (config version {}); \
                 add them to configd's env file, or unset CONFIG_SERVICE",
                answer.version
            )));
        }
        tracing::info!(
            venue = venue.as_str(),
            version = answer.version,
            count = answer.secrets.len(),
            "venue credentials received from configd"
        );
        for s in answer.secrets {
            served.insert(s.name, s.value);
        }
    }
    Ok(served)
}
