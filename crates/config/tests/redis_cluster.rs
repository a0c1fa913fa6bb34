//! `REDIS_URL` as a Redis Cluster: a comma-separated list of node URLs, each checked,
//! every problem reported, passwords redacted.

use std::collections::BTreeMap;

use gekko_config::{ConfigErrors, from_vars, redact_url};

fn load(url: &str) -> Result<Option<String>, ConfigErrors> {
    let vars: BTreeMap<String, String> = [("REDIS_URL".to_owned(), url.to_owned())].into();
    from_vars(&vars).map(|l| l.config.redis_url)
}

#[test]
fn a_node_list_is_a_cluster_url() {
    let url = load("redis://127.0.0.1:7000, redis://127.0.0.1:7001,rediss://:pw@h:7002/")
        .expect("valid cluster list");
    assert_eq!(
        url.as_deref(),
        Some("redis://127.0.0.1:7000,redis://127.0.0.1:7001,rediss://:pw@h:7002/"),
        "items are trimmed and kept in order"
    );
    // One URL keeps today's rules, unix sockets included.
    assert_eq!(
        load("unix:///run/redis.sock").unwrap().as_deref(),
        Some("unix:///run/redis.sock")
    );
}

#[test]
fn every_bad_node_is_reported_by_position() {
    let e = load(
        "redis://a:7000,,http://b:7001,unix:///s,redis://:7003,redis://c:99999,redis://a:7000/",
    )
    .expect_err("bad list");
    let problems: Vec<&str> = e.problems.iter().map(|p| p.problem.as_str()).collect();
    assert_eq!(problems.len(), 6, "{e}");
    assert!(problems[0].contains("cluster node 2 of 7 is empty"), "{e}");
    assert!(
        problems[1].contains("cluster node 3") && problems[1].contains("`http`"),
        "{e}"
    );
    assert!(
        problems[2].contains("cluster node 4") && problems[2].contains("`unix`"),
        "{e}"
    );
    assert!(problems[3].contains("cluster node 5: no host"), "{e}");
    assert!(problems[4].contains("cluster node 6: port `99999`"), "{e}");
    assert!(
        problems[5].contains("cluster node 7: a:7000 is listed twice"),
        "{e}"
    );
    assert!(e.problems.iter().all(|p| p.variable == "REDIS_URL"));
}

#[test]
fn problems_and_redaction_never_show_a_password() {
    let e = load("redis://:hunter2@a:7000,http://:hunter2@b:7001").expect_err("bad scheme");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let shown = redact_url("redis://:hunter2@a:7000/,redis://u:hunter2@b:7001/");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("@a:7000") && shown.contains("@b:7001"),
        "{shown}"
    );
    // A comma inside one URL's query is no list.
    assert!(!redact_url("https://x/?token=a,b").contains("token=a"));
}
