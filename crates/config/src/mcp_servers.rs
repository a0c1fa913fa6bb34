//! `MCP_SERVERS` and `MCP_SERVER_TOKENS`: the external MCP servers gekko connects to.
//!
//! `MCP_SERVERS` is a comma-separated list of `name=location[;option...]` entries, the
//! same `key=value,...` shape as the other map variables (so it is split by the shared
//! [`split_entries`](crate::parse::split_entries), which reports entries without `=`,
//! empty names and repeated names). A location is `stdio:COMMAND ARGS` or an
//! `http(s)://` URL; the options are `required` or `optional` (the default),
//! `init_timeout=DURATION` and `call_timeout=DURATION`.
//!
//! Tokens live in their own variable, `MCP_SERVER_TOKENS` (`name=token,...`), rather than
//! inside `MCP_SERVERS`, so that the server list can be logged, shown by `gekko check` and
//! pasted into an issue without leaking a credential. That variable is read as sensitive:
//! a malformed entry is named by its position, never echoed.
//!
//! Every problem of every entry is reported, each naming the server, so one edit fixes
//! them all.

use std::time::Duration;

use secrecy::SecretString;

use crate::model::{McpServer, McpTransport};
use crate::parse::{IDENT_FORM, duration_form, duration_in, has_scheme, ident, split_entries};
use crate::problem::Problems;
use crate::vars::{Vars, names};

/// The shape of `MCP_SERVERS`, for problems about the list itself.
const ENTRY_FORM: &str = "comma-separated name=location entries, the location `stdio:COMMAND ARGS` or an http(s):// URL, each optionally followed by `;required`, `;optional`, `;init_timeout=DURATION` or `;call_timeout=DURATION`";
/// What a location must be.
const LOCATION_FORM: &str = "`stdio:` followed by a command line, or an http:// or https:// URL such as http://127.0.0.1:8000/mcp";
/// What an option must be.
const OPTION_FORM: &str = "one of required, optional, init_timeout=DURATION, call_timeout=DURATION";
/// The shape of `MCP_SERVER_TOKENS`.
const TOKEN_FORM: &str = "comma-separated name=token entries naming http(s) servers of MCP_SERVERS";

/// The bounds of `init_timeout`.
const INIT_TIMEOUT: (Duration, Duration) = (Duration::from_millis(100), Duration::from_mins(5));
/// The bounds of `call_timeout`.
const CALL_TIMEOUT: (Duration, Duration) = (Duration::from_millis(100), Duration::from_hours(1));

/// Reads `MCP_SERVERS`, then attaches the tokens of `MCP_SERVER_TOKENS`. A server with a
/// problem is left out of the result (the load fails anyway); the others are kept so the
/// token check can still name the servers it refers to.
pub(crate) fn read(vars: &Vars<'_>, problems: &mut Problems) -> Vec<McpServer> {
    let mut servers = Vec::new();
    // Names seen, valid or not, so a token for a server whose entry had a typo is not
    // reported a second time as "not in MCP_SERVERS".
    let mut named: Vec<String> = Vec::new();
    if let Some(value) = vars.get(names::MCP_SERVERS) {
        for (name, raw) in split_entries(value.name, value.raw, ENTRY_FORM, false, problems) {
            named.push(name.to_owned());
            if let Some(server) = entry(value.name, name, raw, problems) {
                servers.push(server);
            }
        }
    }
    tokens(vars, &mut servers, &named, problems);
    servers
}

/// One `name=location[;option...]` entry, with every problem it has recorded.
fn entry(var: &str, name: &str, raw: &str, problems: &mut Problems) -> Option<McpServer> {
    let before = problems.len();
    if let Err(e) = ident(name) {
        problems.push(var, e, IDENT_FORM);
    }
    let mut parts = raw.split(';').map(str::trim);
    let location = parts.next().unwrap_or_default();
    let transport = match transport(location) {
        Ok(t) => Some(t),
        Err(e) => {
            problems.push(var, format!("{name}: {e}"), LOCATION_FORM);
            None
        }
    };
    let mut server = McpServer {
        name: name.to_owned(),
        transport: McpTransport::Http { url: String::new() },
        required: false,
        token: None,
        init_timeout: McpServer::DEFAULT_INIT_TIMEOUT,
        call_timeout: McpServer::DEFAULT_CALL_TIMEOUT,
    };
    let mut seen: Vec<&str> = Vec::new();
    for option in parts.filter(|p| !p.is_empty()) {
        let (key, value) = option
            .split_once('=')
            .map_or((option, None), |(k, v)| (k.trim(), Some(v.trim())));
        // `required` and `optional` are one setting: naming both is a contradiction.
        let slot = if key == "optional" { "required" } else { key };
        if seen.contains(&slot) {
            problems.push(
                var,
                format!("{name}: `{key}` repeats or contradicts an earlier option"),
                "each option at most once, and not both required and optional",
            );
            continue;
        }
        seen.push(slot);
        match (key, value) {
            ("required", None) => server.required = true,
            ("optional", None) => server.required = false,
            ("init_timeout", Some(v)) => {
                let (min, max) = INIT_TIMEOUT;
                match duration_in(v, min, Some(max)) {
                    Ok(d) => server.init_timeout = d,
                    Err(e) => problems.push(
                        var,
                        format!("{name}: init_timeout: {e}"),
                        duration_form(min, Some(max)),
                    ),
                }
            }
            ("call_timeout", Some(v)) => {
                let (min, max) = CALL_TIMEOUT;
                match duration_in(v, min, Some(max)) {
                    Ok(d) => server.call_timeout = d,
                    Err(e) => problems.push(
                        var,
                        format!("{name}: call_timeout: {e}"),
                        duration_form(min, Some(max)),
                    ),
                }
            }
            ("required" | "optional", Some(_)) => {
                problems.push(var, format!("{name}: `{key}` takes no value"), OPTION_FORM)
            }
            ("init_timeout" | "call_timeout", None) => {
                problems.push(var, format!("{name}: `{key}` needs a value"), OPTION_FORM)
            }
            _ => problems.push(var, format!("{name}: unknown option `{key}`"), OPTION_FORM),
        }
    }
    let transport = transport?;
    server.transport = transport;
    (problems.len() == before).then_some(server)
}

/// A location: `stdio:COMMAND ARGS` or an `http(s)://` URL.
fn transport(location: &str) -> Result<McpTransport, String> {
    if location.is_empty() {
        return Err("no location is given".to_owned());
    }
    if let Some(command) = location.strip_prefix("stdio:") {
        let mut words = split_command(command)?.into_iter();
        let Some(program) = words.next() else {
            return Err("`stdio:` is not followed by a command".to_owned());
        };
        return Ok(McpTransport::Stdio {
            program,
            args: words.collect(),
        });
    }
    let url = has_scheme(location, &["http://", "https://"])
        .map_err(|e| format!("{e}, not stdio: or http(s)://"))?;
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || url.contains(char::is_whitespace) {
        return Err("the URL has no host, or has spaces".to_owned());
    }
    Ok(McpTransport::Http { url })
}

/// Splits a command line on whitespace; a double-quoted part keeps its spaces (the quotes
/// are removed). No shell is involved, so nothing else is special.
fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err("the command line has an unclosed `\"`".to_owned());
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// `MCP_SERVER_TOKENS`: attaches each token to its server. A token for a server that is
/// not configured, or that is a stdio server (a token is only ever sent as an HTTP
/// `Authorization` header), is a problem; the token itself is never echoed.
fn tokens(vars: &Vars<'_>, servers: &mut [McpServer], named: &[String], problems: &mut Problems) {
    let Some(value) = vars.get(names::MCP_SERVER_TOKENS) else {
        return;
    };
    for (name, token) in split_entries(value.name, value.raw, TOKEN_FORM, true, problems) {
        if token.is_empty() {
            problems.push(
                value.name,
                format!("{name}: the token is empty"),
                TOKEN_FORM,
            );
            continue;
        }
        if token.chars().any(|c| c.is_control() || c.is_whitespace()) {
            problems.push(
                value.name,
                format!("{name}: the token (withheld) contains spaces or control characters"),
                "a token of visible characters",
            );
            continue;
        }
        match servers.iter_mut().find(|s| s.name == name) {
            Some(server) if matches!(server.transport, McpTransport::Stdio { .. }) => {
                problems.push(
                    value.name,
                    format!("{name}: is a stdio server; tokens are only sent to http(s) servers"),
                    TOKEN_FORM,
                );
            }
            Some(server) => server.token = Some(SecretString::from(token)),
            // The server's own entry had a problem, already reported.
            None if named.iter().any(|n| n == name) => {}
            None => problems.push(
                value.name,
                format!("{name}: is not a server in {}", names::MCP_SERVERS),
                TOKEN_FORM,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_on_whitespace_with_quotes() {
        assert_eq!(
            split_command(r#"python3  -m "my server" x"#),
            Ok(vec![
                "python3".to_owned(),
                "-m".to_owned(),
                "my server".to_owned(),
                "x".to_owned()
            ])
        );
        assert_eq!(
            split_command(r#"a """#),
            Ok(vec!["a".to_owned(), String::new()])
        );
        assert!(split_command(r#"a "b"#).is_err());
        assert_eq!(split_command("   "), Ok(Vec::new()));
    }

    #[test]
    fn locations() {
        assert_eq!(
            transport("stdio:python3 server.py"),
            Ok(McpTransport::Stdio {
                program: "python3".to_owned(),
                args: vec!["server.py".to_owned()]
            })
        );
        assert_eq!(
            transport("https://mcp.example.com/mcp"),
            Ok(McpTransport::Http {
                url: "https://mcp.example.com/mcp".to_owned()
            })
        );
        for bad in [
            "",
            "stdio:",
            "stdio:  ",
            "ftp://x/mcp",
            "http://",
            "http:///mcp",
            "x",
        ] {
            assert!(transport(bad).is_err(), "{bad}");
        }
        let err = transport("ftp://user:hunter2@x/mcp").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
