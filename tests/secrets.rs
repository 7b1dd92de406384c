//! The API key never leaks: not in any error's Display, Debug or source chain, not in the
//! Debug of a client or builder, not in anything logged through `tracing` (or `log`),
//! whatever goes wrong, even when a server echoes the key back in its bodies, headers and
//! reason phrases.
//!
//! One test drives every fault kind of `tests/faults.rs` against the three calls and the
//! exporter, with a recognisable key, captures everything the crate emits, and searches it.

mod capture;

use capture::Captured;
mod raw_http;

use std::fmt::Debug;
use std::sync::OnceLock;
use std::time::Duration;

use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{Action, AgentId, Client, ClientBuilder, Error, Event, EventType, TraceId};
use raw_http::{RawRequest, RawServer, Reply};
use serde_json::json;

const KEY: &str = "sk-live-LEAKCANARY-7f3a9";
/// The part of the key that must show up nowhere, whole key or not.
const CANARY: &str = "LEAKCANARY";

const ALWAYS: usize = 10_000;
const PROMPT: &str = "You are the secrets test agent.";

/// Installs, once, a TRACE-level subscriber as the global default (with `log` records
/// forwarded into it), so output from every thread (the SDK's runtime included) is caught.
fn capture_everything() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            use tracing_subscriber::util::SubscriberInitExt;
            let captured = Captured::default();
            tracing_subscriber::fmt()
                .with_writer(captured.clone())
                .with_max_level(tracing::Level::TRACE)
                .finish()
                .try_init()
                .expect("the only global subscriber of this binary");
            captured
        })
        .clone()
}

/// Everything the crate showed, labelled by where it came from.
#[derive(Default)]
struct Evidence {
    items: Vec<(String, String)>,
    errors: usize,
}

impl Evidence {
    fn text(&mut self, label: impl Into<String>, text: String) {
        self.items.push((label.into(), text));
    }

    fn debug(&mut self, label: &str, value: &impl Debug) {
        self.text(format!("{label} (debug)"), format!("{value:?}"));
        self.text(format!("{label} (pretty debug)"), format!("{value:#?}"));
    }

    /// An error: Display, Debug, and every error in its source chain.
    fn error(&mut self, label: &str, error: &Error) {
        self.errors += 1;
        self.text(format!("{label} (display)"), error.to_string());
        self.debug(label, error);
        let mut source = std::error::Error::source(error);
        let mut depth = 0;
        while let Some(cause) = source {
            depth += 1;
            self.text(
                format!("{label} source {depth}"),
                format!("{cause} / {cause:?}"),
            );
            source = cause.source();
        }
    }

    fn outcome<T: Debug>(&mut self, label: &str, outcome: Result<T, Error>) {
        match outcome {
            Ok(value) => self.debug(label, &value),
            Err(error) => self.error(label, &error),
        }
    }

    fn all_text(&self) -> String {
        self.items.iter().map(|(_, text)| text.as_str()).collect()
    }
}

fn agent() -> AgentId {
    AgentId::from_name("secrets").unwrap()
}

fn action() -> Action {
    Action::new("transfer_funds")
        .description("Move money between two accounts.")
        .parameters(json!({
            "type": "object",
            "properties": { "to": { "type": "string" } },
            "required": ["to"]
        }))
        .arguments(&json!({ "to": "acct-9" }))
}

fn quick(builder: ClientBuilder) -> ClientBuilder {
    builder
        .max_retries(1)
        .timeout(Duration::from_millis(400))
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
        .max_retry_after(Duration::from_millis(20))
}

#[derive(Debug, Clone, Copy)]
enum Call {
    Register,
    Event,
    Check,
}

const CALLS: [Call; 3] = [Call::Register, Call::Event, Call::Check];

impl Call {
    fn endpoint(self) -> Endpoint {
        match self {
            Call::Register => Endpoint::RegisterAgentRun,
            Call::Event => Endpoint::Event,
            Call::Check => Endpoint::Check,
        }
    }

    /// Runs the call and records what it came to.
    async fn run(self, client: &Client, trace_id: TraceId, label: &str, evidence: &mut Evidence) {
        let label = format!("{label} {self:?}");
        match self {
            Call::Register => {
                let outcome = client.register_agent_run(agent(), PROMPT).await;
                evidence.outcome(&label, outcome);
            }
            Call::Event => {
                let event = Event::text(EventType::User, "hello");
                let outcome = client.send_event(trace_id, &event).await;
                evidence.outcome(&label, outcome);
            }
            Call::Check => {
                let outcome = client.check_action(trace_id, &action()).await;
                evidence.outcome(&label, outcome);
            }
        }
    }
}

/// The MockServer's faults: every kind it can make.
fn mock_faults() -> Vec<(&'static str, Fault)> {
    let date = (chrono::Utc::now() + chrono::Duration::seconds(1))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    vec![
        ("429 retry-after seconds", Fault::status(429).retry_after("1")),
        ("429 retry-after date", Fault::status(429).retry_after(date)),
        ("429", Fault::status(429)),
        ("500", Fault::status(500)),
        (
            "502 html",
            Fault::status(502)
                .body("<html><body><h1>502 Bad Gateway</h1></body></html>")
                .content_type("text/html"),
        ),
        ("503", Fault::status(503)),
        ("504", Fault::status(504)),
        (
            "400 documented",
            Fault::status(400).body(
                r#"{"error":{"message":"Invalid agent_id format","type":"validation_error","code":"INVALID_AGENT_ID"}}"#,
            ),
        ),
        (
            "400 plain",
            Fault::status(400)
                .body("missing field")
                .content_type("text/plain"),
        ),
        ("401", Fault::status(401)),
        ("403", Fault::status(403)),
        ("404", Fault::status(404)),
        ("closed", Fault::drop_connection()),
        ("slow", Fault::delay(Duration::from_secs(5))),
        ("malformed", Fault::malformed_body()),
        ("bad field", Fault::status(200).body(r#"{"trace_id":"nope","event_id":"nope","is_safe":"nope"}"#)),
        ("empty", Fault::status(200).body("")),
    ]
}

/// Ways a raw server echoes the key it was sent.
#[derive(Debug, Clone, Copy)]
enum Echo {
    /// 401, the documented body with the key in every field, and in two headers.
    Unauthorized,
    /// 400 in plain text.
    PlainText,
    /// 400 with the key as the reason phrase.
    ReasonPhrase,
    /// 502 HTML page.
    GatewayPage,
    /// 429 with the key as `Retry-After`.
    RateLimited,
    /// 503 with the key in the body, 155 characters in (across a snippet's cut).
    AcrossTheCut,
    /// 200, not JSON.
    Garbage,
    /// 200 JSON with the key where a UUID, a bool or a time belongs.
    WrongType,
    /// 200 whose body stops short, after the key.
    Truncated,
    /// 200 declaring a body over the cap, starting with the key.
    Oversized,
    /// A reset after reading the request (and its key).
    Reset,
    /// 401 whose body stops short, after the key.
    TruncatedError,
    /// 503 declaring a body over the cap, starting with the key.
    OversizedError,
}

const ECHOES: [Echo; 13] = [
    Echo::Unauthorized,
    Echo::PlainText,
    Echo::ReasonPhrase,
    Echo::GatewayPage,
    Echo::RateLimited,
    Echo::AcrossTheCut,
    Echo::Garbage,
    Echo::WrongType,
    Echo::Truncated,
    Echo::Oversized,
    Echo::Reset,
    Echo::TruncatedError,
    Echo::OversizedError,
];

fn echo(mode: Echo, request: &RawRequest) -> Reply {
    let key = request.header("x-api-key").unwrap_or_default().to_owned();
    let json = [("Content-Type", "application/json")];
    let bytes = match mode {
        Echo::Unauthorized => raw_http::response(
            "401 Unauthorized",
            &[
                ("Content-Type", "application/json"),
                ("WWW-Authenticate", &format!("ApiKey realm=\"{key}\"")),
                ("X-Echo-Key", &key),
            ],
            json!({ "error": { "message": format!("invalid key {key}"), "type": key, "code": key } })
                .to_string()
                .as_bytes(),
        ),
        Echo::PlainText => raw_http::response(
            "400 Bad Request",
            &[("Content-Type", "text/plain")],
            format!("the key {key} is not allowed here").as_bytes(),
        ),
        Echo::ReasonPhrase => raw_http::response(&format!("400 {key}"), &json, b"{}"),
        Echo::GatewayPage => raw_http::response(
            "502 Bad Gateway",
            &[("Content-Type", "text/html")],
            format!("<html><head><title>{key}</title></head><body>\n{key}\n</body></html>")
                .as_bytes(),
        ),
        Echo::RateLimited => raw_http::response(
            "429 Too Many Requests",
            &[("Retry-After", &key), ("Content-Type", "text/plain")],
            key.as_bytes(),
        ),
        Echo::AcrossTheCut => raw_http::response(
            "503 Service Unavailable",
            &[("Content-Type", "text/plain")],
            format!("{}{key} and the rest", "x".repeat(155)).as_bytes(),
        ),
        Echo::Garbage => raw_http::ok_json(&format!("not json: {key}")),
        Echo::WrongType => raw_http::ok_json(
            &json!({
                "trace_id": key, "event_id": key, "is_safe": key, "reasoning": key,
                "action_check_id": key, "timestamp": key,
            })
            .to_string(),
        ),
        Echo::Truncated => {
            let body = format!("{{\"trace_id\":\"{key}");
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len() + 100
            )
            .into_bytes()
        }
        Echo::Oversized => {
            let mut bytes = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{key}",
                2 * 1024 * 1024
            )
            .into_bytes();
            bytes.extend_from_slice(&[b' '; 4096]);
            return Reply::BytesThenHold(bytes);
        }
        Echo::Reset => return Reply::Reset,
        Echo::TruncatedError => {
            let body = format!("{{\"error\":{{\"message\":\"bad key {key}");
            format!(
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len() + 100
            )
            .into_bytes()
        }
        Echo::OversizedError => {
            let mut bytes = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{key}",
                2 * 1024 * 1024
            )
            .into_bytes();
            bytes.extend_from_slice(&[b' '; 4096]);
            return Reply::BytesThenHold(bytes);
        }
    };
    Reply::Bytes(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_never_leaks() {
    let captured = capture_everything();
    let mut evidence = Evidence::default();

    // Every MockServer fault, against each call and the exporter.
    let server = MockServer::builder().api_key(KEY).start().await.unwrap();
    let trace_id = server
        .client()
        .register_agent_run(agent(), PROMPT)
        .await
        .unwrap()
        .trace_id();
    let client = quick(server.client_builder()).build().unwrap();
    for (label, fault) in mock_faults() {
        for call in CALLS {
            server.clear_faults();
            server.fail_next(ALWAYS, fault.clone().on(call.endpoint()));
            call.run(&client, trace_id, label, &mut evidence).await;
        }
        // The exporter: a few misbehaving answers, then the API's own.
        server.clear_faults();
        server.fail_next(2, fault.clone().on(Endpoint::Event));
        let exporting = quick(server.client_builder()).build().unwrap();
        exporting
            .queue_event(trace_id, Event::text(EventType::User, "queued"))
            .unwrap();
        let flushed = exporting.flush(Duration::from_secs(20)).await;
        evidence.text(
            format!("{label} exporter"),
            format!("flushed {flushed}: {:?}", exporting.stats().events),
        );
        evidence.debug(&format!("{label} exporting client"), &exporting);
    }
    server.clear_faults();

    // Nothing listening.
    server.pause().unwrap();
    for call in CALLS {
        call.run(&client, trace_id, "refused", &mut evidence).await;
    }
    server.resume().unwrap();
    // Successes too: what is logged on the way must not hold the key either.
    for call in CALLS {
        call.run(&client, trace_id, "success", &mut evidence).await;
    }
    evidence.debug("recorded requests", &server.requests());
    evidence.debug("mock server", &server);
    evidence.debug("client", &client);

    // Servers that echo the key back.
    let mut echoed_servers = Vec::new();
    for mode in ECHOES {
        let raw = RawServer::start(move |request| echo(mode, request));
        let client = quick(Client::builder().api_key(KEY).base_url(raw.url()))
            .build()
            .unwrap();
        let trace_id = TraceId::from_uuid(uuid::Uuid::new_v4());
        for call in CALLS {
            call.run(&client, trace_id, &format!("echo {mode:?}"), &mut evidence)
                .await;
        }
        echoed_servers.push(raw);

        // The exporter, against the same server after two echoes.
        let raw = RawServer::start(move |request| {
            if request.index < 2 {
                echo(mode, request)
            } else {
                Reply::Bytes(raw_http::documented_success(request))
            }
        });
        let exporting = quick(Client::builder().api_key(KEY).base_url(raw.url()))
            .build()
            .unwrap();
        exporting
            .queue_event(trace_id, Event::text(EventType::User, "queued"))
            .unwrap();
        let flushed = exporting.flush(Duration::from_secs(20)).await;
        evidence.text(
            format!("echo {mode:?} exporter"),
            format!("flushed {flushed}: {:?}", exporting.stats().events),
        );
        echoed_servers.push(raw);
    }
    // The servers did receive the key, so they had it to echo.
    for raw in &echoed_servers {
        assert!(
            raw.requests()
                .iter()
                .all(|r| r.header("x-api-key") == Some(KEY)),
            "a request without the key"
        );
    }

    // Agent fns whose registration fails against an echoing server, in each failure mode.
    let raw = RawServer::start(|request| echo(Echo::Unauthorized, request));
    let echoing = quick(Client::builder().api_key(KEY).base_url(raw.url()))
        .build()
        .unwrap();

    #[fabraix::agent(id = "secrets", system_prompt = PROMPT, client = client)]
    async fn continues(client: &Client) -> bool {
        fabraix::current_trace().is_none()
    }
    assert!(continues(&echoing).await, "the run had a trace");

    #[fabraix::agent(id = "secrets", system_prompt = PROMPT, client = client, on_failure = "error")]
    async fn errs(client: &Client) -> Result<(), Error> {
        Ok(())
    }
    let error = errs(&echoing).await.unwrap_err();
    evidence.error("on_failure = error", &error);

    #[fabraix::agent(id = "secrets", system_prompt = PROMPT, client = &client, on_failure = "panic")]
    async fn panics(client: Client) {}
    let panicked = tokio::spawn(panics(echoing.clone())).await.unwrap_err();
    let payload = panicked.into_panic();
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a panic message");
    assert!(message.contains("401"), "{message}");
    evidence.text("on_failure = panic", message);

    // Configuration: errors about a key or a URL, and builders holding the key.
    let builders = [
        Client::builder().api_key(format!("{KEY} and a space")),
        Client::builder().api_key(format!("{KEY}\n")),
        Client::builder().api_key(format!("é{KEY}")),
        Client::builder().api_key(format!("{KEY}\u{0}")),
        Client::builder().api_key("   "),
        Client::builder()
            .api_key(KEY)
            .base_url("http://example.com/v1"),
        Client::builder().api_key(KEY).base_url("not a url"),
        Client::builder()
            .api_key(KEY)
            .base_url("ftp://127.0.0.1/v1"),
        Client::builder()
            .api_key(KEY)
            .base_url("https://user:password@api.fabraix.com/v1"),
        Client::builder().api_key(KEY).timeout(Duration::ZERO),
        Client::builder().api_key(KEY).queue_capacity(0),
        Client::builder().api_key(KEY),
        Client::builder().api_key(KEY).disabled(true),
    ];
    for (i, builder) in builders.into_iter().enumerate() {
        evidence.debug(&format!("builder {i}"), &builder);
        let outcome = builder.build();
        evidence.outcome(&format!("build {i}"), outcome);
    }

    // Flush what the SDK's runtime may still be logging, then gather the logs.
    client.flush(Duration::from_secs(5)).await;
    let logs = captured.text();
    evidence.text("tracing", logs.clone());

    // Something was captured, of every kind: the check cannot pass by seeing nothing.
    let all = evidence.all_text();
    assert!(evidence.errors >= 90, "only {} errors", evidence.errors);
    for expected in [
        "fabraix api error 401",
        "fabraix api error 502",
        "rate limited",
        "transport error",
        "timed out",
        "could not decode",
        "larger than",
        "invalid fabraix configuration",
        "[redacted]",
    ] {
        assert!(all.contains(expected), "nothing captured says `{expected}`");
    }
    for expected in [
        "retrying",
        "fabraix api unavailable",
        "fabraix event not delivered",
        "fabraix agent run not registered",
    ] {
        assert!(
            logs.contains(expected),
            "no log line says `{expected}`:\n{logs}"
        );
    }

    // And the key is nowhere in it.
    for (label, text) in &evidence.items {
        assert!(
            !text.contains(KEY) && !text.contains(CANARY),
            "the key leaked in {label}: {text}"
        );
    }
    eprintln!(
        "searched {} items ({} errors, {} bytes of logs)",
        evidence.items.len(),
        evidence.errors,
        logs.len()
    );
}

// Reproduces: the configured key, pasted by mistake into the base URL (or into
// `FABRAIX_BASE_URL`), is quoted whole by the configuration error and by the builder's
// Debug.
#[test]
fn a_key_pasted_into_the_base_url_is_not_quoted() {
    let builders = [
        Client::builder().api_key(KEY).base_url(KEY),
        Client::builder()
            .api_key(KEY)
            .base_url(format!("https://api.fabraix.com/v1?api_key={KEY}")),
        Client::builder()
            .api_key(KEY)
            .base_url(format!("http://api.fabraix.com/{KEY}/v1")),
    ];
    for builder in builders {
        let shown_builder = format!("{builder:?}");
        let error = builder.build().unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        let shown = format!("{error} {error:?} {shown_builder}");
        assert!(!shown.contains(CANARY), "{shown}");
    }
}

// Regression: a 307 from the API made the client resend `x-api-key` and the body to the
// redirect's target, another host, over plain http.
#[test]
fn a_redirect_is_an_error_and_the_key_never_follows_it() {
    let elsewhere = raw_http::RawServer::start(|_| raw_http::Reply::Bytes(raw_http::ok_json("{}")));
    let target = format!("{}/register-agent-run", elsewhere.url());
    let api = raw_http::RawServer::start(move |_| {
        raw_http::Reply::Bytes(raw_http::response(
            "307 Temporary Redirect",
            &[("location", target.as_str())],
            b"",
        ))
    });
    let client = Client::builder()
        .api_key(KEY)
        .base_url(api.url())
        .max_retries(2)
        .build()
        .unwrap();
    let outcome = client.register_agent_run_blocking("redirected", "p");
    assert!(
        matches!(outcome, Err(Error::Api { status: 307, .. })),
        "{outcome:?}"
    );
    assert_eq!(api.requests().len(), 1, "a 3xx is not retried");
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}
