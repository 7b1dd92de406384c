//! Registers an agent run with Fabraix and prints its trace id.
//!
//! With `FABRAIX_API_KEY` set, it talks to the API at `FABRAIX_BASE_URL` (default
//! `https://dev.fabraix.com/v1`). Without it, it starts an in-process `MockServer` first.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use fabraix::testing::MockServer;

#[tokio::main]
async fn main() -> Result<(), fabraix::Error> {
    let _server = if std::env::var_os("FABRAIX_API_KEY").is_none() {
        let server = MockServer::start().await?;
        println!("FABRAIX_API_KEY is not set: using an in-process MockServer at {}", server.url());
        fabraix::init(server.client())?;
        Some(server)
    } else {
        None
    };
    let client = fabraix::__private::global_client()?;
    let agent = fabraix::AgentId::from_name("quickstart-agent")?;
    let trace = client.register_agent_run(agent, "You are a helpful assistant.").await?;
    println!("agent id:  {}", trace.agent_id());
    println!("trace id:  {}", trace.trace_id());
    println!("registered at: {}", trace.registered_at());
    Ok(())
}
