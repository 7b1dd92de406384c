//! One [`Api`] per client: the settings, the http connection pool, and what every request
//! to Fabraix shares. It owns "send this request, retry what may succeed, read the
//! answer"; the client and the event exporter both send through it.
//!
//! - `settings.rs`: the validated settings and their defaults;
//! - `lane.rs`: who asks for the budget (agent calls, queued events);
//! - `budget.rs`: the key's rate budget, shared by every request, agent calls first;
//! - `fleet/` and `shared.rs` (feature `redis`): the budget shared by every process with
//!   the key and the same Redis;
//! - `http.rs`: one attempt over the network;
//! - `retry.rs`: when to try again, and how long to wait;
//! - `answer.rs`: success bodies decoded, error statuses read;
//! - `scrub.rs`: keys kept out of everything shown;
//! - `io_thread.rs`: the SDK's own threads, where every request runs (events on one,
//!   the calls an agent waits for on the other).

mod answer;
mod budget;
#[cfg(test)]
mod extremes;
#[cfg(feature = "redis")]
mod fleet;
mod http;
pub(crate) mod io_thread;
mod lane;
mod retry;
pub(crate) mod scrub;
mod settings;
#[cfg(feature = "redis")]
mod shared;

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Semaphore;

pub(crate) use answer::{receipt, trace, verdict};
pub(crate) use budget::BudgetStats;
#[cfg(feature = "__bench")]
pub use fleet::FleetBench;
#[cfg(feature = "redis")]
pub(crate) use fleet::{Fingerprint, Link};
pub(crate) use http::Failure;
pub(crate) use retry::RetryPolicy;
pub use settings::DEFAULT_BASE_URL;
pub(crate) use settings::{Options, Settings, shown_url};

use budget::{Budget, Slot};
use lane::Lane;

use crate::model::wire::Endpoint;
use crate::model::{Error, RateLimit};

/// The connection to the API that one client and its exporter share.
pub(crate) struct Api {
    settings: Settings,
    /// The connections of queued events, driven on the exporter's thread.
    http: reqwest::Client,
    /// The connections of the calls an agent waits for: a pool of their own, driven on
    /// their own thread.
    calls_http: reqwest::Client,
    /// Bounds the calls an agent waits for (register, check, direct events) in flight at
    /// once, so a burst of runs shares a few connections instead of opening one each.
    permits: Semaphore,
    /// The key's rate budget, shared by every request.
    budget: Budget,
    /// The key's budget across processes, through Redis (`FABRAIX_REDIS_URL`).
    #[cfg(feature = "redis")]
    shared: Option<fleet::SharedBudget>,
}

impl Api {
    pub fn new(settings: Settings) -> Result<Self, Error> {
        let http = http::build_client(&settings)?;
        let calls_http = http::build_client(&settings)?;
        #[cfg(feature = "redis")]
        let shared = fleet::SharedBudget::from_settings(&settings)?;
        Ok(Self {
            permits: Semaphore::new(settings.options.max_in_flight),
            budget: Budget::new(settings.rate_limit.clone()),
            #[cfg(feature = "redis")]
            shared,
            settings,
            http,
            calls_http,
        })
    }

    /// A slot of the key's budget across processes, when it is shared: answers whether
    /// the request is its lane's probe there (its outcome is then reported).
    async fn admit_shared(&self, lane: Lane, deadline: Option<Instant>) -> Result<bool, Error> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            return match shared::admit(shared, lane, deadline).await {
                Ok(admission) => {
                    self.budget.note_shared_wait(admission.waited, false);
                    Ok(admission.probe)
                }
                Err(refusal) => {
                    self.budget.note_shared_wait(refusal.waited, refusal.paused);
                    Err(refusal.into_error())
                }
            };
        }
        let _ = (lane, deadline);
        Ok(false)
    }

    /// Tells the budget across processes what a request's answer was: a 429 pauses the
    /// lane everywhere; a probe's success lets the lane go everywhere.
    async fn report_shared(&self, lane: Lane, probe: bool, throttled: Option<Duration>) {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            match throttled {
                Some(wait) => shared.report_throttled(lane, wait, probe).await,
                None if probe => shared.report_probe_ok(lane).await,
                None => {}
            }
        }
        let _ = (lane, probe, throttled);
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn options(&self) -> &Options {
        &self.settings.options
    }

    /// The connection to Redis (the shared budget's), when `FABRAIX_REDIS_URL` is set.
    #[cfg(feature = "redis")]
    pub(crate) fn fleet_link(&self) -> Option<fleet::Link> {
        self.shared.as_ref().map(|s| s.link().clone())
    }

    /// A call an agent waits for: sent when the rate budget allows (agent calls before
    /// queued events), under the retry policy and within the call's deadline, answering
    /// the success body. A 429 pauses the agent lane of the key; the retry waits for it with
    /// the other agent calls. Run it on the agent calls' thread.
    pub async fn call(&self, endpoint: Endpoint, body: Bytes) -> Result<Vec<u8>, Error> {
        let options = self.options();
        let started = Instant::now();
        let deadline = started.checked_add(options.deadline);
        let remaining = || options.deadline.saturating_sub(started.elapsed());
        let mut retry = 0u32;
        loop {
            let ticket = self.budget.acquire(Lane::Agent, deadline).await?;
            let slot = Slot::new(&self.budget, ticket);
            let probe = self.admit_shared(Lane::Agent, deadline).await?;
            let outcome = match tokio::time::timeout(remaining(), self.permits.acquire()).await {
                Ok(Ok(_permit)) => {
                    let limit = options.timeout.min(remaining());
                    http::attempt(
                        &self.calls_http,
                        &self.settings,
                        endpoint,
                        body.clone(),
                        limit,
                    )
                    .await
                }
                _ => {
                    return Err(Error::Timeout {
                        after: options.deadline,
                    });
                }
            };
            let failure = match outcome {
                Ok(bytes) => {
                    slot.succeeded();
                    self.report_shared(Lane::Agent, probe, None).await;
                    return Ok(bytes);
                }
                Err(failure) => failure,
            };
            if let Error::RateLimited { .. } = failure.error {
                // The agent lane pauses: this call's next attempt waits for it with every
                // other agent call, and fails at once when the pause outlasts its deadline.
                slot.throttled(failure.retry_after, &options.retry);
                let pause = options.retry.delay(retry, failure.retry_after);
                self.report_shared(Lane::Agent, probe, Some(pause)).await;
                if retry >= options.retry.max_retries || remaining().is_zero() {
                    return Err(failure.error);
                }
                retry += 1;
                continue;
            }
            drop(slot);
            if !failure.error.is_retryable() || retry >= options.retry.max_retries {
                return Err(failure.error);
            }
            let wait = options.retry.delay(retry, failure.retry_after);
            if wait >= remaining() {
                tracing::debug!(
                    target: "fabraix",
                    endpoint = endpoint.path(),
                    error = %failure.error,
                    "not retrying: the wait would pass the call's deadline"
                );
                return Err(failure.error);
            }
            tracing::debug!(
                target: "fabraix",
                endpoint = endpoint.path(),
                error = %failure.error,
                retry = retry + 1,
                wait_ms = wait.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    /// One attempt at a queued event, for the exporter (which keeps its own retry state),
    /// when the budget allows: after every waiting agent call, and leaving a share of each
    /// window to them.
    pub async fn send_event_once(&self, body: Bytes) -> Result<Vec<u8>, Failure> {
        let ticket = self.budget.acquire(Lane::Events, None).await?;
        let slot = Slot::new(&self.budget, ticket);
        let probe = self.admit_shared(Lane::Events, None).await?;
        let outcome = http::attempt(
            &self.http,
            &self.settings,
            Endpoint::Event,
            body,
            self.options().timeout,
        )
        .await;
        match &outcome {
            Ok(_) => {
                slot.succeeded();
                self.report_shared(Lane::Events, probe, None).await;
            }
            Err(failure) if matches!(failure.error, Error::RateLimited { .. }) => {
                let policy = &self.options().retry;
                slot.throttled(failure.retry_after, policy);
                let pause = policy.delay(0, failure.retry_after);
                self.report_shared(Lane::Events, probe, Some(pause)).await;
            }
            Err(_) => drop(slot),
        }
        outcome
    }

    /// The key's rate limit.
    pub fn rate_limit(&self) -> &RateLimit {
        self.budget.limit()
    }

    /// How long `events` queued events would take to be sent at the current pace.
    pub fn time_to_send(&self, events: usize) -> Duration {
        self.budget.time_to_send(events)
    }

    /// Resolves at the next pause of a lane of the key; enable it before looking.
    pub fn next_pause(&self) -> tokio::sync::futures::Notified<'_> {
        self.budget.next_pause()
    }

    /// Process exit: queued events may use the whole budget from now on.
    pub fn drain(&self) {
        self.budget.drain();
    }

    pub fn budget_stats(&self) -> BudgetStats {
        self.budget.stats()
    }

    /// How the key's budget is shared across processes.
    pub fn fleet_stats(&self) -> FleetStats {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let link = shared.stats();
            return FleetStats {
                configured: true,
                shared: link.shared,
                round_trip_p50: link.round_trip_p50,
                round_trip_p99: link.round_trip_p99,
                fallbacks: link.fallbacks,
                reconnects: link.reconnects,
            };
        }
        FleetStats::default()
    }
}

/// How the key's budget is shared with the other processes that use the key and the same
/// Redis (feature `redis`): all zero and `false` without one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetStats {
    /// A Redis URL was given: this client shares the key's budget when it can.
    pub configured: bool,
    /// Requests go to the shared budget right now (Redis connected and answering in time).
    /// `false` while the client keeps to its in-process budget alone.
    pub shared: bool,
    /// Redis's round-trip time for one acquisition, over the latest 1,024: the median…
    pub round_trip_p50: Option<Duration>,
    /// …and the 99th percentile.
    pub round_trip_p99: Option<Duration>,
    /// Requests that kept to the in-process budget because Redis was unavailable (not
    /// connected, an error, or slower than `redis_timeout`).
    pub fallbacks: u64,
    /// Times the budget was shared again after Redis was lost.
    pub reconnects: u64,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.settings, f)
    }
}

/// The response decoders, for fuzzing and property tests (feature `__fuzz`, or
/// `cfg(fuzzing)`). Not public API.
#[cfg(any(fuzzing, feature = "__fuzz"))]
pub(crate) mod fuzz {
    use std::time::{Duration, SystemTime};

    use crate::model::{AgentId, Error, EventReceipt, Trace, Verdict};

    /// The key the decoders scrub from what they quote.
    pub const KEY: &str = "fuzz-secret-key";

    fn ready() {
        static REMEMBERED: std::sync::OnceLock<super::scrub::KeyGuard> = std::sync::OnceLock::new();
        REMEMBERED.get_or_init(|| super::scrub::remember(KEY));
    }

    /// A `/register-agent-run` success body, as the client reads it.
    pub fn register(body: &[u8]) -> Result<Trace, Error> {
        ready();
        super::answer::trace(AgentId::from_uuid(uuid::Uuid::nil()), body)
    }

    /// An `/event` success body.
    pub fn event(body: &[u8]) -> Result<EventReceipt, Error> {
        ready();
        super::answer::receipt(body)
    }

    /// A `/check` success body.
    pub fn check(body: &[u8]) -> Result<Verdict, Error> {
        ready();
        super::answer::verdict(body)
    }

    /// An error status and its body.
    pub fn error(status: u16, body: &[u8]) -> Error {
        ready();
        super::answer::status_error(status, None, body)
    }

    /// A key the scrubber looks for while this lives (for the benches).
    pub struct Remembered(#[allow(dead_code)] super::scrub::KeyGuard);

    /// Remembers `key`, as a client built with it does.
    pub fn remember(key: &str) -> Remembered {
        Remembered(super::scrub::remember(key))
    }

    /// `text` scrubbed of every remembered key, as a server's answer is.
    pub fn scrub(text: &str) -> String {
        super::scrub::scrub(text)
    }

    /// Drives a budget for `limit` through `steps`, 9 bytes each: how long passes (8 bytes,
    /// seconds or nanoseconds by the low bit of the ninth) and what happens then (the ninth:
    /// a send of either lane, an answer, a 429 with or without a wait, a lost request, a
    /// time-to-send estimate). Panics where the budget would, or when it asks to wait until
    /// a moment already past.
    pub fn budget(limit: &crate::model::RateLimit, steps: &[u8]) {
        use super::budget::{Decision, State};
        use super::lane::Lane;

        let policy = super::RetryPolicy {
            max_retries: u32::MAX,
            base: Duration::MAX,
            cap: Duration::MAX,
            max_retry_after: Duration::MAX,
        };
        let mut state = State::new(limit);
        let mut now = std::time::Instant::now();
        let mut tickets = Vec::new();
        for step in steps.chunks_exact(9) {
            let (amount, op) = step.split_at(8);
            let amount = u64::from_le_bytes(amount.try_into().unwrap_or_default());
            let op = op.first().copied().unwrap_or_default();
            let elapse = if op & 1 == 0 {
                Duration::from_nanos(amount)
            } else {
                Duration::from_secs(amount)
            };
            now = now.checked_add(elapse).unwrap_or(now);
            match (op >> 1) % 7 {
                kind @ (0 | 1) => {
                    let lane = if kind == 0 { Lane::Agent } else { Lane::Events };
                    match state.decide(lane, now) {
                        Decision::Go(ticket) => tickets.push(ticket),
                        Decision::Paused(at) | Decision::WaitUntil(at) => assert!(at > now),
                        Decision::WaitForAnswers | Decision::WaitForAgents => {}
                    }
                }
                2 => {
                    if let Some(ticket) = tickets.pop() {
                        state.succeeded(ticket, now);
                    }
                }
                kind @ (3 | 4) => {
                    if let Some(ticket) = tickets.pop() {
                        state.throttled(ticket, (kind == 3).then_some(elapse), &policy, now);
                    }
                }
                5 => {
                    if let Some(ticket) = tickets.pop() {
                        state.unanswered(ticket);
                    }
                }
                _ => {
                    let _ = state.time_to_send(usize::try_from(amount).unwrap_or(usize::MAX), now);
                }
            }
            let _ = state.stats(now);
        }
    }

    /// A `Retry-After` value, read at `now`.
    pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
        super::retry::parse_retry_after(value, now)
    }
}
