//! Chat completions logged through the wrapper: async-openai's own client against the
//! stand-in model, Fabraix on a MockServer.

mod support;

use async_openai::types::chat::{CreateChatCompletionResponse, CreateChatCompletionStreamResponse};
use fabraix::testing::MockServer;
use fabraix::{Client, Trace};
use fabraix_openai::{Chat, ChatExt};
use futures::StreamExt;
use serde_json::json;
use support::stand_in_model::{DELETE_CALL_ID, FIRST_TEXT, READ_CALL_ID, StandInModel, USAGE};
use support::{
    PATIENCE, ask, both_tool_calls, events, logged_tool_calls, openai, request, wait_for_events,
};

async fn stand_ins() -> (MockServer, StandInModel, Client) {
    let server = MockServer::start().await.unwrap();
    let model = StandInModel::start().await.unwrap();
    let client = server.client();
    (server, model, client)
}

/// The chunks the stand-in sent in its `nth` streamed answer, as async-openai reads them.
fn sent_chunks(model: &StandInModel, nth: usize) -> Vec<CreateChatCompletionStreamResponse> {
    model.sent_streams()[nth]
        .iter()
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

#[tokio::test]
async fn a_plain_completion_logs_its_request_and_its_answer_in_the_run() {
    let (server, model, client) = stand_ins().await;

    #[fabraix::agent(id = "notes-agent", system_prompt = "p", client = client)]
    async fn agent(client: &Client, base_url: &str) -> (Trace, CreateChatCompletionResponse) {
        let openai = openai(base_url);
        let response = openai
            .chat()
            .fabraix()
            .create(request(ask(), false))
            .await
            .unwrap();
        (fabraix::current_trace().unwrap(), response)
    }
    let (trace, response) = agent(&client, model.base_url()).await;

    wait_for_events(&server, "model_output", 1).await;
    let logged = events(&server);
    let kinds: Vec<&str> = logged.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["model_input", "model_output"]);
    assert!(
        logged
            .iter()
            .all(|e| e.trace_id == trace.trace_id().to_string())
    );

    let input = &logged[0].content;
    assert_eq!(input["model"], "stand-in-1");
    assert_eq!(input["messages"][0]["role"], "user");
    assert_eq!(input["tools"].as_array().unwrap().len(), 2);
    assert_eq!(input, &model.requests()[0], "the request is logged as sent");

    let output = &logged[1].content;
    assert_eq!(output["id"], response.id);
    assert_eq!(
        output["choices"][0]["message"]["content"],
        FIRST_TEXT.concat()
    );
    assert_eq!(logged_tool_calls(output), both_tool_calls());
    assert_eq!(output["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(output["usage"]["total_tokens"], USAGE.0 + USAGE.1);
    assert_eq!(output["streamed"], false);
    assert_eq!(output["cut_short"], false);
}

#[tokio::test]
async fn a_streamed_answer_reaches_the_caller_unchanged_and_is_logged_whole_once() {
    let (server, model, client) = stand_ins().await;

    #[fabraix::agent(id = "notes-agent", system_prompt = "p", client = client)]
    async fn agent(
        client: &Client,
        base_url: &str,
    ) -> (
        Trace,
        Vec<CreateChatCompletionStreamResponse>,
        CreateChatCompletionResponse,
    ) {
        let openai = openai(base_url);
        let chat = Chat::new(&openai);
        let mut stream = chat.create_stream(request(ask(), true)).await.unwrap();
        let mut received = Vec::new();
        while let Some(chunk) = stream.next().await {
            received.push(chunk.unwrap());
        }
        assert!(stream.is_finished());
        (
            fabraix::current_trace().unwrap(),
            received,
            stream.completion(),
        )
    }
    let (trace, received, completion) = agent(&client, model.base_url()).await;

    // The caller saw every chunk the model sent, as sent: text first, then the tool calls'
    // fragments, the finish reason, and the usage on a chunk of its own.
    let sent = sent_chunks(&model, 0);
    assert_eq!(sent.len(), 9);
    assert_eq!(received, sent);

    let outputs = wait_for_events(&server, "model_output", 1).await;
    let inputs = wait_for_events(&server, "model_input", 1).await;
    assert_eq!(outputs.len(), 1, "the answer is logged once");
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].content["stream"], true);
    assert_eq!(outputs[0].trace_id, trace.trace_id().to_string());

    let output = &outputs[0].content;
    assert_eq!(
        output["choices"][0]["message"]["content"],
        FIRST_TEXT.concat()
    );
    assert_eq!(output["choices"][0]["message"]["role"], "assistant");
    assert_eq!(logged_tool_calls(output), both_tool_calls());
    assert_eq!(output["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(output["usage"]["prompt_tokens"], USAGE.0);
    assert_eq!(output["usage"]["completion_tokens"], USAGE.1);
    assert_eq!(output["streamed"], true);
    assert_eq!(output["cut_short"], false);
    assert!(output.get("stream_errors").is_none());

    // What the loop gets back is what was logged.
    let assembled = serde_json::to_value(&completion).unwrap();
    assert_eq!(output["choices"], assembled["choices"]);
    assert_eq!(output["usage"], assembled["usage"]);
}

#[tokio::test]
async fn a_stream_dropped_half_way_logs_what_arrived_marked_cut_short() {
    let (server, model, client) = stand_ins().await;
    // The model sends five chunks, then keeps the connection open and says nothing more.
    model.hang_after(5);

    #[fabraix::agent(id = "notes-agent", system_prompt = "p", client = client)]
    async fn agent(client: &Client, base_url: &str) -> Vec<CreateChatCompletionStreamResponse> {
        let openai = openai(base_url);
        let mut stream = openai
            .chat()
            .fabraix()
            .create_stream(request(ask(), true))
            .await
            .unwrap();
        let mut received = Vec::new();
        for _ in 0..5 {
            received.push(stream.next().await.unwrap().unwrap());
        }
        assert!(!stream.is_finished());
        drop(stream);
        received
    }
    let received = agent(&client, model.base_url()).await;
    assert_eq!(received, sent_chunks(&model, 0)[..5]);

    let outputs = wait_for_events(&server, "model_output", 1).await;
    assert_eq!(outputs.len(), 1);
    let output = &outputs[0].content;
    assert_eq!(output["cut_short"], true);
    assert_eq!(output["streamed"], true);
    // Both text pieces had arrived; of the tool calls, only their first fragments.
    assert_eq!(
        output["choices"][0]["message"]["content"],
        FIRST_TEXT.concat()
    );
    assert_eq!(
        logged_tool_calls(output),
        vec![
            (
                READ_CALL_ID.into(),
                "read_note".into(),
                r#"{"name":"#.into()
            ),
            (
                DELETE_CALL_ID.into(),
                "delete_note".into(),
                r#"{"na"#.into()
            ),
        ]
    );
    assert!(output["choices"][0].get("finish_reason").is_none());
    assert_eq!(output["usage"], json!(null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_read_or_dropped_outside_the_run_stay_in_it() {
    let (server, model, client) = stand_ins().await;

    // The bare spawns are the point: the attribute's warning about them is expected.
    #[allow(deprecated)]
    #[fabraix::agent(id = "notes-agent", system_prompt = "p", client = client)]
    async fn agent(client: &Client, model: &StandInModel) -> Trace {
        let openai = openai(model.base_url());
        let chat = openai.chat().fabraix();

        // async-openai parses the stream on a task of its own; here the caller also reads
        // it on a bare `tokio::spawn`, where no run is current.
        let stream = chat.create_stream(request(ask(), true)).await.unwrap();
        let read = tokio::spawn(async move {
            assert!(fabraix::current_trace().is_none());
            stream.map(Result::unwrap).collect::<Vec<_>>().await.len()
        });
        assert_eq!(read.await.unwrap(), 9);

        // A second stream is dropped half-way on a plain thread, with no runtime.
        model.hang_after(2);
        let mut stream = chat.create_stream(request(ask(), true)).await.unwrap();
        stream.next().await.unwrap().unwrap();
        std::thread::spawn(move || {
            assert!(fabraix::current_trace().is_none());
            drop(stream);
        })
        .join()
        .unwrap();
        fabraix::current_trace().unwrap()
    }
    let trace = agent(&client, &model).await;

    let outputs = wait_for_events(&server, "model_output", 2).await;
    assert_eq!(server.issued_traces(), [trace.trace_id()]);
    assert!(
        outputs
            .iter()
            .all(|e| e.trace_id == trace.trace_id().to_string())
    );
    let cut_short: Vec<bool> = outputs
        .iter()
        .map(|e| e.content["cut_short"] == true)
        .collect();
    assert_eq!(cut_short, [false, true]);
    assert_eq!(logged_tool_calls(&outputs[0].content), both_tool_calls());
    assert_eq!(
        outputs[1].content["choices"][0]["message"]["content"],
        FIRST_TEXT[0]
    );
}

#[tokio::test]
async fn outside_agent_fns_the_trace_given_is_used() {
    let (server, model, client) = stand_ins().await;
    let trace = client.register_agent_run("notes-agent", "p").await.unwrap();
    assert!(fabraix::current_trace().is_none());

    let openai = openai(model.base_url());
    let chat = Chat::new(&openai).in_trace(client.clone(), trace.trace_id());
    chat.create(request(ask(), false)).await.unwrap();
    let stream = chat.create_stream(request(ask(), true)).await.unwrap();
    assert_eq!(stream.collect::<Vec<_>>().await.len(), 9);

    assert!(client.flush(PATIENCE).await);
    let logged = events(&server);
    let kinds: Vec<&str> = logged.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        ["model_input", "model_output", "model_input", "model_output"]
    );
    assert!(
        logged
            .iter()
            .all(|e| e.trace_id == trace.trace_id().to_string())
    );
    assert_eq!(logged_tool_calls(&logged[3].content), both_tool_calls());
}

#[tokio::test]
async fn outside_any_run_calls_go_through_unlogged() {
    let (server, model, _client) = stand_ins().await;
    let openai = openai(model.base_url());
    let chat = openai.chat().fabraix();

    let response = chat.create(request(ask(), false)).await.unwrap();
    assert_eq!(
        response.choices[0].message.content.as_deref(),
        Some(FIRST_TEXT.concat().as_str())
    );
    let mut stream = chat.create_stream(request(ask(), true)).await.unwrap();
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
    }
    assert_eq!(
        logged_tool_calls(&serde_json::to_value(stream.completion()).unwrap()),
        both_tool_calls()
    );
    drop(stream);

    assert_eq!(model.requests().len(), 2);
    assert!(server.requests().is_empty(), "nothing reached Fabraix");
}

#[tokio::test]
async fn a_failed_model_call_logs_the_request_and_the_error() {
    let server = MockServer::start().await.unwrap();
    let client = server.client();
    // A port nothing listens on: the model cannot be reached.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };

    #[fabraix::agent(id = "notes-agent", system_prompt = "p", client = client)]
    async fn agent(client: &Client, base_url: &str) {
        let openai = openai(base_url);
        let chat = openai.chat().fabraix();
        assert!(chat.create(request(ask(), false)).await.is_err());
        assert!(chat.create_stream(request(ask(), true)).await.is_err());
    }
    agent(&client, &format!("http://{closed}/v1")).await;

    wait_for_events(&server, "error", 2).await;
    let logged = events(&server);
    let kinds: Vec<&str> = logged.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["model_input", "error", "model_input", "error"]);
    for error in logged.iter().filter(|e| e.event_type == "error") {
        let text = error.content["text"].as_str().unwrap();
        assert!(text.starts_with("the model call failed: "), "{text}");
        assert!(
            !text.contains("sk-stand-in"),
            "the model API key stays out of events"
        );
    }
}

// Compiles only if a call's future and its stream may move to another task or thread.
#[test]
fn calls_and_streams_can_move_to_other_tasks() {
    fn send<T: Send>(_: &T) {}
    let openai = openai("http://127.0.0.1:9/v1");
    let chat = openai.chat().fabraix();
    send(&chat.create(request(ask(), false)));
    send(&chat.create_stream(request(ask(), true)));
    let no_stream: Option<fabraix_openai::ChatStream> = None;
    send(&no_stream);
}
