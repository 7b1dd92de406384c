//! For agents calling remote tools: check a call in the current run, and send the run along.

use fabraix::Error;
use rmcp::model::{CallToolRequestParams, Tool};

use crate::action::tool_action;
use crate::disabled;
use crate::meta::inject_trace;

/// Checks a call in the current run before it is sent, then writes the run's trace into
/// its `_meta`: the call, ready to send. `tool` is the tool's definition from the server's
/// `tools/list` (for its description and input schema), if the agent has it.
///
/// Fails closed: [`Error::NoTrace`] outside a run, [`Error::Blocked`] with Fabraix's
/// reasoning when the call is blocked, [`Error::Unregistered`] in a run that could not be
/// registered, and any other error when no verdict can be had. A guarded server checks the
/// call again when it arrives: the agent's check keeps a blocked call from leaving the
/// agent at all.
///
/// With the SDK disabled (`FABRAIX_DISABLED=1`, `ClientBuilder::disabled(true)`) checking
/// is off: the call is returned unchecked, with the run's trace written if the run has one
/// (the runs of a disabled SDK's agent fns have none), and the first unchecked call of the
/// process logs a `tracing` warning.
///
/// ```no_run
/// # async fn demo(peer: rmcp::Peer<rmcp::RoleClient>, tool: rmcp::model::Tool)
/// #     -> Result<(), Box<dyn std::error::Error>> {
/// use rmcp::model::CallToolRequestParams;
///
/// let arguments = serde_json::json!({ "name": "groceries" });
/// let call = CallToolRequestParams::new("read_note")
///     .with_arguments(arguments.as_object().cloned().unwrap_or_default());
/// let call = fabraix_mcp::check_tool_call(call, Some(&tool)).await?;
/// let result = peer.call_tool(call).await?;
/// # let _ = result; Ok(()) }
/// ```
pub async fn check_tool_call(
    mut params: CallToolRequestParams,
    tool: Option<&Tool>,
) -> Result<CallToolRequestParams, Error> {
    let action = tool_action(&params.name, tool, params.arguments.as_ref());
    match fabraix::check_action(&action).await {
        Ok(verdict) => {
            verdict.require_safe()?;
        }
        Err(error) => disabled::unchecked_if_disabled(error, &params.name)?,
    }
    // A run with a trace checked the call (a disabled client's trace, e.g. one carried in
    // from another process, answers `Disabled` and is written too).
    if let Some(trace) = fabraix::current_trace() {
        inject_trace(&mut params, &trace);
    }
    Ok(params)
}

/// The old name of [`check_tool_call`].
#[deprecated(
    since = "0.1.0",
    note = "one name in every integration: use `check_tool_call` (fabraix-openai's is `check_tool_calls`)"
)]
pub async fn check_call(
    params: CallToolRequestParams,
    tool: Option<&Tool>,
) -> Result<CallToolRequestParams, Error> {
    check_tool_call(params, tool).await
}
