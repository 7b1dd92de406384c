//! What every example does first: use the real API when `FABRAIX_API_KEY` is set, else an
//! in-process MockServer.

use fabraix::testing::MockServer;

/// What an example keeps alive while it runs: the MockServer, if it uses one, and the
/// guard that sends the queued events when the example ends (dropped first, while the
/// server still listens).
pub struct Setup {
    pub _fabraix: fabraix::InitGuard,
    pub server: Option<MockServer>,
}

/// Installs the global client: from the environment when `FABRAIX_API_KEY` is set, else
/// pointed at an in-process MockServer it starts.
pub fn mock_unless_configured() -> Result<Setup, fabraix::Error> {
    let server = match std::env::var_os("FABRAIX_API_KEY") {
        Some(_) => None,
        None => {
            let server = MockServer::start_blocking()?;
            println!(
                "FABRAIX_API_KEY is not set: using an in-process MockServer at {}",
                server.url()
            );
            Some(server)
        }
    };
    let client = match &server {
        Some(server) => server.client(),
        None => fabraix::Client::from_env()?,
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
