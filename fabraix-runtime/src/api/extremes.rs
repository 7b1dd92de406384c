//! The budget with any limit a user can build or write, and any times, waits and counts:
//! its clock arithmetic saturates, it never panics.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::budget::{Decision, State};
use super::lane::Lane;
use super::retry::RetryPolicy;
use crate::model::RateLimit;

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(secs, nanos)| Duration::new(secs, nanos)),
        (0u64..100_000).prop_map(Duration::from_millis),
    ]
}

fn limit() -> impl Strategy<Value = RateLimit> {
    prop_oneof![
        proptest::collection::vec((any::<u32>(), duration()), 0..4).prop_map(|windows| {
            windows
                .into_iter()
                .fold(RateLimit::off(), |limit, (requests, per)| {
                    limit.and(requests, per)
                })
        }),
        "[0-9]{1,8}/[0-9]{0,6}(s|min|h)".prop_filter_map("a limit", |text| text.parse().ok()),
    ]
}

/// What happens to the budget at one moment.
#[derive(Debug, Clone)]
enum Step {
    Send(bool),
    Succeed,
    Throttle(Option<Duration>),
    Unanswered,
    TimeToSend(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<bool>().prop_map(Step::Send),
        Just(Step::Succeed),
        proptest::option::of(duration()).prop_map(Step::Throttle),
        Just(Step::Unanswered),
        prop_oneof![Just(usize::MAX), any::<usize>(), 0usize..10_000].prop_map(Step::TimeToSend),
    ]
}

proptest! {
    #[test]
    fn the_budget_never_panics(
        limit in limit(),
        policy in (any::<u32>(), duration(), duration(), duration()),
        steps in proptest::collection::vec((duration(), step()), 1..48),
    ) {
        let policy = RetryPolicy {
            max_retries: policy.0,
            base: policy.1,
            cap: policy.2,
            max_retry_after: policy.3,
        };
        let mut state = State::new(&limit);
        let start = Instant::now();
        let mut now = start;
        let mut tickets = Vec::new();
        for (elapse, step) in steps {
            // Time only moves forward; as far as the platform's clock can count.
            now = now.checked_add(elapse).unwrap_or(now);
            match step {
                Step::Send(agent) => {
                    let lane = if agent { Lane::Agent } else { Lane::Events };
                    match state.decide(lane, now) {
                        Decision::Go(ticket) => tickets.push(ticket),
                        Decision::Paused(at) | Decision::WaitUntil(at) => prop_assert!(at > now),
                        Decision::WaitForAnswers | Decision::WaitForAgents => {}
                    }
                }
                Step::Succeed => {
                    if let Some(ticket) = tickets.pop() {
                        state.succeeded(ticket, now);
                    }
                }
                Step::Throttle(retry_after) => {
                    if let Some(ticket) = tickets.pop() {
                        state.throttled(ticket, retry_after, &policy, now);
                    }
                }
                Step::Unanswered => {
                    if let Some(ticket) = tickets.pop() {
                        state.unanswered(ticket);
                    }
                }
                Step::TimeToSend(events) => {
                    let _ = state.time_to_send(events, now);
                }
            }
            let _ = state.stats(now);
        }
    }
}
