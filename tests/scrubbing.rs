//! No output carries the key, whatever a server sends, in any case or escaping: not the
//! verdict's words (its reasoning, its check id), not an error body (its documented
//! message, or a snippet of whatever came, with and without JSON `\u` escapes), not a
//! redirect, not a base URL holding the key (in its path, or lowercased in its host), not
//! any error's source chain under `{}` or `{:?}`, and not anything logged through
//! `tracing` at TRACE (`log` records included).
//!
//! A URL holding the key is never sent at all: the http stack logs the URLs it connects
//! to, beyond any scrubbing.
//!
//! One test, because it installs the process's subscriber.

mod capture;
mod raw_http;

use std::error::Error as _;
use std::fmt::Debug;
use std::net::TcpListener;
use std::time::Duration;

use capture::Captured;
use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{Action, AgentId, Client, ClientBuilder, Error, Event, EventType, TraceId, Verdict};
use raw_http::{RawRequest, RawServer, Reply};

/// Mixed case, so that a copy whose case changed (a URL's host is lowercased) is caught.
const KEY: &str = "sk-Scrub-LeakCanary-93c1e";
/// The part of the key no output may hold, searched for in lowercased text.
const CANARY: &str = "leakcanary";
const PROMPT: &str = "You are the scrubbing test agent.";

/// `text` with every character written as a JSON `\u` escape.
fn escaped(text: &str) -> String {
    text.chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect()
}

/// The key with one letter written as a JSON escape, as a server's encoder may do.
fn half_escaped() -> String {
    KEY.replacen('C', "\\u0043", 1)
}

/// Every way a server may quote the key inside a JSON string.
fn quoted_key() -> String {
    format!(
        "{KEY} / {} / {} / {} / {}",
        KEY.to_ascii_lowercase(),
        KEY.to_ascii_uppercase(),
        escaped(KEY),
        half_escaped()
    )
}

/// Everything the SDK showed, labelled by where it came from.
#[derive(Default)]
struct Evidence {
    items: Vec<(String, String)>,
    errors: usize,
}

impl Evidence {
    fn text(&mut self, label: impl Into<String>, text: impl Into<String>) {
        self.items.push((label.into(), text.into()));
    }

    fn debug(&mut self, label: &str, value: &impl Debug) {
        self.text(format!("{label} (debug)"), format!("{value:?}"));
        self.text(format!("{label} (pretty debug)"), format!("{value:#?}"));
    }

    /// An error under `{}`, `{:?}` and `{:#?}`, and every error of its source chain under
    /// `{}` and `{:?}`.
    fn error(&mut self, label: &str, error: &Error) {
        self.errors += 1;
        self.text(format!("{label} (display)"), error.to_string());
        self.debug(label, error);
        let mut source = error.source();
        let mut depth = 0;
        while let Some(cause) = source {
            depth += 1;
            self.text(format!("{label} source {depth}"), cause.to_string());
            self.text(
                format!("{label} source {depth} (debug)"),
                format!("{cause:?}"),
            );
            source = cause.source();
        }
    }

    fn outcome<T: Debug>(&mut self, label: &str, outcome: &Result<T, Error>) {
        match outcome {
            Ok(value) => self.debug(label, value),
            Err(error) => self.error(label, error),
        }
    }

    fn all_text(&self) -> String {
        self.items
            .iter()
            .map(|(_, text)| text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Panics at the first item that holds the key in any case, raw, JSON-escaped or
    /// percent-encoded.
    fn assert_no_key(&self) {
        for (label, text) in &self.items {
            let leaks: Vec<&str> = text.lines().filter(|line| holds_canary(line)).collect();
            assert!(
                !holds_canary(text),
                "the key leaked in {label}: {}",
                leaks.join("\n")
            );
        }
    }
}

/// Whether `text` holds the canary, in any case, once `\uXXXX` escapes and `%XX`
/// encodings are read.
fn holds_canary(text: &str) -> bool {
    let decoded = percent_decoded(&json_unescaped(text)).to_ascii_lowercase();
    text.to_ascii_lowercase().contains(CANARY) || decoded.contains(CANARY)
}

fn json_unescaped(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\\u") {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 2..at + 6)
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .and_then(char::from_u32);
        match code {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 6..];
            }
            None => {
                out.push_str("\\u");
                rest = &rest[at + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text
            .get(i + 1..i + 3)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn capture_everything() -> Captured {
    use tracing_subscriber::util::SubscriberInitExt;
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish()
        .try_init()
        .expect("the only subscriber of this binary");
    captured
}

fn quick(builder: ClientBuilder) -> ClientBuilder {
    builder
        .max_retries(1)
        .timeout(Duration::from_secs(2))
        .backoff(Duration::from_millis(1), Duration::from_millis(10))
        .max_retry_after(Duration::from_millis(20))
        .flush_timeout(Duration::from_secs(5))
}

fn agent() -> AgentId {
    AgentId::from_name("scrubbing").unwrap()
}

/// Registers, sends an event, checks an action and queues an event (flushed) through
/// `client`, recording what each came to.
async fn every_call(client: &Client, label: &str, evidence: &mut Evidence) {
    let trace_id = TraceId::from_uuid(uuid::Uuid::new_v4());
    let registered = client.register_agent_run(agent(), PROMPT).await;
    evidence.outcome(&format!("{label}: register"), &registered);
    let sent = client
        .send_event(trace_id, &Event::text(EventType::User, "hello"))
        .await;
    evidence.outcome(&format!("{label}: send_event"), &sent);
    let checked = client
        .check_action(trace_id, &Action::new("transfer_funds"))
        .await;
    evidence.outcome(&format!("{label}: check"), &checked);
    let queued = client.queue_event(trace_id, Event::text(EventType::User, "queued"));
    evidence.outcome(&format!("{label}: queue_event"), &queued);
    // Bounded: an exporter facing an outage keeps its event and retries it.
    let flushed = client.flush(Duration::from_secs(3)).await;
    evidence.text(
        format!("{label}: exporter"),
        format!("flushed {flushed}: {:?}", client.stats().events),
    );
    evidence.debug(&format!("{label}: client"), client);
}

/// The check's answer: blocks `block_me`, approves anything else, and quotes the key in
/// its reasoning and its id.
fn verdict_answer(request: &RawRequest) -> Reply {
    if request.path() != "/v1/check" {
        return Reply::Bytes(raw_http::documented_success(request));
    }
    let blocked = String::from_utf8_lossy(&request.body).contains("block_me");
    let body = format!(
        r#"{{"is_safe":{},"reasoning":"the key is {}","action_check_id":"chk-{}","timestamp":{}}}"#,
        !blocked,
        quoted_key(),
        escaped(KEY),
        chrono::Utc::now().timestamp_millis() as f64 / 1000.0
    );
    Reply::Bytes(raw_http::ok_json(&body))
}

/// Approve me.
#[fabraix::action]
async fn approve_me(note: String) -> Result<String, Error> {
    Ok(note)
}

/// Block me.
#[fabraix::action]
async fn block_me(note: String) -> Result<String, Error> {
    Ok(note)
}

async fn verdicts(evidence: &mut Evidence) -> RawServer {
    let server = RawServer::start(verdict_answer);
    let client = quick(Client::builder().api_key(KEY).base_url(server.url()))
        .build()
        .unwrap();
    let trace = client.register_agent_run(agent(), PROMPT).await.unwrap();

    for name in ["approve_me", "block_me"] {
        let verdict = client
            .check_action(trace.trace_id(), &Action::new(name))
            .await;
        evidence.outcome(&format!("verdict {name}"), &verdict);
        let required = verdict.and_then(Verdict::require_safe);
        evidence.outcome(&format!("verdict {name} required safe"), &required);
        let blocking = client.check_action_blocking(trace.trace_id(), &Action::new(name));
        evidence.outcome(&format!("verdict {name} blocking"), &blocking);
    }
    let blocked = client
        .check_action(trace.trace_id(), &Action::new("block_me"))
        .await
        .and_then(Verdict::require_safe)
        .unwrap_err();
    assert!(matches!(blocked, Error::Blocked { .. }), "{blocked:?}");

    // Guarded tools in an agent fn: the approved one logs its check id in a `tool` event.
    #[fabraix::agent(id = "scrubbing", system_prompt = PROMPT, client = client)]
    async fn tools(client: &Client) -> (Result<String, Error>, Result<String, Error>) {
        (approve_me("ok".into()).await, block_me("no".into()).await)
    }
    let (approved, refused) = tools(&client).await;
    assert_eq!(approved.as_deref().ok(), Some("ok"));
    assert!(matches!(refused, Err(Error::Blocked { .. })), "{refused:?}");
    evidence.outcome("guarded tool approved", &approved);
    evidence.outcome("guarded tool blocked", &refused);
    evidence.debug("verdict client", &client.stats().events);
    server
}

/// Error bodies quoting the key, documented or not, escaped or not.
fn error_faults() -> Vec<(&'static str, Fault)> {
    let documented = |message: String| {
        serde_json::json!({ "error": { "message": message, "type": "validation_error", "code": "BAD_KEY" } })
            .to_string()
    };
    let raw_documented = format!(
        r#"{{"error":{{"message":"bad key {}","type":"{}","code":"{}"}}}}"#,
        quoted_key(),
        escaped(KEY),
        half_escaped()
    );
    vec![
        (
            "documented",
            Fault::status(400).body(documented(format!("bad key {KEY}"))),
        ),
        (
            "documented escaped",
            Fault::status(401).body(raw_documented),
        ),
        (
            "plain",
            Fault::status(503)
                .body(format!(
                    "upstream refused {KEY} ({})",
                    KEY.to_ascii_lowercase()
                ))
                .content_type("text/plain"),
        ),
        (
            "plain escaped",
            Fault::status(503)
                .body(format!(
                    "upstream refused {} and {}",
                    escaped(KEY),
                    half_escaped()
                ))
                .content_type("text/plain"),
        ),
        (
            "undocumented json escaped",
            Fault::status(502).body(format!(r#"{{"detail":"{}"}}"#, quoted_key())),
        ),
        (
            "empty message, escaped body",
            Fault::status(403).body(format!(
                r#"{{"error":{{"message":" "}},"echo":"{}"}}"#,
                escaped(KEY)
            )),
        ),
        (
            "success not decodable, escaped",
            Fault::status(200).body(format!(
                r#"{{"trace_id":"{0}","event_id":"{0}","is_safe":"{0}","timestamp":"{1}"}}"#,
                escaped(KEY),
                half_escaped()
            )),
        ),
        (
            "success not json",
            Fault::status(200).body(format!("<{}> {}", KEY.to_ascii_uppercase(), escaped(KEY))),
        ),
    ]
}

async fn error_bodies(evidence: &mut Evidence) {
    let server = MockServer::builder().api_key(KEY).start().await.unwrap();
    for (label, fault) in error_faults() {
        for endpoint in [Endpoint::RegisterAgentRun, Endpoint::Event, Endpoint::Check] {
            server.clear_faults();
            server.fail_next(10_000, fault.clone().on(endpoint));
            let client = quick(server.client_builder()).build().unwrap();
            every_call(&client, &format!("body {label} on {endpoint:?}"), evidence).await;
        }
    }
    server.clear_faults();
}

/// Connections reset or refused: transport errors, whose whole chain is shown.
async fn transport_failures(evidence: &mut Evidence) -> RawServer {
    let reset = RawServer::start(|_| Reply::Reset);
    let client = quick(Client::builder().api_key(KEY).base_url(reset.url()))
        .build()
        .unwrap();
    every_call(&client, "reset", evidence).await;
    assert!(!reset.requests().is_empty());

    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = quick(
        Client::builder()
            .api_key(KEY)
            .base_url(format!("http://127.0.0.1:{port}/v1")),
    )
    .build()
    .unwrap();
    every_call(&refused, "refused", evidence).await;
    reset
}

/// The key in the base URL: in its path, in its host (which URL parsing lowercases),
/// percent-encoded. The http stack logs the URLs it connects to, beyond any scrubbing, so
/// such a URL is refused and never sent, also when the key in it is only remembered after
/// the client was built (by building another client with it).
async fn key_in_the_url(evidence: &mut Evidence) -> RawServer {
    let server = RawServer::start(|request| Reply::Bytes(raw_http::documented_success(request)));
    let encoded: String = KEY.bytes().map(|b| format!("%{b:02x}")).collect();
    for url in [
        server.url().replace("/v1", &format!("/{KEY}/v1")),
        server
            .url()
            .replace("/v1", &format!("/{}/v1", KEY.to_ascii_uppercase())),
        server.url().replace("/v1", &format!("/{encoded}/v1")),
        format!("https://{KEY}.example/v1"),
    ] {
        let builder = Client::builder().api_key(KEY).base_url(&url);
        evidence.debug(&format!("key in the url: builder {url}"), &builder);
        let built = builder.build();
        match &built {
            Err(Error::Config(message)) => {
                assert!(message.contains("holds an api key"), "{message}")
            }
            other => panic!("{url}: expected a config error, got {other:?}"),
        }
        evidence.outcome(&format!("key in the url: {url}"), &built);
    }

    // Built while the key in its URL was not yet known to be one.
    const LATE: &str = "sk-Late-LeakCanary-0b7d2";
    let in_path = quick(
        Client::builder()
            .api_key("sk-early-key")
            .base_url(server.url().replace("/v1", &format!("/{LATE}/v1"))),
    )
    .build()
    .unwrap();
    let in_host = quick(
        Client::builder()
            .api_key("sk-early-key")
            .base_url(format!("https://{LATE}.example/v1")),
    )
    .build()
    .unwrap();
    // One used before its key is known: the search for keys is redone after each key
    // remembered, not done once for good.
    const USED_EARLY: &str = "sk-Late-UsedEarly-7f31a";
    let early_server =
        RawServer::start(|request| Reply::Bytes(raw_http::documented_success(request)));
    let used_early = quick(
        Client::builder().api_key("sk-early-key").base_url(
            early_server
                .url()
                .replace("/v1", &format!("/{USED_EARLY}/v1")),
        ),
    )
    .build()
    .unwrap();
    // Sent (whatever the stand-in answers to this path): its URL held no known key yet.
    let first = used_early.register_agent_run(agent(), PROMPT).await;
    assert!(!matches!(first, Err(Error::Config(_))), "{first:?}");
    assert_eq!(early_server.requests().len(), 1);
    let _later = Client::builder().api_key(LATE).build().unwrap();
    let _used_early_known = Client::builder().api_key(USED_EARLY).build().unwrap();
    let refused = used_early.register_agent_run(agent(), PROMPT).await;
    assert!(matches!(refused, Err(Error::Config(_))), "{refused:?}");
    evidence.outcome("key in the url: known after a first request", &refused);
    assert_eq!(
        early_server.requests().len(),
        1,
        "sent only before its key was known"
    );
    for (label, client) in [
        ("late key in the path", &in_path),
        ("late key in the host", &in_host),
    ] {
        every_call(client, label, evidence).await;
        let registered = client.register_agent_run(agent(), PROMPT).await;
        assert!(
            matches!(registered, Err(Error::Config(_))),
            "{registered:?}"
        );
    }
    assert!(server.requests().is_empty(), "a url holding a key was sent");
    server
}

/// Redirects whose target and body quote the key; none is followed.
async fn redirects(evidence: &mut Evidence) -> Vec<RawServer> {
    let elsewhere = RawServer::start(|request| Reply::Bytes(raw_http::documented_success(request)));
    let target = format!("{}/{KEY}", elsewhere.url());
    let to_host = RawServer::start(|request| {
        Reply::Bytes(raw_http::response(
            "307 Temporary Redirect",
            &[
                (
                    "Location",
                    &format!("https://{}.example{}", KEY, request.path()),
                ),
                ("Content-Type", "text/html"),
            ],
            format!(
                "<a href=\"https://{}.example/\">moved to {}</a>",
                KEY.to_ascii_lowercase(),
                escaped(KEY)
            )
            .as_bytes(),
        ))
    });
    let to_path = RawServer::start(move |_| {
        Reply::Bytes(raw_http::response(
            "301 Moved Permanently",
            &[("Location", &target), ("Content-Type", "application/json")],
            format!(r#"{{"moved_to":"{}"}}"#, quoted_key()).as_bytes(),
        ))
    });
    for (label, server) in [("to a host", &to_host), ("to a path", &to_path)] {
        let client = quick(Client::builder().api_key(KEY).base_url(server.url()))
            .build()
            .unwrap();
        every_call(&client, &format!("redirect {label}"), evidence).await;
        let registered = client.register_agent_run(agent(), PROMPT).await;
        assert!(
            matches!(
                registered,
                Err(Error::Api {
                    status: 301 | 307,
                    ..
                })
            ),
            "{registered:?}"
        );
    }
    assert!(elsewhere.requests().is_empty(), "a redirect was followed");
    vec![elsewhere, to_host, to_path]
}

/// Agent fns whose registration got a 401 quoting the key: the check inside names it.
async fn failed_runs(evidence: &mut Evidence) -> RawServer {
    let server = RawServer::start(|_| {
        Reply::Bytes(raw_http::response(
            "401 Unauthorized",
            &[("Content-Type", "application/json")],
            format!(
                r#"{{"error":{{"message":"key {} is revoked","type":"authentication_error","code":"INVALID_API_KEY"}}}}"#,
                quoted_key()
            )
            .as_bytes(),
        ))
    });
    let client = quick(Client::builder().api_key(KEY).base_url(server.url()))
        .build()
        .unwrap();

    #[fabraix::agent(id = "scrubbing", system_prompt = PROMPT, client = client)]
    async fn continues(client: &Client) -> (Result<Verdict, Error>, Result<String, Error>) {
        (
            fabraix::check_action(&Action::new("approve_me")).await,
            approve_me("unchecked".into()).await,
        )
    }
    let (checked, tool) = continues(&client).await;
    for (label, error) in [
        ("check in a failed run", checked.err()),
        ("tool in a failed run", tool.err()),
    ] {
        let error = error.expect("refused: the run has no trace");
        assert!(matches!(error, Error::Unregistered { .. }), "{error:?}");
        assert!(error.to_string().contains("401"), "{error}");
        evidence.error(label, &error);
    }

    #[fabraix::agent(id = "scrubbing", system_prompt = PROMPT, client = client, on_failure = "error")]
    async fn errs(client: &Client) -> Result<(), Error> {
        Ok(())
    }
    evidence.outcome("on_failure = error", &errs(&client).await);

    #[fabraix::agent(id = "scrubbing", system_prompt = PROMPT, client = &client, on_failure = "panic")]
    async fn panics(client: Client) {}
    let payload = tokio::spawn(panics(client.clone()))
        .await
        .unwrap_err()
        .into_panic();
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .expect("a panic message");
    assert!(message.contains("401"), "{message}");
    evidence.text("on_failure = panic", message);
    server
}

/// Configuration errors and `Debug` of builders whose URL holds the key.
fn configuration(evidence: &mut Evidence) {
    for url in [
        "https://api.example".to_owned(),
        "https://api.example/v1beta".to_owned(),
        format!("https://{KEY}.example"),
        format!("https://api.example/{KEY}"),
        format!("http://{KEY}.example/v1"),
        format!("https://{KEY}.example/v1?key={KEY}"),
        format!("https://user:{KEY}@api.example/v1"),
        KEY.to_owned(),
    ] {
        let builder = Client::builder().api_key(KEY).base_url(&url);
        evidence.debug(&format!("config builder {url}"), &builder);
        let built = builder.build();
        assert!(matches!(built, Err(Error::Config(_))), "{url}: {built:?}");
        evidence.outcome(&format!("config {url}"), &built);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_carries_the_key() {
    let captured = capture_everything();
    let mut evidence = Evidence::default();

    let _verdict_server = verdicts(&mut evidence).await;
    error_bodies(&mut evidence).await;
    let _reset = transport_failures(&mut evidence).await;
    let _unsent = key_in_the_url(&mut evidence).await;
    let _redirecting = redirects(&mut evidence).await;
    let _refusing = failed_runs(&mut evidence).await;
    configuration(&mut evidence);

    let logs = captured.text();
    evidence.text("tracing", logs.clone());

    // Something of every kind was seen: the search below cannot pass by seeing nothing.
    let all = evidence.all_text();
    assert!(evidence.errors >= 80, "only {} errors", evidence.errors);
    for expected in [
        "action blocked by fabraix",
        "is_safe: true",
        "fabraix api error 400",
        "fabraix api error 401",
        "fabraix api error 301",
        "fabraix api error 307",
        "fabraix api error 502",
        "fabraix api error 503",
        "could not decode",
        "transport error",
        "could not be registered",
        "fabraix agent run not registered",
        "version segment",
        "holds an api key",
        "[redacted]",
    ] {
        assert!(all.contains(expected), "nothing captured says `{expected}`");
    }
    for expected in ["retrying", "fabraix event not delivered", "[redacted]"] {
        assert!(logs.contains(expected), "no log line says `{expected}`");
    }

    evidence.assert_no_key();
    eprintln!(
        "searched {} items ({} errors, {} bytes of logs)",
        evidence.items.len(),
        evidence.errors,
        logs.len()
    );
}
