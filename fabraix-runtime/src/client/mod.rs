//! [`Client`]: the connection to the Fabraix API, and the process-wide client.

mod builder;
mod conversations;
mod global;
mod stats;

use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::Utc;
use once_cell::sync::OnceCell;

pub use builder::ClientBuilder;
pub(crate) use global::built_global_client;
pub use global::{InitGuard, global_client, init};
pub use stats::{FleetStats, Stats};

use crate::api::{self, Api, Settings, io_thread};
use crate::export::{Counters, EventStats, Exporter};
use crate::model::wire::{self, Endpoint};
use crate::model::{
    Action, AgentId, ClientId, Error, Event, EventReceipt, IntoAgentId, RateLimit, Trace, TraceId,
    Verdict,
};

/// A connection to the Fabraix API: its settings and its connection pools (one for queued
/// events, one for the calls an agent waits for).
///
/// Cheap to clone (an `Arc` inside); clones share the pools and the event queue. Requests
/// run on the SDK's own threads, so a client works from any async runtime, from
/// synchronous code, and across runtimes that come and go (every `#[tokio::test]` has its
/// own).
///
/// ```no_run
/// # async fn demo() -> Result<(), fabraix::Error> {
/// use fabraix::Client;
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
    id: ClientId,
    api: Arc<Api>,
    counters: Arc<Counters>,
    /// Started by the first queued event, or at once with a spool.
    exporter: OnceCell<Exporter>,
    #[cfg(feature = "spool")]
    spool: Option<crate::export::SpoolSettings>,
    /// The runs of the conversations served through this client.
    conversations: conversations::Conversations,
}

/// Every client alive, by id, so that a [`Trace`] carried anywhere finds the client that
/// registered it.
static CLIENTS: Mutex<Vec<(ClientId, Weak<Inner>)>> = Mutex::new(Vec::new());

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

    fn from_settings(
        settings: Settings,
        #[cfg(feature = "spool")] spool: Option<crate::export::SpoolSettings>,
        conversations: conversations::Limits,
    ) -> Result<Self, Error> {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = ClientId(NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let api = Api::new(settings)?;
        let conversations = conversations::Conversations::new(
            conversations,
            api.settings().key(),
            api.options().deadline,
            #[cfg(feature = "redis")]
            api.fleet_link(),
        );
        let inner = Arc::new(Inner {
            id,
            conversations,
            api: Arc::new(api),
            counters: Arc::new(Counters::default()),
            exporter: OnceCell::new(),
            #[cfg(feature = "spool")]
            spool,
        });
        #[cfg(feature = "spool")]
        if inner.spool.is_some() {
            // What earlier processes left in the spool is sent from the start. Should the
            // SDK's thread be unavailable, the first queued event reports it.
            let _ = Self::start_exporter(&inner);
        }
        let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len().is_power_of_two() {
            clients.retain(|(_, client)| client.strong_count() > 0);
        }
        clients.push((id, Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// The live client with this id.
    pub(crate) fn by_id(id: ClientId) -> Option<Self> {
        if id == ClientId::default() {
            return None;
        }
        let clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
        let (_, client) = clients.iter().find(|(candidate, _)| *candidate == id)?;
        client.upgrade().map(|inner| Self { inner })
    }

    pub(crate) fn id(&self) -> ClientId {
        self.inner.id
    }

    #[cfg(test)]
    pub(crate) fn settings(&self) -> &Settings {
        self.inner.api.settings()
    }

    /// The API's base URL, e.g. `https://dev.fabraix.com/v1`.
    pub fn base_url(&self) -> &str {
        self.inner.api.settings().base_url.as_str()
    }

    /// Whether the client is disabled (`FABRAIX_DISABLED=1`): it never sends anything.
    pub fn is_disabled(&self) -> bool {
        self.inner.api.options().disabled
    }

    /// The same run, with its events and checks going through this client wherever the
    /// trace is carried (e.g. a trace read from another process's headers).
    pub fn bind(&self, trace: Trace) -> Trace {
        trace.bound_to(self.id())
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
        let (agent_id, body) = self.register_body(agent_id, system_prompt)?;
        let api = self.inner.api.clone();
        let answer =
            io_thread::run_call(async move { api.call(Endpoint::RegisterAgentRun, body).await })
                .await??;
        self.registered(agent_id, &answer)
    }

    /// [`register_agent_run`](Self::register_agent_run) for synchronous code: blocks this
    /// thread until the run is registered. Works with no async runtime and on a thread of
    /// one; the request runs on the SDK's own thread for agent calls.
    pub fn register_agent_run_blocking(
        &self,
        agent_id: impl IntoAgentId,
        system_prompt: &str,
    ) -> Result<Trace, Error> {
        let (agent_id, body) = self.register_body(agent_id, system_prompt)?;
        let api = self.inner.api.clone();
        let answer =
            io_thread::block_on_call(
                async move { api.call(Endpoint::RegisterAgentRun, body).await },
            )??;
        self.registered(agent_id, &answer)
    }

    fn register_body(
        &self,
        agent_id: impl IntoAgentId,
        system_prompt: &str,
    ) -> Result<(AgentId, bytes::Bytes), Error> {
        let agent_id = agent_id.into_agent_id()?;
        if self.is_disabled() {
            return Err(Error::Disabled);
        }
        let body = wire::register_body(agent_id, system_prompt, Utc::now())?;
        Ok((agent_id, body))
    }

    fn registered(&self, agent_id: AgentId, answer: &[u8]) -> Result<Trace, Error> {
        Ok(self.bind(api::trace(agent_id, answer)?))
    }

    /// Queues an event of the run `trace_id` for the background exporter and returns at
    /// once; [`fabraix::log_event`](crate::log_event) does this for the current run.
    ///
    /// Never waits on the network. A full queue drops the event, counts it, and returns
    /// [`Error::QueueFull`]; a disabled client lets it go and counts it
    /// ([`EventStats::untraced`]).
    pub fn queue_event(&self, trace_id: TraceId, event: Event) -> Result<(), Error> {
        if self.is_disabled() {
            self.let_go_untraced();
            return Ok(());
        }
        self.exporter()?.enqueue(trace_id, event)
    }

    /// Counts an event let go because its run has no trace ([`EventStats::untraced`]).
    pub(crate) fn let_go_untraced(&self) {
        self.inner.counters.let_go_untraced();
    }

    fn exporter(&self) -> Result<&Exporter, Error> {
        Self::start_exporter(&self.inner)
    }

    fn start_exporter(inner: &Inner) -> Result<&Exporter, Error> {
        inner.exporter.get_or_try_init(|| {
            #[cfg(feature = "spool")]
            if let Some(spool) = &inner.spool {
                return Exporter::start_spooled(inner.api.clone(), inner.counters.clone(), spool);
            }
            Exporter::start(inner.api.clone(), inner.counters.clone())
        })
    }

    /// Sends one event of the run `trace_id` now, under the retry policy, and returns the
    /// server's receipt. Unlike [`queue_event`](Self::queue_event), this waits.
    pub async fn send_event(
        &self,
        trace_id: TraceId,
        event: &Event,
    ) -> Result<EventReceipt, Error> {
        if self.is_disabled() {
            return Err(Error::Disabled);
        }
        let body = wire::event_body(
            event.kind().as_str(),
            trace_id,
            wire::unix_seconds(Utc::now()),
            event.content(),
            event.schema(),
        )?;
        let api = self.inner.api.clone();
        let answer =
            io_thread::run_call(async move { api.call(Endpoint::Event, body).await }).await??;
        api::receipt(&answer)
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
        let api = self.inner.api.clone();
        let answer =
            io_thread::run_call(async move { api.call(Endpoint::Check, body).await }).await??;
        api::verdict(&answer)
    }

    /// [`check_action`](Self::check_action) for synchronous code: blocks this thread.
    pub fn check_action_blocking(
        &self,
        trace_id: TraceId,
        action: &Action,
    ) -> Result<Verdict, Error> {
        let body = self.check_body(trace_id, action)?;
        let api = self.inner.api.clone();
        let answer =
            io_thread::block_on_call(async move { api.call(Endpoint::Check, body).await })??;
        api::verdict(&answer)
    }

    fn check_body(&self, trace_id: TraceId, action: &Action) -> Result<bytes::Bytes, Error> {
        if self.is_disabled() {
            return Err(Error::Disabled);
        }
        wire::event_body(
            wire::CHECK_EVENT_TYPE,
            trace_id,
            wire::unix_seconds(Utc::now()),
            action.content()?,
            &action.function_schema()?,
        )
    }

    /// The event exporter's counters: the `events` of [`stats`](Self::stats).
    #[deprecated(
        since = "0.1.0",
        note = "one name for what a client has done: use `stats().events`"
    )]
    pub fn event_stats(&self) -> EventStats {
        self.inner.counters.stats()
    }

    /// What the client has done: its event counters (queued, sent, failed, dropped, still
    /// in the queue, let go for want of a trace), and how the key's rate limit went (429s
    /// received, time spent waiting for the budget, the current pace).
    pub fn stats(&self) -> Stats {
        let budget = self.inner.api.budget_stats();
        Stats {
            events: self.inner.counters.stats(),
            rate_limited: budget.rate_limited,
            waited_for_budget: budget.waited,
            pace: budget.pace,
            rate_limit: self.rate_limit().clone(),
            probes: budget.probes,
            failed_fast: budget.failed_fast,
            fleet: self.inner.api.fleet_stats(),
        }
    }

    /// The rate limit this client keeps to (see [`ClientBuilder::rate_limit`]).
    pub fn rate_limit(&self) -> &RateLimit {
        self.inner.api.rate_limit()
    }

    /// Waits, up to `timeout`, until every event queued before this call has been sent or
    /// has failed; answers whether that happened in time. With a spool, the events found
    /// there when the client started count as queued before, and the spool is committed
    /// afterwards (what is left is on disk, what was delivered is gone from it).
    pub async fn flush(&self, timeout: Duration) -> bool {
        self.flush_events(None, timeout).await
    }

    /// [`flush`](Self::flush) for synchronous code: blocks this thread.
    pub fn flush_blocking(&self, timeout: Duration) -> bool {
        self.flush_events_blocking(None, timeout)
    }

    /// Waits for the events of the run `trace_id` queued so far, as an agent fn does when
    /// it returns: only while they can all be sent within `timeout` at the key's current
    /// pace, and at most `timeout`. Otherwise (the key is throttled, the queue is long) it
    /// returns at once, and the events are sent in the background; a 429 that pauses the
    /// events while it waits is looked at as it comes, so it returns then rather than wait
    /// the pause out. Answers whether they were all sent (or failed).
    ///
    /// For integrations that end runs of their own; `#[fabraix::agent]` fns do this on
    /// return with the client's flush timeout.
    pub async fn flush_run(&self, trace_id: TraceId, timeout: Duration) -> bool {
        match self.inner.exporter.get() {
            Some(exporter) => {
                let api = self.inner.api.clone();
                exporter.flush_run(api, trace_id, timeout).await || self.in_queue() == 0
            }
            None => true,
        }
    }

    /// Whether an agent fn returning now should wait for its run's events: some are
    /// queued, and at the current pace they can all be sent within `timeout`. Otherwise
    /// (the key is throttled, the queue is long) the fn returns at once and the events
    /// are sent in the background.
    pub(crate) fn worth_flushing(&self, timeout: Duration) -> bool {
        crate::export::worth_waiting(&self.inner.api, &self.inner.counters, timeout)
    }

    /// At process exit: events may use the whole budget; waits up to the shutdown timeout.
    pub(crate) fn flush_at_exit(&self) -> bool {
        // With a spool, also when nothing is queued: the last deliveries' deletions and
        // what is queued are committed before the process exits.
        let spooled = self.inner.exporter.get().is_some_and(Exporter::is_spooled);
        if self.in_queue() == 0 && !spooled {
            return true;
        }
        self.inner.api.drain();
        let timeout = self.inner.api.options().shutdown_timeout;
        self.flush_events_blocking(None, timeout)
    }

    /// At process exit, after [`flush_at_exit`](Self::flush_at_exit): commits and closes
    /// the spool, if any, so that the next process alone sends what is left.
    pub(crate) fn close_at_exit(&self) {
        if let Some(exporter) = self.inner.exporter.get()
            && !exporter.close_spool_blocking(Duration::from_secs(2))
        {
            tracing::warn!(target: "fabraix", "fabraix spool was not closed in time at exit");
        }
    }

    /// The flush timeout of agent fns.
    pub(crate) fn flush_timeout(&self) -> Duration {
        self.inner.api.options().flush_timeout
    }

    /// Flushes one run's events as an agent fn does on return, bounded by the client's
    /// flush timeout (see [`flush_run`](Self::flush_run)).
    pub(crate) async fn flush_trace(&self, trace_id: TraceId) -> bool {
        self.flush_run(trace_id, self.flush_timeout()).await
    }

    /// [`flush_trace`](Self::flush_trace), blocking.
    pub(crate) fn flush_trace_blocking(&self, trace_id: TraceId) -> bool {
        match self.inner.exporter.get() {
            Some(exporter) => {
                let api = self.inner.api.clone();
                exporter.flush_run_blocking(api, trace_id, self.flush_timeout())
                    || self.in_queue() == 0
            }
            None => true,
        }
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

    /// Events of this client queued and not yet sent or failed.
    pub(crate) fn in_queue(&self) -> usize {
        self.inner.counters.in_queue()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("settings", &self.inner.api)
            .finish_non_exhaustive()
    }
}
