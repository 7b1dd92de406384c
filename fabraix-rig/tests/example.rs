//! The `rig_agent` example, run as a program: against a stand-in model that asks for
//! both tools and a Fabraix that blocks `delete_note`, one run is registered, the model's
//! requests and answers are logged, both calls are checked, `delete_note` never runs, and
//! the model is told why.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use fabraix::AgentId;
use fabraix::testing::{Endpoint, MockServer};
use serde_json::json;
use support::*;

const EXAMPLE_BLOCK_REASON: &str = "The note is shared with the user's family.";

/// The example's binary, next to this test's (`cargo test` builds the examples first);
/// built here when a narrower `cargo test --test example` did not.
fn example_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap();
        let binary = profile_dir
            .join("examples")
            .join(format!("rig_agent{}", std::env::consts::EXE_SUFFIX));
        if !binary.exists() {
            let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
                Some("debug") | None => "dev",
                Some(other) => other,
            };
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "-p",
                    "fabraix-rig",
                    "--example",
                    "rig_agent",
                    "--profile",
                ])
                .arg(profile)
                .status()
                .unwrap();
            assert!(status.success(), "the example did not build");
        }
        binary
    })
}

/// A fresh audit file path.
fn audit_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "fabraix-rig-audit-{}-{name}.txt",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// Runs the example with `env` (and no OPENAI_* or FABRAIX_* of this process's).
async fn run_example(env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(example_binary());
        for (name, _) in std::env::vars() {
            if name.starts_with("OPENAI_") || name.starts_with("FABRAIX_") || name == "NOTES_AUDIT"
            {
                command.env_remove(name);
            }
        }
        command.envs(env).output().unwrap()
    })
    .await
    .unwrap()
}

/// What a run of the example against the stand-ins left: the Fabraix it could reach, the
/// model, what it printed, and which tools ran (its audit file).
struct Ran {
    server: MockServer,
    model: StandInModel,
    stdout: String,
    tools_ran: String,
}

/// Runs the example, to success, against a stand-in model that asks for both tools and a
/// MockServer that blocks `delete_note`, with `env` too.
async fn run_against_stand_ins(name: &str, env: &[(&'static str, &str)]) -> Ran {
    let server = MockServer::start().await.unwrap();
    server.block_action("delete_note", EXAMPLE_BLOCK_REASON);
    let model = StandInModel::start([
        Reply::ToolCalls(vec![
            Reply::tool_call("read_note", json!({ "name": "old-todo" })),
            Reply::tool_call("delete_note", json!({ "name": "old-todo" })),
        ]),
        Reply::EchoToolResults,
    ])
    .await
    .unwrap();
    let audit = audit_path(name);
    let mut all = vec![
        ("OPENAI_BASE_URL", model.url().to_owned()),
        ("OPENAI_API_KEY", "stand-in-key".to_owned()),
        ("FABRAIX_API_KEY", server.api_key().to_owned()),
        ("FABRAIX_BASE_URL", server.url()),
        ("NOTES_AUDIT", audit.display().to_string()),
    ];
    all.extend(env.iter().map(|(name, value)| (*name, (*value).to_owned())));
    let output = run_example(all).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tools_ran = std::fs::read_to_string(&audit).unwrap_or_default();
    let _ = std::fs::remove_file(&audit);
    Ran {
        server,
        model,
        stdout,
        tools_ran,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_against_a_stand_in_model_and_a_blocking_fabraix() {
    let Ran {
        server,
        model,
        stdout,
        tools_ran,
    } = run_against_stand_ins("stand-ins", &[]).await;

    // `delete_note` never ran; `read_note` did.
    assert_eq!(tools_ran, "read_note old-todo\n");

    // One run.
    let registrations = server.requests_to(Endpoint::RegisterAgentRun);
    assert_eq!(registrations.len(), 1);
    assert_eq!(
        registrations[0].body["agent_id"],
        AgentId::from_name("notes-tidier")
            .unwrap()
            .to_string()
            .as_str()
    );
    let trace = server.issued_traces()[0].to_string();

    // Both calls checked in it.
    let checks = server.requests_to(Endpoint::Check);
    let checked: Vec<&str> = checks
        .iter()
        .map(|check| check.body["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(checked, [trace.as_str(), trace.as_str()]);
    let names: Vec<String> = checks
        .iter()
        .map(|check| schema(check)["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["read_note", "delete_note"]);
    assert!(
        checks
            .iter()
            .all(|check| content(check) == json!({ "name": "old-todo" }))
    );

    // The model's requests and answers logged in it, and both tool results.
    let events = events(&server);
    assert!(events.iter().all(|(_, t, _)| *t == trace));
    let kinds: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "model_input",
            "model_output",
            "tool",
            "tool",
            "model_input",
            "model_output"
        ]
    );
    let system = &events[0].2["messages"][0];
    assert_eq!(system["role"], "system");
    assert_eq!(
        registrations[0].body["system_prompt"],
        system["content"][0]["text"]
    );

    // The model was told why: the blocked call's result is Fabraix's reasoning.
    let results = model.tool_results(1);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[1].1.contains(EXAMPLE_BLOCK_REASON), "{results:?}");
    assert!(results[0].1.contains("call the plumber"), "{results:?}");
    // And the example printed the model's answer.
    assert!(stdout.contains(EXAMPLE_BLOCK_REASON), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_runs_offline() {
    let audit = audit_path("offline");

    let output = run_example(vec![("NOTES_AUDIT", audit.display().to_string())]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    assert_eq!(
        std::fs::read_to_string(&audit).unwrap(),
        "read_note old-todo\n"
    );
    let _ = std::fs::remove_file(&audit);
    assert!(stdout.contains("in-process MockServer"), "{stdout}");
    assert!(stdout.contains("stand-in model"), "{stdout}");
    assert!(
        stdout.contains("The call to `delete_note` did not run: Fabraix blocked it"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Notes left: groceries, old-todo"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 registration(s), 6 event(s) and 2 check(s)"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fabraix_off_the_example_runs_both_tools_and_says_so() {
    let ran = run_against_stand_ins("disabled", &[("FABRAIX_DISABLED", "1")]).await;
    assert!(
        ran.stdout
            .starts_with("FABRAIX_DISABLED is set: the Fabraix SDK is off"),
        "{}",
        ran.stdout
    );
    assert_eq!(ran.tools_ran, "read_note old-todo\ndelete_note old-todo\n");
    // A Fabraix it could reach, and nothing reached it.
    assert!(
        ran.server.requests().is_empty(),
        "{:#?}",
        ran.server.requests()
    );
}
