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

const SECOND: Duration = Duration::from_secs(1);

fn ticket(state: &mut State, lane: Lane, now: Instant) -> Ticket {
    match state.decide(lane, now) {
        Decision::Go(ticket) => ticket,
        other => panic!("{lane:?} may not send: {other:?}"),
    }
}

fn go(state: &mut State, lane: Lane, now: Instant) -> bool {
    matches!(state.decide(lane, now), Decision::Go(_))
}

/// Sends as soon as the budget allows, for `total`, stepping time to each answer; answers
/// the send times.
fn send_all(state: &mut State, lane: Lane, start: Instant, total: Duration) -> Vec<Instant> {
    let mut now = start;
    let mut sent = Vec::new();
    while now < start + total {
        match state.decide(lane, now) {
            Decision::Go(ticket) => {
                sent.push(now);
                state.succeeded(ticket, now);
            }
            Decision::WaitUntil(at) | Decision::Paused(at) => now = at,
            other => panic!("unexpected here: {other:?}"),
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

/// Sends `count` requests of `lane` `every` apart from `start`, all accepted.
fn accepted_run(
    state: &mut State,
    lane: Lane,
    start: Instant,
    count: u32,
    every: Duration,
) -> (Ticket, Instant) {
    let mut last = None;
    let mut now = start;
    for _ in 0..count {
        let t = ticket(state, lane, now);
        state.succeeded(t, now);
        last = Some(t);
        now += every;
    }
    (last.expect("at least one"), now)
}

#[test]
fn never_more_than_n_in_any_span_of_each_window() {
    let mut s = state("5/s,12/3s");
    let sent = send_all(&mut s, Lane::Agent, Instant::now(), Duration::from_secs(10));
    assert!(max_in_any(&sent, SECOND) <= 5);
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

/// Sends requests of `lane` at `now` until the lane says to wait, answering each success
/// only after the whole round is out (as round trips do); answers how many rounds it took
/// until the lane sends freely, and what each round sent.
fn ramp_up(state: &mut State, lane: Lane, now: Instant) -> Vec<usize> {
    let mut rounds = Vec::new();
    while state.lanes[index(lane)].ramp.is_some() {
        let mut round = Vec::new();
        while let Decision::Go(t) = state.decide(lane, now) {
            round.push(t);
            assert!(
                round.len() <= RAMP_DONE,
                "the ramp never holds more than {RAMP_DONE}"
            );
        }
        rounds.push(round.len());
        for t in round {
            state.succeeded(t, now);
        }
        assert!(rounds.len() < 20, "{rounds:?}");
    }
    rounds
}

#[test]
fn a_429_pauses_only_the_lane_that_met_it_and_the_other_lane_probes_once() {
    let mut s = state("off");
    let now = Instant::now();
    let event = ticket(&mut s, Lane::Events, now);
    assert!(s.throttled(event, Some(Duration::from_secs(30)), &POLICY, now));
    // Events wait out the pause…
    assert_eq!(
        s.decide(Lane::Events, now),
        Decision::Paused(now + Duration::from_secs(30))
    );
    // …agent calls send one probe, and the others wait for its answer.
    let probe = ticket(&mut s, Lane::Agent, now);
    assert_eq!(s.decide(Lane::Agent, now), Decision::WaitForAnswers);
    s.succeeded(probe, now);
    // Then they ramp up, doubling every round trip, to sending freely: no pause, no pace.
    assert_eq!(ramp_up(&mut s, Lane::Agent, now), vec![2, 4, 8, 16, 32]);
    for _ in 0..1000 {
        assert!(go(&mut s, Lane::Agent, now));
    }
    assert_eq!(s.stats(now).pace, None);
    assert_eq!(s.stats(now).probes, 1 + 2 + 4 + 8 + 16 + 32);
}

#[test]
fn the_other_lane_learns_from_the_answers_it_has_in_flight() {
    let mut s = state("off");
    let now = Instant::now();
    let agents: Vec<_> = (0..3).map(|_| ticket(&mut s, Lane::Agent, now)).collect();
    let event = ticket(&mut s, Lane::Events, now);
    s.throttled(event, Some(Duration::from_secs(30)), &POLICY, now);
    // Three agent calls are out: nothing more goes until they answer…
    assert_eq!(s.decide(Lane::Agent, now), Decision::WaitForAnswers);
    // …and their successes open the lane (1 + 3 may be in flight, none is).
    for t in agents {
        s.succeeded(t, now);
    }
    assert_eq!(ramp_up(&mut s, Lane::Agent, now), vec![4, 8, 16, 32]);
}

#[test]
fn a_probe_that_meets_a_429_pauses_its_lane_too() {
    let mut s = state("off");
    let now = Instant::now();
    let event = ticket(&mut s, Lane::Events, now);
    s.throttled(event, Some(Duration::from_secs(5)), &POLICY, now);
    let probe = ticket(&mut s, Lane::Agent, now);
    s.throttled(probe, Some(Duration::from_secs(2)), &POLICY, now);
    assert_eq!(
        s.decide(Lane::Agent, now),
        Decision::Paused(now + Duration::from_secs(2))
    );
    assert_eq!(s.stats(now).rate_limited, 2);
    // A key-wide limit costs one 429 per lane: nothing else was sent.
    assert_eq!(s.stats(now).probes, 1);
}

#[test]
fn after_its_pause_a_lane_starts_again_with_one_request() {
    let mut s = state("off");
    let now = Instant::now();
    let t = ticket(&mut s, Lane::Agent, now);
    s.throttled(t, Some(SECOND), &POLICY, now);
    let later = now + SECOND;
    let probe = ticket(&mut s, Lane::Agent, later);
    assert_eq!(s.decide(Lane::Agent, later), Decision::WaitForAnswers);
    s.succeeded(probe, later);
    assert!(go(&mut s, Lane::Agent, later));
    assert!(go(&mut s, Lane::Agent, later));
    assert_eq!(s.decide(Lane::Agent, later), Decision::WaitForAnswers);
}

#[test]
fn a_probe_that_fails_otherwise_or_is_dropped_hands_its_place_to_the_next_request() {
    let mut s = state("off");
    let now = Instant::now();
    let t = ticket(&mut s, Lane::Events, now);
    s.throttled(t, Some(SECOND), &POLICY, now);
    let probe = ticket(&mut s, Lane::Agent, now);
    assert_eq!(s.decide(Lane::Agent, now), Decision::WaitForAnswers);
    // A timeout says nothing of the limit: the next request probes instead.
    s.unanswered(probe);
    let next = ticket(&mut s, Lane::Agent, now);
    assert_eq!(s.decide(Lane::Agent, now), Decision::WaitForAnswers);
    s.succeeded(next, now);
    assert_eq!(s.lanes[0].ramp, Some(2));
}

#[test]
fn a_one_off_429_pauses_without_pacing() {
    let mut s = state("off");
    let start = Instant::now();
    let (t, now) = accepted_run(&mut s, Lane::Agent, start, 100, Duration::from_millis(20));
    s.throttled(t, Some(SECOND), &POLICY, now);
    assert_eq!(s.stats(now).pace, None);
    let later = now + SECOND;
    // For one span after the pause, the lane keeps to what the server accepted in the
    // span before the 429 (50 a second), ramping up from one request.
    let mut sent = 0;
    loop {
        match s.decide(Lane::Agent, later) {
            Decision::Go(t) => {
                s.succeeded(t, later);
                sent += 1;
            }
            Decision::WaitUntil(_) => break,
            other => panic!("{other:?}"),
        }
    }
    assert!((45..=50).contains(&sent), "{sent}");
    // Then full speed, a few round trips after the lanes find out again: 1,000 requests
    // in the same instant.
    let after = later + 2 * SECOND + Duration::from_millis(100);
    let probe = ticket(&mut s, Lane::Agent, after);
    s.succeeded(probe, after);
    assert!(ramp_up(&mut s, Lane::Agent, after).len() <= 5);
    for _ in 0..1000 {
        assert!(go(&mut s, Lane::Agent, after));
    }
    assert_eq!(s.stats(after).pace, None);
}

#[test]
fn a_429_to_a_request_sent_before_the_pause_says_nothing_new() {
    let mut s = state("off");
    let start = Instant::now();
    let (_, now) = accepted_run(&mut s, Lane::Agent, start, 100, Duration::from_millis(20));
    // A burst of ten, all 429: one pause, no pace.
    let burst: Vec<_> = (0..10).map(|_| ticket(&mut s, Lane::Agent, now)).collect();
    for t in burst {
        s.throttled(t, Some(SECOND), &POLICY, now);
    }
    assert_eq!(s.stats(now).pace, None);
    assert_eq!(s.lanes[0].episode_pauses, 1);
}

#[test]
fn a_429_again_after_the_pause_sets_a_pace_that_climbs_back_as_a_cubic() {
    let mut s = state("off");
    let start = Instant::now();
    // 50 a second accepted for two seconds, then a 429.
    let (t, now) = accepted_run(&mut s, Lane::Agent, start, 100, Duration::from_millis(20));
    s.throttled(t, Some(SECOND), &POLICY, now);
    // The probe after the pause meets a 429 too: the limit outlasts the pause.
    let later = now + SECOND;
    let probe = ticket(&mut s, Lane::Agent, later);
    s.throttled(probe, Some(SECOND), &POLICY, later);
    let pace = s.stats(later).pace.expect("paced");
    // 70% of the 50 a second the server accepted.
    assert!((34.0..=36.0).contains(&pace), "{pace}");
    // Back to 50 after K = ∛(50 × 0.3 / 0.4) ≈ 3.35 s, and climbing faster after.
    let k = Duration::from_secs_f64((50.0f64 * 0.3 / 0.4).cbrt());
    let at_k = s.stats(later + k).pace.unwrap();
    assert!((49.0..=51.0).contains(&at_k), "{at_k}");
    let beyond = s.stats(later + k + Duration::from_secs(3)).pace.unwrap();
    assert!(beyond > 55.0, "{beyond}");
    // Sends after the second pause are spaced by the pace.
    let resume = later + SECOND;
    let probe = ticket(&mut s, Lane::Agent, resume);
    s.succeeded(probe, resume);
    let sent = send_all(&mut s, Lane::Agent, resume, SECOND);
    assert!(sent.len() < 50, "{}", sent.len());
    assert!(sent.len() >= 30, "{}", sent.len());
}

#[test]
fn the_pace_is_dropped_once_quiet_and_far_above_the_rate_it_began_at() {
    let mut s = state("off");
    let start = Instant::now();
    let (t, now) = accepted_run(&mut s, Lane::Agent, start, 100, Duration::from_millis(20));
    s.throttled(t, Some(SECOND), &POLICY, now);
    let probe = ticket(&mut s, Lane::Agent, now + SECOND);
    s.throttled(probe, Some(SECOND), &POLICY, now + SECOND);
    assert!(s.stats(now).pace.is_some());
    let quiet = now + EPISODE_GAP + Duration::from_secs(5);
    let probe = ticket(&mut s, Lane::Agent, quiet);
    s.succeeded(probe, quiet);
    assert_eq!(s.stats(quiet).pace, None);
}

#[test]
fn a_repeated_429_before_anything_was_accepted_pauses_without_pacing() {
    // Nothing says how fast the server takes requests yet: no pace is guessed.
    let mut s = state("off");
    let now = Instant::now();
    let t = ticket(&mut s, Lane::Agent, now);
    s.throttled(t, Some(SECOND), &POLICY, now);
    let probe = ticket(&mut s, Lane::Agent, now + SECOND);
    s.throttled(probe, Some(SECOND), &POLICY, now + SECOND);
    assert_eq!(s.stats(now).pace, None);
}

#[test]
fn a_repeated_429_answered_before_the_successes_of_its_round_paces_from_all_of_them() {
    // After the first pause, the probe succeeds and the ramp sends two: the 429 of one
    // comes back before the success of the other. The pace is set when sending resumes,
    // from every success in by then.
    let mut s = state("off");
    let now = Instant::now();
    let first = ticket(&mut s, Lane::Agent, now);
    s.throttled(first, Some(SECOND), &POLICY, now);
    let resume = now + SECOND;
    let probe = ticket(&mut s, Lane::Agent, resume);
    s.succeeded(probe, resume);
    let (b, c) = (
        ticket(&mut s, Lane::Agent, resume),
        ticket(&mut s, Lane::Agent, resume),
    );
    s.throttled(c, Some(SECOND), &POLICY, resume);
    assert_eq!(
        s.stats(resume).pace,
        None,
        "one success is too little evidence"
    );
    s.succeeded(b, resume + Duration::from_millis(1));
    let again = resume + Duration::from_secs(2);
    assert!(go(&mut s, Lane::Agent, again));
    let pace = s.stats(again).pace.expect("paced");
    // Two accepted, sent in one instant (a span of at least a second): 2 a second, times
    // 0.7, at the start of the climb.
    assert!((pace - 2.0 * BETA).abs() < 0.05, "{pace}");
}

#[test]
fn an_agent_call_learns_at_once_that_its_lane_is_paused_past_its_deadline() {
    let mut s = state("off");
    let now = Instant::now();
    let t = ticket(&mut s, Lane::Agent, now);
    s.throttled(t, Some(Duration::from_secs(30)), &POLICY, now);
    assert_eq!(
        s.decide(Lane::Agent, now),
        Decision::Paused(now + Duration::from_secs(30))
    );
}

#[test]
fn time_to_send_counts_the_events_pause_the_pace_and_the_windows() {
    let mut s = state("10/s");
    let now = Instant::now();
    assert_eq!(s.time_to_send(5, now), Duration::ZERO);
    // 8 event slots a second: 20 events need two more seconds after the first 8.
    let wait = s.time_to_send(20, now);
    assert!(wait > SECOND && wait < Duration::from_secs(3), "{wait:?}");
    // An agent lane's pause does not hold events…
    let t = ticket(&mut s, Lane::Agent, now);
    s.throttled(t, Some(Duration::from_secs(30)), &POLICY, now);
    assert!(s.time_to_send(1, now) < SECOND);
    // …an events' pause does.
    let t = ticket(&mut s, Lane::Events, now);
    s.throttled(t, Some(Duration::from_secs(30)), &POLICY, now);
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
    send_all(&mut s, Lane::Agent, start, Duration::from_secs(60));
    assert!(s.sent.len() <= 100, "{}", s.sent.len());
    assert!(s.accepted.len() <= 100 * 11, "{}", s.accepted.len());
}

#[test]
fn extreme_windows_neither_panic_nor_overflow() {
    let now = Instant::now();
    for spec in ["1/24h", "1000000/24h", "1/s", "1000000/s", "3/1s,1/24h"] {
        let mut s = state(spec);
        let t = ticket(&mut s, Lane::Agent, now);
        s.throttled(t, Some(Duration::MAX), &POLICY, now);
        let _ = s.decide(Lane::Events, now);
        let _ = s.time_to_send(usize::MAX, now);
        let _ = s.time_to_send(1, now);
    }
}

#[test]
fn events_keep_a_few_sends_in_flight_beside_an_agent_call() {
    let mut s = state("off");
    let now = Instant::now();
    // Without an agent call in flight, events send freely.
    let mut events: Vec<Ticket> = (0..40).map(|_| ticket(&mut s, Lane::Events, now)).collect();
    let check = ticket(&mut s, Lane::Agent, now);
    // With one, no event send starts while four or more are in flight…
    assert_eq!(s.decide(Lane::Events, now), Decision::WaitForAgents);
    for t in events.drain(..36) {
        s.succeeded(t, now);
    }
    assert_eq!(s.lanes[index(Lane::Events)].in_flight, 4);
    assert_eq!(s.decide(Lane::Events, now), Decision::WaitForAgents);
    // …and the answer that lets one go wakes the event waiting for it.
    assert!(s.succeeded(events.pop().unwrap(), now));
    assert!(go(&mut s, Lane::Events, now));
    // Once the agent call is answered, the next of its burst may come: events still keep
    // to four for a second…
    assert_eq!(s.decide(Lane::Events, now), Decision::WaitForAgents);
    s.succeeded(check, now);
    let within = now + AGENTS_LINGER - Duration::from_millis(1);
    assert_eq!(s.decide(Lane::Events, within), Decision::WaitForAgents);
    // …the answer of one of their own still wakes an event waiting for it…
    assert!(s.succeeded(events.pop().unwrap(), within));
    assert!(go(&mut s, Lane::Events, within));
    // …and then they send freely again.
    let after = now + AGENTS_LINGER;
    for _ in 0..10 {
        assert!(go(&mut s, Lane::Events, after));
    }
}

#[test]
fn a_throttled_or_unanswered_agent_call_is_no_burst() {
    // Only an answer keeps agent calls active: an agent call that failed does not hold
    // events back once it is gone.
    let mut s = state("off");
    let now = Instant::now();
    let _events: Vec<Ticket> = (0..8).map(|_| ticket(&mut s, Lane::Events, now)).collect();
    let check = ticket(&mut s, Lane::Agent, now);
    assert_eq!(s.decide(Lane::Events, now), Decision::WaitForAgents);
    s.unanswered(check);
    assert!(go(&mut s, Lane::Events, now));
}
