//! A chat service: an axum endpoint `POST /chat` that takes
//! `{"conversation_id": "...", "message": "..."}`, one request per user message, and
//! answers `{"reply": "...", "run": "<trace id>"}`. Each conversation is one Fabraix run,
//! continued turn after turn (`#[fabraix::agent(conversation = ..)]`); `POST /end` with
//! `{"conversation_id": "..."}` ends one (its next message starts a new run).
//!
//! ```text
//! cargo run --example chat_service             # serves a few demo turns to itself, then exits
//! cargo run --example chat_service -- --serve  # keeps serving on http://127.0.0.1:3000
//! cargo run --example chat_service -- --serve 3001  # the same, on port 3001
//! curl -s localhost:3000/chat -H 'content-type: application/json' \
//!      -d '{"conversation_id": "c-1", "message": "Where is my order?"}'
//! ```
//!
//! Two replicas, one conversation: built with the `redis` feature and with
//! `FABRAIX_REDIS_URL` set (and `FABRAIX_API_KEY`, `FABRAIX_BASE_URL` naming one API, e.g.
//! `fabraix-dev`'s), two instances on two ports continue each other's conversations: a
//! message to either one goes on in the conversation's one run.
//!
//! ```text
//! redis-server --port 6379 &
//! export $(fabraix-dev --print-env) FABRAIX_REDIS_URL=redis://127.0.0.1:6379/0
//! cargo run --features redis --example chat_service -- --serve 3000 &
//! cargo run --features redis --example chat_service -- --serve 3001 &
//! curl -s localhost:3000/chat -H 'content-type: application/json' -d '{"conversation_id": "c-1", "message": "Hi"}'
//! curl -s localhost:3001/chat -H 'content-type: application/json' -d '{"conversation_id": "c-1", "message": "Again"}'
//! # both answers name the same run
//! ```
//!
//! With `FABRAIX_API_KEY` set it talks to the API at `FABRAIX_BASE_URL`; without it, to an
//! in-process MockServer. With `FABRAIX_DISABLED=1` the SDK is off: the service answers,
//! without runs, and its guarded tool runs unchecked.
//! Watch it live: run `fabraix-dev`, then here `export $(fabraix-dev --print-env)`, run this,
//! open http://127.0.0.1:8417/.

use std::net::SocketAddr;

use axum::Json;
use axum::routing::post;
use fabraix::testing::{Endpoint, MockServer};
use fabraix::{Client, Event, EventType};
use serde::{Deserialize, Serialize};

const AGENT: &str = "support-chat";
const SYSTEM_PROMPT: &str =
    "You are a support assistant for an online shop. Never share personal data.";

#[derive(Deserialize)]
struct ChatRequest {
    conversation_id: String,
    message: String,
}

#[derive(Serialize, Deserialize)]
struct ChatReply {
    reply: String,
    /// The conversation's run, `None` when Fabraix is off.
    run: Option<String>,
}

#[derive(Deserialize)]
struct EndRequest {
    conversation_id: String,
}

/// One turn: the conversation's run is current in here (registered by its first message,
/// continued by the next ones), and the turn's events are sent when it returns.
#[fabraix::agent(id = AGENT, system_prompt = SYSTEM_PROMPT, conversation = &request.conversation_id)]
async fn answer(request: ChatRequest) -> Result<ChatReply, fabraix::Error> {
    fabraix::log_event(Event::text(EventType::User, &request.message))?;
    let reply = match request.message.contains("refund") {
        // The tool asks Fabraix first, in the conversation's run: it sees every earlier turn.
        true => refund("order-1234".into()).await?,
        false => model(&request.message),
    };
    fabraix::log_event(Event::text(EventType::ModelOutput, &reply))?;
    Ok(ChatReply {
        reply,
        run: fabraix::current_trace().map(|trace| trace.to_string()),
    })
}

/// Refund an order to the card it was paid with.
#[fabraix::action]
async fn refund(order: String) -> Result<String, fabraix::Error> {
    Ok(format!("The refund of {order} is on its way."))
}

/// A stand-in for the model.
fn model(message: &str) -> String {
    if message.contains("order") {
        "Your order shipped yesterday and should arrive on Thursday.".into()
    } else {
        "Is there anything else I can help you with?".into()
    }
}

async fn chat(Json(request): Json<ChatRequest>) -> Result<Json<ChatReply>, String> {
    answer(request).await.map(Json).map_err(|e| e.to_string())
}

async fn end(Json(request): Json<EndRequest>) -> Json<bool> {
    Json(
        fabraix::conversation(&request.conversation_id)
            .end(AGENT)
            .await,
    )
}

fn app() -> axum::Router {
    axum::Router::new()
        .route("/chat", post(chat))
        .route("/end", post(end))
}

/// The client: off with `FABRAIX_DISABLED=1`, the API with `FABRAIX_API_KEY`, else an
/// in-process MockServer (returned, to keep it alive).
fn client() -> Result<(Client, Option<MockServer>), fabraix::Error> {
    let disabled = std::env::var("FABRAIX_DISABLED").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    });
    if disabled || std::env::var_os("FABRAIX_API_KEY").is_some() {
        let client = Client::from_env()?;
        if client.is_disabled() {
            println!(
                "FABRAIX_DISABLED is set: the SDK is off; turns run untraced, nothing is sent, guarded tools run unchecked"
            );
        }
        return Ok((client, None));
    }
    let server = MockServer::start_blocking()?;
    println!(
        "FABRAIX_API_KEY is not set: using an in-process MockServer at {}",
        server.url()
    );
    Ok((server.client(), Some(server)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let serve = args.iter().position(|arg| arg == "--serve");
    // `--serve` takes a port, 3000 unless another follows it.
    let port = match serve.and_then(|at| args.get(at + 1)) {
        Some(port) => port
            .parse::<u16>()
            .map_err(|e| format!("`--serve {port}`: not a port ({e})"))?,
        None => 3000,
    };
    let serve = serve.is_some();
    let (client, server) = client()?;
    // Sends the events still queued when `main` ends.
    let _fabraix = fabraix::init(client)?;

    let address = SocketAddr::from(([127, 0, 0, 1], if serve { port } else { 0 }));
    let listener = tokio::net::TcpListener::bind(address).await?;
    let address = listener.local_addr()?;
    if serve {
        println!("serving POST http://{address}/chat and POST http://{address}/end (Ctrl-C stops)");
        axum::serve(listener, app()).await?;
        return Ok(());
    }
    let service = tokio::spawn(async move { axum::serve(listener, app()).await });
    demo(address).await?;
    service.abort();

    if let Some(server) = &server {
        println!(
            "the MockServer received {} registrations (alice, bob, and alice after her end), {} events and {} checks",
            server.requests_to(Endpoint::RegisterAgentRun).len(),
            server.requests_to(Endpoint::Event).len(),
            server.requests_to(Endpoint::Check).len(),
        );
    }
    Ok(())
}

/// Two conversations, interleaved as their users type, then one ended and started over.
async fn demo(address: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("http://{address}{path}"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let turns = [
        ("alice", "Where is my order?"),
        ("bob", "Hello!"),
        ("alice", "Can I get a refund instead?"),
        ("bob", "Thanks, that is all."),
    ];
    for (conversation, message) in turns {
        let response = post(
            "/chat",
            serde_json::json!({ "conversation_id": conversation, "message": message }),
        )
        .await?
        .error_for_status()?;
        let reply: ChatReply = serde_json::from_slice(&response.bytes().await?)?;
        let run = reply.run.as_deref().unwrap_or("none (the SDK is off)");
        println!(
            "{conversation:>5} (run {run})\n   user:  {message}\n   agent: {}",
            reply.reply
        );
    }
    post("/end", serde_json::json!({ "conversation_id": "alice" }))
        .await?
        .error_for_status()?;
    println!("alice's conversation ended");
    let response = post(
        "/chat",
        serde_json::json!({ "conversation_id": "alice", "message": "Hello again" }),
    )
    .await?
    .error_for_status()?;
    let reply: ChatReply = serde_json::from_slice(&response.bytes().await?)?;
    let run = match &reply.run {
        Some(run) => format!("{run}: a new one"),
        None => "none (the SDK is off)".into(),
    };
    println!(
        "alice (run {run})\n   user:  Hello again\n   agent: {}",
        reply.reply
    );
    Ok(())
}
