//! One [`Api`] per client: the settings, the http connection pool, and what every request
//! to Fabraix shares. It owns "send this request, retry what may succeed, read the
//! answer"; the client and the event exporter both send through it.
//!
//! - `settings.rs`: the validated settings and their defaults;
//! - `lane.rs`: who asks for the budget (agent calls, queued events);
//! - `budget.rs`: the key's rate budget, shared by every request, agent calls first;
//! - `http.rs`: one attempt over the network;
//! - `retry.rs`: when to try again, and how long to wait;
//! - `answer.rs`: success bodies decoded, error statuses read;
//! - `scrub.rs`: keys kept out of everything shown;
//! - `io_thread.rs`: the SDK's own thread, where every request runs.

mod answer;
mod budget;
#[cfg(feature = "redis")]
#[allow(dead_code, unused_imports)]
mod fleet;
mod http;
pub(crate) mod io_thread;
mod lane;
mod retry;
pub(crate) mod scrub;
mod settings;

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
    http: reqwest::Client,
    /// Bounds the calls an agent waits for (register, check, direct events) in flight at
    /// once, so a burst of runs shares a few connections instead of opening one each.
    permits: Semaphore,
    /// The key's rate budget, shared by every request.
    budget: Budget,
    /// The budget shared through Redis, when `FABRAIX_REDIS_URL` is set.
    #[cfg(feature = "redis")]
    shared: Option<fleet::SharedBudget>,
}

impl Api {
    pub fn new(settings: Settings) -> Result<Self, Error> {
        let http = http::build_client(&settings)?;
        #[cfg(feature = "redis")]
        let shared = fleet::SharedBudget::from_settings(&settings)?;
        Ok(Self {
            permits: Semaphore::new(settings.options.max_in_flight),
            budget: Budget::new(settings.rate_limit.clone()),
            #[cfg(feature = "redis")]
            shared,
            settings,
            http,
        })
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
    /// the other agent calls. Run it on the SDK's thread.
    pub async fn call(&self, endpoint: Endpoint, body: Bytes) -> Result<Vec<u8>, Error> {
        let options = self.options();
        let started = Instant::now();
        let deadline = started.checked_add(options.deadline);
        let remaining = || options.deadline.saturating_sub(started.elapsed());
        let mut retry = 0u32;
        loop {
            let ticket = self.budget.acquire(Lane::Agent, deadline).await?;
            let slot = Slot::new(&self.budget, ticket);
            let outcome = match tokio::time::timeout(remaining(), self.permits.acquire()).await {
                Ok(Ok(_permit)) => {
                    let limit = options.timeout.min(remaining());
                    http::attempt(&self.http, &self.settings, endpoint, body.clone(), limit).await
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
                    return Ok(bytes);
                }
                Err(failure) => failure,
            };
            if let Error::RateLimited { .. } = failure.error {
                // The agent lane pauses: this call's next attempt waits for it with every
                // other agent call, and fails at once when the pause outlasts its deadline.
                slot.throttled(failure.retry_after, &options.retry);
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
        let outcome = http::attempt(
            &self.http,
            &self.settings,
            Endpoint::Event,
            body,
            self.options().timeout,
        )
        .await;
        match &outcome {
            Ok(_) => slot.succeeded(),
            Err(failure) if matches!(failure.error, Error::RateLimited { .. }) => {
                slot.throttled(failure.retry_after, &self.options().retry);
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
        static REMEMBERED: std::sync::Once = std::sync::Once::new();
        REMEMBERED.call_once(|| super::scrub::remember(KEY));
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

    /// A `Retry-After` value, read at `now`.
    pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
        super::retry::parse_retry_after(value, now)
    }
}
