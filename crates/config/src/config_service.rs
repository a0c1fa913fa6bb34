//! `CONFIG_SERVICE`: where a service fetches its venue credentials at start-up instead of
//! reading them from its own environment.
//!
//! In docker compose only `configd` holds the env file with the venue credentials. A
//! gateway container is started with `CONFIG_SERVICE url=http://configd:50051,...` and no
//! credentials; before its configuration is validated it calls configd's `GetSecrets` for
//! its venue over gRPC with a bearer token (admin role), and the answer is layered into its
//! variables. The fetch itself lives in `gekko-runtime` (`Host::secrets_from`); this module
//! only parses and validates the setting, so `gekko check` reports its problems like any
//! other variable's.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use crate::parse::{Section, duration_in};
use crate::problem::Problems;
use crate::vars::{Vars, names};

const KEYS: &[&str] = &["url", "token", "token_file", "ca_file", "wait"];

/// `CONFIG_SERVICE`: the configd a service takes its credentials from.
#[derive(Clone)]
pub struct ConfigServiceSettings {
    /// configd's gRPC address, `http://` or `https://`; `None` (the default) means the
    /// credentials come from the service's own environment.
    pub url: Option<String>,
    /// The bearer token sent to configd (admin role there). A secret.
    pub token: Option<SecretString>,
    /// A file holding the token (first line), read at start-up; the alternative to
    /// `token` that keeps the token out of the environment.
    pub token_file: Option<PathBuf>,
    /// The CA certificate that signs configd's TLS certificate (`https://` only);
    /// `None` uses the system roots.
    pub ca_file: Option<PathBuf>,
    /// How long to keep retrying while configd does not answer; default 30 s.
    pub wait: Duration,
}

impl Default for ConfigServiceSettings {
    fn default() -> Self {
        Self {
            url: None,
            token: None,
            token_file: None,
            ca_file: None,
            wait: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for ConfigServiceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigServiceSettings")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| crate::REDACTED))
            .field("token_file", &self.token_file)
            .field("ca_file", &self.ca_file)
            .field("wait", &self.wait)
            .finish()
    }
}

impl PartialEq for ConfigServiceSettings {
    fn eq(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret as _;
        self.url == other.url
            && self.token.as_ref().map(|t| t.expose_secret().to_owned())
                == other.token.as_ref().map(|t| t.expose_secret().to_owned())
            && self.token_file == other.token_file
            && self.ca_file == other.ca_file
            && self.wait == other.wait
    }
}

impl Eq for ConfigServiceSettings {}

pub(crate) fn read(vars: &Vars<'_>, problems: &mut Problems) -> ConfigServiceSettings {
    let mut out = ConfigServiceSettings::default();
    let mut s = Section::open(
        names::CONFIG_SERVICE,
        vars.get(names::CONFIG_SERVICE),
        KEYS,
        true,
        problems,
    );
    let url_ok = s.set(
        "url",
        &mut out.url,
        "an http:// or https:// URL with a host, e.g. http://configd:50051",
        |v| {
            let rest = v
                .strip_prefix("http://")
                .or_else(|| v.strip_prefix("https://"))
                .ok_or_else(|| format!("`{v}` is not an http:// or https:// URL"))?;
            if rest.trim_end_matches('/').is_empty() || rest.contains(char::is_whitespace) {
                return Err(format!("`{v}` has no host"));
            }
            Ok(Some(v.to_owned()))
        },
    );
    s.set("token", &mut out.token, "a non-empty token", |v| {
        if v.is_empty() {
            Err("is empty".to_owned())
        } else {
            Ok(Some(SecretString::from(v)))
        }
    });
    s.set("token_file", &mut out.token_file, "a file path", |v| {
        Ok(Some(PathBuf::from(v)))
    });
    s.set("ca_file", &mut out.ca_file, "a PEM file path", |v| {
        Ok(Some(PathBuf::from(v)))
    });
    s.set(
        "wait",
        &mut out.wait,
        "a duration from 1s to 10m, e.g. 30s",
        |v| duration_in(v, Duration::from_secs(1), Some(Duration::from_secs(600))),
    );
    let has_token = s.has("token");
    let has_file = s.has("token_file");
    let has_any = !s.is_empty();
    if has_token && has_file {
        s.problem(
            "names both token and token_file",
            "one of token or token_file",
        );
    }
    if url_ok && has_any && out.url.is_none() {
        s.problem(
            "has no url",
            "url=http://HOST:PORT (configd's gRPC address)",
        );
    }
    if out.url.is_some() && !has_token && !has_file {
        s.problem(
            "has a url but no token or token_file",
            "token_file=PATH (a token with the admin role at configd)",
        );
    }
    if let Some(file) = &out.token_file
        && !file.is_file()
    {
        s.problem(
            format!(
                "token_file: {} does not exist or is not a file",
                file.display()
            ),
            "the path of a file holding the token",
        );
    }
    if let Some(ca) = &out.ca_file {
        if !ca.is_file() {
            s.problem(
                format!("ca_file: {} does not exist or is not a file", ca.display()),
                "the path of a PEM CA certificate",
            );
        }
        if out.url.as_deref().is_some_and(|u| u.starts_with("http://")) {
            s.problem(
                "ca_file is set but url is http://",
                "an https:// url with ca_file, or no ca_file",
            );
        }
    }
    out
}
