//! The Rust SDK for [Fabraix](https://fabraix.com), the security platform for AI agents.
//!
//! Put [`#[fabraix::agent]`](macro@agent) on your agent's entry fn: each call registers a
//! run with Fabraix, and the run's trace is current in everything the fn calls. Inside the
//! run, [`log_event`] records what the agent does, and [`check_action`] (or
//! [`#[fabraix::action]`](macro@action) on a tool) asks Fabraix whether an action is safe
//! before the agent takes it.
//!
//! # Quickstart
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fabraix::Error> {
//! # let server = fabraix::testing::MockServer::start().await?;
//! # fabraix::init(server.client())?;
//! use fabraix::{Event, EventType};
//!
//! #[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
//! async fn handle(message: &str) -> Result<String, fabraix::Error> {
//!     let trace = fabraix::current_trace().expect("inside an agent run");
//!     // Telemetry never fails the agent: an event the queue cannot take is dropped and
//!     // counted (`fabraix::stats()`), so its error is let go.
//!     let _ = fabraix::log_event(Event::text(EventType::User, message));
//!     let reply = format!("Run {trace} heard: {message}");
//!     let _ = fabraix::log_event(Event::text(EventType::ModelOutput, &reply));
//!     Ok(reply)
//! }
//!
//! let reply = handle("Where is my order?").await?;
//! assert!(fabraix::current_trace().is_none()); // the run ended with the fn
//! # assert_eq!(server.requests().len(), 3);
//! # let _ = reply;
//! # Ok(()) }
//! ```
//!
//! With `FABRAIX_API_KEY` set in the environment, the global client talks to the API at
//! `FABRAIX_BASE_URL` (default `https://dev.fabraix.com/v1`); or configure one in code with
//! [`Client::builder`] and install it with [`init`]. Keep the guard [`init`] returns until
//! `main` ends: it sends the events still queued before the process exits.
//!
//! ```no_run
//! # async fn handle(_: &str) {}
//! #[tokio::main]
//! async fn main() -> Result<(), fabraix::Error> {
//!     let _fabraix = fabraix::init(fabraix::Client::from_env()?)?;
//!     handle("Where is my order?").await;
//!     Ok(())
//! }
//! ```
//!
//! # The attribute
//!
//! ```ignore
//! #[fabraix::agent(
//!     id = "support-bot",                  // a name (mapped to a stable UUID) or a UUID
//!     system_prompt = SYSTEM_PROMPT,       // any `impl Into<String>`, evaluated per call
//!     conversation = &request.chat_id,     // a turn of this conversation: one run per conversation
//!     on_failure = "continue",             // or "error" / "panic": if registration fails
//!     client = &self.fabraix,              // a `&fabraix::Client` instead of the global one
//!     crate = "my_sdk::fabraix",           // where the facade is, for re-exporting crates
//! )]
//! ```
//!
//! - `id` and `system_prompt` are required; both may be expressions using the fn's
//!   arguments and `self`. A name becomes a UUID through [`AgentId::from_name`], so
//!   `id = "cs-agent-prod-v1"` is the same agent in every run and process. An empty id, or a
//!   literal that looks like a UUID without being one, is a compile error.
//! - `on_failure`: when the run cannot be registered after the retries, `"continue"` (the
//!   default) runs the body with no trace and emits one `tracing` warning; `"error"` returns
//!   `Err(fabraix::Error.into())` without running the body (the fn must return
//!   `Result<T, E>` with `E: From<fabraix::Error>`); `"panic"` panics. Under `"continue"`
//!   the run keeps its cause: checks inside it answer [`Error::Unregistered`] naming it
//!   (the 401, the timeout), and its events are let go and counted
//!   ([`EventStats::untraced`]). A disabled SDK (`FABRAIX_DISABLED=1`) is not a failure:
//!   the body runs without a trace.
//! - Works on every fn shape: async and sync fns, methods taking `self`, `&self` or
//!   `&mut self`, generics, lifetimes, `impl Trait`, `unsafe fn`, any visibility, and with
//!   `#[tokio::main]` / `#[tokio::test]` on either side. A sync fn blocks on its
//!   registration, with or without a runtime around it.
//! - The body's `return`, `?`, panics and value behave exactly as without the attribute.
//!   When it ends, the run's queued events are flushed (bounded by the client's flush
//!   timeout), so an agent `main` that returns loses nothing.
//! - An agent fn called inside another gets its own run; the outer run is current again
//!   when it returns.
//!
//! # Conversations
//!
//! A chat service gets one request per user message. Fabraix judges each event in the
//! light of its run's earlier ones, so the messages of one conversation belong in one run
//! (an injection spread over several turns is then visible), and a run must never mix two
//! conversations. `conversation = <expr>` makes each call a turn of the conversation
//! `<expr>` names (anything `AsRef<str>`, read from the fn's arguments): the turn
//! continues the conversation's run while it is live, and registers one otherwise.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fabraix::Error> {
//! # let server = fabraix::testing::MockServer::start().await?;
//! # fabraix::init(server.client())?;
//! struct ChatRequest {
//!     conversation_id: String,
//!     message: String,
//! }
//!
//! #[fabraix::agent(
//!     id = "support-bot",
//!     system_prompt = "You are a support assistant.",
//!     conversation = &request.conversation_id,
//! )]
//! async fn chat(request: ChatRequest) -> Option<fabraix::Trace> {
//!     let _ = request.message; // ... log it, call the model, answer ...
//!     fabraix::current_trace() // the conversation's run
//! }
//!
//! let turn = |message: &str| ChatRequest {
//!     conversation_id: "c-42".into(),
//!     message: message.into(),
//! };
//! let first = chat(turn("Where is my order?")).await;
//! let second = chat(turn("And a refund?")).await;
//! assert_eq!(first, second); // one run for the whole conversation
//!
//! // The user starts over: the next turn registers a new run.
//! fabraix::conversation("c-42").end("support-bot").await;
//! assert_ne!(chat(turn("Hello again")).await, first);
//! # assert_eq!(server.requests_to(fabraix::testing::Endpoint::RegisterAgentRun).len(), 2);
//! # Ok(()) }
//! ```
//!
//! - **Rotation.** A conversation with no turn for
//!   [`conversation_idle`](ClientBuilder::conversation_idle) (30 minutes by default), or
//!   whose run is older than [`conversation_max_age`](ClientBuilder::conversation_max_age)
//!   (24 hours), starts a new run at its next turn, as Fabraix asks for a long gap; so does
//!   one that was [ended](Conversation::end).
//! - **Concurrency.** Concurrent first turns of one conversation register one run: the
//!   others wait for that registration (within the client's deadline) and continue it. If
//!   it fails, each waiting turn follows its own `on_failure`, and the next turn tries again.
//! - **Memory.** Each client keeps its conversations in a bounded store (the
//!   [`conversation_capacity`](ClientBuilder::conversation_capacity) most recently used,
//!   100,000 by default, about 200 bytes each; idle ones expire as turns go by, with no
//!   background task). A conversation pushed out by a full store gets a new run at its next
//!   turn. The store holds a keyed hash (HMAC-SHA256) of the agent and conversation ids,
//!   never the ids: they may identify people.
//! - **One process.** The store is the process's: a turn served by another replica of the
//!   service starts that replica's run. Route a conversation's requests to one replica, or
//!   keep the run yourself: [`Trace`] is `Serialize`/`Deserialize` (a stable shape: trace
//!   id, agent id, registration time), and [`scope`] runs a turn in it.
//! - **Without the attribute**, [`conversation`]`(id)` (or [`Client::conversation`]) gives a
//!   [`Conversation`], whose [`run`](Conversation::run) and
//!   [`try_run`](Conversation::try_run) (sync: `run_blocking`, `try_run_blocking`) run a
//!   turn's body as the attribute does: in the run, in its span, its events flushed when
//!   it ends, with `on_failure = "continue"` or `"error"` semantics.
//!
//! `cargo run --example chat_service` shows an axum chat endpoint, one run per
//! conversation.
//!
//! # Carrying the trace
//!
//! [`current_trace`] reads the innermost run anywhere below the agent fn, in async or sync
//! code. A bare `tokio::spawn` does not inherit it (the attribute warns when it sees one in
//! the body). One way for each place work can go:
//!
//! | where the work goes | what to use |
//! |---|---|
//! | a new tokio task | [`spawn`] |
//! | tokio's blocking pool | [`spawn_blocking`] |
//! | any other spawner or executor (`JoinSet`, `FuturesUnordered`, …) | [`TraceFutureExt::in_current_trace`] |
//! | a thread, another runtime, a work queue: the whole run, also one without a trace | [`current_run`], then [`RunContext::scope`] / [`RunContext::sync_scope`] there |
//! | a [`Trace`] you hold (read from another process, registered by hand) | [`scope`] / [`sync_scope`] |
//!
//! A trace remembers the client that registered it, so its events and checks keep going
//! through that client wherever it is carried.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! # let trace = fabraix::Trace::new(fabraix::TraceId::from_uuid(uuid::Uuid::new_v4()),
//! #     fabraix::AgentId::from_name("demo").unwrap(), chrono::Utc::now());
//! use fabraix::TraceFutureExt;
//!
//! fabraix::scope(trace, async {
//!     let inherited = fabraix::spawn(async { fabraix::current_trace() });
//!     let carried = tokio::spawn(async { fabraix::current_trace() }.in_current_trace());
//!     let bare = tokio::spawn(async { fabraix::current_trace() });
//!     assert_eq!(inherited.await.unwrap(), Some(trace));
//!     assert_eq!(carried.await.unwrap(), Some(trace));
//!     assert_eq!(bare.await.unwrap(), None);
//! })
//! .await;
//! # }
//! ```
//!
//! # Events
//!
//! [`log_event`] never waits on the network: the event joins a bounded queue that a
//! background exporter sends, in order per run, retrying while the API is unavailable.
//! A full queue returns [`Error::QueueFull`] and counts the drop ([`stats`]); it never
//! blocks. Build events with [`Event::text`], [`Event::json`] or [`Event::typed`] (the
//! schema derived by `schemars` from your type).
//!
//! # Checking actions
//!
//! [`check_action`] asks `POST /check` and waits for the [`Verdict`]. Checks fail closed:
//! when no verdict can be had the answer is an `Err`, never a silent "safe".
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fabraix::Error> {
//! # let server = fabraix::testing::MockServer::start().await?;
//! # server.block_action("transfer_funds", "Over the daily limit.");
//! # let client = server.client();
//! #[fabraix::agent(id = "payments", system_prompt = "You move money.", client = &client)]
//! async fn pay(client: &fabraix::Client) -> Result<(), fabraix::Error> {
//!     let action = fabraix::Action::new("transfer_funds")
//!         .description("Move money between two accounts.")
//!         .arguments(&serde_json::json!({ "to": "acct-9", "amount_cents": 1250 }));
//!     let verdict = fabraix::check_action(&action).await?;
//!     if !verdict.is_safe {
//!         println!("refused: {}", verdict.reasoning);
//!     }
//!     Ok(())
//! }
//! pay(&client).await
//! # }
//! ```
//!
//! # Guarding tools
//!
//! [`#[fabraix::action]`](macro@action) puts the check on the tool itself, so no call path
//! can forget it. The schema is the fn's name, its doc comment, and one parameter per
//! argument (`Serialize + JsonSchema`); a blocked call never runs its body and returns
//! `Err(Error::Blocked { .. }.into())`.
//!
//! Guards fail closed: with no verdict, the body does not run. Outside any run the call
//! returns [`Error::NoTrace`]; in a run that could not be registered,
//! [`Error::Unregistered`] (its `cause` says why); when the API gives no usable answer,
//! that error. The one exception is a disabled SDK (`FABRAIX_DISABLED=1` or
//! `ClientBuilder::disabled(true)`): checking was turned off on purpose, so guarded tools
//! **run, unchecked**, and the first such call in the process logs a `tracing` warning
//! saying so. A missing key, a bad URL or a failed registration are not "disabled".
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fabraix::Error> {
//! # let server = fabraix::testing::MockServer::start().await?;
//! # let client = server.client();
//! /// Move money between two accounts.
//! #[fabraix::action]
//! async fn transfer_funds(to: String, amount_cents: u64) -> Result<String, fabraix::Error> {
//!     Ok(format!("moved {amount_cents} to {to}"))
//! }
//!
//! server.block_action("transfer_funds", "Over the daily limit.");
//! # let trace = client.register_agent_run(fabraix::AgentId::from_name("a")?, "p").await?;
//! # fabraix::scope(trace, async {
//! let refused = transfer_funds("acct-9".into(), 1_000_000).await;
//! assert!(matches!(refused, Err(fabraix::Error::Blocked { .. })));
//! # }).await;
//! # Ok(()) }
//! ```
//!
//! # Testing with the MockServer
//!
//! With the `testing` feature, [`testing::MockServer`] is the Fabraix API in-process, over
//! real HTTP on loopback: it validates every request as the API documents, issues trace
//! ids, records requests, answers verdicts from rules, and injects faults.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fabraix::Error> {
//! use fabraix::testing::{Endpoint, MockServer};
//!
//! let server = MockServer::start().await?;
//! let client = server.client();
//!
//! #[fabraix::agent(id = "under-test", system_prompt = "p", client = &client)]
//! async fn agent(client: &fabraix::Client) {}
//!
//! agent(&client).await;
//! let registered = server.requests_to(Endpoint::RegisterAgentRun);
//! assert_eq!(registered[0].body["system_prompt"], "p");
//! # Ok(()) }
//! ```
//!
//! # Across processes
//!
//! A tool server, a retrieval service or a worker on another machine can act in the
//! caller's run. [`propagation`] carries the run over HTTP as W3C Trace Context: a
//! `traceparent` whose trace id is the Fabraix trace id (so OpenTelemetry reads it as its
//! own) and `baggage` members `fabraix.agent_id` and `fabraix.registered_at`. The caller
//! sends [`propagation::current_headers`] (or puts [`propagation::PropagateLayer`] on a
//! tower client); the server puts [`propagation::TraceLayer`] (feature `tower`) in front
//! of its handlers, which then log and check in the caller's run, through the server's
//! own client. No second run is registered. An inbound trace is the caller's claim: see
//! [Trust](propagation#trust) for accepting it only from callers you trust.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = fabraix::testing::MockServer::start().await?;
//! # let client = server.client();
//! use fabraix::propagation::{self, TraceLayer};
//!
//! // The tool service (usually another process, whose client comes from the environment).
//! async fn lookup() -> String {
//!     let _ = fabraix::log_event(fabraix::Event::text(fabraix::EventType::Tool, "looked up"));
//!     fabraix::current_trace().unwrap().to_string()
//! }
//! let app = axum::Router::new()
//!     .route("/lookup", axum::routing::post(lookup))
//!     .layer(TraceLayer::new().client(client.clone()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}/lookup", listener.local_addr()?);
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! // The agent.
//! #[fabraix::agent(id = "orders-agent", system_prompt = "You look orders up.", client = client)]
//! async fn agent(client: &fabraix::Client, url: &str) -> reqwest::Result<()> {
//!     let response = reqwest::Client::new()
//!         .post(url)
//!         .headers(propagation::current_headers())
//!         .send()
//!         .await?;
//!     let run = fabraix::current_trace().unwrap().to_string();
//!     assert_eq!(response.text().await?, run); // the service acted in this run
//!     Ok(())
//! }
//! agent(&client, &url).await?;
//! # assert_eq!(server.requests_to(fabraix::testing::Endpoint::RegisterAgentRun).len(), 1);
//! # Ok(()) }
//! ```
//!
//! # Configuration
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `FABRAIX_API_KEY` | the API key, sent as `x-api-key`, never logged | required unless disabled |
//! | `FABRAIX_BASE_URL` | the API's base URL; `https://` unless loopback, ending in the version (`/v1`) | `https://dev.fabraix.com/v1` |
//! | `FABRAIX_TIMEOUT_MS` | timeout of one attempt | `10000` |
//! | `FABRAIX_MAX_RETRIES` | retries of 429, 5xx, connection errors, timeouts | `3` |
//! | `FABRAIX_RATE_LIMIT` | the key's limit: `60/min,1000/h`, `10/s`, `30/6s`, `off` (each window at most a day and 1,000,000 requests) | by base URL |
//! | `FABRAIX_SPOOL_DIR` | feature `spool`: a folder where queued events are kept on disk, to outlive the process | unset |
//! | `FABRAIX_DISABLED` | `1`: the SDK is off: nothing is sent, runs have no trace, events are let go (counted), checks answer `Error::Disabled`, guarded tools run unchecked | unset |
//!
//! [`ClientBuilder`] has these and more: connect timeout, a total deadline per call,
//! backoff base and cap, the longest `Retry-After` honoured, queue capacity, requests in
//! flight, flush and shutdown timeouts.
//!
//! # Rate limits
//!
//! Each client keeps one budget for its key ([`RateLimit`]: sliding windows; by default a
//! development key's `60/min,1000/h` for `dev.fabraix.com`, a production key's for
//! `api.fabraix.com`, none elsewhere), shared by registrations, checks and events.
//! Registrations and checks go first, and wait for budget within their deadline rather
//! than fail; events keep a fifth of each window free for them. A 429 pauses the key and
//! paces it below the rate that met the limit. An agent fn waits on return for its events
//! only while they can be sent within its flush timeout at the current pace. [`stats`]
//! shows the 429s, the time spent waiting and the pace.
//!
//! # Features
//!
//! - `rustls` (default): TLS through rustls. `native-tls`: the platform's TLS instead.
//! - `tracing` (default): each run is a `fabraix.agent_run` span (fields `agent_id`,
//!   `trace_id`) around the body, so log lines inside a run carry its ids.
//! - `testing`: [`testing::MockServer`].
//! - `tower`: [`propagation::TraceLayer`] and [`propagation::PropagateLayer`], tower
//!   layers that carry a run across processes.
//! - `spool`: queued events kept in a crash-safe spool on disk (SQLite, compiled in):
//!   written behind (at most 1 s late), overflow to disk instead of
//!   [`Error::QueueFull`], sent by the next process on the same folder and key, capped in
//!   size and age; `ClientBuilder::spool_dir` or `FABRAIX_SPOOL_DIR`, counts in
//!   [`EventStats`]. The `fabraix-spool drain` command sends a folder's backlog and exits.
//!   See the README's Reliability section.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[allow(deprecated)] // the old name, kept for those who use it
pub use fabraix_runtime::event_stats;
pub use fabraix_runtime::{
    Action, AgentId, Client, ClientBuilder, Conversation, DEFAULT_BASE_URL, Error, Event,
    EventReceipt, EventStats, EventType, FleetStats, InitGuard, IntoAgentId, RateLimit, RateWindow,
    RunContext, Stats, Trace, TraceFutureExt, TraceId, Traced, Verdict, check_action,
    check_action_blocking, conversation, current_run, current_trace, flush, flush_blocking,
    global_client, init, log_event, scope, spawn, spawn_blocking, stats, sync_scope,
};

pub use fabraix_macros::{action, agent};

pub use fabraix_runtime::propagation;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub use fabraix_runtime::testing;

#[doc(hidden)]
pub mod __private {
    pub use fabraix_runtime::__private::*;
}

#[cfg(any(fuzzing, feature = "__fuzz"))]
#[doc(hidden)]
pub use fabraix_runtime::__fuzz;

#[cfg(feature = "__bench")]
#[doc(hidden)]
pub use fabraix_runtime::__bench;
