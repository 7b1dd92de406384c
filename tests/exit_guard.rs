//! A program that exits right after its agent work keeps its events: the guard `init`
//! returns sends what is still queued when `main` ends, bounded by the shutdown timeout,
//! even while the key's rate limit slows the queue down.
//!
//! The program is this test binary run again as a child process (`child_program` below,
//! ignored in ordinary runs), so that its exit is a real process exit.

use std::process::Command;

use fabraix::testing::{Endpoint, MockServer};
use fabraix::{Client, Error, Event, EventType};

const EVENTS: usize = 20;

#[tokio::test]
async fn the_init_guard_sends_the_queue_before_the_process_exits() {
    let server = MockServer::builder()
        .rate_limit("5/s".parse().unwrap())
        .start()
        .await
        .unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_program", "--ignored", "--nocapture"])
        .env("FABRAIX_BASE_URL", server.url())
        .env("FABRAIX_API_KEY", server.api_key())
        .env("FABRAIX_RATE_LIMIT", "5/s")
        .env("EXIT_GUARD_CHILD", "1")
        .status()
        .unwrap();
    assert!(status.success());

    // The child has exited: whatever reached the server is all there will be.
    let delivered: Vec<String> = server
        .requests_to(Endpoint::Event)
        .iter()
        .filter(|r| r.response.as_ref().is_some_and(|a| a.status == 200))
        .map(|r| {
            let content: serde_json::Value =
                serde_json::from_str(r.body["content"].as_str().unwrap()).unwrap();
            content["text"].as_str().unwrap().to_owned()
        })
        .collect();
    let expected: Vec<String> = (0..EVENTS).map(|n| n.to_string()).collect();
    assert_eq!(delivered, expected);
}

#[fabraix::agent(id = "short-lived", system_prompt = "You do one thing and exit.")]
async fn one_job() -> Result<(), Error> {
    for n in 0..EVENTS {
        fabraix::log_event(Event::text(EventType::Tool, n.to_string()))?;
    }
    Ok(())
}

#[test]
#[ignore = "the program of the_init_guard_sends_the_queue_before_the_process_exits, run by it"]
fn child_program() {
    if std::env::var_os("EXIT_GUARD_CHILD").is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _fabraix = fabraix::init(Client::from_env().unwrap()).unwrap();
    runtime.block_on(one_job()).unwrap();
    // More than a flush timeout's worth was queued at 5 requests a second, so the agent fn
    // returned without waiting; `_fabraix` sends the rest as `main` ends.
    let queued = fabraix::stats().expect("the global client").events.in_queue;
    assert!(queued > 0, "the agent fn left events queued");
}
