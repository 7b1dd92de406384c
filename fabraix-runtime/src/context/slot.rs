//! Where the current run lives: thread-locals that a [`Traced`](super::Traced) future or a
//! [`SyncScope`](super::SyncScope) swaps a run into, and back out of.
//!
//! Owning the mechanism (rather than using `tokio::task_local!`) gives the
//! `#[fabraix::agent]` expansion a guard for synchronous bodies, so the user's body stays
//! inline and `return`, `?` and borrows behave exactly as written.

use std::cell::Cell;
use std::sync::Arc;

use crate::client::Client;
use crate::model::{Error, Trace};

/// Where the code runs, as far as agent runs go.
#[derive(Clone, Debug)]
pub(crate) enum Slot {
    /// Outside every agent run.
    Outside,
    /// Inside an agent run that has no trace: it could not be registered
    /// (`on_failure = "continue"`), or the SDK is disabled. The cause says which.
    Untraced(Arc<Error>),
    /// Inside a registered run.
    Traced(Trace),
}

impl Slot {
    #[inline]
    pub(crate) fn trace(&self) -> Option<Trace> {
        match self {
            Slot::Traced(trace) => Some(*trace),
            _ => None,
        }
    }

    pub(crate) fn is_outside(&self) -> bool {
        matches!(self, Slot::Outside)
    }
}

thread_local! {
    // Kept apart, so that `current_trace` is one plain copy of an `Option<Trace>`.
    static TRACE: Cell<Option<Trace>> = const { Cell::new(None) };
    static UNTRACED: Cell<Option<Arc<Error>>> = const { Cell::new(None) };
    static CLIENT: Cell<Option<Client>> = const { Cell::new(None) };
}

/// The trace current on this thread.
#[inline]
pub(crate) fn trace() -> Option<Trace> {
    TRACE.with(Cell::get)
}

/// The slot current on this thread.
pub(crate) fn current() -> Slot {
    if let Some(trace) = trace() {
        return Slot::Traced(trace);
    }
    match clone_cell(&UNTRACED) {
        Some(cause) => Slot::Untraced(cause),
        None => Slot::Outside,
    }
}

/// The client the current run's calls go through, if it named one.
pub(crate) fn client() -> Option<Client> {
    clone_cell(&CLIENT)
}

/// Calls `f` with the client the current run's calls go through, if it named one,
/// borrowed rather than cloned (this is on `log_event`'s path). The client is lent out of
/// the thread-local for the call and put back after it, also on a panic; a call nested in
/// `f` (a `tracing` subscriber that logs, say) sees none and uses the global client.
pub(crate) fn with_client<R>(f: impl FnOnce(Option<&Client>) -> R) -> R {
    struct PutBack(Option<Client>);
    impl Drop for PutBack {
        fn drop(&mut self) {
            if let Some(client) = self.0.take() {
                let _ = CLIENT.try_with(|cell| cell.set(Some(client)));
            }
        }
    }
    let lent = PutBack(CLIENT.try_with(Cell::take).unwrap_or(None));
    f(lent.0.as_ref())
}

/// Exchanges `slot` and `client` with the thread's current ones.
pub(crate) fn swap(slot: &mut Slot, client: &mut Option<Client>) {
    let (trace, untraced) = match std::mem::replace(slot, Slot::Outside) {
        Slot::Outside => (None, None),
        Slot::Untraced(cause) => (None, Some(cause)),
        Slot::Traced(trace) => (Some(trace), None),
    };
    let previous_trace = TRACE.with(|cell| cell.replace(trace));
    // During thread teardown the other cells may be gone: then there is nothing to carry.
    let previous_untraced = UNTRACED
        .try_with(|cell| cell.replace(untraced))
        .unwrap_or(None);
    *slot = match (previous_trace, previous_untraced) {
        (Some(trace), _) => Slot::Traced(trace),
        (None, Some(cause)) => Slot::Untraced(cause),
        (None, None) => Slot::Outside,
    };
    let mine = client.take();
    *client = CLIENT.try_with(|cell| cell.replace(mine)).unwrap_or(None);
}

/// A clone of a cell's value, leaving the value in place. Taken out and put back, so a
/// panic cannot leave the cell empty.
fn clone_cell<T: Clone + 'static>(
    key: &'static std::thread::LocalKey<Cell<Option<T>>>,
) -> Option<T> {
    key.try_with(|cell| {
        let value = cell.take();
        let copy = value.clone();
        cell.set(value);
        copy
    })
    .unwrap_or(None)
}
