//! [`Client`]: the connection to the Fabraix API.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use serde::Serialize;

use once_cell::sync::OnceCell;

use crate::action::{Action, Verdict};
use crate::config::{ClientBuilder, Config};
use crate::context::{RunContext, Slot, Traced};
use crate::error::Error;
use crate::event::{Event, EventReceipt};
use crate::exporter::{EventStats, Exporter};
use crate::ids::{AgentId, IntoAgentId, TraceId};
use crate::io;
use crate::trace::Trace;
use crate::transport;
use crate::wire::{
    self, CheckResponse, EventRequest, EventResponse, RegisterRequest, RegisterResponse,
};

/// A connection to the Fabraix API: its settings and one shared connection pool.
///
/// Cheap to clone (an `Arc` inside); clones share the pool. Requests run on the SDK's own
/// runtime, so a client works from any async runtime, from synchronous code, and across
/// runtimes that come and go (every `#[tokio::test]` has its own).
///
/// ```no_run
/// # async fn demo() -> Result<(), fabraix_runtime::Error> {
/// use fabraix_runtime::Client;
///
/// let client = Client::from_env()?;
/// let trace = client
///     .register_agent_run("support-bot", "You are a support assistant.")
///     .await?;
/// println!("run {trace} registered at {}", trace.registered_at());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    http: reqwest::Client,
    /// Bounds the direct calls (register, check, `log_event`) in flight at once.
    permits: tokio::sync::Semaphore,
    /// Started by the first queued event.
    exporter: OnceCell<Exporter>,
}

impl Client {
    /// A builder with every default; see [`ClientBuilder`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from the environment (`FABRAIX_API_KEY`, `FABRAIX_BASE_URL`,
    /// `FABRAIX_TIMEOUT_MS`, `FABRAIX_MAX_RETRIES`, `FABRAIX_DISABLED`).
    pub fn from_env() -> Result<Self, Error> {
        ClientBuilder::from_env().build()
    }

    pub(crate) fn from_config(config: Config) -> Result<Self, Error> {
        if config.base_url.scheme() == "https"
            && !cfg!(any(feature = "rustls", feature = "native-tls"))
        {
            return Err(Error::Config(
                "an https:// base url needs the `rustls` or `native-tls` feature".into(),
            ));
        }
        let mut http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .tcp_nodelay(true)
            // A redirect would carry `x-api-key` and the body to wherever it points, even
            // from https to plain http: the API never redirects, so a 3xx is an error.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fabraix-rust/", env!("CARGO_PKG_VERSION")));
        if crate::config::is_loopback(&config.base_url) {
            // A proxy from the environment must not capture loopback traffic.
            http = http.no_proxy();
        }
        let http = http
            .build()
            .map_err(|e| Error::Config(format!("could not build the http client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                permits: tokio::sync::Semaphore::new(config.max_in_flight),
                config,
                http,
                exporter: OnceCell::new(),
            }),
        })
    }

    #[cfg(test)]
    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The API's base URL, e.g. `https://dev.fabraix.com/v1`.
    pub fn base_url(&self) -> &str {
        self.inner.config.base_url.as_str()
    }

    /// Whether the client is disabled (`FABRAIX_DISABLED=1`): it never sends anything.
    pub fn is_disabled(&self) -> bool {
        self.inner.config.disabled
    }

    /// Starts a run: `POST /register-agent-run` with the agent id (a name, a UUID, or an
    /// [`AgentId`]), the current UTC time (`YYYY-MM-DDTHH:mm:ss.sssZ`) and the system
    /// prompt.
    ///
    /// Retried on 429, 500, 502, 503, 504, connection errors and timeouts. The API has no
    /// idempotency key, so a retry after a request that reached the server but whose answer
    /// was lost registers a second run; the one returned is the one answered.
    ///
    /// The system prompt is sent, never logged.
    pub async fn register_agent_run(
        &self,
        agent_id: impl IntoAgentId,
        system_prompt: &str,
    ) -> Result<Trace, Error> {
        let agent_id = agent_id.into_agent_id()?;
        let body = self.register_body(agent_id, system_prompt)?;
        let client = self.clone();
        io::run(async move { client.send_register(agent_id, body).await }).await?
    }

    /// [`register_agent_run`](Self::register_agent_run) for synchronous code: blocks this
    /// thread until the run is registered. Works with no async runtime and on a thread of
    /// one; the request runs on the SDK's own runtime.
    pub fn register_agent_run_blocking(
        &self,
        agent_id: impl IntoAgentId,
        system_prompt: &str,
    ) -> Result<Trace, Error> {
        let agent_id = agent_id.into_agent_id()?;
        let body = self.register_body(agent_id, system_prompt)?;
        let client = self.clone();
        io::block_on(async move { client.send_register(agent_id, body).await })?
    }

    fn register_body(&self, agent_id: AgentId, system_prompt: &str) -> Result<Bytes, Error> {
        if self.is_disabled() {
            return Err(Error::Disabled);
        }
        encode(
            "the registration",
            &RegisterRequest {
                agent_id,
                timestamp: wire::iso_millis(Utc::now()),
                system_prompt,
            },
        )
    }

    /// One call under the client's settings and permits; runs on the SDK's runtime.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &'static str,
        body: Bytes,
    ) -> Result<T, Error> {
        let inner = &self.inner;
        transport::post(&inner.http, &inner.config, &inner.permits, endpoint, body).await
    }

    async fn send_register(&self, agent_id: AgentId, body: Bytes) -> Result<Trace, Error> {
        const ENDPOINT: &str = "/register-agent-run";
        let response: RegisterResponse = self.post(ENDPOINT, body).await?;
        response.into_trace(agent_id)
    }

    /// Queues an event of the run `trace_id` for the background exporter and returns at
    /// once; [`fabraix::log_event`](crate::log_event) does this for the current run.
    ///
    /// Never waits on the network. A full queue drops the event, counts it, and returns
    /// [`Error::QueueFull`]; a disabled client drops it quietly.
    pub fn queue_event(&self, trace_id: TraceId, event: Event) -> Result<(), Error> {
        if self.is_disabled() {
            return Ok(());
        }
        self.exporter()?.enqueue(trace_id, event)
    }

    fn exporter(&self) -> Result<&Exporter, Error> {
        self.inner
            .exporter
            .get_or_try_init(|| Exporter::start(self.inner.http.clone(), self.inner.config.clone()))
    }

    /// Sends one event of the run `trace_id` now, under the retry policy, and returns the
    /// server's receipt. Unlike [`queue_event`](Self::queue_event), this waits.
    pub async fn log_event(&self, trace_id: TraceId, event: &Event) -> Result<EventReceipt, Error> {
        const ENDPOINT: &str = "/event";
        if self.is_disabled() {
            return Err(Error::Disabled);
        }
        let body = encode(
            "an event",
            &EventRequest {
                event_type: event.kind().as_str(),
                trace_id,
                timestamp: wire::unix_seconds(Utc::now()),
                content: event.content(),
                schema: event.schema(),
            },
        )?;
        let client = self.clone();
        let response: EventResponse =
            io::run(async move { client.post(ENDPOINT, body).await }).await??;
        response.into_receipt()
    }

    /// Asks Fabraix whether the run `trace_id` may take `action`: `POST /check`, awaited
    /// directly (never queued), under the retry policy.
    ///
    /// Fails closed: when no verdict can be had (the API is down after the retries, its
    /// answer is malformed, the arguments cannot be encoded) the result is an `Err`, never
    /// a verdict. A verdict that blocks the action is `Ok` with `is_safe == false`; see
    /// [`Verdict::require_safe`].
    pub async fn check_action(&self, trace_id: TraceId, action: &Action) -> Result<Verdict, Error> {
        let body = self.check_body(trace_id, action)?;
        let client = self.clone();
        io::run(async move { client.send_check(body).await }).await?
    }

    /// [`check_action`](Self::check_action) for synchronous code: blocks this thread.
    pub fn check_action_blocking(
        &self,
        trace_id: TraceId,
        action: &Action,
    ) -> Result<Verdict, Error> {
        let body = self.check_body(trace_id, action)?;
        let client = self.clone();
        io::block_on(async move { client.send_check(body).await })?
    }

    fn check_body(&self, trace_id: TraceId, action: &Action) -> Result<Bytes, Error> {
        if self.is_disabled() {
            return Err(Error::Disabled);
        }
        encode(
            "an action check",
            &EventRequest {
                event_type: "action_check",
                trace_id,
                timestamp: wire::unix_seconds(Utc::now()),
                content: action.content()?,
                schema: &action.function_schema()?,
            },
        )
    }

    async fn send_check(&self, body: Bytes) -> Result<Verdict, Error> {
        const ENDPOINT: &str = "/check";
        let response: CheckResponse = self.post(ENDPOINT, body).await?;
        response.into_verdict()
    }

    /// Runs `future` with `trace` as the current run, its events and checks going through
    /// this client: what `#[fabraix::agent(client = …)]` does, for a run registered by hand.
    pub fn scope<F: std::future::Future>(&self, trace: Trace, future: F) -> Traced<F> {
        self.run(trace).scope(future)
    }

    /// [`scope`](Self::scope) for synchronous code.
    pub fn sync_scope<R>(&self, trace: Trace, f: impl FnOnce() -> R) -> R {
        self.run(trace).sync_scope(f)
    }

    fn run(&self, trace: Trace) -> RunContext {
        RunContext::new(Slot::Traced(trace), Some(self.clone()))
    }

    /// The event exporter's counters: queued, sent, failed, dropped, still in the queue.
    pub fn event_stats(&self) -> EventStats {
        self.inner
            .exporter
            .get()
            .map(Exporter::stats)
            .unwrap_or_default()
    }

    /// Waits, up to `timeout`, until every event queued before this call has been sent or
    /// has failed; answers whether that happened in time.
    pub async fn flush(&self, timeout: Duration) -> bool {
        self.flush_events(None, timeout).await
    }

    /// [`flush`](Self::flush) for synchronous code: blocks this thread.
    pub fn flush_blocking(&self, timeout: Duration) -> bool {
        self.flush_events_blocking(None, timeout)
    }

    /// Flushes one run's events, bounded by the client's flush timeout.
    pub(crate) async fn flush_trace(&self, trace_id: TraceId) -> bool {
        let timeout = self.inner.config.flush_timeout;
        self.flush_events(Some(trace_id), timeout).await
    }

    /// [`flush_trace`](Self::flush_trace), blocking.
    pub(crate) fn flush_trace_blocking(&self, trace_id: TraceId) -> bool {
        self.flush_events_blocking(Some(trace_id), self.inner.config.flush_timeout)
    }

    /// Nothing to wait for when no event was ever queued.
    async fn flush_events(&self, trace: Option<TraceId>, timeout: Duration) -> bool {
        match self.inner.exporter.get() {
            Some(exporter) => exporter.flush(trace, timeout).await,
            None => true,
        }
    }

    fn flush_events_blocking(&self, trace: Option<TraceId>, timeout: Duration) -> bool {
        self.inner
            .exporter
            .get()
            .is_none_or(|exporter| exporter.flush_blocking(trace, timeout))
    }

    /// Whether events of this client wait in its queue.
    pub(crate) fn has_queued_events(&self) -> bool {
        self.inner.exporter.get().is_some_and(|e| e.in_queue() > 0)
    }
}

pub(crate) fn encode(what: &'static str, value: &impl Serialize) -> Result<Bytes, Error> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::Encode {
            what,
            message: e.to_string(),
        })
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}
