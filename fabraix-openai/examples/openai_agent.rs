//! A hand-written agent loop on async-openai, watched by Fabraix: every model call is logged
//! in the agent's run, and every tool call the model asks for is checked before it runs.
//! Refused calls never run; the model gets a tool message saying why.
//!
//! ```text
//! cargo run -p fabraix-openai --example openai_agent                   # plain answers
//! OPENAI_STREAM=1 cargo run -p fabraix-openai --example openai_agent   # streamed answers
//! ```
//!
//! - The model: `OPENAI_BASE_URL` (e.g. `https://api.openai.com/v1`), `OPENAI_API_KEY`,
//!   `OPENAI_MODEL` (default `gpt-4o-mini`). Without `OPENAI_BASE_URL`, a stand-in model
//!   runs in-process on 127.0.0.1: it asks for both tools, then answers with what they said.
//! - Fabraix: from the environment (`FABRAIX_API_KEY`, `FABRAIX_BASE_URL`). Without
//!   `FABRAIX_API_KEY`, an in-process MockServer that blocks `delete_note`. With
//!   `FABRAIX_DISABLED=1` Fabraix is off: both tools run, unchecked.
//! - `NOTES_AUDIT=<file>`: each tool appends the line `<tool name> <note name>` to the file
//!   when it runs.

#[path = "../../examples/common/mod.rs"]
mod common;
#[path = "../tests/support/stand_in_model.rs"]
mod stand_in_model;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionRequestArgs, CreateChatCompletionResponse, FunctionObject,
};
use fabraix::{Event, EventType};
use fabraix_openai::ChatExt;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

const SYSTEM_PROMPT: &str =
    "You manage the user's notes with the tools read_note and delete_note. Be brief.";
const TASK: &str = "Read my note 'groceries' to me, then delete it.";
const MAX_TURNS: usize = 6;
/// Why the MockServer blocks `delete_note` (offline only).
const DELETE_REFUSAL: &str = "Deleting a note cannot be undone; the user must confirm it first.";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let stand_in = match std::env::var("OPENAI_BASE_URL") {
        Ok(_) => None,
        Err(_) => {
            let model = stand_in_model::StandInModel::start().await?;
            println!(
                "OPENAI_BASE_URL is not set: using a stand-in model at {}",
                model.base_url()
            );
            Some(model)
        }
    };
    let base_url = match &stand_in {
        Some(model) => model.base_url().to_owned(),
        None => std::env::var("OPENAI_BASE_URL")?,
    };
    let openai = async_openai::Client::with_config(
        OpenAIConfig::new()
            .with_api_base(base_url)
            .with_api_key(std::env::var("OPENAI_API_KEY").unwrap_or_default()),
    );

    // Fabraix: the API from the environment, else a MockServer that blocks `delete_note`.
    // Until `main` ends: its guard sends what is still queued before the process exits.
    let setup = common::mock_unless_configured()?;
    setup.block_action("delete_note", DELETE_REFUSAL);
    let streaming = std::env::var("OPENAI_STREAM").is_ok_and(|v| v == "1");
    let notes = Notes::new(std::env::var_os("NOTES_AUDIT").map(Into::into));

    let answer = notes_agent(&openai, &notes, streaming).await?;
    println!("final answer: {answer}");

    common::summary(&setup.server);
    Ok(())
}

#[fabraix::agent(id = "notes-agent", system_prompt = SYSTEM_PROMPT)]
async fn notes_agent(
    openai: &async_openai::Client<OpenAIConfig>,
    notes: &Notes,
    streaming: bool,
) -> Result<String, Error> {
    let chat = openai.chat().fabraix();
    let tools = tools();
    let model = std::env::var("OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o-mini".to_owned());
    // Telemetry never fails the agent: an event that cannot be queued (a full queue) is
    // dropped, counted in `fabraix::stats()` and reported through `tracing`.
    let _ = fabraix::log_event(Event::text(EventType::User, TASK));
    let mut messages: Vec<ChatCompletionRequestMessage> = vec![
        ChatCompletionRequestSystemMessage::from(SYSTEM_PROMPT).into(),
        ChatCompletionRequestUserMessage::from(TASK).into(),
    ];
    println!("user: {TASK}");

    for _ in 0..MAX_TURNS {
        let mut request = CreateChatCompletionRequestArgs::default();
        request
            .model(&model)
            .messages(messages.clone())
            .tools(tools.clone());
        let completion = if streaming {
            request.stream_options(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            });
            stream_answer(&chat, request.build()?).await?
        } else {
            let completion = chat.create(request.build()?).await?;
            if let Some(text) = completion
                .choices
                .first()
                .and_then(|c| c.message.content.as_ref())
            {
                println!("model: {text}");
            }
            completion
        };

        let Some(choice) = completion.choices.into_iter().next() else {
            return Err("the model answered with no choice".into());
        };
        let calls = choice.message.tool_calls.unwrap_or_default();
        if calls.is_empty() {
            return Ok(choice.message.content.unwrap_or_default());
        }
        let mut assistant = ChatCompletionRequestAssistantMessageArgs::default();
        assistant.tool_calls(calls.clone());
        if let Some(text) = choice.message.content {
            assistant.content(text);
        }
        messages.push(assistant.build()?.into());

        // Fabraix checks every call before any runs.
        let checked = fabraix_openai::check_tool_calls(&tools, &calls).await;
        for call in &checked.allowed {
            let result = notes.run(&call.name, &call.arguments);
            println!("ran     {} {}: {result}", call.name, call.arguments);
            let record =
                json!({ "tool": call.name, "arguments": call.arguments, "result": result });
            let _ = Event::json(EventType::Tool, &record, tool_event_schema())
                .and_then(fabraix::log_event);
            messages.push(
                ChatCompletionRequestToolMessage {
                    content: result.into(),
                    tool_call_id: call.id.clone(),
                }
                .into(),
            );
        }
        for refused in &checked.refused {
            if let ChatCompletionRequestToolMessageContent::Text(why) = &refused.message.content {
                println!("refused {}: {why}", refused.name);
            }
        }
        messages.extend(checked.refusal_messages());
    }
    Err("the model was still calling tools after the last turn".into())
}

/// Prints the text as it streams in; returns the whole answer.
async fn stream_answer(
    chat: &fabraix_openai::Chat<'_, OpenAIConfig>,
    request: async_openai::types::chat::CreateChatCompletionRequest,
) -> Result<CreateChatCompletionResponse, Error> {
    let mut stream = chat.create_stream(request).await?;
    let mut out = std::io::stdout();
    write!(out, "model (streamed): ")?;
    while let Some(chunk) = stream.next().await {
        for choice in chunk?.choices {
            if let Some(text) = choice.delta.content {
                write!(out, "{text}")?;
                out.flush()?;
            }
        }
    }
    writeln!(out)?;
    // Text and tool calls, assembled from the chunks: the shape of a plain answer.
    Ok(stream.completion())
}

/// The schema of the `tool` events the loop logs.
fn tool_event_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "tool": { "type": "string" },
            "arguments": { "type": "object" },
            "result": { "type": "string" },
        },
        "required": ["tool", "arguments", "result"],
    })
}

fn tools() -> Vec<ChatCompletionTools> {
    let note = |name: &str, description: &str| {
        ChatCompletionTools::Function(ChatCompletionTool {
            function: FunctionObject {
                name: name.to_owned(),
                description: Some(description.to_owned()),
                parameters: Some(json!({
                    "type": "object",
                    "properties": { "name": { "type": "string", "description": "The note's name." } },
                    "required": ["name"],
                    "additionalProperties": false,
                })),
                strict: None,
            },
        })
    };
    vec![
        note("read_note", "Read one of the user's notes."),
        note("delete_note", "Delete one of the user's notes for good."),
    ]
}

#[derive(Deserialize)]
struct NoteArgs {
    name: String,
}

/// The user's notes, and the tools' bodies.
struct Notes {
    notes: Mutex<BTreeMap<String, String>>,
    audit: Option<std::path::PathBuf>,
}

impl Notes {
    fn new(audit: Option<std::path::PathBuf>) -> Self {
        let notes = BTreeMap::from([
            ("groceries".to_owned(), "milk, eggs, bread".to_owned()),
            ("ideas".to_owned(), "a tide clock".to_owned()),
        ]);
        Self {
            notes: Mutex::new(notes),
            audit,
        }
    }

    /// Runs the tool `name`; the result is what the model reads.
    fn run(&self, tool: &str, arguments: &serde_json::Value) -> String {
        let Ok(NoteArgs { name }) = NoteArgs::deserialize(arguments) else {
            return format!("{tool} takes {{\"name\": <the note's name>}}");
        };
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        let result = match tool {
            "read_note" => match notes.get(&name) {
                Some(text) => format!("{name}: {text}"),
                None => format!("there is no note named {name}"),
            },
            "delete_note" => match notes.remove(&name) {
                Some(_) => format!("deleted {name}"),
                None => format!("there is no note named {name}"),
            },
            other => return format!("there is no tool named {other}"),
        };
        self.audit(tool, &name);
        result
    }

    fn audit(&self, tool: &str, name: &str) {
        let Some(path) = &self.audit else { return };
        let line = format!("{tool} {name}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(error) = written {
            eprintln!(
                "could not write the audit line to {}: {error}",
                path.display()
            );
        }
    }
}
