//! What the exporter does next, as plain synchronous state: events filed per trace, which
//! one to send, what a send's outcome means, when to wait, which flushes are done, and,
//! with a spool, what to write to disk, delete from it and read back.
//!
//! The driver (`driver.rs`) only moves events, outcomes and the spool's answers between
//! this state, the network and the spool's thread; every decision is made here, where it
//! can be tested without any of them.
//!
//! - Each trace's events are sent one at a time, in the order they were logged; traces
//!   take turns (a trace goes to the back of the line after each send), up to
//!   `max_in_flight` sends at once.
//! - While the API is unavailable (429, 502, 503, 504, connection errors, timeouts) every
//!   send waits out one shared back-off, and the event is tried again until it is
//!   delivered. A 500 is retried `max_retries` times, with its trace waiting between tries.
//!   Anything else (400, 401, 403, 404, an undecodable answer) fails the event at once.
//! - Once every client of the exporter is gone ("orphaned"), nothing will flush or count
//!   the queue any more, so an unavailable API is retried `max_retries` times, not forever
//!   (with a spool, what is left stays on disk for the next process).
//! - A flush waits for exactly the events filed before it, of one trace or of all: a
//!   trace's events finish in order, so it waits until the trace has finished as many as
//!   it had filed.
//! - With a spool (`spool/`): every event filed is staged for the disk and written with
//!   its batch one write-behind interval later, unless it was delivered first. Once
//!   `capacity` events are held in memory, a trace's further events go to disk only (its
//!   "tail"), and so do all its later ones until the tail is read back, in order, when
//!   there is room. Events found on disk from earlier processes are tails too. Delivered
//!   (or refused) events are deleted; events dropped by the spool's caps are let go.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::spool::{self, Command, Dropped, Loaded, OWN, Record, Reply, Row};
use super::{Counters, Logged};
use crate::api::{Failure, RetryPolicy};
use crate::model::{Error, TraceId, wire};

/// One event handed to the driver to send.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub trace_id: TraceId,
    pub body: Bytes,
    /// The back-off episode the send started in: only a failure of a send started after
    /// the last pause lengthens the next one.
    epoch: u64,
}

/// What to do next.
#[derive(Debug)]
pub(crate) enum Next {
    /// Send this.
    Send(Job),
    /// Nothing may be sent before this instant (a back-off, a trace waiting after a 500,
    /// a batch due for the disk).
    WaitUntil(Instant),
    /// Nothing to send until a send completes, an event arrives or the spool answers.
    Idle,
}

/// A caller waiting for the events filed before it, on `remaining` traces.
struct Waiter {
    remaining: usize,
    done: oneshot::Sender<()>,
}

/// An event's body: as logged until its first send, encoded from then on (for its
/// retries). Encoding at the first send, not when the event is filed, keeps that work off
/// the SDK's thread while a producer is still logging a burst, and a queued event smaller.
pub(super) enum Body {
    Logged(Arc<Logged>),
    Encoded(Bytes),
}

impl Body {
    fn encode(&mut self) -> Result<Bytes, Error> {
        let body = match self {
            Body::Encoded(body) => return Ok(body.clone()),
            Body::Logged(logged) => wire::event_body(
                logged.kind.as_str(),
                logged.trace_id,
                logged.timestamp,
                &logged.content,
                &logged.schema,
            )?,
        };
        *self = Body::Encoded(body.clone());
        Ok(body)
    }
}

struct Pending {
    body: Body,
    server_errors: u32,
    orphan_retries: u32,
    /// Where the spool keeps it, if it does.
    row: Option<Row>,
}

#[derive(Default)]
struct Line {
    /// The events held in memory, oldest first.
    events: VecDeque<Pending>,
    sending: bool,
    /// After a 500: not before this.
    not_before: Option<Instant>,
    /// Events filed (logged here, or found on disk) and finished (sent, failed, dropped).
    filed: u64,
    finished: u64,
    /// Flushes waiting for this trace: (target, waiter), done once `finished` reaches
    /// the target.
    flushes: Vec<(u64, u64)>,
    /// Events of the trace on disk only, after `events`.
    tail: u64,
    /// A read of the tail is in flight: (events it asked for, events spilled since).
    loading: Option<(usize, u64)>,
    /// Listed among the traces waiting for their tail to be read.
    starving: bool,
}

impl Line {
    fn outstanding(&self) -> bool {
        self.finished < self.filed
    }

    fn is_done(&self) -> bool {
        self.events.is_empty()
            && self.tail == 0
            && self.loading.is_none()
            && self.flushes.is_empty()
            && !self.sending
    }
}

#[derive(Default)]
struct Backoff {
    failures: u32,
    not_before: Option<Instant>,
    epoch: u64,
}

/// The queue's side of the spool.
struct Spooling {
    /// Events held in memory at most; past it, events go to disk only.
    capacity: usize,
    /// Events held in memory now.
    held: usize,
    /// Room kept for reads of tails in flight.
    reserved: usize,
    /// How long a batch waits before it is written: half the write-behind interval, the
    /// other half being how long an event may wait in the mailbox (see `driver.rs`).
    batch_wait: Duration,
    /// Staged for the disk, in filing order, and since when.
    batch: Vec<Record>,
    batch_since: Option<Instant>,
    next_row: i64,
    /// Own rows below this have been handed to the spool's thread.
    written_upto: i64,
    /// Staged rows delivered before their batch was written: never written.
    unwritten_done: HashSet<i64>,
    deletes: Vec<Row>,
    outbox: Vec<Command>,
    /// Traces with nothing in memory and a tail to read, in turn order.
    starving: VecDeque<TraceId>,
    /// The folder's first search is not done: nothing is sent (a trace's events found on
    /// disk go before its new ones), and flushes wait for what it finds.
    opening: bool,
    waiting_flushes: Vec<(Option<TraceId>, oneshot::Sender<()>)>,
    /// Writes still work.
    writable: bool,
    /// To be closed once nothing is in flight, answering this (if anything).
    closing: Option<Option<oneshot::Sender<()>>>,
}

impl Spooling {
    /// `row` is done with: deleted, or never written.
    fn forget(&mut self, row: Row) {
        if row.file == OWN && row.id >= self.written_upto {
            self.unwritten_done.insert(row.id);
        } else {
            self.deletes.push(row);
        }
    }

    /// Hands the staged batch to the spool's thread.
    fn write_batch(&mut self, counters: &Counters) {
        self.batch_since = None;
        self.written_upto = self.next_row;
        let mut batch = std::mem::take(&mut self.batch);
        let done = std::mem::take(&mut self.unwritten_done);
        if !done.is_empty() {
            batch.retain(|record| !done.contains(&record.id));
        }
        // Spilled events leave memory with their batch.
        counters.release_held(batch.iter().filter(|r| !r.resident).count());
        if !batch.is_empty() {
            self.outbox.push(Command::Write(batch));
        }
    }

    fn starve(&mut self, trace_id: TraceId, line: &mut Line) {
        if !line.starving && line.tail > 0 && line.loading.is_none() && line.events.is_empty() {
            line.starving = true;
            self.starving.push_back(trace_id);
        }
    }
}

pub(crate) struct Queue {
    lines: HashMap<TraceId, Line>,
    /// Traces with an event to send and no send in flight, in turn order.
    ready: VecDeque<TraceId>,
    /// Traces waiting after a 500.
    delayed: Vec<TraceId>,
    waiters: HashMap<u64, Waiter>,
    next_waiter: u64,
    sending: usize,
    max_in_flight: usize,
    backoff: Backoff,
    policy: RetryPolicy,
    orphaned: bool,
    counters: Arc<Counters>,
    spool: Option<Spooling>,
    /// The last commands of a spool that was closed.
    closed_outbox: Vec<Command>,
}

impl Queue {
    pub fn new(policy: RetryPolicy, max_in_flight: usize, counters: Arc<Counters>) -> Self {
        Self {
            lines: HashMap::new(),
            ready: VecDeque::new(),
            delayed: Vec::new(),
            waiters: HashMap::new(),
            next_waiter: 0,
            sending: 0,
            max_in_flight: max_in_flight.max(1),
            backoff: Backoff::default(),
            policy,
            orphaned: false,
            counters,
            spool: None,
            closed_outbox: Vec::new(),
        }
    }

    /// Keeps events on a spool: at most `capacity` in memory, the rest on disk, each
    /// written at most half of `write_behind` after it was filed (the driver files what
    /// was logged within the other half). Nothing is sent until the spool's
    /// first answer ([`Reply::Opened`]).
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub fn with_spool(mut self, capacity: usize, write_behind: Duration) -> Self {
        self.spool = Some(Spooling {
            capacity: capacity.max(1),
            held: 0,
            reserved: 0,
            batch_wait: write_behind / 2,
            batch: Vec::new(),
            batch_since: None,
            next_row: 1,
            written_upto: 1,
            unwritten_done: HashSet::new(),
            deletes: Vec::new(),
            outbox: Vec::new(),
            starving: VecDeque::new(),
            opening: true,
            waiting_flushes: Vec::new(),
            writable: true,
            closing: None,
        });
        self
    }

    /// Files an event of `trace_id`, to be sent after the trace's earlier ones.
    pub fn push(&mut self, trace_id: TraceId, body: Body) {
        let line = self.lines.entry(trace_id).or_default();
        line.filed += 1;
        let mut row = None;
        if let Some(spool) = &mut self.spool {
            if let (true, Body::Logged(logged)) = (spool.writable, &body) {
                let id = spool.next_row;
                spool.next_row += 1;
                let spill = spool.held >= spool.capacity || line.tail > 0 || line.loading.is_some();
                spool.batch.push(Record {
                    id,
                    logged: logged.clone(),
                    resident: !spill,
                });
                if spill {
                    line.tail += 1;
                    if let Some((_, since)) = &mut line.loading {
                        *since += 1;
                    }
                    self.counters.spilled();
                    spool.starve(trace_id, line);
                    return;
                }
                row = Some(Row { file: OWN, id });
            }
            spool.held += 1;
        }
        line.events.push_back(Pending {
            body,
            server_errors: 0,
            orphan_retries: 0,
            row,
        });
        if line.events.len() == 1 && !line.sending && line.not_before.is_none() {
            self.ready.push_back(trace_id);
        }
    }

    /// Registers a flush of `trace` (or of every trace): `done` is sent once every event
    /// filed before this call is done; at once if none is outstanding.
    pub fn flush(&mut self, trace: Option<TraceId>, done: oneshot::Sender<()>) {
        if let Some(spool) = self.spool.as_mut().filter(|s| s.opening) {
            spool.waiting_flushes.push((trace, done));
            return;
        }
        let id = self.next_waiter;
        self.next_waiter += 1;
        let mut remaining = 0;
        let mut wait_on = |line: &mut Line| {
            if line.outstanding() {
                line.flushes.push((line.filed, id));
                remaining += 1;
            }
        };
        match trace {
            Some(trace) => self
                .lines
                .get_mut(&trace)
                .into_iter()
                .for_each(&mut wait_on),
            None => self.lines.values_mut().for_each(&mut wait_on),
        }
        if remaining == 0 {
            let _ = done.send(());
        } else {
            self.waiters.insert(id, Waiter { remaining, done });
        }
    }

    /// Every client is gone: unavailability is retried a bounded number of times from now,
    /// and what is staged for the disk is written at once.
    pub fn orphan(&mut self) {
        self.orphaned = true;
        if let Some(spool) = &mut self.spool {
            spool.write_batch(&self.counters);
        }
    }

    /// Nothing filed is left in memory, and nothing is being sent. (An orphaned queue's
    /// tails stay on disk for the next process.)
    pub fn is_drained(&self) -> bool {
        self.sending == 0
            && match &self.spool {
                None => self.lines.is_empty(),
                Some(_) => self.lines.values().all(|line| line.events.is_empty()),
            }
    }

    /// Writes what is staged, then has the spool commit everything asked of it so far and
    /// answer `done`; at once without a spool.
    pub fn sync(&mut self, done: oneshot::Sender<()>) {
        match &mut self.spool {
            Some(spool) => {
                spool.write_batch(&self.counters);
                let deletes = std::mem::take(&mut spool.deletes);
                if !deletes.is_empty() {
                    spool.outbox.push(Command::Delete(deletes));
                }
                spool.outbox.push(Command::Sync(done));
            }
            None => {
                let _ = done.send(());
            }
        }
    }

    /// Closes the spool once no send is in flight (none is started meanwhile; at process
    /// exit the driver cancels them first, see [`cancel_sends`](Self::cancel_sends)): what
    /// is staged is written, what was delivered deleted, and what is left on disk is the
    /// next process's: it leaves this queue's memory. `done` is answered once the spool's
    /// files are closed. Events filed afterwards are kept in memory only.
    pub fn close_spool(&mut self, done: Option<oneshot::Sender<()>>) {
        match &mut self.spool {
            Some(spool) => {
                spool.closing = Some(done);
                self.try_close();
            }
            None => {
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
        }
    }

    /// The sends in flight were dropped: their events were neither delivered nor failed,
    /// and go first again.
    pub fn cancel_sends(&mut self) {
        self.sending = 0;
        for (trace_id, line) in &mut self.lines {
            if std::mem::take(&mut line.sending) {
                self.ready.push_front(*trace_id);
            }
        }
    }

    fn try_close(&mut self) {
        if self.sending > 0 {
            return;
        }
        let Some(mut spool) = self.spool.take_if(|s| s.closing.is_some()) else {
            return;
        };
        spool.write_batch(&self.counters);
        if !spool.deletes.is_empty() {
            spool
                .outbox
                .push(Command::Delete(std::mem::take(&mut spool.deletes)));
        }
        let done = spool.closing.take().flatten();
        spool.outbox.push(Command::Close(done));
        self.closed_outbox = std::mem::take(&mut spool.outbox);
        // What is on disk is not this queue's any more: the next process sends it.
        let mut left = 0;
        let traces: Vec<TraceId> = self.lines.keys().copied().collect();
        for trace_id in traces {
            let Some(line) = self.lines.get_mut(&trace_id) else {
                continue;
            };
            let before = line.events.len();
            line.events.retain(|p| p.row.is_none());
            let gone = (before - line.events.len()) as u64 + line.tail;
            line.tail = 0;
            line.loading = None;
            line.starving = false;
            line.finished += gone;
            left += gone;
            release(line, &mut self.waiters);
            if line.events.is_empty() && line.is_done() {
                self.lines.remove(&trace_id);
            }
        }
        self.counters.let_go(left);
        self.counters.spool_closed();
    }

    /// The commands for the spool's thread decided so far, in order.
    pub fn commands(&mut self, into: &mut Vec<Command>) {
        into.append(&mut self.closed_outbox);
        if let Some(spool) = &mut self.spool {
            into.append(&mut spool.outbox);
            if !spool.deletes.is_empty() {
                into.push(Command::Delete(std::mem::take(&mut spool.deletes)));
            }
        }
    }

    /// The next thing to do at `now`.
    pub fn next(&mut self, now: Instant) -> Next {
        let spool_at = self.plan_spool(now);
        if self
            .spool
            .as_ref()
            .is_some_and(|s| s.opening || s.closing.is_some())
        {
            return wait(spool_at);
        }
        if let Some(until) = self.backoff.not_before {
            if until > now {
                return Next::WaitUntil(spool_at.map_or(until, |at| at.min(until)));
            }
            self.backoff.not_before = None;
        }
        self.wake_delayed(now);
        if self.sending >= self.max_in_flight {
            return wait(spool_at);
        }
        while let Some(trace_id) = self.ready.pop_front() {
            let Some(line) = self.lines.get_mut(&trace_id) else {
                continue;
            };
            let Some(pending) = line.events.front_mut() else {
                continue;
            };
            if line.sending {
                continue;
            }
            let body = match pending.body.encode() {
                Ok(body) => body,
                Err(error) => {
                    // It could never be sent: done, and failed; the trace goes on.
                    self.counters.finish_failed(&error);
                    self.finish(trace_id, false);
                    continue;
                }
            };
            line.sending = true;
            self.sending += 1;
            return Next::Send(Job {
                trace_id,
                body,
                epoch: self.backoff.epoch,
            });
        }
        let delayed = self.delayed_until();
        wait(match (delayed, spool_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Writes the batch when it is due, and asks for the tails there is room for; answers
    /// when the batch will be due.
    fn plan_spool(&mut self, now: Instant) -> Option<Instant> {
        let spool = self.spool.as_mut()?;
        if !spool.batch.is_empty() {
            let since = *spool.batch_since.get_or_insert(now);
            if self.orphaned || spool.batch.len() >= spool::BATCH || now >= since + spool.batch_wait
            {
                spool.write_batch(&self.counters);
            }
        }
        if !spool.opening && !self.orphaned {
            let mut wanted = Vec::new();
            while let Some(&trace_id) = spool.starving.front() {
                let room = spool.capacity.saturating_sub(spool.held + spool.reserved);
                if room == 0 {
                    break;
                }
                spool.starving.pop_front();
                let Some(line) = self.lines.get_mut(&trace_id) else {
                    continue;
                };
                line.starving = false;
                if line.tail == 0 || line.loading.is_some() || !line.events.is_empty() {
                    continue;
                }
                let asked = room
                    .min(spool::LOAD)
                    .min(line.tail.try_into().unwrap_or(usize::MAX));
                line.loading = Some((asked, 0));
                spool.reserved += asked;
                wanted.push((trace_id, asked));
            }
            if !wanted.is_empty() {
                // The tails' spilled events must be on disk before they are read.
                spool.write_batch(&self.counters);
                spool.outbox.push(Command::Load(wanted));
            }
        }
        spool
            .batch_since
            .filter(|_| !spool.batch.is_empty())
            .map(|since| since + spool.batch_wait)
    }

    /// Takes one answer of the spool's thread; answers false when the queue has no spool
    /// (any more).
    #[cfg_attr(not(feature = "spool"), allow(dead_code))]
    pub fn spool_reply(&mut self, reply: Reply) -> bool {
        let Some(spool) = &mut self.spool else {
            return false;
        };
        match reply {
            Reply::TakenOver(traces) => {
                for (trace_id, n) in traces {
                    let line = self.lines.entry(trace_id).or_default();
                    line.filed += n;
                    line.tail += n;
                    self.counters.recover(n);
                    spool.starve(trace_id, line);
                }
            }
            Reply::Opened => {
                spool.opening = false;
                for (trace, done) in std::mem::take(&mut spool.waiting_flushes) {
                    self.flush(trace, done);
                }
            }
            Reply::Loaded(loaded) => {
                for loaded in loaded {
                    self.loaded(loaded);
                }
            }
            Reply::Dropped(dropped) => {
                for dropped in dropped {
                    self.dropped(dropped);
                }
            }
            Reply::Unwritable { lost } => {
                spool.writable = false;
                self.counters.spool_off();
                for trace_id in lost {
                    self.let_go_from_tail(trace_id, 1);
                }
            }
        }
        true
    }

    fn loaded(&mut self, loaded: Loaded) {
        let (Some(spool), Some(line)) = (&mut self.spool, self.lines.get_mut(&loaded.trace)) else {
            return;
        };
        let Some((asked, since)) = line.loading.take() else {
            return;
        };
        spool.reserved = spool.reserved.saturating_sub(asked);
        let read = loaded.records.len();
        for (row, logged) in loaded.records {
            line.events.push_back(Pending {
                body: Body::Logged(Arc::new(logged)),
                server_errors: 0,
                orphan_retries: 0,
                row: Some(row),
            });
        }
        spool.held += read;
        self.counters.hold(read);
        let lost = if loaded.exhausted {
            // Nothing else was on disk: what the tail counted beyond it (and before the
            // events spilled since the read was asked) was unreadable.
            let expected = line.tail.saturating_sub(since);
            line.tail = since.min(line.tail);
            expected.saturating_sub(read as u64)
        } else {
            line.tail = line.tail.saturating_sub(read as u64);
            0
        };
        if read > 0 && !line.sending && line.not_before.is_none() {
            self.ready.push_back(loaded.trace);
        }
        if lost > 0 {
            self.counters.spool_damage(lost);
            self.counters.let_go(lost);
            line.finished += lost;
            release(line, &mut self.waiters);
        }
        self.emptied(loaded.trace);
    }

    fn dropped(&mut self, dropped: Dropped) {
        let (Some(spool), Some(line)) = (&mut self.spool, self.lines.get_mut(&dropped.trace))
        else {
            return;
        };
        if dropped.resident {
            match line.events.iter().position(|p| p.row == Some(dropped.row)) {
                // Being sent: its outcome decides; it is on disk no more.
                Some(0) if line.sending => {
                    line.events[0].row = None;
                    return;
                }
                Some(i) => {
                    line.events.remove(i);
                    spool.held -= 1;
                    self.counters.release_held(1);
                }
                // Done with already.
                None => return,
            }
            line.finished += 1;
            self.counters.spool_dropped();
            release(line, &mut self.waiters);
            self.emptied(dropped.trace);
        } else {
            self.let_go_from_tail(dropped.trace, 1);
        }
    }

    /// `n` events of `trace_id`'s tail are gone from disk.
    fn let_go_from_tail(&mut self, trace_id: TraceId, n: u64) {
        let Some(line) = self.lines.get_mut(&trace_id) else {
            return;
        };
        let n = n.min(line.tail);
        line.tail -= n;
        line.finished += n;
        for _ in 0..n {
            self.counters.spool_dropped();
        }
        release(line, &mut self.waiters);
        self.emptied(trace_id);
    }

    /// After `trace_id`'s memory may have emptied: read its tail next, or forget it.
    fn emptied(&mut self, trace_id: TraceId) {
        let Some(line) = self.lines.get_mut(&trace_id) else {
            return;
        };
        if !line.events.is_empty() {
            return;
        }
        if let Some(spool) = &mut self.spool
            && !self.orphaned
        {
            spool.starve(trace_id, line);
        }
        if line.is_done() && !line.starving {
            self.lines.remove(&trace_id);
        }
    }

    /// Takes the outcome of `job`'s send at `now`.
    pub fn complete(&mut self, job: &Job, outcome: Result<(), Failure>, now: Instant) {
        self.complete_send(job, outcome, now);
        self.try_close();
    }

    fn complete_send(&mut self, job: &Job, outcome: Result<(), Failure>, now: Instant) {
        self.sending = self.sending.saturating_sub(1);
        let Some(line) = self.lines.get_mut(&job.trace_id) else {
            return;
        };
        line.sending = false;
        let failure = match outcome {
            Ok(()) => {
                if job.epoch == self.backoff.epoch {
                    self.backoff.failures = 0;
                }
                self.counters.finish_sent();
                return self.finish(job.trace_id, false);
            }
            Err(failure) => failure,
        };
        let Some(pending) = line.events.front_mut() else {
            return;
        };
        let error = &failure.error;
        let max = self.policy.max_retries;
        if !error.is_retryable() {
            self.counters.finish_failed(error);
            return self.finish(job.trace_id, false);
        }
        if self.orphaned {
            if pending.orphan_retries >= max {
                if self.spool.is_some() && pending.row.is_some() {
                    // On disk: the next process sends it.
                    self.counters.let_go(1);
                    return self.finish(job.trace_id, true);
                }
                self.counters.finish_failed(error);
                return self.finish(job.trace_id, false);
            }
            pending.orphan_retries += 1;
        }
        if let Error::RateLimited { .. } = error {
            // The api's budget has paused the whole key: the event goes first when it opens.
            self.ready.push_front(job.trace_id);
        } else if error.is_unavailable() {
            self.ready.push_front(job.trace_id);
            self.back_off(job.epoch, &failure, now);
        } else if pending.server_errors < max {
            let wait = self.policy.delay(pending.server_errors, None);
            pending.server_errors += 1;
            line.not_before = Some(now.checked_add(wait).unwrap_or(now));
            self.delayed.push(job.trace_id);
        } else {
            self.counters.finish_failed(error);
            self.finish(job.trace_id, false);
        }
    }

    /// The event at the front of `trace_id`'s line is done (sent, failed, or, when
    /// `keep_on_disk`, left to the next process).
    fn finish(&mut self, trace_id: TraceId, keep_on_disk: bool) {
        let Some(line) = self.lines.get_mut(&trace_id) else {
            return;
        };
        if let Some(done) = line.events.pop_front()
            && let Some(spool) = &mut self.spool
        {
            spool.held = spool.held.saturating_sub(1);
            self.counters.release_held(1);
            if let (Some(row), false) = (done.row, keep_on_disk) {
                spool.forget(row);
            }
        }
        line.finished += 1;
        release(line, &mut self.waiters);
        if line.events.is_empty() {
            self.emptied(trace_id);
        } else {
            self.ready.push_back(trace_id);
        }
    }

    /// The API is unavailable: every send waits (the rate limit is per key, not per trace).
    fn back_off(&mut self, epoch: u64, failure: &Failure, now: Instant) {
        let backoff = &mut self.backoff;
        if epoch != backoff.epoch {
            // Started before the current pause: it says nothing new about the API.
            return;
        }
        let wait = self.policy.delay(backoff.failures, failure.retry_after);
        backoff.failures = backoff.failures.saturating_add(1);
        backoff.epoch += 1;
        let until = now.checked_add(wait).unwrap_or(now);
        backoff.not_before = Some(backoff.not_before.map_or(until, |t| t.max(until)));
        if backoff.failures == 1 || backoff.failures.is_power_of_two() {
            tracing::warn!(
                target: "fabraix",
                error = %failure.error,
                failures = backoff.failures,
                wait_ms = wait.as_millis() as u64,
                "fabraix api unavailable; events wait in the queue"
            );
        }
    }

    fn wake_delayed(&mut self, now: Instant) {
        let lines = &mut self.lines;
        let ready = &mut self.ready;
        self.delayed.retain(|trace_id| {
            let Some(line) = lines.get_mut(trace_id) else {
                return false;
            };
            match line.not_before {
                Some(at) if at > now => true,
                _ => {
                    line.not_before = None;
                    ready.push_back(*trace_id);
                    false
                }
            }
        });
    }

    fn delayed_until(&self) -> Option<Instant> {
        self.delayed
            .iter()
            .filter_map(|t| self.lines.get(t)?.not_before)
            .min()
    }

    /// How long the current back-off has left at `now`, if one is on.
    #[cfg(test)]
    fn paused_for(&self, now: Instant) -> Option<std::time::Duration> {
        self.backoff
            .not_before
            .map(|t| t.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }
}

/// Whatever a wait on `at` (if any) means.
fn wait(at: Option<Instant>) -> Next {
    match at {
        Some(at) => Next::WaitUntil(at),
        None => Next::Idle,
    }
}

/// Answers every flush waiting on `line` whose events are all finished.
fn release(line: &mut Line, waiters: &mut HashMap<u64, Waiter>) {
    let finished = line.finished;
    line.flushes.retain(|&(target, id)| {
        if finished < target {
            return true;
        }
        if let Some(waiter) = waiters.get_mut(&id) {
            waiter.remaining -= 1;
            if waiter.remaining == 0
                && let Some(waiter) = waiters.remove(&id)
            {
                let _ = waiter.done.send(());
            }
        }
        false
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn trace(n: u128) -> TraceId {
        TraceId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 2,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(30),
        }
    }

    fn queue(max_in_flight: usize) -> (Queue, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        (
            Queue::new(policy(), max_in_flight, counters.clone()),
            counters,
        )
    }

    fn push(q: &mut Queue, counters: &Counters, t: TraceId, text: &str) {
        assert!(counters.try_accept(usize::MAX).is_ok());
        q.push(t, Body::Encoded(Bytes::from(text.to_owned())));
    }

    fn send(q: &mut Queue, now: Instant) -> Job {
        match q.next(now) {
            Next::Send(job) => job,
            other => panic!("expected a send, got {other:?}"),
        }
    }

    fn status(code: u16) -> Result<(), Failure> {
        Err(Failure::from(Error::Api {
            status: code,
            kind: None,
            code: None,
            message: String::new(),
        }))
    }

    fn unavailable(retry_after: Option<Duration>) -> Result<(), Failure> {
        Err(Failure {
            error: Error::Api {
                status: 503,
                kind: None,
                code: None,
                message: String::new(),
            },
            retry_after,
        })
    }

    fn rate_limited() -> Result<(), Failure> {
        let retry_after = Some(Duration::from_secs(30));
        Err(Failure {
            error: Error::RateLimited { retry_after },
            retry_after,
        })
    }

    #[test]
    fn one_trace_is_sent_in_order_one_at_a_time() {
        let (mut q, c) = queue(8);
        let t = trace(1);
        for text in ["a", "b", "c"] {
            push(&mut q, &c, t, text);
        }
        let now = Instant::now();
        let first = send(&mut q, now);
        assert_eq!(first.body, "a");
        assert!(matches!(q.next(now), Next::Idle), "b waits for a");
        q.complete(&first, Ok(()), now);
        let second = send(&mut q, now);
        assert_eq!(second.body, "b");
        q.complete(&second, Ok(()), now);
        let third = send(&mut q, now);
        q.complete(&third, Ok(()), now);
        assert_eq!(third.body, "c");
        assert!(q.is_drained());
        let stats = c.stats();
        assert_eq!((stats.sent, stats.in_queue), (3, 0));
    }

    #[test]
    fn an_event_is_encoded_at_its_first_send_and_retried_as_it_was_sent() {
        let (mut q, counters) = queue(1);
        let now = Instant::now();
        let t = trace(1);
        assert!(counters.try_accept(usize::MAX).is_ok());
        q.push(
            t,
            Body::Logged(Arc::new(Logged {
                trace_id: t,
                kind: crate::model::EventType::ModelOutput,
                timestamp: 1_700_000_000.25,
                content: "ok".into(),
                schema: Arc::from("{}"),
            })),
        );
        let first = send(&mut q, now);
        let sent: serde_json::Value = serde_json::from_slice(&first.body).expect("json");
        assert_eq!(
            sent,
            serde_json::json!({
                "event_type": "model_output",
                "trace_id": t.to_string(),
                "timestamp": 1_700_000_000.25,
                "content": "ok",
                "schema": "{}",
            })
        );
        q.complete(&first, status(500), now);
        let again = send(&mut q, now + Duration::from_secs(5));
        assert_eq!(again.body, first.body, "a retry sends the same bytes");
    }

    #[test]
    fn traces_are_sent_in_parallel_and_take_turns() {
        let (mut q, c) = queue(2);
        let (a, b, d) = (trace(1), trace(2), trace(3));
        push(&mut q, &c, a, "a1");
        push(&mut q, &c, a, "a2");
        push(&mut q, &c, b, "b1");
        push(&mut q, &c, d, "d1");
        let now = Instant::now();
        let one = send(&mut q, now);
        let two = send(&mut q, now);
        assert_eq!((&one.body[..], &two.body[..]), (&b"a1"[..], &b"b1"[..]));
        assert!(matches!(q.next(now), Next::Idle), "two in flight at most");
        q.complete(&one, Ok(()), now);
        // `a` went to the back of the line: `d` goes first.
        assert_eq!(send(&mut q, now).body, "d1");
    }

    #[test]
    fn a_flush_waits_for_exactly_the_events_before_it() {
        let (mut q, c) = queue(4);
        let (a, b) = (trace(1), trace(2));
        push(&mut q, &c, a, "a1");
        push(&mut q, &c, b, "b1");
        let (done_a, mut wait_a) = oneshot::channel();
        let (done_all, mut wait_all) = oneshot::channel();
        q.flush(Some(a), done_a);
        q.flush(None, done_all);
        push(&mut q, &c, a, "a2"); // after the flushes: not waited for
        let now = Instant::now();
        let a1 = send(&mut q, now);
        let b1 = send(&mut q, now);
        q.complete(&a1, Ok(()), now);
        assert!(wait_a.try_recv().is_ok(), "a's flush is done after a1");
        assert!(wait_all.try_recv().is_err(), "b1 is outstanding");
        q.complete(&b1, Ok(()), now);
        assert!(wait_all.try_recv().is_ok());
        assert_eq!(c.stats().in_queue, 1);
    }

    #[test]
    fn a_flush_with_nothing_outstanding_is_done_at_once() {
        let (mut q, _) = queue(1);
        let (done, mut wait) = oneshot::channel();
        q.flush(Some(trace(9)), done);
        assert!(wait.try_recv().is_ok());
        let (done, mut wait) = oneshot::channel();
        q.flush(None, done);
        assert!(wait.try_recv().is_ok());
    }

    #[test]
    fn unavailable_pauses_every_trace_and_retries_the_same_event() {
        let (mut q, c) = queue(4);
        let (a, b) = (trace(1), trace(2));
        push(&mut q, &c, a, "a1");
        push(&mut q, &c, b, "b1");
        let now = Instant::now();
        let a1 = send(&mut q, now);
        let b1 = send(&mut q, now);
        q.complete(&a1, unavailable(Some(Duration::from_secs(7))), now);
        assert_eq!(q.paused_for(now), Some(Duration::from_secs(7)));
        // b1 was in flight when the pause began: its failure does not lengthen it.
        q.complete(&b1, unavailable(Some(Duration::from_secs(20))), now);
        assert_eq!(q.paused_for(now), Some(Duration::from_secs(7)));
        assert!(matches!(q.next(now), Next::WaitUntil(_)));
        let later = now + Duration::from_secs(7);
        let again = [send(&mut q, later), send(&mut q, later)];
        let mut bodies: Vec<_> = again.iter().map(|job| job.body.clone()).collect();
        bodies.sort();
        assert_eq!(bodies, ["a1", "b1"], "the same events are tried again");
        assert_eq!(c.stats().failed, 0);
    }

    #[test]
    fn a_429_leaves_the_pause_to_the_key_s_budget_and_the_event_goes_first() {
        // The api's budget pauses every lane of the key on a 429; the queue adds no wait
        // of its own, and the throttled event is the next one sent.
        let (mut q, c) = queue(1);
        let (a, b) = (trace(1), trace(2));
        push(&mut q, &c, a, "a1");
        push(&mut q, &c, b, "b1");
        let now = Instant::now();
        let a1 = send(&mut q, now);
        q.complete(&a1, rate_limited(), now);
        assert_eq!(q.paused_for(now), None);
        assert_eq!(send(&mut q, now).body, "a1");
        assert_eq!(c.stats().failed, 0);
    }

    #[test]
    fn consecutive_unavailability_backs_off_further() {
        let (mut q, c) = queue(1);
        push(&mut q, &c, trace(1), "x");
        let mut now = Instant::now();
        for _ in 0..20 {
            let job = send(&mut q, now);
            q.complete(
                &job,
                Err(Failure::from(Error::Timeout {
                    after: Duration::ZERO,
                })),
                now,
            );
            now += q.paused_for(now).unwrap_or_default();
        }
        assert_eq!(q.backoff.failures, 20);
        assert_eq!(c.stats().failed, 0, "retried for as long as a client lives");
        let job = send(&mut q, now);
        q.complete(&job, Ok(()), now);
        assert_eq!(q.backoff.failures, 0);
    }

    #[test]
    fn a_refusal_fails_the_event_and_the_trace_goes_on() {
        let (mut q, c) = queue(1);
        let t = trace(1);
        push(&mut q, &c, t, "bad");
        push(&mut q, &c, t, "good");
        let now = Instant::now();
        let bad = send(&mut q, now);
        q.complete(&bad, status(400), now);
        let good = send(&mut q, now);
        assert_eq!(good.body, "good");
        q.complete(&good, Ok(()), now);
        let stats = c.stats();
        assert_eq!((stats.sent, stats.failed, stats.in_queue), (1, 1, 0));
    }

    #[test]
    fn a_500_delays_its_trace_only_and_is_retried_max_retries_times() {
        let (mut q, c) = queue(2);
        let (a, b) = (trace(1), trace(2));
        push(&mut q, &c, a, "a1");
        let mut now = Instant::now();
        let mut tries = 0;
        loop {
            match q.next(now) {
                Next::Send(job) => {
                    tries += 1;
                    q.complete(&job, status(500), now);
                    // Meanwhile another trace is not held back.
                    if tries == 1 {
                        push(&mut q, &c, b, "b1");
                        let b1 = send(&mut q, now);
                        assert_eq!(b1.body, "b1");
                        q.complete(&b1, Ok(()), now);
                    }
                }
                Next::WaitUntil(at) => now = at,
                Next::Idle => break,
            }
        }
        assert_eq!(tries, 3, "one try and max_retries = 2 retries");
        let stats = c.stats();
        assert_eq!((stats.sent, stats.failed, stats.in_queue), (1, 1, 0));
        assert!(q.is_drained());
    }

    #[test]
    fn an_orphaned_queue_gives_up_after_max_retries() {
        let (mut q, c) = queue(1);
        push(&mut q, &c, trace(1), "x");
        q.orphan();
        let mut now = Instant::now();
        let mut tries = 0;
        loop {
            match q.next(now) {
                Next::Send(job) => {
                    tries += 1;
                    q.complete(&job, unavailable(None), now);
                }
                Next::WaitUntil(at) => now = at,
                Next::Idle => break,
            }
        }
        assert_eq!(tries, 3);
        assert_eq!(c.stats().failed, 1);
        assert!(q.is_drained());
    }

    #[test]
    fn counts_add_up_with_a_full_queue() {
        let counters = Counters::default();
        assert!(counters.try_accept(2).is_ok());
        assert!(counters.try_accept(2).is_ok());
        assert!(matches!(counters.try_accept(2), Err(Error::QueueFull)));
        counters.finish_sent();
        assert!(counters.try_accept(2).is_ok());
        let stats = counters.stats();
        assert_eq!(
            (stats.queued, stats.sent, stats.dropped, stats.in_queue),
            (3, 1, 1, 2)
        );
    }

    fn logged(t: TraceId, text: &str) -> Body {
        Body::Logged(Arc::new(Logged {
            trace_id: t,
            kind: crate::model::EventType::Tool,
            timestamp: 1_700_000_000.0,
            content: text.to_owned(),
            schema: Arc::from("{}"),
        }))
    }

    /// A queue on a spool that has opened (found nothing), holding `capacity` in memory.
    fn spooled(capacity: usize) -> (Queue, Arc<Counters>) {
        let (q, counters) = queue(4);
        let mut q = q.with_spool(capacity, Duration::from_secs(1));
        q.spool_reply(Reply::Opened);
        (q, counters)
    }

    fn accept_and_push(q: &mut Queue, counters: &Counters, t: TraceId, text: &str) {
        assert!(counters.try_accept_spooled(usize::MAX / 2).is_ok());
        q.push(t, logged(t, text));
    }

    fn commands(q: &mut Queue) -> Vec<Command> {
        let mut out = Vec::new();
        q.commands(&mut out);
        out
    }

    fn written(command: &Command) -> Vec<String> {
        match command {
            Command::Write(records) => records.iter().map(|r| r.logged.content.clone()).collect(),
            other => panic!("expected a write, got {other:?}"),
        }
    }

    fn text(job: &Job) -> String {
        let sent: serde_json::Value = serde_json::from_slice(&job.body).expect("json");
        sent["content"].as_str().unwrap_or_default().to_owned()
    }

    #[test]
    fn an_event_delivered_within_the_interval_never_touches_the_disk() {
        let (mut q, c) = spooled(8);
        let (a, b) = (trace(1), trace(2));
        accept_and_push(&mut q, &c, a, "a");
        accept_and_push(&mut q, &c, b, "b");
        let now = Instant::now();
        let first = send(&mut q, now);
        let second = send(&mut q, now);
        let (job_a, job_b) = if text(&first) == "a" {
            (first, second)
        } else {
            (second, first)
        };
        q.complete(&job_a, Ok(()), now);
        assert!(commands(&mut q).is_empty(), "nothing is due yet");
        // Half an interval later the batch is due (the driver files what is logged within
        // the other half): only what is still queued is written.
        match q.next(now + Duration::from_millis(499)) {
            Next::WaitUntil(at) => assert_eq!(at, now + Duration::from_millis(500)),
            other => panic!("expected a wait for the batch, got {other:?}"),
        }
        q.next(now + Duration::from_millis(500));
        let out = commands(&mut q);
        assert_eq!(out.len(), 1);
        assert_eq!(written(&out[0]), ["b"]);
        // Delivered means deleted.
        q.complete(&job_b, Ok(()), now + Duration::from_secs(2));
        match commands(&mut q).as_slice() {
            [Command::Delete(rows)] => assert_eq!(rows.len(), 1),
            other => panic!("expected one deletion, got {other:?}"),
        }
        assert_eq!(c.stats().in_queue, 0);
    }

    #[test]
    fn past_the_capacity_events_go_to_disk_and_come_back_in_order() {
        let (mut q, c) = spooled(2);
        let t = trace(1);
        for n in 0..5 {
            accept_and_push(&mut q, &c, t, &format!("e{n}"));
        }
        assert_eq!(c.stats().spilled, 3);
        let mut now = Instant::now();
        let mut sent = Vec::new();
        let mut disk: Vec<(Row, Logged)> = Vec::new();
        let mut pushed_late = false;
        for _ in 0..100 {
            match q.next(now) {
                Next::Send(job) => {
                    sent.push(text(&job));
                    q.complete(&job, Ok(()), now);
                    if !pushed_late {
                        // Logged while the trace has events on disk: it goes after them.
                        accept_and_push(&mut q, &c, t, "e5");
                        pushed_late = true;
                    }
                }
                Next::WaitUntil(at) => now = at,
                Next::Idle => {}
            }
            for command in commands(&mut q) {
                match command {
                    Command::Write(records) => {
                        for r in records.into_iter().filter(|r| !r.resident) {
                            let l = &r.logged;
                            disk.push((
                                Row {
                                    file: OWN,
                                    id: r.id,
                                },
                                Logged {
                                    trace_id: l.trace_id,
                                    kind: l.kind,
                                    timestamp: l.timestamp,
                                    content: l.content.clone(),
                                    schema: l.schema.clone(),
                                },
                            ));
                        }
                    }
                    Command::Load(wanted) => {
                        assert_eq!(wanted.len(), 1);
                        let (trace_id, max) = wanted[0];
                        assert!(max <= 2, "never more than the room in memory");
                        let take = max.min(disk.len());
                        let records: Vec<_> = disk.drain(..take).collect();
                        q.spool_reply(Reply::Loaded(vec![Loaded {
                            trace: trace_id,
                            exhausted: records.len() < max,
                            records,
                        }]));
                    }
                    Command::Delete(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            if q.is_drained() && disk.is_empty() && pushed_late && q.lines.is_empty() {
                break;
            }
        }
        assert_eq!(sent, ["e0", "e1", "e2", "e3", "e4", "e5"]);
        let stats = c.stats();
        assert_eq!((stats.sent, stats.in_queue, stats.spilled), (6, 0, 4));
    }

    #[test]
    fn nothing_is_sent_before_the_spool_opened_and_a_flush_waits_for_what_it_found() {
        let (q, c) = queue(4);
        let mut q = q.with_spool(8, Duration::from_secs(1));
        let (mine, earlier) = (trace(1), trace(2));
        accept_and_push(&mut q, &c, mine, "mine");
        let now = Instant::now();
        assert!(
            !matches!(q.next(now), Next::Send(_)),
            "the spool has not opened"
        );
        let (done, mut waiting) = oneshot::channel();
        q.flush(None, done);
        q.spool_reply(Reply::TakenOver(vec![(earlier, 2)]));
        q.spool_reply(Reply::Opened);
        assert_eq!(c.stats().recovered, 2);
        assert_eq!(c.stats().in_queue, 3);
        let first = send(&mut q, now);
        assert_eq!(text(&first), "mine");
        let load = commands(&mut q)
            .into_iter()
            .find_map(|cmd| match cmd {
                Command::Load(wanted) => Some(wanted),
                _ => None,
            })
            .expect("the earlier trace is read back");
        assert_eq!(load, [(earlier, 2)]);
        let records = (1..=2)
            .map(|id| {
                let Body::Logged(l) = logged(earlier, &format!("old{id}")) else {
                    unreachable!()
                };
                (Row { file: 1, id }, Arc::try_unwrap(l).expect("one owner"))
            })
            .collect();
        q.spool_reply(Reply::Loaded(vec![Loaded {
            trace: earlier,
            records,
            exhausted: false,
        }]));
        q.complete(&first, Ok(()), now);
        assert!(
            waiting.try_recv().is_err(),
            "the taken-over events are outstanding"
        );
        for expected in ["old1", "old2"] {
            let job = send(&mut q, now);
            assert_eq!(text(&job), expected);
            q.complete(&job, Ok(()), now);
        }
        assert!(waiting.try_recv().is_ok());
        let deleted: Vec<Row> = commands(&mut q)
            .into_iter()
            .flat_map(|cmd| match cmd {
                Command::Delete(rows) => rows,
                _ => Vec::new(),
            })
            .collect();
        // "mine" was written with the batch that went before the read: it is deleted too.
        assert_eq!(
            deleted,
            [
                Row { file: OWN, id: 1 },
                Row { file: 1, id: 1 },
                Row { file: 1, id: 2 }
            ]
        );
    }

    #[test]
    fn a_short_read_counts_what_the_disk_lost_and_releases_the_flush() {
        let (mut q, c) = spooled(8);
        let t = trace(3);
        q.spool_reply(Reply::TakenOver(vec![(t, 3)]));
        let (done, mut waiting) = oneshot::channel();
        q.flush(Some(t), done);
        let now = Instant::now();
        q.next(now);
        assert!(matches!(commands(&mut q).as_slice(), [Command::Load(w)] if w == &[(t, 3)]));
        let Body::Logged(l) = logged(t, "only") else {
            unreachable!()
        };
        q.spool_reply(Reply::Loaded(vec![Loaded {
            trace: t,
            records: vec![(
                Row { file: 1, id: 7 },
                Arc::try_unwrap(l).expect("one owner"),
            )],
            exhausted: true,
        }]));
        assert_eq!(c.stats().spool_damaged, 2);
        let job = send(&mut q, now);
        q.complete(&job, Ok(()), now);
        assert!(waiting.try_recv().is_ok());
        assert_eq!(c.stats().in_queue, 0);
        assert!(q.lines.is_empty());
    }

    #[test]
    fn a_cap_drops_an_event_in_memory_or_on_disk_but_not_one_being_sent() {
        let (mut q, c) = spooled(2);
        let t = trace(4);
        for n in 0..3 {
            accept_and_push(&mut q, &c, t, &format!("e{n}"));
        }
        let now = Instant::now();
        let sending = send(&mut q, now);
        q.next(now + Duration::from_secs(1));
        let rows: Vec<i64> = match commands(&mut q).as_slice() {
            [Command::Write(records)] => records.iter().map(|r| r.id).collect(),
            other => panic!("expected the batch, got {other:?}"),
        };
        let dropped = |id, resident| Dropped {
            trace: t,
            row: Row { file: OWN, id },
            resident,
        };
        q.spool_reply(Reply::Dropped(vec![
            dropped(rows[0], true),  // being sent: kept
            dropped(rows[1], true),  // in memory: let go
            dropped(rows[2], false), // on disk only: let go
        ]));
        let stats = c.stats();
        assert_eq!((stats.spool_dropped, stats.in_queue), (2, 1));
        q.complete(&sending, Ok(()), now);
        assert_eq!(c.stats().sent, 1);
        assert!(q.lines.is_empty(), "nothing left of the trace");
    }

    #[test]
    fn closing_at_exit_leaves_what_is_on_disk_to_the_next_process() {
        let (mut q, c) = spooled(8);
        let t = trace(5);
        for n in 0..3 {
            accept_and_push(&mut q, &c, t, &format!("e{n}"));
        }
        let now = Instant::now();
        let in_flight = send(&mut q, now);
        q.next(now + Duration::from_secs(1));
        assert!(matches!(commands(&mut q).as_slice(), [Command::Write(r)] if r.len() == 3));
        let (done, mut closed) = oneshot::channel();
        // The driver drops the send waiting for budget, then closes.
        q.cancel_sends();
        q.close_spool(Some(done));
        match commands(&mut q).as_slice() {
            [Command::Close(Some(_))] => {}
            other => panic!("expected the close, got {other:?}"),
        }
        assert!(closed.try_recv().is_err(), "answered by the spool's thread");
        // All three are on disk: none is this process's to send any more.
        assert!(matches!(q.next(now), Next::Idle));
        assert_eq!(c.stats().in_queue, 0);
        // An outcome that arrives anyway changes nothing, and later events stay in memory.
        q.complete(&in_flight, Ok(()), now);
        accept_and_push(&mut q, &c, t, "after");
        let job = send(&mut q, now);
        assert_eq!(text(&job), "after");
        q.complete(&job, Ok(()), now);
        assert!(commands(&mut q).is_empty());
        assert!(q.is_drained());
    }
}
