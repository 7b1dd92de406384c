//! A rig agent that tidies notes, with Fabraix watching: every model call is logged and
//! every tool call is checked before it runs.
//!
//! ```text
//! cargo run -p fabraix-rig --example rig_agent
//! ```
//!
//! - The model: an OpenAI-compatible Chat Completions API at `OPENAI_BASE_URL` (key
//!   `OPENAI_API_KEY`, model `OPENAI_MODEL`, default `gpt-4o-mini`). Without
//!   `OPENAI_BASE_URL`, a stand-in model on 127.0.0.1 answers: first it asks for both
//!   tools, then it repeats what the tools answered.
//! - Fabraix: `FABRAIX_API_KEY` and `FABRAIX_BASE_URL`. Without `FABRAIX_API_KEY`, an
//!   in-process MockServer answers, and it blocks `delete_note`. With `FABRAIX_DISABLED=1`
//!   Fabraix is off: both tools run, unchecked.
//! - `NOTES_AUDIT`: a file each tool body appends `<tool name> <note name>` to when it
//!   runs, so what actually ran can be checked from outside.

#[path = "../../examples/common/mod.rs"]
mod common;
#[path = "../tests/support/model.rs"]
mod model;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use fabraix::testing::Endpoint;
use fabraix_rig::FabraixHook;
use rig_agent::AgentBuilder;
use rig_core::providers::openai::{OpenAIConfig, Route};
use rig_core::tool::PortableTool;
use serde::Deserialize;
use serde_json::{Value, json};

const PREAMBLE: &str = "You keep the user's notes tidy. Read a note before you change it. \
                        Delete a note only when it is obsolete.";
const PROMPT: &str = "Please tidy my notes: the `old-todo` note is done, so read it and \
                      delete it.";
const BLOCK_REASON: &str = "Deleting a note cannot be undone; ask the user to confirm first.";

/// The user's notes, shared by the tools.
#[derive(Clone)]
struct Notes(Arc<Mutex<BTreeMap<String, String>>>);

impl Notes {
    fn sample() -> Self {
        let notes = [
            ("groceries", "eggs, milk, flour"),
            ("old-todo", "call the plumber (done on Monday)"),
        ];
        Self(Arc::new(Mutex::new(
            notes
                .into_iter()
                .map(|(name, text)| (name.to_owned(), text.to_owned()))
                .collect(),
        )))
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, String>) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Appends `<tool> <note>` to the file `NOTES_AUDIT` names, if it names one.
fn audit(tool: &str, note: &str) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("NOTES_AUDIT") else {
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{tool} {note}")
}

#[derive(Deserialize)]
struct NoteName {
    name: String,
}

#[derive(Debug)]
enum NoteError {
    NotFound(String),
    Audit(std::io::Error),
}

impl std::fmt::Display for NoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoteError::NotFound(name) => write!(f, "there is no note named `{name}`"),
            NoteError::Audit(error) => write!(f, "the audit file could not be written: {error}"),
        }
    }
}

impl std::error::Error for NoteError {}

fn note_name_schema() -> Value {
    json!({
        "type": "object",
        "properties": { "name": { "type": "string", "description": "The note's name." } },
        "required": ["name"],
    })
}

struct ReadNote(Notes);

impl PortableTool for ReadNote {
    const NAME: &'static str = "read_note";
    type Args = NoteName;
    type Output = String;
    type Error = NoteError;

    fn description(&self) -> String {
        "Read one of the user's notes by its name.".into()
    }

    fn parameters(&self) -> Value {
        note_name_schema()
    }

    async fn call(&self, args: NoteName) -> Result<String, NoteError> {
        audit(Self::NAME, &args.name).map_err(NoteError::Audit)?;
        self.0
            .with(|notes| notes.get(&args.name).cloned())
            .ok_or(NoteError::NotFound(args.name))
    }
}

struct DeleteNote(Notes);

impl PortableTool for DeleteNote {
    const NAME: &'static str = "delete_note";
    type Args = NoteName;
    type Output = String;
    type Error = NoteError;

    fn description(&self) -> String {
        "Delete one of the user's notes, for good.".into()
    }

    fn parameters(&self) -> Value {
        note_name_schema()
    }

    async fn call(&self, args: NoteName) -> Result<String, NoteError> {
        audit(Self::NAME, &args.name).map_err(NoteError::Audit)?;
        match self.0.with(|notes| notes.remove(&args.name)) {
            Some(_) => Ok(format!("deleted the note `{}`", args.name)),
            None => Err(NoteError::NotFound(args.name)),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Fabraix: the API from the environment, else a MockServer that blocks `delete_note`.
    // Until `main` ends: its guard sends what is still queued before the process exits.
    let setup = common::mock_unless_configured()?;
    setup.block_action(DeleteNote::NAME, BLOCK_REASON);

    // The model: the API at OPENAI_BASE_URL, else the stand-in.
    let (config, stand_in) = if std::env::var_os("OPENAI_BASE_URL").is_some() {
        (OpenAIConfig::from_env()?, None)
    } else {
        let stand_in = model::StandInModel::start([
            model::Reply::ToolCalls(vec![
                model::Reply::tool_call(ReadNote::NAME, json!({ "name": "old-todo" })),
                model::Reply::tool_call(DeleteNote::NAME, json!({ "name": "old-todo" })),
            ]),
            model::Reply::EchoToolResults,
        ])
        .await?;
        println!(
            "OPENAI_BASE_URL is not set: using a stand-in model at {}",
            stand_in.url()
        );
        let config = OpenAIConfig::new("stand-in-key").with_base_url(stand_in.url());
        (config, Some(stand_in))
    };
    let model_name = std::env::var("OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into());
    let model = config
        .with_route(Route::Chat)
        .client()
        .completion(model_name);

    let notes = Notes::sample();
    // One line: the hook registers a Fabraix run per rig run (agent id from the name,
    // system prompt from the preamble), logs the model I/O, and checks every tool call.
    let agent = AgentBuilder::new(model)
        .name("notes-tidier")
        .preamble(PREAMBLE)
        .default_max_turns(6)
        .tool(ReadNote(notes.clone()))
        .tool(DeleteNote(notes.clone()))
        .add_hook(FabraixHook::global())
        .build();

    let answer = agent.prompt(PROMPT).await?;
    println!("\nThe agent answered:\n{}\n", answer.output());
    println!(
        "Notes left: {}",
        notes.with(|notes| notes.keys().cloned().collect::<Vec<_>>().join(", "))
    );

    if let Some(server) = &setup.server {
        println!(
            "The MockServer received {} registration(s), {} event(s) and {} check(s)",
            server.requests_to(Endpoint::RegisterAgentRun).len(),
            server.requests_to(Endpoint::Event).len(),
            server.requests_to(Endpoint::Check).len(),
        );
    }
    if let Some(stand_in) = &stand_in {
        println!(
            "The stand-in model was asked {} time(s)",
            stand_in.requests().len()
        );
    }
    Ok(())
}
