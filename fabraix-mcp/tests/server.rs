//! A guarded server driven by a real rmcp client: checks before tools run, in the caller's
//! run or the session's own, blocked calls refused with the reasoning.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use fabraix::testing::{Endpoint, MockServer};
use fabraix::{AgentId, Trace};
use fabraix_mcp::{Guard, REFUSAL_META_KEY, inject_trace};
use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, RequestMetaObject, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use serde_json::{Value, json};

#[tokio::test]
async fn an_allowed_call_is_checked_in_the_callers_run_then_runs_in_it() {
    let mock = MockServer::start().await.unwrap();
    let client = mock.client();
    let trace = caller_run(&client).await;
    let notes = Notes::default();
    let (peer, _server) = connect(Guard::new().client(client.clone()).wrap(notes.clone())).await;

    let mut call = note_call("read_note", "groceries");
    inject_trace(&mut call, &trace);
    let result = peer.call_tool(call).await.unwrap();

    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(text(&result), "the note groceries");
    // The body ran once, in the caller's run.
    let ran = notes.ran();
    assert_eq!(ran.len(), 1);
    assert_eq!(
        (ran[0].tool.as_str(), ran[0].name.as_str()),
        ("read_note", "groceries")
    );
    assert_eq!(ran[0].trace, Some(trace));

    // One check, asked before the body ran, in the caller's run, describing the tool from its definition.
    let checks = checks(&mock);
    assert_eq!(checks.len(), 1);
    assert!(checks[0].received_at < ran[0].at);
    assert_eq!(trace_of(&checks[0]), trace.trace_id().to_string());
    assert_eq!(
        document(&checks[0], "content"),
        json!({ "name": "groceries" })
    );
    let schema = document(&checks[0], "schema");
    assert_eq!(schema["type"], "function");
    assert_eq!(schema["name"], "read_note");
    assert_eq!(schema["description"], "Read one of the user's notes.");
    assert_eq!(schema["parameters"]["type"], "object");
    assert_eq!(schema["parameters"]["required"], json!(["name"]));
    assert_eq!(schema["parameters"]["properties"]["name"]["type"], "string");
    // The server registered no run of its own: only the caller's registration.
    assert_eq!(mock.requests_to(Endpoint::RegisterAgentRun).len(), 1);

    // The result is recorded as a `tool` event of the caller's run.
    let events = events(&mock, "tool", 1).await;
    assert_eq!(trace_of(&events[0]), trace.trace_id().to_string());
    let record = document(&events[0], "content");
    assert_eq!(record["action"], "read_note");
    assert_eq!(record["arguments"], json!({ "name": "groceries" }));
    assert_eq!(record["succeeded"], true);
    assert!(!record["action_check_id"].as_str().unwrap().is_empty());
    assert_eq!(record["result"]["content"][0]["text"], "the note groceries");
}

#[tokio::test]
async fn a_blocked_call_answers_the_reasoning_and_its_tool_never_runs() {
    let mock = MockServer::start().await.unwrap();
    mock.block_action(
        "delete_note",
        "Deleting a note needs the user's confirmation.",
    );
    let client = mock.client();
    let trace = caller_run(&client).await;
    let notes = Notes::default();
    let (peer, _server) = connect(Guard::new().client(client.clone()).wrap(notes.clone())).await;

    let mut call = note_call("delete_note", "todo");
    inject_trace(&mut call, &trace);
    let result = peer.call_tool(call).await.unwrap();

    assert_eq!(result.is_error, Some(true));
    // The words every Fabraix guard gives a model.
    assert_eq!(
        text(&result),
        "The call to `delete_note` did not run: Fabraix blocked it. Reason: Deleting a note \
         needs the user's confirmation."
    );
    let details = &result.meta.as_ref().expect("the refusal's details")[REFUSAL_META_KEY];
    assert_eq!(details["verdict"], "blocked");
    assert_eq!(
        details["reasoning"],
        "Deleting a note needs the user's confirmation."
    );
    assert!(!details["action_check_id"].as_str().unwrap().is_empty());
    assert!(
        notes.ran().is_empty(),
        "the blocked tool ran: {:?}",
        notes.ran()
    );
    let checks = checks(&mock);
    assert_eq!(checks.len(), 1);
    assert_eq!(trace_of(&checks[0]), trace.trace_id().to_string());

    // Nothing was recorded as run, and the server goes on serving.
    assert!(client.flush(PATIENCE).await);
    assert!(mock.requests_to(Endpoint::Event).is_empty());
    let mut call = note_call("read_note", "todo");
    inject_trace(&mut call, &trace);
    assert_eq!(peer.call_tool(call).await.unwrap().is_error, Some(false));
    assert_eq!(notes.ran().len(), 1);
}

#[tokio::test]
async fn calls_without_a_trace_share_one_run_the_server_registers_for_its_session() {
    let mock = MockServer::start().await.unwrap();
    let notes = Notes::default();
    let (peer, server) = connect(Guard::new().client(mock.client()).wrap(notes.clone())).await;

    // Nothing is registered until a call needs a run.
    peer.list_all_tools().await.unwrap();
    assert!(mock.requests_to(Endpoint::RegisterAgentRun).is_empty());
    assert_eq!(server.service().session_trace(), None);

    peer.call_tool(note_call("read_note", "a")).await.unwrap();
    peer.call_tool(note_call("delete_note", "b")).await.unwrap();
    peer.call_tool(note_call("read_note", "c")).await.unwrap();

    let registrations = mock.requests_to(Endpoint::RegisterAgentRun);
    assert_eq!(registrations.len(), 1, "one run for the session");
    let registration = &registrations[0].body;
    assert_eq!(
        registration["agent_id"],
        AgentId::from_name(SERVER_NAME).unwrap().to_string(),
        "the agent is named after the server"
    );
    let prompt = registration["system_prompt"].as_str().unwrap();
    assert!(prompt.contains("notes-test 1.2.3"), "{prompt}");
    assert!(prompt.contains("Reads and deletes notes."), "{prompt}");

    let session = server.service().session_trace().expect("the session's run");
    assert_eq!(mock.issued_traces(), vec![session.trace_id()]);
    let checks = checks(&mock);
    assert_eq!(checks.len(), 3);
    for check in &checks {
        assert_eq!(trace_of(check), session.trace_id().to_string());
    }
    let traces: Vec<Option<Trace>> = notes.ran().iter().map(|ran| ran.trace).collect();
    assert_eq!(traces, vec![Some(session); 3]);
    let events = events(&mock, "tool", 3).await;
    assert!(
        events
            .iter()
            .all(|event| trace_of(event) == session.trace_id().to_string())
    );
}

#[tokio::test]
async fn concurrent_first_calls_wait_for_one_registration() {
    let mock = MockServer::start().await.unwrap();
    let notes = Notes::default();
    let (peer, _server) = connect(Guard::new().client(mock.client()).wrap(notes.clone())).await;

    let mut calls = tokio::task::JoinSet::new();
    for i in 0..6 {
        let peer = peer.clone();
        calls.spawn(async move {
            peer.call_tool(note_call("read_note", &format!("n{i}")))
                .await
        });
    }
    while let Some(result) = calls.join_next().await {
        assert_eq!(result.unwrap().unwrap().is_error, Some(false));
    }
    assert_eq!(mock.requests_to(Endpoint::RegisterAgentRun).len(), 1);
    assert_eq!(notes.ran().len(), 6);
}

#[tokio::test]
async fn each_session_registers_a_run_of_its_own() {
    let mock = MockServer::start().await.unwrap();
    let guard = Guard::new().client(mock.client());
    let (first, first_server) = connect(guard.wrap(Notes::default())).await;
    let (second, second_server) = connect(guard.wrap(Notes::default())).await;

    first.call_tool(note_call("read_note", "a")).await.unwrap();
    second.call_tool(note_call("read_note", "b")).await.unwrap();
    first.call_tool(note_call("read_note", "c")).await.unwrap();

    assert_eq!(mock.requests_to(Endpoint::RegisterAgentRun).len(), 2);
    let first_run = first_server.service().session_trace().unwrap();
    let second_run = second_server.service().session_trace().unwrap();
    assert_ne!(first_run.trace_id(), second_run.trace_id());
    let traces: Vec<String> = checks(&mock).iter().map(trace_of).collect();
    let (a, b) = (
        first_run.trace_id().to_string(),
        second_run.trace_id().to_string(),
    );
    assert_eq!(traces, vec![a.clone(), b, a]);
}

#[tokio::test]
async fn the_agent_id_and_system_prompt_of_the_servers_runs_can_be_set() {
    let mock = MockServer::start().await.unwrap();
    let guard = Guard::new()
        .client(mock.client())
        .agent_id("notes-prod")
        .unwrap()
        .system_prompt("A tool server for the user's notes.");
    let (peer, _server) = connect(guard.wrap(Notes::default())).await;
    peer.call_tool(note_call("read_note", "a")).await.unwrap();

    let registrations = mock.requests_to(Endpoint::RegisterAgentRun);
    assert_eq!(registrations.len(), 1);
    assert_eq!(
        registrations[0].body["agent_id"],
        AgentId::from_name("notes-prod").unwrap().to_string()
    );
    assert_eq!(
        registrations[0].body["system_prompt"],
        "A tool server for the user's notes."
    );
    assert!(
        Guard::new().agent_id("  ").is_err(),
        "an empty agent id is refused"
    );
}

#[tokio::test]
async fn a_malformed_trace_in_meta_counts_as_none() {
    let mock = MockServer::start().await.unwrap();
    let client = mock.client();
    let trace = caller_run(&client).await;
    let notes = Notes::default();
    let (peer, server) = connect(Guard::new().client(client).wrap(notes.clone())).await;

    // A valid trace, to spoil one part at a time.
    let mut valid = note_call("read_note", "x");
    inject_trace(&mut valid, &trace);
    let valid = valid.meta.unwrap();
    let traceparent = valid["traceparent"].as_str().unwrap().to_owned();
    let baggage = valid["baggage"].as_str().unwrap().to_owned();
    let trace_hex = traceparent.split('-').nth(1).unwrap().to_owned();
    let spoiled: Vec<(&str, Value)> = vec![
        ("numbers", json!({ "traceparent": 7, "baggage": 8 })),
        (
            "garbage",
            json!({ "traceparent": "garbage", "baggage": "%%%" }),
        ),
        ("no baggage", json!({ "traceparent": traceparent })),
        ("no traceparent", json!({ "baggage": baggage })),
        (
            "another version",
            json!({ "traceparent": traceparent.replacen("00-", "ff-", 1), "baggage": baggage }),
        ),
        (
            "a zero trace id",
            json!({ "traceparent": traceparent.replace(&trace_hex, &"0".repeat(32)), "baggage": baggage }),
        ),
        (
            "an invalid agent id",
            json!({ "traceparent": traceparent, "baggage": "fabraix.agent_id=not-a-uuid" }),
        ),
        (
            "100 KB of baggage",
            json!({ "traceparent": traceparent, "baggage": format!("{baggage},{}", "k=v,".repeat(25_000)) }),
        ),
        (
            "other keys only",
            json!({ "progressToken": "p1", "vendor/x": { "a": 1 } }),
        ),
    ];
    for (case, meta) in &spoiled {
        let mut call = note_call("read_note", case);
        call.meta = Some(serde_json::from_value::<RequestMetaObject>(meta.clone()).unwrap());
        let result = peer.call_tool(call).await.unwrap();
        assert_eq!(result.is_error, Some(false), "{case}: {result:?}");
    }

    // Each ran, checked in the server's own run for the session, never the caller's.
    let session = server.service().session_trace().expect("the session's run");
    assert_ne!(session.trace_id(), trace.trace_id());
    assert_eq!(mock.requests_to(Endpoint::RegisterAgentRun).len(), 2);
    let checks = checks(&mock);
    assert_eq!(checks.len(), spoiled.len());
    for check in &checks {
        assert_eq!(trace_of(check), session.trace_id().to_string());
    }
    let ran = notes.ran();
    assert_eq!(ran.len(), spoiled.len());
    assert!(ran.iter().all(|ran| ran.trace == Some(session)));
}

/// A server written by hand: no `get_tool`, tools listed over two pages, and one tool it
/// answers without listing it.
#[derive(Clone, Default)]
struct Listed {
    list_calls: Arc<AtomicUsize>,
    ran: Arc<std::sync::Mutex<Vec<String>>>,
}

fn listed_tool(name: &'static str, description: &'static str) -> Tool {
    let schema = json!({
        "type": "object",
        "properties": { "amount_cents": { "type": "integer", "minimum": 0 } },
        "required": ["amount_cents"]
    });
    Tool::new(
        name,
        description,
        Arc::new(schema.as_object().unwrap().clone()),
    )
}

impl ServerHandler for Listed {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.list_calls.fetch_add(1, Ordering::SeqCst);
        let mut page = match request.and_then(|r| r.cursor) {
            None => {
                ListToolsResult::with_all_items(vec![listed_tool("refund", "Refund a payment.")])
            }
            Some(cursor) if cursor == "page-2" => {
                ListToolsResult::with_all_items(vec![listed_tool(
                    "transfer",
                    "Move money between two accounts.",
                )])
            }
            Some(other) => return Err(McpError::invalid_params(format!("cursor {other}"), None)),
        };
        if page.tools[0].name == "refund" {
            page.next_cursor = Some("page-2".into());
        }
        Ok(page)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.ran.lock().unwrap().push(request.name.to_string());
        match request.name.as_ref() {
            "explode" => Err(McpError::internal_error("the tool broke", None)),
            name => Ok(
                CallToolResult::success(vec![ContentBlock::text(format!("{name} done"))]).into(),
            ),
        }
    }
}

fn amount(cents: u64) -> CallToolRequestParams {
    let arguments = json!({ "amount_cents": cents });
    CallToolRequestParams::new("transfer").with_arguments(arguments.as_object().unwrap().clone())
}

#[tokio::test]
async fn a_server_without_get_tool_is_checked_with_the_schema_it_lists() {
    let mock = MockServer::start().await.unwrap();
    let listed = Listed::default();
    let (peer, _server) = connect(Guard::new().client(mock.client()).wrap(listed.clone())).await;

    peer.call_tool(amount(100)).await.unwrap();
    peer.call_tool(amount(200)).await.unwrap();

    let checks = checks(&mock);
    assert_eq!(checks.len(), 2);
    let schema = document(&checks[0], "schema");
    assert_eq!(schema["name"], "transfer");
    assert_eq!(schema["description"], "Move money between two accounts.");
    assert_eq!(
        schema["parameters"],
        json!({
            "type": "object",
            "properties": { "amount_cents": { "type": "integer", "minimum": 0 } },
            "required": ["amount_cents"]
        })
    );
    assert_eq!(
        document(&checks[1], "content"),
        json!({ "amount_cents": 200 })
    );
    // Both pages were read once; the second call used what the first one listed.
    assert_eq!(listed.list_calls.load(Ordering::SeqCst), 2);
    assert_eq!(*listed.ran.lock().unwrap(), ["transfer", "transfer"]);
}

#[tokio::test]
async fn a_tool_the_server_does_not_list_is_checked_all_the_same() {
    let mock = MockServer::start().await.unwrap();
    mock.block_action("hidden", "Unknown tools are not allowed.");
    let listed = Listed::default();
    let (peer, _server) = connect(Guard::new().client(mock.client()).wrap(listed.clone())).await;

    let result = peer
        .call_tool(CallToolRequestParams::new("hidden"))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("Unknown tools are not allowed."));
    assert!(listed.ran.lock().unwrap().is_empty());

    let checks = checks(&mock);
    assert_eq!(checks.len(), 1);
    let schema = document(&checks[0], "schema");
    assert_eq!(schema["name"], "hidden");
    assert_eq!(schema["parameters"], json!({ "type": "object" }));
    assert_eq!(document(&checks[0], "content"), json!({}));
}

#[tokio::test]
async fn a_tool_that_fails_is_recorded_as_failed() {
    let mock = MockServer::start().await.unwrap();
    let listed = Listed::default();
    let (peer, server) = connect(Guard::new().client(mock.client()).wrap(listed.clone())).await;

    let error = peer
        .call_tool(CallToolRequestParams::new("explode"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("the tool broke"), "{error}");

    let events = events(&mock, "tool", 1).await;
    let session = server.service().session_trace().unwrap();
    assert_eq!(trace_of(&events[0]), session.trace_id().to_string());
    let record = document(&events[0], "content");
    assert_eq!(record["action"], "explode");
    assert_eq!(record["succeeded"], false);
    assert_eq!(record["result"]["error"]["message"], "the tool broke");
}

#[tokio::test]
async fn only_traces_from_callers_the_guard_trusts_are_used() {
    let mock = MockServer::start().await.unwrap();
    let client = mock.client();
    let trace = caller_run(&client).await;
    // The name the test's rmcp client gives itself in `initialize`.
    let our_name = rmcp::ClientHandler::get_info(&()).client_info.name;
    let trusting = |name: String| {
        Guard::new()
            .client(client.clone())
            .trust(move |context| context.client_info().is_some_and(|c| c.name == name))
    };
    let traced = || {
        let mut call = note_call("read_note", "a");
        inject_trace(&mut call, &trace);
        call
    };

    let trusted = Notes::default();
    let (peer, server) = connect(trusting(our_name).wrap(trusted.clone())).await;
    assert_eq!(
        peer.call_tool(traced()).await.unwrap().is_error,
        Some(false)
    );
    assert_eq!(trusted.ran()[0].trace, Some(trace));
    assert_eq!(server.service().session_trace(), None);

    // Another name: the call runs in the server's own run, never the caller's.
    let distrusted = Notes::default();
    let (peer, server) = connect(trusting("someone-else".into()).wrap(distrusted.clone())).await;
    assert_eq!(
        peer.call_tool(traced()).await.unwrap().is_error,
        Some(false)
    );
    let session = server.service().session_trace().expect("the session's run");
    assert_ne!(session.trace_id(), trace.trace_id());
    assert_eq!(distrusted.ran()[0].trace, Some(session));
    let traces: Vec<String> = checks(&mock).iter().map(trace_of).collect();
    assert_eq!(
        traces,
        [trace.trace_id().to_string(), session.trace_id().to_string()]
    );
}
