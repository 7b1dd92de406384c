//! Tool calls checked before a hand-written loop runs them: the stand-in model asks for
//! `read_note` and `delete_note`, Fabraix (a MockServer) blocks `delete_note`.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionMessageCustomToolCall, ChatCompletionMessageToolCall,
    ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessageArgs,
    ChatCompletionRequestMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionResponse, CustomTool, CustomToolChatCompletions, CustomToolProperties,
    FunctionCall, FunctionObject,
};
use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{Client, Trace};
use fabraix_openai::{Chat, ChatExt, CheckedToolCalls, Refusal};
use futures::StreamExt;
use serde_json::{Value, json};
use support::stand_in_model::{DELETE_CALL_ID, NOTE, READ_CALL_ID, StandInModel};
use support::{DELETE_REFUSAL, PATIENCE, ask, note_parameters, openai, request, tools};

/// The tools' bodies: they record that they ran.
#[derive(Default)]
struct Tools {
    ran: Mutex<Vec<String>>,
}

impl Tools {
    fn run(&self, name: &str, arguments: &Value) -> String {
        let note = arguments["name"].as_str().unwrap_or_default();
        self.ran.lock().unwrap().push(format!("{name} {note}"));
        match name {
            "read_note" => format!("{note}: milk, eggs, bread"),
            _ => format!("deleted {note}"),
        }
    }

    fn ran(&self) -> Vec<String> {
        self.ran.lock().unwrap().clone()
    }
}

async fn answer(
    chat: &Chat<'_, OpenAIConfig>,
    messages: Vec<ChatCompletionRequestMessage>,
    streamed: bool,
) -> CreateChatCompletionResponse {
    if streamed {
        let mut stream = chat.create_stream(request(messages, true)).await.unwrap();
        while let Some(chunk) = stream.next().await {
            chunk.unwrap();
        }
        stream.completion()
    } else {
        chat.create(request(messages, false)).await.unwrap()
    }
}

/// A hand-written loop, two turns: ask; check the calls; run the allowed ones and answer
/// the refused ones with their tool messages; ask again.
async fn notes_loop(
    chat: &Chat<'_, OpenAIConfig>,
    tools_run: &Tools,
    streamed: bool,
) -> (CheckedToolCalls, String) {
    let mut messages = ask();
    let first = answer(chat, messages.clone(), streamed).await;
    let calls = first.choices[0].message.tool_calls.clone().unwrap();
    messages.push(
        ChatCompletionRequestAssistantMessageArgs::default()
            .tool_calls(calls.clone())
            .build()
            .unwrap()
            .into(),
    );
    let checked = fabraix_openai::check_tool_calls(&tools(), &calls).await;
    for call in &checked.allowed {
        let result = tools_run.run(&call.name, &call.arguments);
        messages.push(
            ChatCompletionRequestToolMessage {
                content: result.into(),
                tool_call_id: call.id.clone(),
            }
            .into(),
        );
    }
    messages.extend(checked.refusal_messages());
    let last = answer(chat, messages, streamed).await;
    (checked, last.choices[0].message.content.clone().unwrap())
}

fn text(content: &ChatCompletionRequestToolMessageContent) -> &str {
    match content {
        ChatCompletionRequestToolMessageContent::Text(text) => text,
        other => panic!("not text: {other:?}"),
    }
}

/// The tool message the stand-in received for `call_id` in its `nth` request.
fn tool_result_received(model: &StandInModel, nth: usize, call_id: &str) -> String {
    let request = &model.requests()[nth];
    let messages = request["messages"].as_array().unwrap();
    let message = messages
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == call_id)
        .unwrap_or_else(|| panic!("no tool message for {call_id} in {request}"));
    message["content"].as_str().unwrap().to_owned()
}

async fn a_blocked_call_never_runs_and_the_model_is_told_why(streamed: bool) {
    let server = MockServer::start().await.unwrap();
    server.block_action("delete_note", DELETE_REFUSAL);
    let model = StandInModel::start().await.unwrap();
    let client = server.client();
    let tools_run = Tools::default();

    #[fabraix::agent(id = "notes-agent", system_prompt = "p", client = client)]
    async fn agent(
        client: &Client,
        base_url: &str,
        tools_run: &Tools,
        streamed: bool,
    ) -> (Trace, CheckedToolCalls, String) {
        let openai = openai(base_url);
        let (checked, last) = notes_loop(&openai.chat().fabraix(), tools_run, streamed).await;
        (fabraix::current_trace().unwrap(), checked, last)
    }
    let (trace, checked, last) = agent(&client, model.base_url(), &tools_run, streamed).await;

    // Only the approved call ran.
    assert_eq!(tools_run.ran(), [format!("read_note {NOTE}")]);
    assert_eq!(checked.allowed.len(), 1);
    assert_eq!(checked.allowed[0].id, READ_CALL_ID);
    assert_eq!(checked.allowed[0].arguments, json!({ "name": NOTE }));
    assert!(
        checked.allowed[0]
            .verdict
            .as_ref()
            .is_some_and(|v| v.is_safe)
    );
    assert_eq!(checked.refused.len(), 1);
    let refused = &checked.refused[0];
    assert_eq!(
        (refused.id.as_str(), refused.name.as_str()),
        (DELETE_CALL_ID, "delete_note")
    );
    assert!(
        matches!(&refused.refusal, Refusal::Blocked { reasoning, .. } if reasoning == DELETE_REFUSAL)
    );
    assert_eq!(refused.message.tool_call_id, DELETE_CALL_ID);
    // The words every Fabraix guard gives a model.
    assert_eq!(
        text(&refused.message.content),
        format!(
            "The call to `delete_note` did not run: Fabraix blocked it. Reason: {DELETE_REFUSAL}"
        )
    );

    // Both calls were checked before anything ran, each with the tool's declared schema
    // and the arguments the model sent (whole, although they were streamed in fragments).
    let checks = server.requests_to(Endpoint::Check);
    assert_eq!(checks.len(), 2);
    let mut checked_names = Vec::new();
    for check in &checks {
        assert_eq!(check.body["trace_id"], trace.trace_id().to_string());
        let schema: Value = serde_json::from_str(check.body["schema"].as_str().unwrap()).unwrap();
        let content: Value = serde_json::from_str(check.body["content"].as_str().unwrap()).unwrap();
        assert_eq!(schema["type"], "function");
        assert_eq!(schema["parameters"], note_parameters());
        assert!(
            schema["description"]
                .as_str()
                .unwrap()
                .contains("the user's notes")
        );
        assert_eq!(content, json!({ "name": NOTE }));
        checked_names.push(schema["name"].as_str().unwrap().to_owned());
    }
    checked_names.sort();
    assert_eq!(checked_names, ["delete_note", "read_note"]);

    // The model's next request carries the read note and, for the blocked call, the reasoning.
    assert_eq!(model.requests().len(), 2);
    assert!(tool_result_received(&model, 1, READ_CALL_ID).contains("milk"));
    assert!(tool_result_received(&model, 1, DELETE_CALL_ID).contains(DELETE_REFUSAL));
    assert!(last.contains(DELETE_REFUSAL), "{last}");
}

#[tokio::test]
async fn a_blocked_call_never_runs_and_the_model_is_told_why_plain() {
    a_blocked_call_never_runs_and_the_model_is_told_why(false).await;
}

#[tokio::test]
async fn a_blocked_call_never_runs_and_the_model_is_told_why_streamed() {
    a_blocked_call_never_runs_and_the_model_is_told_why(true).await;
}

#[tokio::test]
async fn when_fabraix_is_unreachable_no_tool_runs() {
    let server = MockServer::start().await.unwrap();
    let model = StandInModel::start().await.unwrap();
    let client = server
        .client_builder()
        .max_retries(0)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let tools_run = Tools::default();

    #[fabraix::agent(id = "notes-agent", system_prompt = "p", client = client)]
    async fn agent(
        client: &Client,
        server: &MockServer,
        base_url: &str,
        tools_run: &Tools,
    ) -> CheckedToolCalls {
        let openai = openai(base_url);
        let first = openai.chat().create(request(ask(), false)).await.unwrap();
        let calls = first.choices[0].message.tool_calls.clone().unwrap();
        server.pause().unwrap(); // connections to Fabraix are refused from here
        let checked = fabraix_openai::check_tool_calls(&tools(), &calls).await;
        server.resume().unwrap();
        for call in &checked.allowed {
            tools_run.run(&call.name, &call.arguments);
        }
        checked
    }
    let checked = agent(&client, &server, model.base_url(), &tools_run).await;

    assert!(tools_run.ran().is_empty());
    assert!(checked.allowed.is_empty());
    assert_eq!(checked.refused.len(), 2);
    for refused in &checked.refused {
        assert!(
            matches!(&refused.refusal, Refusal::Unchecked(error) if error.is_retryable()),
            "{:?}",
            refused.refusal
        );
        assert!(
            text(&refused.message.content).starts_with(&format!(
                "The call to `{}` did not run: Fabraix could not check it (",
                refused.name
            )),
            "{:?}",
            refused.message
        );
    }
    let ids: Vec<&str> = checked.refused.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [READ_CALL_ID, DELETE_CALL_ID]);
    assert!(server.requests_to(Endpoint::Check).is_empty());
}

async fn with_fabraix_disabled_every_call_runs_unchecked(streamed: bool) {
    // A server the client would reach if it were not disabled, to show that nothing does.
    let server = MockServer::start().await.unwrap();
    let model = StandInModel::start().await.unwrap();
    let client = server.client_builder().disabled(true).build().unwrap();
    let tools_run = Tools::default();

    #[fabraix::agent(id = "notes-agent", system_prompt = "p", client = client)]
    async fn agent(
        client: &Client,
        base_url: &str,
        tools_run: &Tools,
        streamed: bool,
    ) -> (Option<Trace>, CheckedToolCalls) {
        let openai = openai(base_url);
        let (checked, _) = notes_loop(&openai.chat().fabraix(), tools_run, streamed).await;
        (fabraix::current_trace(), checked)
    }
    let (trace, checked) = agent(&client, model.base_url(), &tools_run, streamed).await;

    // Both calls ran, unchecked: no verdict was made up for them.
    assert_eq!(trace, None, "a disabled SDK's run has no trace");
    assert!(checked.all_allowed(), "{:?}", checked.refused);
    let allowed: Vec<(&str, Option<&fabraix::Verdict>)> = checked
        .allowed
        .iter()
        .map(|call| (call.id.as_str(), call.verdict.as_ref()))
        .collect();
    assert_eq!(allowed, [(READ_CALL_ID, None), (DELETE_CALL_ID, None)]);
    assert_eq!(
        tools_run.ran(),
        [format!("read_note {NOTE}"), format!("delete_note {NOTE}")]
    );
    // The model got the tools' real results.
    assert!(tool_result_received(&model, 1, READ_CALL_ID).contains("milk"));
    assert_eq!(
        tool_result_received(&model, 1, DELETE_CALL_ID),
        format!("deleted {NOTE}")
    );
    // Nothing reached Fabraix; the model calls' events were let go, and counted.
    assert!(client.flush(PATIENCE).await);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    assert_eq!(client.stats().events.untraced, 4);
}

#[tokio::test]
async fn with_fabraix_disabled_every_call_runs_unchecked_plain() {
    with_fabraix_disabled_every_call_runs_unchecked(false).await;
}

#[tokio::test]
async fn with_fabraix_disabled_every_call_runs_unchecked_streamed() {
    with_fabraix_disabled_every_call_runs_unchecked(true).await;
}

#[tokio::test]
async fn with_a_disabled_client_checks_in_a_given_trace_allow_the_calls_unchecked() {
    let server = MockServer::start().await.unwrap();
    let client = server.client_builder().disabled(true).build().unwrap();
    // A run no Fabraix ever issued: nothing asks about it.
    let trace_id: fabraix::TraceId = "4f1b2c3d-5e6f-4a8b-9c0d-1e2f3a4b5c6d".parse().unwrap();
    let calls = [
        function_call(READ_CALL_ID, "read_note", r#"{"name":"groceries"}"#),
        function_call(DELETE_CALL_ID, "delete_note", r#"{"name":"groceries"}"#),
        // Not Fabraix's to judge: a tool the request never declared is still refused.
        function_call("invented", "format_disk", "{}"),
    ];

    let checked = fabraix_openai::check_tool_calls_in(&client, trace_id, &tools(), &calls).await;

    let allowed: Vec<&str> = checked.allowed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(allowed, [READ_CALL_ID, DELETE_CALL_ID]);
    assert!(checked.allowed.iter().all(|c| c.verdict.is_none()));
    assert_eq!(checked.refused.len(), 1);
    assert!(matches!(checked.refused[0].refusal, Refusal::UnknownTool));
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}

#[tokio::test]
async fn in_a_run_that_could_not_register_calls_are_refused_and_say_why() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(
        usize::MAX,
        Fault::status(401).on(Endpoint::RegisterAgentRun),
    );
    let client = server.client();
    let calls = [function_call(
        READ_CALL_ID,
        "read_note",
        r#"{"name":"groceries"}"#,
    )];

    #[fabraix::agent(id = "notes-agent", system_prompt = "p", client = client)]
    async fn agent(client: &Client, calls: &[ChatCompletionMessageToolCalls]) -> CheckedToolCalls {
        fabraix_openai::check_tool_calls(&tools(), calls).await
    }
    let checked = agent(&client, &calls).await;

    assert!(checked.allowed.is_empty());
    match &checked.refused[0].refusal {
        Refusal::Unchecked(fabraix::Error::Unregistered { cause }) => {
            assert_eq!(cause.status(), Some(401), "{cause}")
        }
        other => panic!("expected Unregistered, got {other:?}"),
    }
    assert!(server.requests_to(Endpoint::Check).is_empty());
}

fn function_call(id: &str, name: &str, arguments: &str) -> ChatCompletionMessageToolCalls {
    ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
        id: id.to_owned(),
        function: FunctionCall {
            name: name.to_owned(),
            arguments: arguments.to_owned(),
        },
    })
}

fn custom_call(id: &str, name: &str, input: &str) -> ChatCompletionMessageToolCalls {
    ChatCompletionMessageToolCalls::Custom(ChatCompletionMessageCustomToolCall {
        id: id.to_owned(),
        custom_tool: CustomTool {
            name: name.to_owned(),
            input: input.to_owned(),
        },
    })
}

#[tokio::test]
async fn outside_any_run_tool_calls_fail_closed() {
    let server = MockServer::start().await.unwrap();
    let calls = [function_call("c1", "read_note", r#"{"name":"groceries"}"#)];

    let checked = fabraix_openai::check_tool_calls(&tools(), &calls).await;

    assert!(checked.allowed.is_empty());
    assert!(matches!(
        checked.refused[0].refusal,
        Refusal::Unchecked(fabraix::Error::NoTrace)
    ));
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn bad_arguments_and_undeclared_tools_are_refused_without_a_check() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    let mut declared = tools();
    declared.push(ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: "list_notes".to_owned(),
            description: None,
            parameters: None,
            strict: None,
        },
    }));
    let calls = [
        function_call("cut", "read_note", r#"{"name": "groc"#),
        function_call("array", "read_note", r#"["groceries"]"#),
        function_call("invented", "format_disk", "{}"),
        custom_call("wrong-kind", "read_note", "groceries"),
        function_call("no-arguments", "list_notes", ""),
    ];

    #[fabraix::agent(id = "notes-agent", system_prompt = "p", client = client)]
    async fn agent(
        client: &Client,
        declared: &[ChatCompletionTools],
        calls: &[ChatCompletionMessageToolCalls],
    ) -> CheckedToolCalls {
        fabraix_openai::check_tool_calls(declared, calls).await
    }
    let checked = agent(&client, &declared, &calls).await;

    let refusals: Vec<(&str, &Refusal)> = checked
        .refused
        .iter()
        .map(|r| (r.id.as_str(), &r.refusal))
        .collect();
    assert!(matches!(refusals[0], ("cut", Refusal::InvalidArguments(_))));
    assert!(matches!(
        refusals[1],
        ("array", Refusal::InvalidArguments(_))
    ));
    assert!(matches!(refusals[2], ("invented", Refusal::UnknownTool)));
    assert!(matches!(refusals[3], ("wrong-kind", Refusal::UnknownTool)));
    assert_eq!(refusals.len(), 4);
    assert!(text(&checked.refused[0].message.content).contains("not valid JSON"));
    assert!(text(&checked.refused[2].message.content).contains("no tool of that name"));

    // Empty arguments are no arguments: checked, with the default parameters schema.
    assert_eq!(checked.allowed.len(), 1);
    assert_eq!(checked.allowed[0].arguments, json!({}));
    let checks = server.requests_to(Endpoint::Check);
    assert_eq!(
        checks.len(),
        1,
        "only the well-formed call was sent for a check"
    );
    let schema: Value = serde_json::from_str(checks[0].body["schema"].as_str().unwrap()).unwrap();
    assert_eq!(schema["name"], "list_notes");
    assert_eq!(
        schema["parameters"],
        json!({ "type": "object", "properties": {} })
    );
    assert_eq!(checks[0].body["content"], "{}");
}

#[tokio::test]
async fn outside_agent_fns_checks_go_to_the_trace_given() {
    let server = MockServer::start().await.unwrap();
    server.block_action("delete_note", DELETE_REFUSAL);
    server.block_action("run_sql", "Writes to the database need a review.");
    let client = server.client();
    let trace = client.register_agent_run("notes-agent", "p").await.unwrap();
    let mut declared = tools();
    declared.push(ChatCompletionTools::Custom(CustomToolChatCompletions {
        custom: CustomToolProperties {
            name: "run_sql".to_owned(),
            description: Some("Run one SQL statement.".to_owned()),
            format: Default::default(),
        },
    }));
    let calls = [
        function_call(READ_CALL_ID, "read_note", r#"{"name":"groceries"}"#),
        function_call(DELETE_CALL_ID, "delete_note", r#"{"name":"groceries"}"#),
        custom_call("sql", "run_sql", "DROP TABLE notes"),
    ];

    let checked =
        fabraix_openai::check_tool_calls_in(&client, trace.trace_id(), &declared, &calls).await;

    assert_eq!(checked.allowed.len(), 1);
    assert_eq!(checked.allowed[0].id, READ_CALL_ID);
    let refused: Vec<&str> = checked.refused.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(refused, [DELETE_CALL_ID, "sql"]);
    assert!(text(&checked.refused[1].message.content).contains("need a review"));
    assert!(!checked.all_allowed());

    let checks = server.requests_to(Endpoint::Check);
    assert_eq!(checks.len(), 3);
    assert!(
        checks
            .iter()
            .all(|c| c.body["trace_id"] == trace.trace_id().to_string())
    );
    let sql = checks
        .iter()
        .find(|c| c.body["schema"].as_str().unwrap().contains("run_sql"))
        .unwrap();
    assert_eq!(sql.body["content"], r#"{"input":"DROP TABLE notes"}"#);
}
