//! The event pipeline: `log_event` enqueues, a background exporter sends.
//!
//! - The caller's path is a capacity check, two counters and a channel push: no network,
//!   no lock, no waiting. Past the capacity the event is dropped, counted, and
//!   [`Error::QueueFull`] is returned.
//! - A consumer task on the SDK runtime files events into one queue per trace. One worker
//!   per trace with events sends them one at a time, so a trace's events arrive in the
//!   order they were logged; traces are sent in parallel, up to `max_in_flight` requests.
//! - When the API is unavailable (connection errors, timeouts, 429, 502, 503, 504) the
//!   whole exporter backs off (full jitter, `Retry-After` honoured) and the event is tried
//!   again until it is delivered: an outage loses nothing the queue can hold. Once every
//!   client of the exporter is dropped, the rest gets `max_retries` more tries, not forever. A 500 is
//!   retried `max_retries` times; other errors (400, 401, 403, 404) fail the event at once.
//!   Failures and drops are counted and reported through `tracing`.
//! - A flush is a marker sent down the same channel, so it waits exactly for the events
//!   logged before it (of one trace, or of all).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

use crate::config::Config;
use crate::error::Error;
use crate::event::{Event, EventType};
use crate::ids::TraceId;
use crate::transport::{self, Failure};
use crate::wire::{self, EventRequest, EventResponse};
use crate::{client, io};

/// How long the consumer keeps polling after the queue runs dry before it parks. While it
/// polls, producers never pay for waking it.
const LINGER: Duration = Duration::from_millis(1);
const LINGER_ROUNDS: u32 = 20;

/// The exporter's counters, for [`Client::event_stats`](crate::Client::event_stats).
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
}

#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    pending: AtomicUsize,
}

struct Queued {
    trace_id: TraceId,
    kind: EventType,
    timestamp: f64,
    content: String,
    schema: Arc<str>,
}

enum Message {
    Event(Queued),
    Flush {
        trace: Option<TraceId>,
        done: oneshot::Sender<()>,
    },
}

/// The producer side, held by the [`Client`](crate::Client).
pub(crate) struct Exporter {
    tx: mpsc::UnboundedSender<Message>,
    wake: Arc<Notify>,
    counters: Arc<Counters>,
    capacity: usize,
}

impl Exporter {
    /// Starts the consumer on the SDK runtime. It owns clones of the http client and the
    /// settings, not the [`Client`](crate::Client), so dropping the last client ends it
    /// once its queue is empty.
    pub fn start(http: reqwest::Client, config: Config) -> Result<Self, Error> {
        let handle = io::handle()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let counters = Arc::new(Counters::default());
        let capacity = config.queue_capacity;
        let shared = Arc::new(Shared {
            semaphore: Semaphore::new(config.max_in_flight),
            http,
            config,
            counters: counters.clone(),
            state: Mutex::new(State::default()),
            gate: Mutex::new(Gate::default()),
            orphaned: std::sync::atomic::AtomicBool::new(false),
        });
        handle.spawn(consume(rx, wake.clone(), shared));
        Ok(Self {
            tx,
            wake,
            counters,
            capacity,
        })
    }

    /// Queues one event of `trace_id`, stamped now.
    pub fn enqueue(&self, trace_id: TraceId, event: Event) -> Result<(), Error> {
        let counters = &self.counters;
        if counters.pending.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            counters.pending.fetch_sub(1, Ordering::AcqRel);
            let dropped = counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    target: "fabraix",
                    dropped,
                    capacity = self.capacity,
                    "fabraix event queue is full; events are being dropped"
                );
            }
            return Err(Error::QueueFull);
        }
        counters.queued.fetch_add(1, Ordering::Relaxed);
        let (kind, content, schema) = event.into_parts();
        let queued = Queued {
            trace_id,
            kind,
            timestamp: wire::unix_seconds(Utc::now()),
            content,
            schema,
        };
        if self.tx.send(Message::Event(queued)).is_err() {
            counters.pending.fetch_sub(1, Ordering::AcqRel);
            counters.failed.fetch_add(1, Ordering::Relaxed);
            return Err(Error::Runtime("the event exporter has stopped".into()));
        }
        Ok(())
    }

    /// Events queued and not yet sent or failed.
    pub fn in_queue(&self) -> usize {
        self.counters.pending.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> EventStats {
        let c = &self.counters;
        EventStats {
            queued: c.queued.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            in_queue: self.in_queue(),
        }
    }

    /// Waits, up to `timeout`, until every event queued before this call (of `trace`, or
    /// of all traces) has been sent or has failed. Answers whether that happened in time.
    pub async fn flush(&self, trace: Option<TraceId>, timeout: Duration) -> bool {
        match self.flush_marker(trace) {
            None => true,
            Some(done) => io::run(wait(done, timeout)).await.unwrap_or(false),
        }
    }

    /// [`flush`](Self::flush), blocking this thread.
    pub fn flush_blocking(&self, trace: Option<TraceId>, timeout: Duration) -> bool {
        match self.flush_marker(trace) {
            None => true,
            Some(done) => io::block_on(wait(done, timeout)).unwrap_or(false),
        }
    }

    fn flush_marker(&self, trace: Option<TraceId>) -> Option<oneshot::Receiver<()>> {
        if self.in_queue() == 0 {
            return None;
        }
        let (done, waiting) = oneshot::channel();
        self.tx.send(Message::Flush { trace, done }).ok()?;
        self.wake.notify_one();
        Some(waiting)
    }
}

async fn wait(done: oneshot::Receiver<()>, timeout: Duration) -> bool {
    matches!(tokio::time::timeout(timeout, done).await, Ok(Ok(())))
}

/// Everything the consumer and the workers share.
struct Shared {
    http: reqwest::Client,
    config: Config,
    counters: Arc<Counters>,
    semaphore: Semaphore,
    state: Mutex<State>,
    gate: Mutex<Gate>,
    /// Set once every client of this exporter is gone: nothing will flush or count the
    /// queue any more, so an unavailable API is retried `max_retries` times, not forever.
    orphaned: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct State {
    traces: HashMap<TraceId, TraceQueue>,
    /// Receive numbers of the events not yet sent or failed, for global flushes.
    outstanding: BTreeSet<u64>,
    received: u64,
    /// Global flushes: done when nothing received before `upto` is outstanding.
    waiters: Vec<(u64, oneshot::Sender<()>)>,
}

#[derive(Default)]
struct TraceQueue {
    events: VecDeque<(u64, Queued)>,
    received: u64,
    completed: u64,
    /// Whether a worker is sending this trace's events.
    active: bool,
    /// Flushes of this trace: done when `completed` reaches the count.
    waiters: Vec<(u64, oneshot::Sender<()>)>,
}

/// The shared pause after the API said it is unavailable.
#[derive(Default)]
struct Gate {
    not_before: Option<Instant>,
    failures: u32,
}

async fn consume(mut rx: mpsc::UnboundedReceiver<Message>, wake: Arc<Notify>, shared: Arc<Shared>) {
    let mut idle_rounds = 0;
    loop {
        let mut got_any = false;
        loop {
            match rx.try_recv() {
                Ok(message) => {
                    file(&shared, message);
                    got_any = true;
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return orphan(&shared),
            }
        }
        idle_rounds = if got_any { 0 } else { idle_rounds + 1 };
        if idle_rounds > LINGER_ROUNDS {
            match rx.recv().await {
                Some(message) => file(&shared, message),
                None => return orphan(&shared),
            }
            idle_rounds = 0;
        } else {
            tokio::select! {
                _ = tokio::time::sleep(LINGER) => {}
                _ = wake.notified() => {}
            }
        }
    }
}

/// Every client is gone; the workers finish what is queued under a bounded retry budget.
fn orphan(shared: &Shared) {
    shared.orphaned.store(true, Ordering::Release);
}

/// Files one message: an event into its trace's queue (starting a worker if the trace has
/// none), a flush into the waiters.
fn file(shared: &Arc<Shared>, message: Message) {
    let mut state = shared.state();
    match message {
        Message::Event(event) => {
            let number = state.received;
            state.received += 1;
            state.outstanding.insert(number);
            let trace_id = event.trace_id;
            let queue = state.traces.entry(trace_id).or_default();
            queue.events.push_back((number, event));
            queue.received += 1;
            if !queue.active {
                queue.active = true;
                tokio::spawn(drive(shared.clone(), trace_id));
            }
        }
        Message::Flush {
            trace: Some(trace),
            done,
        } => match state.traces.get_mut(&trace) {
            Some(queue) if queue.completed < queue.received => {
                let upto = queue.received;
                queue.waiters.push((upto, done));
            }
            _ => {
                let _ = done.send(());
            }
        },
        Message::Flush { trace: None, done } => {
            let upto = state.received;
            if state.outstanding.first().is_none_or(|first| *first >= upto) {
                let _ = done.send(());
            } else {
                state.waiters.push((upto, done));
            }
        }
    }
}

/// Sends one trace's events in order until its queue is empty.
async fn drive(shared: Arc<Shared>, trace_id: TraceId) {
    loop {
        let (number, event) = {
            let mut state = shared.state();
            let Some(queue) = state.traces.get_mut(&trace_id) else {
                return;
            };
            match queue.events.pop_front() {
                Some(next) => next,
                None => {
                    queue.active = false;
                    if queue.waiters.is_empty() {
                        state.traces.remove(&trace_id);
                    }
                    return;
                }
            }
        };
        let mut in_hand = InHand {
            shared: &shared,
            trace_id,
            number,
            done: false,
        };
        deliver(&shared, &event).await;
        in_hand.done = true;
        complete(&shared, trace_id, number);
    }
}

/// The event a worker is sending. Should the worker ever stop in the middle (a panic), the
/// event counts as failed and the trace's queue goes on with a new worker, rather than
/// waiting forever on one that is gone.
struct InHand<'a> {
    shared: &'a Arc<Shared>,
    trace_id: TraceId,
    number: u64,
    done: bool,
}

impl Drop for InHand<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
        complete(self.shared, self.trace_id, self.number);
        let mut state = self.shared.state();
        if let Some(queue) = state.traces.get_mut(&self.trace_id) {
            if queue.events.is_empty() {
                queue.active = false;
            } else if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(drive(self.shared.clone(), self.trace_id));
            } else {
                queue.active = false;
            }
        }
    }
}

fn complete(shared: &Shared, trace_id: TraceId, number: u64) {
    // Before any flush is released, so a flushed caller never sees the event in the queue.
    shared.counters.pending.fetch_sub(1, Ordering::AcqRel);
    let mut state = shared.state();
    state.outstanding.remove(&number);
    if let Some(queue) = state.traces.get_mut(&trace_id) {
        queue.completed += 1;
        let completed = queue.completed;
        release(&mut queue.waiters, |upto| upto <= completed);
    }
    if !state.waiters.is_empty() {
        let first = state.outstanding.first().copied();
        release(&mut state.waiters, |upto| first.is_none_or(|f| f >= upto));
    }
}

fn release(waiters: &mut Vec<(u64, oneshot::Sender<()>)>, done: impl Fn(u64) -> bool) {
    let mut i = 0;
    while i < waiters.len() {
        if done(waiters[i].0) {
            let (_, sender) = waiters.swap_remove(i);
            let _ = sender.send(());
        } else {
            i += 1;
        }
    }
}

/// Sends one event until the API takes it, refuses it, or a 500 outlasts the retries.
async fn deliver(shared: &Shared, event: &Queued) {
    const ENDPOINT: &str = "/event";
    let body = match client::encode(
        "an event",
        &EventRequest {
            event_type: event.kind.as_str(),
            trace_id: event.trace_id,
            timestamp: event.timestamp,
            content: &event.content,
            schema: &event.schema,
        },
    ) {
        Ok(body) => body,
        Err(error) => return fail(shared, &error),
    };
    let mut server_errors = 0;
    let mut orphaned_retries = 0;
    loop {
        pause(shared).await;
        let outcome = {
            let _permit = shared.semaphore.acquire().await;
            post(shared, ENDPOINT, body.clone()).await
        };
        match outcome {
            Ok(_) => {
                shared.gate().failures = 0;
                shared.counters.sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(failure) if shared.orphaned.load(Ordering::Acquire) && failure.retryable => {
                if orphaned_retries >= shared.config.retry.max_retries {
                    return fail(shared, &failure.error);
                }
                orphaned_retries += 1;
                back_off(shared, &failure);
            }
            Err(failure) if failure.retryable && failure.error.status() != Some(500) => {
                back_off(shared, &failure);
            }
            Err(failure)
                if failure.retryable && server_errors < shared.config.retry.max_retries =>
            {
                tokio::time::sleep(shared.config.retry.delay(server_errors, None)).await;
                server_errors += 1;
            }
            Err(failure) => return fail(shared, &failure.error),
        }
    }
}

async fn post(
    shared: &Shared,
    endpoint: &'static str,
    body: Bytes,
) -> Result<EventResponse, Failure> {
    transport::post_once(&shared.http, &shared.config, endpoint, body).await
}

/// Waits while the exporter is backing off.
async fn pause(shared: &Shared) {
    loop {
        let until = shared.gate().not_before;
        match until {
            Some(until) if until > Instant::now() => {
                tokio::time::sleep_until(until.into()).await;
            }
            _ => return,
        }
    }
}

/// The API is unavailable: every worker waits (the rate limit is per key, not per trace).
fn back_off(shared: &Shared, failure: &Failure) {
    let mut gate = shared.gate();
    let delay = shared
        .config
        .retry
        .delay(gate.failures, failure.retry_after);
    gate.failures = gate.failures.saturating_add(1);
    let now = Instant::now();
    let until = now.checked_add(delay).unwrap_or(now);
    gate.not_before = Some(gate.not_before.map_or(until, |t| t.max(until)));
    if gate.failures == 1 || gate.failures.is_power_of_two() {
        tracing::warn!(
            target: "fabraix",
            error = %failure.error,
            failures = gate.failures,
            wait_ms = delay.as_millis() as u64,
            "fabraix api unavailable; events wait in the queue"
        );
    }
}

fn fail(shared: &Shared, error: &Error) {
    let failed = shared.counters.failed.fetch_add(1, Ordering::Relaxed) + 1;
    if failed.is_power_of_two() {
        tracing::warn!(
            target: "fabraix",
            %error,
            failed,
            "fabraix event not delivered"
        );
    }
}
