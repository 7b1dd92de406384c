//! With `Guard::client`, an approved tool's own `log_event` and `#[fabraix::action]` calls
//! go through that client too, with no global client in the process at all.

mod common;

use common::*;
use fabraix::testing::{Endpoint, MockServer};
use fabraix::{Event, EventType};
use fabraix_mcp::{Guard, inject_trace};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

/// Archive a note.
#[fabraix::action]
async fn archive(name: String) -> Result<String, fabraix::Error> {
    Ok(format!("archived {name}"))
}

#[derive(Clone)]
struct Archiver {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Archiver {
    /// Archive a note, saying so in the run.
    #[tool]
    async fn archive_note(&self, Parameters(note): Parameters<NoteName>) -> String {
        let logged = fabraix::log_event(Event::text(EventType::Memory, "archiving"));
        match (logged, archive(note.name).await) {
            (Ok(()), Ok(done)) => done,
            (logged, archived) => format!("failed: {logged:?} {archived:?}"),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Archiver {}

#[tokio::test]
async fn the_tool_body_uses_the_guard_s_client() {
    // No `fabraix::init`: the global client, if the environment gives one, is not this
    // server's, so everything below reaching `mock` went through the guard's client.
    let mock = MockServer::start().await.unwrap();
    let trace = caller_run(&mock.client()).await;
    let archiver = Archiver {
        tool_router: Archiver::tool_router(),
    };
    let guarded = Guard::new().client(mock.client()).wrap(archiver);
    let (peer, _server) = connect(guarded).await;

    let mut call = note_call("archive_note", "ada");
    inject_trace(&mut call, &trace);
    let result = peer.call_tool(call).await.unwrap();
    assert_eq!(text(&result), "archived ada");

    let actions: Vec<String> = checks(&mock).iter().map(checked_action).collect();
    assert_eq!(actions, ["archive_note", "archive"]);
    let memory = events(&mock, "memory", 1).await;
    assert_eq!(trace_of(&memory[0]), trace.trace_id().to_string());
    assert_eq!(mock.requests_to(Endpoint::RegisterAgentRun).len(), 1);
}
