//! Registers an agent run with Fabraix and prints its trace id.
//!
//! With `FABRAIX_API_KEY` set, it talks to the API at `FABRAIX_BASE_URL` (default
//! `https://dev.fabraix.com/v1`). Without it, it starts an in-process `MockServer` first.
//! With `FABRAIX_DISABLED=1` the SDK is off: the agent runs, and nothing is sent.
//! Watch it live: run `fabraix-dev`, then here `export $(fabraix-dev --print-env)`, run this, open http://127.0.0.1:8417/.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use fabraix::testing::MockServer;

/// The agent: each call is one run, registered with Fabraix before the body runs.
#[fabraix::agent(
    id = "quickstart-agent",
    system_prompt = "You are a helpful assistant. Never share personal data.",
    on_failure = "error"
)]
async fn answer(question: &str) -> Result<String, fabraix::Error> {
    // The run's trace is current everywhere below this fn; a disabled SDK runs it without.
    match fabraix::current_trace() {
        Some(trace) => {
            println!("agent id:      {}", trace.agent_id());
            println!("trace id:      {}", trace.trace_id());
            println!("registered at: {}", trace.registered_at());
        }
        None => println!("trace id:      none (Fabraix is off)"),
    }
    Ok(format!("You asked: {question}"))
}

#[tokio::main]
async fn main() -> Result<(), fabraix::Error> {
    // The client from the environment; without FABRAIX_API_KEY, an in-process MockServer
    // stands in for the API (alive until `main` ends).
    let (client, _server) = match fabraix::Client::from_env() {
        Ok(client) if client.is_disabled() => {
            println!("FABRAIX_DISABLED is set: the Fabraix SDK is off, so nothing is sent");
            (client, None)
        }
        Ok(client) => {
            println!("FABRAIX_API_KEY is set: talking to {}", client.base_url());
            (client, None)
        }
        Err(_) if std::env::var_os("FABRAIX_API_KEY").is_none() => {
            let server = MockServer::start().await?;
            println!(
                "FABRAIX_API_KEY is not set: using an in-process MockServer at {}",
                server.url()
            );
            (server.client(), Some(server))
        }
        Err(error) => return Err(error),
    };
    // Keep the guard until `main` ends: it sends the events still queued before the
    // process exits (within a bound, even while the key's rate limit slows them down).
    let _fabraix = fabraix::init(client)?;
    let reply = answer("What is Fabraix?").await?;
    println!("reply:         {reply}");
    Ok(())
}
