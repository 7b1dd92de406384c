//! One rate budget per client (per API key): every request to Fabraix takes a slot of it,
//! so that the key's limit is met by pacing, not by 429s.
//!
//! - **Windows.** Each configured window ("at most N in any span") is a sliding window over
//!   the times requests were sent, with a small margin added to the span (arrival times at
//!   the server differ from send times by the network's jitter), so a server counting by
//!   fixed windows, sliding windows or token buckets never sees more than it allows.
//! - **Lanes.** Calls an agent waits for (registrations, checks, direct events) go before
//!   queued events: events wait while any agent call waits, and use a window only while a
//!   share of it (a fifth) stays free for agent calls.
//! - **Adaptive.** A 429 pauses every lane of the key until its `Retry-After` (or the
//!   back-off), and lowers the pace (multiplicative decrease, to 70% of the rate the
//!   server accepted just before it); the pace then grows back by 2% a second while requests succeed (additive
//!   probing, as the AWS SDKs' adaptive retry mode does), and is dropped once it is far
//!   above what is sent. Only a 429 to a request sent after the last pause lowers the pace
//!   again: the others were in flight already and say nothing new.
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
const AGENT_SHARE: f64 = 0.2;
/// How much a 429 lowers the pace: to this share of the rate measured before it.
const DECREASE: f64 = 0.7;
/// How fast the pace grows back while requests succeed: this share per second.
const GROWTH_PER_SECOND: f64 = 0.02;
/// The pace never drops below one request every ten seconds.
const MIN_PACE: f64 = 0.1;
/// A 429 sets a pace only when this many requests were accepted in the measured past:
/// fewer say nothing about the rate the server takes (the pause alone applies).
const MIN_EVIDENCE: usize = 2;
/// Rates are measured over this much of the recent past…
const MEASURE: Duration = Duration::from_secs(10);
/// …and over at most this many sends.
const MEASURE_CAP: usize = 4096;
/// A pace is dropped once no 429 came for this long and it is far above the measured rate.
const RELAX_AFTER: Duration = Duration::from_secs(300);
/// A throttled episode ends once no 429 came for this long.
const EPISODE_GAP: Duration = Duration::from_secs(60);

/// A slot taken: carried by the request, so that its outcome is read against the pause it
/// was sent in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    epoch: u64,
}

/// The budget's counters, for `Client::stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct BudgetStats {
    pub rate_limited: u64,
    pub waited: Duration,
    pub pace: Option<f64>,
}

struct Window {
    requests: usize,
    /// The span, with the margin for network jitter.
    span: Duration,
    /// What queued events may use of it.
    for_events: usize,
}

struct Pace {
    per_second: f64,
    updated: Instant,
}

/// What a request may do now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    Go(u64),
    WaitUntil(Instant),
    /// An event waits while agent calls do.
    WaitForAgents,
}

pub(crate) struct State {
    windows: Vec<Window>,
    /// When requests were sent, oldest first; kept as long as a window or the rate
    /// measurement needs them.
    sent: VecDeque<Instant>,
    /// The most requests of any window: older sends never matter to a window.
    keep: usize,
    /// The longest span of any window.
    longest: Duration,
    /// When recent requests succeeded, oldest first: the rate the server accepts.
    accepted: VecDeque<Instant>,
    /// The last send, for the pace.
    last_sent: Option<Instant>,
    paused_until: Option<Instant>,
    /// Raised by each pause that lowered the pace.
    epoch: u64,
    pace: Option<Pace>,
    /// When a 429 asked for a lower pace before enough successes were in to measure the
    /// rate the server accepts (the answers of its burst may come after it): the pace is
    /// set when sending resumes after the pause, by when they are in.
    lower_pace: Option<Instant>,
    last_throttle: Option<Instant>,
    /// 429s since the last success, for the back-off when the server names no wait.
    consecutive: u32,
    episode: Option<Episode>,
    agents_waiting: usize,
    /// At exit: no agent call will come any more, so events may use whole windows.
    draining: bool,
    rate_limited: u64,
    waited: Duration,
}

struct Episode {
    started: Instant,
    throttled: u64,
}

impl State {
    pub fn new(limit: &RateLimit) -> Self {
        let windows: Vec<Window> = limit
            .windows()
            .iter()
            .map(|w| {
                let requests = w.requests as usize;
                let reserve = if requests >= 2 {
                    ((requests as f64 * AGENT_SHARE).ceil() as usize).max(1)
                } else {
                    0
                };
                Window {
                    requests,
                    span: w.per + w.per / 50 + Duration::from_millis(5),
                    for_events: requests - reserve,
                }
            })
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
            paused_until: None,
            epoch: 0,
            pace: None,
            lower_pace: None,
            last_throttle: None,
            consecutive: 0,
            episode: None,
            agents_waiting: 0,
            draining: false,
            rate_limited: 0,
            waited: Duration::ZERO,
        }
    }

    /// Whether `lane` may send at `now`; `Go` records the send.
    pub fn decide(&mut self, lane: Lane, now: Instant) -> Decision {
        if let Some(until) = self.paused_until {
            if until > now {
                return Decision::WaitUntil(until);
            }
            self.paused_until = None;
        }
        self.try_lowering_pace(now);
        if lane == Lane::Events && self.agents_waiting > 0 {
            return Decision::WaitForAgents;
        }
        let mut not_before: Option<Instant> = None;
        let mut later = |at: Instant| {
            if at > now {
                not_before = Some(not_before.map_or(at, |t| t.max(at)));
            }
        };
        if let (Some(pace), Some(last)) = (&self.pace, self.last_sent) {
            later(last + interval(pace.per_second, self.share(lane)));
        }
        for window in &self.windows {
            let limit = self.limit(window, lane);
            let in_window = in_window(&self.sent, window.span, now);
            if in_window >= limit {
                // The oldest sends in the window must leave it until fewer than `limit`
                // remain: the one `limit` places from the newest sets the time.
                let index = self.sent.len() - limit;
                later(self.sent[index] + window.span);
            }
        }
        if let Some(at) = not_before {
            return Decision::WaitUntil(at);
        }
        self.sent.push_back(now);
        self.last_sent = Some(now);
        self.prune(now);
        Decision::Go(self.epoch)
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

    /// How many requests the server accepted over the recent past.
    fn recently_accepted(&self, now: Instant) -> usize {
        let since = now.checked_sub(MEASURE);
        self.accepted
            .iter()
            .rev()
            .take_while(|t| since.is_none_or(|s| **t >= s))
            .count()
    }

    /// Requests the server accepted per second, over the recent past (at least a second).
    fn measured_rate(&self, now: Instant) -> f64 {
        let recent = self.recently_accepted(now);
        let first = self.accepted.get(self.accepted.len() - recent).copied();
        let span = first
            .map(|f| now.saturating_duration_since(f))
            .unwrap_or_default()
            .max(Duration::from_secs(1));
        recent as f64 / span.as_secs_f64()
    }

    /// A 429 came back for a request sent with `ticket`; the server asked to wait
    /// `retry_after` (else the policy's back-off). Answers whether this began a throttled
    /// episode.
    pub fn throttled(
        &mut self,
        ticket: Ticket,
        retry_after: Option<Duration>,
        policy: &RetryPolicy,
        now: Instant,
    ) -> bool {
        self.rate_limited += 1;
        let wait = policy
            .delay(self.consecutive, retry_after)
            .max(Duration::from_millis(10));
        self.consecutive = self.consecutive.saturating_add(1);
        let until = now.checked_add(wait).unwrap_or(now);
        self.paused_until = Some(self.paused_until.map_or(until, |t| t.max(until)));
        let episode_began = self
            .last_throttle
            .is_none_or(|at| now.saturating_duration_since(at) >= EPISODE_GAP);
        self.last_throttle = Some(now);
        if episode_began {
            self.episode = Some(Episode {
                started: now,
                throttled: 0,
            });
        }
        if let Some(episode) = &mut self.episode {
            episode.throttled += 1;
        }
        if ticket.epoch == self.epoch {
            // Sent after the last pause: the pace was still too fast. The other 429s of
            // the same burst say nothing new.
            self.epoch += 1;
            self.lower_pace = Some(now);
            self.try_lowering_pace(now);
        }
        episode_began
    }

    /// Lowers the pace below the rate the server accepted, if a 429 asked for it and enough
    /// successes are in. The rate is measured up to the 429 or the last success after it,
    /// so that the pause itself does not count as time the server took nothing.
    fn try_lowering_pace(&mut self, now: Instant) {
        let Some(at) = self.lower_pace else { return };
        let until = self
            .accepted
            .back()
            .map_or(at, |last| at.max(*last))
            .min(now);
        if self.recently_accepted(until) < MIN_EVIDENCE {
            return;
        }
        self.lower_pace = None;
        let measured = self.measured_rate(until);
        let current = self.pace.as_ref().map_or(f64::INFINITY, |p| p.per_second);
        let per_second = (current.min(measured) * DECREASE).max(MIN_PACE);
        self.pace = Some(Pace {
            per_second,
            updated: now,
        });
    }

    /// A request sent under the budget succeeded: the pace grows back.
    pub fn succeeded(&mut self, now: Instant) {
        self.consecutive = 0;
        self.accepted.push_back(now);
        let since = now.checked_sub(MEASURE);
        while self.accepted.len() > MEASURE_CAP
            || since.is_some_and(|s| self.accepted.front().is_some_and(|t| *t < s))
        {
            self.accepted.pop_front();
        }
        if let Some(pace) = &mut self.pace {
            let seconds = now
                .saturating_duration_since(pace.updated)
                .min(Duration::from_secs(10))
                .as_secs_f64();
            pace.per_second *= 1.0 + GROWTH_PER_SECOND * seconds;
            pace.updated = now;
            let quiet = self
                .last_throttle
                .is_none_or(|at| now.saturating_duration_since(at) >= RELAX_AFTER);
            if quiet && pace.per_second > 4.0 * self.measured_rate(now).max(MIN_PACE) {
                self.pace = None;
            }
        }
        if let (Some(episode), Some(last)) = (&self.episode, self.last_throttle)
            && now.saturating_duration_since(last) >= EPISODE_GAP
        {
            tracing::info!(
                target: "fabraix",
                throttled = episode.throttled,
                lasted_ms = last.saturating_duration_since(episode.started).as_millis() as u64,
                "fabraix rate limit episode over"
            );
            self.episode = None;
        }
    }

    /// How long `events` queued events would take to be sent at `now`, at the current pace
    /// and within the windows, if nothing else were sent.
    pub fn time_to_send(&self, events: usize, now: Instant) -> Duration {
        if events == 0 {
            return Duration::ZERO;
        }
        let paused = self
            .paused_until
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or_default();
        let mut longest = Duration::ZERO;
        if let Some(pace) = &self.pace {
            let seconds = events as f64 / (pace.per_second * self.share(Lane::Events));
            longest = longest.max(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX));
        }
        for window in &self.windows {
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
                _ => {
                    (self.sent[self.sent.len() - used] + window.span).saturating_duration_since(now)
                }
            };
            let rounds = (events - free).div_ceil(limit.max(1)) as u32;
            let wait = first_free + window.span.saturating_mul(rounds.saturating_sub(1));
            longest = longest.max(wait);
        }
        paused.saturating_add(longest)
    }

    pub fn stats(&self) -> BudgetStats {
        BudgetStats {
            rate_limited: self.rate_limited,
            waited: self.waited,
            pace: self.pace.as_ref().map(|p| p.per_second),
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
    /// Signalled whenever waiting requests should look again: a pause, a slot taken by an
    /// agent call, an agent call that stopped waiting.
    changed: Notify,
}

impl Budget {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            state: Mutex::new(State::new(&limit)),
            limit,
            changed: Notify::new(),
        }
    }

    pub fn limit(&self) -> &RateLimit {
        &self.limit
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot of `lane`. An agent call gives up, with [`Error::RateLimited`],
    /// when the budget would have it wait past `deadline`; an event waits as long as it
    /// takes.
    pub async fn acquire(&self, lane: Lane, deadline: Option<Instant>) -> Result<Ticket, Error> {
        // The common case, a slot free at once: no waiting to count, no wake-up to ask for.
        if let Decision::Go(epoch) = self.state().decide(lane, Instant::now()) {
            return Ok(Ticket { epoch });
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
                Decision::Go(epoch) => {
                    let waited = started.elapsed();
                    if !waited.is_zero() {
                        self.state().waited += waited;
                    }
                    return Ok(Ticket { epoch });
                }
                Decision::WaitUntil(at) => Some(at),
                Decision::WaitForAgents => None,
            };
            if let (Some(at), Some(deadline)) = (until, deadline)
                && at > deadline
            {
                return Err(Error::RateLimited {
                    retry_after: Some(at.saturating_duration_since(now)),
                });
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

    /// A 429 came back: pause every lane (see [`State::throttled`]).
    pub fn throttled(&self, ticket: Ticket, retry_after: Option<Duration>, policy: &RetryPolicy) {
        let now = Instant::now();
        let (began, stats, measured) = {
            let mut state = self.state();
            let began = state.throttled(ticket, retry_after, policy, now);
            (began, state.stats(), state.measured_rate(now))
        };
        if began {
            tracing::warn!(
                target: "fabraix",
                limit = %self.limit,
                retry_after_ms = retry_after.map(|d| d.as_millis() as u64),
                measured_per_second = measured,
                pace_per_second = stats.pace,
                rate_limited_so_far = stats.rate_limited,
                "fabraix api rate limit reached (429); requests of this key now wait and are paced"
            );
        }
        self.changed.notify_waiters();
    }

    pub fn succeeded(&self) {
        self.state().succeeded(Instant::now());
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
        self.state().stats()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn state(spec: &str) -> State {
        State::new(&spec.parse().unwrap())
    }

    const POLICY: RetryPolicy = RetryPolicy {
        max_retries: 3,
        base: Duration::from_millis(100),
        cap: Duration::from_secs(5),
        max_retry_after: Duration::from_secs(60),
    };

    fn go(state: &mut State, lane: Lane, now: Instant) -> bool {
        matches!(state.decide(lane, now), Decision::Go(_))
    }

    /// Sends as soon as the budget allows, for `total`, stepping time to each answer;
    /// answers the send times.
    fn send_all(state: &mut State, lane: Lane, start: Instant, total: Duration) -> Vec<Instant> {
        let mut now = start;
        let mut sent = Vec::new();
        while now < start + total {
            match state.decide(lane, now) {
                Decision::Go(_) => sent.push(now),
                Decision::WaitUntil(at) => now = at,
                Decision::WaitForAgents => panic!("no agent waits here"),
            }
        }
        sent
    }

    fn max_in_any(sent: &[Instant], span: Duration) -> usize {
        sent.iter()
            .map(|start| {
                sent.iter()
                    .filter(|t| **t >= *start && **t < *start + span)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn never_more_than_n_in_any_span_of_each_window() {
        let mut s = state("5/s,12/3s");
        let sent = send_all(&mut s, Lane::Agent, Instant::now(), Duration::from_secs(10));
        assert!(max_in_any(&sent, Duration::from_secs(1)) <= 5);
        assert!(max_in_any(&sent, Duration::from_secs(3)) <= 12);
        // And the windows are used: about 4 a second over 10 s.
        assert!(sent.len() >= 36, "{}", sent.len());
    }

    #[test]
    fn events_leave_a_fifth_of_each_window_to_agent_calls() {
        let mut s = state("10/s");
        let now = Instant::now();
        let events = (0..20)
            .take_while(|_| go(&mut s, Lane::Events, now))
            .count();
        assert_eq!(events, 8);
        assert!(go(&mut s, Lane::Agent, now));
        assert!(go(&mut s, Lane::Agent, now));
        assert!(!go(&mut s, Lane::Agent, now));
    }

    #[test]
    fn events_wait_while_an_agent_call_waits() {
        let mut s = state("off");
        s.agents_waiting = 1;
        assert_eq!(
            s.decide(Lane::Events, Instant::now()),
            Decision::WaitForAgents
        );
        assert!(go(&mut s, Lane::Agent, Instant::now()));
    }

    #[test]
    fn a_429_pauses_every_lane_then_paces_below_the_rate_that_met_it() {
        let mut s = state("off");
        let start = Instant::now();
        // 50 requests a second for two seconds, unpaced, all accepted.
        let mut now = start;
        let mut ticket = Ticket { epoch: 0 };
        for _ in 0..100 {
            if let Decision::Go(epoch) = s.decide(Lane::Agent, now) {
                ticket = Ticket { epoch };
                s.succeeded(now);
            }
            now += Duration::from_millis(20);
        }
        assert!(s.throttled(ticket, Some(Duration::from_secs(2)), &POLICY, now));
        assert_eq!(
            s.decide(Lane::Agent, now),
            Decision::WaitUntil(now + Duration::from_secs(2))
        );
        let pace = s.stats().pace.unwrap();
        assert!((30.0..=40.0).contains(&pace), "{pace}");
        // A 429 to a request that was in flight before the pause changes nothing more.
        assert!(!s.throttled(ticket, None, &POLICY, now));
        assert_eq!(s.stats().pace, Some(pace));
        assert_eq!(s.stats().rate_limited, 2);
        // After the pause, sends are spaced by the pace.
        let later = now + Duration::from_secs(2);
        let sent = send_all(&mut s, Lane::Agent, later, Duration::from_secs(1));
        assert!(sent.len() as f64 <= pace + 1.0, "{}", sent.len());
    }

    #[test]
    fn the_pace_grows_back_while_requests_succeed_and_is_dropped_when_far_above_need() {
        let mut s = state("off");
        let start = Instant::now();
        // 100 accepted in a second, then a 429: paced at 70 a second.
        for n in 0..100 {
            let at = start + Duration::from_millis(10 * n);
            assert!(go(&mut s, Lane::Agent, at));
            s.succeeded(at);
        }
        let now = start + Duration::from_secs(1);
        s.throttled(Ticket { epoch: 0 }, Some(Duration::ZERO), &POLICY, now);
        let low = s.stats().pace.unwrap();
        assert!((60.0..=80.0).contains(&low), "{low}");
        s.succeeded(now + Duration::from_secs(10));
        let higher = s.stats().pace.unwrap();
        assert!(higher > low * 1.15, "{low} -> {higher}");
        // Minutes later, with little sent, the pace is far above need: dropped.
        s.succeeded(now + RELAX_AFTER + Duration::from_secs(11));
        assert_eq!(s.stats().pace, None);
    }

    #[test]
    fn a_429_before_anything_was_accepted_pauses_without_pacing() {
        // Nothing says how fast the server takes requests yet: no pace is guessed.
        let mut s = state("off");
        let now = Instant::now();
        assert!(go(&mut s, Lane::Agent, now));
        s.throttled(
            Ticket { epoch: 0 },
            Some(Duration::from_secs(1)),
            &POLICY,
            now,
        );
        assert_eq!(s.stats().pace, None);
        let later = now + Duration::from_secs(1);
        assert!(go(&mut s, Lane::Agent, later));
        assert!(go(&mut s, Lane::Agent, later));
    }

    #[test]
    fn a_429_answered_before_the_successes_of_its_burst_paces_from_all_of_them() {
        // A burst of five: the 429 of the fifth comes back before the answers of the four
        // the server took. The pace is set when sending resumes after the pause, from the
        // rate all four show (four in a second), times the decrease.
        let mut s = state("off");
        let now = Instant::now();
        for _ in 0..5 {
            assert!(go(&mut s, Lane::Agent, now));
        }
        let ms = Duration::from_millis(1);
        s.throttled(
            Ticket { epoch: 0 },
            Some(Duration::from_secs(1)),
            &POLICY,
            now + ms,
        );
        for _ in 0..4 {
            s.succeeded(now + 2 * ms);
        }
        // Another 429 of the same burst lowers nothing further.
        s.throttled(
            Ticket { epoch: 0 },
            Some(Duration::from_secs(1)),
            &POLICY,
            now + 3 * ms,
        );
        assert_eq!(s.stats().pace, None, "set when sending resumes");
        let resume = now + Duration::from_secs(1) + 3 * ms;
        assert!(go(&mut s, Lane::Agent, resume));
        let pace = s.stats().pace.expect("paced");
        assert!((pace - 4.0 * DECREASE).abs() < 1e-9, "{pace}");
        // Sends after it are spaced by that pace.
        let sent = send_all(&mut s, Lane::Agent, resume, Duration::from_secs(1));
        assert!(sent.len() as f64 <= pace + 1.0, "{}", sent.len());
    }

    #[test]
    fn time_to_send_counts_the_pause_the_pace_and_the_windows() {
        let mut s = state("10/s");
        let now = Instant::now();
        assert_eq!(s.time_to_send(5, now), Duration::ZERO);
        // 8 event slots a second: 20 events need two more seconds after the first 8.
        let wait = s.time_to_send(20, now);
        assert!(
            wait > Duration::from_secs(1) && wait < Duration::from_secs(3),
            "{wait:?}"
        );
        s.throttled(
            Ticket { epoch: 0 },
            Some(Duration::from_secs(30)),
            &POLICY,
            now,
        );
        assert!(s.time_to_send(1, now) >= Duration::from_secs(30));
    }

    #[test]
    fn draining_lets_events_use_whole_windows() {
        let mut s = state("10/s");
        s.draining = true;
        let now = Instant::now();
        let events = (0..20)
            .take_while(|_| go(&mut s, Lane::Events, now))
            .count();
        assert_eq!(events, 10);
    }

    #[test]
    fn memory_stays_bounded_by_the_largest_window() {
        let mut s = state("100/s");
        let start = Instant::now();
        for at in send_all(&mut s, Lane::Agent, start, Duration::from_secs(60)) {
            s.succeeded(at);
        }
        assert!(s.sent.len() <= 100, "{}", s.sent.len());
        assert!(s.accepted.len() <= 100 * 11, "{}", s.accepted.len());
    }
}
