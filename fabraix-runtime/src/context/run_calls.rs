//! The calls that act on the current run: log an event, check an action, flush.

use std::time::Duration;

use super::slot::{self, Slot};
use crate::client::{Client, Stats, global_client};
use crate::export::EventStats;
use crate::model::{Action, Error, Event, Verdict};

/// Calls `f` with the client of the current run: the one it was registered through, else
/// the global one (borrowed, not cloned: this is on `log_event`'s path).
fn with_client<R>(f: impl FnOnce(&Client) -> Result<R, Error>) -> Result<R, Error> {
    match slot::client() {
        Some(client) => f(&client),
        None => f(global_client()?),
    }
}

fn client() -> Result<Client, Error> {
    with_client(|client| Ok(client.clone()))
}

/// Logs an event of the current run. Returns at once: the event is queued and sent in the
/// background, in order with the run's other events.
///
/// - Outside any run: [`Error::NoTrace`].
/// - Inside a run that could not be registered (`on_failure = "continue"`, or the SDK is
///   disabled): `Ok(())`, and the event is let go; the registration failure was already
///   reported once.
/// - A full queue: [`Error::QueueFull`]; the event is dropped and counted. It never blocks.
///
/// ```no_run
/// use fabraix_runtime::{Event, EventType};
///
/// # fn demo() -> Result<(), fabraix_runtime::Error> {
/// fabraix_runtime::log_event(Event::text(EventType::User, "Where is my parcel?"))?;
/// # Ok(()) }
/// ```
pub fn log_event(event: Event) -> Result<(), Error> {
    match slot::current() {
        Slot::Outside => Err(Error::NoTrace),
        Slot::Untraced(_) => Ok(()),
        Slot::Traced(trace) => with_client(|client| client.queue_event(trace.trace_id(), event)),
    }
}

/// Asks Fabraix whether the current run may take `action`, and waits for the verdict.
///
/// Fails closed: outside a run, in a run that could not be registered, or when no verdict
/// can be had, the result is an `Err`. A blocked action is `Ok` with `is_safe == false`;
/// [`Verdict::require_safe`] turns that into [`Error::Blocked`].
pub async fn check_action(action: &Action) -> Result<Verdict, Error> {
    let trace = slot::trace().ok_or(Error::NoTrace)?;
    client()?.check_action(trace.trace_id(), action).await
}

/// [`check_action`] for synchronous code: blocks this thread.
pub fn check_action_blocking(action: &Action) -> Result<Verdict, Error> {
    let trace = slot::trace().ok_or(Error::NoTrace)?;
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

/// The event counters of the current run's client (or the global one).
pub fn event_stats() -> EventStats {
    with_client(|client| Ok(client.event_stats())).unwrap_or_default()
}

/// [`Client::stats`] of the current run's client (or the global one); `None` when there is
/// no client (no global one can be built).
pub fn stats() -> Option<Stats> {
    with_client(|client| Ok(client.stats())).ok()
}
