//! The MockServer's thread, accept loop and request handling (hyper, HTTP/1.1).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak, mpsc};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc as tmpsc};
use uuid::Uuid;

use super::fallback::Fallback;
use super::records::RecordedResponse;
use super::reference;
use super::validate::{self, EVENT_TYPES, Rejection};
use super::{Endpoint, FaultKind, RecordedRequest, Shared};
use crate::model::Error;
use crate::model::wire;

/// How long `pause` waits for one connection to close.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Requests larger than this are refused with 413.
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

pub(super) enum Command {
    Pause,
    Resume,
}

/// The handle to the server thread: commands go in, and dropping it stops the server.
pub(super) struct Control {
    commands: tmpsc::UnboundedSender<(Command, mpsc::SyncSender<Result<(), String>>)>,
}

impl Control {
    pub fn command(&self, command: Command) -> Result<(), Error> {
        let (ack, done) = mpsc::sync_channel(1);
        self.commands
            .send((command, ack))
            .map_err(|_| Error::Runtime("the mock server has stopped".into()))?;
        done.recv()
            .map_err(|_| Error::Runtime("the mock server has stopped".into()))?
            .map_err(|e| Error::Runtime(format!("mock server: {e}")))
    }
}

/// Starts the server thread on `port` of 127.0.0.1 (0: any free one); `ready` hears the
/// bound address (or why there is none).
pub(super) fn spawn(
    shared: Arc<Shared>,
    port: u16,
    ready: impl FnOnce(Result<SocketAddr, String>) + Send + 'static,
) -> Result<Control, Error> {
    let (commands, inbox) = tmpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("fabraix-mock-server".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("fabraix-mock-server")
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => return ready(Err(e.to_string())),
            };
            runtime.block_on(async move {
                let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
                    Ok(listener) => listener,
                    Err(e) => return ready(Err(e.to_string())),
                };
                match listener.local_addr() {
                    Ok(addr) => ready(Ok(addr)),
                    Err(e) => return ready(Err(e.to_string())),
                }
                serve(listener, shared, inbox).await;
            });
            // Dropping the runtime here ends every connection task.
        })
        .map_err(|e| Error::Runtime(format!("could not start the mock server thread: {e}")))?;
    Ok(Control { commands })
}

type Inbox = tmpsc::UnboundedReceiver<(Command, mpsc::SyncSender<Result<(), String>>)>;

/// Accepts connections until the [`Control`] is dropped; pauses and resumes on command.
async fn serve(listener: TcpListener, shared: Arc<Shared>, mut inbox: Inbox) {
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(_) => return,
    };
    let mut listener = Some(listener);
    let mut connections: Vec<(Weak<Notify>, tokio::task::JoinHandle<()>)> = Vec::new();
    loop {
        let accepted = async {
            match &listener {
                Some(l) => l.accept().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            accepted = accepted => {
                if let Some((stream, _)) = accepted {
                    let kill = Arc::new(Notify::new());
                    connections.retain(|(_, task)| !task.is_finished());
                    let weak = Arc::downgrade(&kill);
                    let task = tokio::spawn(serve_connection(stream, shared.clone(), kill, addr));
                    connections.push((weak, task));
                }
            }
            command = inbox.recv() => {
                let Some((command, ack)) = command else { return };
                let outcome = match command {
                    Command::Pause => {
                        listener = None;
                        let closing = std::mem::take(&mut connections);
                        for kill in closing.iter().filter_map(|(kill, _)| kill.upgrade()) {
                            kill.notify_one();
                        }
                        // Answer once every connection is closed: a kept-alive connection
                        // must not serve a request after `pause` has returned.
                        for (_, task) in closing {
                            let _ = tokio::time::timeout(CLOSE_WAIT, task).await;
                        }
                        Ok(())
                    }
                    Command::Resume if listener.is_some() => Ok(()),
                    Command::Resume => match TcpListener::bind(addr).await {
                        Ok(l) => {
                            listener = Some(l);
                            Ok(())
                        }
                        Err(e) => Err(format!("could not listen on {addr} again: {e}")),
                    },
                };
                let _ = ack.send(outcome);
            }
        }
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    shared: Arc<Shared>,
    kill: Arc<Notify>,
    addr: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let handler_kill = kill.clone();
    let service =
        service_fn(move |request| handle(shared.clone(), handler_kill.clone(), addr, request));
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = kill.notified() => {}
    }
}

/// An answer, its body whole (so that it can be recorded before it is sent).
type Answer = Response<Bytes>;

async fn handle(
    shared: Arc<Shared>,
    kill: Arc<Notify>,
    addr: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if shared.local_host_only && !names_this_server(request.headers(), addr) {
        return Ok(reject(&misdirected(addr)).map(Full::new));
    }
    let answer = match (request.method(), request.uri().path()) {
        (&hyper::Method::GET, "/openapi.json") => {
            let document = reference::served_document(&format!("http://{addr}/v1"));
            answer(StatusCode::OK, "application/json", document.into())
        }
        (&hyper::Method::GET, "/docs") => {
            let document = reference::served_document(&format!("http://{addr}/v1"));
            let page = serde_json::from_str(&document)
                .map(|document| reference::page(&document))
                .unwrap_or_default();
            let mut answer = answer(StatusCode::OK, "text/html; charset=utf-8", page.into());
            answer.headers_mut().insert(
                hyper::header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(reference::PAGE_POLICY),
            );
            answer
        }
        _ => match &shared.fallback {
            Some(fallback) if Fallback::serves(request.uri().path()) => {
                serve_fallback(fallback, request).await
            }
            _ => handle_api(&shared, &kill, request).await,
        },
    };
    Ok(answer.map(Full::new))
}

/// Whether the request's `Host` is this server as a browser on this machine names it. A
/// page elsewhere that resolves its own name to 127.0.0.1 (DNS rebinding) sends that name.
fn names_this_server(headers: &hyper::HeaderMap, addr: SocketAddr) -> bool {
    let port = addr.port();
    headers
        .get(hyper::header::HOST)
        .and_then(|host| host.to_str().ok())
        .is_some_and(|host| {
            host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}")
        })
}

fn misdirected(addr: SocketAddr) -> Rejection {
    let port = addr.port();
    Rejection {
        status: 421,
        kind: "invalid_request_error",
        code: "MISDIRECTED_REQUEST",
        message: format!("This server answers only to 127.0.0.1:{port} and localhost:{port}"),
    }
}

async fn serve_fallback(fallback: &Fallback, request: Request<Incoming>) -> Answer {
    let (parts, body) = request.into_parts();
    match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => {
            fallback
                .answer(Request::from_parts(parts, collected.to_bytes()))
                .await
        }
        Err(_) => reject(&too_large()),
    }
}

fn too_large() -> Rejection {
    Rejection {
        status: 413,
        kind: "invalid_request_error",
        code: "PAYLOAD_TOO_LARGE",
        message: "Request body too large".into(),
    }
}

/// Records the request, answers it (by a planned fault or the API's logic), and records
/// the answer.
async fn handle_api(shared: &Shared, kill: &Notify, request: Request<Incoming>) -> Answer {
    let (parts, body) = request.into_parts();
    let bytes = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return reject(&too_large()),
    };
    let path = parts.uri.path().to_owned();
    let endpoint = Endpoint::from_path(&path);
    let key = parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let authenticated = key.as_deref() == Some(shared.api_key.as_str());

    let mut headers = BTreeMap::new();
    for (name, value) in &parts.headers {
        let value = if name.as_str() == "x-api-key" {
            "[redacted]".to_owned()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v: &mut String| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);

    let (fault, sequence) = {
        let mut state = shared.lock();
        let fault = take_fault(&mut state.faults, endpoint);
        let trace = match endpoint {
            Some(Endpoint::Event | Endpoint::Check) => state.named_trace(&body),
            _ => None,
        };
        let request = RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path: path.clone(),
            headers,
            authenticated,
            body: body.clone(),
            raw_body: String::from_utf8_lossy(&bytes).into_owned(),
            faulted: fault.is_some(),
            received_at: Instant::now(),
            sequence: 0,
            trace,
            response: None,
        };
        let sequence = state.record(request, shared.keep_runs);
        (fault, sequence)
    };
    shared.notify();

    let answer = match fault {
        Some(FaultKind::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            None
        }
        Some(FaultKind::DropConnection) => {
            kill.notify_one();
            return std::future::pending().await;
        }
        Some(FaultKind::MalformedBody) => Some(answer(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(b"{\"trace_id\": \"3f0c"),
        )),
        Some(FaultKind::Status {
            status,
            retry_after,
            body,
            content_type,
        }) => Some(status_fault(status, retry_after, body, &content_type)),
        None => None,
    };
    let answer = answer.unwrap_or_else(|| {
        if authenticated && endpoint.is_some() && parts.method == hyper::Method::POST {
            let admitted = shared.lock().limiter.admit(Instant::now());
            if let Err(wait) = admitted {
                return rate_limited(wait);
            }
        }
        let outcome = route(
            shared,
            &parts.method,
            endpoint,
            &path,
            &parts.headers,
            authenticated,
            &body,
        );
        match outcome {
            Ok(value) => json_answer(StatusCode::OK, &value),
            Err(rejection) => reject(&rejection),
        }
    });
    let recorded = RecordedResponse::new(answer.status().as_u16(), answer.body());
    shared.lock().record_answer(sequence, recorded);
    shared.notify();
    answer
}

fn take_fault(
    faults: &mut std::collections::VecDeque<super::PlannedFault>,
    endpoint: Option<Endpoint>,
) -> Option<FaultKind> {
    let index = faults
        .iter()
        .position(|f| f.fault.endpoint.is_none() || f.fault.endpoint == endpoint)?;
    let planned = &mut faults[index];
    planned.remaining -= 1;
    let kind = planned.fault.kind.clone();
    if planned.remaining == 0 {
        faults.remove(index);
    }
    Some(kind)
}

/// The API's logic, after authentication and validation.
fn route(
    shared: &Shared,
    method: &hyper::Method,
    endpoint: Option<Endpoint>,
    path: &str,
    headers: &hyper::HeaderMap,
    authenticated: bool,
    body: &Value,
) -> Result<Value, Rejection> {
    let Some(endpoint) = endpoint else {
        return Err(Rejection {
            status: 404,
            kind: "not_found_error",
            code: "NOT_FOUND",
            message: format!("Unknown endpoint: {path}"),
        });
    };
    if method != hyper::Method::POST {
        return Err(Rejection {
            status: 405,
            kind: "invalid_request_error",
            code: "METHOD_NOT_ALLOWED",
            message: format!("{path} only accepts POST"),
        });
    }
    if !authenticated {
        return Err(Rejection {
            status: 401,
            kind: "authentication_error",
            code: "INVALID_API_KEY",
            message: "Invalid API key".into(),
        });
    }
    let json_content = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_content {
        return Err(Rejection::invalid(
            "INVALID_CONTENT_TYPE",
            "Content-Type must be application/json",
        ));
    }
    match endpoint {
        Endpoint::RegisterAgentRun => register(shared, body),
        Endpoint::Event => event(shared, body),
        Endpoint::Check => check(shared, body),
    }
}

fn register(shared: &Shared, body: &Value) -> Result<Value, Rejection> {
    let object = validate::object_with_exactly(body, &["agent_id", "timestamp", "system_prompt"])?;
    validate::uuid_field(object, "agent_id", "INVALID_AGENT_ID")?;
    let timestamp_ok = object
        .get("timestamp")
        .and_then(Value::as_str)
        .is_some_and(validate::is_register_timestamp);
    if !timestamp_ok {
        return Err(Rejection::invalid(
            "INVALID_TIMESTAMP",
            "Invalid timestamp format; expected YYYY-MM-DDTHH:mm:ss.sssZ",
        ));
    }
    if !object.get("system_prompt").is_some_and(Value::is_string) {
        return Err(Rejection::invalid(
            "INVALID_SYSTEM_PROMPT",
            "system_prompt must be a string",
        ));
    }
    let trace_id = Uuid::new_v4();
    shared.lock().issue(trace_id, shared.keep_runs);
    Ok(json!({
        "trace_id": trace_id.to_string(),
        "timestamp": wire::iso_millis(chrono::Utc::now()),
    }))
}

const EVENT_FIELDS: [&str; 5] = ["event_type", "trace_id", "timestamp", "content", "schema"];

/// The checks `/event` and `/check` share; answers the trace id and the parsed schema.
fn event_common(
    shared: &Shared,
    body: &Value,
    event_type_ok: impl Fn(&str) -> bool,
) -> Result<Value, Rejection> {
    let object = validate::object_with_exactly(body, &EVENT_FIELDS)?;
    let event_type = object.get("event_type").and_then(Value::as_str);
    if !event_type.is_some_and(event_type_ok) {
        return Err(Rejection::invalid(
            "INVALID_EVENT_TYPE",
            "Invalid event_type",
        ));
    }
    let trace_id = validate::uuid_field(object, "trace_id", "INVALID_TRACE_ID")?;
    validate::unix_seconds_field(object)?;
    validate::json_string_field(object, "content", "INVALID_CONTENT")?;
    let schema = validate::json_string_field(object, "schema", "INVALID_SCHEMA")?;
    if !validate::is_schema(&schema) {
        return Err(Rejection::invalid(
            "INVALID_SCHEMA",
            "schema must be a JSON Schema document",
        ));
    }
    if !shared.lock().traces.contains(&trace_id) {
        return Err(Rejection {
            status: 404,
            kind: "not_found_error",
            code: "TRACE_NOT_FOUND",
            message: "Trace not found".into(),
        });
    }
    Ok(schema)
}

fn event(shared: &Shared, body: &Value) -> Result<Value, Rejection> {
    event_common(shared, body, |t| EVENT_TYPES.contains(&t))?;
    Ok(json!({
        "event_id": Uuid::new_v4().to_string(),
        "timestamp": wire::unix_seconds(chrono::Utc::now()),
    }))
}

fn check(shared: &Shared, body: &Value) -> Result<Value, Rejection> {
    let schema = event_common(shared, body, |t| t == "action_check")?;
    let name = validate::function_schema_name(&schema)?;
    let blocked = shared.lock().blocked.get(&name).cloned();
    let (is_safe, reasoning) = match blocked {
        Some(reasoning) => (false, reasoning),
        None => (true, format!("No policy blocks `{name}`.")),
    };
    Ok(json!({
        "is_safe": is_safe,
        "reasoning": reasoning,
        "action_check_id": format!("chk_{}", Uuid::new_v4().simple()),
        "timestamp": wire::unix_seconds(chrono::Utc::now()),
    }))
}

fn status_fault(
    status: u16,
    retry_after: Option<String>,
    body: Option<String>,
    content_type: &str,
) -> Answer {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = body.unwrap_or_else(|| {
        if code.is_success() {
            "{}".into()
        } else {
            let reason = code.canonical_reason().unwrap_or("Error");
            json!({
                "error": {
                    "message": reason,
                    "type": if code.is_server_error() { "server_error" } else { "request_error" },
                    "code": reason.to_ascii_uppercase().replace([' ', '-'], "_"),
                }
            })
            .to_string()
        }
    });
    let mut response = answer(code, content_type, Bytes::from(body));
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

/// A 429, as the API answers a key over its limit.
fn rate_limited(wait: std::time::Duration) -> Answer {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let rejection = Rejection {
        status: 429,
        kind: "rate_limit_error",
        code: "RATE_LIMIT_EXCEEDED",
        message: "Rate limit exceeded".into(),
    };
    let mut response = reject(&rejection);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

fn reject(rejection: &Rejection) -> Answer {
    let code = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::BAD_REQUEST);
    json_answer(code, &rejection.body())
}

fn json_answer(status: StatusCode, value: &Value) -> Answer {
    answer(status, "application/json", Bytes::from(value.to_string()))
}

fn answer(status: StatusCode, content_type: &str, body: Bytes) -> Answer {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}
