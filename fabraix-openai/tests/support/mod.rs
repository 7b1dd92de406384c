//! What the tests share: the stand-in model, async-openai clients for it, the notes tools'
//! declarations, and reading back what the MockServer received.
#![allow(dead_code)]

pub mod stand_in_model;

use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestUserMessage, ChatCompletionStreamOptions,
    ChatCompletionTool, ChatCompletionTools, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs, FunctionObject,
};
use fabraix::testing::{Endpoint, MockServer};
use serde_json::{Value, json};

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Why the tests' MockServer blocks `delete_note`.
pub const DELETE_REFUSAL: &str = "Deleting a note cannot be undone; the user must confirm it.";

/// async-openai's own client, pointed at `base_url`.
pub fn openai(base_url: &str) -> async_openai::Client<OpenAIConfig> {
    async_openai::Client::with_config(
        OpenAIConfig::new()
            .with_api_base(base_url)
            .with_api_key("sk-stand-in"),
    )
}

/// The two tools the stand-in model asks for, as an agent declares them.
pub fn tools() -> Vec<ChatCompletionTools> {
    let note = |name: &str, description: &str| {
        ChatCompletionTools::Function(ChatCompletionTool {
            function: FunctionObject {
                name: name.to_owned(),
                description: Some(description.to_owned()),
                parameters: Some(note_parameters()),
                strict: None,
            },
        })
    };
    vec![
        note("read_note", "Read one of the user's notes."),
        note("delete_note", "Delete one of the user's notes for good."),
    ]
}

/// The parameters schema both tools declare.
pub fn note_parameters() -> Value {
    json!({
        "type": "object",
        "properties": { "name": { "type": "string" } },
        "required": ["name"],
    })
}

/// A request with the notes tools; streamed ones ask for the usage.
pub fn request(
    messages: Vec<ChatCompletionRequestMessage>,
    streamed: bool,
) -> CreateChatCompletionRequest {
    let mut request = CreateChatCompletionRequestArgs::default();
    request
        .model("stand-in-1")
        .messages(messages)
        .tools(tools());
    if streamed {
        request.stream_options(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        });
    }
    request.build().unwrap()
}

/// The first message of every conversation in the tests.
pub fn ask() -> Vec<ChatCompletionRequestMessage> {
    vec![ChatCompletionRequestUserMessage::from("Read my note 'groceries', then delete it.").into()]
}

/// One event the MockServer received.
#[derive(Debug, Clone)]
pub struct Logged {
    pub trace_id: String,
    pub event_type: String,
    pub content: Value,
}

/// Every event the MockServer received, in order, with the content parsed.
pub fn events(server: &MockServer) -> Vec<Logged> {
    server
        .requests_to(Endpoint::Event)
        .into_iter()
        .map(|request| Logged {
            trace_id: request.body["trace_id"].as_str().unwrap().to_owned(),
            event_type: request.body["event_type"].as_str().unwrap().to_owned(),
            content: serde_json::from_str(request.body["content"].as_str().unwrap()).unwrap(),
        })
        .collect()
}

/// The events of one type.
pub fn events_of(server: &MockServer, event_type: &str) -> Vec<Logged> {
    events(server)
        .into_iter()
        .filter(|event| event.event_type == event_type)
        .collect()
}

/// Waits until the MockServer has received `count` events of `event_type`.
pub async fn wait_for_events(server: &MockServer, event_type: &str, count: usize) -> Vec<Logged> {
    let arrived = server
        .wait_for(PATIENCE, |requests| {
            requests
                .iter()
                .filter(|r| r.path == "/v1/event" && r.body["event_type"] == event_type)
                .count()
                >= count
        })
        .await;
    assert!(arrived, "no {count} `{event_type}` events arrived");
    events_of(server, event_type)
}

/// The tool calls of a logged answer's first choice, as `(id, name, arguments)`.
pub fn logged_tool_calls(answer: &Value) -> Vec<(String, String, String)> {
    answer["choices"][0]["message"]["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|call| {
            (
                call["id"].as_str().unwrap().to_owned(),
                call["function"]["name"].as_str().unwrap().to_owned(),
                call["function"]["arguments"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The two complete tool calls of the stand-in's first answer.
pub fn both_tool_calls() -> Vec<(String, String, String)> {
    use stand_in_model::{DELETE_CALL_ID, NOTE, READ_CALL_ID};
    let arguments = format!(r#"{{"name":"{NOTE}"}}"#);
    vec![
        (READ_CALL_ID.into(), "read_note".into(), arguments.clone()),
        (DELETE_CALL_ID.into(), "delete_note".into(), arguments),
    ]
}
