//! [`MockServer`]: the Fabraix API in-process, over real HTTP on loopback, for tests and
//! examples. Enabled by the `testing` feature.
//!
//! It validates every request as strictly as the API reference ([`OPENAPI_JSON`]) documents
//! (400 with the documented error body), issues trace ids, answers 404 for traces it never
//! issued, records every request with the answer it got, returns verdicts from rules, and
//! injects faults.
//!
//! Beside the API it serves its reference, for agents in any language: the OpenAPI document
//! at `GET /openapi.json` ([`OPENAPI_JSON`]) and a page rendered from it at `GET /docs`.
//!
//! A long-lived server (a local stand-in for the API during development) can bound what it
//! keeps with [`MockServerBuilder::keep_runs`], listen on a chosen port with
//! [`MockServerBuilder::port`], serve other paths than the API's with
//! [`MockServerBuilder::fallback`], and follow its records with [`MockServer::changes`] and
//! [`MockServer::wait_for_change`].
//!
//! ```
//! # async fn demo() -> Result<(), fabraix::Error> {
//! use fabraix::testing::{Fault, MockServer};
//! use fabraix::AgentId;
//!
//! let server = MockServer::start().await?;
//! server.fail_next(1, Fault::status(503));
//! let trace = server
//!     .client()
//!     .register_agent_run(AgentId::from_name("demo")?, "You are a demo.")
//!     .await?;
//! let requests = server.requests();
//! assert_eq!(requests.len(), 2); // a 503, then the retry that succeeded
//! assert_eq!(requests[1].path, "/v1/register-agent-run");
//! assert!(server.issued_traces().contains(&trace.trace_id()));
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
//! ```

mod fallback;
mod rate_limit;
mod records;
mod reference;
mod server;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use fallback::{FallbackRequest, FallbackResponse};
pub use records::RecordedResponse;
pub use reference::OPENAPI_JSON;
use uuid::Uuid;

use crate::client::{Client, ClientBuilder};
use crate::model::Error;
use crate::model::{RateLimit, TraceId};

/// The key a [`MockServer`] accepts unless [`MockServerBuilder::api_key`] says otherwise.
pub const DEFAULT_API_KEY: &str = "fabraix-mock-key";

/// One request the server received, in arrival order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// The path, e.g. `/v1/check`.
    pub path: String,
    /// The headers, names lowercased. `x-api-key` is replaced by `[redacted]`.
    pub headers: BTreeMap<String, String>,
    /// Whether `x-api-key` held the server's key.
    pub authenticated: bool,
    /// The body parsed as JSON, or `Value::Null` when it is not JSON.
    pub body: Value,
    /// The body as text (lossy UTF-8).
    pub raw_body: String,
    /// Whether an injected fault answered this request instead of the API logic.
    pub faulted: bool,
    /// When it arrived.
    pub received_at: Instant,
    /// Its position among every request the server has received, from 0. Unlike an index
    /// into [`MockServer::requests`], it stays the same when older records are forgotten.
    pub sequence: u64,
    /// The run it belongs to: for a registration, the trace id it was issued; for an event
    /// or a check, the `trace_id` of its body when that names a trace the server issued.
    pub trace: Option<TraceId>,
    /// The answer it got, once sent; `None` while it is being answered, and for good when an
    /// injected fault dropped the connection.
    pub response: Option<RecordedResponse>,
}

impl RecordedRequest {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// An endpoint of the API, to aim a [`Fault`] at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /register-agent-run`
    RegisterAgentRun,
    /// `POST /event`
    Event,
    /// `POST /check`
    Check,
}

impl Endpoint {
    /// The path under the base URL, e.g. `/event`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::RegisterAgentRun => "/register-agent-run",
            Endpoint::Event => "/event",
            Endpoint::Check => "/check",
        }
    }

    fn from_path(path: &str) -> Option<Self> {
        match path.strip_prefix("/v1")? {
            "/register-agent-run" => Some(Endpoint::RegisterAgentRun),
            "/event" => Some(Endpoint::Event),
            "/check" => Some(Endpoint::Check),
            _ => None,
        }
    }
}

/// A misbehaviour to inject with [`MockServer::fail_next`].
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    kind: FaultKind,
    endpoint: Option<Endpoint>,
}

#[derive(Debug, Clone, PartialEq)]
enum FaultKind {
    Status {
        status: u16,
        retry_after: Option<String>,
        body: Option<String>,
        content_type: String,
    },
    Delay(Duration),
    DropConnection,
    MalformedBody,
}

impl Fault {
    /// Answer with this status and the documented error body for it (or a 200 with `{}`).
    pub fn status(status: u16) -> Self {
        Self::new(FaultKind::Status {
            status,
            retry_after: None,
            body: None,
            content_type: "application/json".into(),
        })
    }

    /// Answer late: wait `delay`, then answer as usual.
    pub fn delay(delay: Duration) -> Self {
        Self::new(FaultKind::Delay(delay))
    }

    /// Close the connection without answering.
    pub fn drop_connection() -> Self {
        Self::new(FaultKind::DropConnection)
    }

    /// Answer 200 with a body that is not valid JSON.
    pub fn malformed_body() -> Self {
        Self::new(FaultKind::MalformedBody)
    }

    /// With [`Fault::status`]: also send `Retry-After: value` (seconds or an HTTP date).
    pub fn retry_after(mut self, value: impl Into<String>) -> Self {
        if let FaultKind::Status { retry_after, .. } = &mut self.kind {
            *retry_after = Some(value.into());
        }
        self
    }

    /// With [`Fault::status`]: send this body instead of the documented error body.
    pub fn body(mut self, text: impl Into<String>) -> Self {
        if let FaultKind::Status { body, .. } = &mut self.kind {
            *body = Some(text.into());
        }
        self
    }

    /// With [`Fault::status`]: send this `Content-Type` (default `application/json`).
    pub fn content_type(mut self, value: impl Into<String>) -> Self {
        if let FaultKind::Status { content_type, .. } = &mut self.kind {
            *content_type = value.into();
        }
        self
    }

    /// Only requests to `endpoint` meet this fault (by default, any request does).
    pub fn on(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            endpoint: None,
        }
    }
}

struct PlannedFault {
    fault: Fault,
    remaining: usize,
}

#[derive(Default)]
struct State {
    requests: Vec<RecordedRequest>,
    traces: HashSet<Uuid>,
    /// The same trace ids, in the order they were issued.
    issued: VecDeque<Uuid>,
    blocked: HashMap<String, String>,
    faults: VecDeque<PlannedFault>,
    /// How many requests have been received (the next one's `sequence`).
    received: u64,
    /// How many times the records changed (see [`MockServer::changes`]).
    changes: u64,
    /// How many records have no `trace`.
    unattached: usize,
    limiter: rate_limit::Limiter,
}

struct Shared {
    api_key: String,
    /// With [`MockServerBuilder::local_host_only`]: refuse requests for other hosts.
    local_host_only: bool,
    /// With [`MockServerBuilder::keep_runs`]: how many runs (and unattached requests) to keep.
    keep_runs: Option<usize>,
    fallback: Option<fallback::Fallback>,
    state: Mutex<State>,
    /// Signalled on every recorded request, for [`MockServer::wait_for_blocking`].
    recorded: Condvar,
    /// Signalled on every recorded request, for [`MockServer::wait_for`].
    recorded_async: tokio::sync::Notify,
    /// Keeps the server's key scrubbed from what it records while it runs.
    _remembered: crate::api::scrub::KeyGuard,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every waiter on the records ([`MockServer::wait_for`] and friends).
    fn notify(&self) {
        self.recorded.notify_all();
        self.recorded_async.notify_waiters();
    }
}

/// Configures a [`MockServer`] before it starts.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct MockServerBuilder {
    api_key: String,
    local_host_only: bool,
    port: u16,
    keep_runs: Option<usize>,
    fallback: Option<fallback::Fallback>,
    rate_limit: RateLimit,
}

impl MockServerBuilder {
    /// The key the server accepts in `x-api-key` (others get 401).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// Listens on this port of `127.0.0.1` (default `0`: a free port the system picks).
    /// `start` fails when the port is taken.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Bounds what the server keeps, for a server that runs for long: only the last `runs`
    /// runs are remembered (their trace ids and every request that belongs to them, see
    /// [`RecordedRequest::trace`]), and the last `runs` requests that belong to no kept run.
    /// A forgotten run's trace id is unknown from then on: events and checks naming it get
    /// 404. A run's own requests are all kept while the run is. At least one run is kept;
    /// by default, everything is.
    pub fn keep_runs(mut self, runs: usize) -> Self {
        self.keep_runs = Some(runs.max(1));
        self
    }

    /// Answers every request whose path is outside `/v1` with `handler` instead of a 404,
    /// so that one port serves the API and, say, a page about what it received. These
    /// requests are not recorded and meet no fault. `GET /openapi.json` and `GET /docs`
    /// stay the server's own (see [`OPENAPI_JSON`]). Their body is read in full first (up to
    /// the server's limit of 8 MiB).
    ///
    /// ```
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use fabraix::testing::{FallbackRequest, FallbackResponse, MockServer};
    ///
    /// let server = MockServer::builder()
    ///     .fallback(|request: FallbackRequest| async move {
    ///         FallbackResponse::new(format!("you asked for {}", request.uri().path()).into())
    ///     })
    ///     .start()
    ///     .await?;
    /// let url = format!("http://{}/hello", server.addr());
    /// let text = reqwest::get(url).await?.text().await?;
    /// assert_eq!(text, "you asked for /hello");
    /// assert!(server.requests().is_empty());
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn fallback<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(FallbackRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = FallbackResponse> + Send + 'static,
    {
        self.fallback = Some(fallback::Fallback::new(handler));
        self
    }

    /// Answers only requests whose `Host` names this server the way a program on this
    /// machine does (`127.0.0.1:PORT`, `localhost:PORT`); any other gets 421 with the
    /// documented error body, and is not recorded. A server on loopback is still reachable
    /// from a web page elsewhere through DNS rebinding (its own name made to resolve to
    /// 127.0.0.1), and the browser then sends that name: this keeps such a page from using
    /// the API and from reading what the server serves. For a server that runs for long
    /// while a browser is open, such as `fabraix-dev`. Off by default.
    pub fn local_host_only(mut self) -> Self {
        self.local_host_only = true;
        self
    }

    /// Limits the key as the API does: past any window of `limit` (sliding windows over
    /// the requests the server accepted), a request is answered 429 with the documented
    /// error body and `Retry-After` (whole seconds until it would be accepted). Off by
    /// default.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Starts the server on `127.0.0.1` and a free port, on a thread of its own.
    pub async fn start(self) -> Result<MockServer, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let port = self.port;
        let shared = self.shared();
        let control = server::spawn(shared.clone(), port, move |ready| {
            let _ = tx.send(ready);
        })?;
        let ready = rx
            .await
            .map_err(|_| Error::Runtime("the mock server thread ended".into()))?;
        MockServer::ready(shared, control, ready)
    }

    /// [`start`](Self::start) for synchronous code.
    pub fn start_blocking(self) -> Result<MockServer, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let port = self.port;
        let shared = self.shared();
        let control = server::spawn(shared.clone(), port, move |ready| {
            let _ = tx.send(ready);
        })?;
        let ready = rx
            .recv()
            .map_err(|_| Error::Runtime("the mock server thread ended".into()))?;
        MockServer::ready(shared, control, ready)
    }

    fn shared(self) -> Arc<Shared> {
        // What the server records of its answers is scrubbed of its key.
        let remembered = crate::api::scrub::remember(&self.api_key);
        Arc::new(Shared {
            _remembered: remembered,
            api_key: self.api_key,
            local_host_only: self.local_host_only,
            keep_runs: self.keep_runs,
            fallback: self.fallback,
            state: Mutex::new(State {
                limiter: rate_limit::Limiter::new(self.rate_limit),
                ..State::default()
            }),
            recorded: Condvar::new(),
            recorded_async: tokio::sync::Notify::new(),
        })
    }
}

/// The Fabraix API, in-process, on a real loopback socket. Stops when dropped.
pub struct MockServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    control: server::Control,
    client: Client,
}

impl MockServer {
    /// Starts a server that accepts [`DEFAULT_API_KEY`].
    pub async fn start() -> Result<Self, Error> {
        Self::builder().start().await
    }

    /// [`start`](Self::start) for synchronous code.
    pub fn start_blocking() -> Result<Self, Error> {
        Self::builder().start_blocking()
    }

    /// A builder, to choose the key.
    pub fn builder() -> MockServerBuilder {
        MockServerBuilder {
            api_key: DEFAULT_API_KEY.into(),
            local_host_only: false,
            port: 0,
            keep_runs: None,
            fallback: None,
            rate_limit: RateLimit::off(),
        }
    }

    fn ready(
        shared: Arc<Shared>,
        control: server::Control,
        ready: Result<SocketAddr, String>,
    ) -> Result<Self, Error> {
        let addr = ready.map_err(|e| Error::Runtime(format!("mock server: {e}")))?;
        let client = client_builder(&shared.api_key, addr).build()?;
        Ok(Self {
            shared,
            addr,
            control,
            client,
        })
    }

    /// The base URL, e.g. `http://127.0.0.1:41235/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The socket address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The key it accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// A client builder pointed at this server with its key, and short backoffs so that
    /// tests of retries stay quick.
    pub fn client_builder(&self) -> ClientBuilder {
        client_builder(&self.shared.api_key, self.addr)
    }

    /// A client pointed at this server, built by [`client_builder`](Self::client_builder)
    /// when the server started: every call answers a clone of it (one pool, one event
    /// queue). Build another with `client_builder` for different settings.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Reads the recorded requests in place, without copying them (every request so far,
    /// in arrival order): for a reader that looks at many of them often. `read` runs with
    /// the server's records locked: it must be quick and must not call the server.
    ///
    /// ```
    /// # async fn demo() -> Result<(), fabraix::Error> {
    /// use fabraix::testing::MockServer;
    /// use fabraix::AgentId;
    ///
    /// let server = MockServer::start().await?;
    /// server.client().register_agent_run(AgentId::from_name("demo")?, "").await?;
    /// let answered = server.with_requests(|requests| {
    ///     requests.iter().filter(|r| r.response.is_some()).count()
    /// });
    /// assert_eq!(answered, 1);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub fn with_requests<R>(&self, read: impl FnOnce(&[RecordedRequest]) -> R) -> R {
        read(&self.shared.lock().requests)
    }

    /// The requests received so far to one endpoint, in arrival order.
    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| Endpoint::from_path(&r.path) == Some(endpoint))
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests (issued traces and rules stay).
    pub fn clear_requests(&self) {
        self.shared.lock().clear_requests();
        self.shared.notify();
    }

    /// How many times the records have changed so far: a request arrived, an answer was
    /// recorded, records were forgotten. Only ever grows; pass it to
    /// [`wait_for_change`](Self::wait_for_change) to wait for the next change.
    pub fn changes(&self) -> u64 {
        self.shared.lock().changes
    }

    /// Waits until [`changes`](Self::changes) differs from `seen`, or `timeout` passes;
    /// answers the count it then has (equal to `seen` after a timeout). Wakes on every
    /// change, no polling.
    ///
    /// ```
    /// # async fn demo() -> Result<(), fabraix::Error> {
    /// use std::time::Duration;
    /// use fabraix::testing::MockServer;
    /// use fabraix::AgentId;
    ///
    /// let server = MockServer::start().await?;
    /// let seen = server.changes();
    /// assert_eq!(server.wait_for_change(seen, Duration::from_millis(1)).await, seen);
    /// server.client().register_agent_run(AgentId::from_name("demo")?, "").await?;
    /// // The request and its answer were recorded: no wait.
    /// let now = server.wait_for_change(seen, Duration::from_secs(30)).await;
    /// assert!(now > seen);
    /// # Ok(()) }
    /// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn wait_for_change(&self, seen: u64, timeout: Duration) -> u64 {
        let wait = async {
            loop {
                let notified = self.shared.recorded_async.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let changes = self.shared.lock().changes;
                if changes != seen {
                    return changes;
                }
                notified.await;
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(changes) => changes,
            Err(_) => self.shared.lock().changes,
        }
    }

    /// The trace ids issued so far, in the order they were issued (with
    /// [`MockServerBuilder::keep_runs`], those still kept).
    pub fn issued_traces(&self) -> Vec<TraceId> {
        self.shared
            .lock()
            .issued
            .iter()
            .copied()
            .map(TraceId::from_uuid)
            .collect()
    }

    /// Makes `/check` answer `is_safe: false` with `reasoning` for the action `name`
    /// (every other action is safe).
    pub fn block_action(&self, name: impl Into<String>, reasoning: impl Into<String>) {
        self.shared
            .lock()
            .blocked
            .insert(name.into(), reasoning.into());
    }

    /// Answers the next `count` requests (that `fault` aims at) with `fault` instead of the
    /// API's logic. Faults queue up in the order they were added.
    pub fn fail_next(&self, count: usize, fault: Fault) {
        if count > 0 {
            self.shared.lock().faults.push_back(PlannedFault {
                fault,
                remaining: count,
            });
        }
    }

    /// How many requests were answered 429 by the rate limit (see
    /// [`MockServerBuilder::rate_limit`]).
    pub fn rate_limited(&self) -> u64 {
        self.shared.lock().limiter.refused
    }

    /// Drops the faults not yet used.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Stops listening and closes every open connection, so that connecting is refused,
    /// until [`resume`](Self::resume).
    pub fn pause(&self) -> Result<(), Error> {
        self.control.command(server::Command::Pause)
    }

    /// Listens again, on the same port.
    pub fn resume(&self) -> Result<(), Error> {
        self.control.command(server::Command::Resume)
    }

    /// Waits until `done` holds for the recorded requests, or `timeout` passes; answers
    /// whether it held. Wakes on every change to the records (a request, an answer), no
    /// polling. `done` runs with the server's
    /// records locked: it must not call the server.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[RecordedRequest]) -> bool,
    ) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.recorded_async.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if done(&self.shared.lock().requests) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// [`wait_for`](Self::wait_for) for synchronous code (`done` must not call the server).
    pub fn wait_for_blocking(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[RecordedRequest]) -> bool,
    ) -> bool {
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(86_400));
        let mut state = self.shared.lock();
        loop {
            if done(&state.requests) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.shared.recorded.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

fn client_builder(api_key: &str, addr: SocketAddr) -> ClientBuilder {
    Client::builder()
        .api_key(api_key)
        .base_url(format!("http://{addr}/v1"))
        .backoff(Duration::from_millis(10), Duration::from_millis(200))
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}
