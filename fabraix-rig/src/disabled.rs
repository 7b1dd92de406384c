//! A disabled SDK (`FABRAIX_DISABLED=1`, `ClientBuilder::disabled(true)`): the user turned
//! checking off on purpose, so tool calls run unchecked. The one place this crate acts on
//! that; every other way of having no verdict refuses the call.

use fabraix::{Client, RunContext};
use rig_agent::agent::DispatchAction;

/// How this crate is named in what Fabraix's guards log.
pub(crate) const GUARD: &str = "fabraix-rig";

/// A tool call Fabraix cannot check because the SDK is disabled: it runs, and the first
/// such call of the process says so.
pub(crate) fn run_unchecked(tool: &str) -> DispatchAction {
    fabraix::__private::warn_unchecked(GUARD, tool);
    DispatchAction::proceed()
}

/// A run of the disabled `client` without a trace, as a disabled SDK's agent fns have: its
/// events are let go and counted on `client`, and its checks answer
/// [`fabraix::Error::Disabled`]. A disabled client never registers (nor sends anything),
/// so the id and prompt below go nowhere. `None` only if no run were current inside an
/// agent fn, which cannot be.
#[fabraix::agent(id = "fabraix-rig", system_prompt = "", client = client)]
pub(crate) async fn untraced_run(client: &Client) -> Option<RunContext> {
    fabraix::current_run()
}
