//! A 429 on the events lane, against a loopback MockServer with no rate limit: what the
//! agents and the delivery of their events pay for it, next to the same runs with no 429,
//! alternately in one process. Figures: BENCHMARKS.md ("Lanes").
//!
//! - `pause`: one 429 on `/event` with `Retry-After: 30`, then 100 concurrent agent runs
//!   (an agent fn: registered, six events, one check, its events flushed on return): the
//!   median time of a run.
//! - `one-off`: one 429 on `/event` with `Retry-After: 1` and no limit behind it, then 200
//!   concurrent runs of six events each: the time until every event is delivered.
//!
//! ```text
//! cargo bench --bench lanes --all-features [-- pause|one-off]
//! ```

use std::time::{Duration, Instant};

use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{Action, Client, Event, EventType};

/// Each side of each scenario is measured this many times, alternately.
const ROUNDS: usize = 3;

fn main() {
    // `cargo bench` passes `--bench`; any other argument picks one scenario.
    let part: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        // The one-off first: the pause scenario leaves its events held for 30 s, and they
        // must not be sent while another scenario is measured.
        if part.as_deref().is_none_or(|p| p == "one-off") {
            one_off().await;
        }
        if part.as_deref().is_none_or(|p| p == "pause") {
            pause().await;
        }
    });
}

/// One turn of an agent: registered, six events, one check; flushed on return.
#[fabraix::agent(id = "lanes-bench", system_prompt = "You answer.", client = client)]
async fn turn(client: &Client, n: usize) -> bool {
    for step in 0..6 {
        let _ = fabraix::log_event(Event::text(EventType::Tool, format!("{n}/{step}")));
    }
    fabraix::check_action(&Action::new("lookup"))
        .await
        .is_ok_and(|v| v.is_safe)
}

/// `count` concurrent turns: how long each took.
async fn runs(client: &Client, count: usize) -> Vec<Duration> {
    let handles: Vec<_> = (0..count)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let safe = turn(&client, n).await;
                assert!(safe, "a check failed");
                started.elapsed()
            })
        })
        .collect();
    let mut took = Vec::with_capacity(count);
    for handle in handles {
        took.push(handle.await.expect("a run"));
    }
    took
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A server with no limit, and a client that has sent `warm` runs and flushed them.
async fn ready(warm: usize) -> (MockServer, Client) {
    let server = MockServer::start().await.expect("a server");
    let client = server.client();
    runs(&client, warm).await;
    assert!(client.flush(Duration::from_secs(30)).await, "warm-up sent");
    (server, client)
}

/// The median agent run, with a 30 s pause on the events lane next to none.
async fn pause() {
    let mut clean = Vec::new();
    let mut paused = Vec::new();
    for _ in 0..ROUNDS {
        for with_429 in [false, true] {
            let (server, client) = ready(1).await;
            if with_429 {
                server.fail_next(1, Fault::status(429).retry_after("30").on(Endpoint::Event));
            }
            let took = median(runs(&client, 100).await);
            if with_429 {
                assert_eq!(client.stats().rate_limited, 1, "the one 429 met");
                paused.push(took);
            } else {
                clean.push(took);
            }
        }
    }
    let (clean, paused) = (median(clean), median(paused));
    println!(
        "pause: median agent run after a 429 with Retry-After: 30 on /event {:.2} ms, \
         with none {:.2} ms: {:.2}x (100 concurrent runs, median of {ROUNDS} rounds each)",
        ms(paused),
        ms(clean),
        paused.as_secs_f64() / clean.as_secs_f64()
    );
}

/// The time to deliver 200 runs' events, after a one-off 1 s pause next to none.
async fn one_off() {
    let mut clean = Vec::new();
    let mut paused = Vec::new();
    for _ in 0..ROUNDS {
        for with_429 in [false, true] {
            let (server, client) = ready(20).await;
            if with_429 {
                server.fail_next(1, Fault::status(429).retry_after("1").on(Endpoint::Event));
            }
            let started = Instant::now();
            runs(&client, 200).await;
            assert!(client.flush(Duration::from_secs(120)).await, "delivered");
            let took = started.elapsed();
            assert_eq!(client.stats().events.sent, 6 * 220, "every event sent");
            if with_429 {
                assert_eq!(client.stats().rate_limited, 1, "the one 429 met");
                paused.push(took);
            } else {
                clean.push(took);
            }
        }
    }
    let (clean, paused) = (median(clean), median(paused));
    println!(
        "one-off: 200 runs x 6 events delivered in {:.0} ms after a 429 with Retry-After: 1 \
         on /event, {:.0} ms with none: {:.2}x, {:.0} ms more (median of {ROUNDS} rounds each)",
        ms(paused),
        ms(clean),
        paused.as_secs_f64() / clean.as_secs_f64(),
        ms(paused.saturating_sub(clean))
    );
}
