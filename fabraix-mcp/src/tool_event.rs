//! The `tool` event recording a call that Fabraix approved and the tool ran.

use fabraix::{Client, Event, EventType, Trace, Verdict};
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResponse, JsonObject};
use serde_json::{Value, json};

/// A result larger than this (as JSON) is recorded by its size alone.
const MAX_RECORDED_RESULT_BYTES: usize = 32 * 1024;

/// Queues the `tool` event of a call: the tool, its arguments, the check's id, whether it
/// succeeded (answered, and not `isError`), and what it answered. Recording never changes
/// the call's result.
pub(crate) fn record(
    client: &Client,
    trace: &Trace,
    tool: &str,
    arguments: Option<JsonObject>,
    verdict: &Verdict,
    response: &Result<CallToolResponse, McpError>,
) {
    let record = json!({
        "action": tool,
        "arguments": arguments.unwrap_or_default(),
        "action_check_id": verdict.action_check_id,
        "succeeded": succeeded(response),
        "result": bounded(answer(response)),
    });
    let queued = Event::json(EventType::Tool, &record, schema())
        .and_then(|event| client.queue_event(trace.trace_id(), event));
    if let Err(error) = queued {
        tracing::debug!(target: "fabraix_mcp", %error, tool, "tool event not logged");
    }
}

fn succeeded(response: &Result<CallToolResponse, McpError>) -> bool {
    match response {
        Ok(CallToolResponse::Complete(result)) => result.is_error != Some(true),
        Ok(_) => true,
        Err(_) => false,
    }
}

fn answer(response: &Result<CallToolResponse, McpError>) -> Value {
    let value = match response {
        Ok(CallToolResponse::Complete(result)) => serde_json::to_value(result),
        Ok(CallToolResponse::InputRequired(result)) => serde_json::to_value(result),
        Ok(CallToolResponse::Task(result)) => serde_json::to_value(result),
        Ok(_) => Ok(json!({ "unrecorded": "a kind of answer this version does not know" })),
        Err(error) => serde_json::to_value(error).map(|error| json!({ "error": error })),
    };
    value.unwrap_or_else(|error| json!({ "unrecorded": error.to_string() }))
}

fn bounded(result: Value) -> Value {
    let size = serde_json::to_vec(&result).map_or(usize::MAX, |bytes| bytes.len());
    if size <= MAX_RECORDED_RESULT_BYTES {
        result
    } else {
        json!({ "omitted": format!("a result of {size} bytes") })
    }
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "action": { "type": "string" },
            "arguments": { "type": "object" },
            "action_check_id": { "type": "string" },
            "succeeded": { "type": "boolean" },
            "result": { "type": "object" }
        },
        "required": ["action", "arguments", "action_check_id", "succeeded", "result"]
    })
}
