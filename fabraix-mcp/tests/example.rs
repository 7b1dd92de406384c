//! The `notes_client` example, run as a program (it starts `notes_server` itself): offline
//! on its MockServer, which blocks `delete_note`, and with Fabraix off.

mod common;

use std::process::Output;
use std::time::Duration;

use common::*;
use fabraix::testing::MockServer;

/// Runs `notes_client` (built beside the tests, as `notes_server` is) with `env` and none of
/// this process's `FABRAIX_*` variables.
async fn run_notes_client(env: &[(&str, String)]) -> Output {
    let path =
        notes_server().with_file_name(format!("notes_client{}", std::env::consts::EXE_SUFFIX));
    let mut command = tokio::process::Command::new(path);
    for (name, _) in std::env::vars() {
        if name.starts_with("FABRAIX_") || name == "NOTES_AUDIT" {
            command.env_remove(name);
        }
    }
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    // A bound on a hung example, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the example finishes")
        .expect("the example starts")
}

fn stdout(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn offline_the_example_reads_a_note_and_is_refused_the_delete() {
    let audit = scratch_file("audit");
    let output = run_notes_client(&[("NOTES_AUDIT", audit.display().to_string())]).await;
    let printed = stdout(&output);
    assert!(
        printed.starts_with("FABRAIX_API_KEY is not set: using an in-process MockServer"),
        "{printed}"
    );
    assert!(
        printed.contains(
            "delete_note todo: error: The call to `delete_note` did not run: Fabraix blocked \
             it. Reason: Deleting notes needs the user's confirmation."
        ),
        "{printed}"
    );
    assert_eq!(audit_lines(&audit), ["read_note groceries"]);
    let _ = std::fs::remove_file(&audit);
}

#[tokio::test]
async fn with_fabraix_off_the_example_runs_every_tool_and_says_so() {
    // A Fabraix it could reach, to show that nothing does.
    let mock = MockServer::start().await.unwrap();
    mock.block_action("delete_note", "Never.");
    let audit = scratch_file("audit");
    let output = run_notes_client(&[
        ("FABRAIX_DISABLED", "1".to_owned()),
        ("FABRAIX_API_KEY", mock.api_key().to_owned()),
        ("FABRAIX_BASE_URL", mock.url()),
        ("NOTES_AUDIT", audit.display().to_string()),
    ])
    .await;
    let printed = stdout(&output);
    assert!(
        printed.starts_with("FABRAIX_DISABLED is set: the Fabraix SDK is off"),
        "{printed}"
    );
    assert!(
        printed.contains("delete_note todo: ok: deleted todo"),
        "{printed}"
    );
    assert_eq!(
        audit_lines(&audit),
        ["read_note groceries", "delete_note todo"]
    );
    let _ = std::fs::remove_file(&audit);
    assert!(mock.requests().is_empty(), "{:#?}", mock.requests());
}
