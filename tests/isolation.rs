//! 10,000 agent runs at once on a multi-thread runtime: every run sees only its own trace,
//! across `.await` points, task hops and threads, and every event reaches the server under
//! its own run's trace id, in order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabraix::testing::{Endpoint, MockServer};
use fabraix::{Client, Event, EventType, TraceId};
use tokio::sync::{Barrier, OwnedSemaphorePermit, Semaphore};

const RUNS: usize = 10_000;
const EVENTS_PER_RUN: usize = 3;
/// `.await` points between two reads of the current trace, per event.
const YIELDS: usize = 4;
/// Registrations in flight at once (each is a connection); every run stays alive until all
/// of them have registered.
const REGISTERING_AT_ONCE: usize = 64;
/// Bounds the whole test, so that a broken run fails it rather than hanging it.
const WHOLE_TEST: Duration = Duration::from_secs(300);

/// What one run saw.
struct Observed {
    index: usize,
    trace_id: Option<TraceId>,
    /// Reads of the current trace, and how many did not answer this run's trace.
    reads: usize,
    foreign_reads: usize,
    log_errors: usize,
}

#[fabraix::agent(id = "isolation", system_prompt = "You are one of many.", client = &client)]
async fn run(
    client: Client,
    index: usize,
    permit: OwnedSemaphorePermit,
    everyone_registered: Arc<Barrier>,
) -> Observed {
    drop(permit);
    let trace = fabraix::current_trace();
    let mut observed = Observed {
        index,
        trace_id: trace.map(|t| t.trace_id()),
        reads: 0,
        foreign_reads: 0,
        log_errors: 0,
    };
    let read = |observed: &mut Observed, seen: Option<fabraix::Trace>| {
        observed.reads += 1;
        if seen != trace || seen.is_none() {
            observed.foreign_reads += 1;
        }
    };
    // Every run is inside its scope at once from here on.
    everyone_registered.wait().await;
    read(&mut observed, fabraix::current_trace());
    for seq in 0..EVENTS_PER_RUN {
        for _ in 0..YIELDS {
            tokio::task::yield_now().await;
            read(&mut observed, fabraix::current_trace());
        }
        // Two futures of one task, interleaved.
        let (a, b) = tokio::join!(
            async {
                tokio::task::yield_now().await;
                fabraix::current_trace()
            },
            async {
                tokio::task::yield_now().await;
                tokio::task::yield_now().await;
                fabraix::current_trace()
            }
        );
        read(&mut observed, a);
        read(&mut observed, b);
        // A task of its own, which may run on another thread.
        let spawned = fabraix::spawn(async {
            tokio::task::yield_now().await;
            fabraix::current_trace()
        })
        .await
        .ok()
        .flatten();
        read(&mut observed, spawned);
        let event = Event::text(EventType::Tool, format!("{index}:{seq}"));
        if fabraix::log_event(event).is_err() {
            observed.log_errors += 1;
        }
        read(&mut observed, fabraix::current_trace());
    }
    observed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_runs_each_see_only_their_own_trace() {
    let started = Instant::now();
    let server = MockServer::start().await.unwrap();
    let client = server
        .client_builder()
        .queue_capacity(RUNS * EVENTS_PER_RUN)
        .flush_timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    let registering = Arc::new(Semaphore::new(REGISTERING_AT_ONCE));
    let everyone_registered = Arc::new(Barrier::new(RUNS));
    let all_runs = async {
        let mut handles = Vec::with_capacity(RUNS);
        for index in 0..RUNS {
            let permit = registering.clone().acquire_owned().await.unwrap();
            handles.push(tokio::spawn(run(
                client.clone(),
                index,
                permit,
                everyone_registered.clone(),
            )));
        }
        let mut observed = Vec::with_capacity(RUNS);
        for handle in handles {
            observed.push(handle.await.unwrap());
        }
        observed
    };
    let observed = tokio::time::timeout(WHOLE_TEST, all_runs)
        .await
        .expect("the runs did not finish in time");
    assert!(client.flush(Duration::from_secs(120)).await);
    let elapsed = started.elapsed();
    eprintln!(
        "{RUNS} runs, {} events, in {elapsed:?}",
        RUNS * EVENTS_PER_RUN
    );

    // Outside every run again.
    assert_eq!(fabraix::current_trace(), None);

    // In every run, every read answered that run's own trace.
    let mut trace_of_run = HashMap::new();
    for seen in &observed {
        let index = seen.index;
        let trace_id = seen
            .trace_id
            .unwrap_or_else(|| panic!("run {index} had no trace"));
        assert_eq!(seen.foreign_reads, 0, "run {index}: {} reads", seen.reads);
        assert_eq!(seen.reads, 1 + EVENTS_PER_RUN * (YIELDS + 4));
        assert_eq!(seen.log_errors, 0, "run {index}");
        trace_of_run.insert(index, trace_id);
    }
    assert_eq!(trace_of_run.len(), RUNS);

    // Each run has a trace of its own, one the server issued.
    let distinct: HashSet<TraceId> = trace_of_run.values().copied().collect();
    assert_eq!(distinct.len(), RUNS, "two runs shared a trace");
    let issued: HashSet<TraceId> = server.issued_traces().into_iter().collect();
    assert_eq!(issued, distinct);

    // On the server, each event carries the trace of the run that logged it, and each
    // run's events arrived in the order it logged them.
    let stats = client.stats().events;
    assert_eq!(stats.sent, (RUNS * EVENTS_PER_RUN) as u64, "{stats:?}");
    assert_eq!((stats.failed, stats.dropped), (0, 0), "{stats:?}");
    let events = server.requests_to(Endpoint::Event);
    assert_eq!(events.len(), RUNS * EVENTS_PER_RUN);
    let mut seqs_of_run: HashMap<usize, Vec<usize>> = HashMap::new();
    for request in &events {
        let content: serde_json::Value =
            serde_json::from_str(request.body["content"].as_str().unwrap()).unwrap();
        let text = content["text"].as_str().unwrap();
        let (index, seq) = text.split_once(':').unwrap();
        let (index, seq): (usize, usize) = (index.parse().unwrap(), seq.parse().unwrap());
        let trace_id: TraceId = request.body["trace_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            trace_id, trace_of_run[&index],
            "event {text} of run {index} went out under another run's trace"
        );
        seqs_of_run.entry(index).or_default().push(seq);
    }
    assert_eq!(seqs_of_run.len(), RUNS);
    let in_order: Vec<usize> = (0..EVENTS_PER_RUN).collect();
    for (index, seqs) in &seqs_of_run {
        assert_eq!(seqs, &in_order, "run {index}");
    }
}
