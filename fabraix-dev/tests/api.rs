//! The JSON behind the page (`/api/...`), for scripts: runs and their timelines, requests
//! outside any run, clearing, live changes, bounded memory, and who may ask.

mod common;
#[path = "../../tests/programs/mod.rs"]
mod programs;

use std::path::PathBuf;

use common::{DevServer, WAIT, get_json};
use serde_json::{Value, json};

/// Python 3, to run `agent.py` (an agent not built from this project) in `test`; `None`
/// (outside CI) when there is none.
fn python(test: &str) -> Option<PathBuf> {
    let found = programs::find_on_path("python3", "FABRAIX_PYTHON");
    programs::require(test, programs::PYTHON, found)
}

const AGENT: &str = "6f1c2b1e-8a40-5c1b-9a57-2d1f3e4b5c6d";

fn support_plan() -> Value {
    json!({
        "agent_id": AGENT,
        "system_prompt": "You are a support assistant.\nNever share PII.",
        "steps": [
            {"event": "user", "content": {"text": "Close my account."}},
            {"check": "lookup_account", "description": "Read an account.", "arguments": {"email": "ada@example.com"}},
            {"event": "tool", "content": {"id": 4711, "plan": "pro"}},
            {"check": "delete_account", "arguments": {"account_id": 4711}},
            {"event": "model_output", "content": {"text": "A colleague will confirm."}, "schema": 3},
        ],
    })
}

async fn post(dev: &DevServer, path: &str, key: &str, body: &Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{}{path}", dev.base_url))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn runs_and_their_timelines_as_json() {
    let Some(python) = python("api::runs_and_their_timelines_as_json") else {
        return;
    };
    let dev = DevServer::start(&["--block", "delete_account=Deleting accounts needs a human."]);
    let ran = dev.run_agent(&python, &support_plan());
    let trace = ran["trace_id"].as_str().unwrap().to_owned();
    let statuses: Vec<&Value> = ran["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 400]);

    let (status, runs) = get_json(&dev.at("/api/runs")).await;
    assert_eq!(status, 200);
    assert!(runs["changes"].as_u64().unwrap() > 0);
    let list = runs["runs"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    let summary = &list[0];
    assert_eq!(summary["trace_id"], trace);
    assert_eq!(summary["agent_id"], AGENT);
    assert_eq!(
        summary["system_prompt"], "You are a support assistant.",
        "first line"
    );
    assert!(summary["registered_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(summary["events"], 3);
    assert_eq!(summary["checks"], 2);
    assert_eq!(summary["blocked"], 1);
    assert_eq!(summary["rejected"], 1);
    assert_eq!(
        summary["types"],
        json!(["action_check", "model_output", "tool", "user"])
    );

    let (status, detail) = get_json(&dev.at(&format!("/api/runs/{trace}"))).await;
    assert_eq!(status, 200);
    let run = &detail["run"];
    assert_eq!(
        run["system_prompt"],
        "You are a support assistant.\nNever share PII."
    );
    let timeline = run["timeline"].as_array().unwrap();
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "register",
            "user",
            "action_check",
            "tool",
            "action_check",
            "model_output"
        ]
    );
    assert_eq!(timeline[0]["agent_id"], AGENT);
    assert_eq!(timeline[0]["registered_at"], summary["registered_at"]);
    // Contents are the text exactly as sent (Python's json.dumps spacing included).
    assert_eq!(timeline[1]["content"], r#"{"text": "Close my account."}"#);
    assert_eq!(timeline[1]["content_json"], true);
    assert_eq!(timeline[1]["status"], 200);
    assert!(timeline[1]["event_id"].is_string());
    assert_eq!(timeline[2]["action"], "lookup_account");
    assert_eq!(timeline[2]["description"], "Read an account.");
    assert_eq!(timeline[2]["arguments"], r#"{"email": "ada@example.com"}"#);
    assert_eq!(timeline[2]["arguments_json"], true);
    assert_eq!(timeline[2]["verdict"]["is_safe"], true);
    assert_eq!(timeline[3]["content"], r#"{"id": 4711, "plan": "pro"}"#);
    assert_eq!(timeline[4]["action"], "delete_account");
    assert_eq!(timeline[4]["verdict"]["is_safe"], false);
    assert_eq!(
        timeline[4]["verdict"]["reasoning"],
        "Deleting accounts needs a human."
    );
    assert_eq!(
        timeline[4]["verdict"]["action_check_id"],
        ran["answers"][3]["body"]["action_check_id"]
    );
    assert_eq!(timeline[5]["status"], 400);
    assert_eq!(timeline[5]["error"]["code"], "INVALID_SCHEMA");
    assert_eq!(
        timeline[5]["content"],
        r#"{"text": "A colleague will confirm."}"#
    );
    let sequences: Vec<u64> = timeline
        .iter()
        .map(|i| i["sequence"].as_u64().unwrap())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");

    // What is not a JSON document is shown as sent, and said to be so.
    let broken = json!({
        "event_type": "tool",
        "trace_id": trace,
        "timestamp": 1_700_000_000.0,
        "content": "{not json",
        "schema": "{}",
    });
    assert_eq!(post(&dev, "/event", &dev.api_key, &broken).await, 400);
    let (_, detail) = get_json(&dev.at(&format!("/api/runs/{trace}"))).await;
    let last = detail["run"]["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["content"], "{not json");
    assert_eq!(last["content_json"], false);
    assert_eq!(last["error"]["code"], "INVALID_CONTENT");

    let (status, missing) = get_json(&dev.at(&format!("/api/runs/{}", uuid_like(7)))).await;
    assert_eq!(status, 404, "{missing}");
    let (status, _) = get_json(&dev.at("/api/runs/not-a-trace")).await;
    assert_eq!(status, 404);
}

fn uuid_like(n: u8) -> String {
    format!("{n:08x}-0000-4000-8000-000000000000")
}

#[tokio::test]
async fn requests_outside_any_run_are_listed_with_their_answers() {
    let dev = DevServer::start(&[]);
    let event = json!({
        "event_type": "user",
        "trace_id": uuid_like(1),
        "timestamp": 1_700_000_000.0,
        "content": "{}",
        "schema": "{}",
    });
    assert_eq!(post(&dev, "/event", "wrong-key", &event).await, 401);
    assert_eq!(post(&dev, "/event", &dev.api_key, &event).await, 404);

    let (status, answer) = get_json(&dev.at("/api/unattached")).await;
    assert_eq!(status, 200);
    let requests = answer["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2, "{answer}");
    // Newest first.
    assert_eq!(requests[0]["status"], 404);
    assert_eq!(requests[0]["error"]["code"], "TRACE_NOT_FOUND");
    assert_eq!(requests[0]["authenticated"], true);
    assert_eq!(requests[1]["status"], 401);
    assert_eq!(requests[1]["error"]["code"], "INVALID_API_KEY");
    assert_eq!(requests[1]["authenticated"], false);
    assert_eq!(requests[1]["path"], "/v1/event");
    assert_eq!(requests[1]["body"], event.to_string());
    let (_, runs) = get_json(&dev.at("/api/runs")).await;
    assert_eq!(runs["runs"], json!([]));
}

#[tokio::test]
async fn clearing_forgets_the_records_but_not_the_runs_still_going() {
    let Some(python) = python("api::clearing_forgets_the_records_but_not_the_runs_still_going")
    else {
        return;
    };
    let dev = DevServer::start(&[]);
    let ran = dev.run_agent(&python, &support_plan());
    let trace = ran["trace_id"].as_str().unwrap();

    let cleared = reqwest::Client::new()
        .delete(dev.at("/api/runs"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status().as_u16(), 200);
    let (_, runs) = get_json(&dev.at("/api/runs")).await;
    assert_eq!(runs["runs"], json!([]));

    // The agent goes on logging to its trace: the run shows again, without its registration.
    let event = json!({
        "event_type": "system",
        "trace_id": trace,
        "timestamp": 1_700_000_000.0,
        "content": "{\"note\":\"after clear\"}",
        "schema": "{\"type\":\"object\"}",
    });
    assert_eq!(post(&dev, "/event", &dev.api_key, &event).await, 200);
    let (_, runs) = get_json(&dev.at("/api/runs")).await;
    let list = runs["runs"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["trace_id"], trace);
    assert_eq!(list[0]["agent_id"], Value::Null);
    assert_eq!(list[0]["events"], 1);
}

#[tokio::test]
async fn the_change_count_long_polls_until_something_happens() {
    let Some(python) = python("api::the_change_count_long_polls_until_something_happens") else {
        return;
    };
    let dev = DevServer::start(&[]);
    let (_, runs) = get_json(&dev.at("/api/runs")).await;
    let seen = runs["changes"].as_u64().unwrap();

    let poll = tokio::spawn({
        let url = dev.at(&format!("/api/changes?after={seen}"));
        async move { get_json(&url).await }
    });
    // The poll answers only after a change, whatever the order in which these run.
    let plan = json!({"agent_id": AGENT, "system_prompt": "p", "steps": []});
    let agent = tokio::task::spawn_blocking({
        let (base_url, key) = (dev.base_url.clone(), dev.api_key.clone());
        move || common::python_agent(&python, &base_url, &key, &plan.to_string())
    });
    let (status, changed) = tokio::time::timeout(WAIT, poll).await.unwrap().unwrap();
    assert_eq!(status, 200);
    assert!(changed["changes"].as_u64().unwrap() > seen, "{changed}");
    agent.await.unwrap();

    let (status, _) = get_json(&dev.at("/api/changes")).await;
    assert_eq!(status, 400, "`after` is required");
}

#[tokio::test]
async fn keep_runs_keeps_the_newest_runs() {
    let Some(python) = python("api::keep_runs_keeps_the_newest_runs") else {
        return;
    };
    let dev = DevServer::start(&["--keep-runs", "2"]);
    let traces: Vec<String> = (0..3)
        .map(|n| {
            let plan = json!({
                "agent_id": AGENT,
                "system_prompt": format!("run {n}"),
                "steps": [{"event": "user", "content": {"n": n}}],
            });
            dev.run_agent(&python, &plan)["trace_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let (_, runs) = get_json(&dev.at("/api/runs")).await;
    let listed: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [traces[2].as_str(), traces[1].as_str()],
        "newest first"
    );

    let late = json!({
        "event_type": "user",
        "trace_id": traces[0],
        "timestamp": 1_700_000_000.0,
        "content": "{}",
        "schema": "{}",
    });
    assert_eq!(
        post(&dev, "/event", &dev.api_key, &late).await,
        404,
        "forgotten"
    );
}

#[tokio::test]
async fn only_the_local_page_may_read_or_clear() {
    let dev = DevServer::start(&[]);
    let http = reqwest::Client::new();

    let elsewhere = http
        .get(dev.at("/api/runs"))
        .header("host", format!("attacker.example:{}", dev.port))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status().as_u16(), 421);

    let by_name = http
        .get(dev.at("/api/runs"))
        .header("host", format!("localhost:{}", dev.port))
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.status().as_u16(), 200);

    let cross = http
        .delete(dev.at("/api/runs"))
        .header("origin", "http://attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status().as_u16(), 403);

    let wrong_method = http.post(dev.at("/api/runs")).send().await.unwrap();
    assert_eq!(wrong_method.status().as_u16(), 405);
    assert_eq!(wrong_method.headers()["allow"], "GET, DELETE");
    let (status, _) = get_json(&dev.at("/nothing-here")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_page_is_self_contained_and_never_parses_data_as_html() {
    let dev = DevServer::start(&[]);
    let page = reqwest::get(dev.at("/")).await.unwrap();
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN"
    );

    for (path, kind) in [
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let asset = reqwest::get(dev.at(path)).await.unwrap();
        assert_eq!(asset.status().as_u16(), 200, "{path}");
        assert_eq!(asset.headers()["content-type"], kind, "{path}");
        assert_eq!(asset.headers()["x-content-type-options"], "nosniff");
        let text = asset.text().await.unwrap();
        if path == "/app.js" {
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!text.contains(sink), "app.js uses {sink}");
            }
        }
    }

    let (status, info) = get_json(&dev.at("/api/info")).await;
    assert_eq!(status, 200);
    assert_eq!(info["base_url"], dev.base_url);
    assert!(
        !info.to_string().contains(&dev.api_key),
        "the key is not served to pages"
    );
}

#[tokio::test]
async fn rate_limit_answers_429_past_its_window_and_the_page_shows_it() {
    let Some(python) = python("api::rate_limit_answers_429_past_its_window_and_the_page_shows_it")
    else {
        return;
    };
    let dev = DevServer::start(&["--rate-limit", "3/h"]);
    let plan = json!({
        "agent_id": AGENT,
        "system_prompt": "You are limited.",
        "steps": [
            {"event": "user", "content": {"text": "one"}},
            {"event": "user", "content": {"text": "two"}},
            {"event": "user", "content": {"text": "three"}},
        ],
    });
    let ran = dev.run_agent(&python, &plan);
    let statuses: Vec<&Value> = ran["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    // The registration and two events fill the window of 3; the third event is refused.
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(
        ran["answers"][2]["body"]["error"]["code"],
        "RATE_LIMIT_EXCEEDED"
    );

    let raw = reqwest::Client::new()
        .post(format!("{}/event", dev.base_url))
        .header("x-api-key", &dev.api_key)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 429);
    let retry_after: u64 = raw.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");

    let trace = ran["trace_id"].as_str().unwrap();
    let (_, detail) = get_json(&dev.at(&format!("/api/runs/{trace}"))).await;
    let run = &detail["run"];
    assert_eq!(run["rejected"], 1);
    let last = run["timeline"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], 429);
    assert_eq!(last["error"]["code"], "RATE_LIMIT_EXCEEDED");

    let (_, info) = get_json(&dev.at("/api/info")).await;
    assert_eq!(info["rate_limit"], "3/h");
    assert_eq!(info["rate_limited"], 2);
}
