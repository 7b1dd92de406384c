//! Conversations: one run per conversation, continued turn after turn.
//!
//! - `key.rs`: [`ConversationKey`], the keyed hash every store names a conversation by;
//! - `pending.rs`: a first turn's registration, which concurrent turns wait for;
//! - `local.rs`: [`LocalStore`], the conversations of this process, bounded and expiring;
//! - `shared.rs` (feature `redis`): `SharedStore`, the conversations of every process
//!   with the API key and the Redis (`FABRAIX_REDIS_URL`).
//!
//! # How a turn finds its run
//!
//! A turn asks its client's [`Conversations`] for the run of `(agent, conversation id)`:
//! [`Conversations::turn`] (or [`turn_blocking`](Conversations::turn_blocking)) derives the
//! [`ConversationKey`] once and asks the [`Backend`]. [`Conversations::end`] forgets a
//! conversation (in Redis too).
//!
//! [`Backend::Local`] answers one of three ([`Begin`]): continue a live run, register one
//! (holding a [`Claim`](local::Claim) that concurrent turns wait on, settled by
//! [`Claim::complete`](local::Claim::complete) or, if the turn is cancelled, by being
//! dropped), or wait for another turn's registration ([`Pending`], within the call
//! deadline). It answers at once, on the caller's thread; only a wait goes to the SDK's
//! runtime (for its timer).
//!
//! `Backend::Shared` (feature `redis`, when the client has a Redis URL) asks Redis first,
//! on the SDK's runtime, through the shared budget's connection (one [`Link`] per client;
//! each call bounded by `redis_timeout`):
//!
//! - Redis keeps `ConversationKey::to_hex()` (never the id, never the API key) under
//!   `fabraix:{<fingerprint>}:conv:` (the budget's hash tag: one Cluster slot), its value
//!   the registration time (Redis's clock) and the [`Trace`] as JSON, with a TTL of
//!   `conversation_idle` that each turn starts again; a value older than
//!   `conversation_max_age` is replaced;
//! - a first turn takes a lock (`SET NX PX`, the call deadline, a random token) and
//!   registers; the run is stored, and the lock deleted, only while the lock is still the
//!   turn's; a failed or cancelled registration deletes the lock. A turn that finds the
//!   lock held polls (25–50 ms steps, jittered, within the call deadline) until the run
//!   is stored or the lock is gone (released, or expired with a process that died), then
//!   begins again: two processes racing register once;
//! - every run Redis answers is kept in the process's [`LocalStore`] too; when Redis does
//!   not answer (down, slow, not reached yet two seconds after the client was built), that
//!   store answers instead, with one warning (again after Redis has answered meanwhile):
//!   the conversation goes on in the run this process knows, and one served by another
//!   process meanwhile may get a second run.
//!
//! Every step is one Lua script, so it is atomic on Redis; see `shared.rs`.

mod key;
mod local;
mod pending;
#[cfg(feature = "redis")]
mod shared;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) use key::{ConversationKey, KeyDeriver};
use local::{Begin, LocalStore};
use pending::{Outcome, Pending};

#[cfg(feature = "redis")]
use shared::{SharedBegin, SharedStore};

use super::Client;
use crate::api::io_thread;
#[cfg(feature = "redis")]
use crate::api::{Fingerprint, Link};
use crate::model::{AgentId, Error, Trace};

/// When a conversation's run is replaced by a new one, and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// A conversation with no turn for this long starts a new run.
    pub idle: Duration,
    /// A run this old is replaced at the conversation's next turn, however busy it is.
    pub max_age: Duration,
    /// Conversations kept per client; past it the least recently used is forgotten.
    pub capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            max_age: Duration::from_secs(24 * 60 * 60),
            capacity: 100_000,
        }
    }
}

impl Limits {
    /// Zero idle time, age or capacity would make every turn a new run: a mistake.
    pub(crate) fn check(&self) -> Result<(), Error> {
        for (name, zero) in [
            ("conversation_idle", self.idle.is_zero()),
            ("conversation_max_age", self.max_age.is_zero()),
            ("conversation_capacity", self.capacity == 0),
        ] {
            if zero {
                return Err(Error::Config(format!("`{name}` must be more than zero")));
            }
        }
        Ok(())
    }
}

/// Where a client keeps its conversations.
#[derive(Debug)]
pub(crate) enum Backend {
    /// In this process: turns served by another process do not see these runs.
    Local(LocalStore),
    /// In Redis, shared by every process with the API key and the Redis; `local` holds
    /// the runs this process has seen, and answers while Redis does not.
    #[cfg(feature = "redis")]
    Shared {
        redis: SharedStore,
        local: LocalStore,
    },
}

/// One client's conversations: how they are keyed, where they are kept, how long a turn
/// may wait for another's registration.
#[derive(Debug)]
pub(crate) struct Conversations {
    keys: KeyDeriver,
    backend: Backend,
    /// How long a turn waits for a concurrent first turn's registration: the call
    /// deadline, which bounds that registration too.
    wait_limit: Duration,
}

impl Conversations {
    /// The conversations of the clients of `api_key`: in Redis through `link` when there
    /// is one, else in this process.
    pub(crate) fn new(
        limits: Limits,
        api_key: &str,
        wait_limit: Duration,
        #[cfg(feature = "redis")] link: Option<Link>,
    ) -> Self {
        let local = LocalStore::new(limits, wait_limit);
        #[cfg(feature = "redis")]
        let backend = match link {
            Some(link) => Backend::Shared {
                redis: SharedStore::new(
                    link,
                    &Fingerprint::of(api_key),
                    limits.idle,
                    limits.max_age,
                    wait_limit,
                ),
                local,
            },
            None => Backend::Local(local),
        };
        #[cfg(not(feature = "redis"))]
        let backend = Backend::Local(local);
        Self {
            keys: KeyDeriver::new(api_key),
            backend,
            wait_limit,
        }
    }

    pub(crate) fn key(&self, agent: AgentId, id: &str) -> ConversationKey {
        self.keys.key(agent, id)
    }

    /// The store that answers in this process.
    fn local(&self) -> &LocalStore {
        match &self.backend {
            Backend::Local(store) => store,
            #[cfg(feature = "redis")]
            Backend::Shared { local, .. } => local,
        }
    }

    /// The run a turn of the conversation `key` goes on in: its live run, else the one
    /// `register` makes (or a concurrent turn's, waited for within the wait limit).
    pub(crate) async fn turn<R, F>(&self, key: ConversationKey, register: R) -> Result<Trace, Error>
    where
        R: FnOnce() -> F,
        F: Future<Output = Result<Trace, Error>>,
    {
        let started = Instant::now();
        #[cfg(feature = "redis")]
        if let Backend::Shared { redis, local } = &self.backend {
            match io_thread::run(redis.clone().begin(key, self.wait_limit)).await? {
                SharedBegin::Continue(trace) => {
                    local.remember(key, trace, Instant::now());
                    return Ok(trace);
                }
                SharedBegin::Register(claim) => {
                    let outcome = register().await;
                    let registered = outcome.as_ref().ok().copied();
                    if let Some(trace) = registered {
                        local.remember(key, trace, Instant::now());
                    }
                    let _ = io_thread::run(claim.complete(registered)).await;
                    return outcome;
                }
                SharedBegin::TimedOut => return Err(self.timed_out()),
                SharedBegin::Unavailable => redis.warn_fallback(),
            }
        }
        let store = self.local();
        let claim = loop {
            match store.begin(key, Instant::now()) {
                Begin::Continue(trace) => return Ok(trace),
                Begin::Register(claim) => break claim,
                Begin::Wait(pending) => {
                    let left = self.left(started)?;
                    let waited = io_thread::run(wait(pending, left)).await?;
                    if let Some(outcome) = self.waited(waited)? {
                        return outcome;
                    }
                }
            }
        };
        let outcome = register().await;
        claim.complete(&outcome, Instant::now());
        outcome
    }

    /// [`turn`](Self::turn) for synchronous code: blocks this thread.
    pub(crate) fn turn_blocking(
        &self,
        key: ConversationKey,
        register: impl FnOnce() -> Result<Trace, Error>,
    ) -> Result<Trace, Error> {
        let started = Instant::now();
        #[cfg(feature = "redis")]
        if let Backend::Shared { redis, local } = &self.backend {
            match io_thread::block_on(redis.clone().begin(key, self.wait_limit))? {
                SharedBegin::Continue(trace) => {
                    local.remember(key, trace, Instant::now());
                    return Ok(trace);
                }
                SharedBegin::Register(claim) => {
                    let outcome = register();
                    let registered = outcome.as_ref().ok().copied();
                    if let Some(trace) = registered {
                        local.remember(key, trace, Instant::now());
                    }
                    let _ = io_thread::block_on(claim.complete(registered));
                    return outcome;
                }
                SharedBegin::TimedOut => return Err(self.timed_out()),
                SharedBegin::Unavailable => redis.warn_fallback(),
            }
        }
        let store = self.local();
        let claim = loop {
            match store.begin(key, Instant::now()) {
                Begin::Continue(trace) => return Ok(trace),
                Begin::Register(claim) => break claim,
                Begin::Wait(pending) => {
                    let left = self.left(started)?;
                    let waited = io_thread::block_on(wait(pending, left))?;
                    if let Some(outcome) = self.waited(waited)? {
                        return outcome;
                    }
                }
            }
        };
        let outcome = register();
        claim.complete(&outcome, Instant::now());
        outcome
    }

    fn timed_out(&self) -> Error {
        Error::Timeout {
            after: self.wait_limit,
        }
    }

    /// The time a turn that began at `started` may still wait.
    fn left(&self, started: Instant) -> Result<Duration, Error> {
        match self.wait_limit.checked_sub(started.elapsed()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(self.timed_out()),
        }
    }

    /// What a wait came to: the run or the failure to share, or `None` to begin again
    /// (the registering turn went away).
    fn waited(&self, waited: Option<Outcome>) -> Result<Option<Result<Trace, Error>>, Error> {
        match waited {
            Some(Outcome::Registered(trace)) => Ok(Some(Ok(trace))),
            Some(Outcome::Failed(error)) => Ok(Some(Err(error))),
            Some(Outcome::Abandoned) => Ok(None),
            None => Err(self.timed_out()),
        }
    }

    /// Forgets the conversation `key` (in Redis too); answers whether it had a run (or one
    /// registering). Blocks this thread for Redis's answer, at most the Redis timeout.
    pub(crate) fn end(&self, key: ConversationKey) -> bool {
        let here = self.local().end(key);
        #[cfg(feature = "redis")]
        if let Backend::Shared { redis, .. } = &self.backend {
            let redis = redis.clone();
            let there = io_thread::block_on(async move { redis.end(key).await });
            return there.ok().flatten().unwrap_or(false) || here;
        }
        here
    }

    /// [`end`](Self::end) for async code.
    pub(crate) async fn end_async(&self, key: ConversationKey) -> bool {
        let here = self.local().end(key);
        #[cfg(feature = "redis")]
        if let Backend::Shared { redis, .. } = &self.backend {
            let redis = redis.clone();
            let there = io_thread::run(async move { redis.end(key).await }).await;
            return there.ok().flatten().unwrap_or(false) || here;
        }
        here
    }
}

/// Waits on the SDK's runtime (the caller's executor may have no timer) for `pending`,
/// at most `left`; `None` when the time ran out.
async fn wait(pending: std::sync::Arc<Pending>, left: Duration) -> Option<Outcome> {
    tokio::time::timeout(left, pending.wait()).await.ok()
}

impl Client {
    /// The run a turn of `agent`'s conversation `id` goes on in: the conversation's live
    /// run, else a new one registered with `system_prompt`.
    pub(crate) async fn conversation_turn(
        &self,
        agent: AgentId,
        id: &str,
        system_prompt: &str,
    ) -> Result<Trace, Error> {
        if self.is_disabled() {
            return Err(Error::Disabled);
        }
        if unnamed(id) {
            return self.register_agent_run(agent, system_prompt).await;
        }
        let conversations = &self.inner.conversations;
        let key = conversations.key(agent, id);
        let trace = conversations
            .turn(key, || self.register_agent_run(agent, system_prompt))
            .await?;
        Ok(self.bind(trace))
    }

    /// [`conversation_turn`](Self::conversation_turn) for synchronous code.
    pub(crate) fn conversation_turn_blocking(
        &self,
        agent: AgentId,
        id: &str,
        system_prompt: &str,
    ) -> Result<Trace, Error> {
        if self.is_disabled() {
            return Err(Error::Disabled);
        }
        if unnamed(id) {
            return self.register_agent_run_blocking(agent, system_prompt);
        }
        let conversations = &self.inner.conversations;
        let key = conversations.key(agent, id);
        let trace = conversations.turn_blocking(key, || {
            self.register_agent_run_blocking(agent, system_prompt)
        })?;
        Ok(self.bind(trace))
    }

    /// Ends `agent`'s conversation `id`: its next turn registers a new run. Answers whether
    /// it had a run.
    pub(crate) fn end_conversation(&self, agent: AgentId, id: &str) -> bool {
        let conversations = &self.inner.conversations;
        !unnamed(id) && conversations.end(conversations.key(agent, id))
    }

    /// [`end_conversation`](Self::end_conversation) for async code.
    pub(crate) async fn end_conversation_async(&self, agent: AgentId, id: &str) -> bool {
        let conversations = &self.inner.conversations;
        !unnamed(id) && conversations.end_async(conversations.key(agent, id)).await
    }
}

/// An empty or blank conversation id names no conversation: sharing one run between all
/// such turns would mix unrelated users, so each gets a run of its own (and the first
/// such turn in the process a warning, since it is probably a bug).
fn unnamed(id: &str) -> bool {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let blank = id.trim().is_empty();
    if blank && !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: "fabraix",
            "a fabraix conversation id is empty: each such turn gets a run of its own"
        );
    }
    blank
}
