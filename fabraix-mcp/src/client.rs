//! For agents calling remote tools: check a call in the current run, and send the run along.

use fabraix::Error;
use rmcp::model::{CallToolRequestParams, Tool};

use crate::action::tool_action;
use crate::meta::inject_trace;

/// Checks a call in the current run before it is sent, then writes the run's trace into
/// its `_meta`: the call, ready to send. `tool` is the tool's definition from the server's
/// `tools/list` (for its description and input schema), if the agent has it.
///
/// Fails closed: [`Error::NoTrace`] outside a run, [`Error::Blocked`] with Fabraix's
/// reasoning when the call is blocked, and any other error when no verdict can be had.
/// A guarded server checks the call again when it arrives: the agent's check keeps a
/// blocked call from leaving the agent at all.
///
/// ```no_run
/// # async fn demo(peer: rmcp::Peer<rmcp::RoleClient>, tool: rmcp::model::Tool)
/// #     -> Result<(), Box<dyn std::error::Error>> {
/// use rmcp::model::CallToolRequestParams;
///
/// let arguments = serde_json::json!({ "name": "groceries" });
/// let call = CallToolRequestParams::new("read_note")
///     .with_arguments(arguments.as_object().cloned().unwrap_or_default());
/// let call = fabraix_mcp::check_call(call, Some(&tool)).await?;
/// let result = peer.call_tool(call).await?;
/// # let _ = result; Ok(()) }
/// ```
pub async fn check_call(
    mut params: CallToolRequestParams,
    tool: Option<&Tool>,
) -> Result<CallToolRequestParams, Error> {
    let trace = fabraix::current_trace().ok_or(Error::NoTrace)?;
    let action = tool_action(&params.name, tool, params.arguments.as_ref());
    fabraix::check_action(&action).await?.require_safe()?;
    inject_trace(&mut params, &trace);
    Ok(params)
}
