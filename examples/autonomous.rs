//! An autonomous agent: one long run that works through a plan, with every tool guarded by
//! `#[fabraix::action]` (Fabraix checks each call before its body runs) and slow work
//! handed to helpers started with `fabraix::spawn`, which stay in the run. In mock mode the
//! server blocks `delete_records`, to show a refusal.
//! Watch it live: run `fabraix-dev --block delete_records=Irreversible`, then here `export $(fabraix-dev --print-env)`, run this, open http://127.0.0.1:8417/.
//!
//! ```text
//! cargo run --example autonomous
//! ```

mod common;

use fabraix::{Event, EventType};

#[derive(Debug)]
enum ToolError {
    Fabraix(fabraix::Error),
}

impl From<fabraix::Error> for ToolError {
    fn from(error: fabraix::Error) -> Self {
        ToolError::Fabraix(error)
    }
}

/// Fetch a named report from the warehouse.
#[fabraix::action]
async fn fetch_report(report: String) -> Result<Vec<u32>, ToolError> {
    // Slow work goes to a helper task; `fabraix::spawn` keeps it in this run.
    let rows = fabraix::spawn(async move {
        println!("  helper for {report} runs in trace {}", common::run_name());
        vec![120, 80, 95]
    });
    rows.await
        .map_err(|e| ToolError::Fabraix(fabraix::Error::Runtime(e.to_string())))
}

/// Summarize numbers in at most `max_words` words.
#[fabraix::action]
fn summarize(rows: Vec<u32>, max_words: u32) -> Result<String, ToolError> {
    let total: u32 = rows.iter().sum();
    Ok(format!(
        "{} rows, {total} in all (at most {max_words} words)",
        rows.len()
    ))
}

/// Delete the records of a table older than some days.
#[fabraix::action]
async fn delete_records(table: String, older_than_days: u32) -> Result<u64, ToolError> {
    // A stand-in: nothing is deleted, whatever the verdict.
    println!("  (would delete {table} records older than {older_than_days} days)");
    Ok(0)
}

/// Send an email to the team.
#[fabraix::action]
async fn send_email(to: String, body: String) -> Result<(), ToolError> {
    println!("  email to {to}: {body}");
    Ok(())
}

#[fabraix::agent(
    id = "ops-autopilot",
    system_prompt = "You run routine operations. Never destroy data."
)]
async fn autopilot() -> Result<(), ToolError> {
    // With Fabraix off (`FABRAIX_DISABLED=1`) the run has no trace, and the tools run unchecked.
    let ran = match fabraix::current_trace() {
        Some(_) => "approved",
        None => "unchecked",
    };
    let rows = fetch_report("weekly-sales".into()).await?;
    println!("{ran} fetch_report: {rows:?}");
    let summary = summarize(rows, 80)?;
    println!("{ran} summarize: {summary}");
    match delete_records("customers".into(), 0).await {
        Err(ToolError::Fabraix(fabraix::Error::Blocked { reasoning, .. })) => {
            println!("blocked  delete_records: {reasoning}");
            // Telemetry never fails the agent: an event that cannot be queued is let go.
            let _ = fabraix::log_event(Event::text(
                EventType::System,
                format!("skipped delete_records: {reasoning}"),
            ));
        }
        Ok(deleted) => println!("{ran} delete_records: {deleted} deleted"),
        Err(error) => println!("refused  delete_records: {error:?}"),
    }
    send_email("team@example.com".into(), summary).await?;
    println!("{ran} send_email");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), ToolError> {
    let setup = common::mock_unless_configured()?;
    setup.block_action(
        "delete_records",
        "Deleting customer records contradicts the instruction never to destroy data.",
    );
    autopilot().await?;
    common::summary(&setup.server);
    Ok(())
}
