//! `notes_server` as a separate process over stdio, driven by an rmcp client: every call
//! checked before its tool runs, in the caller's run when `_meta` carries one, and no
//! blocked or unchecked tool ever runs (as its audit file shows).

mod common;

use std::path::Path;

use common::*;
use fabraix::AgentId;
use fabraix::testing::{Endpoint, MockServer};
use fabraix_mcp::inject_trace;
use rmcp::ServiceExt;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use tokio::process::Command;

async fn start_notes_server(mock: &MockServer, audit: &Path) -> RunningService<RoleClient, ()> {
    let command = Command::new(notes_server()).configure(|command| {
        command
            .env("FABRAIX_API_KEY", mock.api_key())
            .env("FABRAIX_BASE_URL", mock.url())
            .env("FABRAIX_MAX_RETRIES", "1")
            .env("NOTES_AUDIT", audit)
            .env_remove("FABRAIX_DISABLED");
    });
    ().serve(TokioChildProcess::new(command).unwrap())
        .await
        .expect("notes_server starts and initializes")
}

#[tokio::test]
async fn notes_server_checks_every_call_in_the_callers_run_or_its_own() {
    let mock = MockServer::start().await.unwrap();
    mock.block_action(
        "delete_note",
        "Deleting notes needs the user's confirmation.",
    );
    let trace = caller_run(&mock.client()).await;
    let audit = scratch_file("audit");
    let peer = start_notes_server(&mock, &audit).await;

    let tools = peer.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, ["delete_note", "read_note"]);

    let traced = |tool, name| {
        let mut call = note_call(tool, name);
        inject_trace(&mut call, &trace);
        call
    };
    let read = peer
        .call_tool(traced("read_note", "groceries"))
        .await
        .unwrap();
    assert_eq!(read.is_error, Some(false), "{read:?}");
    assert_eq!(text(&read), "oat milk, lemons, rye bread");
    let delete = peer.call_tool(traced("delete_note", "todo")).await.unwrap();
    assert_eq!(delete.is_error, Some(true));
    assert!(text(&delete).contains("Deleting notes needs the user's confirmation."));
    let untraced_read = peer
        .call_tool(note_call("read_note", "todo"))
        .await
        .unwrap();
    assert_eq!(untraced_read.is_error, Some(false));
    let untraced_delete = peer
        .call_tool(note_call("delete_note", "passwords"))
        .await
        .unwrap();
    assert_eq!(untraced_delete.is_error, Some(true));
    peer.cancel().await.unwrap();

    // Only the approved tools ran.
    assert_eq!(
        audit_lines(&audit),
        ["read_note groceries", "read_note todo"]
    );

    // Two checks in the caller's run, two in the run the server registered for itself.
    let registrations = mock.requests_to(Endpoint::RegisterAgentRun);
    assert_eq!(registrations.len(), 2, "the caller's run and the session's");
    assert_eq!(
        registrations[1].body["agent_id"],
        AgentId::from_name("notes-server").unwrap().to_string()
    );
    let session = mock.issued_traces()[1].to_string();
    let caller = trace.trace_id().to_string();
    let checked: Vec<(String, String)> = checks(&mock)
        .iter()
        .map(|check| (checked_action(check), trace_of(check)))
        .collect();
    assert_eq!(
        checked,
        [
            ("read_note".to_owned(), caller.clone()),
            ("delete_note".to_owned(), caller.clone()),
            ("read_note".to_owned(), session.clone()),
            ("delete_note".to_owned(), session.clone()),
        ]
    );
    // The tool's own event, logged inside the run it was called in (flushed at exit).
    let memory = events(&mock, "memory", 2).await;
    let runs: Vec<String> = memory.iter().map(trace_of).collect();
    assert_eq!(runs, [caller, session]);
    let _ = std::fs::remove_file(&audit);
}

#[tokio::test]
async fn notes_server_runs_no_tool_while_fabraix_is_unreachable() {
    let mock = MockServer::start().await.unwrap();
    let trace = caller_run(&mock.client()).await;
    let audit = scratch_file("audit");
    let peer = start_notes_server(&mock, &audit).await;

    mock.pause().unwrap();
    let mut traced = note_call("delete_note", "todo");
    inject_trace(&mut traced, &trace);
    for call in [traced, note_call("read_note", "groceries")] {
        let result = peer.call_tool(call).await.unwrap();
        assert_eq!(result.is_error, Some(true));
        assert!(
            text(&result).contains("could not check"),
            "{}",
            text(&result)
        );
    }
    peer.cancel().await.unwrap();

    assert_eq!(audit_lines(&audit), Vec::<String>::new());
    let _ = std::fs::remove_file(&audit);
}
