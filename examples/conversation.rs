//! A multi-turn conversation: one agent run for the whole conversation, with a `user` and
//! a `model_output` event for every turn.
//! Watch it live: run `fabraix-dev`, then here `export $(fabraix-dev --print-env)`, run this, open http://127.0.0.1:8417/.
//!
//! ```text
//! cargo run --example conversation
//! ```

mod common;

use fabraix::{Event, EventType};

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

/// One conversation is one run: registered when the fn is called, current for every turn.
#[fabraix::agent(
    id = "support-chat",
    system_prompt = "You are a support assistant for an online shop. Never share personal data."
)]
async fn converse(turns: &[&str]) -> Vec<String> {
    println!("conversation run {}", common::run_name());
    let mut replies = Vec::new();
    for question in turns {
        // Telemetry never fails the conversation: an event that cannot be queued (a full
        // queue) is dropped, counted in `fabraix::stats()` and reported through `tracing`.
        let _ = fabraix::log_event(Event::text(EventType::User, question));
        let reply = model(question);
        let _ = fabraix::log_event(Event::text(EventType::ModelOutput, &reply));
        println!("  user:  {question}\n  agent: {reply}");
        replies.push(reply);
    }
    replies
    // The run's events are flushed before the fn returns.
}

#[tokio::main]
async fn main() -> Result<(), fabraix::Error> {
    let setup = common::mock_unless_configured()?;
    converse(&["Where is my order?", "And if I want a refund?", "Thanks!"]).await;
    common::summary(&setup.server);
    Ok(())
}
