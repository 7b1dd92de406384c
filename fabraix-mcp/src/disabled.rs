//! A disabled SDK (`FABRAIX_DISABLED=1`, `ClientBuilder::disabled(true)`): the user turned
//! checking off on purpose, so guarded tools run unchecked. The one place this crate tells
//! that apart from the other ways of having no verdict, which all refuse the call.

use std::future::Future;

use fabraix::{Client, Error};

use crate::refusal::GUARD;

/// What a call that got no verdict may do: run unchecked when the SDK is disabled (and the
/// first such call of the process says so), else be refused with `error`.
pub(crate) fn unchecked_if_disabled(error: Error, tool: &str) -> Result<(), Error> {
    fabraix::__private::unchecked_if_disabled(error, GUARD, tool)
}

/// Runs `tool` in a run of the disabled `client` that has no trace, as an agent fn's run
/// has when the SDK is off: the tool's own `#[fabraix::action]` fns run unchecked too,
/// and its `fabraix::log_event` calls are let go and counted, instead of answering that no
/// run is current. A disabled client never registers (nor sends anything), so the id
/// and prompt below go nowhere.
#[fabraix::agent(id = "fabraix-mcp", system_prompt = "", client = client)]
pub(crate) async fn in_untraced_run<F: Future>(client: &Client, tool: F) -> F::Output {
    tool.await
}
