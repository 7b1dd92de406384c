//! What the tests share: a notes server whose tools record that they ran, an in-process
//! connection to a guarded server, and readers of what the MockServer received.
#![allow(dead_code)] // each test binary uses its own part of this

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fabraix::testing::{Endpoint, MockServer, RecordedRequest};
use fabraix::{AgentId, Client, Trace};
use fabraix_mcp::Guarded;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ContentBlock, Implementation, JsonObject,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::{RoleClient, RoleServer, RunningService};
use rmcp::{ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde_json::Value;

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The name the notes server gives itself.
pub const SERVER_NAME: &str = "notes-test";

/// One run of a tool body.
#[derive(Debug, Clone, PartialEq)]
pub struct Ran {
    pub tool: String,
    pub name: String,
    /// `fabraix::current_trace()` inside the body.
    pub trace: Option<Trace>,
    /// When the body ran.
    pub at: Instant,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct NoteName {
    /// The note's name.
    pub name: String,
}

/// A server with `read_note` and `delete_note`, recording each body that runs.
#[derive(Clone)]
pub struct Notes {
    pub ran: Arc<Mutex<Vec<Ran>>>,
    tool_router: ToolRouter<Self>,
}

impl Default for Notes {
    fn default() -> Self {
        Self {
            ran: Arc::default(),
            tool_router: Self::tool_router(),
        }
    }
}

#[tool_router]
impl Notes {
    /// Read one of the user's notes.
    #[tool]
    async fn read_note(&self, Parameters(note): Parameters<NoteName>) -> String {
        self.record("read_note", &note.name);
        format!("the note {}", note.name)
    }

    /// Delete one of the user's notes.
    #[tool]
    async fn delete_note(&self, Parameters(note): Parameters<NoteName>) -> CallToolResult {
        self.record("delete_note", &note.name);
        CallToolResult::success(vec![ContentBlock::text(format!("deleted {}", note.name))])
    }
}

impl Notes {
    fn record(&self, tool: &str, name: &str) {
        self.ran.lock().unwrap().push(Ran {
            tool: tool.to_owned(),
            name: name.to_owned(),
            trace: fabraix::current_trace(),
            at: Instant::now(),
        });
    }

    /// The bodies that ran so far.
    pub fn ran(&self) -> Vec<Ran> {
        self.ran.lock().unwrap().clone()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Notes {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, "1.2.3"))
            .with_instructions("Reads and deletes notes.")
    }
}

pub type Connection<S> = (
    RunningService<RoleClient, ()>,
    RunningService<RoleServer, Guarded<S>>,
);

/// A real rmcp client connected to `server` over an in-process byte stream.
pub async fn connect<S: ServerHandler>(server: Guarded<S>) -> Connection<S> {
    let (server_end, client_end) = tokio::io::duplex(64 * 1024);
    let serving = tokio::spawn(async move { server.serve(server_end).await });
    let client = ().serve(client_end).await.expect("the client connects");
    let server = serving
        .await
        .expect("the server task ends")
        .expect("the server starts");
    (client, server)
}

/// A `tools/call` of `tool` with the argument `name`.
pub fn note_call(tool: &'static str, name: &str) -> CallToolRequestParams {
    let mut arguments = JsonObject::new();
    arguments.insert("name".into(), name.into());
    CallToolRequestParams::new(tool).with_arguments(arguments)
}

/// The text of a result's content blocks, joined.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|content| content.as_text())
        .map(|text| text.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Registers a run of the calling agent on `server`: the trace the agent sends along.
pub async fn caller_run(client: &Client) -> Trace {
    client
        .register_agent_run(
            AgentId::from_name("caller-agent").unwrap(),
            "You call tools.",
        )
        .await
        .expect("the caller's run registers")
}

/// A JSON document sent as a string field (`content`, `schema`), parsed.
pub fn document(request: &RecordedRequest, field: &str) -> Value {
    let text = request.body[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is a string in {}", request.body));
    serde_json::from_str(text).expect("the field holds a JSON document")
}

/// The trace id a request names.
pub fn trace_of(request: &RecordedRequest) -> String {
    request.body["trace_id"]
        .as_str()
        .expect("the request names a trace")
        .to_owned()
}

/// The name of the action a `/check` asked about.
pub fn checked_action(request: &RecordedRequest) -> String {
    document(request, "schema")["name"]
        .as_str()
        .expect("the check names its action")
        .to_owned()
}

/// The `/check` requests that were answered by the API (not by an injected fault).
pub fn checks(server: &MockServer) -> Vec<RecordedRequest> {
    server
        .requests_to(Endpoint::Check)
        .into_iter()
        .filter(|request| !request.faulted)
        .collect()
}

/// Waits until the server has received `count` events of `event_type`, and returns them.
pub async fn events(server: &MockServer, event_type: &str, count: usize) -> Vec<RecordedRequest> {
    let of_type = |requests: &[RecordedRequest]| {
        requests
            .iter()
            .filter(|r| r.path == "/v1/event" && r.body["event_type"] == event_type && !r.faulted)
            .cloned()
            .collect::<Vec<_>>()
    };
    let arrived = server
        .wait_for(PATIENCE, |requests| of_type(requests).len() >= count)
        .await;
    assert!(arrived, "{count} `{event_type}` events arrive");
    of_type(&server.requests())
}

/// The `notes_server` example, built beside the tests (`cargo test` builds the examples).
pub fn notes_server() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("tests run from <target>/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("notes_server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test -p fabraix-mcp` (which builds the examples), \
         or build it with `cargo build -p fabraix-mcp --example notes_server`",
        path.display()
    );
    path
}

/// A file name no other test uses, in the temporary directory.
pub fn scratch_file(what: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("fabraix-mcp-{what}-{}", uuid::Uuid::new_v4()))
}

/// The lines of the audit file `notes_server` appends to; none if it was never written.
pub fn audit_lines(path: &std::path::Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => panic!("reading {}: {error}", path.display()),
    }
}
