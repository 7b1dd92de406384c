//! What every example does first: choose the Fabraix it talks to, and say which.

use fabraix::testing::MockServer;

/// What an example keeps alive while it runs: the MockServer, if it uses one, and the
/// guard that sends the queued events when the example ends (dropped first, while the
/// server still listens).
pub struct Setup {
    pub _fabraix: fabraix::InitGuard,
    pub server: Option<MockServer>,
}

impl Setup {
    /// Makes the MockServer, if the example runs on one, block the action `name`. The real
    /// API decides with its own policies.
    #[allow(dead_code)]
    pub fn block_action(&self, name: &str, reasoning: &str) {
        if let Some(server) = &self.server {
            server.block_action(name, reasoning);
        }
    }
}

/// Installs the global client, and says on stdout which Fabraix it is:
/// - with `FABRAIX_DISABLED=1`, none: the SDK is off, and the example runs without it;
/// - with `FABRAIX_API_KEY` set, the API at `FABRAIX_BASE_URL` (or `fabraix-dev`);
/// - otherwise an in-process MockServer, started here.
pub fn mock_unless_configured() -> Result<Setup, fabraix::Error> {
    let (client, server) = match fabraix::Client::from_env() {
        Ok(client) if client.is_disabled() => {
            println!(
                "FABRAIX_DISABLED is set: the Fabraix SDK is off (nothing is sent, runs have \
                 no trace, guarded tools run unchecked)"
            );
            (client, None)
        }
        Ok(client) => {
            println!("FABRAIX_API_KEY is set: talking to {}", client.base_url());
            (client, None)
        }
        // Without a key, the MockServer; any other mistake in the environment is reported.
        Err(_) if std::env::var_os("FABRAIX_API_KEY").is_none() => {
            let server = MockServer::start_blocking()?;
            println!(
                "FABRAIX_API_KEY is not set: using an in-process MockServer at {}",
                server.url()
            );
            (server.client(), Some(server))
        }
        Err(error) => return Err(error),
    };
    Ok(Setup {
        _fabraix: fabraix::init(client)?,
        server,
    })
}

/// In mock mode, a line on what the server received.
#[allow(dead_code)]
pub fn summary(server: &Option<MockServer>) {
    if let Some(server) = server {
        let requests = server.requests();
        let count = |path: &str| requests.iter().filter(|r| r.path == path).count();
        println!(
            "the MockServer received {} registrations, {} events and {} checks",
            count("/v1/register-agent-run"),
            count("/v1/event"),
            count("/v1/check"),
        );
    }
}

/// The current run's trace as text, or why there is none (Fabraix is off, or the run could
/// not be registered): for the examples' output.
#[allow(dead_code)]
pub fn run_name() -> String {
    match fabraix::current_trace() {
        Some(trace) => trace.to_string(),
        None => "(none: Fabraix is off, or the run was not registered)".to_owned(),
    }
}
