//! Across processes: the trace written as W3C Trace Context, read back, read by
//! OpenTelemetry, and made current for a server's handler by `TraceLayer` (over loopback
//! HTTP, with a MockServer as the Fabraix API).

use std::collections::HashMap;
use std::future::poll_fn;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::routing::post;
use axum::{Json, Router};
use fabraix::propagation::{self, BAGGAGE, PropagateLayer, TRACEPARENT, TraceLayer, Trust};
use fabraix::testing::{Endpoint, MockServer, RecordedRequest};
use fabraix::{Action, AgentId, Event, EventType, Trace, TraceId};
use http::{HeaderMap, HeaderValue};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};

const WAIT: Duration = Duration::from_secs(20);

/// What the tool service's handler saw and did.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Seen {
    /// The current trace's id, if any.
    trace_id: Option<String>,
    /// Whether `log_event` took the event.
    logged: bool,
    /// The verdict on `lookup_order`, when one could be had.
    is_safe: Option<bool>,
}

/// The tool: logs what it does and checks the action, in whatever run is current.
async fn lookup() -> Json<Seen> {
    let trace = fabraix::current_trace();
    let logged = fabraix::log_event(Event::text(EventType::Tool, "looked up order 42")).is_ok();
    let action = Action::new("lookup_order")
        .description("Look an order up.")
        .arguments(&serde_json::json!({ "order_id": 42 }));
    let is_safe = fabraix::check_action(&action).await.ok().map(|v| v.is_safe);
    fabraix::flush(WAIT).await;
    Json(Seen {
        trace_id: trace.map(|t| t.trace_id().to_string()),
        logged,
        is_safe,
    })
}

/// Serves the tool behind `layer` on loopback; answers its base URL.
async fn serve<T>(layer: TraceLayer<T>) -> String
where
    T: Trust<Body> + Clone + Send + Sync + 'static,
{
    let app = Router::new().route("/lookup", post(lookup)).layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Posts to the tool with `headers`; the request is always served.
async fn call(base: &str, headers: HeaderMap) -> Seen {
    let response = reqwest::Client::new()
        .post(format!("{base}/lookup"))
        .headers(headers)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

async fn registered(server: &MockServer) -> Trace {
    server
        .client()
        .register_agent_run(AgentId::from_name("propagation-caller").unwrap(), "p")
        .await
        .unwrap()
}

fn trace_ids(requests: &[RecordedRequest]) -> Vec<&str> {
    requests
        .iter()
        .filter_map(|r| r.body["trace_id"].as_str())
        .collect()
}

#[tokio::test]
async fn extract_reads_back_what_inject_wrote() {
    let server = MockServer::start().await.unwrap();
    let trace = registered(&server).await;
    let mut headers = HeaderMap::new();
    propagation::inject(&trace, &mut headers);
    assert_eq!(propagation::extract(&headers), Some(trace));

    let traceparent = headers[TRACEPARENT].to_str().unwrap();
    let simple = trace.trace_id().as_uuid().simple().to_string();
    assert_eq!(traceparent.len(), 55);
    assert!(traceparent.starts_with(&format!("00-{simple}-")));
    assert!(traceparent.ends_with("-01"));
    assert_ne!(&traceparent[36..52], "0000000000000000");
    assert_eq!(
        headers[BAGGAGE].to_str().unwrap(),
        format!(
            "fabraix.agent_id={},fabraix.registered_at={}",
            trace.agent_id(),
            trace
                .registered_at()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    );
}

#[test]
fn existing_baggage_members_survive_an_inject() {
    let trace = millis_trace(7, 8, 1_705_329_045_123);
    let mut headers = HeaderMap::new();
    headers.append(
        BAGGAGE,
        HeaderValue::from_static("userId=alice, serverNode=DF%2028;ttl=60"),
    );
    headers.append(BAGGAGE, HeaderValue::from_static("isProduction=false"));
    propagation::inject(&trace, &mut headers);
    let baggage = headers[BAGGAGE].to_str().unwrap();
    assert!(
        baggage.starts_with("userId=alice,serverNode=DF%2028;ttl=60,isProduction=false,"),
        "{baggage}"
    );
    assert_eq!(propagation::extract(&headers), Some(trace));

    // OpenTelemetry reads every member, the Fabraix ones included.
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::propagation::TextMapPropagator;
    let cx = opentelemetry_sdk::propagation::BaggagePropagator::new().extract(&Otel(&headers));
    let otel = cx.baggage();
    assert_eq!(otel.get("userId").map(|v| v.as_str()), Some("alice"));
    assert_eq!(otel.get("serverNode").map(|v| v.as_str()), Some("DF 28"));
    assert_eq!(otel.get("isProduction").map(|v| v.as_str()), Some("false"));
    assert_eq!(
        otel.get("fabraix.agent_id").map(|v| v.to_string()),
        Some(trace.agent_id().to_string())
    );
}

/// OpenTelemetry's view of a header map, as `opentelemetry-http` gives it.
struct Otel<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for Otel<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[tokio::test]
async fn opentelemetry_reads_the_fabraix_trace_id_as_its_own() {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;

    let server = MockServer::start().await.unwrap();
    let trace = registered(&server).await;
    let mut headers = HeaderMap::new();
    propagation::inject(&trace, &mut headers);

    let cx = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&Otel(&headers));
    let span = cx.span();
    let otel = span.span_context();
    assert!(otel.is_valid() && otel.is_remote() && otel.is_sampled());
    assert_eq!(
        otel.trace_id().to_string(),
        trace.trace_id().as_uuid().simple().to_string()
    );
    assert_eq!(
        otel.trace_id().to_bytes(),
        *trace.trace_id().as_uuid().as_bytes()
    );
    assert_eq!(
        otel.span_id().to_string(),
        headers[TRACEPARENT].to_str().unwrap()[36..52]
    );
}

#[test]
fn what_opentelemetry_writes_is_read_as_the_fabraix_trace() {
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceState};
    use opentelemetry::{Context, KeyValue};

    let trace = millis_trace(
        0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
        9,
        1_705_329_045_123,
    );
    let span = SpanContext::new(
        opentelemetry::trace::TraceId::from_bytes(*trace.trace_id().as_uuid().as_bytes()),
        SpanId::from_bytes(*b"\x00\xf0\x67\xaa\x0b\xa9\x02\xb7"),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let cx = Context::new().with_remote_span_context(span).with_baggage([
        KeyValue::new("fabraix.agent_id", trace.agent_id().to_string()),
        KeyValue::new("fabraix.registered_at", "2024-01-15T14:30:45.123Z"),
        KeyValue::new("tenant", "a b"),
    ]);
    let mut carrier = HashMap::new();
    let trace_context = opentelemetry_sdk::propagation::TraceContextPropagator::new();
    trace_context.inject_context(&cx, &mut carrier);
    opentelemetry_sdk::propagation::BaggagePropagator::new().inject_context(&cx, &mut carrier);
    assert_eq!(propagation::extract(&carrier), Some(trace));
}

fn millis_trace(trace_id: u128, agent_id: u128, millis: i64) -> Trace {
    use chrono::TimeZone;
    Trace::new(
        TraceId::from_uuid(uuid::Uuid::from_u128(trace_id)),
        AgentId::from_uuid(uuid::Uuid::from_u128(agent_id)),
        chrono::Utc.timestamp_millis_opt(millis).unwrap(),
    )
}

#[tokio::test]
async fn the_handler_acts_for_the_callers_run() {
    let server = MockServer::start().await.unwrap();
    let base = serve(TraceLayer::new().client(server.client())).await;
    let trace = registered(&server).await;

    let headers = fabraix::scope(trace, async { propagation::current_headers() }).await;
    let seen = call(&base, headers).await;
    assert_eq!(
        seen,
        Seen {
            trace_id: Some(trace.trace_id().to_string()),
            logged: true,
            is_safe: Some(true),
        }
    );
    let events = server.requests_to(Endpoint::Event);
    let checks = server.requests_to(Endpoint::Check);
    let id = trace.trace_id().to_string();
    assert_eq!(trace_ids(&events), [id.as_str()]);
    assert_eq!(trace_ids(&checks), [id.as_str()]);
    assert_eq!(checks[0].body["content"], r#"{"order_id":42}"#);
    // The server acted for the caller's run: it registered none of its own.
    assert_eq!(server.requests_to(Endpoint::RegisterAgentRun).len(), 1);
}

#[tokio::test]
async fn without_a_trace_the_handler_runs_untraced() {
    let server = MockServer::start().await.unwrap();
    let base = serve(TraceLayer::new().client(server.client())).await;
    let seen = call(&base, propagation::current_headers()).await;
    assert_eq!(
        seen,
        Seen {
            trace_id: None,
            logged: false,
            is_safe: None,
        }
    );
    assert!(server.requests().is_empty());
}

/// Archive an order: a guarded tool of the tool service.
#[fabraix::action]
async fn archive_order(order_id: u64) -> Result<String, fabraix::Error> {
    Ok(format!("archived order {order_id}"))
}

// A disabled tool service used to refuse its guarded tools when a request came without a
// trace (the caller's SDK disabled too, so it sends none): no run was current.
#[tokio::test]
async fn with_the_sdk_disabled_a_request_without_a_trace_runs_as_a_disabled_agent_fn() {
    let client = fabraix::Client::builder().disabled(true).build().unwrap();
    let app = Router::new()
        .route(
            "/archive",
            post(|| async {
                let logged = fabraix::log_event(Event::text(EventType::Tool, "archiving"));
                let checked = fabraix::check_action(&Action::new("archive_order")).await;
                let archived = archive_order(42).await;
                format!("{logged:?} | {checked:?} | {archived:?}")
            }),
        )
        .layer(TraceLayer::new().client(client.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let answer = reqwest::Client::new()
        .post(format!("http://{addr}/archive"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        answer, "Ok(()) | Err(Disabled) | Ok(\"archived order 42\")",
        "the event is let go, the check says why there is no verdict, the tool runs unchecked"
    );
    // Its event and the tool's `tool` event, let go and counted.
    assert_eq!(client.stats().events.untraced, 2);
}

#[tokio::test]
async fn hostile_headers_give_no_trace_and_the_request_is_served() {
    let server = MockServer::start().await.unwrap();
    let base = serve(TraceLayer::new().client(server.client())).await;
    let trace = registered(&server).await;
    let mut valid = HeaderMap::new();
    propagation::inject(&trace, &mut valid);
    let traceparent = valid[TRACEPARENT].to_str().unwrap().to_owned();
    let baggage = valid[BAGGAGE].to_str().unwrap().to_owned();
    let simple = trace.trace_id().as_uuid().simple().to_string();

    // The unchanged headers are taken, so each case below fails for its one change.
    assert!(call(&base, valid.clone()).await.trace_id.is_some());
    server.clear_requests();

    let with = |name: &str, value: HeaderValue| {
        let mut headers = valid.clone();
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value,
        );
        headers
    };
    let text = |name: &str, value: String| with(name, HeaderValue::try_from(value).unwrap());
    let agent_id = format!("fabraix.agent_id={}", trace.agent_id());
    let cases: Vec<(&str, HeaderMap)> = vec![
        ("garbage", text(TRACEPARENT, "}{ not a traceparent".into())),
        (
            "version ff",
            text(TRACEPARENT, format!("ff{}", &traceparent[2..])),
        ),
        (
            "version 01",
            text(TRACEPARENT, format!("01{}", &traceparent[2..])),
        ),
        (
            "a longer future version",
            text(TRACEPARENT, format!("cc{}-extra", &traceparent[2..])),
        ),
        (
            "zero trace id",
            text(TRACEPARENT, traceparent.replace(&simple, &"0".repeat(32))),
        ),
        (
            "zero parent id",
            text(TRACEPARENT, format!("00-{simple}-0000000000000000-01")),
        ),
        (
            "uppercase hex",
            text(TRACEPARENT, traceparent.to_uppercase()),
        ),
        (
            "non-UTF-8 traceparent",
            with(
                TRACEPARENT,
                HeaderValue::from_bytes(
                    &[b"00-", simple.as_bytes(), b"-\xff\xfe00000000000000-01"].concat(),
                )
                .unwrap(),
            ),
        ),
        (
            "non-UTF-8 baggage",
            with(
                BAGGAGE,
                HeaderValue::from_bytes(&[baggage.as_bytes(), b",k=\xff"].concat()).unwrap(),
            ),
        ),
        (
            "100 KB baggage",
            text(BAGGAGE, format!("{baggage},pad={}", "x".repeat(100_000))),
        ),
        (
            "181 members",
            text(
                BAGGAGE,
                format!(
                    "{baggage},{}",
                    (0..179)
                        .map(|i| format!("k{i}=v"))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ),
        ),
        (
            "invalid agent id",
            text(
                BAGGAGE,
                baggage.replace(&trace.agent_id().to_string(), "support-bot"),
            ),
        ),
        (
            "no agent id",
            text(BAGGAGE, baggage.replace(&format!("{agent_id},"), "")),
        ),
        (
            "malformed member",
            text(BAGGAGE, format!("{baggage},not a member")),
        ),
        ("no baggage", {
            let mut headers = valid.clone();
            headers.remove(BAGGAGE);
            headers
        }),
    ];
    for (case, headers) in cases {
        let seen = call(&base, headers).await;
        assert_eq!(seen.trace_id, None, "{case}");
        assert!(!seen.logged, "{case}");
    }
    let mut repeated = valid.clone();
    repeated.append(TRACEPARENT, valid[TRACEPARENT].clone());
    assert_eq!(call(&base, repeated).await.trace_id, None);
    // Nothing reached the API for any of them.
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}

#[tokio::test]
async fn only_trusted_callers_traces_are_taken() {
    let server = MockServer::start().await.unwrap();
    let layer = TraceLayer::new()
        .client(server.client())
        .trust(|request: &http::Request<Body>| {
            request
                .headers()
                .get("x-caller")
                .is_some_and(|v| v == "billing")
        });
    let base = serve(layer).await;
    let trace = registered(&server).await;
    let mut headers = HeaderMap::new();
    propagation::inject(&trace, &mut headers);

    let untrusted = call(&base, headers.clone()).await;
    assert_eq!(untrusted.trace_id, None);
    assert!(server.requests_to(Endpoint::Event).is_empty());

    headers.insert("x-caller", HeaderValue::from_static("billing"));
    let trusted = call(&base, headers).await;
    assert_eq!(trusted.trace_id, Some(trace.trace_id().to_string()));
    assert_eq!(server.requests_to(Endpoint::Event).len(), 1);
}

#[tokio::test]
async fn a_tower_client_carries_the_current_run() {
    let server = MockServer::start().await.unwrap();
    let base = serve(TraceLayer::new().client(server.client())).await;
    let trace = registered(&server).await;
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut client = PropagateLayer::new().layer(http);

    let mut send = async || {
        poll_fn(|cx| client.poll_ready(cx)).await.unwrap();
        let request = http::Request::post(format!("{base}/lookup"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = client.call(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice::<Seen>(&body).unwrap()
    };
    let outside = send().await;
    assert_eq!(outside.trace_id, None);
    let inside = fabraix::scope(trace, send()).await;
    assert_eq!(inside.trace_id, Some(trace.trace_id().to_string()));
    assert_eq!(inside.is_safe, Some(true));
}

#[tokio::test]
async fn a_handler_with_its_own_agent_runs_in_its_own_run_without_a_trace() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();

    #[fabraix::agent(id = "tool-service", system_prompt = "You serve tools.", client = &client)]
    async fn own_run(client: fabraix::Client) -> Json<Seen> {
        let _ = client;
        lookup().await
    }

    let app_client = client.clone();
    let app = Router::new()
        .route("/lookup", post(move || own_run(app_client.clone())))
        .layer(TraceLayer::new().client(client));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let seen = call(&base, HeaderMap::new()).await;
    let registered = server.issued_traces();
    assert_eq!(registered.len(), 1);
    assert_eq!(seen.trace_id, Some(registered[0].to_string()));
    assert!(seen.logged);
}

fn hex(len: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            8 => proptest::char::range('0', '9'),
            8 => proptest::char::range('a', 'f'),
            1 => any::<char>(),
        ],
        len,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #[test]
    fn inject_then_extract_is_the_identity(
        trace_id in 1..=u128::MAX,
        agent_id in any::<u128>(),
        // Years 0000 to 9999: what RFC 3339 can write.
        millis in -62_167_219_200_000_i64..253_402_300_800_000,
        other in "[a-z]{1,8}=[a-zA-Z0-9%]{0,8}",
    ) {
        let trace = millis_trace(trace_id, agent_id, millis);
        let mut headers = HeaderMap::new();
        headers.insert(BAGGAGE, HeaderValue::try_from(other.clone()).unwrap());
        propagation::inject(&trace, &mut headers);
        prop_assert_eq!(propagation::extract(&headers), Some(trace));
        let baggage = headers[BAGGAGE].to_str().unwrap();
        prop_assert!(baggage.starts_with(&format!("{other},")), "{}", baggage);
    }

    #[test]
    fn extract_never_panics_on_arbitrary_text(traceparent in ".*", baggage in ".*") {
        let carrier = HashMap::from([
            (TRACEPARENT.to_owned(), traceparent),
            (BAGGAGE.to_owned(), baggage),
        ]);
        // Whatever it finds is a trace it would write back the same.
        if let Some(trace) = propagation::extract(&carrier) {
            let mut again = HashMap::new();
            propagation::inject(&trace, &mut again);
            prop_assert_eq!(propagation::extract(&again), Some(trace));
        }
    }

    #[test]
    fn extract_never_panics_on_near_misses(
        trace_id in hex(32),
        parent_id in hex(16),
        version in hex(2),
        flags in hex(2),
        agent in "[0-9a-f-]{30,40}",
        at in "[0-9T:.Z+-]{10,30}",
        extra in "[ -~]{0,20}",
    ) {
        let carrier = HashMap::from([
            (TRACEPARENT.to_owned(), format!("{version}-{trace_id}-{parent_id}-{flags}")),
            (
                BAGGAGE.to_owned(),
                format!("fabraix.agent_id={agent},fabraix.registered_at={at},{extra}"),
            ),
        ]);
        if let Some(trace) = propagation::extract(&carrier) {
            prop_assert_eq!(trace.trace_id().as_uuid().simple().to_string(), trace_id);
            prop_assert_eq!(version, "00");
        }
    }
}
