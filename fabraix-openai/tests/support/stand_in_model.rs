//! A stand-in for OpenAI's chat completions API, over real HTTP on 127.0.0.1, shared by the
//! tests and `examples/openai_agent.rs`.
//!
//! It plays a notes assistant. Asked about a conversation whose last message is not a tool
//! result, it answers with some text and then two tool calls, `read_note` and
//! `delete_note` on the note `groceries`; streamed, the text comes first and the calls'
//! arguments arrive split across chunks, interleaved between the two calls. Asked again
//! with the tool results, it answers with a final text that repeats what the tools (or
//! their refusals) said. Plain requests get the same answers whole. It records every
//! request and every streamed chunk it sends.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The note both tool calls are about.
pub const NOTE: &str = "groceries";
/// The id of the `read_note` call.
pub const READ_CALL_ID: &str = "call_read_note_1";
/// The id of the `delete_note` call.
pub const DELETE_CALL_ID: &str = "call_delete_note_1";
/// The text of the first answer, in its two streamed pieces.
pub const FIRST_TEXT: [&str; 2] = ["Let me read that note ", "and then delete it."];
/// How the final answer starts.
pub const FINAL_TEXT: &str = "Here is what happened.";
/// The usage reported with every answer.
pub const USAGE: (u32, u32) = (42, 17);

/// The stand-in model; stops when dropped.
pub struct StandInModel {
    base_url: String,
    state: Arc<Mutex<Recorded>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Recorded {
    requests: Vec<Value>,
    streams: Vec<Vec<String>>,
    hang_after: Option<usize>,
}

impl StandInModel {
    /// Starts it on a random port of 127.0.0.1.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(Recorded::default()));
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base_url: format!("http://{addr}/v1"),
            state,
            server,
        })
    }

    /// The API base to give async-openai (`OpenAIConfig::with_api_base`), ending in `/v1`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Every request body received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.lock().requests.clone()
    }

    /// For each streamed answer, the `data:` payload of every chunk sent, in order.
    pub fn sent_streams(&self) -> Vec<Vec<String>> {
        self.lock().streams.clone()
    }

    /// The next streamed answer sends only its first `chunks` chunks, then keeps the
    /// connection open without a word more.
    pub fn hang_after(&self, chunks: usize) {
        self.lock().hang_after = Some(chunks);
    }

    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for StandInModel {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn completions(State(state): State<Arc<Mutex<Recorded>>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        let error = json!({"error": {"message": "the body is not JSON", "type": "invalid_request_error", "param": null, "code": null}});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    };
    let answer = Answer::for_conversation(&request);
    let model = request["model"].as_str().unwrap_or("stand-in").to_owned();
    let streamed = request["stream"] == json!(true);
    let with_usage = request["stream_options"]["include_usage"] == json!(true);
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    state.requests.push(request);
    if !streamed {
        return axum::Json(answer.whole(&model)).into_response();
    }
    let chunks: Vec<String> = answer
        .chunks(&model, with_usage)
        .iter()
        .map(Value::to_string)
        .collect();
    state.streams.push(chunks.clone());
    let hang_after = state.hang_after.take();
    drop(state);

    let events = chunks
        .into_iter()
        .map(|chunk| format!("data: {chunk}\n\n"))
        .take(hang_after.unwrap_or(usize::MAX));
    let end: Vec<String> = match hang_after {
        Some(_) => Vec::new(),
        None => vec!["data: [DONE]\n\n".to_owned()],
    };
    let frames = futures::stream::iter(
        events
            .chain(end)
            .map(|frame| Ok::<_, std::io::Error>(Bytes::from(frame))),
    );
    let body = match hang_after {
        Some(_) => Body::from_stream(futures::StreamExt::chain(
            frames,
            futures::stream::pending(),
        )),
        None => Body::from_stream(frames),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// What the stand-in answers.
enum Answer {
    /// Text, then both tool calls.
    ToolCalls,
    /// A final text.
    Final(String),
}

impl Answer {
    fn for_conversation(request: &Value) -> Self {
        let messages = request["messages"].as_array().cloned().unwrap_or_default();
        if messages.last().map(|m| m["role"] == "tool") != Some(true) {
            return Answer::ToolCalls;
        }
        let results: Vec<String> = messages
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| {
                format!(
                    "{}: {}",
                    m["tool_call_id"].as_str().unwrap_or("?"),
                    text_of(&m["content"])
                )
            })
            .collect();
        Answer::Final(format!("{FINAL_TEXT} {}", results.join(" | ")))
    }

    fn whole(&self, model: &str) -> Value {
        let (message, finish_reason) = match self {
            Answer::ToolCalls => (
                json!({
                    "role": "assistant",
                    "content": FIRST_TEXT.concat(),
                    "tool_calls": [
                        tool_call(READ_CALL_ID, "read_note"),
                        tool_call(DELETE_CALL_ID, "delete_note"),
                    ],
                }),
                "tool_calls",
            ),
            Answer::Final(text) => (json!({ "role": "assistant", "content": text }), "stop"),
        };
        json!({
            "id": "chatcmpl-stand-in",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason }],
            "usage": usage(),
        })
    }

    fn chunks(&self, model: &str, with_usage: bool) -> Vec<Value> {
        let args = format!(r#"{{"name":"{NOTE}"}}"#);
        let (read_args, delete_args) = (args.split_at(8), args.split_at(4));
        let deltas: Vec<(Value, Option<&str>)> = match self {
            Answer::ToolCalls => vec![
                (
                    json!({ "role": "assistant", "content": FIRST_TEXT[0] }),
                    None,
                ),
                (json!({ "content": FIRST_TEXT[1] }), None),
                (
                    json!({ "tool_calls": [tool_call_start(0, READ_CALL_ID, "read_note", "")] }),
                    None,
                ),
                (
                    json!({ "tool_calls": [tool_call_more(0, read_args.0)] }),
                    None,
                ),
                (
                    json!({ "tool_calls": [tool_call_start(1, DELETE_CALL_ID, "delete_note", delete_args.0)] }),
                    None,
                ),
                (
                    json!({ "tool_calls": [tool_call_more(0, read_args.1)] }),
                    None,
                ),
                (
                    json!({ "tool_calls": [tool_call_more(1, delete_args.1)] }),
                    None,
                ),
                (json!({}), Some("tool_calls")),
            ],
            Answer::Final(text) => {
                let middle = text
                    .char_indices()
                    .nth(text.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                vec![
                    (
                        json!({ "role": "assistant", "content": &text[..middle] }),
                        None,
                    ),
                    (json!({ "content": &text[middle..] }), None),
                    (json!({}), Some("stop")),
                ]
            }
        };
        let mut chunks: Vec<Value> = deltas
            .into_iter()
            .map(|(delta, finish_reason)| {
                chunk(
                    model,
                    json!([{ "index": 0, "delta": delta, "finish_reason": finish_reason }]),
                    None,
                )
            })
            .collect();
        if with_usage {
            chunks.push(chunk(model, json!([]), Some(usage())));
        }
        chunks
    }
}

fn chunk(model: &str, choices: Value, usage: Option<Value>) -> Value {
    json!({
        "id": "chatcmpl-stand-in",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": choices,
        "usage": usage,
    })
}

fn usage() -> Value {
    json!({ "prompt_tokens": USAGE.0, "completion_tokens": USAGE.1, "total_tokens": USAGE.0 + USAGE.1 })
}

fn tool_call(id: &str, name: &str) -> Value {
    json!({
        "id": id,
        "type": "function",
        "function": { "name": name, "arguments": format!(r#"{{"name":"{NOTE}"}}"#) },
    })
}

fn tool_call_start(index: u32, id: &str, name: &str, arguments: &str) -> Value {
    json!({ "index": index, "id": id, "type": "function", "function": { "name": name, "arguments": arguments } })
}

fn tool_call_more(index: u32, arguments: &str) -> Value {
    json!({ "index": index, "function": { "arguments": arguments } })
}

/// A message's text, whether sent as a string or as text parts.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}
