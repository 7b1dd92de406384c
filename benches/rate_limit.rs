//! Living within a rate limit, against a loopback MockServer that enforces one: check
//! latency with a full event queue next to an empty one, the share of the server's budget
//! used when demand exceeds it, and 429s per accepted request with the limit known and
//! unknown. Figures: BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench rate_limit --all-features [-- check|budget]
//! ```

use std::time::{Duration, Instant};

use fabraix::testing::{MockServer, RecordedRequest};
use fabraix::{Action, AgentId, Client, Event, EventType, RateLimit, Trace};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // `cargo bench` passes `--bench`; any other argument picks one part.
    let part: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let wanted = |name: &str| part.as_deref().is_none_or(|p| p == name);
    rt.block_on(async {
        if wanted("check") {
            // An agent's checks in a burst (a tool loop), then checks far enough apart
            // that queued events no longer keep to a few sends beside them.
            let burst = Duration::from_millis(150);
            for traces in [1, 20] {
                check_latency("no limit", "off", None, traces, burst).await;
                check_latency("20/s, known", "20/s", None, traces, burst).await;
                // Fewer event sends in flight: 6, beside the 2 kept for agent calls.
                check_latency("no limit, max_in_flight 8", "off", Some(8), traces, burst).await;
            }
            let apart = Duration::from_millis(1_500);
            check_latency("no limit", "off", None, 20, apart).await;
            check_latency("no limit, max_in_flight 8", "off", Some(8), 20, apart).await;
        }
        if wanted("budget") {
            budget_use("known", "20/s").await;
            budget_use("unknown", "off").await;
        }
    });
}

async fn server(limit: &str) -> MockServer {
    MockServer::builder()
        .rate_limit(limit.parse().expect("a limit"))
        .start()
        .await
        .expect("a server")
}

fn client(server: &MockServer, limit: &str) -> Client {
    client_with(server, limit, None)
}

fn client_with(server: &MockServer, limit: &str, max_in_flight: Option<usize>) -> Client {
    let mut builder = server
        .client_builder()
        .rate_limit(limit.parse::<RateLimit>().expect("a limit"))
        .queue_capacity(100_000)
        .deadline(Duration::from_secs(120));
    if let Some(requests) = max_in_flight {
        builder = builder.max_in_flight(requests);
    }
    builder.build().expect("a client")
}

async fn run(client: &Client) -> Trace {
    client
        .register_agent_run(AgentId::from_name("bench").expect("a name"), "p")
        .await
        .expect("registered")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Median latency of a check with no event waiting, and with 1,000 events queued ahead
/// of it (`max_in_flight` the default unless given), the events on `traces` runs: on one,
/// one send at a time; on many, as many sends as the queue starts. The two kinds of sample
/// alternate, so that both meet the same load from whatever else runs on the machine.
/// With no limit the queue drains between them. Under a limit it cannot (1,000 events
/// take 50 s at 20/s): the empty samples are then a twin client's, on a twin server, that
/// queues nothing.
async fn check_latency(
    label: &str,
    limit: &str,
    max_in_flight: Option<usize>,
    traces: usize,
    spacing: Duration,
) {
    // Enough samples that the medians stay within a few percent from run to run; fewer
    // where each takes seconds.
    let checks = if spacing < Duration::from_secs(1) {
        101
    } else {
        41
    };
    let queued = server(limit).await;
    let client = client_with(&queued, limit, max_in_flight);
    let twin_server = server(limit).await;
    let twin = client_with(&twin_server, limit, max_in_flight);
    let twin_trace = run(&twin).await;
    let mut runs = Vec::new();
    for _ in 0..traces {
        runs.push(run(&client).await);
    }
    let trace = runs[0];
    let action = Action::new("lookup");
    let drains = limit == "off";
    let mut empty = Vec::new();
    let mut full = Vec::new();
    let mut next = 0;
    for _ in 0..checks {
        // Spaced as an agent's checks are, and so that both sides use the same budget.
        tokio::time::sleep(spacing).await;
        if drains {
            // What the previous sample queued is sent first (bounded: a stuck queue fails).
            let drained_by = Instant::now() + Duration::from_secs(60);
            while client.stats().events.in_queue > 0 {
                assert!(Instant::now() < drained_by, "the queue did not drain");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(spacing).await;
            empty.push(timed_check(&client, &trace, &action).await);
        } else {
            empty.push(timed_check(&twin, &twin_trace, &action).await);
        }
        tokio::time::sleep(spacing).await;
        // 1,000 events ahead of the check.
        while client.stats().events.in_queue < 1_000 {
            let on = &runs[next % runs.len()];
            next += 1;
            client
                .queue_event(on.trace_id(), Event::text(EventType::Tool, "x"))
                .expect("queued");
        }
        full.push(timed_check(&client, &trace, &action).await);
    }
    let (empty, full) = (median(empty), median(full));
    println!(
        "check latency, {label}, events on {traces} run(s), checks {} ms apart: {:.2} ms with 1,000 events queued, {:.2} ms with none: {:.2}x",
        spacing.as_millis(),
        full.as_secs_f64() * 1e3,
        empty.as_secs_f64() * 1e3,
        full.as_secs_f64() / empty.as_secs_f64()
    );
}

/// How long one check of `trace` takes.
async fn timed_check(client: &Client, trace: &Trace, action: &Action) -> Duration {
    let started = Instant::now();
    client
        .check_action(trace.trace_id(), action)
        .await
        .expect("a verdict");
    started.elapsed()
}

fn accepted(request: &RecordedRequest) -> bool {
    request.response.as_ref().is_some_and(|r| r.status == 200)
}

/// Demand three times the server's 20/s for 15 s: 20 runs each register, then log an event
/// and check an action every third of a second. Answers the share of the server's budget
/// used and the 429s per accepted request.
async fn budget_use(label: &str, client_limit: &str) {
    const SECONDS: u64 = 15;
    let server = server("20/s").await;
    let client = client(&server, client_limit);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(SECONDS);
    let runs: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let trace = run(&client).await;
                let mut failed_checks = 0;
                while Instant::now() < deadline {
                    let _ = client.queue_event(trace.trace_id(), Event::text(EventType::Tool, "x"));
                    if client
                        .check_action(trace.trace_id(), &Action::new("lookup"))
                        .await
                        .is_err()
                    {
                        failed_checks += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(333)).await;
                }
                failed_checks
            })
        })
        .collect();
    let mut failed_checks = 0;
    for run in runs {
        failed_checks += run.await.expect("a run");
    }
    let elapsed = started.elapsed();
    let requests = server.requests();
    let within: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| r.received_at.duration_since(started) <= elapsed)
        .collect();
    let accepted_count = within.iter().filter(|r| accepted(r)).count();
    let refused = server.rate_limited();
    // The most a 20-per-second sliding window admits in this span: 20 in each started second.
    let allowed = 20.0 * elapsed.as_secs_f64().ceil();
    println!(
        "budget, limit {label} to the client: {accepted_count} accepted in {:.1} s = {:.0}% of what the server's 20/s admits in that span; \
         {refused} 429s = {:.3} per accepted; {failed_checks} checks failed; {} events still queued",
        elapsed.as_secs_f64(),
        100.0 * accepted_count as f64 / allowed,
        refused as f64 / accepted_count as f64,
        client.stats().events.in_queue,
    );
}
