//! The MockServer's records of answers, its bounded memory, its port, its fallback, its
//! reference, the hosts it answers and its change count, through its public API and real
//! HTTP.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Endpoint, FallbackRequest, FallbackResponse, Fault, MockServer};
use crate::model::{Action, AgentId, TraceId};

const WAIT: Duration = Duration::from_secs(20);

/// Posts `body` as JSON with the server's key; answers the status and the parsed body.
async fn post(server: &MockServer, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{}{path}", server.addr()))
        .header("x-api-key", server.api_key())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn register(server: &MockServer, name: &str) -> TraceId {
    server
        .client()
        .register_agent_run(AgentId::from_name(name).unwrap(), "You test.")
        .await
        .unwrap()
        .trace_id()
}

fn event_body(trace: &str, text: &str) -> Value {
    json!({
        "event_type": "user",
        "trace_id": trace,
        "timestamp": 1_700_000_000.5,
        "content": json!({ "text": text }).to_string(),
        "schema": "{\"type\":\"object\"}",
    })
}

#[tokio::test]
async fn each_request_is_recorded_with_its_answer_and_its_run() {
    let server = MockServer::start().await.unwrap();
    let trace = register(&server, "answers").await;
    let (status, answer) = post(&server, "/v1/event", &event_body(&trace.to_string(), "hi")).await;
    assert_eq!(status, 200);
    let unknown = uuid::Uuid::new_v4().to_string();
    let (missing, _) = post(&server, "/v1/event", &event_body(&unknown, "lost")).await;
    assert_eq!(missing, 404);

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        [0, 1, 2]
    );

    let registration = requests[0].response.as_ref().unwrap();
    assert_eq!(registration.status, 200);
    assert_eq!(registration.body["trace_id"], json!(trace.to_string()));
    assert_eq!(requests[0].trace, Some(trace));

    let event = requests[1].response.as_ref().unwrap();
    assert_eq!(event.status, 200);
    assert_eq!(event.body, answer);
    assert_eq!(requests[1].trace, Some(trace));

    let lost = requests[2].response.as_ref().unwrap();
    assert_eq!(lost.status, 404);
    assert_eq!(lost.body["error"]["code"], "TRACE_NOT_FOUND");
    assert_eq!(requests[2].trace, None);
}

#[tokio::test]
async fn a_blocked_check_records_its_verdict() {
    let server = MockServer::start().await.unwrap();
    server.block_action("wire_money", "Transfers need a human.");
    let trace = register(&server, "verdicts").await;
    let verdict = server
        .client()
        .check_action(
            trace,
            &Action::new("wire_money").arguments(&json!({"to": "x"})),
        )
        .await
        .unwrap();
    assert!(!verdict.is_safe);

    let checks = server.requests_to(Endpoint::Check);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].trace, Some(trace));
    let answer = checks[0].response.as_ref().unwrap();
    assert_eq!(answer.body["is_safe"], json!(false));
    assert_eq!(answer.body["reasoning"], "Transfers need a human.");
    assert_eq!(
        answer.body["action_check_id"],
        json!(verdict.action_check_id)
    );
}

#[tokio::test]
async fn injected_faults_record_what_was_sent_or_nothing() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(1, Fault::status(503).retry_after("0"));
    let trace = register(&server, "faults").await;

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "a 503, then the retry");
    assert!(requests[0].faulted);
    assert_eq!(requests[0].response.as_ref().unwrap().status, 503);
    assert_eq!(
        requests[0].trace, None,
        "a faulted registration issued nothing"
    );
    assert_eq!(requests[1].trace, Some(trace));

    server.fail_next(1, Fault::drop_connection());
    let body = event_body(&trace.to_string(), "dropped");
    let dropped = reqwest::Client::new()
        .post(format!("{}/event", server.url()))
        .header("x-api-key", server.api_key())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    assert!(dropped.is_err());
    let last = server.requests().pop().unwrap();
    assert!(last.faulted);
    assert_eq!(last.trace, Some(trace));
    assert_eq!(last.response, None, "a dropped connection got no answer");
}

#[tokio::test]
async fn a_key_echoed_in_an_answer_is_recorded_redacted() {
    let key = "sk-echoed-KEY-777";
    let server = MockServer::builder().api_key(key).start().await.unwrap();
    server.fail_next(
        1,
        Fault::status(400).body(format!(
            r#"{{"error":{{"message":"bad key {key}","type":"x","code":"y"}}}}"#
        )),
    );
    let (status, answer) = post(&server, "/v1/register-agent-run", &json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"]["message"],
        format!("bad key {key}"),
        "sent as is"
    );
    let recorded = server.requests()[0].response.clone().unwrap();
    assert_eq!(recorded.body["error"]["message"], "bad key [redacted]");
    assert!(!format!("{:?}", server.requests()).contains("KEY-777"));
}

#[tokio::test]
async fn keep_runs_forgets_the_oldest_runs_and_their_requests() {
    let server = MockServer::builder().keep_runs(2).start().await.unwrap();
    let mut traces = Vec::new();
    for n in 0..3 {
        let trace = register(&server, &format!("kept-{n}")).await;
        let (status, _) = post(&server, "/v1/event", &event_body(&trace.to_string(), "x")).await;
        assert_eq!(status, 200);
        traces.push(trace);
    }
    assert_eq!(server.issued_traces(), traces[1..]);
    let requests = server.requests();
    assert_eq!(requests.len(), 4, "two runs of a registration and an event");
    assert!(requests.iter().all(|r| r.trace != Some(traces[0])));
    assert_eq!(requests[0].sequence, 2, "sequences survive forgetting");

    // The forgotten run's id is unknown from now on.
    let (status, answer) = post(
        &server,
        "/v1/event",
        &event_body(&traces[0].to_string(), "late"),
    )
    .await;
    assert_eq!(status, 404, "{answer}");

    // Requests that belong to no run: only the last two stay.
    for _ in 0..3 {
        let (status, _) = post(&server, "/v1/event", &json!({})).await;
        assert_eq!(status, 400);
    }
    let unattached: Vec<u64> = server
        .requests()
        .iter()
        .filter(|r| r.trace.is_none())
        .map(|r| r.sequence)
        .collect();
    assert_eq!(unattached, [8, 9]);
    assert_eq!(server.requests().len(), 6);
}

#[tokio::test]
async fn it_listens_on_the_port_it_is_given_and_fails_on_a_taken_one() {
    let first = MockServer::start().await.unwrap();
    let port = first.addr().port();
    let taken = MockServer::builder().port(port).start().await;
    assert!(taken.is_err(), "the port is in use");
    drop(first);

    // A dropped server lets its port go on its own thread, a moment later: bounded polling.
    let mut again = MockServer::builder().port(port).start().await;
    for _ in 0..500 {
        if again.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        again = MockServer::builder().port(port).start().await;
    }
    let again = again.unwrap();
    assert_eq!(again.addr().port(), port);
    assert_eq!(again.url(), format!("http://127.0.0.1:{port}/v1"));
    register(&again, "port").await;
}

#[tokio::test]
async fn the_fallback_answers_other_paths_and_is_not_recorded() {
    let server = MockServer::builder()
        .fallback(|request: FallbackRequest| async move {
            let text = format!(
                "{} {} {}",
                request.method(),
                request.uri(),
                String::from_utf8_lossy(request.body())
            );
            let mut response = FallbackResponse::new(Bytes::from(text));
            *response.status_mut() = hyper::StatusCode::ACCEPTED;
            response
        })
        .start()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("http://{}/api/things?x=1", server.addr()))
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 202);
    assert_eq!(answer.text().await.unwrap(), "POST /api/things?x=1 payload");
    assert!(server.requests().is_empty());

    // The API's paths stay the API's, unknown ones included.
    let unknown = http
        .get(format!("{}/nothing", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    assert_eq!(server.requests().len(), 1);
    register(&server, "fallback").await;
}

#[tokio::test]
async fn without_a_fallback_other_paths_are_recorded_404s() {
    let server = MockServer::start().await.unwrap();
    let answer = reqwest::get(format!("http://{}/", server.addr()))
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 404);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].response.as_ref().unwrap().status, 404);
}

#[tokio::test]
async fn changes_grow_with_every_request_answer_and_clear() {
    let server = MockServer::start().await.unwrap();
    let start = server.changes();
    assert_eq!(
        server
            .wait_for_change(start, Duration::from_millis(20))
            .await,
        start
    );

    let waiter = {
        let seen = start;
        let server = &server;
        async move { server.wait_for_change(seen, WAIT).await }
    };
    let (woke, _) = tokio::join!(waiter, register(&server, "changes"));
    assert!(woke > start);

    let after = server.changes();
    assert!(after >= start + 2, "a request and its answer");
    server.clear_requests();
    assert!(server.requests().is_empty());
    let cleared = server.wait_for_change(after, WAIT).await;
    assert!(cleared > after);
}

#[tokio::test]
async fn every_server_serves_its_reference_beside_the_api_even_with_a_fallback() {
    let server = MockServer::builder()
        .fallback(|_request: FallbackRequest| async { FallbackResponse::new("fallback".into()) })
        .start()
        .await
        .unwrap();
    let base = format!("http://{}", server.addr());
    let text = reqwest::get(format!("{base}/openapi.json"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["servers"][0]["url"], server.url());
    assert!(document["paths"]["/register-agent-run"]["post"].is_object());
    let page = reqwest::get(format!("{base}/docs")).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("<code>/check</code>"));
    // Other paths are still the fallback's, and none of these was recorded.
    let other = reqwest::get(format!("{base}/docs/more")).await.unwrap();
    assert_eq!(other.text().await.unwrap(), "fallback");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn local_host_only_refuses_other_hosts_unrecorded() {
    let server = MockServer::builder()
        .local_host_only()
        .start()
        .await
        .unwrap();
    let port = server.addr().port();
    let http = reqwest::Client::new();
    let ask = |host: String| {
        http.post(format!("{}/register-agent-run", server.url()))
            .header("host", host)
            .header("x-api-key", server.api_key())
            .header("content-type", "application/json")
            .body(
                json!({
                    "agent_id": AgentId::from_name("hosts").unwrap().to_string(),
                    "timestamp": "2024-01-15T14:30:45.123Z",
                    "system_prompt": "",
                })
                .to_string(),
            )
            .send()
    };
    let refused = ask(format!("rebound.example:{port}")).await.unwrap();
    assert_eq!(refused.status().as_u16(), 421);
    let body: Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "MISDIRECTED_REQUEST");
    assert!(server.requests().is_empty());
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        assert_eq!(ask(host).await.unwrap().status().as_u16(), 200);
    }
    assert_eq!(server.requests().len(), 2);
}
