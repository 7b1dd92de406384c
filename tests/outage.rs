//! An outage of the API: while it refuses connections, logging never waits on the
//! network; once it is back, everything the queue held arrives, in order and once; what the
//! queue could not hold is refused at once, counted and reported.

mod capture;

use capture::Captured;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabraix::testing::{Endpoint, MockServer, RecordedRequest};
use fabraix::{Client, Error, Event, EventType, Trace};

/// A generous bound on logging a whole burst of events, which takes about a millisecond:
/// far less than one attempt to reach a server.
const LOGGING_BOUND: Duration = Duration::from_secs(1);

/// How long a flush may take once the server is back.
const FLUSH: Duration = Duration::from_secs(60);

/// The `seq` of each event the API logic took (injected faults aside), and its trace.
fn delivered(server: &MockServer) -> Vec<(String, u64)> {
    server
        .requests_to(Endpoint::Event)
        .iter()
        .filter(|r| !r.faulted)
        .map(|r: &RecordedRequest| {
            let content: serde_json::Value =
                serde_json::from_str(r.body["content"].as_str().unwrap()).unwrap();
            let seq = content["text"].as_str().unwrap().parse().unwrap();
            (r.body["trace_id"].as_str().unwrap().to_owned(), seq)
        })
        .collect()
}

fn event(seq: u64) -> Event {
    Event::text(EventType::Tool, seq.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_the_queue_holds() {
    const EVENTS: u64 = 1_000;
    let server = MockServer::start().await.unwrap();
    let client = server
        .client_builder()
        .queue_capacity(4 * EVENTS as usize)
        .backoff(Duration::from_millis(5), Duration::from_millis(100))
        .flush_timeout(FLUSH)
        .build()
        .unwrap();

    // The run registers while the API is up; the outage starts inside it. When the body
    // returns the API is back, and the run's flush on exit delivers what was queued.
    #[fabraix::agent(id = "outage", system_prompt = "You keep working.", client = client)]
    async fn run(client: &Client, server: &MockServer) -> (Trace, Duration, Duration) {
        server.pause().unwrap();
        let started = Instant::now();
        let mut slowest = Duration::ZERO;
        for seq in 0..EVENTS {
            let one = Instant::now();
            fabraix::log_event(event(seq)).unwrap();
            slowest = slowest.max(one.elapsed());
        }
        let logging = started.elapsed();

        // Nothing gets through while nothing listens: the events wait in the queue.
        assert!(!client.flush(Duration::from_millis(300)).await);
        let stats = client.stats().events;
        assert_eq!((stats.sent, stats.failed), (0, 0), "{stats:?}");
        assert_eq!(stats.in_queue, EVENTS as usize, "{stats:?}");
        assert!(server.requests_to(Endpoint::Event).is_empty());

        server.resume().unwrap();
        (fabraix::current_trace().unwrap(), logging, slowest)
    }

    let (trace, logging, slowest) = run(&client, &server).await;
    eprintln!("logged {EVENTS} events during the outage in {logging:?} (slowest call {slowest:?})");
    assert!(logging < LOGGING_BOUND, "logging took {logging:?}");

    let stats = client.stats().events;
    assert_eq!(stats.queued, EVENTS, "{stats:?}");
    assert_eq!(stats.sent, EVENTS, "{stats:?}");
    assert_eq!((stats.failed, stats.dropped, stats.in_queue), (0, 0, 0));

    // All of them, in the order logged, none twice, all of this run.
    let delivered = delivered(&server);
    let seqs: Vec<u64> = delivered.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(seqs, (0..EVENTS).collect::<Vec<_>>());
    let trace_id = trace.trace_id().to_string();
    assert!(delivered.iter().all(|(trace, _)| *trace == trace_id));
    assert_eq!(server.requests_to(Endpoint::Event).len(), EVENTS as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_capacity_events_are_dropped_counted_and_reported_without_blocking() {
    const CAPACITY: usize = 100;
    const EVENTS: u64 = 250;
    let server = MockServer::start().await.unwrap();
    let client = server
        .client_builder()
        .queue_capacity(CAPACITY)
        .backoff(Duration::from_millis(5), Duration::from_millis(100))
        .flush_timeout(FLUSH)
        .build()
        .unwrap();
    let captured = Captured::default();

    #[fabraix::agent(id = "outage-overflow", system_prompt = "You keep working.", client = client)]
    async fn run(
        client: &Client,
        server: &MockServer,
        captured: &Captured,
    ) -> (Vec<Result<(), Error>>, Duration) {
        server.pause().unwrap();
        // The drops are reported on the thread that logs: capture it while logging.
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let (results, logging) = tracing::subscriber::with_default(subscriber, || {
            let started = Instant::now();
            let results: Vec<_> = (0..EVENTS)
                .map(|seq| fabraix::log_event(event(seq)))
                .collect();
            (results, started.elapsed())
        });

        let stats = client.stats().events;
        assert_eq!(stats.queued, CAPACITY as u64, "{stats:?}");
        assert_eq!(stats.dropped, EVENTS - CAPACITY as u64, "{stats:?}");
        assert_eq!(stats.in_queue, CAPACITY, "{stats:?}");
        assert_eq!(stats.sent, 0, "{stats:?}");

        server.resume().unwrap();
        (results, logging)
    }

    let (results, logging) = run(&client, &server, &captured).await;
    eprintln!("logged {EVENTS} events into a queue of {CAPACITY} in {logging:?}");
    assert!(logging < LOGGING_BOUND, "logging took {logging:?}");

    // The first CAPACITY were taken; every one after was refused at once.
    for (seq, result) in results.iter().enumerate() {
        if seq < CAPACITY {
            assert!(result.is_ok(), "event {seq}: {result:?}");
        } else {
            assert!(
                matches!(result, Err(Error::QueueFull)),
                "event {seq}: {result:?}"
            );
        }
    }

    // Reported through `tracing`, with the count.
    let report = captured.text();
    assert!(report.contains("queue is full"), "{report}");
    assert!(report.contains("dropped=128"), "{report}");

    // What the queue held arrived once the API was back; the drops stay counted.
    let stats = client.stats().events;
    assert_eq!(stats.sent, CAPACITY as u64, "{stats:?}");
    assert_eq!(stats.dropped, EVENTS - CAPACITY as u64, "{stats:?}");
    assert_eq!((stats.failed, stats.in_queue), (0, 0), "{stats:?}");
    let seqs: Vec<u64> = delivered(&server).iter().map(|(_, seq)| *seq).collect();
    assert_eq!(seqs, (0..CAPACITY as u64).collect::<Vec<_>>());

    // With room again, events are taken again.
    let trace = client
        .register_agent_run(fabraix::AgentId::from_name("after").unwrap(), "p")
        .await
        .unwrap();
    client.queue_event(trace.trace_id(), event(0)).unwrap();
    assert!(client.flush(FLUSH).await);
    assert_eq!(client.stats().events.sent, CAPACITY as u64 + 1);
}

// Regression: once every client was dropped, its exporter kept retrying an unreachable
// API forever.
#[test]
fn an_exporter_without_clients_stops_retrying() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A listener that takes each connection and closes it at once: a transport error, so
    // the exporter backs off and retries.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let client = Client::builder()
        .api_key("k")
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .max_retries(2)
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .unwrap();
    let trace = Trace::new(
        fabraix::TraceId::from_uuid(uuid::Uuid::new_v4()),
        fabraix::AgentId::from_name("orphan").unwrap(),
        chrono::Utc::now(),
    );
    client.queue_event(trace.trace_id(), event(0)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepted.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    let before = accepted.load(Ordering::SeqCst);
    assert!(before >= 3, "the exporter retried while its client lived");
    drop(client);
    // With 20 ms backoffs, an exporter that kept going would connect ~100 times in 2 s.
    let watch_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watch_until {
        let now = accepted.load(Ordering::SeqCst);
        // Up to one attempt in flight when the client went, then `max_retries` more.
        assert!(
            now <= before + 1 + 2,
            "{now} connections after the drop (had {before})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
