//! `FabraixHook::global()` (and `default()`) go through the client given to
//! `fabraix::init`; the hook works attached to one run as well as to the agent.

mod support;

use fabraix::testing::{Endpoint, MockServer};
use fabraix_rig::FabraixHook;
use support::*;

#[tokio::test]
async fn the_global_hook_uses_the_initialised_client_for_one_run() {
    let server = MockServer::start().await.unwrap();
    server.block_action("delete_note", BLOCK_REASON);
    let _fabraix = fabraix::init(server.client()).unwrap();
    let model = StandInModel::start(read_then_delete()).await.unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    let agent = builder(&model, &notebook).build();

    // Hooked for this run only.
    let answer = agent
        .prompt(PROMPT)
        .add_hook(FabraixHook::default())
        .await
        .unwrap();

    assert_eq!(notebook.ran(), ["read_note groceries"]);
    assert!(answer.output().contains(BLOCK_REASON));
    assert_eq!(server.requests_to(Endpoint::RegisterAgentRun).len(), 1);
    assert_eq!(server.requests_to(Endpoint::Check).len(), 2);
    assert_eq!(server.requests_to(Endpoint::Event).len(), 6);

    // A run without the hook is not reported and not guarded.
    let unhooked = StandInModel::start(read_then_delete()).await.unwrap();
    let unguarded = Notebook::with(&[("groceries", GROCERIES)]);
    builder(&unhooked, &unguarded)
        .build()
        .prompt(PROMPT)
        .await
        .unwrap();
    assert_eq!(
        unguarded.ran(),
        ["read_note groceries", "delete_note groceries"]
    );
    assert_eq!(server.requests_to(Endpoint::RegisterAgentRun).len(), 1);
}
