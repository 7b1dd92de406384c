//! An agent that calls `notes_server`'s tools over stdio from inside its run, so that the
//! server checks every call in the agent's run.
//!
//! ```sh
//! cargo build -p fabraix-mcp --examples
//! cargo run -p fabraix-mcp --example notes_client
//! ```
//!
//! With `FABRAIX_API_KEY` unset, it runs offline on a `MockServer` that blocks
//! `delete_note`, and prints what the server sent to Fabraix. With `FABRAIX_DISABLED=1`
//! Fabraix is off, in both processes: every call runs, unchecked.

#[path = "../../examples/common/mod.rs"]
mod common;

use std::path::PathBuf;

use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{Peer, RoleClient, ServiceExt};
use tokio::process::Command;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = notes_server()?;
    let setup = common::mock_unless_configured()?;
    setup.block_action(
        "delete_note",
        "Deleting notes needs the user's confirmation.",
    );

    // The server builds its client from the environment: the MockServer's, when there is one.
    let mut command = Command::new(server);
    if let Some(mock) = &setup.server {
        command = command.configure(|command| {
            command
                .env("FABRAIX_API_KEY", mock.api_key())
                .env("FABRAIX_BASE_URL", mock.url());
        });
    }
    let service = ().serve(TokioChildProcess::new(command)?).await?;
    tidy_notes(service.peer()).await?;
    service.cancel().await?;

    if let Some(mock) = &setup.server {
        println!("\nWhat the notes server asked Fabraix:");
        for check in mock.requests_to(fabraix::testing::Endpoint::Check) {
            println!(
                "  check under trace {}: {}",
                check.body["trace_id"], check.body["content"]
            );
        }
    }
    Ok(())
}

#[fabraix::agent(
    id = "notes-assistant",
    system_prompt = "You keep the user's notes tidy."
)]
async fn tidy_notes(peer: &Peer<RoleClient>) -> Result<(), BoxError> {
    println!("agent run: {}", common::run_name());
    let tools = peer.list_all_tools().await?;
    let read_note = tools.iter().find(|tool| tool.name == "read_note");

    // Checked here first, then again by the server, both in this run.
    let call = fabraix_mcp::check_tool_call(note_call("read_note", "groceries"), read_note).await?;
    show("read_note groceries", peer.call_tool(call).await?);

    // Sent with the run's trace: the server checks it in this run, and refuses it.
    let mut call = note_call("delete_note", "todo");
    fabraix_mcp::inject_current_trace(&mut call);
    show("delete_note todo", peer.call_tool(call).await?);
    Ok(())
}

fn note_call(tool: &'static str, name: &str) -> CallToolRequestParams {
    let mut arguments = JsonObject::new();
    arguments.insert("name".into(), name.into());
    CallToolRequestParams::new(tool).with_arguments(arguments)
}

fn show(call: &str, result: CallToolResult) {
    let text: Vec<&str> = result
        .content
        .iter()
        .filter_map(|content| content.as_text())
        .map(|text| text.text.as_str())
        .collect();
    let outcome = if result.is_error == Some(true) {
        "error"
    } else {
        "ok"
    };
    println!("{call}: {outcome}: {}", text.join(" "));
}

/// `notes_server`, built beside this example.
fn notes_server() -> Result<PathBuf, BoxError> {
    let path = std::env::current_exe()?
        .with_file_name(format!("notes_server{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        return Err(format!(
            "{} is missing: build it first with `cargo build -p fabraix-mcp --examples`",
            path.display()
        )
        .into());
    }
    Ok(path)
}
