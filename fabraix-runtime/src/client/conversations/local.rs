//! [`LocalStore`]: the conversations of one process, bounded in number and expiring when
//! idle, with no background task: expiry is amortized over the turns.
//!
//! Plain synchronous code over a clock passed in, so every rule is unit tested here; the
//! waiting and the network are in `mod.rs`.
//!
//! - `entries`: one per conversation, live (its run) or registering (its first turn's
//!   registration, which the others wait for).
//! - `touches`: `(key, when)` for each turn that found or made a live run, in time order.
//!   The front is the least recently used; a touch is stale once its entry has moved on
//!   (a later turn, a new run, an end). Expiry pops the front while it is older than the
//!   idle time; a full store evicts from the front too. Stale touches are dropped as they
//!   reach the front, and the whole list is rebuilt when they outnumber the entries, so
//!   it stays within about twice the number of entries.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Limits;
use super::key::ConversationKey;
use super::pending::{Outcome, Pending};
use crate::model::{Error, Trace};

/// The conversations of one client in this process.
#[derive(Debug)]
pub(crate) struct LocalStore {
    table: Arc<Mutex<Table>>,
}

/// Times in the table: milliseconds since the table was made (8 bytes, where an `Instant`
/// takes 16; the table holds three per conversation).
type Millis = u64;

/// A conversation in the table: the first half of its [`ConversationKey`] (see
/// [`ConversationKey::short`]), which halves the bytes each entry and touch spend on it.
type Short = [u64; 2];

#[derive(Debug)]
struct Table {
    limits: Limits,
    /// A registration older than this is presumed lost (its turn can wait no longer).
    stale_after: Duration,
    epoch: Instant,
    entries: HashMap<Short, Entry>,
    touches: VecDeque<(Short, Millis)>,
}

#[derive(Debug)]
enum Entry {
    Live {
        trace: Trace,
        started: Millis,
        last_turn: Millis,
    },
    Registering(Arc<Pending>),
}

/// What a turn does, as the store sees it.
#[derive(Debug)]
pub(crate) enum Begin {
    /// Continue this live run.
    Continue(Trace),
    /// Register a run, then report through the claim (dropping it abandons the claim).
    Register(Claim),
    /// Another turn is registering the run: wait for its outcome.
    Wait(Arc<Pending>),
}

impl LocalStore {
    pub(crate) fn new(limits: Limits, stale_after: Duration) -> Self {
        Self {
            table: Arc::new(Mutex::new(Table {
                limits,
                stale_after,
                epoch: Instant::now(),
                entries: HashMap::new(),
                touches: VecDeque::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        lock(&self.table)
    }

    /// A turn of the conversation `key` begins at `now`.
    pub(crate) fn begin(&self, key: ConversationKey, instant: Instant) -> Begin {
        let mut table = self.lock();
        let now = table.millis(instant);
        table.expire(now);
        let limits = table.limits;
        let stale_after = table.stale_after;
        let short = key.short();
        match table.entries.get_mut(&short) {
            Some(Entry::Live {
                trace,
                started,
                last_turn,
            }) if !expired(&limits, *started, *last_turn, now) => {
                *last_turn = now;
                let trace = *trace;
                table.touch(short, now);
                return Begin::Continue(trace);
            }
            Some(Entry::Registering(pending))
                if instant.saturating_duration_since(pending.since) < stale_after =>
            {
                return Begin::Wait(pending.clone());
            }
            Some(_) => {}
            None => table.make_room(),
        }
        // Absent, rotated (idle or too old), or a registration presumed lost.
        let pending = Arc::new(Pending::new(instant));
        if let Some(Entry::Registering(lost)) = table
            .entries
            .insert(short, Entry::Registering(pending.clone()))
        {
            lost.resolve(Outcome::Abandoned);
        }
        Begin::Register(Claim {
            table: Arc::downgrade(&self.table),
            key: short,
            pending,
            done: false,
        })
    }

    /// A run the shared store answered for `key` at `instant`, kept here too: should the
    /// shared store become unreachable, this process continues it. A registration in
    /// progress here is left alone.
    #[cfg(feature = "redis")]
    pub(crate) fn remember(&self, key: ConversationKey, trace: Trace, instant: Instant) {
        let mut table = self.lock();
        let now = table.millis(instant);
        table.expire(now);
        let short = key.short();
        match table.entries.get_mut(&short) {
            Some(Entry::Registering(_)) => return,
            Some(Entry::Live {
                trace: known,
                last_turn,
                ..
            }) if *known == trace => *last_turn = now,
            Some(entry) => {
                *entry = Entry::Live {
                    trace,
                    started: now,
                    last_turn: now,
                }
            }
            None => {
                table.make_room();
                table.entries.insert(
                    short,
                    Entry::Live {
                        trace,
                        started: now,
                        last_turn: now,
                    },
                );
            }
        }
        table.touch(short, now);
    }

    /// Forgets the conversation: its next turn registers a new run. Answers whether there
    /// was one (live or registering).
    pub(crate) fn end(&self, key: ConversationKey) -> bool {
        self.lock().entries.remove(&key.short()).is_some()
    }

    /// Conversations held, live or registering.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    #[cfg(test)]
    fn touches(&self) -> usize {
        self.lock().touches.len()
    }
}

/// Whether a run registered at `started`, last used at `last_turn`, is over at `now`.
fn expired(limits: &Limits, started: Millis, last_turn: Millis, now: Millis) -> bool {
    now.saturating_sub(last_turn) >= millis(limits.idle)
        || now.saturating_sub(started) >= millis(limits.max_age)
}

fn millis(duration: Duration) -> Millis {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Table {
    fn millis(&self, at: Instant) -> Millis {
        millis(at.saturating_duration_since(self.epoch))
    }

    fn touch(&mut self, key: Short, now: Millis) {
        self.touches.push_back((key, now));
        if self.touches.len() > 2 * self.entries.len() + 64 {
            self.rebuild_touches();
        }
    }

    /// One touch per live entry, at its last turn, in time order.
    fn rebuild_touches(&mut self) {
        let mut touches: Vec<(Short, Millis)> = self
            .entries
            .iter()
            .filter_map(|(key, entry)| match entry {
                Entry::Live { last_turn, .. } => Some((*key, *last_turn)),
                Entry::Registering(_) => None,
            })
            .collect();
        touches.sort_unstable_by_key(|(_, at)| *at);
        self.touches = touches.into();
    }

    /// Whether `(key, at)` is still the last turn of a live entry.
    fn is_current(&self, key: &Short, at: Millis) -> bool {
        matches!(self.entries.get(key), Some(Entry::Live { last_turn, .. }) if *last_turn == at)
    }

    /// Drops the conversations idle for the idle time, oldest first. Each touch is popped
    /// once, so this costs O(1) per turn, amortized.
    fn expire(&mut self, now: Millis) {
        let idle = millis(self.limits.idle);
        while let Some(&(key, at)) = self.touches.front() {
            if now.saturating_sub(at) < idle {
                break;
            }
            self.touches.pop_front();
            if self.is_current(&key, at) {
                self.entries.remove(&key);
            }
        }
    }

    /// Before a new entry: at capacity, the least recently used live conversation goes
    /// (its next turn registers a new run).
    fn make_room(&mut self) {
        while self.entries.len() >= self.limits.capacity {
            let Some((key, at)) = self.touches.pop_front() else {
                // Only registrations in flight: they end soon, and are not evicted.
                return;
            };
            if self.is_current(&key, at) {
                self.entries.remove(&key);
            }
        }
    }
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    // Plain data, consistent between statements: a panic elsewhere leaves it usable.
    table.lock().unwrap_or_else(|e| e.into_inner())
}

/// The right, and the duty, to register a conversation's run: report the outcome with
/// [`complete`](Self::complete); dropped without it (the turn was cancelled), the claim
/// is abandoned and a waiting turn takes it over.
#[derive(Debug)]
pub(crate) struct Claim {
    table: std::sync::Weak<Mutex<Table>>,
    key: Short,
    pending: Arc<Pending>,
    done: bool,
}

impl Claim {
    /// The registration ended at `now` with `outcome`: a registered run becomes the
    /// conversation's live run (unless the conversation was ended meanwhile), a failure
    /// leaves the conversation without one; the waiting turns get the outcome either way.
    pub(crate) fn complete(mut self, outcome: &Result<Trace, Error>, now: Instant) {
        self.done = true;
        let outcome = match outcome {
            Ok(trace) => Outcome::Registered(*trace),
            Err(error) => Outcome::Failed(error.clone()),
        };
        self.settle(outcome, now);
    }

    fn settle(&self, outcome: Outcome, now: Instant) {
        if let Some(table) = self.table.upgrade() {
            let mut table = lock(&table);
            let now = table.millis(now);
            let ours = matches!(
                table.entries.get(&self.key),
                Some(Entry::Registering(pending)) if Arc::ptr_eq(pending, &self.pending)
            );
            if ours {
                match &outcome {
                    Outcome::Registered(trace) => {
                        table.entries.insert(
                            self.key,
                            Entry::Live {
                                trace: *trace,
                                started: now,
                                last_turn: now,
                            },
                        );
                        table.touch(self.key, now);
                    }
                    Outcome::Failed(_) | Outcome::Abandoned => {
                        table.entries.remove(&self.key);
                    }
                }
            }
        }
        self.pending.resolve(outcome);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.done {
            self.settle(Outcome::Abandoned, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::conversations::key::KeyDeriver;
    use crate::model::{AgentId, TraceId};

    const SECOND: Duration = Duration::from_secs(1);

    fn limits(idle: u64, max_age: u64, capacity: usize) -> Limits {
        Limits {
            idle: Duration::from_secs(idle),
            max_age: Duration::from_secs(max_age),
            capacity,
        }
    }

    fn key(n: u32) -> ConversationKey {
        KeyDeriver::new("sk-test").key(AgentId::from_name("agent").unwrap(), &format!("c-{n}"))
    }

    fn trace() -> Trace {
        Trace::new(
            TraceId::from_uuid(uuid::Uuid::new_v4()),
            AgentId::from_name("agent").unwrap(),
            chrono::Utc::now(),
        )
    }

    /// Registers `key` at `now` and answers its run.
    fn register(store: &LocalStore, key: ConversationKey, now: Instant) -> Trace {
        match store.begin(key, now) {
            Begin::Register(claim) => {
                let trace = trace();
                claim.complete(&Ok(trace), now);
                trace
            }
            other => panic!("expected to register, got {other:?}"),
        }
    }

    fn continued(store: &LocalStore, key: ConversationKey, now: Instant) -> Option<Trace> {
        match store.begin(key, now) {
            Begin::Continue(trace) => Some(trace),
            _ => None,
        }
    }

    #[test]
    fn turns_continue_the_run_until_idle() {
        let store = LocalStore::new(limits(60, 3600, 10), 30 * SECOND);
        let t0 = Instant::now();
        let run = register(&store, key(1), t0);
        assert_eq!(continued(&store, key(1), t0 + 59 * SECOND), Some(run));
        // Idle is measured from the last turn.
        assert_eq!(continued(&store, key(1), t0 + 118 * SECOND), Some(run));
        assert_eq!(continued(&store, key(1), t0 + 178 * SECOND), None);
    }

    #[test]
    fn a_run_older_than_the_maximum_age_rotates() {
        let store = LocalStore::new(limits(60, 100, 10), 30 * SECOND);
        let t0 = Instant::now();
        let run = register(&store, key(1), t0);
        assert_eq!(continued(&store, key(1), t0 + 50 * SECOND), Some(run));
        assert!(matches!(
            store.begin(key(1), t0 + 100 * SECOND),
            Begin::Register(_)
        ));
    }

    #[test]
    fn turns_during_a_registration_wait_for_it() {
        let store = LocalStore::new(limits(60, 3600, 10), 30 * SECOND);
        let t0 = Instant::now();
        let Begin::Register(claim) = store.begin(key(1), t0) else {
            panic!("the first turn registers")
        };
        let Begin::Wait(pending) = store.begin(key(1), t0) else {
            panic!("the second turn waits")
        };
        let run = trace();
        claim.complete(&Ok(run), t0);
        assert!(matches!(pending.outcome(), Some(Outcome::Registered(t)) if t == run));
        assert_eq!(continued(&store, key(1), t0 + SECOND), Some(run));
    }

    #[test]
    fn a_failed_or_abandoned_registration_leaves_no_run() {
        let store = LocalStore::new(limits(60, 3600, 10), 30 * SECOND);
        let t0 = Instant::now();
        let Begin::Register(claim) = store.begin(key(1), t0) else {
            panic!()
        };
        let Begin::Wait(waiting) = store.begin(key(1), t0) else {
            panic!()
        };
        claim.complete(&Err(Error::Timeout { after: SECOND }), t0);
        assert!(matches!(
            waiting.outcome(),
            Some(Outcome::Failed(Error::Timeout { .. }))
        ));
        assert_eq!(store.len(), 0);

        let Begin::Register(claim) = store.begin(key(1), t0) else {
            panic!()
        };
        let Begin::Wait(waiting) = store.begin(key(1), t0) else {
            panic!()
        };
        drop(claim);
        assert!(matches!(waiting.outcome(), Some(Outcome::Abandoned)));
        assert!(matches!(store.begin(key(1), t0), Begin::Register(_)));
    }

    #[test]
    fn a_lost_registration_is_taken_over_after_the_deadline() {
        let store = LocalStore::new(limits(60, 3600, 10), 30 * SECOND);
        let t0 = Instant::now();
        let Begin::Register(lost) = store.begin(key(1), t0) else {
            panic!()
        };
        let Begin::Wait(waiting) = store.begin(key(1), t0) else {
            panic!()
        };
        let Begin::Register(_new) = store.begin(key(1), t0 + 30 * SECOND) else {
            panic!("a registration past the deadline is taken over")
        };
        assert!(matches!(waiting.outcome(), Some(Outcome::Abandoned)));
        // The late answer of the lost registration does not replace the new claim.
        lost.complete(&Ok(trace()), t0 + 31 * SECOND);
        assert!(matches!(
            store.begin(key(1), t0 + 31 * SECOND),
            Begin::Wait(_)
        ));
    }

    #[test]
    fn ending_forgets_the_run_and_a_late_registration_stays_out() {
        let store = LocalStore::new(limits(60, 3600, 10), 30 * SECOND);
        let t0 = Instant::now();
        register(&store, key(1), t0);
        assert!(store.end(key(1)));
        assert!(!store.end(key(1)));
        let Begin::Register(claim) = store.begin(key(1), t0) else {
            panic!()
        };
        assert!(store.end(key(1)));
        claim.complete(&Ok(trace()), t0);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn idle_conversations_expire_without_being_asked_for() {
        let store = LocalStore::new(limits(60, 3600, 1000), 30 * SECOND);
        let t0 = Instant::now();
        for n in 0..100 {
            register(&store, key(n), t0);
        }
        register(&store, key(1000), t0 + 30 * SECOND);
        assert_eq!(store.len(), 101);
        // Any turn after the idle time sweeps the idle ones out.
        register(&store, key(1001), t0 + 61 * SECOND);
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn a_full_store_evicts_the_least_recently_used() {
        let store = LocalStore::new(limits(600, 3600, 3), 30 * SECOND);
        let t0 = Instant::now();
        let first = register(&store, key(1), t0);
        register(&store, key(2), t0 + SECOND);
        register(&store, key(3), t0 + 2 * SECOND);
        assert_eq!(continued(&store, key(1), t0 + 3 * SECOND), Some(first));
        register(&store, key(4), t0 + 4 * SECOND);
        assert_eq!(store.len(), 3);
        assert_eq!(continued(&store, key(1), t0 + 5 * SECOND), Some(first));
        assert!(matches!(
            store.begin(key(2), t0 + 5 * SECOND),
            Begin::Register(_)
        ));
    }

    #[test]
    fn touches_stay_within_twice_the_entries() {
        let store = LocalStore::new(limits(600, 3600, 10), 30 * SECOND);
        let t0 = Instant::now();
        register(&store, key(1), t0);
        for turn in 0..10_000u64 {
            continued(&store, key(1), t0 + Duration::from_millis(turn)).unwrap();
        }
        assert!(store.touches() <= 2 + 64, "{} touches", store.touches());
    }
}
