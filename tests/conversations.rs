//! Conversations: `#[fabraix::agent(conversation = …)]` and `Client::conversation`, one run
//! per conversation, turn after turn, against a `MockServer` over loopback HTTP. Every test
//! counts the registrations the server received: a conversation's turns must add none.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{Client, Error, Trace, current_trace};

const PROMPT: &str = "You are a support assistant.";

async fn start_server() -> MockServer {
    MockServer::start().await.expect("the mock server starts")
}

fn registrations(server: &MockServer) -> usize {
    server.requests_to(Endpoint::RegisterAgentRun).len()
}

/// A chat request, as a service would receive it.
struct ChatRequest {
    conversation_id: String,
    message: String,
}

fn request(conversation: &str, message: &str) -> ChatRequest {
    ChatRequest {
        conversation_id: conversation.into(),
        message: message.into(),
    }
}

#[fabraix::agent(
    id = "conversations-chat",
    system_prompt = PROMPT,
    conversation = &request.conversation_id,
    client = client
)]
async fn chat(client: &Client, request: ChatRequest) -> (String, Option<Trace>) {
    tokio::task::yield_now().await;
    (format!("heard: {}", request.message), current_trace())
}

/// The same agent and conversations, strict about registration.
#[fabraix::agent(
    id = "conversations-chat",
    system_prompt = PROMPT,
    conversation = &request.conversation_id,
    client = client,
    on_failure = "error"
)]
async fn chat_or_error(client: &Client, request: ChatRequest) -> Result<Option<Trace>, Error> {
    let _ = &request.message;
    Ok(current_trace())
}

#[tokio::test]
async fn five_turns_are_one_run() {
    let server = start_server().await;
    let client = server.client();
    let mut runs = Vec::new();
    for turn in 0..5 {
        let (reply, run) = chat(&client, request("alice", &format!("message {turn}"))).await;
        assert_eq!(reply, format!("heard: message {turn}"));
        runs.push(run.expect("each turn runs in the conversation's run"));
        assert_eq!(
            current_trace(),
            None,
            "the run is current only during the turn"
        );
    }
    assert!(runs.iter().all(|run| *run == runs[0]), "{runs:?}");
    assert_eq!(registrations(&server), 1);
    assert!(server.issued_traces().contains(&runs[0].trace_id()));
}

#[tokio::test]
async fn three_conversations_are_three_runs() {
    let server = start_server().await;
    let client = server.client();
    let mut runs = Vec::new();
    for conversation in ["alice", "bob", "carol"] {
        let (_, first) = chat(&client, request(conversation, "hello")).await;
        let (_, second) = chat(&client, request(conversation, "again")).await;
        assert_eq!(first, second, "{conversation}'s turns share a run");
        runs.push(first.expect("a run"));
    }
    runs.sort_by_key(|run| run.trace_id());
    runs.dedup();
    assert_eq!(runs.len(), 3);
    assert_eq!(registrations(&server), 3);
}

#[tokio::test]
async fn one_conversation_id_of_two_agents_is_two_runs() {
    #[fabraix::agent(id = "conversations-billing", system_prompt = "You bill.", conversation = id, client = client)]
    async fn billing(client: &Client, id: &str) -> Option<Trace> {
        current_trace()
    }

    let server = start_server().await;
    let client = server.client();
    let (_, support) = chat(&client, request("shared-id", "hi")).await;
    let bill = billing(&client, "shared-id").await;
    assert_ne!(support, bill);
    assert_eq!(billing(&client, "shared-id").await, bill);
    assert_eq!(registrations(&server), 2);
}

/// The registration of the first turn is slow, so the others arrive while it is in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_first_turns_register_once() {
    let server = start_server().await;
    server.fail_next(
        1,
        Fault::delay(Duration::from_millis(300)).on(Endpoint::RegisterAgentRun),
    );
    let client = server.client();
    let turns: Vec<_> = (0..20)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move { chat(&client, request("busy", &format!("m{n}"))).await.1 })
        })
        .collect();
    let mut runs = Vec::new();
    for turn in turns {
        runs.push(turn.await.unwrap().expect("every turn has the run"));
    }
    assert!(runs.iter().all(|run| *run == runs[0]));
    assert_eq!(registrations(&server), 1);
}

#[tokio::test]
async fn a_turn_after_the_idle_time_starts_a_new_run() {
    const IDLE: Duration = Duration::from_millis(300);
    let server = start_server().await;
    let client = server
        .client_builder()
        .conversation_idle(IDLE)
        .build()
        .unwrap();
    let (_, first) = chat(&client, request("dozy", "hello")).await;
    let (_, second) = chat(&client, request("dozy", "still there?")).await;
    assert_eq!(first, second);
    tokio::time::sleep(IDLE).await;
    let (_, after) = chat(&client, request("dozy", "back again")).await;
    assert_ne!(after, first, "a new run after the idle time");
    let (_, next) = chat(&client, request("dozy", "and again")).await;
    assert_eq!(next, after, "which the next turns continue");
    assert_eq!(registrations(&server), 2);
}

#[tokio::test]
async fn a_run_older_than_the_maximum_age_is_replaced() {
    const AGE: Duration = Duration::from_millis(300);
    let server = start_server().await;
    let client = server
        .client_builder()
        .conversation_max_age(AGE)
        .build()
        .unwrap();
    let (_, first) = chat(&client, request("long", "hello")).await;
    // Busy all along (never idle), but older than the maximum age at the end.
    let deadline = std::time::Instant::now() + AGE;
    while std::time::Instant::now() < deadline {
        let (_, turn) = chat(&client, request("long", "busy")).await;
        if std::time::Instant::now() < deadline {
            assert_eq!(turn, first);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, later) = chat(&client, request("long", "later")).await;
    assert_ne!(later, first);
}

/// The issue's must-show set on one server: 5 turns, 3 conversations, 20 concurrent first
/// turns and a turn after the idle time register 7 runs, no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_set_registers_seven_runs() {
    const IDLE: Duration = Duration::from_millis(300);
    let server = start_server().await;
    let client = server.client();
    let dozy = server
        .client_builder()
        .conversation_idle(IDLE)
        .build()
        .unwrap();

    for turn in 0..5 {
        chat(&client, request("five-turns", &format!("{turn}"))).await;
    }
    for conversation in ["one", "two", "three"] {
        chat(&client, request(conversation, "hi")).await;
    }
    server.fail_next(
        1,
        Fault::delay(Duration::from_millis(300)).on(Endpoint::RegisterAgentRun),
    );
    let turns: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { chat(&client, request("twenty", "hi")).await.1 })
        })
        .collect();
    for turn in turns {
        turn.await.unwrap().expect("a run");
    }
    let (_, before) = chat(&dozy, request("idle", "hello")).await;
    tokio::time::sleep(IDLE).await;
    let (_, after) = chat(&dozy, request("idle", "back")).await;
    assert_ne!(before, after);

    assert_eq!(registrations(&server), 1 + 3 + 1 + 2);
}

#[tokio::test]
async fn an_ended_conversation_starts_a_new_run() {
    let server = start_server().await;
    let client = server.client();
    let (_, first) = chat(&client, request("reset-me", "hello")).await;
    let conversation = client.conversation("reset-me");
    assert!(conversation.end("conversations-chat").await);
    assert!(!conversation.end("conversations-chat").await, "ended once");
    let (_, after) = chat(&client, request("reset-me", "start over")).await;
    assert_ne!(after, first);
    let (_, next) = chat(&client, request("reset-me", "go on")).await;
    assert_eq!(next, after);
    // Another agent's conversation of the same id is another conversation.
    assert!(!client.conversation("reset-me").end("another-agent").await);
    assert_eq!(registrations(&server), 2);
}

#[tokio::test]
async fn a_failed_first_turn_follows_on_failure_and_the_next_turn_registers() {
    let server = start_server().await;
    server.fail_next(1, Fault::status(401).on(Endpoint::RegisterAgentRun));
    let client = server.client();
    let refused = chat_or_error(&client, request("unlucky", "hello")).await;
    assert!(
        matches!(refused, Err(Error::Api { status: 401, .. })),
        "{refused:?}"
    );
    // Nothing of the failure is kept: the next turn registers, and the run holds.
    let run = chat_or_error(&client, request("unlucky", "again"))
        .await
        .unwrap();
    assert!(run.is_some());
    assert_eq!(
        chat_or_error(&client, request("unlucky", "3"))
            .await
            .unwrap(),
        run
    );
    assert_eq!(registrations(&server), 2);
}

/// One slow registration that fails (a refused key, answered after a delay): every turn
/// that waited for it gets its failure, and follows its own `on_failure`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn turns_waiting_for_a_failed_registration_follow_their_own_on_failure() {
    static BODIES: AtomicUsize = AtomicUsize::new(0);

    #[fabraix::agent(id = "conversations-strict", system_prompt = PROMPT, conversation = id, client = client, on_failure = "error")]
    async fn strict(client: &Client, id: &str) -> Result<(), Error> {
        BODIES.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    #[fabraix::agent(id = "conversations-strict", system_prompt = PROMPT, conversation = id, client = client)]
    async fn lenient(client: &Client, id: &str) -> Option<Trace> {
        BODIES.fetch_add(1, Ordering::SeqCst);
        assert!(matches!(
            fabraix::check_action(&fabraix::Action::new("refund")).await,
            Err(Error::Unregistered { .. })
        ));
        current_trace()
    }

    let server = start_server().await;
    server.fail_next(
        1,
        Fault::delay(Duration::from_millis(300)).on(Endpoint::RegisterAgentRun),
    );
    let client = server
        .client_builder()
        .api_key("sk-not-the-servers-key")
        .build()
        .unwrap();
    type Turn = Pin<Box<dyn Future<Output = Result<Option<Trace>, Error>> + Send>>;
    let turns: Vec<_> = (0..10)
        .map(|n| {
            let client = client.clone();
            let turn: Turn = if n % 2 == 0 {
                Box::pin(async move { strict(&client, "shared").await.map(|()| None) })
            } else {
                Box::pin(async move { Ok(lenient(&client, "shared").await) })
            };
            tokio::spawn(turn)
        })
        .collect();
    let mut errors = 0;
    for turn in turns {
        match turn.await.unwrap() {
            Err(Error::Api { status: 401, .. }) => errors += 1,
            Ok(None) => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(
        errors, 5,
        "each strict turn returns the registration's error"
    );
    assert_eq!(
        BODIES.load(Ordering::SeqCst),
        5,
        "only the lenient bodies ran"
    );
    assert_eq!(
        registrations(&server),
        1,
        "one registration, shared failure"
    );
}

/// A first turn cancelled while it registers leaves no claim behind: a turn waiting for it
/// registers in its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_first_turn_hands_the_registration_over() {
    let server = start_server().await;
    server.fail_next(
        1,
        Fault::delay(Duration::from_secs(5)).on(Endpoint::RegisterAgentRun),
    );
    let client = server.client();
    let first = {
        let client = client.clone();
        tokio::spawn(async move { chat(&client, request("cancelled", "hello")).await })
    };
    assert!(
        server
            .wait_for(Duration::from_secs(10), |requests| !requests.is_empty())
            .await,
        "the first registration reached the server"
    );
    let second = {
        let client = client.clone();
        tokio::spawn(async move { chat(&client, request("cancelled", "anyone?")).await.1 })
    };
    tokio::task::yield_now().await;
    first.abort();
    let run = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the waiting turn did not wait for the slow registration")
        .unwrap();
    assert!(run.is_some());
    assert_eq!(chat(&client, request("cancelled", "again")).await.1, run);
}

#[tokio::test]
async fn a_disabled_sdk_runs_turns_untraced_and_keeps_nothing() {
    static TOOL_RAN: AtomicUsize = AtomicUsize::new(0);

    /// Refund an order.
    #[fabraix::action]
    async fn refund(order: u64) -> Result<u64, Error> {
        TOOL_RAN.fetch_add(1, Ordering::SeqCst);
        Ok(order)
    }

    let client = Client::builder().disabled(true).build().unwrap();
    for _ in 0..3 {
        let (_, run) = chat(&client, request("off", "hello")).await;
        assert_eq!(run, None);
    }
    #[fabraix::agent(id = "conversations-tools", system_prompt = PROMPT, conversation = id, client = client)]
    async fn with_tool(client: &Client, id: &str) -> Result<u64, Error> {
        refund(7).await
    }
    assert_eq!(with_tool(&client, "off").await.unwrap(), 7);
    assert_eq!(
        TOOL_RAN.load(Ordering::SeqCst),
        1,
        "guarded tools run unchecked"
    );
    assert!(!client.conversation("off").end("conversations-chat").await);
}

#[tokio::test]
async fn an_empty_conversation_id_is_a_run_per_turn() {
    let server = start_server().await;
    let client = server.client();
    let (_, first) = chat(&client, request("", "hello")).await;
    let (_, second) = chat(&client, request("  ", "hello")).await;
    assert!(first.is_some() && second.is_some());
    assert_ne!(
        first, second,
        "turns without a conversation are never mixed"
    );
    assert_eq!(registrations(&server), 2);
}

// ---------------------------------------------------------------------------------------
// The function form.

#[tokio::test]
async fn the_function_form_continues_the_run() {
    let server = start_server().await;
    let client = server.client();
    let conversation = client.conversation("by-hand");
    let first = conversation
        .run("conversations-by-hand", PROMPT, async { current_trace() })
        .await;
    let second = client
        .conversation(String::from("by-hand"))
        .try_run("conversations-by-hand", PROMPT, async { current_trace() })
        .await
        .unwrap();
    assert!(first.is_some());
    assert_eq!(first, second);
    // The attribute and the function form share the conversation of the same agent.
    #[fabraix::agent(id = "conversations-by-hand", system_prompt = PROMPT, conversation = "by-hand", client = client)]
    async fn same(client: &Client) -> Option<Trace> {
        current_trace()
    }
    assert_eq!(same(&client).await, first);
    assert_eq!(registrations(&server), 1);
}

#[tokio::test]
async fn the_function_form_follows_on_failure() {
    let server = start_server().await;
    let client = server
        .client_builder()
        .api_key("sk-not-the-servers-key")
        .build()
        .unwrap();
    let conversation = client.conversation("refused");
    let ran = conversation
        .run("conversations-by-hand", PROMPT, async { current_trace() })
        .await;
    assert_eq!(ran, None, "run: the body runs without a trace");
    let mut body_ran = false;
    let refused = conversation
        .try_run("conversations-by-hand", PROMPT, async { body_ran = true })
        .await;
    assert!(matches!(refused, Err(Error::Api { status: 401, .. })));
    assert!(!body_ran, "try_run: the body does not run");
}

#[test]
fn the_blocking_function_form_needs_no_runtime() {
    let server = MockServer::start_blocking().unwrap();
    let client = server.client();
    let conversation = client.conversation("blocking");
    let first = conversation.run_blocking("conversations-blocking", PROMPT, current_trace);
    let second = conversation
        .try_run_blocking("conversations-blocking", PROMPT, current_trace)
        .unwrap();
    assert!(first.is_some());
    assert_eq!(first, second);
    assert_eq!(current_trace(), None);
    assert!(conversation.end_blocking("conversations-blocking"));
    let third = conversation.run_blocking("conversations-blocking", PROMPT, current_trace);
    assert_ne!(third, first);
    assert_eq!(registrations(&server), 2);
}

#[tokio::test]
async fn events_of_a_turn_are_sent_when_it_returns() {
    #[fabraix::agent(id = "conversations-events", system_prompt = PROMPT, conversation = id, client = client)]
    async fn logging(client: &Client, id: &str, message: &str) -> Option<Trace> {
        fabraix::log_event(fabraix::Event::text(fabraix::EventType::User, message)).unwrap();
        current_trace()
    }

    let server = start_server().await;
    let client = server.client();
    for message in ["one", "two", "three"] {
        let run = logging(&client, "events", message).await.unwrap();
        // Flushed on return: the turn's event is at the server already.
        let events = server.requests_to(Endpoint::Event);
        let last = events.last().expect("the turn's event was sent");
        assert_eq!(last.body["trace_id"], run.trace_id().to_string());
        assert!(last.body["content"].as_str().unwrap().contains(message));
    }
    assert_eq!(server.requests_to(Endpoint::Event).len(), 3);
    assert_eq!(registrations(&server), 1);
}

// ---------------------------------------------------------------------------------------
// Every fn shape the attribute supports, as a conversation: two turns, one run.

struct Service {
    client: Client,
    conversation: String,
}

impl Service {
    #[fabraix::agent(id = "conversations-method", system_prompt = PROMPT, conversation = &self.conversation, client = &self.client)]
    async fn reply(&self) -> Option<Trace> {
        current_trace()
    }

    #[fabraix::agent(id = "conversations-method-sync", system_prompt = PROMPT, conversation = &self.conversation, client = &self.client)]
    fn reply_sync(&mut self) -> Option<Trace> {
        current_trace()
    }

    #[fabraix::agent(id = "conversations-method-owned", system_prompt = PROMPT, conversation = self.conversation.clone(), client = &self.client.clone())]
    async fn into_reply(self) -> Option<Trace> {
        current_trace()
    }
}

#[fabraix::agent(id = "conversations-sync", system_prompt = PROMPT, conversation = id, client = client)]
fn sync_turn(client: &Client, id: &str) -> Option<Trace> {
    current_trace()
}

#[fabraix::agent(id = "conversations-generic", system_prompt = format!("{PROMPT} ({})", id.as_ref()), conversation = &id, client = client)]
async fn generic_turn<C: AsRef<str> + Send>(client: &Client, id: C) -> Option<Trace> {
    current_trace()
}

#[fabraix::agent(id = "conversations-impl-arg", system_prompt = PROMPT, conversation = &id, client = client)]
fn impl_arg_turn(client: &Client, id: impl AsRef<str>) -> Option<Trace> {
    current_trace()
}

#[fabraix::agent(id = "conversations-impl-future", system_prompt = PROMPT, conversation = id, client = client)]
fn impl_future_turn(
    client: &Client,
    id: &str,
) -> impl Future<Output = Option<Trace>> + Send + 'static {
    async { current_trace() }
}

#[fabraix::agent(id = "conversations-boxed", system_prompt = PROMPT, conversation = id.clone(), client = client)]
fn boxed_turn(
    client: &Client,
    id: Arc<str>,
) -> Pin<Box<dyn Future<Output = Option<Trace>> + Send>> {
    Box::pin(async move {
        let _ = &id;
        current_trace()
    })
}

#[fabraix::agent(id = "conversations-panic", system_prompt = PROMPT, conversation = id, client = client, on_failure = "panic")]
async fn panicking_turn(client: &Client, id: &str) -> Option<Trace> {
    current_trace()
}

#[fabraix::agent(id = "conversations-crate", system_prompt = PROMPT, conversation = id, client = client, crate = "reexported::fabraix")]
async fn reexported_turn(client: &Client, id: &str) -> Option<Trace> {
    current_trace()
}

mod reexported {
    pub use ::fabraix;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fn_shape_continues_its_conversation() {
    let server = start_server().await;
    let client = server.client();

    #[track_caller]
    fn one_run(first: Option<Trace>, second: Option<Trace>) {
        assert!(first.is_some(), "a run");
        assert_eq!(first, second, "one run for both turns");
    }

    let mut service = Service {
        client: client.clone(),
        conversation: "shape-method".into(),
    };
    one_run(service.reply().await, service.reply().await);
    let blocking_client = client.clone();
    let (a, b) = tokio::task::spawn_blocking(move || {
        (
            sync_turn(&blocking_client, "shape-sync"),
            sync_turn(&blocking_client, "shape-sync"),
        )
    })
    .await
    .unwrap();
    one_run(a, b);
    let (a, b) = tokio::task::block_in_place(|| (service.reply_sync(), service.reply_sync()));
    one_run(a, b);
    let other = Service {
        client: client.clone(),
        conversation: "shape-owned".into(),
    };
    let again = Service {
        client: client.clone(),
        conversation: "shape-owned".into(),
    };
    one_run(other.into_reply().await, again.into_reply().await);
    one_run(
        generic_turn(&client, "shape-generic").await,
        generic_turn(&client, String::from("shape-generic")).await,
    );
    let (a, b) = tokio::task::block_in_place(|| {
        (
            impl_arg_turn(&client, "shape-impl"),
            impl_arg_turn(&client, String::from("shape-impl")),
        )
    });
    one_run(a, b);
    one_run(
        impl_future_turn(&client, "shape-future").await,
        impl_future_turn(&client, "shape-future").await,
    );
    let id: Arc<str> = Arc::from("shape-boxed");
    one_run(
        boxed_turn(&client, id.clone()).await,
        boxed_turn(&client, id).await,
    );
    one_run(
        panicking_turn(&client, "shape-panic").await,
        panicking_turn(&client, "shape-panic").await,
    );
    one_run(
        reexported_turn(&client, "shape-crate").await,
        reexported_turn(&client, "shape-crate").await,
    );
    assert_eq!(registrations(&server), 10);
}

// ---------------------------------------------------------------------------------------
// Storing a run: `Trace` round-trips through serde in a documented shape.

#[tokio::test]
async fn a_trace_round_trips_through_serde() {
    let server = start_server().await;
    let client = server.client();
    let (_, run) = chat(&client, request("stored", "hello")).await;
    let run = run.unwrap();
    let stored = serde_json::to_value(run).unwrap();
    let fields = stored.as_object().unwrap();
    assert_eq!(fields.len(), 3, "{stored}");
    assert_eq!(stored["trace_id"], run.trace_id().to_string());
    assert_eq!(stored["agent_id"], run.agent_id().to_string());
    let at = stored["registered_at"].as_str().unwrap();
    assert!(at.ends_with('Z'), "{at}");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(at).unwrap(),
        run.registered_at()
    );
    let read: Trace = serde_json::from_value(stored).unwrap();
    assert_eq!(read, run);
    assert_eq!(read.registered_at(), run.registered_at());

    // Written by another SDK: any RFC 3339 offset, unknown fields ignored.
    let written = serde_json::json!({
        "trace_id": run.trace_id().to_string(),
        "agent_id": run.agent_id().to_string(),
        "registered_at": "2024-01-15T15:30:45.123+01:00",
        "note": "kept by the caller",
    });
    let read: Trace = serde_json::from_value(written).unwrap();
    assert_eq!(
        read.registered_at().to_rfc3339(),
        "2024-01-15T14:30:45.123+00:00"
    );
    // A stored run is carried back in, and its events reach the server.
    let server_run = fabraix::scope(client.bind(read), async { current_trace() }).await;
    assert_eq!(server_run, Some(read));
    assert!(serde_json::from_str::<Trace>(r#"{"trace_id": "x"}"#).is_err());
}
