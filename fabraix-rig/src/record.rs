//! What the hook logs: the content of its `model_input`, `model_output` and `tool` events,
//! and the JSON Schema each event carries.
//!
//! The shapes are the hook's own, not rig's serialization: small, stable, and described
//! by a schema, so Fabraix reads a request, an answer or a tool result the same way
//! whichever provider rig talked to. Media (images, audio, video, documents) are named,
//! never carried.

use std::sync::LazyLock;

use rig_core::completion::{CompletionRequest, CompletionResponse, FinishReason, Usage};
use rig_core::message::{AssistantContent, Message, ToolCall, ToolResultContent, UserContent};
use serde::Serialize;
use serde_json::{Value, json};

/// One piece of a message, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Part {
    /// Text.
    Text { text: String },
    /// A call the model asked for. `arguments` is the JSON object it sent, or the raw
    /// text when that was not a JSON object.
    ToolCall {
        id: String,
        name: String,
        arguments: Value,
    },
    /// A tool's answer, as the model reads it.
    ToolResult {
        id: String,
        name: String,
        is_error: bool,
        output: String,
    },
    /// Reasoning the model showed (empty when the provider redacted it).
    Reasoning { text: String },
    /// An image, audio clip, video or document: named, not carried.
    Media { kind: &'static str },
    /// A provider item with no common meaning.
    Other,
}

impl Part {
    pub(crate) fn tool_call(call: &ToolCall) -> Self {
        let arguments = match &call.function.invalid_arguments {
            Some(raw) => Value::String(raw.clone()),
            None => Value::Object(call.function.arguments.clone()),
        };
        Part::ToolCall {
            id: call.id.to_string(),
            name: call.function.name.to_string(),
            arguments,
        }
    }

    fn assistant(content: &AssistantContent) -> Self {
        match content {
            AssistantContent::Text(text) => Part::Text {
                text: text.text.clone(),
            },
            AssistantContent::ToolCall(call) => Part::tool_call(call),
            AssistantContent::Reasoning(reasoning) => Part::Reasoning {
                text: reasoning.text.clone(),
            },
            AssistantContent::Image(_) => Part::Media { kind: "image" },
            _ => Part::Other,
        }
    }

    fn user(content: &UserContent) -> Self {
        match content {
            UserContent::Text(text) => Part::Text {
                text: text.text.clone(),
            },
            UserContent::ToolResult(result) => Part::ToolResult {
                id: result.call.to_string(),
                name: result.name.to_string(),
                is_error: result.is_error,
                output: render_tool_result(&result.content),
            },
            UserContent::Image(_) => Part::Media { kind: "image" },
            UserContent::Audio(_) => Part::Media { kind: "audio" },
            UserContent::Video(_) => Part::Media { kind: "video" },
            UserContent::Document(_) => Part::Media { kind: "document" },
        }
    }
}

/// A tool result's content as one text: texts as they are, JSON as JSON text, images
/// named.
fn render_tool_result(content: &[ToolResultContent]) -> String {
    let pieces: Vec<String> = content
        .iter()
        .map(|item| match item {
            ToolResultContent::Text(text) => text.text.clone(),
            ToolResultContent::Json { value } => value.to_string(),
            ToolResultContent::Image(_) => "[image]".to_owned(),
        })
        .collect();
    pieces.join("\n")
}

/// One message of the conversation the model is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct MessageRecord {
    role: &'static str,
    content: Vec<Part>,
}

impl MessageRecord {
    fn new(message: &Message) -> Self {
        match message {
            Message::System { content } => Self {
                role: "system",
                content: vec![Part::Text {
                    text: content.clone(),
                }],
            },
            Message::User { content } => Self {
                role: "user",
                content: content.iter().map(Part::user).collect(),
            },
            Message::Assistant(message) => Self {
                role: "assistant",
                content: message.content.iter().map(Part::assistant).collect(),
            },
        }
    }
}

/// A tool the model is offered.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct ToolOffer {
    name: String,
    description: String,
    parameters: Value,
}

/// A context document the model is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct DocumentRecord {
    id: String,
    text: String,
}

/// The content of a `model_input` event: one request to the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ModelInput {
    turn: usize,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    messages: Vec<MessageRecord>,
    tools: Vec<ToolOffer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    documents: Vec<DocumentRecord>,
}

impl ModelInput {
    pub(crate) fn new(turn: usize, stream: bool, request: &CompletionRequest) -> Self {
        Self {
            turn,
            stream,
            model: request.model.clone(),
            messages: request
                .chat_history
                .iter()
                .map(MessageRecord::new)
                .collect(),
            tools: request
                .tools
                .iter()
                .map(|tool| ToolOffer {
                    name: tool.name.to_string(),
                    description: tool.description.clone(),
                    parameters: tool.parameters.clone(),
                })
                .collect(),
            documents: request
                .documents
                .iter()
                .map(|document| DocumentRecord {
                    id: document.id.clone(),
                    text: document.text.clone(),
                })
                .collect(),
        }
    }
}

/// Token counts, when the provider reported them.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct UsageRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tokens: Option<u64>,
}

/// The content of a `model_output` event: one answer of the model, whole.
///
/// `complete` is false for a streamed answer that broke off before it ended: `content`
/// then holds what had arrived (text and tool calls, their arguments as far as they got)
/// and `error` says why it ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ModelOutput {
    turn: usize,
    stream: bool,
    complete: bool,
    content: Vec<Part>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl ModelOutput {
    pub(crate) fn new(turn: usize, stream: bool, response: &CompletionResponse) -> Self {
        Self {
            turn,
            stream,
            complete: true,
            content: response.choice.iter().map(Part::assistant).collect(),
            finish_reason: response.finish_reason().map(finish_reason_name),
            usage: usage_record(&response.usage),
            error: response.error.clone(),
        }
    }

    /// What had arrived of a streamed answer that ended early.
    pub(crate) fn partial(turn: usize, content: Vec<Part>, error: String) -> Self {
        Self {
            turn,
            stream: true,
            complete: false,
            content,
            finish_reason: None,
            usage: None,
            error: Some(error),
        }
    }
}

fn finish_reason_name(reason: FinishReason) -> String {
    match reason {
        FinishReason::Stop => "stop".to_owned(),
        FinishReason::Length => "length".to_owned(),
        FinishReason::ToolCalls => "tool_calls".to_owned(),
        FinishReason::ContentFilter => "content_filter".to_owned(),
        FinishReason::Other(other) => other,
        other => format!("{other:?}").to_lowercase(),
    }
}

fn usage_record(usage: &Usage) -> Option<UsageRecord> {
    (usage.input_tokens.is_some() || usage.output_tokens.is_some()).then_some(UsageRecord {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
    })
}

/// The content of a `tool` event: one tool call and what the model got back.
///
/// `status` is rig's disposition: `success`, `error`, `denied` (the tool refused), or
/// `skipped` (the body never ran: Fabraix blocked it, or no verdict could be had).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ToolRecord {
    pub(crate) turn: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    pub(crate) arguments: Value,
    pub(crate) status: &'static str,
    pub(crate) output: String,
}

/// The schema of a [`Part`].
fn part_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "type": {
                "enum": ["text", "tool_call", "tool_result", "reasoning", "media", "other"]
            },
            "text": { "type": "string" },
            "id": { "type": "string" },
            "name": { "type": "string" },
            "arguments": { "description": "the JSON object the model sent, or its raw text when it was not one" },
            "is_error": { "type": "boolean" },
            "output": { "type": "string" },
            "kind": { "enum": ["image", "audio", "video", "document"] }
        },
        "required": ["type"],
        "oneOf": [
            { "properties": { "type": { "const": "text" } }, "required": ["text"] },
            { "properties": { "type": { "const": "tool_call" } }, "required": ["id", "name", "arguments"] },
            { "properties": { "type": { "const": "tool_result" } }, "required": ["id", "name", "is_error", "output"] },
            { "properties": { "type": { "const": "reasoning" } }, "required": ["text"] },
            { "properties": { "type": { "const": "media" } }, "required": ["kind"] },
            { "properties": { "type": { "const": "other" } } }
        ]
    })
}

fn turn_schema() -> Value {
    json!({ "type": "integer", "minimum": 0, "description": "the model call's 1-based index in the rig run" })
}

/// The schema of [`ModelInput`].
pub(crate) static MODEL_INPUT_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rig model request",
        "type": "object",
        "properties": {
            "turn": turn_schema(),
            "stream": { "type": "boolean" },
            "model": { "type": "string" },
            "messages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "role": { "enum": ["system", "user", "assistant"] },
                        "content": { "type": "array", "items": part_schema() }
                    },
                    "required": ["role", "content"]
                }
            },
            "tools": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": { "type": "string" },
                        "description": { "type": "string" },
                        "parameters": { "type": "object" }
                    },
                    "required": ["name", "description", "parameters"]
                }
            },
            "documents": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": { "id": { "type": "string" }, "text": { "type": "string" } },
                    "required": ["id", "text"]
                }
            }
        },
        "required": ["turn", "stream", "messages", "tools"]
    })
});

/// The schema of [`ModelOutput`].
pub(crate) static MODEL_OUTPUT_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rig model answer",
        "type": "object",
        "properties": {
            "turn": turn_schema(),
            "stream": { "type": "boolean" },
            "complete": { "type": "boolean", "description": "false: a streamed answer that broke off; content is what had arrived" },
            "content": { "type": "array", "items": part_schema() },
            "finish_reason": { "type": "string" },
            "usage": {
                "type": "object",
                "properties": {
                    "input_tokens": { "type": "integer", "minimum": 0 },
                    "output_tokens": { "type": "integer", "minimum": 0 }
                }
            },
            "error": { "type": "string" }
        },
        "required": ["turn", "stream", "complete", "content"]
    })
});

/// The schema of [`ToolRecord`].
pub(crate) static TOOL_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rig tool call",
        "type": "object",
        "properties": {
            "turn": turn_schema(),
            "id": { "type": "string", "description": "the call's id, as the model gave it" },
            "name": { "type": "string" },
            "arguments": { "description": "the JSON object the tool was called with" },
            "status": {
                "enum": ["success", "error", "denied", "skipped"],
                "description": "skipped: the body never ran"
            },
            "output": { "type": "string", "description": "what the model was given as the tool's result" }
        },
        "required": ["turn", "name", "arguments", "status", "output"]
    })
});

/// The content of an `error` event: why the rig run failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RunFailure {
    pub(crate) error: String,
}

/// The schema of [`RunFailure`].
pub(crate) static RUN_FAILURE_SCHEMA: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "rig run failure",
        "type": "object",
        "properties": { "error": { "type": "string" } },
        "required": ["error"]
    })
});
