//! The method table covers exactly the methods in the protos.
//!
//! Decodes `gekko_proto::FILE_DESCRIPTOR_SET` and fails if a method has no row (a new RPC
//! would otherwise be refused by the `AuthLayer` — or worse, someone would be tempted to
//! let unknown methods through), or if a row names a method that does not exist. Rows
//! marked `pending` (methods another change is adding) may be missing from the protos,
//! but once the descriptor has them the row must drop `pending`.

use gekko_security::methods::{METHODS, markdown_table, rule};
use gekko_security::{OpenGroup, Role};
use prost::Message as _;

fn proto_methods() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(gekko_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let mut out = Vec::new();
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            for method in &service.method {
                out.push(format!("/{package}.{}/{}", service.name(), method.name()));
            }
        }
    }
    out
}

#[test]
fn every_proto_method_has_a_row() {
    let methods = proto_methods();
    assert!(methods.len() >= 12, "{methods:?}");
    let missing: Vec<_> = methods.iter().filter(|m| rule(m).is_none()).collect();
    assert!(
        missing.is_empty(),
        "methods without a row in gekko_security::methods::METHODS: {missing:?}"
    );
}

#[test]
fn every_gekko_row_names_a_proto_method_and_pending_rows_clear_once_they_exist() {
    let methods = proto_methods();
    for row in METHODS.iter().filter(|r| r.open.is_none()) {
        let exists = methods.iter().any(|m| m == row.path);
        if row.pending {
            assert!(
                !exists,
                "{} is in the protos now: clear `pending` on its row",
                row.path
            );
        } else {
            assert!(exists, "{} has a row but no such method", row.path);
        }
    }
}

#[test]
fn rows_are_unique_and_say_what_the_issue_asks() {
    for (i, a) in METHODS.iter().enumerate() {
        assert!(
            METHODS[i + 1..].iter().all(|b| b.path != a.path),
            "{} twice",
            a.path
        );
        // Anything that changes state needs at least a trader; reads need no more than a
        // viewer; a second factor only guards admin actions.
        assert_eq!(a.state_changing, a.min_role >= Role::Trader, "{}", a.path);
        if a.second_factor {
            assert_eq!(a.min_role, Role::Admin, "{}", a.path);
        }
    }
    let want = [
        ("/gekko.v1.GatewayService/PlaceOrder", Role::Trader, false),
        ("/gekko.v1.GatewayService/CancelOrder", Role::Trader, false),
        (
            "/gekko.v1.GatewayService/CancelAllOrders",
            Role::Trader,
            false,
        ),
        ("/gekko.v1.GatewayService/ClosePositions", Role::Admin, true),
        (
            "/gekko.v1.GatewayService/SetTradingEnabled",
            Role::Admin,
            true,
        ),
        ("/gekko.v1.SystemService/Shutdown", Role::Admin, true),
        ("/gekko.v1.ConfigService/GetSecrets", Role::Admin, true),
        ("/gekko.v1.GatewayService/GetAccount", Role::Viewer, false),
        ("/gekko.v1.SystemService/GetStatus", Role::Viewer, false),
    ];
    for (path, role, second) in want {
        let r = rule(path).unwrap_or_else(|| panic!("{path} has no row"));
        assert_eq!((r.min_role, r.second_factor), (role, second), "{path}");
    }
    assert_eq!(
        rule("/grpc.health.v1.Health/Check").and_then(|r| r.open),
        Some(OpenGroup::Health)
    );
    assert!(rule("/gekko.v1.GatewayService/Nope").is_none());
}

#[test]
fn docs_hold_the_table() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/security.md"
    ))
    .expect("docs/security.md exists");
    assert!(
        doc.contains(&markdown_table()),
        "docs/security.md must contain the method table exactly as \
         gekko_security::methods::markdown_table() renders it:\n{}",
        markdown_table()
    );
}
