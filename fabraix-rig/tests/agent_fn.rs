//! A rig run inside a `#[fabraix::agent]` fn reports to that fn's run.

mod support;

use std::time::Duration;

use fabraix::testing::{Endpoint, MockServer};
use fabraix::{AgentId, Client};
use fabraix_rig::FabraixHook;
use rig_agent::Agent;
use support::*;

/// A client no run should go through: its server is gone.
fn unused_client() -> Client {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    Client::builder()
        .api_key("fabraix-test-key")
        .base_url(format!("http://{addr}/v1"))
        .max_retries(0)
        .build()
        .unwrap()
}

#[fabraix::agent(id = "notes-owner", system_prompt = "The agent fn's own prompt.", client = client)]
async fn tidy(client: &Client, agent: &Agent) -> (Option<fabraix::Trace>, String) {
    let answer = agent.prompt(PROMPT).await.unwrap();
    (fabraix::current_trace(), answer.output().to_owned())
}

/// Everything the server received belongs to the one run the agent fn registered.
fn assert_one_run(server: &MockServer, trace: fabraix::Trace) {
    let registrations = server.requests_to(Endpoint::RegisterAgentRun);
    assert_eq!(registrations.len(), 1);
    assert_eq!(
        registrations[0].body["agent_id"],
        AgentId::from_name("notes-owner")
            .unwrap()
            .to_string()
            .as_str()
    );
    assert_eq!(
        registrations[0].body["system_prompt"],
        "The agent fn's own prompt."
    );
    let trace_id = trace.trace_id().to_string();
    let checks = server.requests_to(Endpoint::Check);
    assert_eq!(checks.len(), 2);
    assert!(
        checks
            .iter()
            .all(|c| c.body["trace_id"] == trace_id.as_str())
    );
    let events = events(server);
    assert_eq!(events.len(), 6, "{events:?}");
    assert!(events.iter().all(|(_, t, _)| *t == trace_id));
}

#[tokio::test]
async fn uses_the_agent_fns_run() {
    let server = MockServer::start().await.unwrap();
    server.block_action("delete_note", BLOCK_REASON);
    let model = StandInModel::start(read_then_delete()).await.unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    // The hook's own client is never used for a run that already has one.
    let agent = agent(&model, &notebook, FabraixHook::new(unused_client()));

    let client = server.client();
    let (trace, answer) = tidy(&client, &agent).await;

    let trace = trace.expect("the agent fn's run was registered");
    assert_one_run(&server, trace);
    assert_eq!(notebook.ran(), ["read_note groceries"]);
    assert!(answer.contains(BLOCK_REASON));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rig_run_spawned_with_fabraix_spawn_stays_in_the_run() {
    #[fabraix::agent(id = "notes-owner", system_prompt = "The agent fn's own prompt.", client = client)]
    async fn tidy_elsewhere(client: &Client, agent: Agent) -> Option<fabraix::Trace> {
        let spawned = fabraix::spawn(async move { agent.prompt(PROMPT).await.map(|_| ()) });
        spawned.await.unwrap().unwrap();
        fabraix::current_trace()
    }

    let server = MockServer::start().await.unwrap();
    server.block_action("delete_note", BLOCK_REASON);
    let model = StandInModel::start(read_then_delete()).await.unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    let agent = agent(&model, &notebook, FabraixHook::new(unused_client()));

    let client = server.client();
    let trace = tidy_elsewhere(&client, agent).await.unwrap();

    assert_one_run(&server, trace);
    assert_eq!(notebook.ran(), ["read_note groceries"]);
}

#[tokio::test]
async fn an_agent_fn_whose_run_failed_runs_no_tool() {
    // The agent fn cannot register (`on_failure = "continue"`: its body runs untraced);
    // the hook does not register a run of its own in its place.
    let server = MockServer::start().await.unwrap();
    let model = StandInModel::start(read_then_delete()).await.unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    let agent = agent(&model, &notebook, FabraixHook::new(server.client()));

    let dead = unused_client();
    let (trace, _) = tidy(&dead, &agent).await;

    assert!(trace.is_none());
    assert!(notebook.ran().is_empty());
    assert!(server.requests().is_empty());
    let results = model.tool_results(1);
    assert_eq!(results.len(), 2, "{results:?}");
    for (_, text) in results {
        // What the model reads names why: the registration failed, and how.
        assert!(text.contains("Fabraix could not check it"), "{text}");
        assert!(text.contains("could not be registered"), "{text}");
        assert!(text.contains("127.0.0.1"), "{text}");
    }
}

#[tokio::test]
async fn an_agent_fn_of_a_disabled_sdk_runs_the_tools_unchecked() {
    let server = MockServer::start().await.unwrap();
    let model = StandInModel::start(read_then_delete()).await.unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    // The hook's own client is never used for a run that already has one.
    let agent = agent(&model, &notebook, FabraixHook::new(unused_client()));

    let disabled = server.client_builder().disabled(true).build().unwrap();
    let (trace, answer) = tidy(&disabled, &agent).await;

    assert!(trace.is_none(), "a disabled SDK's run has no trace");
    assert_eq!(
        notebook.ran(),
        ["read_note groceries", "delete_note groceries"]
    );
    let results = model.tool_results(1);
    let texts: Vec<&str> = results.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts, [GROCERIES, "deleted `groceries`"], "{results:?}");
    assert!(answer.contains("deleted `groceries`"), "{answer}");
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    // The run's six events were let go, counted on the fn's client.
    assert_eq!(disabled.stats().events.untraced, 6);
}

#[tokio::test]
async fn events_of_the_agent_fns_run_are_flushed_when_it_returns() {
    let server = MockServer::start().await.unwrap();
    let model = StandInModel::start(read_then_delete()).await.unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    // A zero flush timeout: the hook itself never waits; the agent fn's exit does.
    let hook = FabraixHook::new(unused_client()).flush_timeout(Duration::ZERO);
    let agent = agent(&model, &notebook, hook);

    let client = server.client();
    tidy(&client, &agent).await;

    assert_eq!(server.requests_to(Endpoint::Event).len(), 6);
}
