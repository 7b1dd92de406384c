//! `notes_server` driven over stdio by an MCP client that is not built from this project:
//! the official MCP Python SDK (`mcp` on PyPI). Every call is checked before its tool
//! runs, in the caller's run when `_meta` carries one; a blocked or unchecked tool never
//! runs (as the server's audit file shows).
//!
//! Needs `python3` with the `mcp` package (`python3 -m pip install 'mcp==2.3.0'`; another
//! interpreter through `FABRAIX_MCP_PYTHON`). Without it the tests do not run and say so on
//! the terminal, except under CI (`CI` set), where they fail.

mod common;
#[path = "../../tests/programs/mod.rs"]
mod programs;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use fabraix::testing::{Endpoint, MockServer};
use fabraix::{AgentId, propagation};
use serde_json::{Map, Value, json};

/// The Python interpreter with the `mcp` package, for `test`: `FABRAIX_MCP_PYTHON`, else
/// `python3`. Without one, `None` (outside CI): the test does not run, and says so.
fn python(test: &str) -> Option<String> {
    let python = std::env::var("FABRAIX_MCP_PYTHON").unwrap_or_else(|_| "python3".into());
    let imports = std::process::Command::new(&python)
        .args(["-c", "import mcp.client.stdio"])
        .output();
    let found = match imports {
        Ok(output) if output.status.success() => Ok(python),
        Ok(_) => Err(format!(
            "`{python}` cannot import `mcp`; or name an interpreter that can in FABRAIX_MCP_PYTHON"
        )),
        Err(error) => Err(format!("`{python}` does not run: {error}")),
    };
    programs::require(test, programs::PYTHON_MCP, found)
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/notes_client.py")
}

/// One call for the Python client to make.
fn call(tool: &str, name: &str, meta: Option<&Map<String, Value>>) -> Value {
    json!({ "tool": tool, "name": name, "meta": meta })
}

/// What the Python client printed: the tools listed, and each call's result.
struct Outcome {
    tools: Vec<String>,
    results: Vec<(bool, String)>,
}

/// Runs the Python client against `notes_server`, pointed at `mock`, with `calls`.
async fn drive(python: &str, mock: &MockServer, audit: &Path, calls: &[Value]) -> Outcome {
    let calls_file = scratch_file("calls.json");
    std::fs::write(&calls_file, serde_json::to_vec(calls).unwrap()).unwrap();
    let mut command = tokio::process::Command::new(python);
    command
        .arg(script())
        .arg(notes_server())
        .arg(&calls_file)
        .env("FABRAIX_API_KEY", mock.api_key())
        .env("FABRAIX_BASE_URL", mock.url())
        .env("FABRAIX_MAX_RETRIES", "1")
        .env("NOTES_AUDIT", audit)
        .env_remove("FABRAIX_DISABLED")
        .kill_on_drop(true);
    // A bound on a hung client, not a timing assertion.
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the Python client finishes")
        .expect("the Python client starts");
    let _ = std::fs::remove_file(&calls_file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python client failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
    let tools = printed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool.as_str().unwrap().to_owned())
        .collect();
    let results = printed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["is_error"].as_bool().unwrap(),
                r["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    Outcome { tools, results }
}

#[tokio::test]
async fn the_python_sdk_sees_every_call_checked_in_the_callers_run_or_the_servers() {
    let test =
        "python_client::the_python_sdk_sees_every_call_checked_in_the_callers_run_or_the_servers";
    let Some(python) = python(test) else { return };
    let mock = MockServer::start().await.unwrap();
    mock.block_action(
        "delete_note",
        "Deleting notes needs the user's confirmation.",
    );
    let trace = caller_run(&mock.client()).await;
    let mut meta = Map::new();
    propagation::inject(&trace, &mut meta);
    let garbage: Map<String, Value> = json!({ "traceparent": "00-garbage", "baggage": 42 })
        .as_object()
        .unwrap()
        .clone();
    let audit = scratch_file("audit");

    let outcome = drive(
        &python,
        &mock,
        &audit,
        &[
            call("read_note", "groceries", Some(&meta)),
            call("delete_note", "todo", Some(&meta)),
            call("read_note", "todo", None),
            call("delete_note", "passwords", None),
            call("read_note", "passwords", Some(&garbage)),
        ],
    )
    .await;

    assert_eq!(outcome.tools, ["delete_note", "read_note"]);
    let r = &outcome.results;
    assert_eq!(r[0], (false, "oat milk, lemons, rye bread".to_owned()));
    assert!(r[1].0, "a blocked call answers isError");
    assert!(
        r[1].1
            .contains("Deleting notes needs the user's confirmation."),
        "{}",
        r[1].1
    );
    assert_eq!(
        r[2],
        (false, "renew the passport; call the plumber".to_owned())
    );
    assert!(
        r[3].0
            && r[3]
                .1
                .contains("Deleting notes needs the user's confirmation.")
    );
    assert_eq!(r[4], (false, "bank: hunter2".to_owned()));

    // Only the approved tools ran.
    assert_eq!(
        audit_lines(&audit),
        [
            "read_note groceries",
            "read_note todo",
            "read_note passwords"
        ]
    );

    // The traced calls were checked in the caller's run; the others in the one run the
    // server registered for the session.
    let registrations = mock.requests_to(Endpoint::RegisterAgentRun);
    assert_eq!(registrations.len(), 2, "the caller's run and the session's");
    assert_eq!(
        registrations[1].body["agent_id"],
        AgentId::from_name("notes-server").unwrap().to_string()
    );
    let caller = trace.trace_id().to_string();
    let session = mock.issued_traces()[1].to_string();
    let checked: Vec<(String, Value, String)> = checks(&mock)
        .iter()
        .map(|c| (checked_action(c), document(c, "content"), trace_of(c)))
        .collect();
    assert_eq!(
        checked,
        [
            (
                "read_note".into(),
                json!({ "name": "groceries" }),
                caller.clone()
            ),
            (
                "delete_note".into(),
                json!({ "name": "todo" }),
                caller.clone()
            ),
            (
                "read_note".into(),
                json!({ "name": "todo" }),
                session.clone()
            ),
            (
                "delete_note".into(),
                json!({ "name": "passwords" }),
                session.clone()
            ),
            (
                "read_note".into(),
                json!({ "name": "passwords" }),
                session.clone()
            ),
        ]
    );
    // Each check described the tool from its input schema.
    let schema = document(&checks(&mock)[1], "schema");
    assert_eq!(schema["parameters"]["required"], json!(["name"]));
    // The approved calls' `tool` events, in the runs they ran in.
    let tool_events = events(&mock, "tool", 3).await;
    let runs: Vec<String> = tool_events.iter().map(trace_of).collect();
    assert_eq!(runs, [caller, session.clone(), session]);
    let _ = std::fs::remove_file(&audit);
}

#[tokio::test]
async fn the_python_sdk_sees_no_tool_run_while_fabraix_is_unreachable() {
    let test = "python_client::the_python_sdk_sees_no_tool_run_while_fabraix_is_unreachable";
    let Some(python) = python(test) else { return };
    let mock = MockServer::start().await.unwrap();
    let trace = caller_run(&mock.client()).await;
    let mut meta = Map::new();
    propagation::inject(&trace, &mut meta);
    let audit = scratch_file("audit");

    mock.pause().unwrap();
    let outcome = drive(
        &python,
        &mock,
        &audit,
        &[
            call("read_note", "groceries", Some(&meta)),
            call("delete_note", "todo", Some(&meta)),
            call("read_note", "todo", None),
        ],
    )
    .await;

    for (is_error, text) in &outcome.results {
        assert!(is_error, "an unchecked call answers isError");
        assert!(text.contains("could not check"), "{text}");
        assert!(text.contains("did not run"), "{text}");
    }
    assert_eq!(outcome.results.len(), 3);
    assert_eq!(audit_lines(&audit), Vec::<String>::new());
}
