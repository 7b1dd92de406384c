//! `fabraix::init`: the first call sets the global client, later calls change nothing.
//!
//! The global client is per process, so this file holds one test only.

use fabraix::testing::MockServer;
use fabraix::{Client, Error, Trace};

#[fabraix::agent(id = "global-agent", system_prompt = "You are a test agent.")]
async fn run_on_the_global_client() -> Option<Trace> {
    fabraix::current_trace()
}

#[tokio::test]
async fn init_twice_is_already_initialized_and_the_first_client_stays() {
    let server = MockServer::start().await.unwrap();
    let _fabraix = fabraix::init(server.client()).unwrap();

    let other = Client::builder().disabled(true).build().unwrap();
    let err = fabraix::init(other).unwrap_err();
    assert!(matches!(err, Error::AlreadyInitialized), "{err:?}");
    let err = fabraix::init(server.client()).unwrap_err();
    assert!(matches!(err, Error::AlreadyInitialized), "{err:?}");

    // Agent runs use the first client: they register with the server, not the disabled one.
    let trace = run_on_the_global_client()
        .await
        .expect("the run was registered through the first client");
    assert_eq!(server.issued_traces(), vec![trace.trace_id()]);
}
