//! `MCP_SETTINGS`: the risk guard of gekko's MCP server and the address of its HTTP
//! transport.
//!
//! The guard lives on the server side of every state-changing MCP tool (see the
//! `gekko-mcp` crate), so these settings are what an LLM agent cannot talk its way past.
//! The defaults are the safe ones: `read_only`, a small per-order notional, ten orders a
//! minute, and the HTTP transport on loopback only.
//!
//! `gekko mcp` (the stdio transport) runs beside a trading config it does not own, so
//! [`mcp_settings_from_vars`] reads `MCP_SETTINGS` (and `COMPLIANCE_SETTINGS` for the
//! notional cross-check) alone, with the same parser as the full loader.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use gekko_core::VenueId;
use rust_decimal::Decimal;

use crate::model::{Compliance, Pair};
use crate::parse::{Section, http_url, parse_list, positive_decimal};
use crate::problem::{ConfigErrors, Problems};
use crate::vars::{Vars, names};

/// What MCP tools may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum McpMode {
    /// Read-only tools only; every state-changing tool is refused.
    #[default]
    ReadOnly,
    /// Orders, cancels and closes only on venues `GetStatus` reports as simulated.
    Paper,
    /// Also on live venues.
    Trade,
}

impl McpMode {
    /// Every mode, from the least to the most allowed.
    pub const ALL: [Self; 3] = [Self::ReadOnly, Self::Paper, Self::Trade];

    /// The name used in config and in refusals.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read_only",
            Self::Paper => "paper",
            Self::Trade => "trade",
        }
    }
}

impl std::fmt::Display for McpMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for McpMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not an MCP mode"))
    }
}

/// The MCP server's risk guard and HTTP transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpSettings {
    /// `read_only` (default), `paper` or `trade`.
    pub mode: McpMode,
    /// Largest notional (quote currency) of one order placed through MCP. Unset, it is
    /// [`DEFAULT_MCP_ORDER_NOTIONAL`] or the compliance limit, whichever is lower; set, it
    /// may not exceed `COMPLIANCE_SETTINGS` `max_order_notional` or `max_daily_notional`.
    pub max_order_notional: Decimal,
    /// Instruments MCP may trade: plain pairs (every venue) or venue-qualified ones.
    /// Empty means every configured pair.
    pub allowed_instruments: Vec<Pair>,
    /// Order and cancel attempts allowed per MCP session in any 60-second window.
    pub max_orders_per_minute: u32,
    /// The streamable HTTP transport's listen address; `None` (`http_addr=off`) serves
    /// no HTTP transport.
    pub http_addr: Option<SocketAddr>,
    /// Whether `http_addr` was set explicitly. Then the transport is required: an address
    /// that cannot be bound stops `gekko up` (exit 69), and a gRPC TLS set-up the
    /// transport cannot join is a config problem. The default address only warns, so
    /// several `gekko up` on one machine (tests, a second instance) do not collide on it.
    pub http_addr_explicit: bool,
    /// `Host` header values the HTTP transport accepts (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// The CA (PEM) the HTTP transport's in-process gRPC client verifies gekko's own
    /// certificate with, when gRPC serves TLS.
    pub grpc_ca: Option<PathBuf>,
    /// The client certificate and key (PEM) that client presents when gRPC requires
    /// client certificates (mTLS); both or neither.
    pub grpc_client_cert: Option<PathBuf>,
    /// See [`grpc_client_cert`](Self::grpc_client_cert).
    pub grpc_client_key: Option<PathBuf>,
    /// Routed mode (`grpc.<venue>=URL`): the gRPC address of each venue's own gateway
    /// process. Empty: the MCP server is a client of `gekko up`'s one gRPC address.
    pub grpc_routes: BTreeMap<VenueId, String>,
    /// Routed mode (`grpc.inference=URL`): the inference service's gRPC address.
    pub grpc_inference: Option<String>,
}

impl McpSettings {
    /// Whether any `grpc.*` route is set (routed mode).
    #[must_use]
    pub fn routed(&self) -> bool {
        !self.grpc_routes.is_empty() || self.grpc_inference.is_some()
    }
}

/// The per-order notional MCP allows when `max_order_notional` is not set.
pub const DEFAULT_MCP_ORDER_NOTIONAL: Decimal = Decimal::from_parts(1000, 0, 0, false, 0);

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            mode: McpMode::ReadOnly,
            max_order_notional: DEFAULT_MCP_ORDER_NOTIONAL,
            allowed_instruments: Vec::new(),
            max_orders_per_minute: 10,
            http_addr: Some(SocketAddr::from(([127, 0, 0, 1], 9470))),
            http_addr_explicit: false,
            allowed_hosts: ["localhost", "127.0.0.1", "::1", "gekko", "gekko-mcp"]
                .map(str::to_owned)
                .to_vec(),
            grpc_ca: None,
            grpc_client_cert: None,
            grpc_client_key: None,
            grpc_routes: BTreeMap::new(),
            grpc_inference: None,
        }
    }
}

const KEYS: &[&str] = &[
    "mode",
    "max_order_notional",
    "allowed_instruments",
    "max_orders_per_minute",
    "http_addr",
    "allowed_hosts",
    "grpc_ca",
    "grpc_client_cert",
    "grpc_client_key",
    "grpc.binanceus",
    "grpc.coinbase",
    "grpc.oanda",
    "grpc.inference",
];

/// What a `grpc.*` route must be.
const ROUTE_FORM: &str = "an http:// or https:// gRPC URL such as http://gateway-binanceus:50051";

/// Reads `MCP_SETTINGS`, checking `max_order_notional` against `COMPLIANCE_SETTINGS`.
///
/// The compliance section is read again here into a scratch list (the loader reports its
/// problems once, where it reads it); when it is invalid the cross-check is skipped, so
/// one typo does not cascade.
pub(crate) fn read(vars: &Vars<'_>, problems: &mut Problems) -> McpSettings {
    let mut scratch = Problems::default();
    let compliance = crate::loader::compliance(vars, None, &mut scratch);
    let compliance = (scratch.len() == 0).then_some(&compliance);
    read_with(vars, compliance, problems)
}

fn read_with(
    vars: &Vars<'_>,
    compliance: Option<&Compliance>,
    problems: &mut Problems,
) -> McpSettings {
    let mut out = McpSettings::default();
    let mut s = Section::open(
        names::MCP_SETTINGS,
        vars.get(names::MCP_SETTINGS),
        KEYS,
        false,
        problems,
    );
    s.set(
        "mode",
        &mut out.mode,
        "one of read_only, paper, trade",
        str::parse::<McpMode>,
    );
    let mut notional = None;
    let notional_ok = s.set(
        "max_order_notional",
        &mut notional,
        "a decimal number greater than zero, at most COMPLIANCE_SETTINGS max_order_notional",
        |v| positive_decimal(v).map(Some),
    );
    s.set(
        "allowed_instruments",
        &mut out.allowed_instruments,
        "`;`-separated upper-case BASE-QUOTE pairs, each once, optionally venue-qualified as binanceus:BTC-USD",
        |v| {
            parse_list(v, ';', |p| {
                p.parse::<Pair>()
                    .map_err(|_| format!("`{p}` is not a valid pair"))
            })
        },
    );
    s.int(
        "max_orders_per_minute",
        &mut out.max_orders_per_minute,
        &(1..=10_000),
    );
    out.http_addr_explicit = s.has("http_addr");
    s.set(
        "http_addr",
        &mut out.http_addr,
        "an ip:port socket address such as 127.0.0.1:9470, or off",
        |v| {
            if v == "off" {
                return Ok(None);
            }
            v.parse::<SocketAddr>()
                .map(Some)
                .map_err(|_| format!("`{v}` is not an ip:port address"))
        },
    );
    s.set(
        "allowed_hosts",
        &mut out.allowed_hosts,
        "`;`-separated host names or host:port authorities",
        |v| {
            parse_list(v, ';', |h| {
                if h.chars().any(|c| c.is_whitespace() || c == '/') {
                    Err(format!("`{h}` is not a host name"))
                } else {
                    Ok(h.to_owned())
                }
            })
        },
    );
    let path = |v: &str| {
        if v.is_empty() {
            Err("is empty".to_owned())
        } else {
            Ok(Some(PathBuf::from(v)))
        }
    };
    s.set("grpc_ca", &mut out.grpc_ca, "a PEM file path", path);
    let cert_ok = s.set(
        "grpc_client_cert",
        &mut out.grpc_client_cert,
        "a PEM file path",
        path,
    );
    let key_ok = s.set(
        "grpc_client_key",
        &mut out.grpc_client_key,
        "a PEM file path",
        path,
    );
    for venue in VenueId::ALL {
        let key = format!("grpc.{venue}");
        let mut url = None;
        s.set(&key, &mut url, ROUTE_FORM, |v| http_url(v).map(Some));
        if let Some(url) = url {
            out.grpc_routes.insert(venue, url);
        }
    }
    s.set("grpc.inference", &mut out.grpc_inference, ROUTE_FORM, |v| {
        http_url(v).map(Some)
    });
    let https = out
        .grpc_routes
        .values()
        .chain(&out.grpc_inference)
        .any(|u| u.starts_with("https://"));
    if https && out.grpc_ca.is_none() {
        s.problem(
            "an https:// grpc.* route needs grpc_ca",
            "grpc_ca set to the CA (PEM) of the routed services' certificates",
        );
    }
    if cert_ok && key_ok && out.grpc_client_cert.is_some() != out.grpc_client_key.is_some() {
        s.problem(
            "grpc_client_cert and grpc_client_key go together",
            "both (mTLS) or neither",
        );
    }
    let compliance_limit = compliance.map(|c| c.max_order_notional.min(c.max_daily_notional));
    match (notional_ok, notional, compliance) {
        (true, Some(n), Some(c)) => {
            if n > c.max_order_notional || n > c.max_daily_notional {
                s.problem(
                    format!(
                        "max_order_notional {n} is above COMPLIANCE_SETTINGS max_order_notional {} / max_daily_notional {}",
                        c.max_order_notional, c.max_daily_notional
                    ),
                    "max_order_notional at most the compliance per-order and daily limits",
                );
            }
            out.max_order_notional = n;
        }
        (true, Some(n), None) => out.max_order_notional = n,
        _ => {
            if let Some(limit) = compliance_limit {
                out.max_order_notional = out.max_order_notional.min(limit);
            }
        }
    }
    out
}

/// `MCP_SETTINGS` alone, for `gekko mcp`: reads `MCP_SETTINGS` and, for the notional
/// cross-check, `COMPLIANCE_SETTINGS` from `vars`, and nothing else.
///
/// # Errors
/// Every problem in those two variables, as the full loader words them.
pub fn mcp_settings_from_vars(
    vars: &BTreeMap<String, String>,
) -> Result<McpSettings, ConfigErrors> {
    let (vars, _warnings) = Vars::new(vars);
    let mut problems = Problems::default();
    let compliance = crate::loader::compliance(&vars, None, &mut problems);
    let compliance_ok = problems.len() == 0;
    let settings = read_with(&vars, compliance_ok.then_some(&compliance), &mut problems);
    problems.into_result(settings)
}

/// [`mcp_settings_from_vars`] over the process environment.
///
/// # Errors
/// As [`mcp_settings_from_vars`].
pub fn load_mcp_settings() -> Result<McpSettings, ConfigErrors> {
    let vars: BTreeMap<String, String> = [names::MCP_SETTINGS, names::COMPLIANCE_SETTINGS]
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| ((*name).to_owned(), v)))
        .collect();
    mcp_settings_from_vars(&vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_safe() {
        let s = mcp_settings_from_vars(&BTreeMap::new()).unwrap();
        assert_eq!(s, McpSettings::default());
        assert_eq!(s.mode, McpMode::ReadOnly);
    }

    #[test]
    fn every_key_parses() {
        let s = mcp_settings_from_vars(&vars(&[(
            "MCP_SETTINGS",
            "mode=paper,max_order_notional=250.5,allowed_instruments=binanceus:BTC-USD;ETH-USD,max_orders_per_minute=3,http_addr=off,allowed_hosts=gekko;localhost",
        )]))
        .unwrap();
        assert_eq!(s.mode, McpMode::Paper);
        assert_eq!(s.max_order_notional, Decimal::new(2505, 1));
        assert_eq!(s.allowed_instruments.len(), 2);
        assert_eq!(s.max_orders_per_minute, 3);
        assert_eq!(s.http_addr, None);
        assert_eq!(s.allowed_hosts, vec!["gekko", "localhost"]);
    }

    #[test]
    fn notional_above_compliance_is_refused_naming_both() {
        let e = mcp_settings_from_vars(&vars(&[
            ("MCP_SETTINGS", "max_order_notional=6000"),
            ("COMPLIANCE_SETTINGS", "max_order_notional=5000"),
        ]))
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("MCP_SETTINGS"), "{text}");
        assert!(text.contains("6000") && text.contains("5000"), "{text}");
    }

    #[test]
    fn unset_notional_follows_a_lower_compliance_limit() {
        let s = mcp_settings_from_vars(&vars(&[("COMPLIANCE_SETTINGS", "max_order_notional=500")]))
            .unwrap();
        assert_eq!(s.max_order_notional, Decimal::new(500, 0));
    }

    #[test]
    fn client_certificate_and_key_go_together() {
        let e = mcp_settings_from_vars(&vars(&[(
            "MCP_SETTINGS",
            "grpc_ca=ca.pem,grpc_client_cert=c.pem",
        )]))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("grpc_client_cert and grpc_client_key go together"),
            "{e}"
        );
        let s = mcp_settings_from_vars(&vars(&[(
            "MCP_SETTINGS",
            "grpc_ca=ca.pem,grpc_client_cert=c.pem,grpc_client_key=c.key",
        )]))
        .unwrap();
        assert_eq!(s.grpc_ca, Some(PathBuf::from("ca.pem")));
    }

    #[test]
    fn routes_parse_and_every_bad_one_is_reported() {
        let s = mcp_settings_from_vars(&vars(&[(
            "MCP_SETTINGS",
            "grpc.binanceus=http://gateway-binanceus:50051,grpc.oanda=http://gateway-oanda:50051,grpc.inference=http://inference:50051",
        )]))
        .unwrap();
        assert!(s.routed());
        assert_eq!(
            s.grpc_routes.get(&VenueId::BinanceUs).map(String::as_str),
            Some("http://gateway-binanceus:50051")
        );
        assert_eq!(s.grpc_routes.len(), 2);
        assert_eq!(s.grpc_inference.as_deref(), Some("http://inference:50051"));
        assert!(!McpSettings::default().routed());
        let e = mcp_settings_from_vars(&vars(&[(
            "MCP_SETTINGS",
            "grpc.binanceus=gateway:50051,grpc.kraken=http://k:1,grpc.coinbase=https://c:1,grpc.inference=ftp://i",
        )]))
        .unwrap_err();
        let text = e.to_string();
        assert_eq!(e.problems.len(), 4, "{text}");
        assert!(text.contains("unknown key `grpc.kraken`"), "{text}");
        assert!(text.contains("grpc.binanceus"), "{text}");
        assert!(text.contains("needs grpc_ca"), "{text}");
    }

    #[test]
    fn every_problem_is_reported() {
        let e = mcp_settings_from_vars(&vars(&[(
            "MCP_SETTINGS",
            "mode=yolo,max_order_notional=-1,max_orders_per_minute=0,http_addr=nowhere,allowed_instruments=btc,colour=red",
        )]))
        .unwrap_err();
        assert_eq!(e.problems.len(), 6, "{e}");
    }
}
