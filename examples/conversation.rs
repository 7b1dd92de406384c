//! A multi-turn conversation: one agent run per conversation, however many calls serve
//! it. Each user message is one call of the agent fn (as each is one request in a chat
//! service); `conversation = ..` makes the calls of one conversation continue its run, with
//! a `user` and a `model_output` event for every turn. Two conversations interleave, and
//! one is ended and started over. For the same over HTTP, see `chat_service`.
//! Watch it live: run `fabraix-dev`, then here `export $(fabraix-dev --print-env)`, run this, open http://127.0.0.1:8417/.
//!
//! ```text
//! cargo run --example conversation
//! ```

mod common;

use fabraix::{Event, EventType};

const AGENT: &str = "support-chat";

/// A stand-in for the model: answers from a few canned lines.
fn model(question: &str) -> String {
    if question.contains("refund") {
        "Refunds take 5 to 7 business days once the parcel is back with us.".into()
    } else if question.contains("order") {
        "Your order shipped yesterday and should arrive on Thursday.".into()
    } else {
        "Is there anything else I can help you with?".into()
    }
}

/// One turn of the conversation `conversation_id`: its first turn registers the run, the
/// next ones continue it (until it is idle for 30 minutes, 24 hours old, or ended).
#[fabraix::agent(
    id = AGENT,
    system_prompt = "You are a support assistant for an online shop. Never share personal data.",
    conversation = conversation_id
)]
async fn turn(conversation_id: &str, question: &str) -> Result<String, fabraix::Error> {
    // Telemetry never fails the conversation: an event that cannot be queued (a full
    // queue) is dropped, counted in `fabraix::stats()` and reported through `tracing`.
    let _ = fabraix::log_event(Event::text(EventType::User, question));
    let reply = model(question);
    let _ = fabraix::log_event(Event::text(EventType::ModelOutput, &reply));
    let run = common::run_name();
    println!("{conversation_id:>5} (run {run})\n   user:  {question}\n   agent: {reply}");
    Ok(reply)
    // This turn's events are flushed before the fn returns; the run stays for the next turn.
}

#[tokio::main]
async fn main() -> Result<(), fabraix::Error> {
    let setup = common::mock_unless_configured()?;
    turn("alice", "Where is my order?").await?;
    turn("bob", "Hello!").await?;
    turn("alice", "And if I want a refund?").await?;
    turn("bob", "Where is my order, please?").await?;
    turn("alice", "Thanks!").await?;
    // Alice starts over (her context is reset): her next turn is a new run.
    fabraix::conversation("alice").end(AGENT).await;
    turn("alice", "Hello again").await?;
    common::summary(&setup.server);
    Ok(())
}
