//! No verdict, no tool call: Fabraix unreachable or failing. The one exception is a
//! disabled SDK: the user switched checking off, so the tools run, unchecked.

mod support;

use std::time::Duration;

use fabraix::Client;
use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix_rig::{FabraixHook, NoVerdict};
use support::*;

/// A client of a Fabraix that is not there: nothing listens on its port.
fn unreachable_client() -> Client {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    Client::builder()
        .api_key("fabraix-test-key")
        .base_url(format!("http://{addr}/v1"))
        .max_retries(1)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .build()
        .unwrap()
}

/// Both results the model read say the call did not run because it could not be checked.
fn assert_told_unchecked(model: &StandInModel) {
    let results = model.tool_results(1);
    assert_eq!(results.len(), 2, "{results:?}");
    for ((_, text), tool) in results.iter().zip(["read_note", "delete_note"]) {
        assert!(
            text.starts_with(&format!(
                "The call to `{tool}` did not run: Fabraix could not check it ("
            )),
            "{text}"
        );
    }
}

#[tokio::test]
async fn fabraix_unreachable_no_tool_runs() {
    let model = StandInModel::start(read_then_delete()).await.unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    let agent = agent(&model, &notebook, FabraixHook::new(unreachable_client()));

    let answer = agent.prompt(PROMPT).await.unwrap();

    assert!(notebook.ran().is_empty(), "{:?}", notebook.ran());
    assert!(notebook.contains("groceries"));
    assert_told_unchecked(&model);
    assert!(
        answer
            .output()
            .contains("no Fabraix run could be registered")
    );
}

#[tokio::test]
async fn checks_without_a_verdict_run_no_tool() {
    for fault in [
        Fault::status(500),
        Fault::malformed_body(),
        Fault::drop_connection(),
    ] {
        let server = MockServer::start().await.unwrap();
        server.fail_next(usize::MAX, fault.clone().on(Endpoint::Check));
        let client = server.client_builder().max_retries(1).build().unwrap();
        let model = StandInModel::start(read_then_delete()).await.unwrap();
        let notebook = Notebook::with(&[("groceries", GROCERIES)]);
        let agent = agent(&model, &notebook, FabraixHook::new(client));

        agent.prompt(PROMPT).await.unwrap();

        assert!(notebook.ran().is_empty(), "{fault:?}: {:?}", notebook.ran());
        assert_told_unchecked(&model);
        // Both calls were asked about, each answered with the fault.
        let checks = server.requests_to(Endpoint::Check);
        assert!(checks.len() >= 2, "{fault:?}");
        assert!(checks.iter().all(|check| check.faulted), "{fault:?}");
        // The run records both calls as skipped.
        let events = events(&server);
        let tools = of_type(&events, "tool");
        assert_eq!(tools.len(), 2, "{fault:?}");
        assert!(
            tools.iter().all(|(_, _, c)| c["status"] == "skipped"),
            "{fault:?}"
        );
    }
}

#[tokio::test]
async fn a_disabled_sdk_runs_the_tools_unchecked_and_sends_nothing() {
    // A server the client would reach if it were not disabled, to show that nothing does.
    let server = MockServer::start().await.unwrap();
    let client = server.client_builder().disabled(true).build().unwrap();
    let model = StandInModel::start(read_then_delete()).await.unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    // `Stop` would end the run at the first call Fabraix gave no verdict on: a disabled
    // SDK's calls are not such calls.
    let hook = FabraixHook::new(client.clone()).on_no_verdict(NoVerdict::Stop);
    let agent = agent(&model, &notebook, hook);

    let answer = agent.prompt(PROMPT).await.unwrap();

    // Both tools ran, and the model got their real results.
    assert_eq!(
        notebook.ran(),
        ["read_note groceries", "delete_note groceries"]
    );
    assert!(!notebook.contains("groceries"));
    let results = model.tool_results(1);
    let texts: Vec<&str> = results.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts, [GROCERIES, "deleted `groceries`"], "{results:?}");
    assert!(
        answer.output().contains("deleted `groceries`"),
        "{}",
        answer.output()
    );
    // Nothing was sent; the run's events were let go, and counted: two model requests,
    // two answers, two tool results.
    assert!(client.flush(PATIENCE).await);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    let stats = client.stats().events;
    assert_eq!(stats.untraced, 6, "{stats:?}");
    assert_eq!(stats.queued, 0, "{stats:?}");
}

#[tokio::test]
async fn no_verdict_can_stop_the_run() {
    let model = StandInModel::start(read_then_delete()).await.unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    let hook = FabraixHook::new(unreachable_client()).on_no_verdict(NoVerdict::Stop);
    let agent = agent(&model, &notebook, hook);

    let error = agent.prompt(PROMPT).await.unwrap_err();

    assert!(notebook.ran().is_empty());
    let message = error.to_string();
    assert!(message.contains("Fabraix could not check it"), "{message}");
    // The model was never asked again.
    assert_eq!(model.requests().len(), 1);
}

#[tokio::test]
async fn the_api_key_stays_out_of_what_the_model_reads() {
    let server = MockServer::builder()
        .api_key("fabraix-secret-key-0042")
        .start()
        .await
        .unwrap();
    // A client with the wrong key: the server answers 401 to everything.
    let client = server
        .client_builder()
        .api_key("fabraix-wrong-key-0042")
        .build()
        .unwrap();
    let model = StandInModel::start(read_then_delete()).await.unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    agent(&model, &notebook, FabraixHook::new(client))
        .prompt(PROMPT)
        .await
        .unwrap();

    assert!(notebook.ran().is_empty());
    let seen = serde_json::to_string(&model.requests()).unwrap();
    assert!(!seen.contains("0042"), "{seen}");
    assert_told_unchecked(&model);
}
