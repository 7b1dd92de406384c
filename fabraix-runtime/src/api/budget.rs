//! One rate budget per client (per API key): every request to Fabraix takes a slot of it,
//! so that the key's limit is met by pacing, not by 429s, and a 429 slows what met it
//! without breaking the agent.
//!
//! - **Windows.** Each configured window ("at most N in any span") is a sliding window over
//!   the times requests were sent, with a small margin added to the span (arrival times at
//!   the server differ from send times by the network's jitter), so a server counting by
//!   fixed windows, sliding windows or token buckets never sees more than it allows.
//! - **Lanes** ([`Lane`]). Calls an agent waits for (registrations, checks, direct events)
//!   go before queued events: events wait while any agent call waits, and use a window only
//!   while a share of it (a fifth) stays free for agent calls.
//! - **A 429 pauses the lane that met it**, until its `Retry-After` (else the back-off).
//!   The other lane finds out whether it is limited too: it waits for the answers of the
//!   requests it has in flight, or sends one, a *probe*, when it has none; a 429 pauses it
//!   as well. When a pause ends, its lane starts again with one request. From there a lane
//!   *ramps*: each success lets one more request be in flight (doubling them every round
//!   trip, as TCP's slow start does) until it sends freely. So a key-wide limit costs at
//!   most one extra 429 per lane and pause, no burst meets a limit that outlasted its pause,
//!   and a 429 on queued events costs an agent's check at most a few round trips.
//! - **Windows learned from 429s.** A fresh 429 that asked to wait a span (its
//!   `Retry-After`, at least a second) shows what the server took: the requests it accepted
//!   in that span before (a span of at most a minute). For one span after the pause the
//!   lane that met it keeps to that many requests of the key per span, so its burst after
//!   a pause does not meet a limit that outlasted it; then it ramps up again from one
//!   request. A second fresh 429 of the lane in an episode keeps the learned window until
//!   a quiet minute. The other lane learns only from its own 429s.
//! - **Failing fast.** An agent call whose deadline comes before its lane's pause ends
//!   fails at once with [`Error::RateLimited`] instead of waiting for nothing.
//! - **Pace, from evidence only.** A one-off 429 (the server asked for a pause once) only
//!   pauses: the lane is back to full speed a few round trips after its pause. A limit shows itself
//!   when a lane meets a 429 again after its own pause, within one episode (429s less than a
//!   minute apart): only then is a pace set, below the rate the server accepted, and it
//!   climbs back as a cubic of the time since that 429 (the AWS SDKs' adaptive retry mode,
//!   from CUBIC congestion control): it starts at 70% of that rate, is back to it `K`
//!   seconds later (`K` = ∛(rate × 0.3 / 0.4), e.g. 2.5 s for 20 requests a second), and
//!   grows faster and faster beyond it. A pace is dropped once no 429 came for a minute and
//!   it is more than twice that rate.
//!
//! [`State`] decides, as plain synchronous code; [`Budget`] is the thin async part that
//! waits for its answers.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::lane::Lane;
use super::retry::RetryPolicy;
use crate::model::{Error, RateLimit};

/// The share of each window (and of the pace) kept free for agent calls.
pub(crate) const AGENT_SHARE: f64 = 0.2;
/// How far a pace starts below the rate the server accepted (CUBIC's β).
const BETA: f64 = 0.7;
/// How fast a pace climbs back (CUBIC's C, in requests per second per second³).
const CUBIC_C: f64 = 0.4;
/// The pace never drops below one request every ten seconds.
const MIN_PACE: f64 = 0.1;
/// A 429 sets a pace only when this many requests were accepted in the measured past:
/// fewer say nothing about the rate the server takes (the pause alone applies).
const MIN_EVIDENCE: usize = 2;
/// Rates are measured over this much of the recent past…
const MEASURE: Duration = Duration::from_secs(10);
/// …and over at most this many sends.
const MEASURE_CAP: usize = 4096;
/// A throttled episode ends once no 429 came for this long.
const EPISODE_GAP: Duration = Duration::from_secs(60);

/// A slot taken: carried by the request, so that its outcome is read against the state it
/// was sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    lane: Lane,
    /// The lane's pause count when the slot was taken: a 429 to a request sent before the
    /// lane's last pause says nothing new.
    epoch: u64,
    sent: Instant,
}

/// The budget's counters, for `Client::stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct BudgetStats {
    pub rate_limited: u64,
    pub waited: Duration,
    pub pace: Option<f64>,
    /// Requests sent while their lane ramped up after a 429 (the first of each ramp is
    /// its probe).
    pub probes: u64,
    /// Agent calls that failed at once because their lane's pause outlasted their deadline.
    pub failed_fast: u64,
}

struct Window {
    requests: usize,
    /// The span, with the margin for network jitter.
    span: Duration,
    /// What queued events may use of it.
    for_events: usize,
}

impl Window {
    /// `requests` per `per`, its span with the margin for network jitter,
    /// and with agent calls' share of it kept from events.
    fn new(requests: usize, per: Duration) -> Self {
        let reserve = if requests >= 2 {
            ((requests as f64 * AGENT_SHARE).ceil() as usize).max(1)
        } else {
            0
        };
        Self {
            requests,
            span: per
                .saturating_add(per / 50)
                .saturating_add(Duration::from_millis(5)),
            for_events: requests - reserve,
        }
    }
}

/// A window learned from a 429: what the server accepted in the span it asked to wait.
struct Learned {
    window: Window,
    /// Until when it applies: the span after the pause of a lane's first 429 (so a burst
    /// after a pause meets no limit that outlasted it); `None` once a second 429 showed
    /// the limit, until a quiet minute.
    until: Option<Instant>,
}

/// A pace set by a repeated 429: CUBIC's window, in requests per second.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// The rate the server accepted when the pace was set.
    wmax: f64,
    since: Instant,
    /// Seconds until the pace is back to `wmax`.
    k: f64,
}

impl Pace {
    fn new(wmax: f64, now: Instant) -> Self {
        let wmax = wmax.max(MIN_PACE);
        Self {
            wmax,
            since: now,
            k: (wmax * (1.0 - BETA) / CUBIC_C).cbrt(),
        }
    }

    fn rate(&self, now: Instant) -> f64 {
        let t = now.saturating_duration_since(self.since).as_secs_f64() - self.k;
        (CUBIC_C * t * t * t + self.wmax).max(MIN_PACE)
    }
}

/// While agent calls are active, queued events keep at most this many sends in flight
/// beside them: a call then shares the server (and the connection pool's host) with a few
/// sends, not with dozens.
const EVENTS_BESIDE_AGENTS: usize = 4;

/// Agent calls come in bursts (a tool loop checks, acts, checks again): they count as
/// active while one is in flight and for this long after the last was answered, so the
/// next check of a burst does not meet the dozens of sends the queue starts in between.
const AGENTS_LINGER: Duration = Duration::from_secs(1);

/// Once this many requests of a ramping lane may be in flight, it sends freely again.
const RAMP_DONE: usize = 64;

#[derive(Debug)]
struct LaneState {
    paused_until: Option<Instant>,
    /// Requests of the lane sent and not yet answered.
    in_flight: usize,
    /// While the lane ramps up after a 429: how many of its requests may be in flight.
    ramp: Option<usize>,
    /// Raised by each pause that a fresh 429 began.
    epoch: u64,
    /// Fresh 429s of this lane in the current episode: the second shows a limit that
    /// outlasts a pause.
    episode_pauses: u32,
    /// 429s since the lane's last success, for the back-off when the server names no wait.
    consecutive: u32,
}

impl LaneState {
    const fn new() -> Self {
        Self {
            paused_until: None,
            in_flight: 0,
            ramp: None,
            epoch: 0,
            episode_pauses: 0,
            consecutive: 0,
        }
    }

    fn paused_at(&self, now: Instant) -> bool {
        self.paused_until.is_some_and(|t| t > now)
    }
}

/// What a request may do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Go(Ticket),
    /// The lane is paused (a 429) until then.
    Paused(Instant),
    /// A window or the pace frees a slot then.
    WaitUntil(Instant),
    /// The lane ramps up and has all the requests in flight it may: their answers let
    /// it go on.
    WaitForAnswers,
    /// An event waits while agent calls do.
    WaitForAgents,
}

pub(crate) struct State {
    windows: Vec<Window>,
    /// When requests were sent, oldest first; kept as long as a window needs them.
    sent: VecDeque<Instant>,
    /// The most requests of any window: older sends never matter to a window.
    keep: usize,
    /// The longest span of any window.
    longest: Duration,
    /// When the requests the server accepted were sent: the rate it takes.
    accepted: VecDeque<Instant>,
    /// The last send, for the pace.
    last_sent: Option<Instant>,
    lanes: [LaneState; 2],
    /// Per lane: a window learned from its 429s.
    learned: [Option<Learned>; 2],
    pace: Option<Pace>,
    /// A repeated 429 asked for a pace before enough successes were in to measure the rate
    /// the server accepts (the answers of its burst may come after it): set when the lane
    /// sends again, from what is in by then.
    pace_pending: bool,
    last_throttle: Option<Instant>,
    episode: Option<Episode>,
    agents_waiting: usize,
    /// An event was held for agent calls: the next answer wakes it.
    events_held: bool,
    /// When the last agent call was answered.
    agent_answered: Option<Instant>,
    /// At exit: no agent call will come any more, so events may use whole windows.
    draining: bool,
    rate_limited: u64,
    waited: Duration,
    probes: u64,
    failed_fast: u64,
}

struct Episode {
    started: Instant,
    throttled: u64,
}

fn index(lane: Lane) -> usize {
    match lane {
        Lane::Agent => 0,
        Lane::Events => 1,
    }
}

impl State {
    pub fn new(limit: &RateLimit) -> Self {
        let windows: Vec<Window> = limit
            .windows()
            .iter()
            .map(|w| Window::new(w.requests as usize, w.per))
            .collect();
        let keep = windows.iter().map(|w| w.requests).max().unwrap_or(0);
        let longest = windows.iter().map(|w| w.span).max().unwrap_or_default();
        Self {
            windows,
            sent: VecDeque::new(),
            keep,
            longest,
            accepted: VecDeque::new(),
            last_sent: None,
            lanes: [LaneState::new(), LaneState::new()],
            pace: None,
            pace_pending: false,
            last_throttle: None,
            episode: None,
            agents_waiting: 0,
            draining: false,
            events_held: false,
            agent_answered: None,
            learned: [None, None],
            rate_limited: 0,
            waited: Duration::ZERO,
            probes: 0,
            failed_fast: 0,
        }
    }

    fn lane(&mut self, lane: Lane) -> &mut LaneState {
        &mut self.lanes[index(lane)]
    }

    /// Whether `lane` may send at `now`; `Go` records the send.
    pub fn decide(&mut self, lane: Lane, now: Instant) -> Decision {
        let learned = &mut self.learned[index(lane)];
        if learned
            .as_ref()
            .is_some_and(|l| l.until.is_some_and(|until| until <= now))
        {
            // The window learned from a first 429 has done its part: the lane finds out
            // again whether a limit is there, one request and a doubling at a time.
            *learned = None;
            let state = self.lane(lane);
            if state.ramp.is_none() {
                state.ramp = Some(1);
            }
        }
        let state = self.lane(lane);
        if let Some(until) = state.paused_until {
            if until > now {
                return Decision::Paused(until);
            }
            state.paused_until = None;
        }
        if state.ramp.is_some_and(|ramp| state.in_flight >= ramp) {
            return Decision::WaitForAnswers;
        }
        let ramping = state.ramp.is_some();
        if self.pace_pending {
            self.set_pace(now);
        }
        let agents_active = self.lanes[index(Lane::Agent)].in_flight > 0
            || self
                .agent_answered
                .is_some_and(|at| now.saturating_duration_since(at) < AGENTS_LINGER);
        let agents_busy = agents_active
            && self.lanes[index(Lane::Events)].in_flight >= EVENTS_BESIDE_AGENTS
            && !self.draining;
        if lane == Lane::Events && (self.agents_waiting > 0 || agents_busy) {
            self.events_held = true;
            return Decision::WaitForAgents;
        }
        let mut not_before: Option<Instant> = None;
        let mut later = |at: Instant| {
            if at > now {
                not_before = Some(not_before.map_or(at, |t| t.max(at)));
            }
        };
        if let (Some(pace), Some(last)) = (&self.pace, self.last_sent) {
            later(
                last.checked_add(interval(pace.rate(now), self.share(lane)))
                    .unwrap_or(now),
            );
        }
        for window in self.windows.iter().chain(self.learned_window(lane, now)) {
            let limit = self.limit(window, lane);
            let in_window = in_window(&self.sent, window.span, now);
            if in_window >= limit {
                // The oldest sends in the window must leave it until fewer than `limit`
                // remain: the one `limit` places from the newest sets the time.
                let index = self.sent.len() - limit;
                later(self.sent[index].checked_add(window.span).unwrap_or(now));
            }
        }
        if let Some(at) = not_before {
            return Decision::WaitUntil(at);
        }
        self.sent.push_back(now);
        self.last_sent = Some(now);
        self.prune(now);
        if ramping {
            self.probes += 1;
        }
        let state = self.lane(lane);
        state.in_flight += 1;
        Decision::Go(Ticket {
            lane,
            epoch: state.epoch,
            sent: now,
        })
    }

    /// The window `lane` learned, while it applies.
    fn learned_window(&self, lane: Lane, now: Instant) -> Option<&Window> {
        self.learned[index(lane)]
            .as_ref()
            .filter(|learned| learned.until.is_none_or(|until| until > now))
            .map(|learned| &learned.window)
    }

    /// Learns a window from a fresh 429 that asked to wait `wait`: the requests the server
    /// accepted in that span (at least a second) before it. Kept for the span after the
    /// pause at first; for good (until a quiet minute) when `repeated`.
    fn learn(
        &mut self,
        lane: Lane,
        wait: Duration,
        pause_end: Instant,
        repeated: bool,
        now: Instant,
    ) {
        let span = wait.clamp(Duration::from_secs(1), Duration::from_secs(60));
        let since = now.checked_sub(span);
        let accepted = self
            .accepted
            .iter()
            .filter(|t| since.is_none_or(|s| **t >= s))
            .count();
        if accepted < MIN_EVIDENCE {
            return;
        }
        let learned = &self.learned[index(lane)];
        let requests = match learned.as_ref() {
            Some(old) if old.until.is_none() && old.window.span >= span => {
                accepted.min(old.window.requests)
            }
            _ => accepted,
        };
        let window = Window::new(requests, span);
        self.keep = self.keep.max(requests);
        self.longest = self.longest.max(window.span);
        let until = if repeated || learned.as_ref().is_some_and(|l| l.until.is_none()) {
            None
        } else {
            pause_end.checked_add(span)
        };
        self.learned[index(lane)] = Some(Learned { window, until });
    }

    fn limit(&self, window: &Window, lane: Lane) -> usize {
        match lane {
            Lane::Events if !self.draining => window.for_events.max(1),
            _ => window.requests,
        }
    }

    fn share(&self, lane: Lane) -> f64 {
        match lane {
            Lane::Events if !self.draining => 1.0 - AGENT_SHARE,
            _ => 1.0,
        }
    }

    /// Forgets the sends no window needs.
    fn prune(&mut self, now: Instant) {
        let from = now.checked_sub(self.longest);
        while let Some(oldest) = self.sent.front() {
            if self.sent.len() <= self.keep && from.is_none_or(|h| *oldest >= h) {
                break;
            }
            self.sent.pop_front();
        }
    }

    /// The requests accepted among those sent over the recent past, and the rate they
    /// show per second: their count over the span from the first to the last of them (at
    /// least a second), so that a pause after them does not count as time the server took
    /// nothing.
    fn measured(&self, now: Instant) -> (usize, f64) {
        let since = now.checked_sub(MEASURE);
        let recent = || {
            self.accepted
                .iter()
                .filter(move |t| since.is_none_or(|s| **t >= s))
        };
        let count = recent().count();
        let first = recent().min();
        let last = recent().max();
        let span = match (first, last) {
            (Some(first), Some(last)) => last.saturating_duration_since(*first),
            _ => Duration::ZERO,
        }
        .max(Duration::from_secs(1));
        (count, count as f64 / span.as_secs_f64())
    }

    /// Sets (or lowers) the pace below the rate the server accepted, once enough successes
    /// are in to measure it; until then the pauses alone apply.
    fn set_pace(&mut self, now: Instant) {
        let (evidence, measured) = self.measured(now);
        if evidence < MIN_EVIDENCE {
            return;
        }
        self.pace_pending = false;
        let current = self.pace.map_or(f64::INFINITY, |p| p.rate(now));
        self.pace = Some(Pace::new(current.min(measured), now));
    }

    /// A 429 came back for a request sent with `ticket`; the server asked to wait
    /// `retry_after` (else the policy's back-off). Pauses the ticket's lane and has the
    /// other one find out whether it is limited too. Answers whether this began a
    /// throttled episode.
    pub fn throttled(
        &mut self,
        ticket: Ticket,
        retry_after: Option<Duration>,
        policy: &RetryPolicy,
        now: Instant,
    ) -> bool {
        self.rate_limited += 1;
        let episode_began = self
            .last_throttle
            .is_none_or(|at| now.saturating_duration_since(at) >= EPISODE_GAP);
        self.last_throttle = Some(now);
        if episode_began {
            self.episode = Some(Episode {
                started: now,
                throttled: 0,
            });
            for lane in &mut self.lanes {
                lane.episode_pauses = 0;
            }
        }
        if let Some(episode) = &mut self.episode {
            episode.throttled += 1;
        }
        let state = self.lane(ticket.lane);
        state.in_flight = state.in_flight.saturating_sub(1);
        let wait = policy
            .delay(state.consecutive, retry_after)
            .max(Duration::from_millis(10));
        state.consecutive = state.consecutive.saturating_add(1);
        let until = now.checked_add(wait).unwrap_or(now);
        state.paused_until = Some(state.paused_until.map_or(until, |t| t.max(until)));
        // When the pause ends, the lane starts again with one request.
        state.ramp = Some(1);
        if ticket.epoch != state.epoch {
            // Sent before the lane's last pause: the other 429s of one burst say nothing new.
            return episode_began;
        }
        state.epoch += 1;
        state.episode_pauses += 1;
        let repeated = state.episode_pauses >= 2;
        let pause_end = state.paused_until.unwrap_or(now);
        self.learn(ticket.lane, wait, pause_end, repeated, now);
        if repeated {
            // The limit outlasted a pause: the lane sends faster than the server takes.
            self.pace_pending = true;
            self.set_pace(now);
        }
        let other = self.lane(ticket.lane.other());
        if !other.paused_at(now) && other.ramp.is_none() {
            other.ramp = Some(1);
        }
        episode_began
    }

    /// A request sent with `ticket` succeeded: a ramping lane may have one more in flight.
    /// Answers whether requests of the lane may be waiting for this.
    pub fn succeeded(&mut self, ticket: Ticket, now: Instant) -> bool {
        self.accepted.push_back(ticket.sent);
        let since = now.checked_sub(MEASURE);
        while self.accepted.len() > MEASURE_CAP
            || since.is_some_and(|s| self.accepted.front().is_some_and(|t| *t < s))
        {
            self.accepted.pop_front();
        }
        if ticket.lane == Lane::Agent {
            self.agent_answered = Some(now);
        }
        let state = self.lane(ticket.lane);
        state.consecutive = 0;
        state.in_flight = state.in_flight.saturating_sub(1);
        let ramping = state.ramp.is_some();
        state.ramp = state
            .ramp
            .map(|ramp| ramp + 1)
            .filter(|ramp| *ramp < RAMP_DONE);
        let quiet = self
            .last_throttle
            .is_none_or(|at| now.saturating_duration_since(at) >= EPISODE_GAP);
        if quiet {
            // No more evidence is coming for a pace asked for an episode ago.
            self.pace_pending = false;
            if self
                .pace
                .is_some_and(|pace| pace.rate(now) > 2.0 * pace.wmax)
            {
                self.pace = None;
            }
            self.learned = [None, None];
        }
        if quiet && let (Some(episode), Some(last)) = (&self.episode, self.last_throttle) {
            tracing::info!(
                target: "fabraix",
                throttled = episode.throttled,
                lasted_ms = last.saturating_duration_since(episode.started).as_millis() as u64,
                "fabraix rate limit episode over"
            );
            self.episode = None;
        }
        ramping | std::mem::take(&mut self.events_held)
    }

    /// A request sent with `ticket` ended some other way (an error, a timeout, dropped
    /// unsent): it says nothing of the limit, but frees its place. Answers whether requests
    /// of the lane may be waiting for this.
    pub fn unanswered(&mut self, ticket: Ticket) -> bool {
        let state = self.lane(ticket.lane);
        state.in_flight = state.in_flight.saturating_sub(1);
        state.ramp.is_some() | std::mem::take(&mut self.events_held)
    }

    /// How long `events` queued events would take to be sent at `now`, at the current pace
    /// and within the windows, if nothing else were sent.
    pub fn time_to_send(&self, events: usize, now: Instant) -> Duration {
        if events == 0 {
            return Duration::ZERO;
        }
        let paused = self.lanes[index(Lane::Events)]
            .paused_until
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or_default();
        let mut longest = Duration::ZERO;
        if let Some(pace) = &self.pace {
            let seconds = events as f64 / (pace.rate(now) * self.share(Lane::Events));
            longest = longest.max(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX));
        }
        for window in self
            .windows
            .iter()
            .chain(self.learned_window(Lane::Events, now))
        {
            let limit = self.limit(window, Lane::Events);
            let used = in_window(&self.sent, window.span, now);
            let free = limit.saturating_sub(used);
            if events <= free {
                continue;
            }
            // The rest waits for the window to roll: the first slots free up as the oldest
            // sends leave it, and then one window's worth per span.
            let first_free = match used {
                0 => window.span,
                _ => (self.sent[self.sent.len() - used].checked_add(window.span))
                    .map_or(Duration::MAX, |t| t.saturating_duration_since(now)),
            };
            let rounds = u32::try_from((events - free).div_ceil(limit.max(1))).unwrap_or(u32::MAX);
            let wait =
                first_free.saturating_add(window.span.saturating_mul(rounds.saturating_sub(1)));
            longest = longest.max(wait);
        }
        paused.saturating_add(longest)
    }

    pub fn stats(&self, now: Instant) -> BudgetStats {
        BudgetStats {
            rate_limited: self.rate_limited,
            waited: self.waited,
            pace: self.pace.as_ref().map(|p| p.rate(now)),
            probes: self.probes,
            failed_fast: self.failed_fast,
        }
    }
}

/// The sends within the last `span` before `now`.
fn in_window(sent: &VecDeque<Instant>, span: Duration, now: Instant) -> usize {
    match now.checked_sub(span) {
        Some(start) => sent.len() - sent.partition_point(|t| *t <= start),
        None => sent.len(),
    }
}

fn interval(per_second: f64, share: f64) -> Duration {
    Duration::try_from_secs_f64(1.0 / (per_second * share)).unwrap_or(Duration::MAX)
}

/// The budget of one client, shared by its calls and its exporter.
pub(crate) struct Budget {
    limit: RateLimit,
    state: Mutex<State>,
    /// Signalled whenever waiting requests should look again: a pause, an answer to a
    /// ramping lane, an agent call that stopped waiting.
    changed: Notify,
    /// Signalled when a lane pauses: a flush deciding whether to wait looks again.
    paused: Notify,
}

impl Budget {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            state: Mutex::new(State::new(&limit)),
            limit,
            changed: Notify::new(),
            paused: Notify::new(),
        }
    }

    pub fn limit(&self) -> &RateLimit {
        &self.limit
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot of `lane`. An agent call gives up, with [`Error::RateLimited`],
    /// when its lane's pause or the budget would have it wait past `deadline`; an event
    /// waits as long as it takes.
    pub async fn acquire(&self, lane: Lane, deadline: Option<Instant>) -> Result<Ticket, Error> {
        // The common case, a slot free at once: no waiting to count, no wake-up to ask for.
        if let Decision::Go(ticket) = self.state().decide(lane, Instant::now()) {
            return Ok(ticket);
        }
        self.wait_for_slot(lane, deadline).await
    }

    async fn wait_for_slot(&self, lane: Lane, deadline: Option<Instant>) -> Result<Ticket, Error> {
        let started = Instant::now();
        let _waiting = (lane == Lane::Agent).then(|| AgentWaiting::new(self));
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            let decision = self.state().decide(lane, now);
            let until = match decision {
                Decision::Go(ticket) => {
                    let waited = started.elapsed();
                    if !waited.is_zero() {
                        self.state().waited += waited;
                    }
                    return Ok(ticket);
                }
                Decision::Paused(at) | Decision::WaitUntil(at) => {
                    if let Some(deadline) = deadline
                        && at > deadline
                    {
                        // Waiting cannot end in time: end now.
                        if matches!(decision, Decision::Paused(_)) {
                            self.state().failed_fast += 1;
                        }
                        return Err(Error::RateLimited {
                            retry_after: Some(at.saturating_duration_since(now)),
                        });
                    }
                    Some(at)
                }
                // Answered within a round trip or so: wait for them up to the deadline.
                Decision::WaitForAnswers => deadline,
                Decision::WaitForAgents => None,
            };
            if let Some(deadline) = deadline
                && now >= deadline
            {
                return Err(Error::RateLimited { retry_after: None });
            }
            match until {
                Some(at) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// A 429 came back: pause the ticket's lane (see [`State::throttled`]).
    pub fn throttled(&self, ticket: Ticket, retry_after: Option<Duration>, policy: &RetryPolicy) {
        let now = Instant::now();
        let (began, stats, measured) = {
            let mut state = self.state();
            let began = state.throttled(ticket, retry_after, policy, now);
            (began, state.stats(now), state.measured(now).1)
        };
        if began {
            tracing::warn!(
                target: "fabraix",
                limit = %self.limit,
                lane = ticket.lane.as_str(),
                retry_after_ms = retry_after.map(|d| d.as_millis() as u64),
                measured_per_second = measured,
                pace_per_second = stats.pace,
                rate_limited_so_far = stats.rate_limited,
                "fabraix api rate limit reached (429); that lane of the key pauses, the other finds out whether it is limited too"
            );
        }
        self.changed.notify_waiters();
        self.paused.notify_waiters();
    }

    pub fn succeeded(&self, ticket: Ticket) {
        let waiting = self.state().succeeded(ticket, Instant::now());
        if waiting {
            self.changed.notify_waiters();
        }
    }

    pub fn unanswered(&self, ticket: Ticket) {
        let waiting = self.state().unanswered(ticket);
        if waiting {
            self.changed.notify_waiters();
        }
    }

    /// Resolves at the next pause of a lane; enable it before looking at the state.
    pub fn next_pause(&self) -> tokio::sync::futures::Notified<'_> {
        self.paused.notified()
    }

    /// How long `events` queued events would take to be sent, from now.
    pub fn time_to_send(&self, events: usize) -> Duration {
        self.state().time_to_send(events, Instant::now())
    }

    /// From now on, events may use whole windows: no agent call is coming (process exit).
    pub fn drain(&self) {
        self.state().draining = true;
        self.changed.notify_waiters();
    }

    pub fn stats(&self) -> BudgetStats {
        self.state().stats(Instant::now())
    }

    /// A request waited `waited` for the budget shared across processes, and failed at
    /// once when `failed_fast` (its lane paused past its deadline).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub fn note_shared_wait(&self, waited: Duration, failed_fast: bool) {
        if waited.is_zero() && !failed_fast {
            return;
        }
        let mut state = self.state();
        state.waited += waited;
        if failed_fast {
            state.failed_fast += 1;
        }
    }
}

/// Counts an agent call as waiting while it does, so that events let it go first.
struct AgentWaiting<'a>(&'a Budget);

impl<'a> AgentWaiting<'a> {
    fn new(budget: &'a Budget) -> Self {
        budget.state().agents_waiting += 1;
        Self(budget)
    }
}

impl Drop for AgentWaiting<'_> {
    fn drop(&mut self) {
        self.0.state().agents_waiting -= 1;
        self.0.changed.notify_waiters();
    }
}

/// A slot in use by one request: reports its outcome to the budget, and a request dropped
/// before it had one (a cancelled agent fn) as unanswered, so that its lane never counts
/// it in flight for ever.
pub(crate) struct Slot<'a> {
    budget: &'a Budget,
    ticket: Ticket,
    reported: bool,
}

impl<'a> Slot<'a> {
    pub fn new(budget: &'a Budget, ticket: Ticket) -> Self {
        Self {
            budget,
            ticket,
            reported: false,
        }
    }

    pub fn succeeded(mut self) {
        self.reported = true;
        self.budget.succeeded(self.ticket);
    }

    pub fn throttled(mut self, retry_after: Option<Duration>, policy: &RetryPolicy) {
        self.reported = true;
        self.budget.throttled(self.ticket, retry_after, policy);
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.budget.unanswered(self.ticket);
        }
    }
}

#[cfg(test)]
mod tests;
