//! `Client::register_agent_run`: the request on the wire, the trace it returns, and the
//! blocking form from threads with and without a runtime.

use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{AgentId, Client, Error, TraceId};
use uuid::Uuid;

const PROMPT: &str = "You are a support assistant. Never share PII.";

/// How long a blocking registration may take before the test calls it a deadlock.
const NO_DEADLOCK: Duration = Duration::from_secs(30);

fn agent() -> AgentId {
    AgentId::from_name("support-bot").unwrap()
}

/// `YYYY-MM-DDTHH:mm:ss.sssZ`, character by character.
fn has_register_timestamp_shape(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 24
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'.',
            23 => *b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

#[test]
fn timestamp_shape_check_accepts_only_the_documented_form() {
    assert!(has_register_timestamp_shape("2024-01-15T14:30:45.123Z"));
    for bad in [
        "2024-01-15T14:30:45Z",
        "2024-01-15T14:30:45.123+00:00",
        "2024-01-15T14:30:45.1234Z",
        "2024-01-15 14:30:45.123Z",
        "2024-01-15T14:30:45.12Z",
    ] {
        assert!(!has_register_timestamp_shape(bad), "{bad}");
    }
}

#[tokio::test]
async fn register_sends_exactly_the_documented_request() {
    let server = MockServer::start().await.unwrap();
    let before = Utc::now();
    server
        .client()
        .register_agent_run(agent(), PROMPT)
        .await
        .unwrap();
    let after = Utc::now();

    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/register-agent-run");
    assert_eq!(request.header("x-api-key"), Some("[redacted]"));
    assert!(request.authenticated, "the key was not the server's");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(!request.faulted);

    let body = request.body.as_object().expect("a JSON object body");
    let mut fields: Vec<&str> = body.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["agent_id", "system_prompt", "timestamp"]);

    let agent_id = body["agent_id"].as_str().expect("agent_id is a string");
    assert_eq!(Uuid::try_parse(agent_id).unwrap(), *agent().as_uuid());
    assert_eq!(agent_id, agent().to_string());

    assert_eq!(body["system_prompt"], PROMPT);

    let timestamp = body["timestamp"].as_str().expect("timestamp is a string");
    assert!(has_register_timestamp_shape(timestamp), "{timestamp}");
    let sent: DateTime<Utc> = DateTime::parse_from_rfc3339(timestamp).unwrap().into();
    let slack = chrono::Duration::seconds(2);
    assert!(
        sent >= before - slack && sent <= after + slack,
        "{sent} is not between {before} and {after}"
    );
}

#[tokio::test]
async fn register_returns_the_trace_the_server_issued() {
    let server = MockServer::start().await.unwrap();
    let before = Utc::now();
    let trace = server
        .client()
        .register_agent_run(agent(), PROMPT)
        .await
        .unwrap();
    let after = Utc::now();

    assert_eq!(server.issued_traces(), vec![trace.trace_id()]);
    assert_eq!(trace.agent_id(), agent());
    assert_eq!(trace.to_string(), trace.trace_id().to_string());
    // The server answers its clock at millisecond precision.
    let at = trace.registered_at();
    assert_eq!(at.timestamp_subsec_nanos() % 1_000_000, 0, "{at}");
    let slack = chrono::Duration::seconds(2);
    assert!(at >= before - slack && at <= after + slack, "{at}");
}

#[tokio::test]
async fn register_takes_trace_id_and_timestamp_from_the_response() {
    let server = MockServer::start().await.unwrap();
    let issued = "0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10";
    server.fail_next(
        1,
        Fault::status(200)
            .body(format!(
                r#"{{"trace_id":"{issued}","timestamp":"2024-01-15T14:30:45.123Z"}}"#
            ))
            .on(Endpoint::RegisterAgentRun),
    );
    let trace = server
        .client()
        .register_agent_run(agent(), PROMPT)
        .await
        .unwrap();
    assert_eq!(trace.trace_id(), issued.parse::<TraceId>().unwrap());
    let expected = Utc.with_ymd_and_hms(2024, 1, 15, 14, 30, 45).unwrap()
        + chrono::Duration::milliseconds(123);
    assert_eq!(trace.registered_at(), expected);
    assert_eq!(trace.agent_id(), agent());
}

#[tokio::test]
async fn register_reads_server_timestamps_in_every_iso_form() {
    let server = MockServer::start().await.unwrap();
    let expected = Utc.with_ymd_and_hms(2024, 1, 15, 14, 30, 45).unwrap()
        + chrono::Duration::milliseconds(123);
    for timestamp in [
        r#""2024-01-15T16:30:45.123+02:00""#,
        r#""2024-01-15T14:30:45.123""#,
        "1705329045.123",
    ] {
        server.fail_next(
            1,
            Fault::status(200).body(format!(
                r#"{{"trace_id":"0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10","timestamp":{timestamp}}}"#
            )),
        );
        let trace = server
            .client()
            .register_agent_run(agent(), PROMPT)
            .await
            .unwrap_or_else(|e| panic!("{timestamp}: {e}"));
        assert_eq!(trace.registered_at(), expected, "{timestamp}");
    }
}

#[tokio::test]
async fn register_gives_each_run_a_new_trace() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let first = client.register_agent_run(agent(), PROMPT).await.unwrap();
    let second = client.register_agent_run(agent(), PROMPT).await.unwrap();
    assert_ne!(first.trace_id(), second.trace_id());
    assert_eq!(
        server.issued_traces(),
        vec![first.trace_id(), second.trace_id()]
    );
    let bodies: Vec<_> = server.requests().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies[0]["agent_id"], bodies[1]["agent_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_on_one_client() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.register_agent_run(agent(), PROMPT).await })
        })
        .collect();
    let mut traces = std::collections::HashSet::new();
    for call in calls {
        traces.insert(call.await.unwrap().unwrap().trace_id());
    }
    assert_eq!(traces.len(), 50);
    assert_eq!(server.requests().len(), 50);
    let issued: std::collections::HashSet<_> = server.issued_traces().into_iter().collect();
    assert_eq!(issued, traces);
}

#[tokio::test]
async fn register_sends_the_system_prompt_verbatim() {
    let server = MockServer::start().await.unwrap();
    let prompt =
        "Line one.\nSay \"no\" to {\"json\": true}, \\ back-slashes, tabs\tand ünïcødé 🦀.";
    server
        .client()
        .register_agent_run(agent(), prompt)
        .await
        .unwrap();
    assert_eq!(server.requests()[0].body["system_prompt"], prompt);
}

#[tokio::test]
async fn register_sends_a_uuid_agent_id_as_is() {
    let server = MockServer::start().await.unwrap();
    let text = "0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10";
    let trace = server
        .client()
        .register_agent_run(AgentId::parse(text).unwrap(), PROMPT)
        .await
        .unwrap();
    assert_eq!(server.requests()[0].body["agent_id"], text);
    assert_eq!(trace.agent_id().to_string(), text);
}

#[test]
fn register_blocking_works_from_a_thread_with_no_runtime() {
    let server = MockServer::start_blocking().unwrap();
    let client = server.client();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(client.register_agent_run_blocking(agent(), PROMPT));
    });
    let trace = rx
        .recv_timeout(NO_DEADLOCK)
        .expect("the blocking registration never returned")
        .unwrap();
    assert_eq!(server.issued_traces(), vec![trace.trace_id()]);
    assert_eq!(server.requests_to(Endpoint::RegisterAgentRun).len(), 1);
}

#[test]
fn register_blocking_inside_a_current_thread_runtime_does_not_deadlock() {
    let server = MockServer::start_blocking().unwrap();
    let client = server.client();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(async move {
            // Blocks the only thread of this runtime while the request runs.
            let trace = client.register_agent_run_blocking(agent(), PROMPT)?;
            // The runtime is still usable afterwards.
            tokio::task::yield_now().await;
            Ok::<_, Error>(trace)
        });
        let _ = tx.send(outcome);
    });
    let trace = rx
        .recv_timeout(NO_DEADLOCK)
        .expect("the blocking registration deadlocked its current-thread runtime")
        .unwrap();
    assert_eq!(server.issued_traces(), vec![trace.trace_id()]);
}

#[test]
fn register_blocking_on_a_multi_thread_runtime_worker() {
    let server = MockServer::start_blocking().unwrap();
    let client = server.client();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(async move {
            tokio::spawn(async move { client.register_agent_run_blocking(agent(), PROMPT) })
                .await
                .unwrap()
        });
        let _ = tx.send(outcome);
    });
    let trace = rx
        .recv_timeout(NO_DEADLOCK)
        .expect("the blocking registration never returned")
        .unwrap();
    assert_eq!(server.issued_traces(), vec![trace.trace_id()]);
}

#[test]
fn register_works_on_a_runtime_without_io_or_time_drivers() {
    let server = MockServer::start_blocking().unwrap();
    let client = server.client();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let trace = runtime
        .block_on(client.register_agent_run(agent(), PROMPT))
        .unwrap();
    assert_eq!(server.issued_traces(), vec![trace.trace_id()]);
}

#[test]
fn register_works_on_an_executor_that_is_not_tokio() {
    let server = MockServer::start_blocking().unwrap();
    let client = server.client();
    let trace = park_executor::block_on(client.register_agent_run(agent(), PROMPT)).unwrap();
    assert_eq!(server.issued_traces(), vec![trace.trace_id()]);
}

/// The smallest executor: poll on this thread, park until woken.
mod park_executor {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    use std::thread::{self, Thread};

    struct Unpark(Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    pub fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = pin!(future);
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            thread::park();
        }
    }
}

#[tokio::test]
async fn register_works_after_the_runtime_of_an_earlier_call_is_gone() {
    // Every `#[tokio::test]` has its own runtime; a client (and its pool) used in one must
    // keep working in the next.
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let first = std::thread::spawn({
        let client = client.clone();
        move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(client.register_agent_run(agent(), PROMPT))
        }
    })
    .join()
    .unwrap()
    .unwrap();
    let second = client.register_agent_run(agent(), PROMPT).await.unwrap();
    assert_ne!(first.trace_id(), second.trace_id());
    assert_eq!(server.issued_traces().len(), 2);
}

#[tokio::test]
async fn register_on_a_disabled_client_sends_nothing() {
    let server = MockServer::start().await.unwrap();
    let disabled = server.client_builder().disabled(true).build().unwrap();
    assert!(disabled.is_disabled());

    let err = disabled
        .register_agent_run(agent(), PROMPT)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Disabled), "{err:?}");
    let err = disabled
        .register_agent_run_blocking(agent(), PROMPT)
        .unwrap_err();
    assert!(matches!(err, Error::Disabled), "{err:?}");

    // A request sent after them is the first one the server sees.
    server
        .client()
        .register_agent_run(agent(), PROMPT)
        .await
        .unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert!(requests[0].authenticated);
}

#[tokio::test]
async fn register_on_a_disabled_client_needs_no_key() {
    let client = Client::builder().disabled(true).build().unwrap();
    let err = client
        .register_agent_run(agent(), PROMPT)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Disabled), "{err:?}");
}

#[tokio::test]
async fn register_with_a_wrong_key_is_a_401_sent_once() {
    let server = MockServer::start().await.unwrap();
    let client = server
        .client_builder()
        .api_key("sk-not-the-right-key")
        .max_retries(3)
        .build()
        .unwrap();
    let err = client
        .register_agent_run(agent(), PROMPT)
        .await
        .unwrap_err();
    match &err {
        Error::Api {
            status,
            kind,
            code,
            message,
        } => {
            assert_eq!(*status, 401);
            assert_eq!(kind.as_deref(), Some("authentication_error"));
            assert_eq!(code.as_deref(), Some("INVALID_API_KEY"));
            assert_eq!(message, "Invalid API key");
        }
        other => panic!("expected Error::Api, got {other:?}"),
    }
    assert!(!err.is_retryable());
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert!(!requests[0].authenticated);
    assert!(server.issued_traces().is_empty());
}
