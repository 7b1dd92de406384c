//! The calls that act on the current run: log an event, check an action, flush.

use std::sync::Arc;
use std::time::Duration;

use super::slot::{self, Slot};
use crate::client::{Client, Stats, built_global_client, global_client};
use crate::export::EventStats;
use crate::model::{Action, Error, Event, Trace, Verdict};

/// Calls `f` with the client of the current run: the one it was registered through, else
/// the global one (borrowed, not cloned: this is on `log_event`'s path).
fn with_client<R>(f: impl FnOnce(&Client) -> Result<R, Error>) -> Result<R, Error> {
    slot::with_client(|client| match client {
        Some(client) => f(client),
        None => f(global_client()?),
    })
}

fn client() -> Result<Client, Error> {
    with_client(|client| Ok(client.clone()))
}

/// Logs an event of the current run. Returns at once: the event is queued and sent in the
/// background, in order with the run's other events.
///
/// - Outside any run: [`Error::NoTrace`].
/// - Inside a run that has no trace (it could not be registered and
///   `on_failure = "continue"` ran it anyway, or the SDK is disabled): `Ok(())`, and the
///   event is let go and counted in [`EventStats::untraced`] of the run's client (its
///   `client = …`, else the global client, if one has been set or built). The registration
///   failure itself was reported once, when the run started.
/// - A full queue: [`Error::QueueFull`]; the event is dropped, counted and reported
///   through `tracing`. It never blocks.
///
/// Telemetry should never fail the agent: let the error go, or log it, rather than
/// return it with `?`.
///
/// ```no_run
/// use fabraix::{Event, EventType};
///
/// // Let it go: a drop is counted (`fabraix::stats()`) and reported through `tracing`.
/// let _ = fabraix::log_event(Event::text(EventType::User, "Where is my parcel?"));
///
/// // Or say so in the agent's own log.
/// if let Err(error) = fabraix::log_event(Event::text(EventType::ModelOutput, "Tomorrow.")) {
///     tracing::warn!(%error, "an event was not logged");
/// }
/// ```
pub fn log_event(event: Event) -> Result<(), Error> {
    match slot::current() {
        Slot::Outside => Err(Error::NoTrace),
        Slot::Untraced(_) => {
            let_go_untraced();
            Ok(())
        }
        Slot::Traced(trace) => with_client(|client| client.queue_event(trace.trace_id(), event)),
    }
}

/// Counts an event let go in a run without a trace, on the client the run's calls go
/// through. The global client is counted on only if it exists already: building it here
/// would make a later [`init`](crate::init) fail.
fn let_go_untraced() {
    match slot::client() {
        Some(client) => client.let_go_untraced(),
        None => {
            if let Some(client) = built_global_client() {
                client.let_go_untraced();
            }
        }
    }
}

/// The current run's trace, or the error that says why there is none.
fn checkable_trace() -> Result<Trace, Error> {
    match slot::current() {
        Slot::Traced(trace) => Ok(trace),
        Slot::Outside => Err(Error::NoTrace),
        Slot::Untraced(cause) => Err(untraced(cause)),
    }
}

/// Why a run without a trace cannot check: the SDK is off, or the registration failed.
fn untraced(cause: Arc<Error>) -> Error {
    if matches!(*cause, Error::Disabled) {
        Error::Disabled
    } else {
        Error::Unregistered { cause }
    }
}

/// Asks Fabraix whether the current run may take `action`, and waits for the verdict.
///
/// Fails closed: the result is an `Err` whenever no verdict can be had:
/// - outside any run: [`Error::NoTrace`];
/// - inside a run that could not be registered: [`Error::Unregistered`], whose `cause` is
///   the registration's error (a 401, a timeout, …);
/// - with the SDK disabled: [`Error::Disabled`] (never an invented verdict);
/// - when the API gives no usable answer: that error.
///
/// A blocked action is `Ok` with `is_safe == false`; [`Verdict::require_safe`] turns that
/// into [`Error::Blocked`].
pub async fn check_action(action: &Action) -> Result<Verdict, Error> {
    let trace = checkable_trace()?;
    client()?.check_action(trace.trace_id(), action).await
}

/// [`check_action`] for synchronous code: blocks this thread.
pub fn check_action_blocking(action: &Action) -> Result<Verdict, Error> {
    let trace = checkable_trace()?;
    with_client(|client| client.check_action_blocking(trace.trace_id(), action))
}

/// Waits, up to `timeout`, until every event queued before this call (through the current
/// run's client, or the global one) has been sent or has failed; answers whether that
/// happened in time. Agent fns flush their own run's events when they return; call this
/// before exiting a program that logs events outside them.
pub async fn flush(timeout: Duration) -> bool {
    match client() {
        Ok(client) => client.flush(timeout).await,
        Err(_) => true,
    }
}

/// [`flush`] for synchronous code: blocks this thread.
pub fn flush_blocking(timeout: Duration) -> bool {
    with_client(|client| Ok(client.flush_blocking(timeout))).unwrap_or(true)
}

/// The event counters of the current run's client (or the global one): the `events` of
/// [`stats`]; all zero when there is no client.
#[deprecated(
    since = "0.1.0",
    note = "one name for what a client has done: use `fabraix::stats()`, whose `events` field holds these counts"
)]
pub fn event_stats() -> EventStats {
    stats().map(|stats| stats.events).unwrap_or_default()
}

/// [`Client::stats`] of the current run's client (or the global one); `None` when there is
/// no client (no global one can be built).
pub fn stats() -> Option<Stats> {
    with_client(|client| Ok(client.stats())).ok()
}
