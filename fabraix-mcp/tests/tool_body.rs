//! Inside an approved tool, the caller's run is current: the tool's own `log_event` and
//! `#[fabraix::action]` fns act for it, through the global client.

mod common;

use common::*;
use fabraix::testing::{Endpoint, MockServer};
use fabraix::{Event, EventType};
use fabraix_mcp::inject_trace;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

/// Send an email.
#[fabraix::action]
async fn send_email(to: String) -> Result<String, fabraix::Error> {
    Ok(format!("sent to {to}"))
}

#[derive(Clone)]
struct Mailer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Mailer {
    /// Mail a note to its owner.
    #[tool]
    async fn mail_note(&self, Parameters(note): Parameters<NoteName>) -> String {
        fabraix::log_event(Event::text(
            EventType::Memory,
            format!("mailing {}", note.name),
        ))
        .expect("a run is current in the tool");
        match send_email(format!("{}@example.com", note.name)).await {
            Ok(sent) => sent,
            Err(error) => format!("not sent: {error}"),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Mailer {}

#[tokio::test]
async fn the_tool_logs_and_checks_in_the_callers_run_through_the_global_client() {
    let mock = MockServer::start().await.unwrap();
    let _fabraix = fabraix::init(mock.client()).unwrap();
    let trace = caller_run(&mock.client()).await;
    let mailer = Mailer {
        tool_router: Mailer::tool_router(),
    };
    let (peer, _server) = connect(fabraix_mcp::guard(mailer)).await;

    let mut call = note_call("mail_note", "ada");
    inject_trace(&mut call, &trace);
    let result = peer.call_tool(call).await.unwrap();
    assert_eq!(text(&result), "sent to ada@example.com");

    // The guard's check of `mail_note`, then the tool's own check of `send_email`.
    let checks = checks(&mock);
    let actions: Vec<String> = checks.iter().map(checked_action).collect();
    assert_eq!(actions, ["mail_note", "send_email"]);
    assert!(
        checks
            .iter()
            .all(|c| trace_of(c) == trace.trace_id().to_string())
    );
    // The tool's `memory` event, and the `tool` events of both, all in the caller's run.
    let memory = events(&mock, "memory", 1).await;
    assert_eq!(trace_of(&memory[0]), trace.trace_id().to_string());
    assert_eq!(
        document(&memory[0], "content"),
        serde_json::json!({ "text": "mailing ada" })
    );
    let tools = events(&mock, "tool", 2).await;
    assert!(
        tools
            .iter()
            .all(|e| trace_of(e) == trace.trace_id().to_string())
    );
    assert_eq!(mock.requests_to(Endpoint::RegisterAgentRun).len(), 1);
}
