//! The current run, carried through the call stack like a task-local.
//!
//! The current run lives in two thread-locals. A [`Traced`] future swaps its run in for the
//! length of each poll and back out after, exactly as `tokio::task_local!` does; a
//! [`SyncScope`] guard does the same around synchronous code. Owning the mechanism (rather
//! than using `tokio::task_local!`) gives the `#[fabraix::agent]` expansion a guard for
//! synchronous bodies, so the user's body stays inline and `return`, `?` and borrows behave
//! exactly as written.

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use crate::client::Client;
use crate::trace::Trace;

/// Where the code runs, as far as agent runs go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Outside every agent run.
    Outside,
    /// Inside an agent run that could not be registered (`on_failure = "continue"`, or
    /// the SDK is disabled): events are let go quietly, checks fail closed.
    Untraced,
    /// Inside a registered run.
    Traced(Trace),
}

impl Slot {
    #[inline]
    pub(crate) fn trace(self) -> Option<Trace> {
        match self {
            Slot::Traced(trace) => Some(trace),
            _ => None,
        }
    }
}

thread_local! {
    // The slot is kept as two cells, so that `current_trace` is one plain copy of an
    // `Option<Trace>`, with no conversion.
    static TRACE: Cell<Option<Trace>> = const { Cell::new(None) };
    static IN_RUN: Cell<bool> = const { Cell::new(false) };
    static CLIENT: Cell<Option<Client>> = const { Cell::new(None) };
}

/// The current agent run, captured to be carried somewhere else: its trace and the client
/// its events and checks go through. `Send`, `Clone`, cheap to clone.
///
/// [`scope`] and [`sync_scope`] carry a bare [`Trace`], whose events go through the client
/// current where they run (else the global one); a run registered with
/// `#[fabraix::agent(client = …)]` should travel as a `RunContext` instead, so its events
/// keep going through that client:
///
/// ```
/// # fn demo() {
/// let run = fabraix_runtime::current_run();
/// std::thread::spawn(move || {
///     let work = || fabraix_runtime::current_trace();
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
    (ctx.slot != Slot::Outside).then_some(ctx)
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
        let slot = current_slot();
        let client = with_current_client(|client| client.cloned());
        Self { slot, client }
    }

    /// A context for `trace` that keeps the current client, if any.
    fn for_trace(trace: Trace) -> Self {
        let mut ctx = Self::current();
        ctx.slot = Slot::Traced(trace);
        ctx
    }

    /// Exchanges this context with the thread's current one.
    fn swap_with_current(&mut self) {
        let (trace, in_run) = match self.slot {
            Slot::Outside => (None, false),
            Slot::Untraced => (None, true),
            Slot::Traced(trace) => (Some(trace), true),
        };
        let previous_trace = TRACE.with(|cell| cell.replace(trace));
        let previous_in_run = IN_RUN.with(|cell| cell.replace(in_run));
        self.slot = match (previous_trace, previous_in_run) {
            (Some(trace), _) => Slot::Traced(trace),
            (None, true) => Slot::Untraced,
            (None, false) => Slot::Outside,
        };
        // During thread teardown the client slot may be gone: then there is no client to
        // carry, and the global one serves.
        let mine = self.client.take();
        self.client = CLIENT.try_with(|cell| cell.replace(mine)).unwrap_or(None);
    }
}

#[inline]
pub(crate) fn current_slot() -> Slot {
    match (TRACE.with(Cell::get), IN_RUN.with(Cell::get)) {
        (Some(trace), _) => Slot::Traced(trace),
        (None, true) => Slot::Untraced,
        (None, false) => Slot::Outside,
    }
}

/// The client of the current run, if it was registered through an explicit one.
pub(crate) fn with_current_client<R>(f: impl FnOnce(Option<&Client>) -> R) -> R {
    // Cloned out (one reference count) rather than borrowed in place, so `f` may panic or
    // use the context itself without leaving the slot empty.
    let client = CLIENT
        .try_with(|cell| {
            let client = cell.take();
            let copy = client.clone();
            cell.set(client);
            copy
        })
        .unwrap_or(None);
    f(client.as_ref())
}

/// The trace of the innermost agent run around this code, or `None` outside any run.
///
/// Works in async and sync code alike, anywhere in the call stack below a
/// `#[fabraix::agent]` fn (or a [`scope`] / [`sync_scope`]). The cost is one thread-local
/// read.
///
/// ```
/// assert!(fabraix_runtime::current_trace().is_none());
/// ```
#[inline]
pub fn current_trace() -> Option<Trace> {
    TRACE.with(Cell::get)
}

/// Restores the thread's previous context when dropped, so a panic inside a scope cannot
/// leave a stale run behind.
struct Swapped<'a>(&'a mut RunContext);

impl<'a> Swapped<'a> {
    fn enter(ctx: &'a mut RunContext) -> Self {
        ctx.swap_with_current();
        Swapped(ctx)
    }
}

impl Drop for Swapped<'_> {
    fn drop(&mut self) {
        self.0.swap_with_current();
    }
}

pin_project_lite::pin_project! {
    /// A future that runs inside an agent run's context: see [`scope`] and
    /// [`TraceFutureExt`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Traced<F> {
        ctx: RunContext,
        #[pin]
        future: F,
    }
}

impl<F> Traced<F> {
    pub(crate) fn new(ctx: RunContext, future: F) -> Self {
        Self { ctx, future }
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = Swapped::enter(this.ctx);
        this.future.poll(cx)
    }
}

impl<F> std::fmt::Debug for Traced<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traced")
            .field("trace", &self.ctx.slot.trace())
            .finish_non_exhaustive()
    }
}

/// A guard that makes a context current on this thread until it is dropped.
///
/// Used by the expansion of `#[fabraix::agent]` on synchronous fns; `!Send`, so it cannot
/// be held across an `.await` in a spawned future.
pub struct SyncScope {
    saved: RunContext,
    _not_send: PhantomData<*const ()>,
}

impl SyncScope {
    pub(crate) fn enter(mut ctx: RunContext) -> Self {
        ctx.swap_with_current();
        Self {
            saved: ctx,
            _not_send: PhantomData,
        }
    }
}

impl Drop for SyncScope {
    fn drop(&mut self) {
        self.saved.swap_with_current();
    }
}

impl std::fmt::Debug for SyncScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncScope").finish_non_exhaustive()
    }
}

/// Runs `future` with `trace` as the current run; the previous run (if any) is current
/// again outside it. For work that left the run's task: another runtime, a thread, a queue.
///
/// ```
/// # async fn demo(trace: fabraix_runtime::Trace) {
/// let seen = fabraix_runtime::scope(trace, async { fabraix_runtime::current_trace() }).await;
/// assert_eq!(seen, Some(trace));
/// # }
/// ```
pub fn scope<F: Future>(trace: Trace, future: F) -> Traced<F> {
    RunContext::for_trace(trace).scope(future)
}

/// Runs `f` with `trace` as the current run, then restores the previous one (also on panic).
///
/// ```
/// # use fabraix_runtime::{AgentId, Trace, TraceId};
/// # let trace = Trace::new(TraceId::from_uuid(uuid::Uuid::nil()), AgentId::from_name("a").unwrap(), chrono::Utc::now());
/// let seen = fabraix_runtime::sync_scope(trace, fabraix_runtime::current_trace);
/// assert_eq!(seen, Some(trace));
/// assert_eq!(fabraix_runtime::current_trace(), None);
/// ```
pub fn sync_scope<R>(trace: Trace, f: impl FnOnce() -> R) -> R {
    RunContext::for_trace(trace).sync_scope(f)
}

/// Carries agent runs into futures that leave the current task.
///
/// A bare `tokio::spawn` does not inherit the current run; wrap the future first:
///
/// ```
/// use fabraix_runtime::TraceFutureExt;
///
/// # async fn demo() {
/// let handle = tokio::spawn(async { fabraix_runtime::current_trace() }.in_current_trace());
/// # let _ = handle.await;
/// # }
/// ```
pub trait TraceFutureExt: Future + Sized {
    /// Runs this future in the run that is current where this is called (or outside any
    /// run, if none is).
    fn in_current_trace(self) -> Traced<Self> {
        Traced::new(RunContext::current(), self)
    }

    /// Runs this future with `trace` as the current run.
    fn with_trace(self, trace: Trace) -> Traced<Self> {
        scope(trace, self)
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
