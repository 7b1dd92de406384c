//! The example `openai_agent`, run as its own process, plain and streamed, against the
//! stand-in model (which asks for both tools) and a MockServer that blocks `delete_note`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use fabraix::testing::{Endpoint, MockServer};
use serde_json::{Value, json};
use support::stand_in_model::{DELETE_CALL_ID, FIRST_TEXT, NOTE, StandInModel};
use support::{DELETE_REFUSAL, both_tool_calls, logged_tool_calls, wait_for_events};

/// The example's executable. `cargo test` builds the examples next to the tests, with the
/// same features; when that one is missing or older than a source file of the workspace
/// (`cargo test --test example` does not build examples), cargo builds it.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let sibling = profile_dir
        .join("examples")
        .join(format!("openai_agent{}", std::env::consts::EXE_SUFFIX));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    match std::fs::metadata(&sibling).and_then(|m| m.modified()) {
        Ok(built) if newest_source(workspace) <= built => sibling,
        _ => build_example(),
    }
}

/// When a source file (`.rs`, `Cargo.toml`, `Cargo.lock`) under `dir` last changed.
fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let changed = if kind.is_dir() {
            newest_source(&path)
        } else if name.ends_with(".rs") || name == "Cargo.toml" || name == "Cargo.lock" {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(newest)
        } else {
            continue;
        };
        newest = newest.max(changed);
    }
    newest
}

/// Builds the example with this test's profile and features; returns its executable.
fn build_example() -> PathBuf {
    let mut cargo = std::process::Command::new(env!("CARGO"));
    cargo.args([
        "build",
        "--message-format=json",
        "--manifest-path",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        "-p",
        "fabraix-openai",
        "--example",
        "openai_agent",
        "--no-default-features",
    ]);
    let features: Vec<&str> = [
        ("default", cfg!(feature = "default")),
        ("rustls", cfg!(feature = "rustls")),
        ("native-tls", cfg!(feature = "native-tls")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    if !features.is_empty() {
        cargo.args(["--features", &features.join(",")]);
    }
    if !cfg!(debug_assertions) {
        cargo.arg("--release");
    }
    let built = cargo.stderr(Stdio::inherit()).output().unwrap();
    assert!(built.status.success(), "cargo could not build the example");
    String::from_utf8(built.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "openai_agent"
        })
        .and_then(|artifact| artifact["executable"].as_str().map(PathBuf::from))
        .expect("cargo named the example's executable")
}

/// The example, pointed at the stand-in `model` and at `server` (which blocks `delete_note`),
/// writing which tools ran to a fresh audit file named after `run`.
async fn example(
    run: &str,
    model: &StandInModel,
    server: &MockServer,
) -> (tokio::process::Command, PathBuf) {
    let executable = tokio::task::spawn_blocking(example_binary).await.unwrap();
    server.block_action("delete_note", DELETE_REFUSAL);
    let audit = std::env::temp_dir().join(format!(
        "fabraix-openai-notes-audit-{}-{run}.txt",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&audit);
    let mut example = tokio::process::Command::new(executable);
    example
        .env("OPENAI_BASE_URL", model.base_url())
        .env("OPENAI_API_KEY", "sk-stand-in")
        .env("FABRAIX_API_KEY", server.api_key())
        .env("FABRAIX_BASE_URL", server.url())
        .env("NOTES_AUDIT", &audit)
        .env_remove("OPENAI_MODEL")
        .env_remove("OPENAI_STREAM")
        .env_remove("FABRAIX_DISABLED")
        .kill_on_drop(true);
    (example, audit)
}

async fn the_example_refuses_delete_note_and_tells_the_model(streamed: bool) {
    let server = MockServer::start().await.unwrap();
    let model = StandInModel::start().await.unwrap();
    let (mut example, audit) = example(&streamed.to_string(), &model, &server).await;
    if streamed {
        example.env("OPENAI_STREAM", "1");
    }
    let run = tokio::time::timeout(Duration::from_secs(120), example.output())
        .await
        .expect("the example finished")
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("final answer:"), "{stdout}");

    // One run: one registration, and everything else in its trace.
    let registrations = server.requests_to(Endpoint::RegisterAgentRun);
    assert_eq!(registrations.len(), 1);
    let trace_id = server.issued_traces()[0].to_string();

    // Both answers logged; the first whole: its text and both tool calls, arguments complete.
    let outputs = wait_for_events(&server, "model_output", 2).await;
    assert_eq!(outputs.len(), 2);
    let first = &outputs[0].content;
    assert_eq!(
        first["choices"][0]["message"]["content"],
        FIRST_TEXT.concat()
    );
    assert_eq!(logged_tool_calls(first), both_tool_calls());
    assert_eq!(first["streamed"], streamed);
    assert_eq!(first["cut_short"], false);
    assert!(first["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(wait_for_events(&server, "model_input", 2).await.len(), 2);
    let events = server.requests_to(Endpoint::Event);
    assert!(events.iter().all(|e| e.body["trace_id"] == trace_id));

    // Both calls checked, in the run, with the model's arguments.
    let checks = server.requests_to(Endpoint::Check);
    assert_eq!(checks.len(), 2);
    let mut names: Vec<String> = checks
        .iter()
        .map(|check| {
            assert_eq!(check.body["trace_id"], trace_id);
            let content: Value =
                serde_json::from_str(check.body["content"].as_str().unwrap()).unwrap();
            assert_eq!(content, json!({ "name": NOTE }));
            let schema: Value =
                serde_json::from_str(check.body["schema"].as_str().unwrap()).unwrap();
            schema["name"].as_str().unwrap().to_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["delete_note", "read_note"]);

    // `delete_note` never ran; `read_note` did.
    let ran = std::fs::read_to_string(&audit).unwrap();
    let _ = std::fs::remove_file(&audit);
    assert_eq!(
        ran.lines().collect::<Vec<_>>(),
        [format!("read_note {NOTE}")]
    );

    // The model was told why, in the tool message answering the `delete_note` call.
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0]["stream"] == json!(true), streamed);
    let told = requests[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == DELETE_CALL_ID)
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(told.contains(DELETE_REFUSAL), "{told}");
    assert!(stdout.contains(DELETE_REFUSAL), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_plain() {
    the_example_refuses_delete_note_and_tells_the_model(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_streamed() {
    the_example_refuses_delete_note_and_tells_the_model(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fabraix_off_the_example_runs_both_tools_and_says_so() {
    // A Fabraix it could reach, to show that nothing does.
    let server = MockServer::start().await.unwrap();
    let model = StandInModel::start().await.unwrap();
    let (mut example, audit) = example("disabled", &model, &server).await;
    let run = example.env("FABRAIX_DISABLED", "1").output();
    let run = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the example finished")
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.starts_with("FABRAIX_DISABLED is set: the Fabraix SDK is off"),
        "{stdout}"
    );
    let ran = std::fs::read_to_string(&audit).unwrap();
    let _ = std::fs::remove_file(&audit);
    assert_eq!(
        ran.lines().collect::<Vec<_>>(),
        [format!("read_note {NOTE}"), format!("delete_note {NOTE}")]
    );
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}
