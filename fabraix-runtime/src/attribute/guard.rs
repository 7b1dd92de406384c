//! What every guard of tool calls shares (`#[fabraix::action]`, and the integrations
//! `fabraix-mcp`, `fabraix-rig`, `fabraix-openai`), so that they speak with one voice: when
//! a call runs unchecked, and what is said when a call does not run.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::model::Error;

/// A guarded tool call runs without a verdict because the SDK is disabled. The first such
/// call of the process says so, whichever guard made it (`#[fabraix::action]`, or an
/// integration: `fabraix-mcp`, `fabraix-rig`, `fabraix-openai`): one warning per process,
/// naming the guard and the tool.
pub fn warn_unchecked(guard: &'static str, tool: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            target: "fabraix",
            guard,
            tool,
            "fabraix is disabled: guarded tool calls run unchecked"
        );
    }
}

/// What a guard does with a call that got no verdict because of `error`: `Ok(())` when the
/// SDK is disabled (the call runs unchecked, see [`warn_unchecked`]), else `Err(error)`:
/// every other reason for having no verdict refuses the call.
pub fn unchecked_if_disabled(error: Error, guard: &'static str, tool: &str) -> Result<(), Error> {
    match error {
        Error::Disabled => {
            warn_unchecked(guard, tool);
            Ok(())
        }
        error => Err(error),
    }
}

/// Why a guarded tool call did not run, for [`refusal`].
#[derive(Clone, Copy)]
pub enum NotRun<'a> {
    /// Fabraix checked the call and blocked it; its reasoning.
    Blocked(&'a str),
    /// No verdict could be had (no run, a run that could not be registered, Fabraix
    /// unreachable or answering an error), and the call fails closed; why. Never a disabled
    /// SDK: its calls run unchecked.
    Unchecked(&'a dyn fmt::Display),
    /// The guard refused the call before asking Fabraix (its arguments are not an object,
    /// the tool was never offered): what is wrong, as the end of a sentence.
    Refused(&'a str),
}

/// What is said when a guarded call of `tool` does not run: the text a model reads in
/// place of the tool's result, the same whichever guard (`guard`, e.g. `fabraix-mcp`)
/// refused it. The text is logged too (target `fabraix`, fields `guard` and `tool`): as a
/// warning when the call could not be checked, since a guard that cannot reach Fabraix
/// stops tools from running; at debug level otherwise.
///
/// - blocked: ``The call to `tool` did not run: Fabraix blocked it. Reason: …``
/// - no verdict: ``The call to `tool` did not run: Fabraix could not check it (…), and
///   unchecked calls are refused.``
/// - refused by the guard: ``The call to `tool` did not run: …``
pub fn refusal(guard: &'static str, tool: &str, why: NotRun<'_>) -> String {
    let text = match why {
        NotRun::Blocked(reasoning) => {
            format!("The call to `{tool}` did not run: Fabraix blocked it. Reason: {reasoning}")
        }
        NotRun::Unchecked(error) => format!(
            "The call to `{tool}` did not run: Fabraix could not check it ({error}), and \
             unchecked calls are refused."
        ),
        NotRun::Refused(problem) => format!("The call to `{tool}` did not run: {problem}"),
    };
    match why {
        NotRun::Unchecked(_) => tracing::warn!(target: "fabraix", guard, tool, "{text}"),
        _ => tracing::debug!(target: "fabraix", guard, tool, "{text}"),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_names_the_tool_and_says_why() {
        assert_eq!(
            refusal(
                "test",
                "delete_note",
                NotRun::Blocked("Ask the user first.")
            ),
            "The call to `delete_note` did not run: Fabraix blocked it. Reason: Ask the user first."
        );
        let error = Error::Timeout {
            after: std::time::Duration::from_millis(250),
        };
        assert_eq!(
            refusal("test", "delete_note", NotRun::Unchecked(&error)),
            "The call to `delete_note` did not run: Fabraix could not check it (timed out \
             after 250ms), and unchecked calls are refused."
        );
        assert_eq!(
            refusal(
                "test",
                "rm",
                NotRun::Refused("no tool of that name was offered.")
            ),
            "The call to `rm` did not run: no tool of that name was offered."
        );
    }
}
