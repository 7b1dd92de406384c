//! What the benchmarks compare: the SDK's way and the hand-written equivalent.

use std::hint::black_box;

use fabraix::{AgentId, Client, Trace};
use serde::Deserialize;

/// An agent fn: registration on entry, the body in the run, flush on exit.
#[fabraix::agent(id = "bench", system_prompt = "You are a benchmark.", client = client)]
pub async fn annotated(client: &Client) -> Option<Trace> {
    let _ = client;
    black_box(fabraix::current_trace())
}

/// What the attribute saves writing: register, then run the body in `scope`.
pub async fn by_hand(client: &Client) -> Option<Trace> {
    let agent = AgentId::from_name("bench").expect("a name");
    let trace = client
        .register_agent_run(agent, "You are a benchmark.")
        .await
        .expect("registered");
    fabraix::scope(trace, async { black_box(fabraix::current_trace()) }).await
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Registered {
    trace_id: uuid::Uuid,
    timestamp: String,
}

/// A minimal registration with reqwest: the same three fields, the same headers, the
/// answer decoded.
pub async fn hand_written_register(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    agent: AgentId,
) -> uuid::Uuid {
    let body = serde_json::to_vec(&serde_json::json!({
        "agent_id": agent.to_string(),
        "timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "system_prompt": "You are a benchmark.",
    }))
    .expect("json");
    let response = http
        .post(url)
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("sent");
    let bytes = response.bytes().await.expect("read");
    serde_json::from_slice::<Registered>(&bytes)
        .expect("decoded")
        .trace_id
}
