//! One run across two processes: an agent calls a tool service over HTTP, and both log to
//! the agent's run.
//!
//! The agent (this process) registers a run and sends each request with the run's
//! `traceparent` and `baggage` headers. The tool service (this program again, started as a
//! second process with `--tool-service`) is an axum app behind `TraceLayer`: its guarded
//! tool is checked, and its events logged, in the caller's run, through its own client
//! (built from `FABRAIX_API_KEY` and `FABRAIX_BASE_URL`). It registers no run of its own.
//!
//! ```text
//! cargo run --example across_processes
//! ```
//!
//! Without `FABRAIX_API_KEY`, the agent starts an in-process MockServer and hands its URL
//! and key to the tool service through the same two variables.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use axum::Router;
use axum::routing::post;
use fabraix::propagation::{self, TraceLayer};
use fabraix::{Event, EventType};

/// Look an order up by its id.
#[fabraix::action]
async fn lookup_order(order_id: u64) -> Result<String, fabraix::Error> {
    Ok(format!("order {order_id} shipped yesterday"))
}

/// The tool service's one route. The caller's run is current here when the request
/// carried it.
async fn lookup(body: String) -> String {
    let run = common::run_name();
    let Ok(order_id) = body.trim().parse::<u64>() else {
        return format!("pid {}, run {run}: not an order id", std::process::id());
    };
    let answer = match lookup_order(order_id).await {
        Ok(answer) => answer,
        Err(error) => format!("refused: {error}"),
    };
    let _ = fabraix::log_event(Event::text(EventType::Tool, &answer));
    // Deliver the event before answering.
    fabraix::flush(std::time::Duration::from_secs(5)).await;
    format!("pid {}, run {run}: {answer}", std::process::id())
}

/// The second process: serves until its standard input closes.
async fn tool_service() -> std::io::Result<()> {
    let app = Router::new()
        .route("/lookup", post(lookup))
        .layer(TraceLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = stdin_closed.await;
        })
        .await
}

/// The agent: one run, a question, and a call to the tool service carrying the run.
#[fabraix::agent(
    id = "orders-agent",
    system_prompt = "You answer questions about orders. Use the tool service to look them up.",
    on_failure = "error"
)]
async fn agent(tool_service: &str) -> Result<(), fabraix::Error> {
    println!(
        "agent (pid {}): run {}",
        std::process::id(),
        common::run_name()
    );
    // Telemetry never fails the agent: an event that cannot be queued is let go.
    let _ = fabraix::log_event(Event::text(EventType::User, "Where is order 42?"));
    let reply = reqwest::Client::new()
        .post(format!("http://{tool_service}/lookup"))
        .headers(propagation::current_headers())
        .body("42")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    let reply = match reply {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(error) => format!("the tool service failed: {error}"),
    };
    println!("tool service: {reply}");
    let _ = fabraix::log_event(Event::text(EventType::ModelOutput, &reply));
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|arg| arg == "--tool-service") {
        return Ok(tool_service().await?);
    }
    let setup = common::mock_unless_configured()?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("--tool-service")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if let Some(server) = &setup.server {
        command
            .env("FABRAIX_BASE_URL", server.url())
            .env("FABRAIX_API_KEY", server.api_key());
    }
    let mut service = command.spawn()?;
    let mut addr = String::new();
    if let Some(stdout) = service.stdout.take() {
        BufReader::new(stdout).read_line(&mut addr)?;
    }
    println!("tool service (pid {}) at {}", service.id(), addr.trim());

    let result = agent(addr.trim()).await;
    // Closing its input stops the tool service.
    drop(service.stdin.take());
    service.wait()?;
    result?;
    common::summary(&setup.server);
    Ok(())
}
