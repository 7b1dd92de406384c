//! One run across two OS processes: this process starts a MockServer, registers a run and
//! calls a tool service over loopback HTTP; the tool service is this same binary started
//! again as a second process (`FABRAIX_TEST_ROLE=tool-service`), an axum app behind
//! `TraceLayer`, whose global client comes from `FABRAIX_BASE_URL` and `FABRAIX_API_KEY`.
//! The MockServer must hold the service's event and check under the caller's trace, and
//! exactly one registration.
//!
//! The file has its own `main` (`harness = false`), since the second process must run the
//! service rather than tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use fabraix::propagation::{self, TraceLayer};
use fabraix::testing::{Endpoint, MockServer, RecordedRequest};
use fabraix::{Action, Client, Event, EventType};
use serde::{Deserialize, Serialize};

const NAME: &str = "one_run_across_two_processes";
const ROLE: &str = "FABRAIX_TEST_ROLE";
const WAIT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    if std::env::var(ROLE).as_deref() == Ok("tool-service") {
        tool_service();
        return ExitCode::SUCCESS;
    }
    // Behave as a test binary would for `--list` and name filters.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{NAME}: test");
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str())) {
        println!(
            "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n"
        );
        return ExitCode::SUCCESS;
    }
    println!("\nrunning 1 test");
    let outcome = std::panic::catch_unwind(caller);
    let passed = outcome.is_ok();
    println!("test {NAME} ... {}", if passed { "ok" } else { "FAILED" });
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; 0 filtered out\n",
        if passed { "ok" } else { "FAILED" },
        u8::from(passed),
        u8::from(!passed),
    );
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The tool service's answer.
#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    /// The process that served the request.
    pid: u32,
    /// The run the handler acted for, if any.
    trace_id: Option<String>,
    /// The verdict on `lookup_order`, if one could be had.
    is_safe: Option<bool>,
}

/// The second process: serves `/lookup` behind `TraceLayer` with the global client, until
/// its standard input closes.
fn tool_service() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let app = Router::new()
            .route("/lookup", post(lookup))
            .layer(TraceLayer::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stdin_closed.await;
            })
            .await
            .unwrap();
    });
}

async fn lookup() -> Json<Reply> {
    let pid = std::process::id();
    let trace = fabraix::current_trace();
    let _ = fabraix::log_event(Event::text(
        EventType::Tool,
        format!("order 42 looked up by pid {pid}"),
    ));
    let action = Action::new("lookup_order")
        .description("Look an order up.")
        .arguments(&serde_json::json!({ "order_id": 42, "pid": pid }));
    let is_safe = fabraix::check_action(&action).await.ok().map(|v| v.is_safe);
    // Deliver the event before answering, so the caller finds it at the API.
    fabraix::flush(WAIT).await;
    Json(Reply {
        pid,
        trace_id: trace.map(|t| t.trace_id().to_string()),
        is_safe,
    })
}

/// Kills the tool service if the test ends early; otherwise it exits when its input closes.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// This process: the agent.
fn caller() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = MockServer::start().await.unwrap();
        let mut service = Service(
            Command::new(std::env::current_exe().unwrap())
                .env(ROLE, "tool-service")
                .env("FABRAIX_BASE_URL", server.url())
                .env("FABRAIX_API_KEY", server.api_key())
                .env_remove("FABRAIX_DISABLED")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stdout = service.0.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
            line
        });
        let line = tokio::time::timeout(Duration::from_secs(120), line)
            .await
            .expect("the tool service starts")
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        let url = format!("http://{addr}/lookup");
        let service_pid = service.0.id();
        assert_ne!(service_pid, std::process::id());

        let client = server.client();

        #[fabraix::agent(
            id = "two-process-agent",
            system_prompt = "You answer questions about orders.",
            client = client
        )]
        async fn agent(client: &Client, url: &str) -> (fabraix::Trace, Reply) {
            let _ = client;
            let trace = fabraix::current_trace().expect("inside the run");
            fabraix::log_event(Event::text(EventType::User, "Where is order 42?")).unwrap();
            let reply = reqwest::Client::new()
                .post(url)
                .headers(propagation::current_headers())
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            (trace, serde_json::from_slice(&reply).unwrap())
        }

        let (trace, reply) = agent(&client, &url).await;
        let trace_id = trace.trace_id().to_string();
        assert_eq!(reply.pid, service_pid);
        assert_eq!(reply.trace_id.as_deref(), Some(trace_id.as_str()));
        assert_eq!(reply.is_safe, Some(true));

        // Only the service writes its pid into what it sends.
        let from_service = |r: &RecordedRequest| {
            let content = r.body["content"].as_str().unwrap_or_default();
            content.contains(&format!("by pid {service_pid}\""))
                || content.contains(&format!("\"pid\":{service_pid}}}"))
        };
        let arrived = server
            .wait_for(WAIT, |requests| {
                requests
                    .iter()
                    .any(|r| r.path == "/v1/event" && from_service(r))
                    && requests
                        .iter()
                        .any(|r| r.path == "/v1/check" && from_service(r))
            })
            .await;
        assert!(arrived, "{:#?}", server.requests());

        let events = server.requests_to(Endpoint::Event);
        let checks = server.requests_to(Endpoint::Check);
        assert_eq!(events.len(), 2, "{events:#?}"); // the agent's and the service's
        assert_eq!(checks.len(), 1, "{checks:#?}");
        for request in events.iter().chain(&checks) {
            assert!(request.authenticated);
            assert_eq!(request.body["trace_id"], trace_id.as_str());
        }
        assert!(events.iter().any(from_service));
        assert!(from_service(&checks[0]));
        assert_eq!(server.requests_to(Endpoint::RegisterAgentRun).len(), 1);

        // A request with a forged, malformed trace is served untraced, and sends nothing.
        let before = server.requests().len();
        let forged = reqwest::Client::new()
            .post(&url)
            .header(
                "traceparent",
                format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            )
            .header("baggage", "fabraix.agent_id=not-an-agent")
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 200);
        let forged: Reply = serde_json::from_slice(&forged.bytes().await.unwrap()).unwrap();
        assert_eq!(forged.trace_id, None);
        assert_eq!(forged.is_safe, None);
        assert_eq!(server.requests().len(), before);

        // Closing its input stops the service; wait for it, bounded.
        drop(service.0.stdin.take());
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = service.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the tool service did not exit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "{status}");
    });
}
