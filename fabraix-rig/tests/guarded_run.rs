//! A real rig agent on the stand-in model, with Fabraix blocking `delete_note`: what the
//! model, the tools and Fabraix each see.

mod support;

use fabraix::AgentId;
use fabraix::testing::{Endpoint, MockServer};
use fabraix_rig::FabraixHook;
use serde_json::json;
use support::*;

#[tokio::test]
async fn a_blocked_call_never_runs_and_the_model_reads_why() {
    let server = MockServer::start().await.unwrap();
    server.block_action("delete_note", BLOCK_REASON);
    let model = StandInModel::start(read_then_delete()).await.unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    let agent = agent(&model, &notebook, FabraixHook::new(server.client()));

    let answer = agent.prompt(PROMPT).await.unwrap();

    // The tools: only `read_note` ran; the note is still there.
    assert_eq!(notebook.ran(), ["read_note groceries"]);
    assert!(notebook.contains("groceries"));

    // The model: its second request answers each call, the blocked one with the reasoning.
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let results = model.tool_results(1);
    assert_eq!(results.len(), 2, "{results:?}");
    let (read, delete) = (&results[0], &results[1]);
    assert_eq!(read.0, "call_1");
    assert_eq!(read.1, GROCERIES);
    assert_eq!(delete.0, "call_2");
    // The words every Fabraix guard gives a model.
    assert_eq!(
        delete.1,
        format!(
            "The call to `delete_note` did not run: Fabraix blocked it. Reason: {BLOCK_REASON}"
        )
    );
    assert!(
        answer.output().contains(BLOCK_REASON),
        "{}",
        answer.output()
    );

    // Fabraix: one run, registered with the agent's name and preamble.
    let registrations = server.requests_to(Endpoint::RegisterAgentRun);
    assert_eq!(registrations.len(), 1);
    let agent_id = AgentId::from_name("notes-tidier").unwrap().to_string();
    assert_eq!(registrations[0].body["agent_id"], agent_id.as_str());
    assert_eq!(registrations[0].body["system_prompt"], PREAMBLE);
    let trace = server.issued_traces()[0].to_string();

    // Both calls checked in that run, each with the tool's schema and the model's arguments.
    let checks = server.requests_to(Endpoint::Check);
    assert_eq!(checks.len(), 2);
    for (check, tool, description) in [
        (&checks[0], "read_note", "Read a note by its name."),
        (&checks[1], "delete_note", "Delete a note by its name."),
    ] {
        assert_eq!(check.body["trace_id"], trace.as_str());
        assert_eq!(content(check), json!({ "name": "groceries" }));
        assert_eq!(
            schema(check),
            json!({
                "type": "function",
                "name": tool,
                "description": description,
                "parameters": support::notes::note_parameters(),
            })
        );
    }

    // The events: all in the run, the model's requests and answers and both tool results.
    // A run the hook registered is flushed when the rig run ends.
    let events = events(&server);
    assert!(events.iter().all(|(_, t, _)| *t == trace), "{events:?}");
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

    let first_input = &events[0].2;
    assert_eq!(first_input["turn"], 1);
    assert_eq!(first_input["stream"], false);
    assert_eq!(
        first_input["messages"],
        json!([
            { "role": "system", "content": [{ "type": "text", "text": PREAMBLE }] },
            { "role": "user", "content": [{ "type": "text", "text": PROMPT }] },
        ])
    );
    let offered: Vec<&str> = first_input["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered.len(), 2);
    assert!(offered.contains(&"read_note") && offered.contains(&"delete_note"));

    let first_output = &events[1].2;
    assert_eq!(first_output["complete"], true);
    assert_eq!(first_output["finish_reason"], "tool_calls");
    assert_eq!(
        first_output["content"],
        json!([
            { "type": "tool_call", "id": "call_1", "name": "read_note", "arguments": { "name": "groceries" } },
            { "type": "tool_call", "id": "call_2", "name": "delete_note", "arguments": { "name": "groceries" } },
        ])
    );

    let read_event = &events[2].2;
    assert_eq!(read_event["name"], "read_note");
    assert_eq!(read_event["status"], "success");
    assert_eq!(read_event["output"], GROCERIES);
    assert_eq!(read_event["arguments"], json!({ "name": "groceries" }));
    let delete_event = &events[3].2;
    assert_eq!(delete_event["name"], "delete_note");
    assert_eq!(delete_event["status"], "skipped");
    assert!(
        delete_event["output"]
            .as_str()
            .unwrap()
            .contains(BLOCK_REASON)
    );

    let second_input = &events[4].2;
    assert_eq!(second_input["turn"], 2);
    let tool_message = second_input["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["content"].as_array().unwrap())
        .find(|part| part["type"] == "tool_result" && part["name"] == "delete_note")
        .unwrap();
    assert!(
        tool_message["output"]
            .as_str()
            .unwrap()
            .contains(BLOCK_REASON)
    );

    let final_output = &events[5].2;
    assert_eq!(final_output["content"][0]["type"], "text");
    assert_eq!(final_output["content"][0]["text"], answer.output());
    assert_eq!(final_output["finish_reason"], "stop");
}

#[tokio::test]
async fn each_event_carries_a_schema_its_content_fits() {
    let server = MockServer::start().await.unwrap();
    let model = StandInModel::start(read_then_delete()).await.unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    let agent = agent(&model, &notebook, FabraixHook::new(server.client()));
    agent.prompt(PROMPT).await.unwrap();

    let events = server.requests_to(Endpoint::Event);
    assert_eq!(events.len(), 6);
    for event in &events {
        let schema = schema(event);
        let content = content(event);
        assert_eq!(schema["type"], "object");
        for required in schema["required"].as_array().unwrap() {
            let field = required.as_str().unwrap();
            assert!(
                content.get(field).is_some(),
                "{} event lacks `{field}`: {content}",
                event.body["event_type"]
            );
        }
        for field in content.as_object().unwrap().keys() {
            assert!(
                schema["properties"].get(field).is_some(),
                "{} event has `{field}`, which its schema does not describe",
                event.body["event_type"]
            );
        }
    }
}

#[tokio::test]
async fn agent_id_and_system_prompt_can_be_set() {
    let server = MockServer::start().await.unwrap();
    let model = StandInModel::start([Reply::Text("Nothing to tidy.".into())])
        .await
        .unwrap();
    let notebook = Notebook::default();
    let hook = FabraixHook::new(server.client())
        .agent_id("notes-prod-v2")
        .system_prompt("The prompt Fabraix judges by.");
    agent(&model, &notebook, hook).prompt(PROMPT).await.unwrap();

    let registrations = server.requests_to(Endpoint::RegisterAgentRun);
    assert_eq!(registrations.len(), 1);
    assert_eq!(
        registrations[0].body["agent_id"],
        AgentId::from_name("notes-prod-v2")
            .unwrap()
            .to_string()
            .as_str()
    );
    assert_eq!(
        registrations[0].body["system_prompt"],
        "The prompt Fabraix judges by."
    );
}

#[tokio::test]
async fn each_rig_run_outside_an_agent_fn_is_a_run_of_its_own() {
    let server = MockServer::start().await.unwrap();
    let model = StandInModel::start([Reply::Text("one".into()), Reply::Text("two".into())])
        .await
        .unwrap();
    let notebook = Notebook::default();
    let agent = agent(&model, &notebook, FabraixHook::new(server.client()));
    agent.prompt("first").await.unwrap();
    agent.prompt("second").await.unwrap();

    let traces = server.issued_traces();
    assert_eq!(traces.len(), 2);
    let events = events(&server);
    let per_run: Vec<(String, String)> = events
        .iter()
        .map(|(kind, trace, _)| (kind.clone(), trace.clone()))
        .collect();
    let (first, second) = (traces[0].to_string(), traces[1].to_string());
    assert_eq!(
        per_run,
        [
            ("model_input".to_owned(), first.clone()),
            ("model_output".to_owned(), first),
            ("model_input".to_owned(), second.clone()),
            ("model_output".to_owned(), second),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_run_concurrently_are_each_checked() {
    let server = MockServer::start().await.unwrap();
    server.block_action("delete_note", BLOCK_REASON);
    let calls: Vec<(String, serde_json::Value)> = ["a", "b", "c"]
        .into_iter()
        .flat_map(|name| {
            [
                Reply::tool_call("read_note", json!({ "name": name })),
                Reply::tool_call("delete_note", json!({ "name": name })),
            ]
        })
        .collect();
    let model = StandInModel::start([Reply::ToolCalls(calls), Reply::EchoToolResults])
        .await
        .unwrap();
    let notebook = Notebook::with(&[("a", "1"), ("b", "2"), ("c", "3")]);
    let agent = agent(&model, &notebook, FabraixHook::new(server.client()));

    agent.prompt(PROMPT).tool_concurrency(4).await.unwrap();

    let mut ran = notebook.ran();
    ran.sort();
    assert_eq!(ran, ["read_note a", "read_note b", "read_note c"]);
    assert_eq!(server.requests_to(Endpoint::RegisterAgentRun).len(), 1);
    assert_eq!(server.requests_to(Endpoint::Check).len(), 6);
    let results = model.tool_results(1);
    assert_eq!(results.len(), 6);
    let refused = results
        .iter()
        .filter(|(_, text)| text.contains(BLOCK_REASON))
        .count();
    assert_eq!(refused, 3, "{results:?}");
}
