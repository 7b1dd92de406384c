//! A tool call as Fabraix sees it, and what its verdict means for the call.

use fabraix::__private::{NotRun, refusal};
use fabraix::{Action, Verdict};
use rig_agent::agent::DispatchAction;
use rig_core::completion::ToolDefinition;
use serde_json::{Value, json};

use crate::disabled::{self, GUARD};
use crate::settings::NoVerdict;

/// The action Fabraix is asked about: the tool's name, its description and JSON Schema
/// from the definition the model was offered, and the arguments the model sent.
pub(crate) fn action(name: &str, definition: Option<&ToolDefinition>, arguments: &Value) -> Action {
    let mut action = Action::new(name).arguments(arguments);
    match definition {
        Some(definition) => {
            if !definition.description.is_empty() {
                action = action.description(definition.description.clone());
            }
            action.parameters(parameters(&definition.parameters))
        }
        // A call to a tool the model was not offered in this run: rig refuses it before
        // dispatch, so this is only a fallback for hand-built runs.
        None => action.parameters(json!({ "type": "object" })),
    }
}

/// The API wants an object schema; a tool whose schema is not one (a boolean schema)
/// is described as taking any object.
fn parameters(schema: &Value) -> Value {
    match schema {
        Value::Object(_) => schema.clone(),
        _ => json!({ "type": "object" }),
    }
}

/// The arguments as a JSON value: the object the model sent, or its raw text when that
/// is not JSON.
pub(crate) fn arguments(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// Why Fabraix gave no verdict on a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unanswered {
    /// The SDK is disabled: checking is off, so the call runs unchecked.
    Disabled,
    /// Anything else (Fabraix unreachable, an error answer, no run): the call is refused;
    /// the text says why.
    Failed(String),
}

impl From<fabraix::Error> for Unanswered {
    fn from(error: fabraix::Error) -> Self {
        match error {
            fabraix::Error::Disabled => Unanswered::Disabled,
            error => Unanswered::Failed(error.to_string()),
        }
    }
}

/// What rig does with the call, given what Fabraix answered. The model reads a refusal
/// as the tool's result, in the words every Fabraix guard uses.
pub(crate) fn decide(
    tool: &str,
    verdict: Result<Verdict, Unanswered>,
    when_unchecked: NoVerdict,
) -> DispatchAction {
    match verdict {
        Ok(verdict) if verdict.is_safe => DispatchAction::proceed(),
        Ok(verdict) => {
            DispatchAction::skip(refusal(GUARD, tool, NotRun::Blocked(&verdict.reasoning)))
        }
        Err(Unanswered::Disabled) => disabled::run_unchecked(tool),
        Err(Unanswered::Failed(why)) => {
            let message = refusal(GUARD, tool, NotRun::Unchecked(&why));
            match when_unchecked {
                NoVerdict::Skip => DispatchAction::skip(message),
                NoVerdict::Stop => DispatchAction::stop(message),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_keep_objects_and_raw_text() {
        assert_eq!(arguments(r#"{"name":"a"}"#), json!({ "name": "a" }));
        assert_eq!(arguments("{\"name\":"), json!("{\"name\":"));
    }

    #[test]
    fn boolean_schemas_become_any_object() {
        assert_eq!(parameters(&json!(true)), json!({ "type": "object" }));
        let schema = json!({ "type": "object", "properties": { "name": { "type": "string" } } });
        assert_eq!(parameters(&schema), schema);
    }

    #[test]
    fn refusals_say_which_tool_and_why() {
        let timed_out = || Err(Unanswered::Failed("timed out".into()));
        let skipped = decide("delete_note", timed_out(), NoVerdict::Skip);
        match skipped {
            DispatchAction::Deny(report) => {
                assert_eq!(report.kind, rig_core::error::ErrorKind::Other);
                assert!(report.message.contains("`delete_note`"));
                assert!(report.message.contains("timed out"));
            }
            other => panic!("expected a skip, got {other:?}"),
        }
        let stopped = decide("delete_note", timed_out(), NoVerdict::Stop);
        assert!(matches!(
            stopped,
            DispatchAction::Deny(report) if report.kind == rig_core::error::ErrorKind::Cancelled
        ));
    }

    #[test]
    fn a_disabled_sdk_lets_the_call_run_whatever_the_policy() {
        for policy in [NoVerdict::Skip, NoVerdict::Stop] {
            let action = decide("delete_note", Err(Unanswered::Disabled), policy);
            assert!(matches!(action, DispatchAction::Proceed), "{action:?}");
        }
    }

    #[test]
    fn only_disabled_is_told_apart_from_the_other_errors() {
        assert_eq!(
            Unanswered::from(fabraix::Error::Disabled),
            Unanswered::Disabled
        );
        let unregistered = fabraix::Error::Unregistered {
            cause: std::sync::Arc::new(fabraix::Error::NoTrace),
        };
        let Unanswered::Failed(why) = Unanswered::from(unregistered) else {
            panic!("a failed registration is not a disabled SDK");
        };
        assert!(why.contains("could not be registered"), "{why}");
        assert!(matches!(
            Unanswered::from(fabraix::Error::NoTrace),
            Unanswered::Failed(_)
        ));
    }
}
