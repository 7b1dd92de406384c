//! `#[fabraix::agent]` without `client = …`: the global client, built from the environment
//! on first use. One test only, because it sets the process's environment.

use fabraix::testing::{Endpoint, MockServer};
use fabraix::{AgentId, Trace, current_trace};

const API_KEY: &str = "fabraix-global-client-key";

#[fabraix::agent(id = "global-async", system_prompt = "You use the global client.")]
async fn global_async() -> Option<Trace> {
    tokio::task::yield_now().await;
    current_trace()
}

#[fabraix::agent(
    id = "global-sync",
    system_prompt = "You use the global client and block."
)]
fn global_sync() -> Option<Trace> {
    current_trace()
}

#[fabraix::agent(
    id = "global-future",
    system_prompt = "You use the global client later."
)]
fn global_future() -> impl std::future::Future<Output = Option<Trace>> {
    async { current_trace() }
}

#[test]
fn agent_fns_without_a_client_use_the_global_one_from_the_environment() {
    let server = MockServer::builder()
        .api_key(API_KEY)
        .start_blocking()
        .expect("the mock server starts");
    // SAFETY: the only test of this binary, and nothing has started that reads the
    // environment: no client exists yet and no other thread of ours runs.
    unsafe {
        std::env::set_var("FABRAIX_API_KEY", API_KEY);
        std::env::set_var("FABRAIX_BASE_URL", server.url());
    }

    assert_eq!(current_trace(), None);
    let sync = global_sync();
    let (asynchronous, future) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(async { (global_async().await, global_future().await) });
    assert_eq!(current_trace(), None);

    let runs = [
        (sync, "global-sync", "You use the global client and block."),
        (asynchronous, "global-async", "You use the global client."),
        (future, "global-future", "You use the global client later."),
    ];
    let issued = server.issued_traces();
    let registrations = server.requests_to(Endpoint::RegisterAgentRun);
    assert_eq!(registrations.len(), 3);
    assert!(
        registrations.iter().all(|r| r.authenticated),
        "the key comes from FABRAIX_API_KEY"
    );
    for (seen, agent, prompt) in runs {
        let trace = seen.expect("the body sees a trace");
        assert!(
            issued.contains(&trace.trace_id()),
            "{agent}: an issued trace"
        );
        let agent_id = AgentId::from_name(agent).expect("a valid name");
        assert_eq!(trace.agent_id(), agent_id);
        assert!(
            registrations
                .iter()
                .any(|r| r.body["agent_id"] == agent_id.to_string()
                    && r.body["system_prompt"] == prompt),
            "{agent}: registered with its prompt"
        );
    }
}
