//! The event pipeline: `log_event` enqueues, a background exporter sends.
//!
//! - The caller's path is a capacity check, two counters and a push onto a vector under a
//!   lock held for the push alone (`inbox.rs`): no network, no allocation once the vector
//!   has grown to a burst, no waiting. Past the capacity the event is dropped, counted, and
//!   [`Error::QueueFull`] is returned.
//! - `queue.rs` decides (order per trace, turns between traces, back-off, retries,
//!   flushes) as plain synchronous state; `driver.rs` is the task on the SDK's thread that
//!   feeds it events and send outcomes, and sleeps while there is nothing to do: a parked
//!   driver is woken by a producer only when it sleeps with nothing in flight
//!   (`inbox.rs`).
//! - A flush is a marker sent through the same mailbox, so it waits exactly for the events
//!   logged before it (of one trace, or of all).

mod driver;
mod inbox;
mod queue;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::oneshot;

use crate::api::{Api, io_thread};
use crate::model::wire;
use crate::model::{Error, Event, EventType, TraceId};

/// The exporter's counters: the `events` of [`Client::stats`](crate::Client::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventStats {
    /// Events accepted into the queue.
    pub queued: u64,
    /// Events the API acknowledged.
    pub sent: u64,
    /// Events the API refused, or that kept failing with 500 past the retries.
    pub failed: u64,
    /// Events refused because the queue was full ([`Error::QueueFull`]).
    pub dropped: u64,
    /// Events queued and not yet sent or failed.
    pub in_queue: usize,
    /// Events let go because their run has no trace: logged inside an agent run that could
    /// not be registered (`on_failure = "continue"`) or that runs with the SDK disabled,
    /// or queued on a disabled client. None of them was sent, and none is in `queued`.
    pub untraced: u64,
}

/// The counts behind [`EventStats`], shared by the producers and the driver.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    queued: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    in_queue: AtomicUsize,
    untraced: AtomicU64,
}

impl Counters {
    /// Takes one event in, unless `capacity` events are already in the queue.
    pub fn try_accept(&self, capacity: usize) -> Result<(), Error> {
        if self.in_queue.fetch_add(1, Ordering::AcqRel) >= capacity {
            self.in_queue.fetch_sub(1, Ordering::AcqRel);
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    target: "fabraix",
                    dropped,
                    capacity,
                    "fabraix event queue is full; events are being dropped"
                );
            }
            return Err(Error::QueueFull);
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub fn finish_sent(&self) {
        // Counted before the event leaves the queue, so a flushed caller sees it sent.
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.in_queue.fetch_sub(1, Ordering::AcqRel);
    }

    pub fn finish_failed(&self, error: &Error) {
        let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
        self.in_queue.fetch_sub(1, Ordering::AcqRel);
        if failed.is_power_of_two() {
            tracing::warn!(target: "fabraix", %error, failed, "fabraix event not delivered");
        }
    }

    /// Counts one event let go because its run has no trace.
    pub fn let_go_untraced(&self) {
        self.untraced.fetch_add(1, Ordering::Relaxed);
    }

    /// Events queued and not yet sent or failed.
    pub fn in_queue(&self) -> usize {
        self.in_queue.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> EventStats {
        EventStats {
            queued: self.queued.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            in_queue: self.in_queue(),
            untraced: self.untraced.load(Ordering::Relaxed),
        }
    }
}

/// An event on its way to the driver, stamped when it was logged.
struct Logged {
    trace_id: TraceId,
    kind: EventType,
    timestamp: f64,
    content: String,
    schema: Arc<str>,
}

enum Message {
    Event(Logged),
    Flush {
        trace: Option<TraceId>,
        done: oneshot::Sender<()>,
    },
}

/// The producer side, held by the client. Dropping it (with the last client) lets the
/// driver finish what is queued, under a bounded retry budget, and end.
pub(crate) struct Exporter {
    tx: inbox::Sender,
    counters: Arc<Counters>,
    capacity: usize,
}

impl Exporter {
    /// Starts the driver on the SDK's thread.
    pub fn start(api: Arc<Api>, counters: Arc<Counters>) -> Result<Self, Error> {
        let handle = io_thread::handle()?;
        let (tx, rx) = inbox::channel();
        let capacity = api.options().queue_capacity;
        handle.spawn(driver::drive(api, rx, counters.clone()));
        Ok(Self {
            tx,
            counters,
            capacity,
        })
    }

    /// Queues one event of `trace_id`, stamped now.
    pub fn enqueue(&self, trace_id: TraceId, event: Event) -> Result<(), Error> {
        self.counters.try_accept(self.capacity)?;
        let (kind, content, schema) = event.into_parts();
        let logged = Logged {
            trace_id,
            kind,
            timestamp: wire::unix_seconds(Utc::now()),
            content,
            schema,
        };
        if self.tx.send(Message::Event(logged), false).is_err() {
            let error = Error::Runtime("the event exporter has stopped".into());
            self.counters.finish_failed(&error);
            return Err(error);
        }
        Ok(())
    }

    /// Waits, up to `timeout`, until every event queued before this call (of `trace`, or
    /// of all traces) has been sent or has failed. Answers whether that happened in time.
    pub async fn flush(&self, trace: Option<TraceId>, timeout: Duration) -> bool {
        match self.flush_marker(trace) {
            None => true,
            Some(done) => io_thread::run(wait(done, timeout)).await.unwrap_or(false),
        }
    }

    /// [`flush`](Self::flush), blocking this thread.
    pub fn flush_blocking(&self, trace: Option<TraceId>, timeout: Duration) -> bool {
        match self.flush_marker(trace) {
            None => true,
            Some(done) => io_thread::block_on(wait(done, timeout)).unwrap_or(false),
        }
    }

    /// Waits for the events of `trace` as an agent fn does when it returns: only while
    /// everything queued can be sent within the time left at the key's current pace, and
    /// looking again whenever a lane of the key pauses (a 429 while it waits). Answers
    /// whether they were all sent (or failed) before it stopped waiting.
    pub async fn flush_run(&self, api: Arc<Api>, trace: TraceId, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        if !worth_waiting(&api, &self.counters, timeout) {
            return false;
        }
        match self.flush_marker(Some(trace)) {
            None => true,
            Some(done) => {
                let counters = self.counters.clone();
                let wait = wait_unless_throttled(api, counters, done, deadline);
                io_thread::run(wait).await.unwrap_or(false)
            }
        }
    }

    /// [`flush_run`](Self::flush_run), blocking this thread.
    pub fn flush_run_blocking(&self, api: Arc<Api>, trace: TraceId, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        if !worth_waiting(&api, &self.counters, timeout) {
            return false;
        }
        match self.flush_marker(Some(trace)) {
            None => true,
            Some(done) => {
                let counters = self.counters.clone();
                let wait = wait_unless_throttled(api, counters, done, deadline);
                io_thread::block_on(wait).unwrap_or(false)
            }
        }
    }

    fn flush_marker(&self, trace: Option<TraceId>) -> Option<oneshot::Receiver<()>> {
        if self.counters.in_queue() == 0 {
            return None;
        }
        let (done, waiting) = oneshot::channel();
        self.tx.send(Message::Flush { trace, done }, true).ok()?;
        Some(waiting)
    }
}

async fn wait(done: oneshot::Receiver<()>, timeout: Duration) -> bool {
    matches!(tokio::time::timeout(timeout, done).await, Ok(Ok(())))
}

/// Waits for `done` until `deadline`, giving up as soon as a pause makes what is queued
/// unable to leave in the time left.
async fn wait_unless_throttled(
    api: Arc<Api>,
    counters: Arc<Counters>,
    done: oneshot::Receiver<()>,
    deadline: Instant,
) -> bool {
    let mut done = std::pin::pin!(done);
    loop {
        let paused = api.next_pause();
        let mut paused = std::pin::pin!(paused);
        paused.as_mut().enable();
        let left = deadline.saturating_duration_since(Instant::now());
        if !worth_waiting(&api, &counters, left) {
            return false;
        }
        tokio::select! {
            sent = &mut done => return sent.is_ok(),
            _ = paused => {}
            _ = tokio::time::sleep_until(deadline.into()) => return false,
        }
    }
}

/// Whether the events queued can all be sent within `left` at the key's current pace.
/// With room to spare when the budget is what holds them: the estimate does not know the
/// network's latency.
pub(crate) fn worth_waiting(api: &Api, counters: &Counters, left: Duration) -> bool {
    let queued = counters.in_queue();
    if queued == 0 {
        return false;
    }
    let needed = match api.time_to_send(queued) {
        Duration::ZERO => Duration::ZERO,
        needed => needed
            .mul_f64(1.25)
            .saturating_add(Duration::from_millis(50)),
    };
    if needed > left {
        tracing::debug!(
            target: "fabraix",
            queued,
            needed_ms = needed.as_millis() as u64,
            "not waiting for this run's events: at the current pace they take longer than the time left"
        );
        return false;
    }
    true
}
