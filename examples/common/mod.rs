//! What every example does first: use the real API when `FABRAIX_API_KEY` is set, else an
//! in-process MockServer.

use fabraix::testing::MockServer;

/// Starts a MockServer and makes it the global client, unless `FABRAIX_API_KEY` is set (then
/// the global client is built from the environment on first use). Keep the returned server
/// alive for as long as the example runs.
pub fn mock_unless_configured() -> Result<Option<MockServer>, fabraix::Error> {
    if std::env::var_os("FABRAIX_API_KEY").is_some() {
        return Ok(None);
    }
    let server = MockServer::start_blocking()?;
    println!(
        "FABRAIX_API_KEY is not set: using an in-process MockServer at {}",
        server.url()
    );
    fabraix::init(server.client())?;
    Ok(Some(server))
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
