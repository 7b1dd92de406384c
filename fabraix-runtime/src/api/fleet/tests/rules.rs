//! The lane rules of `budget.lua`: windows, the events' fifth, pauses, probes, the pace.

use std::time::{Duration, Instant};

use super::{RedisServer, admin, budget, redis_now, until_granted};
use crate::api::fleet::keys::Fingerprint;
use crate::api::fleet::{Shared, WaitReason};
use crate::api::lane::Lane;
use crate::model::RateLimit;

const PROBE_TTL: Duration = Duration::from_secs(10);
const LONG: Duration = Duration::from_secs(30);

fn paused(answer: Shared) -> Duration {
    match answer {
        Shared::Wait {
            for_,
            why: WaitReason::Paused,
        } => for_,
        other => panic!("expected a pause, got {other:?}"),
    }
}

fn probing(answer: Shared) {
    match answer {
        Shared::Wait {
            for_,
            why: WaitReason::Probing,
        } => assert!(for_ <= Duration::from_millis(50), "{for_:?}"),
        other => panic!("expected to wait for the probe, got {other:?}"),
    }
}

#[tokio::test]
async fn two_budgets_never_grant_more_than_a_window_in_any_span() {
    let Some(server) =
        RedisServer::start("fleet::two_budgets_never_grant_more_than_a_window_in_any_span")
    else {
        return;
    };
    // The hour window keeps every grant's time on Redis's clock: the record checked below.
    let limit =
        RateLimit::per(4, Duration::from_millis(400)).and(10_000, Duration::from_secs(3600));
    let a = budget(&server, "sk-windows", &limit, PROBE_TTL).await;
    let b = budget(&server, "sk-windows", &limit, PROBE_TTL).await;
    let until = Instant::now() + Duration::from_millis(1500);
    let hammer = |budget: crate::api::fleet::SharedBudget, lane: Lane| async move {
        let mut granted = 0;
        while Instant::now() < until {
            match budget.acquire(lane).await {
                Shared::Granted { probe } => {
                    assert!(!probe);
                    granted += 1;
                }
                Shared::Wait { for_, why } => {
                    assert_eq!(why, WaitReason::Window);
                    // A window's span with its margin (413 ms), or for events the time a
                    // refused agent call is back: its wait, a tenth of it and 10 ms.
                    assert!(
                        for_ <= Duration::from_micros(413_000 * 11 / 10 + 10_000),
                        "{for_:?}"
                    );
                    tokio::time::sleep(for_).await;
                }
                Shared::Unavailable => panic!("unavailable"),
            }
        }
        granted
    };
    let tasks = [
        tokio::spawn(hammer(a.clone(), Lane::Agent)),
        tokio::spawn(hammer(a, Lane::Events)),
        tokio::spawn(hammer(b.clone(), Lane::Agent)),
        tokio::spawn(hammer(b, Lane::Events)),
    ];
    let mut granted = 0;
    for task in tasks {
        granted += task.await.expect("a task");
    }
    let mut admin = admin(&server).await;
    let hour = Fingerprint::of("sk-windows").key("budget:window:3600000");
    let times: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(&hour)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut admin)
        .await
        .expect("the record");
    assert_eq!(times.len(), granted);
    // 1.5 s of 4 per 413 ms: at least the first window and two more.
    assert!(granted >= 12, "{granted} granted");
    let span = 413_000.0;
    for (i, pair) in times.windows(5).enumerate() {
        assert!(
            pair[4].1 - pair[0].1 >= span,
            "grants {i}..{} within {} µs",
            i + 4,
            pair[4].1 - pair[0].1
        );
    }
}

#[tokio::test]
async fn events_leave_a_fifth_of_every_window_to_agent_calls() {
    let Some(server) =
        RedisServer::start("fleet::events_leave_a_fifth_of_every_window_to_agent_calls")
    else {
        return;
    };
    for (requests, for_events) in [(10u32, 8usize), (5, 4), (2, 1), (1, 1)] {
        let key = format!("sk-share-{requests}");
        let limit = RateLimit::per(requests, Duration::from_secs(60));
        let budget = budget(&server, &key, &limit, PROBE_TTL).await;
        let mut events = 0;
        while let Shared::Granted { .. } = budget.acquire(Lane::Events).await {
            events += 1;
        }
        assert_eq!(events, for_events, "{requests}/min");
        match budget.acquire(Lane::Events).await {
            Shared::Wait {
                for_,
                why: WaitReason::Window,
            } => assert!(
                for_ > Duration::from_secs(59) && for_ <= Duration::from_millis(61_205),
                "{for_:?}"
            ),
            other => panic!("{other:?}"),
        }
        let mut agents = 0;
        while let Shared::Granted { .. } = budget.acquire(Lane::Agent).await {
            agents += 1;
        }
        assert_eq!(events + agents, requests as usize, "{requests}/min");
    }
}

#[tokio::test]
async fn a_429_pauses_its_lane_everywhere_and_the_other_lane_sends_one_probe() {
    let Some(server) = RedisServer::start(
        "fleet::a_429_pauses_its_lane_everywhere_and_the_other_lane_sends_one_probe",
    ) else {
        return;
    };
    let a = budget(&server, "sk-pause", &RateLimit::off(), PROBE_TTL).await;
    let b = budget(&server, "sk-pause", &RateLimit::off(), PROBE_TTL).await;
    a.report_throttled(Lane::Events, LONG, false).await;
    let left = paused(b.acquire(Lane::Events).await);
    assert!(left > Duration::from_secs(29) && left <= LONG, "{left:?}");
    paused(a.acquire(Lane::Events).await);

    // The agent lane is not paused: one probe, fleet-wide, and the rest wait for it.
    assert_eq!(
        b.acquire(Lane::Agent).await,
        Shared::Granted { probe: true }
    );
    probing(a.acquire(Lane::Agent).await);
    probing(b.acquire(Lane::Agent).await);
    b.report_probe_ok(Lane::Agent).await;
    for budget in [&a, &b, &a] {
        assert_eq!(
            budget.acquire(Lane::Agent).await,
            Shared::Granted { probe: false }
        );
    }
    paused(a.acquire(Lane::Events).await);
}

#[tokio::test]
async fn a_probe_met_by_a_429_pauses_its_lane_which_probes_again_after() {
    let Some(server) =
        RedisServer::start("fleet::a_probe_met_by_a_429_pauses_its_lane_which_probes_again_after")
    else {
        return;
    };
    let budget = budget(&server, "sk-probe-429", &RateLimit::off(), PROBE_TTL).await;
    budget.report_throttled(Lane::Events, LONG, false).await;
    assert_eq!(
        budget.acquire(Lane::Agent).await,
        Shared::Granted { probe: true }
    );
    budget
        .report_throttled(Lane::Agent, Duration::from_millis(200), true)
        .await;
    let left = paused(budget.acquire(Lane::Agent).await);
    assert!(left <= Duration::from_millis(200), "{left:?}");
    // The limit is key-wide after all; a probe of the other lane's pause sets no pace.
    let mut admin = admin(&server).await;
    let pace: Vec<String> = redis::cmd("HGETALL")
        .arg(Fingerprint::of("sk-probe-429").key("budget:pace"))
        .query_async(&mut admin)
        .await
        .expect("HGETALL");
    assert!(pace.is_empty(), "{pace:?}");

    let (probe, waits) = until_granted(&budget, Lane::Agent).await;
    assert!(probe, "the first agent call after its own pause probes");
    assert!(!waits.is_empty());
    probing(budget.acquire(Lane::Agent).await);
    paused(budget.acquire(Lane::Events).await);
    budget.report_probe_ok(Lane::Agent).await;
    assert_eq!(
        budget.acquire(Lane::Agent).await,
        Shared::Granted { probe: false }
    );
}

#[tokio::test]
async fn a_lane_probes_when_its_own_pause_ends() {
    let Some(server) = RedisServer::start("fleet::a_lane_probes_when_its_own_pause_ends") else {
        return;
    };
    let budget = budget(&server, "sk-own-pause", &RateLimit::off(), PROBE_TTL).await;
    budget
        .report_throttled(Lane::Events, Duration::from_millis(150), false)
        .await;
    let (probe, waits) = until_granted(&budget, Lane::Events).await;
    assert!(probe);
    assert!(matches!(
        waits.first(),
        Some(Shared::Wait {
            why: WaitReason::Paused,
            ..
        })
    ));
    probing(budget.acquire(Lane::Events).await);
    budget.report_probe_ok(Lane::Events).await;
    assert_eq!(
        budget.acquire(Lane::Events).await,
        Shared::Granted { probe: false }
    );
    // The agent lane had its own probe to send, once.
    assert_eq!(
        budget.acquire(Lane::Agent).await,
        Shared::Granted { probe: true }
    );
    budget.report_probe_ok(Lane::Agent).await;
    assert_eq!(
        budget.acquire(Lane::Agent).await,
        Shared::Granted { probe: false }
    );
}

#[tokio::test]
async fn a_probe_unanswered_within_its_ttl_is_forgotten_and_sent_again() {
    let Some(server) =
        RedisServer::start("fleet::a_probe_unanswered_within_its_ttl_is_forgotten_and_sent_again")
    else {
        return;
    };
    let ttl = Duration::from_millis(300);
    let budget = budget(&server, "sk-probe-ttl", &RateLimit::off(), ttl).await;
    budget.report_throttled(Lane::Events, LONG, false).await;
    let sent = Instant::now();
    assert_eq!(
        budget.acquire(Lane::Agent).await,
        Shared::Granted { probe: true }
    );
    let (probe, waits) = until_granted(&budget, Lane::Agent).await;
    assert!(probe, "the next acquisition probes again");
    assert!(
        sent.elapsed() >= ttl - Duration::from_millis(20),
        "{:?}",
        sent.elapsed()
    );
    assert!(waits.iter().all(|w| matches!(
        w,
        Shared::Wait {
            why: WaitReason::Probing,
            ..
        }
    )));
}

#[tokio::test]
async fn a_second_key_on_the_same_redis_keeps_its_own_budget() {
    let Some(server) =
        RedisServer::start("fleet::a_second_key_on_the_same_redis_keeps_its_own_budget")
    else {
        return;
    };
    let limit = RateLimit::per(2, Duration::from_secs(60));
    let a = budget(&server, "sk-tenant-a", &limit, PROBE_TTL).await;
    let b = budget(&server, "sk-tenant-b", &limit, PROBE_TTL).await;
    for _ in 0..2 {
        assert_eq!(
            a.acquire(Lane::Agent).await,
            Shared::Granted { probe: false }
        );
    }
    assert!(matches!(
        a.acquire(Lane::Agent).await,
        Shared::Wait {
            why: WaitReason::Window,
            ..
        }
    ));
    a.report_throttled(Lane::Agent, LONG, false).await;
    paused(a.acquire(Lane::Agent).await);
    // The other key's pause is not this one's: no pause, no probe.
    assert_eq!(
        b.acquire(Lane::Events).await,
        Shared::Granted { probe: false }
    );
    assert_eq!(
        b.acquire(Lane::Agent).await,
        Shared::Granted { probe: false }
    );
    assert!(matches!(
        b.acquire(Lane::Agent).await,
        Shared::Wait {
            why: WaitReason::Window,
            ..
        }
    ));
}

/// The pace stored in Redis: `wmax` and `t`, or `None`.
async fn stored_pace(
    admin: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> Option<(f64, i64)> {
    let (wmax, t): (Option<f64>, Option<i64>) = redis::cmd("HMGET")
        .arg(Fingerprint::of(key).key("budget:pace"))
        .arg("wmax")
        .arg("t")
        .query_async(admin)
        .await
        .expect("HMGET");
    wmax.zip(t)
}

#[tokio::test]
async fn the_pace_is_set_only_by_a_429_on_the_probe_after_the_lanes_own_pause() {
    let Some(server) = RedisServer::start(
        "fleet::the_pace_is_set_only_by_a_429_on_the_probe_after_the_lanes_own_pause",
    ) else {
        return;
    };
    let key = "sk-pace";
    let budget = budget(&server, key, &RateLimit::off(), PROBE_TTL).await;
    let mut admin = admin(&server).await;
    for _ in 0..20 {
        assert_eq!(
            budget.acquire(Lane::Agent).await,
            Shared::Granted { probe: false }
        );
    }
    let tiny = Duration::from_millis(1);
    budget.report_throttled(Lane::Events, tiny, false).await;
    assert_eq!(
        stored_pace(&mut admin, key).await,
        None,
        "a first 429 sets no pace"
    );

    let (probe, _) = until_granted(&budget, Lane::Events).await;
    assert!(probe);
    budget.report_throttled(Lane::Events, tiny, true).await;
    let (wmax, t) = stored_pace(&mut admin, key).await.expect("a pace");
    // 21 grants within the current second and at most the one before it.
    assert!((10.0..=21.5).contains(&wmax), "wmax {wmax}");
    assert!(redis_now(&mut admin).await - t < 5_000_000);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(Fingerprint::of(key).key("budget:pace"))
        .query_async(&mut admin)
        .await
        .expect("PTTL");
    assert!(ttl > 59_000 && ttl <= 60_000, "{ttl}");

    // Again: the pace's wmax becomes the lower of the current pace (0.7 wmax and
    // climbing) and the measured rate.
    let (probe, _) = until_granted(&budget, Lane::Events).await;
    assert!(probe);
    budget.report_throttled(Lane::Events, tiny, true).await;
    let (again, _) = stored_pace(&mut admin, key).await.expect("a pace");
    assert!(again <= 0.8 * wmax, "{again} after {wmax}");
}

/// The documented curve: the pace `after` seconds from the 429 that set `wmax`.
fn cubic(wmax: f64, after: f64) -> f64 {
    let k = (wmax * 0.3 / 0.4).cbrt();
    (0.4 * (after - k).powi(3) + wmax).max(0.1)
}

/// Sets the pace (`wmax`, and `t` = now - `since`) right after a grant of `lane`, and
/// checks the wait the script then names: the last grant plus the curve's interval
/// (events: at 0.8 of the pace), less the time, all on Redis's clock. The script runs
/// between two readings of that clock; the answer must lie between what each gives.
async fn spaced(
    budget: &crate::api::fleet::SharedBudget,
    admin: &mut redis::aio::MultiplexedConnection,
    key: &str,
    lane: Lane,
    (wmax, since): (f64, f64),
) -> Duration {
    let (probe, _) = until_granted(budget, lane).await;
    if probe {
        budget.report_probe_ok(lane).await;
    }
    let fingerprint = Fingerprint::of(key);
    let t = redis_now(admin).await - (since * 1e6) as i64;
    let () = redis::cmd("HSET")
        .arg(fingerprint.key("budget:pace"))
        .arg("wmax")
        .arg(wmax)
        .arg("t")
        .arg(t)
        .query_async(admin)
        .await
        .expect("HSET");
    let last: i64 = redis::cmd("HGET")
        .arg(fingerprint.key("budget:sent"))
        .arg("last")
        .query_async(admin)
        .await
        .expect("the last grant");
    let share = if lane == Lane::Events { 0.8 } else { 1.0 };
    let due = |now: i64| {
        let pace = cubic(wmax, (now - t) as f64 / 1e6);
        last as f64 + 1e6 / (share * pace) - now as f64
    };
    let before = redis_now(admin).await;
    let answer = budget.acquire(lane).await;
    let after = redis_now(admin).await;
    let Shared::Wait {
        for_,
        why: WaitReason::Pace,
    } = answer
    else {
        panic!("{lane:?} at {since} s: expected the pace's wait, got {answer:?}");
    };
    let waited = for_.as_micros() as f64;
    assert!(
        due(after) - 2.0 <= waited && waited <= due(before) + 2.0,
        "{lane:?} at {since} s: {waited} µs, expected {} to {} µs",
        due(after),
        due(before)
    );
    for_
}

#[tokio::test]
async fn the_pace_follows_cubic_from_seventy_percent_back_to_wmax_and_past_it() {
    let Some(server) = RedisServer::start(
        "fleet::the_pace_follows_cubic_from_seventy_percent_back_to_wmax_and_past_it",
    ) else {
        return;
    };
    let budget = budget(&server, "sk-cubic", &RateLimit::off(), PROBE_TTL).await;
    let mut admin = admin(&server).await;
    let wmax = 10.0f64;
    // K: the seconds from the 429 back to wmax; and on to twice wmax.
    let k = (wmax * 0.3 / 0.4).cbrt();
    let to_double = k + (wmax / 0.4).cbrt();
    for (since, rate) in [(0.0, 0.7 * wmax), (k, wmax), (to_double, 2.0 * wmax)] {
        assert!((cubic(wmax, since) - rate).abs() < 1e-9);
        for (lane, share) in [(Lane::Agent, 1.0), (Lane::Events, 0.8)] {
            let waited = spaced(&budget, &mut admin, "sk-cubic", lane, (wmax, since)).await;
            let interval = Duration::from_secs_f64(1.0 / (share * rate));
            assert!(
                waited <= interval + Duration::from_millis(1),
                "{waited:?} > {interval:?}"
            );
        }
    }
}
