//! No agent fn is held back by a throttled queue: under a rate limit an agent fn waits for
//! its run's events only while they can be sent within its flush timeout, and otherwise
//! returns at once and leaves them to the background. A throttled key is reported once per
//! episode, never once per 429.

mod capture;

use std::sync::OnceLock;
use std::time::Duration;

use capture::Captured;
use fabraix::testing::{Endpoint, MockServer, RecordedRequest};
use fabraix::{Action, Client, Error, Event, EventType, TraceId};

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}

fn accepted(request: &RecordedRequest) -> bool {
    request.response.as_ref().is_some_and(|r| r.status == 200)
}

async fn limited(spec: &str) -> MockServer {
    MockServer::builder()
        .rate_limit(spec.parse().unwrap())
        .start()
        .await
        .unwrap()
}

#[fabraix::agent(id = "chatty-agent", system_prompt = "You log a lot.", client = client)]
async fn chatty(client: &Client, events: usize, check: bool) -> Result<TraceId, Error> {
    let trace = fabraix::current_trace().ok_or(Error::NoTrace)?;
    for n in 0..events {
        fabraix::log_event(Event::text(EventType::Tool, n.to_string()))?;
    }
    if check {
        fabraix::check_action(&Action::new("lookup"))
            .await?
            .require_safe()?;
    }
    Ok(trace.trace_id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_fns_never_wait_out_their_flush_timeout_behind_a_throttled_queue() {
    let captured = captured();
    let server = limited("5/s").await;
    let client = server
        .client_builder()
        .rate_limit("5/s".parse().unwrap())
        .flush_timeout(Duration::from_secs(2))
        .deadline(Duration::from_secs(60))
        .build()
        .unwrap();

    // Ten runs one after the other, each logging more than a second's worth of events:
    // the queue soon holds more than a flush timeout can send.
    let mut traces = Vec::new();
    for _ in 0..10 {
        traces.push(chatty(&client, 10, false).await.unwrap());
    }
    let when_all_returned = client.stats().events;

    let delivered = server
        .wait_for(Duration::from_secs(180), |requests| {
            requests
                .iter()
                .filter(|r| r.path == "/v1/event" && accepted(r))
                .count()
                >= 100
        })
        .await;
    assert!(delivered, "{:?}", client.stats().events);
    // The runs returned with events still queued: they did not wait for them ...
    assert!(when_all_returned.in_queue > 0, "{when_all_returned:?}");
    // ... and none waited out its flush timeout.
    let text = captured.text();
    for trace in &traces {
        assert!(
            !text
                .lines()
                .any(|l| l.contains("flush timed out") && l.contains(&trace.to_string())),
            "{text}"
        );
    }
    // Every event arrived once, in order.
    for trace in &traces {
        let texts: Vec<String> = server
            .requests_to(Endpoint::Event)
            .iter()
            .filter(|r| accepted(r) && r.body["trace_id"] == trace.to_string())
            .map(|r| {
                let content: serde_json::Value =
                    serde_json::from_str(r.body["content"].as_str().unwrap()).unwrap();
                content["text"].as_str().unwrap().to_owned()
            })
            .collect();
        let expected: Vec<String> = (0..10).map(|n| n.to_string()).collect();
        assert_eq!(texts, expected);
    }
    assert!(server.rate_limited() <= 2, "{} 429s", server.rate_limited());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_episode_is_reported_once_with_its_numbers() {
    let captured = captured();
    // The client does not know the limit: it meets it as 429s.
    let server = limited("4/s").await;
    let client = server
        .client_builder()
        .rate_limit("off".parse().unwrap())
        .deadline(Duration::from_secs(60))
        .build()
        .unwrap();

    let runs: Vec<_> = (0..6)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { chatty(&client, 4, true).await })
        })
        .collect();
    for run in runs {
        run.await.unwrap().expect("no check fails");
    }
    assert!(client.flush(Duration::from_secs(120)).await);

    let refused = server.rate_limited();
    assert!(
        refused >= 2,
        "the scenario meets the limit more than once: {refused}"
    );
    let text = captured.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("rate limit reached") && l.contains("limit=off"))
        .collect();
    assert_eq!(warnings.len(), 1, "{refused} 429s: {text}");
    // With its numbers: which lane met it, and how many 429s so far.
    assert!(warnings[0].contains("lane="), "{}", warnings[0]);
    assert!(
        warnings[0].contains("rate_limited_so_far="),
        "{}",
        warnings[0]
    );
}
