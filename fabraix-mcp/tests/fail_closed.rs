//! No verdict, no tool: Fabraix unreachable, error answers and a failed registration all
//! answer a tool error and never run the tool. The one exception is a disabled client: the
//! user turned checking off, so the tool runs, unchecked.

mod common;

use common::*;
use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{AgentId, Client, Trace, TraceId};
use fabraix_mcp::{Guard, REFUSAL_META_KEY, inject_trace};
use rmcp::model::CallToolResult;

/// Asserts that `result` refuses the call as unchecked.
fn assert_unchecked(result: &CallToolResult) {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    let answer = text(result);
    assert!(answer.contains("could not check"), "{answer}");
    assert!(answer.contains("did not run"), "{answer}");
    let details = &result.meta.as_ref().expect("the refusal's details")[REFUSAL_META_KEY];
    assert_eq!(details["verdict"], "unchecked");
}

#[tokio::test]
async fn fabraix_unreachable_refuses_every_call_and_runs_no_tool() {
    let mock = MockServer::start().await.unwrap();
    let client = mock.client();
    let trace = caller_run(&client).await;
    let notes = Notes::default();
    let (peer, _server) = connect(Guard::new().client(client).wrap(notes.clone())).await;

    mock.pause().unwrap();
    let mut traced = note_call("delete_note", "todo");
    inject_trace(&mut traced, &trace);
    assert_unchecked(&peer.call_tool(traced.clone()).await.unwrap());
    assert_unchecked(
        &peer
            .call_tool(note_call("read_note", "todo"))
            .await
            .unwrap(),
    );
    assert!(
        notes.ran().is_empty(),
        "a tool ran unchecked: {:?}",
        notes.ran()
    );

    // Back up: the same calls are checked and run.
    mock.resume().unwrap();
    assert_eq!(peer.call_tool(traced).await.unwrap().is_error, Some(false));
    assert_eq!(notes.ran().len(), 1);
}

#[tokio::test]
async fn a_closed_port_refuses_every_call() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = Client::builder()
        .api_key("a-key")
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .max_retries(1)
        .backoff(
            std::time::Duration::from_millis(1),
            std::time::Duration::from_millis(5),
        )
        .build()
        .unwrap();
    let notes = Notes::default();
    let (peer, server) = connect(Guard::new().client(client).wrap(notes.clone())).await;

    // Without a trace the session's run cannot be registered; with one, it cannot be checked.
    assert_unchecked(&peer.call_tool(note_call("read_note", "a")).await.unwrap());
    let other = MockServer::start().await.unwrap();
    let trace = caller_run(&other.client()).await;
    let mut traced = note_call("delete_note", "b");
    inject_trace(&mut traced, &trace);
    assert_unchecked(&peer.call_tool(traced).await.unwrap());

    assert!(notes.ran().is_empty());
    assert_eq!(server.service().session_trace(), None);
}

#[tokio::test]
async fn error_answers_refuse_the_call() {
    let mock = MockServer::start().await.unwrap();
    let client = mock.client();
    let trace = caller_run(&client).await;
    let notes = Notes::default();
    let (peer, _server) = connect(Guard::new().client(client).wrap(notes.clone())).await;
    let traced = || {
        let mut call = note_call("read_note", "a");
        inject_trace(&mut call, &trace);
        call
    };

    // 500 past the retries; 401; a 200 whose body is not JSON.
    mock.fail_next(10, Fault::status(500).on(Endpoint::Check));
    assert_unchecked(&peer.call_tool(traced()).await.unwrap());
    mock.clear_faults();
    mock.fail_next(1, Fault::status(401).on(Endpoint::Check));
    assert_unchecked(&peer.call_tool(traced()).await.unwrap());
    mock.fail_next(10, Fault::malformed_body().on(Endpoint::Check));
    assert_unchecked(&peer.call_tool(traced()).await.unwrap());
    mock.clear_faults();

    assert!(notes.ran().is_empty());
    assert!(checks(&mock).is_empty(), "every check met a fault");
}

#[tokio::test]
async fn a_failed_registration_is_tried_again_at_the_next_call() {
    let mock = MockServer::start().await.unwrap();
    let notes = Notes::default();
    let (peer, server) = connect(Guard::new().client(mock.client()).wrap(notes.clone())).await;

    mock.fail_next(10, Fault::status(503).on(Endpoint::RegisterAgentRun));
    assert_unchecked(&peer.call_tool(note_call("read_note", "a")).await.unwrap());
    assert_eq!(server.service().session_trace(), None);
    mock.clear_faults();

    let result = peer.call_tool(note_call("read_note", "b")).await.unwrap();
    assert_eq!(result.is_error, Some(false));
    let session = server
        .service()
        .session_trace()
        .expect("registered at the second call");
    assert_eq!(mock.issued_traces(), vec![session.trace_id()]);
    assert_eq!(notes.ran().len(), 1);
    assert_eq!(notes.ran()[0].name, "b");
}

#[tokio::test]
async fn a_disabled_client_runs_every_tool_unchecked_and_sends_nothing() {
    // A server the client would reach if it were not disabled, to show that nothing does.
    let mock = MockServer::start().await.unwrap();
    let client = mock.client_builder().disabled(true).build().unwrap();
    let notes = Notes::default();
    let (peer, server) = connect(Guard::new().client(client.clone()).wrap(notes.clone())).await;

    // A call with no trace: no run is registered for the session.
    let untraced = peer.call_tool(note_call("read_note", "a")).await.unwrap();
    assert_eq!(untraced.is_error, Some(false), "{untraced:?}");
    assert_eq!(text(&untraced), "the note a");
    assert_eq!(untraced.meta, None, "no refusal details");
    // A call in a caller's run (its trace was never issued by any Fabraix: nothing asks).
    let trace = Trace::new(
        TraceId::from_uuid(uuid::Uuid::new_v4()),
        AgentId::from_name("caller-agent").unwrap(),
        chrono::Utc::now(),
    );
    let mut traced = note_call("delete_note", "b");
    inject_trace(&mut traced, &trace);
    let deleted = peer.call_tool(traced).await.unwrap();
    assert_eq!(deleted.is_error, Some(false), "{deleted:?}");
    assert_eq!(text(&deleted), "deleted b");

    // Both bodies ran: the untraced call in no run, the traced one in the caller's.
    let ran = notes.ran();
    let calls: Vec<(&str, &str)> = ran
        .iter()
        .map(|ran| (ran.tool.as_str(), ran.name.as_str()))
        .collect();
    assert_eq!(calls, [("read_note", "a"), ("delete_note", "b")]);
    assert_eq!(ran[0].trace, None);
    assert_eq!(ran[1].trace.map(|t| t.trace_id()), Some(trace.trace_id()));
    assert_eq!(server.service().session_trace(), None);
    // Nothing reached the server: no registration, no check, no `tool` event.
    assert!(client.flush(PATIENCE).await);
    assert!(mock.requests().is_empty(), "{:#?}", mock.requests());
}
