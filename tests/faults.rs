//! The fault matrix: every way the API (or what stands in front of it) can misbehave,
//! against each call, over real loopback sockets.
//!
//! Each kind of fault is a module; its tests are the calls it is aimed at:
//! `register` (`Client::register_agent_run`), `event` (`Client::log_event`, sent and
//! awaited), `check` (`Client::check_action`) and, where the background exporter behaves
//! differently, `exporter` (`Client::queue_event` then `Client::flush`). A failure names
//! its cell, e.g. `status_503::exporter`.
//!
//! Each cell asserts the outcome, how many attempts the server saw, and a generous upper
//! bound on the time taken (a lower bound only where a `Retry-After` must be honoured).
//! Faults the MockServer cannot make (a reset, a body cut short, an oversized or endless
//! body) come from the raw server in `raw_http`.

mod raw_http;

use std::time::{Duration, Instant};

use chrono::Timelike;
use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{
    Action, AgentId, Client, ClientBuilder, Error, Event, EventReceipt, EventStats, EventType,
    Trace, TraceId, Verdict,
};
use raw_http::{RawRequest, RawServer, Reply};
use serde_json::json;

/// Retries of every client in the matrix, so a fault that persists is seen this many
/// times plus one.
const MAX_RETRIES: u32 = 2;
const ATTEMPTS: usize = MAX_RETRIES as usize + 1;

/// Far more than any cell needs: the fault answers every request.
const ALWAYS: usize = 10_000;

/// Per-attempt timeout of the matrix's clients: long enough that only the slow cells
/// ever meet it.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The per-attempt timeout of the slow cells, and how late their server answers.
const SHORT_TIMEOUT: Duration = Duration::from_millis(250);
const SLOW_ANSWER: Duration = Duration::from_secs(10);

/// A generous upper bound on one cell, on a busy two-core machine.
const BOUND: Duration = Duration::from_secs(15);

/// How long an exporter cell waits for its flush.
const FLUSH: Duration = Duration::from_secs(20);

/// The client's cap on a success body: 1 MiB.
const CAP: usize = 1024 * 1024;

const PROMPT: &str = "You are a fault-matrix agent.";

const DOCUMENTED_400: &str = r#"{"error":{"message":"Invalid agent_id format","type":"validation_error","code":"INVALID_AGENT_ID"}}"#;

const GATEWAY_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// One of the three awaited calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Register,
    Event,
    Check,
}

#[derive(Debug)]
#[allow(dead_code)] // Read through Debug in failure messages.
enum Answer {
    Trace(Trace),
    Receipt(EventReceipt),
    Verdict(Verdict),
}

impl Call {
    fn endpoint(self) -> Endpoint {
        match self {
            Call::Register => Endpoint::RegisterAgentRun,
            Call::Event => Endpoint::Event,
            Call::Check => Endpoint::Check,
        }
    }

    /// The endpoint as `Error::Decode` names it.
    fn path(self) -> &'static str {
        self.endpoint().path()
    }

    async fn run(self, client: &Client, trace_id: TraceId) -> Result<Answer, Error> {
        match self {
            Call::Register => client
                .register_agent_run(agent(), PROMPT)
                .await
                .map(Answer::Trace),
            Call::Event => client
                .send_event(trace_id, &Event::text(EventType::User, "hello"))
                .await
                .map(Answer::Receipt),
            Call::Check => client
                .check_action(trace_id, &action())
                .await
                .map(Answer::Verdict),
        }
    }

    /// A 200 body of the call's documented shape with one field that is not what the
    /// API documents: a trace id or event id that is not a UUID, a verdict that is not a
    /// bool.
    fn success_with_a_bad_field(self) -> &'static str {
        match self {
            Call::Register => r#"{"trace_id":"not-a-uuid","timestamp":"2024-01-15T14:30:45.123Z"}"#,
            Call::Event => r#"{"event_id":"evt_0001","timestamp":1678886405.123}"#,
            Call::Check => {
                r#"{"is_safe":"yes","reasoning":"ok","action_check_id":"chk_1","timestamp":1678886405.123}"#
            }
        }
    }
}

fn agent() -> AgentId {
    AgentId::from_name("fault-matrix").unwrap()
}

fn action() -> Action {
    Action::new("transfer_funds")
        .description("Move money between two accounts.")
        .parameters(json!({
            "type": "object",
            "properties": { "to": { "type": "string" } },
            "required": ["to"]
        }))
        .arguments(&json!({ "to": "acct-9" }))
}

/// The settings every matrix client shares.
fn tuned(builder: ClientBuilder) -> ClientBuilder {
    builder
        .max_retries(MAX_RETRIES)
        .timeout(TIMEOUT)
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
}

/// What one awaited call came to.
struct Cell {
    call: Call,
    result: Result<Answer, Error>,
    /// Requests the server saw at the call's endpoint.
    attempts: usize,
    arrivals: Vec<Instant>,
    elapsed: Duration,
}

impl Cell {
    /// Asserts an `Err` that `expected` accepts, the attempts, and the time bound.
    fn assert_err(&self, attempts: usize, expected: impl Fn(&Error) -> bool) -> &Error {
        let call = self.call;
        let error = match &self.result {
            Err(error) => error,
            Ok(answer) => panic!("{call:?}: expected an error, got {answer:?}"),
        };
        assert!(expected(error), "{call:?}: unexpected error {error:?}");
        assert_eq!(
            self.attempts, attempts,
            "{call:?}: attempts seen by the server (error {error:?})"
        );
        assert!(
            self.elapsed < BOUND,
            "{call:?}: took {:?} (error {error:?})",
            self.elapsed
        );
        error
    }

    /// The waits between consecutive attempts.
    fn gaps(&self) -> Vec<Duration> {
        self.arrivals.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

/// Runs `call` against a MockServer that answers its next `count` requests at the call's
/// endpoint with `fault`.
async fn against_mock(call: Call, fault: Fault, count: usize) -> Cell {
    against_mock_with(call, fault, count, |b| b).await
}

async fn against_mock_with(
    call: Call,
    fault: Fault,
    count: usize,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Cell {
    against_mock_made(call, move || fault, count, configure).await
}

/// [`against_mock_with`], with the fault made just before the call (after the server has
/// started and registered a trace).
async fn against_mock_made(
    call: Call,
    make_fault: impl FnOnce() -> Fault,
    count: usize,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Cell {
    let server = MockServer::start().await.unwrap();
    let trace_id = registered_trace(&server, call).await;
    server.fail_next(count, make_fault().on(call.endpoint()));
    let client = configure(tuned(server.client_builder())).build().unwrap();
    let started = Instant::now();
    let result = call.run(&client, trace_id).await;
    let elapsed = started.elapsed();
    let requests = server.requests_to(call.endpoint());
    Cell {
        call,
        result,
        attempts: requests.len(),
        arrivals: requests.iter().map(|r| r.received_at).collect(),
        elapsed,
    }
}

/// A trace the server knows, for events and checks (registered before any fault).
async fn registered_trace(server: &MockServer, call: Call) -> TraceId {
    match call {
        Call::Register => TraceId::from_uuid(uuid::Uuid::new_v4()),
        Call::Event | Call::Check => server
            .client()
            .register_agent_run(agent(), PROMPT)
            .await
            .unwrap()
            .trace_id(),
    }
}

/// Runs `call` against a raw server answering with `script`.
async fn against_raw(
    call: Call,
    script: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static,
) -> (Cell, RawServer) {
    let server = RawServer::start(script);
    let client = tuned(Client::builder().api_key("sk-test").base_url(server.url()))
        .build()
        .unwrap();
    let trace_id = TraceId::from_uuid(uuid::Uuid::new_v4());
    let started = Instant::now();
    let result = call.run(&client, trace_id).await;
    let elapsed = started.elapsed();
    let requests = server.requests();
    let cell = Cell {
        call,
        result,
        attempts: requests.len(),
        arrivals: requests.iter().map(|r| r.received_at).collect(),
        elapsed,
    };
    (cell, server)
}

/// What one queued event came to.
struct Exported {
    flushed: bool,
    stats: EventStats,
    attempts: usize,
    arrivals: Vec<Instant>,
    elapsed: Duration,
}

impl Exported {
    /// The event was delivered after `attempts` tries, in bounded time.
    fn assert_delivered(&self, attempts: usize) {
        let Exported { stats, .. } = self;
        assert!(self.flushed, "the flush timed out: {stats:?}");
        assert_eq!((stats.sent, stats.failed), (1, 0), "{stats:?}");
        assert_eq!((stats.dropped, stats.in_queue), (0, 0), "{stats:?}");
        assert_eq!(self.attempts, attempts, "attempts seen by the server");
        assert!(self.elapsed < BOUND, "took {:?}", self.elapsed);
    }

    /// The event was given up after `attempts` tries, counted as failed, in bounded time.
    fn assert_failed(&self, attempts: usize) {
        let Exported { stats, .. } = self;
        assert!(self.flushed, "the flush timed out: {stats:?}");
        assert_eq!((stats.sent, stats.failed), (0, 1), "{stats:?}");
        assert_eq!((stats.dropped, stats.in_queue), (0, 0), "{stats:?}");
        assert_eq!(self.attempts, attempts, "attempts seen by the server");
        assert!(self.elapsed < BOUND, "took {:?}", self.elapsed);
    }

    fn gaps(&self) -> Vec<Duration> {
        self.arrivals.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

/// Queues one event through a client of a MockServer that answers the next `count`
/// event requests with `fault`, and flushes.
async fn export_against_mock(fault: Fault, count: usize) -> Exported {
    export_against_mock_with(fault, count, |b| b).await
}

async fn export_against_mock_with(
    fault: Fault,
    count: usize,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Exported {
    export_against_mock_made(move || fault, count, configure).await
}

/// [`export_against_mock_with`], with the fault made just before the event is queued.
async fn export_against_mock_made(
    make_fault: impl FnOnce() -> Fault,
    count: usize,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> Exported {
    let server = MockServer::start().await.unwrap();
    let trace_id = registered_trace(&server, Call::Event).await;
    server.fail_next(count, make_fault().on(Endpoint::Event));
    let client = configure(tuned(server.client_builder())).build().unwrap();
    let started = Instant::now();
    client
        .queue_event(trace_id, Event::text(EventType::User, "exported"))
        .unwrap();
    let flushed = client.flush(FLUSH).await;
    let elapsed = started.elapsed();
    let requests = server.requests_to(Endpoint::Event);
    Exported {
        flushed,
        stats: client.stats().events,
        attempts: requests.len(),
        arrivals: requests.iter().map(|r| r.received_at).collect(),
        elapsed,
    }
}

/// Queues one event through a client of a raw server answering with `script`, and flushes.
async fn export_against_raw(
    script: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static,
) -> (Exported, RawServer) {
    let server = RawServer::start(script);
    let client = tuned(Client::builder().api_key("sk-test").base_url(server.url()))
        .build()
        .unwrap();
    let started = Instant::now();
    client
        .queue_event(
            TraceId::from_uuid(uuid::Uuid::new_v4()),
            Event::text(EventType::User, "exported"),
        )
        .unwrap();
    let flushed = client.flush(FLUSH).await;
    let elapsed = started.elapsed();
    let requests = server.requests();
    let exported = Exported {
        flushed,
        stats: client.stats().events,
        attempts: requests.len(),
        arrivals: requests.iter().map(|r| r.received_at).collect(),
        elapsed,
    };
    (exported, server)
}

/// Misbehaves for the first `count` requests with `bad`, then answers as documented.
fn first(count: usize, bad: Reply) -> impl Fn(&RawRequest) -> Reply + Send + Sync + 'static {
    move |request| {
        if request.index < count {
            bad.clone()
        } else {
            Reply::Bytes(raw_http::documented_success(request))
        }
    }
}

/// A `Retry-After` HTTP date about `seconds` ahead (to the second, as the form allows),
/// and the instant it names.
fn retry_at(seconds: i64) -> (String, Instant) {
    let now = chrono::Utc::now();
    let local_now = Instant::now();
    let at = (now + chrono::Duration::seconds(seconds))
        .with_nanosecond(0)
        .unwrap();
    let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    (date, local_now + (at - now).to_std().unwrap())
}

/// Asserts that the request after the first 429 came no earlier than the date it named
/// (less a little for reading the clocks), and that the date was worth waiting for.
fn assert_waited_for(date: Instant, arrivals: &[Instant]) {
    assert!(
        date >= arrivals[0] + Duration::from_secs(1),
        "the date was too close to the first attempt to tell"
    );
    let early = date.saturating_duration_since(arrivals[1]);
    assert!(
        early <= Duration::from_millis(100),
        "retried {early:?} before the date the server asked for"
    );
}

/// The kind of the I/O error at the root of `error`, if there is one.
fn io_error_kind(error: &Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}

fn is_api(error: &Error, expected: u16) -> bool {
    matches!(error, Error::Api { status, .. } if *status == expected)
}

fn is_decode(call: Call) -> impl Fn(&Error) -> bool {
    move |error| matches!(error, Error::Decode { endpoint, .. } if *endpoint == call.path())
}

/// One test per call for each kind of fault: `kind::register`, `kind::event`,
/// `kind::check`, and `kind::exporter` where the exporter behaves differently.
macro_rules! cells {
    ($kind:ident) => {
        mod $kind {
            use super::Call;
            #[tokio::test]
            async fn register() {
                super::$kind(Call::Register).await
            }
            #[tokio::test]
            async fn event() {
                super::$kind(Call::Event).await
            }
            #[tokio::test]
            async fn check() {
                super::$kind(Call::Check).await
            }
        }
    };
    ($kind:ident, exporter: $exporter:ident) => {
        mod $kind {
            use super::Call;
            #[tokio::test]
            async fn register() {
                super::$kind(Call::Register).await
            }
            #[tokio::test]
            async fn event() {
                super::$kind(Call::Event).await
            }
            #[tokio::test]
            async fn check() {
                super::$kind(Call::Check).await
            }
            #[tokio::test]
            async fn exporter() {
                super::$exporter().await
            }
        }
    };
}

// 429 with `Retry-After` in seconds: retried after the wait the server asked for; the
// error carries it.

cells!(
    rate_limited_retry_after_seconds,
    exporter: exporter_rate_limited_retry_after_seconds
);

async fn rate_limited_retry_after_seconds(call: Call) {
    let cell = against_mock(call, Fault::status(429).retry_after("1"), ALWAYS).await;
    cell.assert_err(ATTEMPTS, |e| {
        matches!(e, Error::RateLimited { retry_after: Some(d) } if *d == Duration::from_secs(1))
    });
    for gap in cell.gaps() {
        assert!(
            gap >= Duration::from_millis(950),
            "{call:?}: retried after {gap:?}, before the 1s asked for"
        );
    }
}

async fn exporter_rate_limited_retry_after_seconds() {
    let exported = export_against_mock(Fault::status(429).retry_after("1"), 2).await;
    exported.assert_delivered(3);
    for gap in exported.gaps() {
        assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    }
}

// 429 with `Retry-After` as an HTTP date two to three seconds ahead: the first retry
// waits for that date.

cells!(
    rate_limited_retry_after_date,
    exporter: exporter_rate_limited_retry_after_date
);

async fn rate_limited_retry_after_date(call: Call) {
    let mut date = None;
    let make_fault = || {
        let (text, at) = retry_at(3);
        date = Some(at);
        Fault::status(429).retry_after(text)
    };
    let cell = against_mock_made(call, make_fault, ALWAYS, |b| b).await;
    cell.assert_err(ATTEMPTS, |e| {
        matches!(e, Error::RateLimited { retry_after: Some(d) } if *d <= Duration::from_secs(3))
    });
    assert_waited_for(date.unwrap(), &cell.arrivals);
}

async fn exporter_rate_limited_retry_after_date() {
    let mut date = None;
    let make_fault = || {
        let (text, at) = retry_at(3);
        date = Some(at);
        Fault::status(429).retry_after(text)
    };
    let exported = export_against_mock_made(make_fault, 1, |b| b).await;
    exported.assert_delivered(2);
    assert_waited_for(date.unwrap(), &exported.arrivals);
}

// 429 without `Retry-After`: retried with backoff. The exporter keeps the event until
// the API takes it, past `max_retries`.

cells!(
    rate_limited_without_retry_after,
    exporter: exporter_rate_limited_without_retry_after
);

async fn rate_limited_without_retry_after(call: Call) {
    let cell = against_mock(call, Fault::status(429), ALWAYS).await;
    cell.assert_err(ATTEMPTS, |e| {
        matches!(e, Error::RateLimited { retry_after: None })
    });
}

async fn exporter_rate_limited_without_retry_after() {
    let exported = export_against_mock(Fault::status(429), ATTEMPTS + 1).await;
    exported.assert_delivered(ATTEMPTS + 2);
}

// 500: retried `max_retries` times, by the exporter too, which then gives the event up.

cells!(status_500, exporter: exporter_status_500);

async fn status_500(call: Call) {
    let cell = against_mock(call, Fault::status(500), ALWAYS).await;
    let error = cell.assert_err(ATTEMPTS, |e| is_api(e, 500));
    assert!(error.is_retryable());
}

async fn exporter_status_500() {
    export_against_mock(Fault::status(500), ALWAYS)
        .await
        .assert_failed(ATTEMPTS);
}

// 502 from a gateway, with its HTML page: retried; the error quotes a clean, short snippet.

cells!(bad_gateway_html, exporter: exporter_bad_gateway_html);

async fn bad_gateway_html(call: Call) {
    let fault = Fault::status(502)
        .body(GATEWAY_PAGE)
        .content_type("text/html");
    let cell = against_mock(call, fault, ALWAYS).await;
    let error = cell.assert_err(ATTEMPTS, |e| is_api(e, 502));
    let Error::Api {
        kind,
        code,
        message,
        ..
    } = error
    else {
        unreachable!()
    };
    assert_eq!((kind, code), (&None, &None), "{error:?}");
    assert!(message.starts_with("bad gateway"), "{message}");
    assert!(
        !message.contains('\n') && !message.contains('\r'),
        "{message:?}"
    );
    assert!(message.chars().count() < 300, "{message}");
}

async fn exporter_bad_gateway_html() {
    let fault = Fault::status(502)
        .body(GATEWAY_PAGE)
        .content_type("text/html");
    export_against_mock(fault, ATTEMPTS + 1)
        .await
        .assert_delivered(ATTEMPTS + 2);
}

// 503 and 504: retried; the exporter waits them out.

cells!(status_503, exporter: exporter_status_503);

async fn status_503(call: Call) {
    let cell = against_mock(call, Fault::status(503), ALWAYS).await;
    cell.assert_err(ATTEMPTS, |e| is_api(e, 503));
}

async fn exporter_status_503() {
    export_against_mock(Fault::status(503), ATTEMPTS + 1)
        .await
        .assert_delivered(ATTEMPTS + 2);
}

cells!(status_504, exporter: exporter_status_504);

async fn status_504(call: Call) {
    let cell = against_mock(call, Fault::status(504), ALWAYS).await;
    cell.assert_err(ATTEMPTS, |e| is_api(e, 504));
}

async fn exporter_status_504() {
    export_against_mock(Fault::status(504), ATTEMPTS + 1)
        .await
        .assert_delivered(ATTEMPTS + 2);
}

// 400 with the documented error body: sent once; the error carries its fields.

cells!(bad_request_documented, exporter: exporter_bad_request_documented);

async fn bad_request_documented(call: Call) {
    let fault = Fault::status(400).body(DOCUMENTED_400);
    let cell = against_mock(call, fault, ALWAYS).await;
    let error = cell.assert_err(1, |e| is_api(e, 400));
    let Error::Api {
        kind,
        code,
        message,
        ..
    } = error
    else {
        unreachable!()
    };
    assert_eq!(kind.as_deref(), Some("validation_error"));
    assert_eq!(code.as_deref(), Some("INVALID_AGENT_ID"));
    assert_eq!(message, "Invalid agent_id format");
    assert!(!error.is_retryable());
}

async fn exporter_bad_request_documented() {
    export_against_mock(Fault::status(400).body(DOCUMENTED_400), ALWAYS)
        .await
        .assert_failed(1);
}

// 400 with a plain-text body: sent once; the message quotes the text.

cells!(bad_request_plain_text, exporter: exporter_bad_request_plain_text);

async fn bad_request_plain_text(call: Call) {
    let fault = Fault::status(400)
        .body("missing field agent_id")
        .content_type("text/plain");
    let cell = against_mock(call, fault, ALWAYS).await;
    let error = cell.assert_err(1, |e| is_api(e, 400));
    let Error::Api {
        kind,
        code,
        message,
        ..
    } = error
    else {
        unreachable!()
    };
    assert_eq!((kind, code), (&None, &None));
    assert!(message.contains("missing field agent_id"), "{message}");
}

async fn exporter_bad_request_plain_text() {
    let fault = Fault::status(400)
        .body("missing field agent_id")
        .content_type("text/plain");
    export_against_mock(fault, ALWAYS).await.assert_failed(1);
}

// 401, 403, 404: sent once, never retried, by the exporter neither.

cells!(status_401, exporter: exporter_status_401);
cells!(status_403, exporter: exporter_status_403);
cells!(status_404, exporter: exporter_status_404);

async fn client_error(call: Call, status: u16) {
    let cell = against_mock(call, Fault::status(status), ALWAYS).await;
    let error = cell.assert_err(1, |e| is_api(e, status));
    assert!(!error.is_retryable());
}

async fn status_401(call: Call) {
    client_error(call, 401).await
}

async fn status_403(call: Call) {
    client_error(call, 403).await
}

async fn status_404(call: Call) {
    client_error(call, 404).await
}

async fn exporter_status_401() {
    export_against_mock(Fault::status(401), ALWAYS)
        .await
        .assert_failed(1);
}

async fn exporter_status_403() {
    export_against_mock(Fault::status(403), ALWAYS)
        .await
        .assert_failed(1);
}

async fn exporter_status_404() {
    export_against_mock(Fault::status(404), ALWAYS)
        .await
        .assert_failed(1);
}

// The real 401 of a wrong key, not an injected one.

cells!(wrong_key);

async fn wrong_key(call: Call) {
    let cell = against_mock_with(call, Fault::status(200), 0, |b| b.api_key("sk-wrong")).await;
    let error = cell.assert_err(1, |e| is_api(e, 401));
    assert!(
        matches!(error, Error::Api { code: Some(code), .. } if code == "INVALID_API_KEY"),
        "{error:?}"
    );
}

// Connection refused: nothing listens. A transport error in bounded time; the server
// can count nothing. The exporter holds the event until the server is back.

cells!(connection_refused, exporter: exporter_connection_refused);

async fn connection_refused(call: Call) {
    let server = MockServer::start().await.unwrap();
    let trace_id = registered_trace(&server, call).await;
    server.pause().unwrap();
    let client = tuned(server.client_builder()).build().unwrap();
    let started = Instant::now();
    let result = call.run(&client, trace_id).await;
    let cell = Cell {
        call,
        result,
        attempts: server.requests_to(call.endpoint()).len(),
        arrivals: Vec::new(),
        elapsed: started.elapsed(),
    };
    let error = cell.assert_err(0, |e| matches!(e, Error::Transport { .. }));
    assert!(error.is_retryable());
}

async fn exporter_connection_refused() {
    let server = MockServer::start().await.unwrap();
    let trace_id = registered_trace(&server, Call::Event).await;
    server.pause().unwrap();
    let client = tuned(server.client_builder()).build().unwrap();
    let started = Instant::now();
    client
        .queue_event(trace_id, Event::text(EventType::User, "exported"))
        .unwrap();
    // While nothing listens, the event stays queued.
    assert!(!client.flush(Duration::from_millis(300)).await);
    let stats = client.stats().events;
    assert_eq!((stats.sent, stats.failed, stats.in_queue), (0, 0, 1));
    server.resume().unwrap();
    let exported = Exported {
        flushed: client.flush(FLUSH).await,
        stats: client.stats().events,
        attempts: server.requests_to(Endpoint::Event).len(),
        arrivals: Vec::new(),
        elapsed: started.elapsed(),
    };
    exported.assert_delivered(1);
}

// The connection closed (an orderly close) before any response.

cells!(
    closed_before_response,
    exporter: exporter_closed_before_response
);

async fn closed_before_response(call: Call) {
    let cell = against_mock(call, Fault::drop_connection(), ALWAYS).await;
    cell.assert_err(ATTEMPTS, |e| matches!(e, Error::Transport { .. }));
}

async fn exporter_closed_before_response() {
    export_against_mock(Fault::drop_connection(), ATTEMPTS + 1)
        .await
        .assert_delivered(ATTEMPTS + 2);
}

// The connection reset (TCP RST) after the request was read, before any response.

cells!(reset_before_response, exporter: exporter_reset_before_response);

async fn reset_before_response(call: Call) {
    let (cell, _server) = against_raw(call, |_| Reply::Reset).await;
    let error = cell.assert_err(ATTEMPTS, |e| matches!(e, Error::Transport { .. }));
    assert_eq!(
        io_error_kind(error),
        Some(std::io::ErrorKind::ConnectionReset),
        "{error:?}"
    );
}

async fn exporter_reset_before_response() {
    let (exported, _server) = export_against_raw(first(ATTEMPTS + 1, Reply::Reset)).await;
    exported.assert_delivered(ATTEMPTS + 2);
}

// A 200 whose body stops short of its Content-Length, then the connection closes.

fn truncated_success() -> Reply {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\nConnection: close\r\n\r\n";
    Reply::Bytes(format!("{head}{{\"trace_id\":\"3f0c").into_bytes())
}

cells!(truncated_body, exporter: exporter_truncated_body);

async fn truncated_body(call: Call) {
    let (cell, _server) = against_raw(call, |_| truncated_success()).await;
    let error = cell.assert_err(ATTEMPTS, |e| matches!(e, Error::Transport { .. }));
    assert_eq!(
        io_error_kind(error),
        Some(std::io::ErrorKind::UnexpectedEof),
        "{error:?}"
    );
}

async fn exporter_truncated_body() {
    let (exported, _server) = export_against_raw(first(ATTEMPTS + 1, truncated_success())).await;
    exported.assert_delivered(ATTEMPTS + 2);
}

// An answer slower than the per-attempt timeout: a timeout, retried.

cells!(slower_than_the_timeout, exporter: exporter_slower_than_the_timeout);

async fn slower_than_the_timeout(call: Call) {
    let cell = against_mock_with(call, Fault::delay(SLOW_ANSWER), ALWAYS, |b| {
        b.timeout(SHORT_TIMEOUT)
    })
    .await;
    let error = cell.assert_err(
        ATTEMPTS,
        |e| matches!(e, Error::Timeout { after } if *after == SHORT_TIMEOUT),
    );
    assert!(error.is_retryable());
}

async fn exporter_slower_than_the_timeout() {
    export_against_mock_with(Fault::delay(SLOW_ANSWER), 2, |b| b.timeout(SHORT_TIMEOUT))
        .await
        .assert_delivered(3);
}

// A 200 whose body is not JSON: a decode error, sent once (the request may have been
// acted on, so it is not sent again).

cells!(malformed_json, exporter: exporter_malformed_json);

async fn malformed_json(call: Call) {
    let cell = against_mock(call, Fault::malformed_body(), ALWAYS).await;
    cell.assert_err(1, is_decode(call));
}

async fn exporter_malformed_json() {
    export_against_mock(Fault::malformed_body(), ALWAYS)
        .await
        .assert_failed(1);
}

// A 200 of the documented shape with a field that is not what the API documents (for
// register: a trace id that is not a UUID).

cells!(success_with_a_bad_field, exporter: exporter_success_with_a_bad_field);

async fn success_with_a_bad_field(call: Call) {
    let fault = Fault::status(200).body(call.success_with_a_bad_field());
    let cell = against_mock(call, fault, ALWAYS).await;
    cell.assert_err(1, is_decode(call));
}

async fn exporter_success_with_a_bad_field() {
    let fault = Fault::status(200).body(Call::Event.success_with_a_bad_field());
    export_against_mock(fault, ALWAYS).await.assert_failed(1);
}

// A 200 with an empty body.

cells!(empty_success, exporter: exporter_empty_success);

async fn empty_success(call: Call) {
    let cell = against_mock(call, Fault::status(200).body(""), ALWAYS).await;
    cell.assert_err(1, is_decode(call));
}

async fn exporter_empty_success() {
    export_against_mock(Fault::status(200).body(""), ALWAYS)
        .await
        .assert_failed(1);
}

// A 200 that declares a body over the 1 MiB cap: refused from the header, without
// reading it. The server sends only part of it and holds the connection, so a client
// that waited for the rest would time out instead.

fn oversized_declared() -> Reply {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        CAP + 1
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&[b' '; 64 * 1024]);
    Reply::BytesThenHold(bytes)
}

cells!(oversized_content_length, exporter: exporter_oversized_content_length);

async fn oversized_content_length(call: Call) {
    let (cell, server) = against_raw(call, |_| oversized_declared()).await;
    let error = cell.assert_err(1, is_decode(call));
    assert!(error.to_string().contains("larger than"), "{error}");
    assert!(
        server.wait_closed_by_client(1, BOUND),
        "{call:?}: the client kept the oversized response open"
    );
}

async fn exporter_oversized_content_length() {
    let (exported, server) = export_against_raw(|_| oversized_declared()).await;
    exported.assert_failed(1);
    assert!(server.wait_closed_by_client(1, BOUND));
}

// A chunked 200 that grows past the cap and never ends: refused once past the cap. A
// client that read on would wait for a last chunk that never comes, and time out.

fn endless() -> Reply {
    Reply::EndlessChunked {
        total: CAP + 256 * 1024,
    }
}

cells!(oversized_chunked, exporter: exporter_oversized_chunked);

async fn oversized_chunked(call: Call) {
    let (cell, server) = against_raw(call, |_| endless()).await;
    let error = cell.assert_err(1, is_decode(call));
    assert!(error.to_string().contains("larger than"), "{error}");
    assert!(
        server.wait_closed_by_client(1, BOUND),
        "{call:?}: the client kept the endless response open"
    );
}

async fn exporter_oversized_chunked() {
    let (exported, server) = export_against_raw(|_| endless()).await;
    exported.assert_failed(1);
    assert!(server.wait_closed_by_client(1, BOUND));
}

// An error status whose body is over the cap (a gateway's error page, say): the status
// decides the outcome, so a 503 is still retried and a 401 still is not.

fn oversized_error(status_line: &str) -> Reply {
    let head = format!(
        "HTTP/1.1 {status_line}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        2 * CAP
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&[b' '; 64 * 1024]);
    Reply::BytesThenHold(bytes)
}

cells!(
    error_status_with_an_oversized_body,
    exporter: exporter_error_status_with_an_oversized_body
);

async fn error_status_with_an_oversized_body(call: Call) {
    let (cell, _server) = against_raw(call, |_| oversized_error("503 Service Unavailable")).await;
    cell.assert_err(ATTEMPTS, |e| is_api(e, 503));
    let (cell, _server) = against_raw(call, |_| oversized_error("401 Unauthorized")).await;
    cell.assert_err(1, |e| is_api(e, 401));
}

async fn exporter_error_status_with_an_oversized_body() {
    let bad = oversized_error("503 Service Unavailable");
    let (exported, _server) = export_against_raw(first(ATTEMPTS + 1, bad)).await;
    exported.assert_delivered(ATTEMPTS + 2);
}

// An error status whose body stops short of its Content-Length: still that status, so a
// 401 is not retried as if the connection had failed.

fn truncated_error(status_line: &str) -> Reply {
    let body = r#"{"error":{"message":"Invalid API key","type":"authentication_error""#;
    let head = format!(
        "HTTP/1.1 {status_line}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len() + 100
    );
    Reply::Bytes(format!("{head}{body}").into_bytes())
}

cells!(
    error_status_with_a_truncated_body,
    exporter: exporter_error_status_with_a_truncated_body
);

async fn error_status_with_a_truncated_body(call: Call) {
    let (cell, _server) = against_raw(call, |_| truncated_error("401 Unauthorized")).await;
    cell.assert_err(1, |e| is_api(e, 401));
    let (cell, _server) = against_raw(call, |_| truncated_error("503 Service Unavailable")).await;
    cell.assert_err(ATTEMPTS, |e| is_api(e, 503));
}

async fn exporter_error_status_with_a_truncated_body() {
    let (exported, _server) = export_against_raw(|_| truncated_error("401 Unauthorized")).await;
    exported.assert_failed(1);
}

// A body exactly at the cap is read: the cap refuses only what is over it.
#[tokio::test]
async fn body_at_the_cap_is_read() {
    let server = RawServer::start(|_| {
        let json = format!(
            r#"{{"trace_id":"{}","timestamp":"2024-01-15T14:30:45.123Z"}}"#,
            uuid::Uuid::new_v4()
        );
        let padded = format!("{json}{}", " ".repeat(CAP - json.len()));
        Reply::Bytes(raw_http::ok_json(&padded))
    });
    let client = tuned(Client::builder().api_key("sk-test").base_url(server.url()))
        .build()
        .unwrap();
    client.register_agent_run(agent(), PROMPT).await.unwrap();
    assert_eq!(server.requests().len(), 1);
}
