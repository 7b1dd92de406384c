//! `FABRAIX_DISABLED=1`: the SDK is off, so every tool call of a hooked rig agent runs,
//! unchecked, nothing reaches Fabraix, and the process logs one warning saying so.
//!
//! One test only: it sets the process's environment, and the warning is once per process.

#[path = "../../tests/capture/mod.rs"]
mod capture;
mod support;

use capture::Captured;
use fabraix::testing::MockServer;
use fabraix_rig::FabraixHook;
use rig_agent::Agent;
use support::*;

const WARNING: &str = "fabraix is disabled: guarded tool calls run unchecked";

// The global client, built from the environment.
#[fabraix::agent(id = "notes-owner", system_prompt = "You tidy notes.")]
async fn tidy(agent: &Agent) -> (Option<fabraix::Trace>, String) {
    let answer = agent.prompt(PROMPT).await.unwrap();
    (fabraix::current_trace(), answer.output().to_owned())
}

/// Both tools ran on `notebook`, and the model read their real results.
fn assert_ran(notebook: &Notebook, model: &StandInModel) {
    assert_eq!(
        notebook.ran(),
        ["read_note groceries", "delete_note groceries"]
    );
    let results = model.tool_results(1);
    let texts: Vec<&str> = results.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts, [GROCERIES, "deleted `groceries`"], "{results:?}");
}

#[test]
fn with_fabraix_disabled_every_tool_call_runs_unchecked_with_one_warning() {
    // A server the global client would reach if it were not disabled.
    let server = MockServer::start_blocking().unwrap();
    // SAFETY: the only test of this binary, and nothing that reads the environment has
    // started: no client exists yet and no other thread of ours runs.
    unsafe {
        std::env::set_var("FABRAIX_DISABLED", "1");
        std::env::remove_var("FABRAIX_API_KEY");
        std::env::set_var("FABRAIX_BASE_URL", server.url());
    }
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    runtime.block_on(async {
        // Two rig runs the hook would register runs for, through the global client.
        for _ in 0..2 {
            let model = StandInModel::start(read_then_delete()).await.unwrap();
            let notebook = Notebook::with(&[("groceries", GROCERIES)]);
            agent(&model, &notebook, FabraixHook::global())
                .prompt(PROMPT)
                .await
                .unwrap();
            assert_ran(&notebook, &model);
        }
        // A rig run inside an agent fn.
        let model = StandInModel::start(read_then_delete()).await.unwrap();
        let notebook = Notebook::with(&[("groceries", GROCERIES)]);
        let (trace, answer) = tidy(&agent(&model, &notebook, FabraixHook::global())).await;
        assert_eq!(trace, None);
        assert!(answer.contains("deleted `groceries`"), "{answer}");
        assert_ran(&notebook, &model);
    });

    // Nothing reached Fabraix; the three runs' events were let go and counted.
    let global = fabraix::global_client().unwrap();
    assert!(global.is_disabled());
    assert_eq!(global.stats().events.untraced, 18);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    // The warning came once for the six calls, and no call was refused.
    let logs = captured.text();
    assert_eq!(logs.matches(WARNING).count(), 1, "{logs}");
    // One warning for the process, naming the guard of the first unchecked call.
    assert!(logs.contains(r#"guard="fabraix-rig""#), "{logs}");
    assert!(!logs.contains("refused"), "{logs}");
    assert!(!logs.contains("could be registered"), "{logs}");
}
