//! An MCP server over stdio with two tools, `read_note { name }` and `delete_note { name }`,
//! every call of which Fabraix checks before the tool runs.
//!
//! ```sh
//! FABRAIX_API_KEY=... cargo run -p fabraix-mcp --example notes_server
//! ```
//!
//! Its Fabraix client comes from the environment (`FABRAIX_API_KEY`, `FABRAIX_BASE_URL`).
//! A call runs in the caller's run when its `_meta` carries one (`traceparent` and
//! `baggage`), else in a run the server registers for the session. When `NOTES_AUDIT`
//! names a file, each tool appends the line `<tool name> <note name>` to it when it runs,
//! so a test can see which tools ran. `notes_client` drives it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use fabraix::{Event, EventType};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};

/// The arguments of both tools.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct NoteName {
    /// The note's name, e.g. `groceries`.
    name: String,
}

#[derive(Clone)]
struct Notes {
    notes: Arc<Mutex<BTreeMap<String, String>>>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Notes {
    fn new() -> Self {
        let notes = [
            ("groceries", "oat milk, lemons, rye bread"),
            ("todo", "renew the passport; call the plumber"),
            ("passwords", "bank: hunter2"),
        ];
        let notes = notes
            .into_iter()
            .map(|(name, text)| (name.to_owned(), text.to_owned()))
            .collect();
        Self {
            notes: Arc::new(Mutex::new(notes)),
            tool_router: Self::tool_router(),
        }
    }

    /// Read one of the user's notes.
    #[tool]
    async fn read_note(&self, Parameters(note): Parameters<NoteName>) -> CallToolResult {
        audit("read_note", &note.name);
        let text = self.notes.lock().unwrap().get(&note.name).cloned();
        // The tool runs inside the run: what it logs belongs to the caller's run.
        let _ = fabraix::log_event(Event::text(
            EventType::Memory,
            format!("read the note {}", note.name),
        ));
        match text {
            Some(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            None => CallToolResult::error(vec![ContentBlock::text(format!(
                "no note named {}",
                note.name
            ))]),
        }
    }

    /// Delete one of the user's notes, for good.
    #[tool]
    async fn delete_note(&self, Parameters(note): Parameters<NoteName>) -> CallToolResult {
        audit("delete_note", &note.name);
        match self.notes.lock().unwrap().remove(&note.name) {
            Some(_) => {
                CallToolResult::success(vec![ContentBlock::text(format!("deleted {}", note.name))])
            }
            None => CallToolResult::error(vec![ContentBlock::text(format!(
                "no note named {}",
                note.name
            ))]),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Notes {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "notes-server",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("Reads and deletes the user's notes.")
    }
}

/// Appends `<tool> <name>` to the file `NOTES_AUDIT` names, if it names one.
fn audit(tool: &str, name: &str) {
    let Some(path) = std::env::var_os("NOTES_AUDIT") else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("NOTES_AUDIT names a file that can be written");
    writeln!(file, "{tool} {name}").expect("the audit line is written");
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // stdout carries the protocol: diagnostics go to stderr.
    // Until `main` ends: the guard delivers the `tool` events still queued at exit.
    let _fabraix = fabraix::init(fabraix::Client::from_env()?)?;
    let service = fabraix_mcp::guard(Notes::new())
        .serve(rmcp::transport::io::stdio())
        .await?;
    service.waiting().await?;
    Ok(())
}
