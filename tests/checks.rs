//! Action checks: the wire format of `POST /check`, verdicts, and failing closed.

use std::time::Duration;

use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{Action, AgentId, Client, Error, Trace};
use serde_json::{Value, json};

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Transfer {
    to: String,
    amount_cents: u64,
}

async fn registered(server: &MockServer) -> (Client, Trace) {
    let client = server.client();
    let trace = client
        .register_agent_run(AgentId::from_name("checker").unwrap(), "You move money.")
        .await
        .unwrap();
    (client, trace)
}

fn transfer() -> Action {
    Action::new("transfer_funds")
        .description("Move money between two accounts.")
        .parameters(json!({
            "type": "object",
            "properties": {
                "to": { "type": "string" },
                "amount_cents": { "type": "integer" }
            },
            "required": ["to", "amount_cents"]
        }))
        .arguments(&json!({ "to": "acct-9", "amount_cents": 1250 }))
}

#[tokio::test]
async fn the_check_request_has_exactly_the_documented_fields() {
    let server = MockServer::start().await.unwrap();
    let (client, trace) = registered(&server).await;
    let before = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let verdict = client
        .check_action(trace.trace_id(), &transfer())
        .await
        .unwrap();
    let after = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    assert!(verdict.is_safe);

    let checks = server.requests_to(Endpoint::Check);
    assert_eq!(checks.len(), 1);
    let request = &checks[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/check")
    );
    assert!(request.authenticated);
    assert_eq!(request.header("content-type"), Some("application/json"));
    let object = request.body.as_object().unwrap();
    let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["content", "event_type", "schema", "timestamp", "trace_id"]
    );
    assert_eq!(object["event_type"], "action_check");
    assert_eq!(object["trace_id"], json!(trace.trace_id().to_string()));
    let seconds = object["timestamp"].as_f64().expect("a JSON number");
    assert!(seconds >= before - 0.001 && seconds <= after + 0.001);

    let content: Value = serde_json::from_str(object["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({ "to": "acct-9", "amount_cents": 1250 }));
    let schema: Value = serde_json::from_str(object["schema"].as_str().unwrap()).unwrap();
    assert_eq!(
        schema,
        json!({
            "type": "function",
            "name": "transfer_funds",
            "description": "Move money between two accounts.",
            "parameters": {
                "type": "object",
                "properties": {
                    "to": { "type": "string" },
                    "amount_cents": { "type": "integer" }
                },
                "required": ["to", "amount_cents"]
            }
        })
    );
}

#[tokio::test]
async fn a_blocked_action_carries_the_servers_reasoning() {
    let server = MockServer::start().await.unwrap();
    server.block_action(
        "transfer_funds",
        "Transfers above the daily limit need approval.",
    );
    let (client, trace) = registered(&server).await;

    let verdict = client
        .check_action(trace.trace_id(), &transfer())
        .await
        .unwrap();
    assert!(!verdict.is_safe);
    assert_eq!(
        verdict.reasoning,
        "Transfers above the daily limit need approval."
    );
    assert!(verdict.action_check_id.starts_with("chk_"));

    match verdict.clone().require_safe() {
        Err(Error::Blocked {
            reasoning,
            action_check_id,
        }) => {
            assert_eq!(reasoning, verdict.reasoning);
            assert_eq!(action_check_id, verdict.action_check_id);
        }
        other => panic!("expected Blocked, got {other:?}"),
    }

    // Other actions stay allowed.
    let other = client
        .check_action(trace.trace_id(), &Action::new("read_balance"))
        .await
        .unwrap();
    assert!(other.require_safe().is_ok());
}

#[tokio::test]
async fn check_action_in_the_current_run_uses_its_trace() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();

    #[fabraix::agent(id = "ambient-check", system_prompt = "p", client = client)]
    async fn run(client: &Client) -> Result<(Trace, fabraix::Verdict), Error> {
        let _ = client;
        let action = Action::typed(
            "transfer_funds",
            "Move money.",
            &Transfer {
                to: "acct-1".into(),
                amount_cents: 5,
            },
        )?;
        let verdict = fabraix::check_action(&action).await?;
        Ok((fabraix::current_trace().unwrap(), verdict))
    }

    let (trace, verdict) = run(&client).await.unwrap();
    assert!(verdict.is_safe);
    let check = &server.requests_to(Endpoint::Check)[0];
    assert_eq!(check.body["trace_id"], json!(trace.trace_id().to_string()));
    let schema: Value = serde_json::from_str(check.body["schema"].as_str().unwrap()).unwrap();
    assert_eq!(
        schema["parameters"]["properties"]["amount_cents"]["type"],
        "integer"
    );
    assert_eq!(
        schema["parameters"]["required"],
        json!(["to", "amount_cents"])
    );
}

#[tokio::test]
async fn outside_a_run_a_check_fails_closed() {
    let err = fabraix::check_action(&transfer()).await.unwrap_err();
    assert!(matches!(err, Error::NoTrace), "{err:?}");
    let err = fabraix::check_action_blocking(&transfer()).unwrap_err();
    assert!(matches!(err, Error::NoTrace), "{err:?}");
}

#[tokio::test]
async fn with_the_server_down_a_check_is_an_error_never_a_verdict() {
    let server = MockServer::start().await.unwrap();
    let (client, trace) = registered(&server).await;
    server.pause().unwrap();
    let down = server
        .client_builder()
        .max_retries(2)
        .build()
        .unwrap()
        .check_action(trace.trace_id(), &transfer())
        .await;
    assert!(matches!(down, Err(Error::Transport { .. })), "{down:?}");
    server.resume().unwrap();
    assert!(
        client
            .check_action(trace.trace_id(), &transfer())
            .await
            .unwrap()
            .is_safe
    );
}

#[tokio::test]
async fn garbage_answers_are_errors_never_verdicts() {
    let server = MockServer::start().await.unwrap();
    let (client, trace) = registered(&server).await;
    let bodies = [
        r#"{"is_safe":"true","reasoning":"ok","action_check_id":"c","timestamp":1.0}"#,
        r#"{"reasoning":"ok","action_check_id":"c","timestamp":1700000000.5}"#,
        r#"{"is_safe":true,"reasoning":"ok","action_check_id":"c"}"#,
        r#"{"is_safe":true,"reasoning":"ok","action_check_id":"c","timestamp":"never"}"#,
        "",
        "true",
    ];
    for body in bodies {
        server.fail_next(1, Fault::status(200).body(body));
        let outcome = client.check_action(trace.trace_id(), &transfer()).await;
        assert!(
            matches!(outcome, Err(Error::Decode { .. })),
            "{body}: {outcome:?}"
        );
    }
    server.fail_next(1, Fault::malformed_body());
    let outcome = client.check_action(trace.trace_id(), &transfer()).await;
    assert!(matches!(outcome, Err(Error::Decode { .. })), "{outcome:?}");
    // None of them was retried: a server that answered is not asked again.
    assert_eq!(server.requests_to(Endpoint::Check).len(), bodies.len() + 1);
}

#[tokio::test]
async fn a_check_against_persistent_503s_fails_after_the_retries() {
    let server = MockServer::start().await.unwrap();
    let (_, trace) = registered(&server).await;
    let client = server.client_builder().max_retries(2).build().unwrap();
    server.fail_next(10, Fault::status(503).on(Endpoint::Check));
    let outcome = client.check_action(trace.trace_id(), &transfer()).await;
    assert!(
        matches!(outcome, Err(Error::Api { status: 503, .. })),
        "{outcome:?}"
    );
    assert_eq!(server.requests_to(Endpoint::Check).len(), 3);
}

#[tokio::test]
async fn an_unknown_trace_is_a_404() {
    let server = MockServer::start().await.unwrap();
    let unknown = fabraix::TraceId::from_uuid(uuid::Uuid::new_v4());
    let outcome = server.client().check_action(unknown, &transfer()).await;
    assert!(
        matches!(outcome, Err(Error::Api { status: 404, .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn unencodable_arguments_fail_before_anything_is_sent() {
    let server = MockServer::start().await.unwrap();
    let (client, trace) = registered(&server).await;
    let mut map = std::collections::HashMap::new();
    map.insert(vec![1u8], 1);
    let action = Action::new("bad").arguments(&map);
    let outcome = client.check_action(trace.trace_id(), &action).await;
    assert!(matches!(outcome, Err(Error::Encode { .. })), "{outcome:?}");
    let unnamed = client
        .check_action(trace.trace_id(), &Action::new(" "))
        .await;
    assert!(matches!(unnamed, Err(Error::Encode { .. })), "{unnamed:?}");
    assert!(server.requests_to(Endpoint::Check).is_empty());
}

#[test]
fn a_sync_check_blocks_for_the_verdict() {
    let server = MockServer::start_blocking().unwrap();
    server.block_action("delete_account", "Irreversible.");
    let client = server.client();
    let trace = client
        .register_agent_run_blocking(AgentId::from_name("sync-checker").unwrap(), "p")
        .unwrap();
    let verdict = fabraix::sync_scope(trace, || {
        fabraix::check_action_blocking(&Action::new("delete_account"))
    });
    assert!(!verdict.unwrap().is_safe);
    assert!(server.wait_for_blocking(Duration::from_secs(1), |r| r.len() == 2));
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Folder {
    name: String,
    owner: Owner,
    children: Vec<Folder>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Owner {
    id: u64,
}

/// Every `$ref` in `value`, as written.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => out.push(target.clone()),
                    _ => refs(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
        _ => {}
    }
}

// Regression: `Action::typed` sent `#/$defs/..` references that pointed nowhere once the
// parameters schema sat under `/parameters` of the function schema.
#[tokio::test]
async fn typed_action_schemas_resolve_every_reference() {
    let server = MockServer::start().await.unwrap();
    let (client, trace) = registered(&server).await;
    let folder = Folder {
        name: "root".into(),
        owner: Owner { id: 7 },
        children: vec![],
    };
    let action = Action::typed("archive_folder", "Archive a folder.", &folder).unwrap();
    client
        .check_action(trace.trace_id(), &action)
        .await
        .unwrap();
    let check = &server.requests_to(Endpoint::Check)[0];
    let schema: Value = serde_json::from_str(check.body["schema"].as_str().unwrap()).unwrap();
    assert_eq!(
        schema["parameters"]["properties"]["owner"]["properties"]["id"]["type"],
        "integer"
    );
    let mut found = Vec::new();
    refs(&schema, &mut found);
    assert!(!found.is_empty(), "a recursive type needs a reference");
    for target in found {
        let pointer = target.strip_prefix('#').expect("a local reference");
        assert!(
            schema.pointer(pointer).is_some(),
            "{target} resolves to nothing in {schema:#}"
        );
    }
}
