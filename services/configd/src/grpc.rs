//! `gekko.v1.ConfigService` over a [`ConfigStore`].

use std::collections::BTreeMap;
use std::pin::Pin;

use gekko_audit::{AuditLog, AuditRecord};
use gekko_config::{Key, VenueId, names};
use gekko_proto::v1 as pb;
use gekko_proto::v1::config_service_server::{ConfigService, ConfigServiceServer};
use gekko_security::Caller;
use secrecy::ExposeSecret as _;
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};

use crate::classify;
use crate::state::{ConfigStore, problem_pb, validate_vars};

/// SHA-256 (hex) of the gateways' token committed for the paper compose stack
/// (`deploy/compose/paper/configd.token`, the default of docker-compose.yml's configd
/// `ACCESS_CONTROL_CONFIG`). Anyone with the repository has that token, so configd never
/// hands it a live venue's credentials (see [`is_live`]); live mode sets its own token
/// (`GEKKO_CONFIGD_ACCESS`, `GEKKO_CONFIGD_TOKEN_FILE`, docs/deploy.md).
pub const PAPER_TOKEN_SHA256: &str =
    "338b01af96682225a9c47439ed7caca04d97be4b533be11593c2e111ce3baf54";

/// The public hosts of each venue (a REST endpoint on one of them, or no override, is the
/// real venue).
fn venue_hosts(venue: VenueId) -> &'static [&'static str] {
    match venue {
        VenueId::BinanceUs => &["binance.us"],
        VenueId::Coinbase => &["coinbase.com"],
        VenueId::Oanda => &["oanda.com"],
    }
}

/// Whether `venue`'s credentials in `config` are for the real venue: its REST endpoint is
/// not overridden (gekko's defaults are the venue's own hosts) or is overridden to one of
/// the venue's public hosts. Credentials for an endpoint elsewhere (a simulator such as
/// `http://sim-binanceus:9100`) are paper ones.
#[must_use]
pub fn is_live(config: &gekko_config::GekkoConfig, venue: VenueId) -> bool {
    if config.paper_mode(venue) {
        return false;
    }
    let Some(url) = config.api_endpoint(venue) else {
        return true;
    };
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit('@')
        .next()
        .unwrap_or_default();
    let host = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
        .trim_end_matches('.')
        .to_ascii_lowercase();
    venue_hosts(venue)
        .iter()
        .any(|h| host == *h || host.ends_with(&format!(".{h}")))
}

/// Whether the caller named `name` authenticated with the committed paper token.
fn is_paper_token(config: &gekko_config::GekkoConfig, name: &str) -> bool {
    config
        .access_control
        .tokens
        .iter()
        .any(|t| t.name == name && hex_eq(&t.sha256, PAPER_TOKEN_SHA256))
}

fn hex_eq(bytes: &[u8; 32], hex: &str) -> bool {
    let shown: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    shown == hex
}

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct ConfigGrpc {
    store: ConfigStore,
    key: Option<Key>,
    audit: AuditLog,
}

impl ConfigGrpc {
    /// Serves `store`; `key` opens sealed candidates given to `Validate`; `GetSecrets` is
    /// audited through `audit`.
    #[must_use]
    pub fn new(store: ConfigStore, key: Option<Key>, audit: AuditLog) -> Self {
        Self { store, key, audit }
    }

    /// The tonic server.
    #[must_use]
    pub fn into_server(self) -> ConfigServiceServer<Self> {
        ConfigServiceServer::new(self)
    }
}

fn one_problem(variable: &str, problem: String, expected: &str) -> pb::ValidateConfigResponse {
    pb::ValidateConfigResponse {
        valid: false,
        problems: vec![pb::ConfigProblemInfo {
            variable: variable.to_owned(),
            problem,
            expected: expected.to_owned(),
        }],
    }
}

/// Parses env file text; a line that does not parse is a problem named by its number (it
/// may hold a secret).
fn parse_env_text(text: &str) -> (BTreeMap<String, String>, Vec<pb::ConfigProblemInfo>) {
    let mut vars = BTreeMap::new();
    let mut problems = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((k, v)) => {
                vars.insert(k, v);
            }
            Err(dotenvy::Error::LineParse(line, _)) => {
                let line = line.trim_end_matches(['\r', '\n']);
                let at = text
                    .lines()
                    .position(|l| l == line)
                    .map_or_else(|| "a line".to_owned(), |i| format!("line {}", i + 1));
                problems.push(pb::ConfigProblemInfo {
                    variable: "env_text".to_owned(),
                    problem: format!("{at} could not be parsed (not shown: it may hold a secret)"),
                    expected: "KEY=value lines".to_owned(),
                });
            }
            Err(e) => {
                problems.push(pb::ConfigProblemInfo {
                    variable: "env_text".to_owned(),
                    problem: format!("could not be read: {e}"),
                    expected: "KEY=value lines".to_owned(),
                });
                break;
            }
        }
    }
    (vars, problems)
}

type VersionStream = Pin<Box<dyn Stream<Item = Result<pb::ConfigVersion, Status>> + Send>>;

#[tonic::async_trait]
impl ConfigService for ConfigGrpc {
    async fn get_config(
        &self,
        request: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::GetConfigResponse>, Status> {
        let section = request.into_inner().section;
        let section = section.trim();
        if !section.is_empty() && !classify::is_gekko_variable(section) {
            return Err(Status::not_found(format!(
                "`{}` is not a gekko variable",
                section.chars().take(60).collect::<String>()
            )));
        }
        let cur = self.store.current();
        let entries = cur
            .vars
            .iter()
            .filter(|(k, _)| section.is_empty() || k.as_str() == section)
            .map(|(k, v)| pb::ConfigEntry {
                variable: k.clone(),
                value: classify::redact(k, v),
                hot: classify::HOT.contains(&k.as_str()),
            })
            .collect();
        Ok(Response::new(pb::GetConfigResponse {
            version: cur.version,
            entries,
        }))
    }

    async fn get_secrets(
        &self,
        request: Request<pb::GetSecretsRequest>,
    ) -> Result<Response<pb::GetSecretsResponse>, Status> {
        let caller = Caller::of(&request).map_or_else(|| "unknown".to_owned(), |c| c.name.clone());
        let venue_text = request.into_inner().venue;
        let venue: VenueId = venue_text.parse().map_err(|_| {
            Status::invalid_argument(format!(
                "venue: `{}` is not binanceus, coinbase or oanda",
                venue_text.chars().take(40).collect::<String>()
            ))
        })?;
        let cur = self.store.current();
        if is_live(&cur.config, venue) && is_paper_token(&cur.config, &caller) {
            self.audit.record_detached(
                AuditRecord::new(caller, "secret.access", "denied").with_detail(
                    serde_json::json!({
                        "venue": venue.as_str(), "version": cur.version,
                        "reason": "live credentials asked for with the committed paper token",
                    }),
                ),
            );
            return Err(Status::permission_denied(format!(
                "{venue} has live credentials, and this caller uses the paper token committed in \
                 deploy/compose/paper/configd.token, which anyone with the repository has: \
                 configd hands live credentials only to a token of your own (set \
                 GEKKO_CONFIGD_ACCESS and GEKKO_CONFIGD_TOKEN_FILE, docs/deploy.md#live-mode)",
                venue = venue.as_str()
            )));
        }
        let c = &cur.config.credentials;
        let pair = |n: &str, v: &str| pb::SecretValue {
            name: n.to_owned(),
            value: v.to_owned(),
        };
        let secrets = match venue {
            VenueId::BinanceUs => c.binanceus.as_ref().map(|b| {
                vec![
                    pair(names::BINANCEUS_API_KEY, b.api_key.expose_secret()),
                    pair(names::BINANCEUS_API_SECRET, b.api_secret.expose_secret()),
                    pair(
                        names::BINANCEUS_KEY_TYPE,
                        match b.key_type {
                            gekko_config::BinanceUsKeyType::Hmac => "hmac",
                            gekko_config::BinanceUsKeyType::Ed25519 => "ed25519",
                        },
                    ),
                ]
            }),
            VenueId::Coinbase => c.coinbase.as_ref().map(|b| {
                vec![
                    pair(names::COINBASE_API_KEY_NAME, &b.key_name),
                    pair(names::COINBASE_API_SECRET, b.api_secret.expose_secret()),
                ]
            }),
            VenueId::Oanda => c.oanda.as_ref().map(|b| {
                vec![
                    pair(names::OANDA_API_TOKEN, b.token.expose_secret()),
                    pair(names::OANDA_ACCOUNT_ID, &b.account_id),
                    pair(names::OANDA_ENVIRONMENT, b.environment.as_str()),
                ]
            }),
        }
        .unwrap_or_default();
        // Who got which venue's credentials, never the values.
        self.audit
            .record_detached(AuditRecord::new(caller, "secret.access", "ok").with_detail(
                serde_json::json!({
                    "venue": venue.as_str(), "version": cur.version, "count": secrets.len(),
                }),
            ));
        Ok(Response::new(pb::GetSecretsResponse {
            version: cur.version,
            venue: venue.as_str().to_owned(),
            secrets,
        }))
    }

    async fn validate(
        &self,
        request: Request<pb::ValidateConfigRequest>,
    ) -> Result<Response<pb::ValidateConfigResponse>, Status> {
        let text = request.into_inner().env_text;
        let plain = if gekko_config::is_sealed(&text) {
            let Some(key) = &self.key else {
                return Ok(Response::new(one_problem(
                    "env_text",
                    format!("is sealed, but {} names no key", names::ENCRYPTION_SETTINGS),
                    "a plain env file, or one sealed with configd's key",
                )));
            };
            match gekko_config::unseal(&text, key) {
                Ok(p) => zeroize::Zeroizing::new(p),
                Err(e) => {
                    return Ok(Response::new(one_problem(
                        "env_text",
                        format!("cannot be unsealed: {e}"),
                        "a file sealed with configd's key",
                    )));
                }
            }
        } else {
            zeroize::Zeroizing::new(text)
        };
        let (vars, mut problems) = parse_env_text(&plain);
        if let Err(e) = validate_vars(vars, self.store.process_vars()) {
            problems.extend(e.problems.iter().map(problem_pb));
        }
        Ok(Response::new(pb::ValidateConfigResponse {
            valid: problems.is_empty(),
            problems,
        }))
    }

    type WatchStream = VersionStream;

    async fn watch(
        &self,
        _request: Request<pb::WatchConfigRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        // Subscribe before reading the current version, so no version falls between.
        let rx = self.store.subscribe();
        let first = self.store.current_message();
        let rest = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(|m| match m {
            Ok(v) => Some(Ok(v)),
            // A watcher that fell behind is told, rather than silently missing versions.
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => Some(Err(
                Status::data_loss(format!("{n} versions were missed; watch again")),
            )),
        });
        let stream = tokio_stream::once(Ok(first)).chain(rest);
        Ok(Response::new(Box::pin(stream)))
    }
}
