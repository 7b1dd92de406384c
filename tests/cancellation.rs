//! An agent fn that is cancelled (a timeout, a `select!`, an aborted task) drops its body
//! inside its run, as tokio's task-locals and `tracing::Instrumented` do: the body's
//! destructors see the run, and can log to it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabraix::testing::{Endpoint, MockServer};
use fabraix::{Client, Event, EventType, Trace, current_trace};
use tokio::sync::oneshot;

/// Records, when dropped, the trace it sees, and logs one event to it.
struct Probe {
    seen: Arc<Mutex<Vec<Option<Trace>>>>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.seen.lock().unwrap().push(current_trace());
        let _ = fabraix::log_event(Event::text(EventType::System, "cancelled"));
    }
}

#[fabraix::agent(id = "cancellable", system_prompt = "You wait.", client = client)]
async fn waits_forever(
    client: &Client,
    seen: Arc<Mutex<Vec<Option<Trace>>>>,
    started: oneshot::Sender<Trace>,
) {
    let _probe = Probe { seen };
    let _ = started.send(current_trace().expect("inside the run"));
    std::future::pending::<()>().await;
}

async fn cancelled_event_arrives(server: &MockServer, trace: Trace) {
    let arrived = server
        .wait_for(Duration::from_secs(10), |requests| {
            requests.iter().any(|r| {
                r.path == "/v1/event" && r.body["trace_id"] == trace.trace_id().to_string()
            })
        })
        .await;
    assert!(arrived, "the destructor's event reached the run");
    assert_eq!(server.requests_to(Endpoint::Event).len(), 1);
}

#[tokio::test]
async fn a_body_dropped_by_select_sees_its_run() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (started, registered) = oneshot::channel();
    let agent = waits_forever(&client, seen.clone(), started);
    let trace = tokio::select! {
        _ = agent => unreachable!("the agent never returns"),
        trace = registered => trace.unwrap(),
    };
    // The `select!` dropped the agent's future: its body was dropped inside the run.
    assert_eq!(*seen.lock().unwrap(), vec![Some(trace)]);
    assert_eq!(current_trace(), None, "no run is current after it");
    cancelled_event_arrives(&server, trace).await;
}

#[tokio::test]
async fn a_body_dropped_by_a_timeout_sees_its_run() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (started, registered) = oneshot::channel();
    // Long enough for the registration on a loaded machine; the body then waits forever.
    let timed_out = tokio::time::timeout(
        Duration::from_secs(5),
        waits_forever(&client, seen.clone(), started),
    )
    .await;
    assert!(timed_out.is_err());
    let trace = registered.await.unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![Some(trace)]);
    assert_eq!(current_trace(), None);
    cancelled_event_arrives(&server, trace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_task_drops_its_body_inside_its_run() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (started, registered) = oneshot::channel();
    let task = {
        let (client, seen) = (client.clone(), seen.clone());
        tokio::spawn(async move { waits_forever(&client, seen, started).await })
    };
    let trace = registered.await.unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(*seen.lock().unwrap(), vec![Some(trace)]);
    cancelled_event_arrives(&server, trace).await;
}

#[tokio::test]
async fn a_sync_scope_future_dropped_unpolled_sees_its_run() {
    // `scope` keeps the same promise for futures that never ran at all.
    let trace = Trace::new(
        fabraix::TraceId::from_uuid(uuid::Uuid::new_v4()),
        fabraix::AgentId::from_name("x").unwrap(),
        chrono::Utc::now(),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let probe = Probe { seen: seen.clone() };
    let future = fabraix::scope(trace, async move {
        let _probe = probe;
    });
    drop(future);
    assert_eq!(*seen.lock().unwrap(), vec![Some(trace)]);
    assert_eq!(current_trace(), None);
}
