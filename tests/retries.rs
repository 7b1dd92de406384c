//! The retry policy, counted at the server: what is retried, how often, how long the
//! client waits, and what bounds a call.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{AgentId, Client, Error};

const PROMPT: &str = "You are a test agent.";

/// Far more than any test needs: the fault answers every request.
const ALWAYS: usize = 10_000;

/// A generous upper bound for calls that must end quickly, on a busy shared machine.
const BOUNDED: Duration = Duration::from_secs(10);

fn agent() -> AgentId {
    AgentId::from_name("retries-agent").unwrap()
}

async fn register(client: &Client) -> Result<fabraix::Trace, Error> {
    client.register_agent_run(agent(), PROMPT).await
}

/// A port on 127.0.0.1 where nothing listens.
fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(1, Fault::status(429).retry_after("1"));
    let trace = register(&server.client()).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].faulted && !requests[1].faulted);
    let waited = requests[1].received_at - requests[0].received_at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, before the 1s the server asked for"
    );
    assert!(server.issued_traces().contains(&trace.trace_id()));
}

#[tokio::test]
async fn retry_after_beyond_the_cap_is_cut_to_it() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(1, Fault::status(429).retry_after("3600"));
    let client = server
        .client_builder()
        .max_retry_after(Duration::from_millis(100))
        .build()
        .unwrap();
    let started = Instant::now();
    register(&client).await.unwrap();
    assert!(started.elapsed() < BOUNDED, "{:?}", started.elapsed());
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = MockServer::start().await.unwrap();
    // Two seconds ahead, to the second: the wait is more than one second.
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    server.fail_next(
        1,
        Fault::status(503).retry_after(at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
    );
    register(&server.client()).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].received_at - requests[0].received_at;
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
}

#[tokio::test]
async fn service_unavailable_then_success() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(1, Fault::status(503));
    let trace = register(&server.client()).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].faulted && !requests[1].faulted);
    assert_eq!(server.issued_traces(), vec![trace.trace_id()]);
}

#[tokio::test]
async fn every_retryable_status_is_retried() {
    let server = MockServer::start().await.unwrap();
    let client = server.client_builder().max_retries(1).build().unwrap();
    for status in [429, 500, 502, 503, 504] {
        server.clear_requests();
        server.fail_next(1, Fault::status(status));
        register(&client)
            .await
            .unwrap_or_else(|e| panic!("{status} was not retried: {e:?}"));
        assert_eq!(server.requests().len(), 2, "{status}");
    }
}

#[tokio::test]
async fn server_error_every_time_gives_up_after_max_retries() {
    let server = MockServer::start().await.unwrap();
    for max_retries in [0u32, 1, 3] {
        server.clear_requests();
        server.clear_faults();
        server.fail_next(ALWAYS, Fault::status(500));
        let client = server
            .client_builder()
            .max_retries(max_retries)
            .build()
            .unwrap();
        let err = register(&client).await.unwrap_err();
        assert!(
            matches!(err, Error::Api { status: 500, .. }),
            "max_retries {max_retries}: {err:?}"
        );
        assert_eq!(
            server.requests().len(),
            max_retries as usize + 1,
            "max_retries {max_retries}"
        );
    }
}

#[tokio::test]
async fn client_errors_are_sent_exactly_once() {
    let server = MockServer::start().await.unwrap();
    let client = server.client_builder().max_retries(3).build().unwrap();
    for status in [400, 401, 403, 404] {
        server.clear_requests();
        server.clear_faults();
        server.fail_next(ALWAYS, Fault::status(status));
        let err = register(&client).await.unwrap_err();
        assert!(
            matches!(err, Error::Api { status: s, .. } if s == status),
            "{err:?}"
        );
        assert_eq!(server.requests().len(), 1, "{status} was retried");
    }
}

#[tokio::test]
async fn dropped_connection_is_retried() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(1, Fault::drop_connection().on(Endpoint::RegisterAgentRun));
    let trace = register(&server.client()).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].faulted);
    assert_eq!(server.issued_traces(), vec![trace.trace_id()]);
}

#[tokio::test]
async fn refused_connection_is_a_transport_error_in_bounded_time() {
    let client = Client::builder()
        .api_key("sk-test")
        .base_url(format!("http://127.0.0.1:{}/v1", refused_port()))
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .max_retries(3)
        .build()
        .unwrap();
    let started = Instant::now();
    let err = register(&client).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < BOUNDED, "{:?}", started.elapsed());
}

#[tokio::test]
async fn refused_connection_is_retried_until_the_deadline() {
    // Retries outnumber what the deadline allows, so a client that retries keeps trying
    // for most of the deadline; one that gave up at once would return in milliseconds.
    let deadline = Duration::from_millis(1500);
    let client = Client::builder()
        .api_key("sk-test")
        .base_url(format!("http://127.0.0.1:{}/v1", refused_port()))
        .backoff(Duration::from_millis(20), Duration::from_millis(50))
        .max_retries(10_000)
        .deadline(deadline)
        .build()
        .unwrap();
    let started = Instant::now();
    let err = register(&client).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, Error::Transport { .. } | Error::Timeout { .. }),
        "{err:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(1000),
        "gave up after {elapsed:?}"
    );
    assert!(elapsed < BOUNDED, "{elapsed:?}");
}

#[test]
fn connection_closed_without_an_answer_is_retried_max_retries_times() {
    // A raw listener that accepts each connection and closes it at once, counting them.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    std::thread::spawn({
        let accepted = accepted.clone();
        move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                accepted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        }
    });
    let client = Client::builder()
        .api_key("sk-test")
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .max_retries(2)
        .build()
        .unwrap();
    let err = client
        .register_agent_run_blocking(agent(), PROMPT)
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn slow_answer_past_the_timeout_is_a_timeout() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(1, Fault::delay(Duration::from_secs(5)));
    let client = server
        .client_builder()
        .timeout(Duration::from_millis(200))
        .max_retries(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let err = register(&client).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn timed_out_attempt_is_retried() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(1, Fault::delay(Duration::from_secs(5)));
    let client = server
        .client_builder()
        .timeout(Duration::from_millis(200))
        .max_retries(1)
        .build()
        .unwrap();
    let started = Instant::now();
    let trace = register(&client).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].faulted && !requests[1].faulted);
    assert!(server.issued_traces().contains(&trace.trace_id()));
}

#[tokio::test]
async fn deadline_stops_retries_that_would_wait_past_it() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(ALWAYS, Fault::status(503).retry_after("30"));
    let client = server
        .client_builder()
        .max_retries(10)
        .deadline(Duration::from_millis(500))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = register(&client).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, Error::Api { status: 503, .. }), "{err:?}");
    assert!(elapsed < BOUNDED, "{elapsed:?}");
    // No retry can fit: waiting 30s would pass the deadline.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn deadline_bounds_a_call_against_a_server_that_is_always_unavailable() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(ALWAYS, Fault::status(503));
    let client = server
        .client_builder()
        .max_retries(10_000)
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .deadline(Duration::from_secs(1))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = register(&client).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, Error::Api { status: 503, .. } | Error::Timeout { .. }),
        "{err:?}"
    );
    assert!(elapsed < BOUNDED, "{elapsed:?}");
    assert!(server.requests().len() > 1, "it never retried");
}

#[tokio::test]
async fn deadline_cuts_an_attempt_shorter_than_its_timeout() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(ALWAYS, Fault::delay(Duration::from_secs(20)));
    let client = server
        .client_builder()
        .timeout(Duration::from_secs(30))
        .deadline(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = register(&client).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}
