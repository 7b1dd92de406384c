//! What the tests share: the stand-in model, the notes tools, and a rig agent built on
//! both.
#![allow(dead_code)]

pub mod model;
pub mod notes;

use std::time::Duration;

use fabraix::testing::{Endpoint, MockServer, RecordedRequest};
use fabraix_rig::FabraixHook;
use rig_agent::agent::WithBuilderTools;
use rig_agent::{Agent, AgentBuilder};
use rig_core::providers::openai::{OpenAIConfig, Route};
use serde_json::Value;

pub use model::{Reply, StandInModel};
pub use notes::Notebook;

pub const PREAMBLE: &str = "You keep the user's notes tidy. Never delete a note without asking.";
pub const PROMPT: &str = "Tidy my notes: read `groceries`, then delete it.";
pub const BLOCK_REASON: &str = "Deleting a note cannot be undone; ask the user first.";
pub const GROCERIES: &str = "eggs, milk, flour";

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A rig agent named `notes-tidier` on the stand-in model, with the notes tools and
/// `hook`.
pub fn agent(model: &StandInModel, notebook: &Notebook, hook: FabraixHook) -> Agent {
    builder(model, notebook).add_hook(hook).build()
}

/// The same agent, before any hook.
pub fn builder(model: &StandInModel, notebook: &Notebook) -> AgentBuilder<WithBuilderTools> {
    let model = OpenAIConfig::new("stand-in-key")
        .with_base_url(model.url())
        .with_route(Route::Chat)
        .client()
        .completion("stand-in");
    AgentBuilder::new(model)
        .name("notes-tidier")
        .preamble(PREAMBLE)
        .default_max_turns(4)
        .tool(notebook.read_note())
        .tool(notebook.delete_note())
}

/// The script of the tests' model: ask for both tools on `groceries`, then echo what
/// they answered.
pub fn read_then_delete() -> Vec<Reply> {
    vec![
        Reply::ToolCalls(vec![
            Reply::tool_call("read_note", serde_json::json!({ "name": "groceries" })),
            Reply::tool_call("delete_note", serde_json::json!({ "name": "groceries" })),
        ]),
        Reply::EchoToolResults,
    ]
}

/// The events the server received, as `(event_type, trace_id, content)`.
pub fn events(server: &MockServer) -> Vec<(String, String, Value)> {
    server
        .requests_to(Endpoint::Event)
        .iter()
        .map(|request| {
            (
                request.body["event_type"].as_str().unwrap().to_owned(),
                request.body["trace_id"].as_str().unwrap().to_owned(),
                content(request),
            )
        })
        .collect()
}

/// A recorded event's or check's `content`, parsed.
pub fn content(request: &RecordedRequest) -> Value {
    serde_json::from_str(request.body["content"].as_str().unwrap()).unwrap()
}

/// A recorded event's or check's `schema`, parsed.
pub fn schema(request: &RecordedRequest) -> Value {
    serde_json::from_str(request.body["schema"].as_str().unwrap()).unwrap()
}

/// The events of the given types, in order.
pub fn of_type<'a>(
    events: &'a [(String, String, Value)],
    kind: &str,
) -> Vec<&'a (String, String, Value)> {
    events.iter().filter(|(t, _, _)| t == kind).collect()
}

/// Waits until the server holds `count` events.
pub async fn wait_for_events(server: &MockServer, count: usize) -> bool {
    server
        .wait_for(PATIENCE, |requests| {
            requests.iter().filter(|r| r.path == "/v1/event").count() >= count
        })
        .await
}
