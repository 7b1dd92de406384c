//! A 429 slows what met it and never breaks the agent: the key's budget keeps two lanes
//! (agent calls; queued events). A 429 pauses the lane that met it; the other lane sends one
//! probe and goes on; a pause that outlasts an agent call's deadline fails it at once; an
//! agent fn whose events meet a 429 while it flushes returns without waiting the pause out.
//! Counts and orders, not timings (the figures are in BENCHMARKS.md).

use std::time::{Duration, Instant};

use fabraix::testing::{Endpoint, Fault, MockServer, RecordedRequest};
use fabraix::{Action, Client, Error, Event, EventType};

fn accepted(request: &RecordedRequest) -> bool {
    request.response.as_ref().is_some_and(|r| r.status == 200)
}

fn status(request: &RecordedRequest) -> Option<u16> {
    request.response.as_ref().map(|r| r.status)
}

/// One turn of an agent: registered, six events, one check. Answers whether the run was
/// registered, and the check's outcome.
#[fabraix::agent(id = "lane-agent", system_prompt = "You answer.", client = client)]
async fn turn(client: &Client, n: usize) -> (bool, Result<(), Error>) {
    let registered = fabraix::current_trace().is_some();
    for step in 0..6 {
        let _ = fabraix::log_event(Event::text(EventType::Tool, format!("{n}/{step}")));
    }
    let check = fabraix::check_action(&Action::new("lookup"))
        .await
        .and_then(|v| v.require_safe().map(drop));
    (registered, check)
}

async fn runs(client: &Client, count: usize) -> Vec<(bool, Result<(), Error>)> {
    let handles: Vec<_> = (0..count)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move { turn(&client, n).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for handle in handles {
        outcomes.push(handle.await.unwrap());
    }
    outcomes
}

fn answered_429(server: &MockServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| status(r) == Some(429))
        .count()
}

fn events_accepted(server: &MockServer) -> usize {
    server
        .requests_to(Endpoint::Event)
        .iter()
        .filter(|r| accepted(r))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_events_never_stalls_the_agents() {
    // Regression: one 429 on `/event` with `Retry-After: 30` paused every request of the
    // key for 30 s; every agent call after it waited as long as its deadline, and checks
    // failed closed.
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let first = runs(&client, 1).await;
    assert!(first[0].0 && first[0].1.is_ok(), "{first:?}");
    assert!(client.flush(Duration::from_secs(10)).await);

    server.fail_next(1, Fault::status(429).retry_after("30").on(Endpoint::Event));
    // The 429 is met before the agents run (events beside agent calls are held back, so
    // with the agents already running it might come only after them).
    let trace = client
        .register_agent_run("lane-agent", "You answer.")
        .await
        .unwrap();
    client
        .queue_event(
            trace.trace_id(),
            Event::text(EventType::Tool, "meets the 429"),
        )
        .unwrap();
    let met_by = Instant::now() + Duration::from_secs(30);
    while client.stats().rate_limited == 0 {
        assert!(Instant::now() < met_by, "{:?}", client.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let outcomes = runs(&client, 100).await;
    // Every run was registered and every check answered, while the events were still held
    // by their pause: no agent waited for it.
    let held = client.stats().events.in_queue;
    assert!(
        held > 0,
        "the events' pause was over before the agents were done"
    );
    for (n, (registered, check)) in outcomes.iter().enumerate() {
        assert!(registered, "run {n} unregistered");
        assert!(check.is_ok(), "run {n}: {check:?}");
    }
    assert_eq!(client.stats().rate_limited, 1);
    // The agent lane learned it was not limited from one probe: no pause, no pace.
    let stats = client.stats();
    assert_eq!(stats.pace, None, "{stats:?}");
    assert!(stats.probes >= 1, "{stats:?}");

    // Every event is delivered after the pause, once.
    let total = 6 * 101 + 1;
    let delivered = server
        .wait_for(Duration::from_secs(120), |requests| {
            requests
                .iter()
                .filter(|r| r.path == "/v1/event" && accepted(r))
                .count()
                >= total
        })
        .await;
    assert!(delivered, "{:?}", client.stats());
    assert!(client.flush(Duration::from_secs(10)).await);
    assert_eq!(events_accepted(&server), total);
    assert_eq!(answered_429(&server), 1);
    assert_eq!(client.stats().events.sent, total as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_one_off_429_the_events_go_back_to_full_speed() {
    // Regression: a one-off 429 with `Retry-After: 1` set a pace that climbed back 2% a
    // second, so a server with no limit was crawled at for minutes.
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    runs(&client, 20).await;
    assert!(client.flush(Duration::from_secs(10)).await);

    server.fail_next(1, Fault::status(429).retry_after("1").on(Endpoint::Event));
    let outcomes = runs(&client, 200).await;
    assert!(outcomes.iter().all(|(r, c)| *r && c.is_ok()));
    assert!(
        client.flush(Duration::from_secs(60)).await,
        "{:?}",
        client.stats()
    );
    assert_eq!(events_accepted(&server), 6 * 220);
    let stats = client.stats();
    assert_eq!(stats.rate_limited, 1);
    // A single 429 is not a limit: no pace was set, and the lane probed once after the pause.
    assert_eq!(stats.pace, None, "{stats:?}");
    let after_429: Vec<RecordedRequest> = server
        .requests()
        .into_iter()
        .skip_while(|r| status(r) != Some(429))
        .collect();
    assert!(
        after_429.iter().skip(1).all(|r| status(r) == Some(200)),
        "only one 429"
    );
}

#[fabraix::agent(id = "flushing-agent", system_prompt = "You log.", client = client)]
async fn logs_then_returns(client: &Client, events: usize) -> bool {
    for n in 0..events {
        let _ = fabraix::log_event(Event::text(EventType::Tool, n.to_string()));
    }
    fabraix::current_trace().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_fn_whose_events_meet_a_429_while_it_flushes_returns_without_waiting() {
    // Regression: the flush on return waited a 30 s pause out (5 s with only the flush
    // timeout), although its events could not be sent in time.
    let server = MockServer::start().await.unwrap();
    let client = server
        .client_builder()
        .flush_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // The first event meets the 429 once the flush has begun: every send is late, so the
    // flush is waiting when the answer comes.
    server.fail_next(1, Fault::status(429).retry_after("30").on(Endpoint::Event));
    assert!(logs_then_returns(&client, 5).await);
    // It returned while its events were held by the pause: they are still queued.
    let stats = client.stats();
    assert_eq!(stats.rate_limited, 1, "{stats:?}");
    assert_eq!(stats.events.in_queue, 5, "{stats:?}");
    assert_eq!(events_accepted(&server), 0);
}

#[fabraix::agent(id = "limited-agent", system_prompt = "You wait.", client = client)]
async fn registers(client: &Client) -> Option<fabraix::Trace> {
    fabraix::current_trace()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_past_the_deadline_fails_a_registration_at_once() {
    let server = MockServer::start().await.unwrap();
    let client = server
        .client_builder()
        .deadline(Duration::from_secs(20))
        .max_retry_after(Duration::from_secs(60))
        .build()
        .unwrap();
    server.fail_next(
        1,
        Fault::status(429)
            .retry_after("45")
            .on(Endpoint::RegisterAgentRun),
    );
    // `on_failure = "continue"`: the body runs without a trace, once the one 429 is in.
    assert_eq!(registers(&client).await, None);
    assert_eq!(server.requests_to(Endpoint::RegisterAgentRun).len(), 1);
    let error = client
        .register_agent_run("limited-agent", "You wait.")
        .await
        .unwrap_err();
    match error {
        Error::RateLimited {
            retry_after: Some(wait),
        } => assert!(wait > Duration::from_secs(30), "{wait:?}"),
        other => panic!("{other:?}"),
    }
    // Nothing more was sent: the pause outlasts the deadline, so the call failed at once.
    assert_eq!(server.requests_to(Endpoint::RegisterAgentRun).len(), 1);
    assert!(client.stats().failed_fast >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_past_the_deadline_fails_a_check_closed_at_once() {
    let server = MockServer::start().await.unwrap();
    let client = server
        .client_builder()
        .deadline(Duration::from_secs(20))
        .max_retry_after(Duration::from_secs(60))
        .build()
        .unwrap();
    let trace = client
        .register_agent_run("limited-agent", "You wait.")
        .await
        .unwrap();
    server.fail_next(1, Fault::status(429).retry_after("45").on(Endpoint::Check));
    let error = client
        .check_action(trace.trace_id(), &Action::new("delete_records"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::RateLimited { retry_after: Some(w) } if w > Duration::from_secs(30)),
        "{error:?}"
    );
    assert_eq!(server.requests_to(Endpoint::Check).len(), 1);
    // Events are another lane: they still go, after one probe.
    client
        .queue_event(
            trace.trace_id(),
            Event::text(EventType::User, "still logged"),
        )
        .unwrap();
    assert!(client.flush(Duration::from_secs(10)).await);
    assert_eq!(events_accepted(&server), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_goes_while_the_server_holds_every_event_send() {
    // Agent calls have permits of their own: with `max_in_flight(4)` the exporter sends at
    // most four events at once, and a check goes while all four are held by the server.
    let server = MockServer::start().await.unwrap();
    let client = server
        .client_builder()
        .max_in_flight(4)
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    // A trace's events go one at a time: a run each, so that every event may go at once.
    let mut traces = Vec::new();
    for _ in 0..8 {
        traces.push(
            client
                .register_agent_run("share-agent", "You wait.")
                .await
                .unwrap(),
        );
    }
    // Every event send is held by the server, for longer than the test runs.
    server.fail_next(
        100,
        Fault::delay(Duration::from_secs(600)).on(Endpoint::Event),
    );
    for trace in &traces {
        client
            .queue_event(trace.trace_id(), Event::text(EventType::Tool, "held"))
            .unwrap();
    }
    let events_in =
        |requests: &[RecordedRequest]| requests.iter().filter(|r| r.path == "/v1/event").count();
    assert!(
        server
            .wait_for(Duration::from_secs(30), |r| events_in(r) >= 4)
            .await,
        "{:?}",
        client.stats()
    );

    let verdict = client
        .check_action(traces[0].trace_id(), &Action::new("lookup"))
        .await
        .unwrap();
    assert!(verdict.is_safe);
    let requests = server.requests();
    // The check was answered while every event send was still held, and no other event
    // send went out beside them.
    let events: Vec<&RecordedRequest> = requests.iter().filter(|r| r.path == "/v1/event").collect();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(events.iter().all(|r| r.response.is_none()), "{events:?}");
    let checks = server.requests_to(Endpoint::Check);
    assert_eq!(checks.len(), 1);
    assert!(accepted(&checks[0]));
    assert_eq!(client.stats().events.sent, 0);

    // Several agent calls at once go too, never behind the events.
    let concurrent: Vec<_> = (0..4)
        .map(|n| {
            let client = client.clone();
            let trace = traces[n].trace_id();
            tokio::spawn(async move { client.check_action(trace, &Action::new("lookup")).await })
        })
        .collect();
    for check in concurrent {
        assert!(check.await.unwrap().is_ok());
    }
    assert_eq!(server.requests_to(Endpoint::Check).len(), 5);
    assert_eq!(events_in(&server.requests()), 4);
}
