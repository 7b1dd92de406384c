//! Streamed answers are logged whole once their stream ends, tool calls included; one
//! that breaks off is logged with what had arrived.

mod support;

use fabraix::testing::MockServer;
use fabraix_rig::FabraixHook;
use futures::StreamExt;
use rig_agent::agent::MultiTurnStreamItem;
use rig_agent::completion::PromptError;
use serde_json::json;
use support::*;

/// Consumes a streamed run: the final text, or the error it ended with, and how many
/// text fragments it streamed.
async fn consume(agent: &rig_agent::Agent) -> (Result<String, PromptError>, usize) {
    let mut stream = agent.prompt(PROMPT).stream();
    let mut fragments = 0;
    while let Some(item) = stream.next().await {
        match item {
            Ok(MultiTurnStreamItem::FinalResponse(response)) => {
                return (Ok(response.output().to_owned()), fragments);
            }
            Ok(MultiTurnStreamItem::StreamAssistantItem(_)) => fragments += 1,
            Ok(_) => {}
            Err(error) => return (Err(error), fragments),
        }
    }
    panic!("the stream ended without a final response or an error");
}

#[tokio::test]
async fn a_streamed_answer_is_logged_once_whole_with_its_tool_calls() {
    let server = MockServer::start().await.unwrap();
    server.block_action("delete_note", BLOCK_REASON);
    let model = StandInModel::start([
        Reply::TextAndToolCalls(
            "Let me look at your notes first.".into(),
            vec![
                Reply::tool_call("read_note", json!({ "name": "groceries" })),
                Reply::tool_call("delete_note", json!({ "name": "groceries" })),
            ],
        ),
        Reply::EchoToolResults,
    ])
    .await
    .unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    let agent = agent(&model, &notebook, FabraixHook::new(server.client()));

    let (answer, fragments) = consume(&agent).await;
    let answer = answer.unwrap();

    // It streamed in many pieces...
    assert!(fragments > 10, "{fragments}");
    assert!(model.requests().iter().all(|r| r["stream"] == true));
    // ...and each answer is one event, whole.
    let events = events(&server);
    let outputs = of_type(&events, "model_output");
    assert_eq!(outputs.len(), 2, "{events:?}");
    let first = &outputs[0].2;
    assert_eq!(first["stream"], true);
    assert_eq!(first["complete"], true);
    assert_eq!(
        first["content"],
        json!([
            { "type": "text", "text": "Let me look at your notes first." },
            { "type": "tool_call", "id": "call_1", "name": "read_note", "arguments": { "name": "groceries" } },
            { "type": "tool_call", "id": "call_2", "name": "delete_note", "arguments": { "name": "groceries" } },
        ])
    );
    let last = &outputs[1].2;
    assert_eq!(last["content"], json!([{ "type": "text", "text": answer }]));

    // The streamed run is guarded as the unary one is.
    assert_eq!(notebook.ran(), ["read_note groceries"]);
    let results = model.tool_results(1);
    assert!(results[1].1.contains(BLOCK_REASON), "{results:?}");
    let inputs = of_type(&events, "model_input");
    assert_eq!(inputs.len(), 2);
    assert!(inputs.iter().all(|(_, _, c)| c["stream"] == true));
}

#[tokio::test]
async fn a_stream_that_breaks_off_is_logged_with_what_arrived() {
    let server = MockServer::start().await.unwrap();
    let model = StandInModel::start([Reply::BrokenStream {
        text: "Reading your groceries note".into(),
        tool: "read_note".into(),
        partial_arguments: "{\"name\":\"groc".into(),
    }])
    .await
    .unwrap();
    let notebook = Notebook::with(&[("groceries", GROCERIES)]);
    let agent = agent(&model, &notebook, FabraixHook::new(server.client()));

    let (answer, _) = consume(&agent).await;

    let error = answer.unwrap_err().to_string();
    assert!(notebook.ran().is_empty());
    let events = events(&server);
    let kinds: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["model_input", "model_output", "error"],
        "{events:?}"
    );
    let output = &events[1].2;
    assert_eq!(output["complete"], false);
    assert_eq!(output["stream"], true);
    assert_eq!(
        output["content"],
        json!([
            { "type": "text", "text": "Reading your groceries note" },
            { "type": "tool_call", "id": "", "name": "read_note", "arguments": "{\"name\":\"groc" },
        ])
    );
    assert!(!output["error"].as_str().unwrap().is_empty());
    assert_eq!(events[2].2["error"], error.as_str());
}
