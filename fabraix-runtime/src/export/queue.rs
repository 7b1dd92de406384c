//! What the exporter does next, as plain synchronous state: events filed per trace, which
//! one to send, what a send's outcome means, when to wait, which flushes are done.
//!
//! The driver (`driver.rs`) only moves events and outcomes between this state and the
//! network; every decision is made here, where it can be tested without either.
//!
//! - Each trace's events are sent one at a time, in the order they were logged; traces
//!   take turns (a trace goes to the back of the line after each send), up to
//!   `max_in_flight` sends at once.
//! - While the API is unavailable (429, 502, 503, 504, connection errors, timeouts) every
//!   send waits out one shared back-off, and the event is tried again until it is
//!   delivered. A 500 is retried `max_retries` times, with its trace waiting between tries.
//!   Anything else (400, 401, 403, 404, an undecodable answer) fails the event at once.
//! - Once every client of the exporter is gone ("orphaned"), nothing will flush or count
//!   the queue any more, so an unavailable API is retried `max_retries` times, not forever.
//! - A flush waits for exactly the events filed before it: of one trace, or of all.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::oneshot;

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
    /// Nothing may be sent before this instant (a back-off, a trace waiting after a 500).
    WaitUntil(Instant),
    /// Nothing to send until a send completes or an event arrives.
    Idle,
}

/// A caller waiting for the events filed before it.
struct Flush {
    /// Done once no event numbered below this is outstanding.
    upto: u64,
    done: oneshot::Sender<()>,
}

/// An event's body: as logged until its first send, encoded from then on (for its
/// retries). Encoding at the first send, not when the event is filed, keeps that work off
/// the SDK's thread while a producer is still logging a burst, and a queued event smaller.
pub(super) enum Body {
    Logged(Logged),
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
    seq: u64,
    body: Body,
    server_errors: u32,
    orphan_retries: u32,
}

#[derive(Default)]
struct Line {
    events: VecDeque<Pending>,
    sending: bool,
    /// After a 500: not before this.
    not_before: Option<Instant>,
    flushes: Vec<Flush>,
}

impl Line {
    /// The number of the oldest event of the trace not yet done.
    fn oldest(&self) -> Option<u64> {
        self.events.front().map(|p| p.seq)
    }
}

#[derive(Default)]
struct Backoff {
    failures: u32,
    not_before: Option<Instant>,
    epoch: u64,
}

pub(crate) struct Queue {
    lines: HashMap<TraceId, Line>,
    /// Traces with an event to send and no send in flight, in turn order.
    ready: VecDeque<TraceId>,
    /// Traces waiting after a 500.
    delayed: Vec<TraceId>,
    /// The numbers of every event not yet done, for flushes of all traces.
    outstanding: BTreeSet<u64>,
    next_seq: u64,
    flushes: Vec<Flush>,
    sending: usize,
    max_in_flight: usize,
    backoff: Backoff,
    policy: RetryPolicy,
    orphaned: bool,
    counters: Arc<Counters>,
}

impl Queue {
    pub fn new(policy: RetryPolicy, max_in_flight: usize, counters: Arc<Counters>) -> Self {
        Self {
            lines: HashMap::new(),
            ready: VecDeque::new(),
            delayed: Vec::new(),
            outstanding: BTreeSet::new(),
            next_seq: 0,
            flushes: Vec::new(),
            sending: 0,
            max_in_flight: max_in_flight.max(1),
            backoff: Backoff::default(),
            policy,
            orphaned: false,
            counters,
        }
    }

    /// Files an event of `trace_id`, to be sent after the trace's earlier ones.
    pub fn push(&mut self, trace_id: TraceId, body: Body) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outstanding.insert(seq);
        let line = self.lines.entry(trace_id).or_default();
        line.events.push_back(Pending {
            seq,
            body,
            server_errors: 0,
            orphan_retries: 0,
        });
        if line.events.len() == 1 && !line.sending && line.not_before.is_none() {
            self.ready.push_back(trace_id);
        }
    }

    /// Registers a flush of `trace` (or of every trace): `done` is sent once every event
    /// filed before this call is done; at once if none is outstanding.
    pub fn flush(&mut self, trace: Option<TraceId>, done: oneshot::Sender<()>) {
        let flush = Flush {
            upto: self.next_seq,
            done,
        };
        match trace {
            None if self.outstanding.first().is_some_and(|s| *s < flush.upto) => {
                self.flushes.push(flush)
            }
            Some(trace) => match self.lines.get_mut(&trace) {
                Some(line) if line.oldest().is_some() => line.flushes.push(flush),
                _ => drop(flush.done.send(())),
            },
            None => drop(flush.done.send(())),
        }
    }

    /// Every client is gone: unavailability is retried a bounded number of times from now.
    pub fn orphan(&mut self) {
        self.orphaned = true;
    }

    /// Nothing filed is left, and nothing is being sent.
    pub fn is_drained(&self) -> bool {
        self.outstanding.is_empty() && self.sending == 0
    }

    /// The next thing to do at `now`.
    pub fn next(&mut self, now: Instant) -> Next {
        if let Some(until) = self.backoff.not_before {
            if until > now {
                return Next::WaitUntil(until);
            }
            self.backoff.not_before = None;
        }
        self.wake_delayed(now);
        if self.sending >= self.max_in_flight {
            return Next::Idle;
        }
        while let Some(trace_id) = self.ready.pop_front() {
            let Some(line) = self.lines.get_mut(&trace_id) else {
                continue;
            };
            let Some(pending) = line.events.front_mut() else {
                continue;
            };
            let body = match pending.body.encode() {
                Ok(body) => body,
                Err(error) => {
                    // It could never be sent: done, and failed; the trace goes on.
                    self.counters.finish_failed(&error);
                    self.finish(trace_id);
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
        match self.delayed_until() {
            Some(at) => Next::WaitUntil(at),
            None => Next::Idle,
        }
    }

    /// Takes the outcome of `job`'s send at `now`.
    pub fn complete(&mut self, job: &Job, outcome: Result<(), Failure>, now: Instant) {
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
                return self.finish(job.trace_id);
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
            return self.finish(job.trace_id);
        }
        if self.orphaned {
            if pending.orphan_retries >= max {
                self.counters.finish_failed(error);
                return self.finish(job.trace_id);
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
            self.finish(job.trace_id);
        }
    }

    /// The event at the front of `trace_id`'s line is done (sent or failed).
    fn finish(&mut self, trace_id: TraceId) {
        let Some(line) = self.lines.get_mut(&trace_id) else {
            return;
        };
        if let Some(done) = line.events.pop_front() {
            self.outstanding.remove(&done.seq);
        }
        let oldest = line.oldest();
        release(&mut line.flushes, oldest);
        if line.events.is_empty() {
            if line.flushes.is_empty() {
                self.lines.remove(&trace_id);
            }
        } else {
            self.ready.push_back(trace_id);
        }
        if !self.flushes.is_empty() {
            let oldest = self.outstanding.first().copied();
            release(&mut self.flushes, oldest);
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

/// Sends `done` to every flush whose events are all done, given the oldest outstanding.
fn release(flushes: &mut Vec<Flush>, oldest: Option<u64>) {
    flushes.retain_mut(|flush| {
        if oldest.is_none_or(|o| o >= flush.upto) {
            let (done, _) = oneshot::channel();
            let _ = std::mem::replace(&mut flush.done, done).send(());
            false
        } else {
            true
        }
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
            Body::Logged(Logged {
                trace_id: t,
                kind: crate::model::EventType::ModelOutput,
                timestamp: 1_700_000_000.25,
                content: "ok".into(),
                schema: Arc::from("{}"),
            }),
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
}
