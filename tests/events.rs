//! Events: the wire format of `POST /event`, the background exporter's order and
//! completeness, flushing when an agent fn returns, and a full queue.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fabraix::testing::{Endpoint, Fault, MockServer, RecordedRequest};
use fabraix::{Client, Error, Event, EventType};
use serde::Serialize;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Serialize, schemars::JsonSchema)]
struct Lookup {
    order_id: u64,
    region: String,
}

fn parse_json_string(request: &RecordedRequest, field: &str) -> Value {
    let text = request.body[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string: {}", request.body));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("`{field}` is not JSON: {e}"))
}

/// Only the requests the API logic answered (not the injected faults).
fn delivered(server: &MockServer) -> Vec<RecordedRequest> {
    server
        .requests_to(Endpoint::Event)
        .into_iter()
        .filter(|r| !r.faulted)
        .collect()
}

#[tokio::test]
async fn each_event_request_has_exactly_the_documented_fields() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();

    #[fabraix::agent(id = "events-wire", system_prompt = "You log.", client = client)]
    async fn run(client: &Client) -> fabraix::Trace {
        fabraix::log_event(Event::text(EventType::User, "Where is order 42?")).unwrap();
        fabraix::log_event(
            Event::typed(
                EventType::Tool,
                &Lookup {
                    order_id: 42,
                    region: "eu".into(),
                },
            )
            .unwrap(),
        )
        .unwrap();
        let _ = client;
        fabraix::current_trace().unwrap()
    }

    let before = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let trace = run(&client).await;
    let after = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;

    let events = server.requests_to(Endpoint::Event);
    assert_eq!(events.len(), 2, "{events:#?}");
    for request in &events {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v1/event");
        assert!(request.authenticated);
        assert_eq!(request.header("x-api-key"), Some("[redacted]"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        let object = request.body.as_object().unwrap();
        let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["content", "event_type", "schema", "timestamp", "trace_id"]
        );
        assert_eq!(object["trace_id"], json!(trace.trace_id().to_string()));
        let timestamp = &object["timestamp"];
        assert!(
            timestamp.is_f64(),
            "timestamp is a JSON number: {timestamp}"
        );
        let seconds = timestamp.as_f64().unwrap();
        assert!(seconds >= before - 0.001 && seconds <= after + 0.001);
        assert!(object["content"].is_string() && object["schema"].is_string());
    }

    assert_eq!(events[0].body["event_type"], "user");
    assert_eq!(
        parse_json_string(&events[0], "content"),
        json!({ "text": "Where is order 42?" })
    );
    let text_schema = parse_json_string(&events[0], "schema");
    assert_eq!(text_schema["properties"]["text"]["type"], "string");

    assert_eq!(events[1].body["event_type"], "tool");
    assert_eq!(
        parse_json_string(&events[1], "content"),
        json!({ "order_id": 42, "region": "eu" })
    );
    let typed_schema = parse_json_string(&events[1], "schema");
    assert_eq!(typed_schema["properties"]["order_id"]["type"], "integer");
    assert_eq!(typed_schema["title"], "Lookup");
}

#[tokio::test]
async fn every_event_type_goes_out_under_its_documented_name() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let trace = client
        .register_agent_run(fabraix::AgentId::from_name("types").unwrap(), "p")
        .await
        .unwrap();
    for kind in EventType::ALL {
        let receipt = client
            .send_event(trace.trace_id(), &Event::text(kind, kind.as_str()))
            .await
            .unwrap();
        assert!(!receipt.event_id.is_nil());
    }
    let names: Vec<_> = server
        .requests_to(Endpoint::Event)
        .iter()
        .map(|r| r.body["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "user",
            "model_input",
            "model_output",
            "tool",
            "environment",
            "memory",
            "system",
            "error"
        ]
    );
}

#[tokio::test]
async fn unknown_trace_is_a_404_api_error() {
    let server = MockServer::start().await.unwrap();
    let unknown = fabraix::TraceId::from_uuid(uuid::Uuid::new_v4());
    let err = server
        .client()
        .send_event(unknown, &Event::text(EventType::User, "hi"))
        .await
        .unwrap_err();
    match err {
        Error::Api { status, code, .. } => {
            assert_eq!(status, 404);
            assert_eq!(code.as_deref(), Some("TRACE_NOT_FOUND"));
        }
        other => panic!("expected a 404, got {other:?}"),
    }
    // A 404 is never retried.
    assert_eq!(server.requests_to(Endpoint::Event).len(), 1);
}

#[test]
fn outside_a_run_log_event_is_no_trace() {
    let err = fabraix::log_event(Event::text(EventType::User, "hi")).unwrap_err();
    assert!(matches!(err, Error::NoTrace), "{err:?}");
}

#[tokio::test]
async fn in_an_unregistered_run_events_are_let_go_without_error() {
    // Nothing listens on this port: the registration fails and the run continues untraced.
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

    #[fabraix::agent(id = "untraced", system_prompt = "p", client = client)]
    async fn run(client: &Client) -> Result<(), Error> {
        let _ = client;
        assert!(fabraix::current_trace().is_none());
        fabraix::log_event(Event::text(EventType::User, "still fine"))?;
        Ok(())
    }

    run(&client).await.unwrap();
    assert_eq!(client.stats().events.queued, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_events_from_ten_concurrent_runs_arrive_once_each_in_order() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();

    #[fabraix::agent(id = "concurrent", system_prompt = "p", client = &client)]
    async fn run(client: Client, run: u32) -> fabraix::TraceId {
        let _ = &client;
        for n in 0..100u32 {
            fabraix::log_event(
                Event::json(
                    EventType::ModelOutput,
                    &json!({ "run": run, "n": n }),
                    json!({ "type": "object" }),
                )
                .unwrap(),
            )
            .unwrap();
            if n % 10 == 0 {
                tokio::task::yield_now().await;
            }
        }
        fabraix::current_trace().unwrap().trace_id()
    }

    let handles: Vec<_> = (0..10)
        .map(|r| tokio::spawn(run(client.clone(), r)))
        .collect();
    let mut traces = HashMap::new();
    for (r, handle) in handles.into_iter().enumerate() {
        traces.insert(handle.await.unwrap().to_string(), r as u64);
    }

    let events = delivered(&server);
    assert_eq!(events.len(), 1000);
    let mut per_run: HashMap<u64, Vec<u64>> = HashMap::new();
    for request in &events {
        let content = parse_json_string(request, "content");
        let run = content["run"].as_u64().unwrap();
        assert_eq!(
            traces[request.body["trace_id"].as_str().unwrap()],
            run,
            "an event carried another run's trace id"
        );
        per_run
            .entry(run)
            .or_default()
            .push(content["n"].as_u64().unwrap());
    }
    for run in 0..10 {
        assert_eq!(per_run[&run], (0..100).collect::<Vec<_>>(), "run {run}");
    }
    let stats = client.stats().events;
    assert_eq!(
        (stats.queued, stats.sent, stats.failed, stats.dropped),
        (1000, 1000, 0, 0)
    );
    // The old name answers the same counts.
    #[allow(deprecated)]
    let old = client.event_stats();
    assert_eq!(old, stats);
}

#[tokio::test]
async fn fifty_events_have_all_arrived_when_the_agent_fn_returns() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();

    #[fabraix::agent(id = "fifty", system_prompt = "p", client = client)]
    async fn run(client: &Client) {
        let _ = client;
        for n in 0..50 {
            fabraix::log_event(Event::text(EventType::System, format!("step {n}"))).unwrap();
        }
    }

    run(&client).await;
    // No waiting here: the fn flushed before it returned.
    let texts: Vec<_> = delivered(&server)
        .iter()
        .map(|r| {
            parse_json_string(r, "content")["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        texts,
        (0..50).map(|n| format!("step {n}")).collect::<Vec<_>>()
    );
}

#[test]
fn a_sync_agent_fn_flushes_too() {
    let server = MockServer::start_blocking().unwrap();
    let client = server.client();

    #[fabraix::agent(id = "sync-fifty", system_prompt = "p", client = client)]
    fn run(client: &Client) {
        let _ = client;
        for n in 0..50 {
            fabraix::log_event(Event::text(EventType::Memory, format!("{n}"))).unwrap();
        }
    }

    run(&client);
    assert_eq!(delivered(&server).len(), 50);
}

#[tokio::test]
async fn an_outage_of_503s_loses_nothing_and_keeps_order() {
    let server = MockServer::start().await.unwrap();
    let client = server
        .client_builder()
        .backoff(Duration::from_millis(5), Duration::from_millis(50))
        .build()
        .unwrap();
    let trace = client
        .register_agent_run(fabraix::AgentId::from_name("outage").unwrap(), "p")
        .await
        .unwrap();
    server.fail_next(25, Fault::status(503).on(Endpoint::Event));

    fabraix::scope(trace, async {
        for n in 0..100 {
            fabraix::log_event(Event::text(EventType::Tool, n.to_string())).unwrap();
        }
    })
    .await;
    assert!(client.flush(WAIT).await, "flush timed out");

    let faulted = server
        .requests_to(Endpoint::Event)
        .iter()
        .filter(|r| r.faulted)
        .count();
    assert_eq!(faulted, 25);
    let texts: Vec<_> = delivered(&server)
        .iter()
        .map(|r| {
            parse_json_string(r, "content")["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(texts, (0..100).map(|n| n.to_string()).collect::<Vec<_>>());
    let stats = client.stats().events;
    assert_eq!(
        (stats.sent, stats.failed, stats.dropped, stats.in_queue),
        (100, 0, 0, 0)
    );
}

#[tokio::test]
async fn a_429_pauses_the_exporter_for_its_retry_after() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let trace = client
        .register_agent_run(fabraix::AgentId::from_name("limited").unwrap(), "p")
        .await
        .unwrap();
    server.fail_next(1, Fault::status(429).retry_after("1").on(Endpoint::Event));
    client
        .queue_event(trace.trace_id(), Event::text(EventType::User, "a"))
        .unwrap();
    assert!(client.flush(WAIT).await);

    let events = server.requests_to(Endpoint::Event);
    assert_eq!(events.len(), 2);
    assert!(events[0].faulted && !events[1].faulted);
    let waited = events[1].received_at - events[0].received_at;
    assert!(waited >= Duration::from_millis(950), "waited {waited:?}");
}

#[tokio::test]
async fn a_full_queue_drops_counts_and_never_blocks() {
    let server = MockServer::start().await.unwrap();
    let client = server.client_builder().queue_capacity(10).build().unwrap();
    let trace = client
        .register_agent_run(fabraix::AgentId::from_name("full").unwrap(), "p")
        .await
        .unwrap();
    // The server holds every event for a long time, so nothing leaves the queue.
    server.fail_next(
        100,
        Fault::delay(Duration::from_secs(30)).on(Endpoint::Event),
    );

    let started = Instant::now();
    let mut outcomes = Vec::new();
    for n in 0..1000 {
        outcomes.push(client.queue_event(
            trace.trace_id(),
            Event::text(EventType::User, n.to_string()),
        ));
    }
    let took = started.elapsed();

    assert!(outcomes[..10].iter().all(Result::is_ok));
    assert!(
        outcomes[10..]
            .iter()
            .all(|o| matches!(o, Err(Error::QueueFull)))
    );
    let stats = client.stats().events;
    assert_eq!((stats.queued, stats.dropped, stats.in_queue), (10, 990, 10));
    // A thousand enqueues against a stuck server take no network time at all.
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn events_refused_by_the_server_are_counted_as_failed() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let unknown = fabraix::TraceId::from_uuid(uuid::Uuid::new_v4());
    client
        .queue_event(unknown, Event::text(EventType::User, "lost"))
        .unwrap();
    assert!(client.flush(WAIT).await);
    let stats = client.stats().events;
    assert_eq!((stats.sent, stats.failed, stats.in_queue), (0, 1, 0));
}

#[test]
fn event_constructors_report_bad_input() {
    let err = Event::json(EventType::User, &json!({"a": 1}), json!("not a schema")).unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
    let mut map = HashMap::new();
    map.insert((1, 2), "tuple keys are not JSON object keys");
    let err = Event::json(EventType::User, &map, json!({})).unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err:?}");
    assert_eq!(
        "model_output".parse::<EventType>().unwrap(),
        EventType::ModelOutput
    );
    assert!("chat".parse::<EventType>().is_err());
}

// Regression: carried to a thread as a bare `Trace`, a run registered with `client = …`
// lost its client there, and its events went to the global client.
#[tokio::test]
async fn current_run_carries_the_runs_client_into_a_thread() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();

    #[fabraix::agent(id = "threaded", system_prompt = "p", client = client)]
    async fn run(client: &Client) -> fabraix::Trace {
        let _ = client;
        let run = fabraix::current_run().expect("inside a run");
        std::thread::spawn(move || {
            run.sync_scope(|| fabraix::log_event(Event::text(EventType::Tool, "from a thread")))
        })
        .join()
        .unwrap()
        .unwrap();
        fabraix::current_trace().unwrap()
    }

    let trace = run(&client).await;
    let events = delivered(&server);
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].body["trace_id"],
        json!(trace.trace_id().to_string())
    );
    assert!(fabraix::current_run().is_none());
}
