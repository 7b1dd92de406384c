//! The agent's side: the trace written into a call's `_meta` (readable by rmcp's own
//! trace-context helpers), and calls checked before they are sent.

mod common;

use std::collections::HashMap;

use common::*;
use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{AgentId, Client, Error, Trace, TraceId, propagation};
use fabraix_mcp::{Guard, check_tool_call, extract_trace, inject_current_trace, inject_trace};
use rmcp::model::{NumberOrString, ProgressToken, RequestParamsMeta};

fn a_trace() -> Trace {
    Trace::new(
        TraceId::from_uuid(uuid::Uuid::new_v4()),
        AgentId::from_name("caller-agent").unwrap(),
        "2024-01-15T14:30:45.123Z".parse().unwrap(),
    )
}

#[test]
fn inject_trace_writes_what_rmcps_trace_context_helpers_read() {
    let trace = a_trace();
    let mut call = note_call("read_note", "a");
    call.set_progress_token(ProgressToken(NumberOrString::String("p-1".into())));
    call.set_baggage("tenant=acme");

    inject_trace(&mut call, &trace);

    let traceparent = call.traceparent().expect("rmcp reads the traceparent");
    let hex = trace.trace_id().as_uuid().simple().to_string();
    assert!(
        traceparent.starts_with(&format!("00-{hex}-")),
        "{traceparent}"
    );
    assert!(traceparent.ends_with("-01"), "{traceparent}");
    let baggage = call.baggage().expect("rmcp reads the baggage");
    assert!(
        baggage.starts_with("tenant=acme,"),
        "other members stay: {baggage}"
    );
    assert!(baggage.contains(&format!("fabraix.agent_id={}", trace.agent_id())));
    assert!(baggage.contains("fabraix.registered_at=2024-01-15T14:30:45.123Z"));
    // What was in `_meta` before stays.
    assert_eq!(
        call.progress_token(),
        Some(ProgressToken(NumberOrString::String("p-1".into())))
    );
    assert_eq!(extract_trace(call.meta.as_ref().unwrap()), Some(trace));
}

#[test]
fn inject_current_trace_writes_the_current_run_and_nothing_outside_one() {
    let mut outside = note_call("read_note", "a");
    assert_eq!(inject_current_trace(&mut outside), None);
    assert_eq!(outside.meta, None);

    let trace = a_trace();
    let mut inside = note_call("read_note", "a");
    let injected = fabraix::sync_scope(trace, || inject_current_trace(&mut inside));
    assert_eq!(injected, Some(trace));
    assert_eq!(extract_trace(inside.meta.as_ref().unwrap()), Some(trace));
}

#[tokio::test]
async fn a_trace_set_with_rmcps_own_helpers_reaches_the_tool() {
    let mock = MockServer::start().await.unwrap();
    let client = mock.client();
    let trace = caller_run(&client).await;
    let notes = Notes::default();
    let (peer, _server) = connect(Guard::new().client(client).wrap(notes.clone())).await;

    // Written by `fabraix::propagation` into a plain map, set through rmcp's setters.
    let mut headers = HashMap::new();
    propagation::inject(&trace, &mut headers);
    let mut call = note_call("read_note", "a");
    call.set_traceparent(&headers[propagation::TRACEPARENT]);
    call.set_baggage(&headers[propagation::BAGGAGE]);
    let result = peer.call_tool(call).await.unwrap();

    assert_eq!(result.is_error, Some(false));
    assert_eq!(notes.ran()[0].trace, Some(trace));
    assert_eq!(trace_of(&checks(&mock)[0]), trace.trace_id().to_string());
}

#[fabraix::agent(id = "caller-agent", system_prompt = "You call tools.", client = client)]
async fn agent_calls(
    client: &Client,
    peer: &rmcp::Peer<rmcp::RoleClient>,
    tool: &'static str,
) -> Result<(Option<Trace>, Result<(), Error>), Error> {
    let trace = fabraix::current_trace();
    let tools = peer.list_all_tools().await.unwrap();
    let definition = tools.iter().find(|t| t.name == tool);
    let sent = match check_tool_call(note_call(tool, "todo"), definition).await {
        Ok(call) => {
            assert_eq!(extract_trace(call.meta.as_ref().unwrap()), trace);
            peer.call_tool(call).await.unwrap();
            Ok(())
        }
        Err(error) => Err(error),
    };
    Ok((trace, sent))
}

#[tokio::test]
async fn check_tool_call_checks_in_the_agents_run_and_the_server_acts_in_it_too() {
    let mock = MockServer::start().await.unwrap();
    let client = mock.client();
    let notes = Notes::default();
    let (peer, _server) = connect(Guard::new().client(client.clone()).wrap(notes.clone())).await;

    let (trace, sent) = agent_calls(&client, &peer, "read_note").await.unwrap();
    sent.unwrap();
    let trace = trace.expect("the agent's run");

    // Checked by the agent, then by the server, both in the agent's one run.
    let checks = checks(&mock);
    assert_eq!(checks.len(), 2);
    for check in &checks {
        assert_eq!(trace_of(check), trace.trace_id().to_string());
        assert_eq!(checked_action(check), "read_note");
        assert_eq!(
            document(check, "schema")["description"],
            "Read one of the user's notes."
        );
    }
    assert_eq!(mock.requests_to(Endpoint::RegisterAgentRun).len(), 1);
    assert_eq!(notes.ran()[0].trace, Some(trace));
}

#[tokio::test]
async fn check_tool_call_keeps_a_blocked_call_from_leaving_the_agent() {
    let mock = MockServer::start().await.unwrap();
    mock.block_action("delete_note", "Deleting needs the user's confirmation.");
    let client = mock.client();
    let notes = Notes::default();
    let (peer, _server) = connect(Guard::new().client(client.clone()).wrap(notes.clone())).await;

    let (_, sent) = agent_calls(&client, &peer, "delete_note").await.unwrap();
    match sent {
        Err(Error::Blocked { reasoning, .. }) => {
            assert_eq!(reasoning, "Deleting needs the user's confirmation.")
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
    assert_eq!(checks(&mock).len(), 1, "only the agent's own check");
    assert!(notes.ran().is_empty());
}

#[tokio::test]
async fn check_tool_call_outside_a_run_fails_closed() {
    let result = check_tool_call(note_call("read_note", "a"), None).await;
    assert!(matches!(result, Err(Error::NoTrace)), "{result:?}");
}

#[tokio::test]
async fn the_old_name_check_call_is_check_tool_call() {
    #[allow(deprecated)]
    let result = fabraix_mcp::check_call(note_call("read_note", "a"), None).await;
    assert!(matches!(result, Err(Error::NoTrace)), "{result:?}");
}

#[fabraix::agent(id = "caller-agent", system_prompt = "You call tools.", client = client)]
async fn agent_checks(
    client: &Client,
    tool: &'static str,
) -> (
    Option<Trace>,
    Result<rmcp::model::CallToolRequestParams, Error>,
) {
    let checked = check_tool_call(note_call(tool, "todo"), None).await;
    (fabraix::current_trace(), checked)
}

#[tokio::test]
async fn check_tool_call_with_fabraix_disabled_lets_the_call_go_unchecked() {
    // A server the client would reach if it were not disabled, to show that nothing does.
    let mock = MockServer::start().await.unwrap();
    let client = mock.client_builder().disabled(true).build().unwrap();
    let notes = Notes::default();
    let (peer, _server) = connect(Guard::new().client(client.clone()).wrap(notes.clone())).await;

    let (trace, checked) = agent_checks(&client, "delete_note").await;
    assert_eq!(trace, None, "a disabled SDK's run has no trace");
    let call = checked.expect("the call goes, unchecked");
    assert_eq!(call.meta, None, "no trace to write");
    let result = peer.call_tool(call).await.unwrap();

    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(text(&result), "deleted todo");
    assert_eq!(notes.ran().len(), 1);
    assert!(client.flush(PATIENCE).await);
    assert!(mock.requests().is_empty(), "{:#?}", mock.requests());
}

#[tokio::test]
async fn check_tool_call_in_a_run_that_could_not_register_fails_closed_and_names_why() {
    let mock = MockServer::start().await.unwrap();
    mock.fail_next(
        usize::MAX,
        Fault::status(401).on(Endpoint::RegisterAgentRun),
    );
    let client = mock.client();

    let (trace, checked) = agent_checks(&client, "delete_note").await;

    assert_eq!(trace, None);
    match checked {
        Err(Error::Unregistered { cause }) => assert_eq!(cause.status(), Some(401), "{cause}"),
        other => panic!("expected Unregistered, got {other:?}"),
    }
    assert!(mock.requests_to(Endpoint::Check).is_empty());
}
