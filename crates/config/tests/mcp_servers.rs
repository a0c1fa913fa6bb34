//! `MCP_SERVERS` and `MCP_SERVER_TOKENS` through the public API: the accepted forms, every
//! problem of every entry reported at once, and tokens kept out of `Debug` and problems.

use std::collections::BTreeMap;
use std::time::Duration;

use gekko_config::{ConfigErrors, Loaded, McpTransport, from_vars};
use secrecy::ExposeSecret;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn ok(pairs: &[(&str, &str)]) -> Loaded {
    match from_vars(&vars(pairs)) {
        Ok(loaded) => loaded,
        Err(e) => panic!("expected valid config, got:\n{e}"),
    }
}

fn err(pairs: &[(&str, &str)]) -> ConfigErrors {
    match from_vars(&vars(pairs)) {
        Ok(loaded) => panic!("expected problems, got {:?}", loaded.config),
        Err(e) => e,
    }
}

#[test]
fn unset_means_no_servers() {
    assert!(ok(&[]).config.mcp_servers.is_empty());
}

#[test]
fn stdio_and_http_servers_with_options_and_tokens() {
    let c = ok(&[
        (
            "MCP_SERVERS",
            r#"files=stdio:python3 -m "my server" --root=/srv;required;init_timeout=2s, search=https://mcp.example.com/mcp;call_timeout=1m;optional,local=http://127.0.0.1:8000/mcp,creds=https://user:hunter2@mcp.example.com/mcp?token=abc"#,
        ),
        ("MCP_SERVER_TOKENS", "search=s3cr3t-token-value,creds=t0p-secret"),
    ])
    .config;
    assert_eq!(c.mcp_servers.len(), 4);
    let files = &c.mcp_servers[0];
    assert_eq!(files.name, "files");
    assert_eq!(
        files.transport,
        McpTransport::Stdio {
            program: "python3".to_owned(),
            args: vec![
                "-m".to_owned(),
                "my server".to_owned(),
                "--root=/srv".to_owned()
            ],
        }
    );
    assert!(files.required);
    assert_eq!(files.init_timeout, Duration::from_secs(2));
    assert_eq!(files.call_timeout, Duration::from_secs(30));
    assert!(files.token.is_none());
    assert_eq!(files.describe(), "stdio:python3");

    let search = &c.mcp_servers[1];
    assert_eq!(
        search.transport,
        McpTransport::Http {
            url: "https://mcp.example.com/mcp".to_owned()
        }
    );
    assert!(!search.required);
    assert_eq!(search.init_timeout, Duration::from_secs(10));
    assert_eq!(search.call_timeout, Duration::from_mins(1));
    assert_eq!(
        search.token.as_ref().map(|t| t.expose_secret().to_owned()),
        Some("s3cr3t-token-value".to_owned())
    );
    let local = &c.mcp_servers[2];
    assert!(!local.required && local.token.is_none());

    assert_eq!(
        c.mcp_servers[3].describe(),
        "https://user:***@mcp.example.com/mcp?token=***"
    );

    let debug = format!("{c:?}");
    assert!(debug.contains("mcp_servers"), "{debug}");
    assert!(debug.contains("stdio:python3 (3 arguments)"), "{debug}");
    for secret in [
        "s3cr3t",
        "t0p-secret",
        "hunter2",
        "token=abc",
        "--root=/srv",
    ] {
        assert!(!debug.contains(secret), "`{secret}` in Debug: {debug}");
    }
}

#[test]
fn every_problem_of_every_entry_is_reported_at_once() {
    let e = err(&[
        (
            "MCP_SERVERS",
            "good=stdio:python3 s.py,\
             bad name=stdio:x,\
             empty=,\
             nocmd=stdio:  ,\
             ftp=ftp://user:hunter2@h/mcp,\
             nohost=http:///mcp,\
             quote=stdio:python3 \"unclosed,\
             opts=http://127.0.0.1:1/mcp;required;optional;init_timeout=1ms;call_timeout=soon;colour=red;required=yes,\
             noequals,\
             good=stdio:again",
        ),
        (
            "MCP_SERVER_TOKENS",
            "good=t0ken-for-stdio,ghost=t0ken-for-nobody,opts=t0ken-for-bad-entry,junk-hunter2,blank=",
        ),
    ]);
    let lines: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
    let text = lines.join("\n");
    let expect = [
        "MCP_SERVERS: `bad name` is not a name",
        "MCP_SERVERS: empty: no location is given",
        "MCP_SERVERS: nocmd: `stdio:` is not followed by a command",
        "MCP_SERVERS: ftp: the URL scheme is `ftp`",
        "MCP_SERVERS: nohost: the URL has no host",
        "MCP_SERVERS: quote: the command line has an unclosed `\"`",
        "MCP_SERVERS: opts: `optional` repeats or contradicts an earlier option",
        "MCP_SERVERS: opts: init_timeout: 1ms is shorter than 100ms",
        "MCP_SERVERS: opts: call_timeout: `soon` does not start with a whole number",
        "MCP_SERVERS: opts: unknown option `colour`",
        "MCP_SERVERS: opts: `required` repeats or contradicts an earlier option",
        "MCP_SERVERS: entry `noequals` has no `=`",
        "MCP_SERVERS: key `good` is given more than once",
        "MCP_SERVER_TOKENS: good: is a stdio server",
        "MCP_SERVER_TOKENS: ghost: is not a server in MCP_SERVERS",
        "MCP_SERVER_TOKENS: entry 4 has no `=`",
        "MCP_SERVER_TOKENS: blank: the token is empty",
    ];
    for want in expect {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "missing `{want}` in:\n{text}"
        );
    }
    // One line per mistake: nothing more (the entry with a bad option is not also reported
    // by the token check).
    assert_eq!(lines.len(), expect.len(), "{text}");
    for secret in ["hunter2", "t0ken"] {
        assert!(!text.contains(secret), "`{secret}` echoed:\n{text}");
    }
    assert!(e.mentions("MCP_SERVERS") && e.mentions("MCP_SERVER_TOKENS"));
}

#[test]
fn a_token_with_spaces_is_refused_without_echo() {
    let e = err(&[
        ("MCP_SERVERS", "s=http://127.0.0.1:1/mcp"),
        ("MCP_SERVER_TOKENS", "s=two words"),
    ]);
    let text = e.to_string();
    assert!(text.contains("s: the token (withheld)"), "{text}");
    assert!(!text.contains("two words"), "{text}");
}
