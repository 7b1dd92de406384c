//! A stand-in for an OpenAI-compatible Chat Completions server, over real HTTP on
//! 127.0.0.1: `POST …/chat/completions` answers from a script, unary or streamed (SSE) as
//! the request asks, and every request body is recorded.
//!
//! Shared by the crate's tests and its `rig_agent` example.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Asks for these tool calls, `(tool name, arguments)`, in this order.
    ToolCalls(Vec<(String, Value)>),
    /// Says this text, then asks for these tool calls.
    TextAndToolCalls(String, Vec<(String, Value)>),
    /// Answers this text.
    Text(String),
    /// Answers a text that repeats every tool result the request carried:
    /// `"<tool name>: <result>"`, one per line.
    EchoToolResults,
    /// Streams this text and the start of a call to `tool` with `partial_arguments`,
    /// then drops the connection without ending the stream. A unary request gets a 500.
    BrokenStream {
        text: String,
        tool: String,
        partial_arguments: String,
    },
}

impl Reply {
    /// A tool call request for one tool.
    pub fn tool_call(name: &str, arguments: Value) -> (String, Value) {
        (name.to_owned(), arguments)
    }
}

/// The stand-in server. Stops when dropped.
pub struct StandInModel {
    url: String,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Value>>,
    next_call: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StandInModel {
    /// Starts a server on a free port of 127.0.0.1 that answers `script` in order (then
    /// [`Reply::EchoToolResults`] to any further request).
    pub async fn start(script: impl IntoIterator<Item = Reply>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/v1", listener.local_addr()?);
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into_iter().collect()),
            ..Shared::default()
        });
        let serving = Arc::clone(&shared);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(Arc::clone(&shared), request));
                    // A client that hangs up ends the connection; nothing to report.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            url,
            shared,
            accept,
        })
    }

    /// The base URL, ending in `/v1` (what `OPENAI_BASE_URL` holds).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The body of every request received, in order.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.shared.requests).clone()
    }

    /// The tool results request `index` carried: `(tool call id, result text)`.
    pub fn tool_results(&self, index: usize) -> Vec<(String, String)> {
        self.requests()
            .get(index)
            .map(|request| {
                messages(request)
                    .iter()
                    .filter(|message| message["role"] == "tool")
                    .map(|message| {
                        (
                            message["tool_call_id"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                            text_of(&message["content"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for StandInModel {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn messages(request: &Value) -> &[Value] {
    request["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A message content: a string, or an array of `{ "type": "text", "text": … }` parts.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

async fn answer(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Scripted>, Infallible> {
    if request.method() != hyper::Method::POST
        || !request.uri().path().ends_with("/chat/completions")
    {
        return Ok(status(StatusCode::NOT_FOUND, "no such endpoint"));
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST, "unreadable body")),
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return Ok(status(StatusCode::BAD_REQUEST, "the body is not JSON"));
    };
    let reply = lock(&shared.script)
        .pop_front()
        .unwrap_or(Reply::EchoToolResults);
    let stream = body["stream"].as_bool().unwrap_or(false);
    let turn = Turn::plan(&shared, &body, reply);
    lock(&shared.requests).push(body);
    Ok(match (turn, stream) {
        (Turn::Broken { .. }, false) => status(StatusCode::INTERNAL_SERVER_ERROR, "broken"),
        (turn, false) => json_response(StatusCode::OK, turn.document().to_string()),
        (turn, true) => {
            let mut response = Response::new(Scripted::events(turn.chunks(), turn.is_broken()));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/event-stream"),
            );
            response
        }
    })
}

fn status(code: StatusCode, message: &str) -> Response<Scripted> {
    let body = json!({ "error": { "message": message, "type": "stand_in_error" } });
    json_response(code, body.to_string())
}

fn json_response(code: StatusCode, body: String) -> Response<Scripted> {
    let mut response = Response::new(Scripted::whole(body));
    *response.status_mut() = code;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// One answer, ready to send.
enum Turn {
    Calls(Option<String>, Vec<(String, String, String)>),
    Text(String),
    Broken {
        text: String,
        tool: String,
        partial_arguments: String,
    },
}

const MODEL: &str = "stand-in";

impl Turn {
    fn plan(shared: &Shared, request: &Value, reply: Reply) -> Self {
        let number = |calls: Vec<(String, Value)>| {
            calls
                .into_iter()
                .map(|(name, arguments)| {
                    let n = shared.next_call.fetch_add(1, Ordering::Relaxed) + 1;
                    (format!("call_{n}"), name, arguments.to_string())
                })
                .collect()
        };
        match reply {
            Reply::ToolCalls(calls) => Turn::Calls(None, number(calls)),
            Reply::TextAndToolCalls(text, calls) => Turn::Calls(Some(text), number(calls)),
            Reply::Text(text) => Turn::Text(text),
            Reply::EchoToolResults => Turn::Text(echo(request)),
            Reply::BrokenStream {
                text,
                tool,
                partial_arguments,
            } => Turn::Broken {
                text,
                tool,
                partial_arguments,
            },
        }
    }

    fn is_broken(&self) -> bool {
        matches!(self, Turn::Broken { .. })
    }

    /// The unary `chat.completion` document.
    fn document(&self) -> Value {
        let (message, finish_reason) = match self {
            Turn::Calls(text, calls) => (
                json!({
                    "role": "assistant",
                    "content": text,
                    "tool_calls": calls.iter().map(|(id, name, arguments)| json!({
                        "id": id,
                        "type": "function",
                        "function": { "name": name, "arguments": arguments },
                    })).collect::<Vec<_>>(),
                }),
                "tool_calls",
            ),
            Turn::Text(text) | Turn::Broken { text, .. } => {
                (json!({ "role": "assistant", "content": text }), "stop")
            }
        };
        json!({
            "id": "chatcmpl-stand-in",
            "object": "chat.completion",
            "created": 0,
            "model": MODEL,
            "choices": [{ "index": 0, "message": message, "finish_reason": finish_reason }],
            "usage": { "prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19 },
        })
    }

    /// The `chat.completion.chunk`s of a streamed answer: text in small fragments, each
    /// call's arguments in two.
    fn chunks(&self) -> Vec<Value> {
        let mut deltas = vec![json!({ "role": "assistant" })];
        let mut finish_reason = "stop";
        match self {
            Turn::Text(text) => {
                deltas.extend(fragments(text).map(|piece| json!({ "content": piece })))
            }
            Turn::Calls(text, calls) => {
                finish_reason = "tool_calls";
                if let Some(text) = text {
                    deltas.extend(fragments(text).map(|piece| json!({ "content": piece })));
                }
                for (index, (id, name, arguments)) in calls.iter().enumerate() {
                    deltas.push(json!({ "tool_calls": [{
                        "index": index, "id": id, "type": "function",
                        "function": { "name": name, "arguments": "" },
                    }] }));
                    let half = arguments.len() / 2;
                    let (head, tail) = arguments.split_at(floor_char_boundary(arguments, half));
                    for piece in [head, tail] {
                        deltas.push(json!({ "tool_calls": [{
                            "index": index, "function": { "arguments": piece },
                        }] }));
                    }
                }
            }
            Turn::Broken {
                text,
                tool,
                partial_arguments,
            } => {
                deltas.extend(fragments(text).map(|piece| json!({ "content": piece })));
                deltas.push(json!({ "tool_calls": [{
                    "index": 0, "id": "call_broken", "type": "function",
                    "function": { "name": tool, "arguments": partial_arguments },
                }] }));
                return deltas.into_iter().map(chunk).collect();
            }
        }
        let mut chunks: Vec<Value> = deltas.into_iter().map(chunk).collect();
        chunks.push(json!({
            "id": "chatcmpl-stand-in", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
            "choices": [{ "index": 0, "delta": {}, "finish_reason": finish_reason }],
        }));
        chunks.push(json!({
            "id": "chatcmpl-stand-in", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
            "choices": [],
            "usage": { "prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19 },
        }));
        chunks
    }
}

fn chunk(delta: Value) -> Value {
    json!({
        "id": "chatcmpl-stand-in", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": null }],
    })
}

/// `text` in pieces of a few characters.
fn fragments(text: &str) -> impl Iterator<Item = String> + '_ {
    let chars: Vec<char> = text.chars().collect();
    let pieces: Vec<String> = chars
        .chunks(6)
        .map(|piece| piece.iter().collect())
        .collect();
    pieces.into_iter()
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// The text of an [`Reply::EchoToolResults`] answer.
fn echo(request: &Value) -> String {
    let messages = messages(request);
    let name_of = |id: &str| {
        messages
            .iter()
            .filter_map(|message| message["tool_calls"].as_array())
            .flatten()
            .find(|call| call["id"] == id)
            .and_then(|call| call["function"]["name"].as_str())
            .unwrap_or("a tool")
            .to_owned()
    };
    let lines: Vec<String> = messages
        .iter()
        .filter(|message| message["role"] == "tool")
        .map(|message| {
            let id = message["tool_call_id"].as_str().unwrap_or_default();
            format!("{}: {}", name_of(id), text_of(&message["content"]))
        })
        .collect();
    if lines.is_empty() {
        "No tool was called.".to_owned()
    } else {
        format!("Here is what the tools answered:\n{}", lines.join("\n"))
    }
}

/// A response body sent from a list of pieces, one write each (the body yields between
/// pieces, so each is flushed on its own); one that is `broken` ends in an error after its
/// pieces went out, so the connection is dropped mid-body.
pub struct Scripted {
    pieces: VecDeque<Bytes>,
    broken: bool,
    yielded: bool,
}

impl Scripted {
    fn whole(text: String) -> Self {
        Self {
            pieces: VecDeque::from([Bytes::from(text)]),
            broken: false,
            yielded: false,
        }
    }

    fn events(chunks: Vec<Value>, broken: bool) -> Self {
        let mut pieces: VecDeque<Bytes> = chunks
            .into_iter()
            .map(|chunk| Bytes::from(format!("data: {chunk}\n\n")))
            .collect();
        if !broken {
            pieces.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
        }
        Self {
            pieces,
            broken,
            yielded: false,
        }
    }
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        // Pending once between pieces: the server flushes what it holds before the next.
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        match self.pieces.pop_front() {
            Some(piece) => Poll::Ready(Some(Ok(Frame::data(piece)))),
            None if self.broken => {
                self.broken = false;
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the stand-in model broke the stream off",
                ))))
            }
            None => Poll::Ready(None),
        }
    }
}
