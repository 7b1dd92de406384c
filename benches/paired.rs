//! Paired measurements: the SDK and its hand-written equivalent called alternately in one
//! loop, so both see the same machine at the same moments, and the ratio of their medians
//! is stable on a shared machine where back-to-back runs drift. Figures: BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench paired --all-features
//! ```

mod common;

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use fabraix::AgentId;
use fabraix::testing::MockServer;

const WARMUP: usize = 300;
const SAMPLES: usize = 3_000;

fn main() {
    for flavor in ["current_thread", "multi_thread"] {
        let rt = match flavor {
            "current_thread" => tokio::runtime::Builder::new_current_thread(),
            _ => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(2);
                builder
            }
        }
        .enable_all()
        .build()
        .expect("a runtime");
        rt.block_on(pairs(flavor));
    }
    log_event_per_call();
}

/// `log_event` timed call by call (the timer's own cost included), for its median and tail.
/// The queue is flushed every 1,000 calls, untimed.
fn log_event_per_call() {
    const CALLS: usize = 100_000;
    let server = MockServer::start_blocking().expect("a server");
    let client = server
        .client_builder()
        .queue_capacity(2_000)
        .build()
        .expect("a client");
    let trace = client
        .register_agent_run_blocking("bench", "p")
        .expect("registered");
    let mut times = Vec::with_capacity(CALLS);
    fabraix::sync_scope(trace, || {
        for batch in 0..CALLS / 1_000 {
            let events: Vec<fabraix::Event> = (0..1_000)
                .map(|_| fabraix::Event::text(fabraix::EventType::ModelOutput, "ok"))
                .collect();
            for event in events {
                let start = Instant::now();
                let queued = fabraix::log_event(event);
                times.push(start.elapsed());
                queued.expect("queued");
            }
            assert!(
                client.flush_blocking(Duration::from_secs(60)),
                "batch {batch}"
            );
            server.clear_requests();
        }
    });
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_nanos();
    println!(
        "log_event       {CALLS} calls, each timed: median {} ns, p90 {} ns, p99 {} ns, max {} ns",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

async fn pairs(flavor: &str) {
    let server = MockServer::start().await.expect("a server");
    let client = server.client();
    let url = format!("{}/register-agent-run", server.url());
    let key = server.api_key().to_owned();
    let agent = AgentId::from_name("bench").expect("a name");
    let http = reqwest::Client::builder().no_proxy().build().expect("http");

    report(
        flavor,
        "#[fabraix::agent] entry+exit",
        "hand-written register + scope",
        paired(|| common::annotated(&client), || common::by_hand(&client)).await,
    );
    server.clear_requests();
    report(
        flavor,
        "Client::register_agent_run",
        "hand-written reqwest POST (reused client)",
        paired(
            || async {
                client
                    .register_agent_run(agent, "You are a benchmark.")
                    .await
                    .expect("registered")
            },
            || common::hand_written_register(&http, &url, &key, agent),
        )
        .await,
    );
    server.clear_requests();
}

/// Calls `a` and `b` alternately and answers the median time of each.
async fn paired<A, FA, B, FB>(mut a: A, mut b: B) -> (Duration, Duration)
where
    A: FnMut() -> FA,
    FA: Future,
    B: FnMut() -> FB,
    FB: Future,
{
    for _ in 0..WARMUP {
        black_box(a().await);
        black_box(b().await);
    }
    let mut times_a = Vec::with_capacity(SAMPLES);
    let mut times_b = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        // Alternate which goes first, so neither always follows the other.
        if i % 2 == 0 {
            times_a.push(time(&mut a).await);
            times_b.push(time(&mut b).await);
        } else {
            times_b.push(time(&mut b).await);
            times_a.push(time(&mut a).await);
        }
    }
    (median(times_a), median(times_b))
}

async fn time<F: Future>(f: &mut impl FnMut() -> F) -> Duration {
    let start = Instant::now();
    black_box(f().await);
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn report(flavor: &str, a: &str, b: &str, (ta, tb): (Duration, Duration)) {
    println!(
        "{flavor:<15} {a:<30} {:>8.1} µs | {b:<42} {:>8.1} µs | ratio {:.3}",
        ta.as_secs_f64() * 1e6,
        tb.as_secs_f64() * 1e6,
        ta.as_secs_f64() / tb.as_secs_f64()
    );
}
