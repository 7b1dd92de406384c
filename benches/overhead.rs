//! What the SDK costs next to what a careful user would write by hand, side by side in
//! one run. Figures and how to read them: BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench overhead --all-features
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use fabraix::testing::MockServer;
use fabraix::{AgentId, Event, EventType, Trace};

tokio::task_local! {
    static RAW: Option<Trace>;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn some_trace() -> Trace {
    Trace::new(
        fabraix::TraceId::from_uuid(uuid::Uuid::new_v4()),
        AgentId::from_name("bench").expect("a name"),
        chrono::Utc::now(),
    )
}

/// `current_trace()` inside a run vs a raw `tokio::task_local!` read of a value of the same
/// size, both from inside a future polled by the runtime.
fn current_trace(c: &mut Criterion) {
    let rt = runtime();
    let trace = some_trace();
    assert_eq!(
        std::mem::size_of::<Option<Trace>>(),
        std::mem::size_of_val(&fabraix::current_trace())
    );
    let mut group = c.benchmark_group("current_trace");
    group.bench_function("fabraix::current_trace", |b| {
        b.iter_custom(|iters| {
            rt.block_on(fabraix::scope(trace, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(fabraix::current_trace());
                }
                start.elapsed()
            }))
        })
    });
    group.bench_function("raw task_local", |b| {
        b.iter_custom(|iters| {
            rt.block_on(RAW.scope(Some(trace), async move {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(RAW.try_with(|t| *t).ok().flatten());
                }
                start.elapsed()
            }))
        })
    });
    group.finish();
}

/// One registration: through `Client`, by hand with a reused reqwest client, and by hand
/// with a new reqwest client per call.
fn register(c: &mut Criterion) {
    let rt = runtime();
    let server = MockServer::start_blocking().expect("a server");
    let client = server.client();
    let url = format!("{}/register-agent-run", server.url());
    let key = server.api_key().to_owned();
    let agent = AgentId::from_name("bench").expect("a name");
    let http = reqwest::Client::builder().no_proxy().build().expect("http");

    let mut group = c.benchmark_group("register");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("fabraix Client::register_agent_run", |b| {
        b.to_async(&rt).iter(|| async {
            client
                .register_agent_run(agent, "You are a benchmark.")
                .await
                .expect("registered")
        })
    });
    group.bench_function("hand-written reqwest, reused client", |b| {
        b.to_async(&rt)
            .iter(|| common::hand_written_register(&http, &url, &key, agent))
    });
    group.bench_function("hand-written reqwest, new client per call", |b| {
        b.to_async(&rt).iter(|| async {
            let fresh = reqwest::Client::builder().no_proxy().build().expect("http");
            common::hand_written_register(&fresh, &url, &key, agent).await
        })
    });
    group.finish();
    server.clear_requests();
}

/// `#[fabraix::agent]` entry and exit vs the hand-written equivalent: register, then run
/// the body in `scope`.
fn agent(c: &mut Criterion) {
    let rt = runtime();
    let server = MockServer::start_blocking().expect("a server");
    let client = server.client();

    let mut group = c.benchmark_group("agent");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("#[fabraix::agent] fn", |b| {
        b.to_async(&rt).iter(|| common::annotated(&client))
    });
    group.bench_function("hand-written register + scope", |b| {
        b.to_async(&rt).iter(|| common::by_hand(&client))
    });
    group.finish();
    server.clear_requests();
}

/// `log_event` on the caller's path (the event is built beforehand, untimed). Events are
/// logged in batches; between batches (not timed) the queue is flushed, so the exporter's
/// sending does not share the timed cores.
fn log_event(c: &mut Criterion) {
    const BATCH: u64 = 512;
    let server = MockServer::start_blocking().expect("a server");
    let client = server
        .client_builder()
        .queue_capacity(BATCH as usize * 2)
        .build()
        .expect("a client");
    let trace = client
        .register_agent_run_blocking(AgentId::from_name("bench").expect("a name"), "p")
        .expect("registered");
    let mut group = c.benchmark_group("log_event");
    group.bench_function("fabraix::log_event (caller's path)", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(BATCH);
                let events: Vec<Event> = (0..n)
                    .map(|_| Event::text(EventType::ModelOutput, "ok"))
                    .collect();
                timed += fabraix::sync_scope(trace, || {
                    let start = Instant::now();
                    for event in events {
                        fabraix::log_event(event).expect("queued");
                    }
                    start.elapsed()
                });
                assert!(client.flush_blocking(Duration::from_secs(60)), "flushed");
                left -= n;
            }
            server.clear_requests();
            timed
        })
    });
    group.bench_function("Event::text (building the event)", |b| {
        b.iter(|| black_box(Event::text(EventType::ModelOutput, "ok")))
    });
    group.finish();
}

criterion_group!(benches, current_trace, register, agent, log_event);
criterion_main!(benches);
