//! The `mcp.tool_call` audit record, built in one place for both writers: the
//! controller's `SystemService/RecordToolCall` (`gekko up`, the actor stamped by its
//! `AuthLayer`) and the routed MCP server, which writes through its own audit log (the
//! actor is the bearer token its HTTP layer authenticated).

use gekko_audit::AuditRecord;
use gekko_proto::v1 as pb;

/// The longest field a record keeps; longer ones are cut (and say so), so an audit record
/// stays small whatever an MCP client sent.
pub const MAX_AUDIT_FIELD: usize = 8 * 1024;

fn bounded(s: &str) -> String {
    if s.len() <= MAX_AUDIT_FIELD {
        return s.to_owned();
    }
    let mut end = MAX_AUDIT_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes cut)", &s[..end], s.len() - end)
}

/// The `mcp.tool_call` record of `r`, by `actor`: the tool (required, at most 128
/// characters), the outcome (`ok`, `error` or `refused`), and the arguments, detail,
/// session and transport, each bounded to [`MAX_AUDIT_FIELD`].
///
/// # Errors
/// `INVALID_ARGUMENT` naming the field when the tool or the outcome is not valid.
pub fn tool_call_record(
    actor: impl Into<String>,
    r: &pb::RecordToolCallRequest,
) -> Result<AuditRecord, tonic::Status> {
    let tool = r.tool.trim();
    if tool.is_empty() || tool.len() > 128 {
        return Err(tonic::Status::invalid_argument(
            "tool: required, at most 128 characters",
        ));
    }
    let outcome = match r.outcome.as_str() {
        o @ ("ok" | "error" | "refused") => o,
        other => {
            return Err(tonic::Status::invalid_argument(format!(
                "outcome: {other:?} is not one of ok, error, refused"
            )));
        }
    };
    let arguments = serde_json::from_str::<serde_json::Value>(&r.arguments_json)
        .unwrap_or_else(|_| serde_json::Value::from(bounded(&r.arguments_json)));
    let arguments = if arguments.to_string().len() > MAX_AUDIT_FIELD {
        serde_json::Value::from(bounded(&arguments.to_string()))
    } else {
        arguments
    };
    let detail = serde_json::json!({
        "tool": tool,
        "arguments": arguments,
        "detail": bounded(&r.detail),
        "session": bounded(&r.session),
        "transport": bounded(&r.transport),
    });
    Ok(AuditRecord::new(actor, "mcp.tool_call", outcome).with_detail(detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(tool: &str, outcome: &str, args: &str) -> pb::RecordToolCallRequest {
        pb::RecordToolCallRequest {
            tool: tool.to_owned(),
            arguments_json: args.to_owned(),
            outcome: outcome.to_owned(),
            detail: "d".repeat(MAX_AUDIT_FIELD + 10),
            session: "s".to_owned(),
            transport: "http".to_owned(),
        }
    }

    #[test]
    fn fields_are_checked_and_bounded() {
        let rec = tool_call_record("ops", &req("get_quote", "ok", r#"{"venue":"x"}"#)).unwrap();
        assert_eq!(rec.actor, "ops");
        assert_eq!(rec.action, "mcp.tool_call");
        assert_eq!(rec.outcome, "ok");
        let d = &rec.detail;
        assert_eq!(d["arguments"]["venue"], "x");
        assert!(d["detail"].as_str().unwrap().ends_with("(10 bytes cut)"));
        let e = tool_call_record("ops", &req("", "ok", "{}")).unwrap_err();
        assert!(e.message().starts_with("tool:"), "{e:?}");
        let e = tool_call_record("ops", &req("t", "maybe", "{}")).unwrap_err();
        assert!(
            e.message()
                .contains("\"maybe\" is not one of ok, error, refused")
        );
    }
}
