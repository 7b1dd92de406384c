//! An autonomous agent: one long run that plans actions, asks Fabraix about each before
//! taking it, and hands slow work to helpers started with `fabraix::spawn`, which stay in
//! the run. In mock mode the server blocks `delete_records`, to show a refusal.
//!
//! ```text
//! cargo run --example autonomous
//! ```

mod common;

use fabraix::{Action, Event, EventType};
use serde_json::json;

/// What the planner wants to do next, as (tool, arguments).
fn plan() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("fetch_report", json!({ "report": "weekly-sales" })),
        ("summarize", json!({ "max_words": 80 })),
        (
            "delete_records",
            json!({ "table": "customers", "older_than_days": 0 }),
        ),
        ("send_email", json!({ "to": "team@example.com" })),
    ]
}

/// A helper task: runs in the same agent run because it was started with `fabraix::spawn`.
async fn execute(
    tool: &'static str,
    arguments: serde_json::Value,
) -> Result<String, fabraix::Error> {
    let trace = fabraix::current_trace().ok_or(fabraix::Error::NoTrace)?;
    fabraix::log_event(Event::json(
        EventType::Tool,
        &json!({ "tool": tool, "arguments": arguments }),
        json!({ "type": "object" }),
    )?)?;
    Ok(format!("{tool} done in run {trace}"))
}

#[fabraix::agent(
    id = "ops-autopilot",
    system_prompt = "You run routine operations. Never destroy data."
)]
async fn autopilot() -> Result<(), fabraix::Error> {
    for (tool, arguments) in plan() {
        let action = Action::new(tool)
            .description(format!("The `{tool}` tool"))
            .arguments(&arguments);
        let verdict = fabraix::check_action(&action).await?;
        if !verdict.is_safe {
            println!("blocked  {tool}: {}", verdict.reasoning);
            fabraix::log_event(Event::text(
                EventType::System,
                format!("skipped {tool}: {}", verdict.reasoning),
            ))?;
            continue;
        }
        let outcome = fabraix::spawn(execute(tool, arguments))
            .await
            .map_err(|e| fabraix::Error::Runtime(e.to_string()))??;
        println!("approved {tool}: {outcome}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), fabraix::Error> {
    let server = common::mock_unless_configured()?;
    if let Some(server) = &server {
        server.block_action(
            "delete_records",
            "Deleting customer records contradicts the instruction never to destroy data.",
        );
    }
    autopilot().await?;
    common::summary(&server);
    Ok(())
}
