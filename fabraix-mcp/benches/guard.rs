//! What a guarded `tools/call` costs next to an unguarded one, and next to the same check
//! written by hand inside the tool: a real rmcp client and server over an in-process byte
//! stream, Fabraix a `MockServer` on loopback.
//!
//! ```text
//! cargo bench -p fabraix-mcp --bench guard
//! ```

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fabraix::testing::MockServer;
use fabraix::{Action, AgentId, Client, Event, EventType, Trace};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolRequestParams, JsonObject, RequestMetaObject};
use rmcp::service::{RoleClient, RunningService};
use rmcp::{ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct NoteName {
    /// The note's name.
    name: String,
}

/// `read_note`; with `checked_by_hand`, the tool itself asks Fabraix first and records
/// itself as a `tool` event, as a careful user would without the guard.
#[derive(Clone)]
struct Notes {
    checked_by_hand: Option<(Client, Trace)>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Notes {
    /// Read one of the user's notes.
    #[tool]
    async fn read_note(&self, Parameters(note): Parameters<NoteName>) -> String {
        if let Some((client, trace)) = &self.checked_by_hand {
            let action =
                Action::new("read_note").arguments(&serde_json::json!({ "name": note.name }));
            let verdict = client.check_action(trace.trace_id(), &action).await;
            if !verdict.is_ok_and(|v| v.is_safe) {
                return "refused".into();
            }
            let text = format!("the note {}", note.name);
            let event = Event::text(EventType::Tool, &text);
            let _ = client.queue_event(trace.trace_id(), event);
            return text;
        }
        format!("the note {}", note.name)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Notes {}

fn notes(checked_by_hand: Option<(Client, Trace)>) -> Notes {
    Notes {
        checked_by_hand,
        tool_router: Notes::tool_router(),
    }
}

async fn connect<S: ServerHandler>(server: S) -> RunningService<RoleClient, ()> {
    let (server_end, client_end) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let running = server.serve(server_end).await.expect("the server starts");
        let _ = running.waiting().await;
    });
    ().serve(client_end).await.expect("the client connects")
}

fn call(trace: &Trace) -> CallToolRequestParams {
    let mut arguments = JsonObject::new();
    arguments.insert("name".into(), "groceries".into());
    let mut call = CallToolRequestParams::new("read_note").with_arguments(arguments);
    fabraix_mcp::inject_trace(&mut call, trace);
    call
}

fn tools_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let (mock, trace) = rt.block_on(async {
        let mock = MockServer::start().await.expect("the mock server starts");
        let trace = mock
            .client()
            .register_agent_run(
                AgentId::from_name("bench").expect("a name"),
                "You call tools.",
            )
            .await
            .expect("a run");
        (mock, trace)
    });
    let client = mock.client();
    let unguarded = rt.block_on(connect(notes(None)));
    let by_hand = rt.block_on(connect(notes(Some((client.clone(), trace)))));
    let guarded = rt.block_on(connect(
        fabraix_mcp::Guard::new()
            .client(client.clone())
            .wrap(notes(None)),
    ));

    let mut group = c.benchmark_group("tools/call");
    for (name, peer) in [
        ("unguarded", &unguarded),
        ("checked by hand in the tool", &by_hand),
        ("guarded", &guarded),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    black_box(peer.call_tool(call(&trace)).await.expect("an answer"));
                })
            });
            mock.clear_requests();
        });
    }
    group.finish();

    let meta: RequestMetaObject = call(&trace).meta.expect("a trace in _meta");
    c.bench_function("extract_trace from _meta", |b| {
        b.iter(|| black_box(fabraix_mcp::extract_trace(black_box(&meta))))
    });
}

criterion_group!(benches, tools_call);
criterion_main!(benches);
