//! Living within the key's rate limit, against a MockServer that enforces one (sliding
//! windows, 429 with `Retry-After`): what the agent sees (no registration or check fails
//! for lack of budget), and what the server sees (429s, order, nothing twice, nothing
//! lost). Counts, not timings.

use std::collections::BTreeMap;
use std::time::Duration;

use fabraix::testing::{Endpoint, MockServer, RecordedRequest};
use fabraix::{Action, Client, Error, Event, EventType, RateLimit, TraceId};

/// These scenarios count 429s, which depends on when requests meet the server's window:
/// they run one at a time, so that no scenario's CPU use shifts another's timing on a
/// small machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a scenario may take to deliver everything: far more than it needs.
const DELIVERY: Duration = Duration::from_secs(180);

async fn limited(spec: &str) -> MockServer {
    MockServer::builder()
        .rate_limit(spec.parse().unwrap())
        .start()
        .await
        .unwrap()
}

fn client(server: &MockServer, limit: &str) -> Client {
    server
        .client_builder()
        .rate_limit(limit.parse().unwrap())
        .deadline(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn accepted(request: &RecordedRequest) -> bool {
    request.response.as_ref().is_some_and(|r| r.status == 200)
}

/// The text of every accepted event, by trace, in the order the server took them.
fn delivered(server: &MockServer) -> BTreeMap<String, Vec<String>> {
    let mut by_trace: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in server.requests_to(Endpoint::Event) {
        if !accepted(&request) {
            continue;
        }
        let content: serde_json::Value =
            serde_json::from_str(request.body["content"].as_str().unwrap()).unwrap();
        by_trace
            .entry(request.body["trace_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(content["text"].as_str().unwrap().to_owned());
    }
    by_trace
}

/// Waits until the server accepted `events` events.
async fn all_delivered(server: &MockServer, events: usize) {
    let done = server
        .wait_for(DELIVERY, |requests| {
            requests
                .iter()
                .filter(|r| r.path == "/v1/event" && accepted(r))
                .count()
                >= events
        })
        .await;
    assert!(done, "only {:?} delivered", delivered(server));
}

fn numbered(count: usize) -> Vec<String> {
    (0..count).map(|n| n.to_string()).collect()
}

/// One run: `events` events, and a check after every `every` of them.
#[fabraix::agent(id = "busy-agent", system_prompt = "You work a lot.", client = client)]
async fn busy(client: &Client, events: usize, every: usize) -> Result<(TraceId, usize), Error> {
    let trace = fabraix::current_trace().ok_or(Error::NoTrace)?;
    let mut checks = 0;
    for n in 0..events {
        fabraix::log_event(Event::text(EventType::Tool, n.to_string()))?;
        if (n + 1) % every == 0 {
            fabraix::check_action(&Action::new("lookup"))
                .await?
                .require_safe()?;
            checks += 1;
        }
    }
    Ok((trace.trace_id(), checks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_budget_many_events_and_spaced_checks_in_one_run() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let server = limited("5/s").await;
    let client = client(&server, "5/s");

    let (trace, checks) = busy(&client, 40, 8).await.expect("every check succeeds");
    assert_eq!(checks, 5);

    all_delivered(&server, 40).await;
    assert_eq!(delivered(&server)[&trace.to_string()], numbered(40));
    assert!(server.rate_limited() <= 2, "{} 429s", server.rate_limited());
    assert_eq!(server.requests_to(Endpoint::RegisterAgentRun).len(), 1);
    // The server may record the last event before the client has read its answer.
    assert!(client.flush(Duration::from_secs(30)).await, "flushed");
    let stats = client.stats();
    assert_eq!(stats.rate_limited, server.rate_limited());
    assert!(stats.waited_for_budget > Duration::ZERO, "{stats:?}");
    assert_eq!(stats.events.sent, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_budget_a_burst_of_runs_all_register_and_check() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    const RUNS: usize = 30;
    let server = limited("10/s").await;
    let client = client(&server, "10/s");

    let runs: Vec<_> = (0..RUNS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { busy(&client, 1, 1).await })
        })
        .collect();
    let mut traces = Vec::new();
    for run in runs {
        let (trace, checks) = run.await.unwrap().expect("registered and checked");
        assert_eq!(checks, 1);
        traces.push(trace);
    }

    all_delivered(&server, RUNS).await;
    let delivered = delivered(&server);
    for trace in traces {
        assert_eq!(delivered[&trace.to_string()], numbered(1));
    }
    let registered = server.requests_to(Endpoint::RegisterAgentRun);
    assert_eq!(registered.iter().filter(|r| accepted(r)).count(), RUNS);
    assert!(server.rate_limited() <= 2, "{} 429s", server.rate_limited());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_budget_two_windows_at_once() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let server = limited("4/s,10/5s").await;
    let client = client(&server, "4/s,10/5s");

    let mut traces = Vec::new();
    for _ in 0..3 {
        let (trace, checks) = busy(&client, 4, 4).await.expect("every check succeeds");
        assert_eq!(checks, 1);
        traces.push(trace);
    }

    all_delivered(&server, 12).await;
    let delivered = delivered(&server);
    for trace in traces {
        assert_eq!(delivered[&trace.to_string()], numbered(4));
    }
    assert!(server.rate_limited() <= 2, "{} 429s", server.rate_limited());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_budget_adapts_with_few_429s_and_loses_nothing() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    const RUNS: usize = 8;
    let server = limited("5/s").await;
    let client = client(&server, "off");
    assert_eq!(client.rate_limit(), &RateLimit::off());

    let runs: Vec<_> = (0..RUNS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { busy(&client, 3, 3).await })
        })
        .collect();
    let mut traces = Vec::new();
    for run in runs {
        let (trace, checks) = run.await.unwrap().expect("no check fails");
        assert_eq!(checks, 1);
        traces.push(trace);
    }

    all_delivered(&server, 3 * RUNS).await;
    let delivered = delivered(&server);
    for trace in traces {
        assert_eq!(delivered[&trace.to_string()], numbered(3));
    }
    let requests = server.requests();
    let accepted = requests.iter().filter(|r| accepted(r)).count() as u64;
    let refused = server.rate_limited();
    assert!(
        refused * 4 < accepted,
        "{refused} 429s for {accepted} accepted"
    );
    let stats = client.stats();
    assert_eq!(stats.rate_limited, refused);
    if refused > 0 {
        assert!(stats.pace.is_some(), "a 429 sets a pace: {stats:?}");
    }
}
