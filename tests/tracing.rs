//! The `tracing` feature: each run is a `fabraix.agent_run` span around the body, so log
//! lines inside the run carry its ids; the SDK's own warnings go through `tracing`.

mod capture;

use capture::Captured;
use std::time::Duration;

use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{Client, Event, EventType};

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

#[test]
fn a_log_line_inside_a_run_carries_its_trace_id() {
    let server = MockServer::start_blocking().unwrap();
    let client = server.client();
    let (captured, _guard) = capture();

    #[fabraix::agent(id = "traced-agent", system_prompt = "p", client = client)]
    fn run(client: &Client) -> fabraix::Trace {
        let _ = client;
        tracing::info!("looking up the order");
        fabraix::current_trace().unwrap()
    }

    let trace = run(&client);
    tracing::info!("after the run");
    let text = captured.text();
    let inside = text
        .lines()
        .find(|l| l.contains("looking up the order"))
        .expect("the line was captured");
    assert!(inside.contains("fabraix.agent_run"), "{inside}");
    assert!(
        inside.contains(&format!("trace_id={}", trace.trace_id())),
        "{inside}"
    );
    assert!(
        inside.contains(&format!("agent_id={}", trace.agent_id())),
        "{inside}"
    );
    let after = text.lines().find(|l| l.contains("after the run")).unwrap();
    assert!(!after.contains("fabraix.agent_run"), "{after}");
}

#[tokio::test]
async fn async_runs_are_spans_across_awaits() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let (captured, _guard) = capture();

    #[fabraix::agent(id = "async-traced", system_prompt = "p", client = client)]
    async fn run(client: &Client) -> fabraix::Trace {
        let _ = client;
        tokio::task::yield_now().await;
        tracing::info!("after an await");
        fabraix::current_trace().unwrap()
    }

    let trace = run(&client).await;
    let text = captured.text();
    let line = text.lines().find(|l| l.contains("after an await")).unwrap();
    assert!(
        line.contains(&format!("trace_id={}", trace.trace_id())),
        "{line}"
    );
}

#[tokio::test]
async fn a_failed_registration_is_one_warning() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder()
        .api_key("k")
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .max_retries(0)
        .build()
        .unwrap();
    let (captured, _guard) = capture();

    #[fabraix::agent(id = "unreachable", system_prompt = "p", client = client)]
    async fn run(client: &Client) -> bool {
        let _ = client;
        fabraix::current_trace().is_none()
    }

    assert!(run(&client).await);
    let text = captured.text();
    let warnings: Vec<_> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("not registered"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("transport error"), "{}", warnings[0]);
}

#[tokio::test]
async fn dropped_and_failed_events_are_reported() {
    let server = MockServer::start().await.unwrap();
    let client = server.client_builder().queue_capacity(1).build().unwrap();
    let trace = client
        .register_agent_run(fabraix::AgentId::from_name("drops").unwrap(), "p")
        .await
        .unwrap();
    let (captured, _guard) = capture();
    server.fail_next(1, Fault::status(400).on(Endpoint::Event));
    // The exporter runs on the SDK's own threads: its warnings reach the global
    // subscriber, not this thread's. The caller's drop warning is on this thread.
    client
        .queue_event(trace.trace_id(), Event::text(EventType::User, "a"))
        .unwrap();
    let full = client.queue_event(trace.trace_id(), Event::text(EventType::User, "b"));
    assert!(matches!(full, Err(fabraix::Error::QueueFull)));
    assert!(client.flush(Duration::from_secs(10)).await);
    let text = captured.text();
    assert!(
        text.lines()
            .any(|l| l.contains("WARN") && l.contains("queue is full") && l.contains("dropped=1")),
        "{text}"
    );
    assert_eq!(client.stats().events.failed, 1);
}
