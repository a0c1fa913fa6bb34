//! The security posture: what `gekko check` and the start-up report print about how
//! exposed this configuration is.
//!
//! Pure apart from reading file permissions: no sockets, no side effects. A finding with
//! `required` set means the process should not start while it fails; the others are loud
//! warnings.

use std::net::SocketAddr;
use std::path::Path;

use gekko_config::{GekkoConfig, VenueId};

use crate::tls::TLS_VERSIONS;

/// One posture check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A short stable name (`grpc-auth`, `grpc-tls`, …).
    pub check: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// Whether a failure should stop the start-up.
    pub required: bool,
    /// What was found and, on failure, what to do.
    pub detail: String,
}

fn finding(check: &'static str, ok: bool, required: bool, detail: impl Into<String>) -> Finding {
    Finding {
        check,
        ok,
        required,
        detail: detail.into(),
    }
}

fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Every posture finding for `cfg`; `env_file` is the `.env` file that was read, if any.
#[must_use]
pub fn posture(cfg: &GekkoConfig, env_file: Option<&Path>) -> Vec<Finding> {
    let access = &cfg.access_control;
    let grpc = cfg.monitoring.grpc_addr;
    let http = cfg.monitoring.http_addr;
    let tls = access.tls_enabled();
    let mut out = Vec::new();

    out.push(if access.auth_enabled() {
        finding(
            "grpc-auth",
            true,
            true,
            format!(
                "{} token(s); every method needs a token with a sufficient role",
                access.tokens.len()
            ),
        )
    } else if is_loopback(grpc) {
        finding(
            "grpc-auth",
            true,
            true,
            format!("auth off (no tokens), gRPC on loopback {grpc}: local use only"),
        )
    } else {
        finding(
            "grpc-auth",
            false,
            true,
            format!(
                "NO TOKENS while gRPC listens on {grpc}: anyone who reaches it can place orders; \
                 configure ACCESS_CONTROL_CONFIG tokens= (gekko token new) or bind to 127.0.0.1"
            ),
        )
    });

    for (check, what, addr) in [("grpc-tls", "gRPC", grpc), ("http-tls", "HTTP", http)] {
        out.push(if tls {
            finding(
                check,
                true,
                false,
                format!(
                    "{what} on {addr} serves TLS{}",
                    if access.tls_client_ca.is_some() {
                        " with client certificates (mTLS)"
                    } else {
                        ""
                    }
                ),
            )
        } else if is_loopback(addr) {
            finding(
                check,
                true,
                false,
                format!("{what} plaintext on loopback {addr}"),
            )
        } else {
            finding(
                check,
                false,
                false,
                format!(
                    "PLAINTEXT {what} on non-loopback {addr}: tokens and data cross the network \
                     in the clear; set tls_cert and tls_key (gekko certs dev)"
                ),
            )
        });
    }

    // The MCP streamable HTTP transport has no TLS of its own, and every request carries a
    // bearer token (a gRPC token of ACCESS_CONTROL_CONFIG) in its Authorization header.
    out.push(match cfg.mcp.http_addr {
        None => finding("mcp-http-tls", true, false, "MCP HTTP transport off"),
        Some(addr) if is_loopback(addr) => finding(
            "mcp-http-tls",
            true,
            false,
            format!("MCP HTTP plaintext on loopback {addr}"),
        ),
        Some(addr) => finding(
            "mcp-http-tls",
            false,
            false,
            format!(
                "PLAINTEXT MCP HTTP on non-loopback {addr}: every request's bearer token \
                 crosses the network in the clear; bind MCP_SETTINGS http_addr to 127.0.0.1 \
                 (behind a TLS-terminating proxy for remote agents) or set http_addr=off"
            ),
        ),
    });

    out.push(finding(
        "tls-version",
        true,
        false,
        if tls {
            format!("minimum TLS 1.2: {TLS_VERSIONS}")
        } else {
            "TLS off".to_owned()
        },
    ));

    if let Some(path) = env_file {
        out.push(file_mode("env-file", "env file", path));
    }
    if let Some(path) = &access.tls_key {
        out.push(file_mode("tls-key-file", "TLS key", path));
    }

    let sealed = cfg.encryption.key.is_some() || cfg.encryption.key_file.is_some();
    let live: Vec<&str> = VenueId::ALL
        .into_iter()
        .filter(|v| !cfg.paper_mode(*v))
        .map(VenueId::as_str)
        .collect();
    out.push(if live.is_empty() {
        finding(
            "plain-credentials",
            true,
            false,
            "no live venue credentials",
        )
    } else if sealed {
        finding(
            "plain-credentials",
            false,
            false,
            format!(
                "live credentials for {} are in plain environment variables while \
                 ENCRYPTION_SETTINGS has a key: keep them sealed instead",
                live.join(", ")
            ),
        )
    } else {
        finding(
            "plain-credentials",
            true,
            false,
            format!(
                "live credentials for {} come from the environment (no sealing key configured)",
                live.join(", ")
            ),
        )
    });
    out
}

/// Fails when `path` is readable by others (mode `o+r`), or warns when it cannot be read.
fn file_mode(check: &'static str, what: &str, path: &Path) -> Finding {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        match std::fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o004 == 0 {
                    finding(
                        check,
                        true,
                        false,
                        format!("{what} {} is mode {mode:o}", path.display()),
                    )
                } else {
                    finding(
                        check,
                        false,
                        false,
                        format!(
                            "{what} {} is WORLD-READABLE (mode {mode:o}): chmod 600 it",
                            path.display()
                        ),
                    )
                }
            }
            Err(e) => finding(
                check,
                false,
                false,
                format!(
                    "{what} {}: cannot read its permissions: {e}",
                    path.display()
                ),
            ),
        }
    }
    #[cfg(not(unix))]
    finding(
        check,
        true,
        false,
        format!("{what} {}: not checked on this OS", path.display()),
    )
}
