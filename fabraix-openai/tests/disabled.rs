//! `FABRAIX_DISABLED=1`: the SDK is off, so `check_tool_calls` allows every declared call,
//! unchecked and with no verdict, nothing reaches Fabraix, and the process logs one
//! warning saying so.
//!
//! One test only: it sets the process's environment, and the warning is once per process.

#[path = "../../tests/capture/mod.rs"]
mod capture;
mod support;

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls, FunctionCall,
};
use capture::Captured;
use fabraix::testing::MockServer;
use fabraix_openai::CheckedToolCalls;
use support::tools;

const WARNING: &str = "fabraix is disabled: guarded tool calls run unchecked";

fn calls() -> Vec<ChatCompletionMessageToolCalls> {
    ["read_note", "delete_note"]
        .into_iter()
        .map(|name| {
            ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                id: format!("call_{name}"),
                function: FunctionCall {
                    name: name.to_owned(),
                    arguments: r#"{"name":"groceries"}"#.to_owned(),
                },
            })
        })
        .collect()
}

// The global client, built from the environment.
#[fabraix::agent(id = "notes-agent", system_prompt = "You manage notes.")]
async fn agent() -> (Option<fabraix::Trace>, CheckedToolCalls) {
    let checked = fabraix_openai::check_tool_calls(&tools(), &calls()).await;
    (fabraix::current_trace(), checked)
}

/// Both calls allowed, neither with a verdict.
fn assert_allowed_unchecked(checked: &CheckedToolCalls) {
    assert!(checked.all_allowed(), "{:?}", checked.refused);
    let allowed: Vec<(&str, bool)> = checked
        .allowed
        .iter()
        .map(|call| (call.name.as_str(), call.verdict.is_none()))
        .collect();
    assert_eq!(allowed, [("read_note", true), ("delete_note", true)]);
}

#[test]
fn with_fabraix_disabled_every_call_is_allowed_unchecked_with_one_warning() {
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
        // Two agent runs, each checking both calls.
        for _ in 0..2 {
            let (trace, checked) = agent().await;
            assert_eq!(trace, None, "a disabled SDK's run has no trace");
            assert_allowed_unchecked(&checked);
        }
        // A trace given explicitly, through the global client.
        let global = fabraix::global_client().unwrap();
        assert!(global.is_disabled());
        let trace_id: fabraix::TraceId = "4f1b2c3d-5e6f-4a8b-9c0d-1e2f3a4b5c6d".parse().unwrap();
        let checked =
            fabraix_openai::check_tool_calls_in(global, trace_id, &tools(), &calls()).await;
        assert_allowed_unchecked(&checked);
    });

    // Nothing reached Fabraix, and the warning came once for the six calls.
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    let logs = captured.text();
    assert_eq!(logs.matches(WARNING).count(), 1, "{logs}");
    // One warning for the process, naming the guard of the first unchecked call.
    assert!(logs.contains(r#"guard="fabraix-openai""#), "{logs}");
}
