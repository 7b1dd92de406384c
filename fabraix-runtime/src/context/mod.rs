//! The current run, carried through the call stack like a task-local, and the calls that
//! act on it.
//!
//! - `slot.rs`: the thread-locals that hold the current run;
//! - `traced.rs`: [`Traced`] futures and [`SyncScope`] guards that make a run current;
//! - `run_calls.rs`: [`log_event`], [`check_action`], [`flush`]: calls on the current run.
//!
//! # Carrying a run
//!
//! | where the work goes | what to use |
//! |---|---|
//! | a new tokio task | [`spawn`] |
//! | tokio's blocking pool | [`spawn_blocking`] |
//! | any other spawner or executor (a `JoinSet`, `FuturesUnordered`, another runtime's `spawn`) | [`TraceFutureExt::in_current_trace`] |
//! | a thread, another runtime, a work queue: the whole run, also one without a trace | [`current_run`], then [`RunContext::scope`] or [`RunContext::sync_scope`] there |
//! | a [`Trace`] you hold (from another process's headers, a run registered by hand) | [`scope`] / [`sync_scope`] |

mod run_calls;
pub(crate) mod slot;
mod traced;

use std::future::Future;

#[allow(deprecated)] // the old name, kept for those who use it
pub use run_calls::event_stats;
pub use run_calls::{check_action, check_action_blocking, flush, flush_blocking, log_event, stats};
pub(crate) use slot::Slot;
pub use traced::{SyncScope, Traced};

use crate::client::Client;
use crate::model::Trace;

/// An agent run captured to be carried somewhere else: its trace (or the lack of one, for
/// a run that could not be registered) and the client its events and checks go through.
/// `Send`, `Sync`, cheap to clone.
///
/// ```
/// # fn demo() {
/// let run = fabraix::current_run();
/// std::thread::spawn(move || {
///     let work = || fabraix::current_trace();
///     match run {
///         Some(run) => run.sync_scope(work),
///         None => work(),
///     }
/// });
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct RunContext {
    pub(crate) slot: Slot,
    pub(crate) client: Option<Client>,
}

/// The run current here, to carry into a thread, another runtime or a queue; `None`
/// outside any agent run.
pub fn current_run() -> Option<RunContext> {
    let ctx = RunContext::current();
    (!ctx.slot.is_outside()).then_some(ctx)
}

impl RunContext {
    /// The run's trace; `None` for a run that could not be registered.
    pub fn trace(&self) -> Option<Trace> {
        self.slot.trace()
    }

    /// Runs `future` in this run.
    pub fn scope<F: Future>(self, future: F) -> Traced<F> {
        Traced::new(self, future)
    }

    /// Runs `f` in this run, then restores the previous one (also on panic).
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        let _scope = SyncScope::enter(self);
        f()
    }

    pub(crate) fn new(slot: Slot, client: Option<Client>) -> Self {
        Self { slot, client }
    }

    /// The context current on this thread or task.
    pub(crate) fn current() -> Self {
        Self {
            slot: slot::current(),
            client: slot::client(),
        }
    }

    /// `trace` as the current run, its calls going through the client that registered it
    /// (while that client lives), else the client current here, else the global one.
    pub(crate) fn for_trace(trace: Trace) -> Self {
        let client = Client::by_id(trace.client_id()).or_else(slot::client);
        Self {
            slot: Slot::Traced(trace),
            client,
        }
    }
}

/// Runs `future` with `trace` as the current run; the previous run (if any) is current
/// again outside it. For a [`Trace`] you hold: read from another process, or registered by
/// hand. Its events and checks go through the client that registered it.
///
/// ```
/// # async fn demo(trace: fabraix::Trace) {
/// let seen = fabraix::scope(trace, async { fabraix::current_trace() }).await;
/// assert_eq!(seen, Some(trace));
/// # }
/// ```
pub fn scope<F: Future>(trace: Trace, future: F) -> Traced<F> {
    RunContext::for_trace(trace).scope(future)
}

/// Runs `f` with `trace` as the current run, then restores the previous one (also on panic).
///
/// ```
/// # use fabraix::{AgentId, Trace, TraceId};
/// # let trace = Trace::new(TraceId::from_uuid(uuid::Uuid::nil()), AgentId::from_name("a").unwrap(), chrono::Utc::now());
/// let seen = fabraix::sync_scope(trace, fabraix::current_trace);
/// assert_eq!(seen, Some(trace));
/// assert_eq!(fabraix::current_trace(), None);
/// ```
pub fn sync_scope<R>(trace: Trace, f: impl FnOnce() -> R) -> R {
    RunContext::for_trace(trace).sync_scope(f)
}

/// The trace of the innermost agent run around this code, or `None` outside any run.
///
/// Works in async and sync code alike, anywhere in the call stack below a
/// `#[fabraix::agent]` fn (or a [`scope`] / [`sync_scope`]). The cost is one thread-local
/// read.
///
/// ```
/// assert!(fabraix::current_trace().is_none());
/// ```
#[inline]
pub fn current_trace() -> Option<Trace> {
    slot::trace()
}

/// Carries the current run into a future that leaves the current task.
///
/// A bare `tokio::spawn` does not inherit the current run; wrap the future first:
///
/// ```
/// use fabraix::TraceFutureExt;
///
/// # async fn demo() {
/// let handle = tokio::spawn(async { fabraix::current_trace() }.in_current_trace());
/// # let _ = handle.await;
/// # }
/// ```
pub trait TraceFutureExt: Future + Sized {
    /// Runs this future in the run that is current where this is called (or outside any
    /// run, if none is).
    fn in_current_trace(self) -> Traced<Self> {
        Traced::new(RunContext::current(), self)
    }
}

impl<F: Future> TraceFutureExt for F {}

/// Like [`tokio::spawn`], but the task runs in the current agent run.
///
/// # Panics
///
/// Outside a tokio runtime, as `tokio::spawn` does.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_trace())
}

/// Like [`tokio::task::spawn_blocking`], but `f` runs in the current agent run.
///
/// # Panics
///
/// Outside a tokio runtime, as `tokio::task::spawn_blocking` does.
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let ctx = RunContext::current();
    tokio::task::spawn_blocking(move || ctx.sync_scope(f))
}
