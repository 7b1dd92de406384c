//! The events a chat completion logs: the request (`model_input`), the answer
//! (`model_output`), or why there is none (`error`).

use async_openai::error::OpenAIError;
use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionResponse};
use fabraix::{Event, EventType};
use serde::Serialize;
use serde_json::{Value, json};

/// How an answer came, logged next to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// One response body.
    Whole,
    /// Assembled from a stream that ran to its end.
    Streamed,
    /// Assembled from a stream that was dropped before its end or met an error: what
    /// arrived, not the whole answer.
    CutShort,
}

/// `model_output`: the chat completion object as OpenAI defines it (a streamed answer
/// assembled into one), plus how it came.
#[derive(Serialize)]
struct ModelOutput<'a> {
    #[serde(flatten)]
    completion: &'a CreateChatCompletionResponse,
    streamed: bool,
    cut_short: bool,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stream_errors: &'a [String],
}

/// The request, as sent.
pub(crate) fn model_input(request: &CreateChatCompletionRequest) -> Option<Event> {
    encoded(Event::json(
        EventType::ModelInput,
        request,
        request_schema(),
    ))
}

/// The answer, and how it came.
pub(crate) fn model_output(
    completion: &CreateChatCompletionResponse,
    delivery: Delivery,
    stream_errors: &[String],
) -> Option<Event> {
    let output = ModelOutput {
        completion,
        streamed: delivery != Delivery::Whole,
        cut_short: delivery == Delivery::CutShort,
        stream_errors,
    };
    encoded(Event::json(
        EventType::ModelOutput,
        &output,
        answer_schema(),
    ))
}

/// A model call that returned no answer.
pub(crate) fn model_error(error: &OpenAIError) -> Event {
    Event::text(EventType::Error, format!("the model call failed: {error}"))
}

fn encoded(event: Result<Event, fabraix::Error>) -> Option<Event> {
    event
        .map_err(|error| tracing::warn!(%error, "fabraix-openai: an event could not be encoded"))
        .ok()
}

/// The parts of a chat completion request worth describing; the rest is allowed as is.
fn request_schema() -> Value {
    json!({
        "title": "chat completion request",
        "type": "object",
        "properties": {
            "model": { "type": "string" },
            "messages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": { "role": { "type": "string" } },
                    "required": ["role"]
                }
            },
            "tools": { "type": "array", "items": { "type": "object" } },
            "stream": { "type": "boolean" }
        },
        "required": ["model", "messages"]
    })
}

/// A chat completion object, with `streamed`, `cut_short` and `stream_errors`.
fn answer_schema() -> Value {
    let tool_call = json!({
        "type": "object",
        "properties": {
            "id": { "type": "string" },
            "type": { "type": "string" },
            "function": {
                "type": "object",
                "properties": {
                    "name": { "type": "string" },
                    "arguments": { "type": "string" }
                }
            }
        }
    });
    json!({
        "title": "chat completion",
        "type": "object",
        "properties": {
            "id": { "type": "string" },
            "model": { "type": "string" },
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": { "type": "integer" },
                        "message": {
                            "type": "object",
                            "properties": {
                                "role": { "type": "string" },
                                "content": { "type": ["string", "null"] },
                                "refusal": { "type": ["string", "null"] },
                                "tool_calls": { "type": "array", "items": tool_call }
                            }
                        },
                        "finish_reason": { "type": ["string", "null"] }
                    }
                }
            },
            "usage": {
                "type": ["object", "null"],
                "properties": {
                    "prompt_tokens": { "type": "integer" },
                    "completion_tokens": { "type": "integer" },
                    "total_tokens": { "type": "integer" }
                }
            },
            "streamed": { "type": "boolean" },
            "cut_short": { "type": "boolean" },
            "stream_errors": { "type": "array", "items": { "type": "string" } }
        },
        "required": ["choices", "streamed", "cut_short"]
    })
}
