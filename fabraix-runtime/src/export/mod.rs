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
//! - With a spool (`spool/`, feature `spool`), events are also kept on disk, written
//!   behind by a thread of the spool's own, and past the capacity go to disk instead of
//!   being refused; a later process sends what is left.

mod driver;
mod inbox;
mod queue;
mod spool;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::oneshot;

use crate::api::{Api, io_thread};
use crate::model::wire;
use crate::model::{Error, Event, EventType, TraceId};

#[cfg(feature = "spool")]
pub(crate) use spool::SpoolSettings;

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
    /// Events queued and not yet sent or failed (with a spool, those on disk too).
    pub in_queue: usize,
    /// Events let go because their run has no trace: logged inside an agent run that could
    /// not be registered (`on_failure = "continue"`) or that runs with the SDK disabled,
    /// or queued on a disabled client. None of them was sent, and none is in `queued`.
    pub untraced: u64,
    /// With a spool: events written to disk (an event delivered within the write-behind
    /// interval never is).
    pub spooled: u64,
    /// With a spool: events that arrived past the queue's capacity and went to disk only,
    /// instead of being refused.
    pub spilled: u64,
    /// With a spool: events left on disk by earlier processes (or clients) that this
    /// client took over to send. Also counted in `in_queue` until done.
    pub recovered: u64,
    /// With a spool: events dropped from it by its size or age cap, oldest first.
    pub spool_dropped: u64,
    /// With a spool: records that could not be trusted (a bad length, checksum or
    /// format, or in a file gone unreadable) and were skipped.
    pub spool_damaged: u64,
    /// With a spool: unreadable spool files set aside (renamed `*.damaged-<time>`).
    pub spool_set_aside: u64,
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
    /// With a spool: events in memory (the mailbox, the queue, the batch on its way to
    /// disk), which is what bounds `log_event` then.
    held: AtomicUsize,
    /// What bounds `log_event`: see [`SpoolState`].
    spool: AtomicU8,
    /// The spool's first search of its folder is not done: a flush must wait for it.
    opening: AtomicBool,
    spooled: AtomicU64,
    spilled: AtomicU64,
    recovered: AtomicU64,
    spool_dropped: AtomicU64,
    spool_damaged: AtomicU64,
    spool_set_aside: AtomicU64,
}

impl Counters {
    /// Takes one event in, unless `capacity` events are already in the queue.
    pub fn try_accept(&self, capacity: usize) -> Result<(), Error> {
        if self.in_queue.fetch_add(1, Ordering::AcqRel) >= capacity {
            self.in_queue.fetch_sub(1, Ordering::AcqRel);
            return Err(self.refuse(capacity));
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Takes one event in, by the rule of the spool's state: without one (or once it is
    /// closed), as [`try_accept`](Self::try_accept); with one, the bound is on the events
    /// in memory, and past the capacity (while the spool can be written) they go to disk.
    pub fn try_accept_spooled(&self, capacity: usize) -> Result<(), Error> {
        let limit = match self.spool.load(Ordering::Acquire) {
            SpoolState::WRITING => capacity.saturating_add(spool::IN_TRANSIT),
            SpoolState::MEMORY => capacity,
            _ => return self.try_accept(capacity),
        };
        if self.held.fetch_add(1, Ordering::AcqRel) >= limit {
            self.held.fetch_sub(1, Ordering::AcqRel);
            return Err(self.refuse(limit));
        }
        self.in_queue.fetch_add(1, Ordering::AcqRel);
        self.queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn refuse(&self, capacity: usize) -> Error {
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if dropped.is_power_of_two() {
            tracing::warn!(
                target: "fabraix",
                dropped,
                capacity,
                "fabraix event queue is full; events are being dropped"
            );
        }
        Error::QueueFull
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

    /// Events queued and not yet sent or failed; one more while a spool is still
    /// searching its folder for events to take over (so that a flush waits for them).
    pub fn in_queue(&self) -> usize {
        self.in_queue.load(Ordering::Acquire) + usize::from(self.opening.load(Ordering::Acquire))
    }

    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    /// A spool is starting: it takes what is past the capacity, and flushes wait for its
    /// first search of the folder.
    fn spool_on(&self) {
        self.spool.store(SpoolState::WRITING, Ordering::Release);
        self.opening.store(true, Ordering::Release);
    }

    /// The spool's first search is done (or it is gone).
    fn spool_opened(&self) {
        self.opening.store(false, Ordering::Release);
    }

    /// The spool cannot be written: `log_event` is bounded by the capacity again.
    fn spool_off(&self) {
        self.spool.store(SpoolState::MEMORY, Ordering::Release);
    }

    /// The spool is closed (or gone): the queue no longer counts what it holds.
    fn spool_closed(&self) {
        self.spool.store(SpoolState::NONE, Ordering::Release);
        self.opening.store(false, Ordering::Release);
    }

    /// Events loaded from disk into memory.
    fn hold(&self, n: usize) {
        self.held.fetch_add(n, Ordering::AcqRel);
    }

    /// Events that left memory (done, or written to disk only).
    fn release_held(&self, n: usize) {
        if n > 0 {
            let _ = self
                .held
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                    Some(held.saturating_sub(n))
                });
        }
    }

    /// `n` events done with without being sent or failed: dropped by a cap, unreadable,
    /// or left on disk for the next process.
    fn let_go(&self, n: u64) {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let _ = self
            .in_queue
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(n))
            });
    }

    fn spilled(&self) {
        self.spilled.fetch_add(1, Ordering::Relaxed);
    }

    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    fn spooled(&self, n: u64) {
        self.spooled.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` events of earlier writers taken over: queued from now on.
    fn recover(&self, n: u64) {
        self.recovered.fetch_add(n, Ordering::Relaxed);
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.in_queue.fetch_add(n, Ordering::AcqRel);
    }

    /// One event dropped by the spool's size or age cap.
    fn spool_dropped(&self) {
        self.let_go(1);
        let dropped = self.spool_dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if dropped.is_power_of_two() {
            tracing::warn!(
                target: "fabraix",
                dropped,
                "fabraix spool is over its size or age cap; its oldest events are being dropped"
            );
        }
    }

    fn spool_damage(&self, records: u64) {
        self.spool_damaged.fetch_add(records, Ordering::Relaxed);
    }

    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    fn spool_set_aside(&self) {
        self.spool_set_aside.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> EventStats {
        EventStats {
            queued: self.queued.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            in_queue: self.in_queue.load(Ordering::Acquire),
            untraced: self.untraced.load(Ordering::Relaxed),
            spooled: self.spooled.load(Ordering::Relaxed),
            spilled: self.spilled.load(Ordering::Relaxed),
            recovered: self.recovered.load(Ordering::Relaxed),
            spool_dropped: self.spool_dropped.load(Ordering::Relaxed),
            spool_damaged: self.spool_damaged.load(Ordering::Relaxed),
            spool_set_aside: self.spool_set_aside.load(Ordering::Relaxed),
        }
    }
}

/// The states of [`Counters::spool`].
struct SpoolState;

impl SpoolState {
    /// No spool: `in_queue` is bounded by the capacity.
    const NONE: u8 = 0;
    /// Events past the capacity go to disk: what is in memory is bounded by the capacity
    /// and [`spool::IN_TRANSIT`].
    const WRITING: u8 = 1;
    /// The spool cannot be written: what is in memory is bounded by the capacity.
    const MEMORY: u8 = 2;
}

/// An event on its way to the driver, stamped when it was logged.
#[derive(Debug)]
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
    /// Commit to the spool what is staged and what was delivered.
    Sync {
        done: oneshot::Sender<()>,
    },
    /// The process is exiting: once no send is in flight, commit and close the spool;
    /// what it holds is the next process's.
    CloseSpool {
        done: oneshot::Sender<()>,
    },
}

/// The producer side, held by the client. Dropping it (with the last client) lets the
/// driver finish what is queued, under a bounded retry budget, and end.
pub(crate) struct Exporter {
    tx: inbox::Sender,
    counters: Arc<Counters>,
    capacity: usize,
    /// Events are kept on a spool.
    spooled: bool,
}

impl Exporter {
    /// Starts the driver on the SDK's thread.
    pub fn start(api: Arc<Api>, counters: Arc<Counters>) -> Result<Self, Error> {
        Self::launch_on(io_thread::handle()?, api, counters, None)
    }

    /// Starts the driver with a spool in `settings.dir`: at once, so that what earlier
    /// processes left there is sent from the start.
    #[cfg(feature = "spool")]
    pub fn start_spooled(
        api: Arc<Api>,
        counters: Arc<Counters>,
        settings: &SpoolSettings,
    ) -> Result<Self, Error> {
        let handle = io_thread::handle()?;
        let spool = spool::start(settings, api.settings().key(), counters.clone());
        if spool.is_some() {
            counters.spool_on();
        }
        let spool = spool.map(|link| (link, settings.write_behind));
        Self::launch_on(handle, api, counters, spool)
    }

    fn launch_on(
        handle: &tokio::runtime::Handle,
        api: Arc<Api>,
        counters: Arc<Counters>,
        spool: Option<(spool::Handle, Duration)>,
    ) -> Result<Self, Error> {
        let (tx, rx) = inbox::channel();
        let capacity = api.options().queue_capacity;
        let spooled = spool.is_some();
        handle.spawn(driver::drive(api, rx, counters.clone(), spool));
        Ok(Self {
            tx,
            counters,
            capacity,
            spooled,
        })
    }

    /// Queues one event of `trace_id`, stamped now.
    pub fn enqueue(&self, trace_id: TraceId, event: Event) -> Result<(), Error> {
        if self.spooled {
            self.counters.try_accept_spooled(self.capacity)?;
        } else {
            self.counters.try_accept(self.capacity)?;
        }
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
    /// A flush of all traces on a spool then commits it (what is still queued is on disk,
    /// and what was delivered is gone from it), waiting at least [`SYNC_AT_LEAST`] for that.
    pub async fn flush(&self, trace: Option<TraceId>, timeout: Duration) -> bool {
        let started = std::time::Instant::now();
        let flushed = match self.flush_marker(trace) {
            None => true,
            Some(done) => io_thread::run(wait(done, timeout)).await.unwrap_or(false),
        };
        match self.sync_marker(trace) {
            None => flushed,
            Some(done) => {
                let left = timeout.saturating_sub(started.elapsed()).max(SYNC_AT_LEAST);
                io_thread::run(wait(done, left)).await.unwrap_or(false) && flushed
            }
        }
    }

    /// [`flush`](Self::flush), blocking this thread.
    pub fn flush_blocking(&self, trace: Option<TraceId>, timeout: Duration) -> bool {
        let started = std::time::Instant::now();
        let flushed = match self.flush_marker(trace) {
            None => true,
            Some(done) => io_thread::block_on(wait(done, timeout)).unwrap_or(false),
        };
        match self.sync_marker(trace) {
            None => flushed,
            Some(done) => {
                let left = timeout.saturating_sub(started.elapsed()).max(SYNC_AT_LEAST);
                io_thread::block_on(wait(done, left)).unwrap_or(false) && flushed
            }
        }
    }

    /// Waits for the events of `trace` as an agent fn does when it returns: only while
    /// everything queued can be sent within the time left at the key's current pace, and
    /// looking again whenever a lane of the key pauses (a 429 while it waits). Answers
    /// whether they were all sent (or failed) before it stopped waiting.
    pub async fn flush_run(&self, api: Arc<Api>, trace: TraceId, timeout: Duration) -> bool {
        match self.run_flush(api, trace, timeout) {
            RunFlush::Done(done) => done,
            RunFlush::Wait(wait) => io_thread::run(wait).await.unwrap_or(false),
        }
    }

    /// [`flush_run`](Self::flush_run), blocking this thread.
    pub fn flush_run_blocking(&self, api: Arc<Api>, trace: TraceId, timeout: Duration) -> bool {
        match self.run_flush(api, trace, timeout) {
            RunFlush::Done(done) => done,
            RunFlush::Wait(wait) => io_thread::block_on(wait).unwrap_or(false),
        }
    }

    /// What a flush of `trace`'s events comes to: an answer at once, or a wait to run.
    fn run_flush(
        &self,
        api: Arc<Api>,
        trace: TraceId,
        timeout: Duration,
    ) -> RunFlush<impl std::future::Future<Output = bool> + Send + 'static> {
        let deadline = Instant::now() + timeout;
        if !worth_waiting(&api, &self.counters, timeout) {
            return RunFlush::Done(false);
        }
        match self.flush_marker(Some(trace)) {
            None => RunFlush::Done(true),
            Some(done) => RunFlush::Wait(wait_unless_throttled(
                api,
                self.counters.clone(),
                done,
                deadline,
            )),
        }
    }

    /// Whether events are kept on a spool.
    pub fn is_spooled(&self) -> bool {
        self.spooled
    }

    /// At process exit, after a flush: lets the sends in flight finish (starting no
    /// other), commits the spool and closes it, waiting up to `timeout`. A process that
    /// exits then sends nothing twice: what was delivered is deleted, and what was not is
    /// on disk for the next process, which alone sends it. Events logged afterwards are
    /// kept in memory only.
    pub fn close_spool_blocking(&self, timeout: Duration) -> bool {
        if !self.spooled {
            return true;
        }
        let (done, waiting) = oneshot::channel();
        if self.tx.send(Message::CloseSpool { done }, true).is_err() {
            return false;
        }
        io_thread::block_on(wait(waiting, timeout)).unwrap_or(false)
    }

    fn sync_marker(&self, trace: Option<TraceId>) -> Option<oneshot::Receiver<()>> {
        if !self.spooled || trace.is_some() {
            return None;
        }
        let (done, waiting) = oneshot::channel();
        self.tx.send(Message::Sync { done }, true).ok()?;
        Some(waiting)
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

/// A run's flush: answered at once, or a wait for the SDK's thread.
enum RunFlush<W> {
    Done(bool),
    Wait(W),
}

/// How long a flush waits for the spool's commit at least, even past its own timeout:
/// a commit takes milliseconds, and without it what was delivered is sent again.
const SYNC_AT_LEAST: Duration = Duration::from_secs(2);

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
