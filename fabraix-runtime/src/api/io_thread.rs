//! The SDK's own runtimes, where every request runs: two current-thread tokio runtimes,
//! each on a dedicated thread. The event exporter and its sends run on `fabraix-io`; the
//! calls an agent waits for (registrations, checks, direct events) run on `fabraix-calls`,
//! with a connection pool of their own, so that a check never waits while the exporter
//! files and sends a thousand queued events.
//!
//! All network I/O happens on these runtimes, whatever the caller runs on: a multi-thread or
//! current-thread tokio runtime, another executor, or no runtime at all. This is what lets a
//! synchronous agent fn block on its registration inside a current-thread runtime without
//! deadlocking it, and keeps the connection pool alive when a caller's runtime shuts down
//! (each `#[tokio::test]` has its own), as sentry's transport thread does.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll};

use once_cell::sync::Lazy;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::model::Error;

static RUNTIME: Lazy<Result<Handle, String>> = Lazy::new(|| start("fabraix-io"));

/// Where the calls an agent waits for run: a thread of their own, so that a check never
/// waits while the exporter files and sends a queue of events.
static CALLS: Lazy<Result<Handle, String>> = Lazy::new(|| start("fabraix-calls"));

fn start(name: &str) -> Result<Handle, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            ON_IO_THREAD.with(|flag| flag.set(true));
            runtime.block_on(std::future::pending::<()>());
        })
        .map_err(|e| e.to_string())?;
    Ok(handle)
}

thread_local! {
    static ON_IO_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn started(runtime: &'static Lazy<Result<Handle, String>>) -> Result<&'static Handle, Error> {
    match &**runtime {
        Ok(handle) => Ok(handle),
        Err(e) => Err(Error::Runtime(format!("could not start: {e}"))),
    }
}

/// The exporter's runtime.
pub(crate) fn handle() -> Result<&'static Handle, Error> {
    started(&RUNTIME)
}

/// Runs `future` on the SDK runtime and waits for it from any executor. Dropping the
/// returned future cancels the work.
pub(crate) fn run<F>(future: F) -> Offloaded<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn(&RUNTIME, future)
}

/// [`run`], on the agent calls' thread: for a request an agent waits for.
pub(crate) fn run_call<F>(future: F) -> Offloaded<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn(&CALLS, future)
}

fn spawn<F>(runtime: &'static Lazy<Result<Handle, String>>, future: F) -> Offloaded<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match started(runtime) {
        Ok(handle) => Offloaded(Ok(handle.spawn(future))),
        Err(e) => Offloaded(Err(Some(e))),
    }
}

/// Runs `future` on the SDK runtime and blocks this thread until it is done. Safe with no
/// runtime, on a worker of a multi-thread runtime, and inside a current-thread runtime.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output, Error>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    wait(&RUNTIME, future)
}

/// [`block_on`], on the agent calls' thread: for a request an agent waits for.
pub(crate) fn block_on_call<F>(future: F) -> Result<F::Output, Error>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    wait(&CALLS, future)
}

fn wait<F>(runtime: &'static Lazy<Result<Handle, String>>, future: F) -> Result<F::Output, Error>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if ON_IO_THREAD.with(Cell::get) {
        // Only SDK code runs here, and it never blocks; refuse rather than stall a worker.
        return Err(Error::Runtime(
            "a blocking call was made on the sdk's own runtime".into(),
        ));
    }
    let handle = started(runtime)?;
    let (tx, rx) = mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv()
        .map_err(|_| Error::Runtime("the request task ended without an answer".into()))
}

/// The output of [`run`]: a join handle that aborts its task when dropped.
pub(crate) struct Offloaded<T>(Result<JoinHandle<T>, Option<Error>>);

impl<T> Future for Offloaded<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Ok(join) => Pin::new(join).poll(cx).map(|joined| {
                joined.map_err(|e| Error::Runtime(format!("request task failed: {e}")))
            }),
            Err(e) => Poll::Ready(Err(e
                .take()
                .unwrap_or_else(|| Error::Runtime("polled after completion".into())))),
        }
    }
}

impl<T> Drop for Offloaded<T> {
    fn drop(&mut self) {
        if let Ok(join) = &self.0 {
            join.abort();
        }
    }
}
