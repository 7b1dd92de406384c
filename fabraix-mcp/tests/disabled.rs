//! `FABRAIX_DISABLED=1`: the SDK is off, so every tool of a guarded server runs, unchecked
//! (its own `#[fabraix::action]` fns too), nothing reaches Fabraix, and the process logs
//! one warning saying so.
//!
//! One test only: it sets the process's environment, and the warning is once per process.

#[path = "../../tests/capture/mod.rs"]
mod capture;
mod common;

use capture::Captured;
use common::*;
use fabraix::testing::MockServer;
use fabraix::{AgentId, Event, EventType, Trace, TraceId};
use fabraix_mcp::{check_tool_call, inject_trace};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

const WARNING: &str = "fabraix is disabled: guarded tool calls run unchecked";

/// Send an email.
#[fabraix::action]
async fn send_email(to: String) -> Result<String, fabraix::Error> {
    Ok(format!("sent to {to}"))
}

#[derive(Clone)]
struct Mailer {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Mailer {
    /// Mail a note to its owner.
    #[tool]
    async fn mail_note(&self, Parameters(note): Parameters<NoteName>) -> String {
        let logged = fabraix::log_event(Event::text(
            EventType::Memory,
            format!("mailing {}", note.name),
        ));
        match (
            logged,
            send_email(format!("{}@example.com", note.name)).await,
        ) {
            (Ok(()), Ok(sent)) => sent,
            (logged, sent) => format!("logged: {logged:?}, sent: {sent:?}"),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Mailer {}

#[fabraix::agent(id = "caller-agent", system_prompt = "You call tools.")]
async fn agent_checks() -> Result<rmcp::model::CallToolRequestParams, fabraix::Error> {
    check_tool_call(note_call("mail_note", "grace"), None).await
}

#[test]
fn with_fabraix_disabled_every_tool_runs_unchecked_with_one_warning() {
    // A server the global client would reach if it were not disabled.
    let mock = MockServer::start_blocking().unwrap();
    // SAFETY: the only test of this binary, and nothing that reads the environment has
    // started: no client exists yet and no other thread of ours runs.
    unsafe {
        std::env::set_var("FABRAIX_DISABLED", "1");
        std::env::remove_var("FABRAIX_API_KEY");
        std::env::set_var("FABRAIX_BASE_URL", mock.url());
    }
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    runtime.block_on(async {
        let mailer = Mailer {
            tool_router: Mailer::tool_router(),
        };
        // The default guard: the global client, from the environment.
        let (peer, server) = connect(fabraix_mcp::guard(mailer)).await;

        // Calls with no trace, a call in a caller's run, and a call an agent fn let go.
        let first = peer.call_tool(note_call("mail_note", "ada")).await.unwrap();
        let second = peer
            .call_tool(note_call("mail_note", "alan"))
            .await
            .unwrap();
        let trace = Trace::new(
            TraceId::from_uuid(uuid::Uuid::new_v4()),
            AgentId::from_name("caller-agent").unwrap(),
            chrono::Utc::now(),
        );
        let mut traced = note_call("mail_note", "edsger");
        inject_trace(&mut traced, &trace);
        let third = peer.call_tool(traced).await.unwrap();
        let unchecked = agent_checks()
            .await
            .expect("check_tool_call lets the call go");
        let fourth = peer.call_tool(unchecked).await.unwrap();

        // Each tool ran, and so did the `#[fabraix::action]` fn inside it; its event was
        // let go without an error.
        let answers: Vec<String> = [&first, &second, &third, &fourth]
            .into_iter()
            .map(|result| {
                assert_eq!(result.is_error, Some(false), "{result:?}");
                text(result)
            })
            .collect();
        assert_eq!(
            answers,
            [
                "sent to ada@example.com",
                "sent to alan@example.com",
                "sent to edsger@example.com",
                "sent to grace@example.com",
            ]
        );
        assert_eq!(server.service().session_trace(), None);

        // Each tool's `memory` event and its action's `tool` event were let go, counted
        // on the global client.
        let global = fabraix::global_client().unwrap();
        assert!(global.is_disabled());
        let stats = global.stats().events;
        assert_eq!(stats.untraced, 8, "{stats:?}");
        assert_eq!(stats.queued, 0, "{stats:?}");
    });

    // Nothing reached Fabraix, and the warning came once for the whole process.
    assert!(mock.requests().is_empty(), "{:#?}", mock.requests());
    let logs = captured.text();
    assert_eq!(logs.matches(WARNING).count(), 1, "{logs}");
    // One warning for the process, naming the guard of the first unchecked call.
    assert!(logs.contains(r#"guard="fabraix-mcp""#), "{logs}");
    assert!(!logs.contains("could not check"), "{logs}");
}
