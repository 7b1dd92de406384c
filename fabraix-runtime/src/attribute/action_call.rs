//! What the `#[fabraix::action]` expansion calls: describe the call, check it, record it.

use schemars::{JsonSchema, SchemaGenerator};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::agent_run::ErrorReturn;
use super::guard::{NotRun, refusal, warn_unchecked};
use crate::context as current;
use crate::model::{
    Action, Error, Event, EventType, NOT_FINITE, Verdict, attach_definitions, has_non_finite,
    parameters_generator,
};

/// An argument `#[fabraix::action]` can send: it serializes to the arguments and has a
/// JSON Schema for the parameters.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be described to Fabraix as an action argument",
    label = "this argument needs `serde::Serialize` and `schemars::JsonSchema`",
    note = "derive both on `{Self}`, or keep the argument out of the check with `#[fabraix::action(skip(name_of_the_argument))]`"
)]
pub trait ActionArgument {
    /// The argument's schema, from `generator`.
    fn schema(&self, generator: &mut SchemaGenerator) -> Value;
    /// The argument's value.
    fn value(&self) -> Result<Value, serde_json::Error>;
}

impl<T: Serialize + JsonSchema + ?Sized> ActionArgument for T {
    fn schema(&self, generator: &mut SchemaGenerator) -> Value {
        generator.subschema_for::<T>().to_value()
    }

    fn value(&self) -> Result<Value, serde_json::Error> {
        let value = serde_json::to_value(self)?;
        // `to_value` turns a NaN or an infinity into `null`; refuse rather than ask about
        // other arguments than the call's.
        if holds_null(&value) && has_non_finite(self) {
            return Err(serde::ser::Error::custom(NOT_FINITE));
        }
        Ok(value)
    }
}

fn holds_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(holds_null),
        Value::Object(fields) => fields.values().any(holds_null),
        _ => false,
    }
}

/// `#[fabraix::action]` needs a `Result` return, to return `Err` when the call is refused.
#[diagnostic::on_unimplemented(
    message = "`#[fabraix::action]` needs the fn to return `Result<T, E>` with `E: From<fabraix::Error>`, not `{Self}`",
    label = "a refused call returns `Err(fabraix::Error::Blocked {{ .. }}.into())` here"
)]
pub trait ActionReturn: ErrorReturn {
    /// Whether the call succeeded.
    fn succeeded(&self) -> bool;
}

impl<T, E: From<Error>> ActionReturn for Result<T, E> {
    fn succeeded(&self) -> bool {
        self.is_ok()
    }
}

/// The arguments of one call of an action fn, being described.
pub struct ActionArgs {
    generator: SchemaGenerator,
    properties: Map<String, Value>,
    required: Vec<Value>,
    values: Map<String, Value>,
    error: Option<Error>,
}

impl Default for ActionArgs {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ActionArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionArgs")
            .field("values", &self.values)
            .finish_non_exhaustive()
    }
}

impl ActionArgs {
    /// No arguments yet.
    pub fn new() -> Self {
        Self {
            generator: parameters_generator(),
            properties: Map::new(),
            required: Vec::new(),
            values: Map::new(),
            error: None,
        }
    }

    /// Adds the argument `name`.
    pub fn arg<T: ActionArgument + ?Sized>(&mut self, name: &'static str, value: &T) {
        self.properties
            .insert(name.to_owned(), value.schema(&mut self.generator));
        self.required.push(Value::from(name));
        match value.value() {
            Ok(value) => {
                self.values.insert(name.to_owned(), value);
            }
            Err(e) => {
                self.error.get_or_insert(Error::Encode {
                    what: "an action's arguments",
                    message: format!("argument `{name}`: {e}"),
                });
            }
        }
    }

    /// The action to check: `name`, `description` (empty: none), the parameters schema of
    /// the arguments, and their values.
    pub fn finish(mut self, name: &str, description: &str) -> Result<ActionCall, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut parameters = json!({
            "type": "object",
            "properties": self.properties,
            "required": self.required,
        });
        attach_definitions(&mut parameters, &mut self.generator);
        let arguments = Value::Object(self.values);
        let mut action = Action::new(name)
            .parameters(parameters)
            .arguments(&arguments);
        if !description.is_empty() {
            action = action.description(description);
        }
        Ok(ActionCall {
            action,
            arguments,
            name: name.to_owned(),
        })
    }
}

/// How `#[fabraix::action]` is named in what guards log.
const GUARD: &str = "#[fabraix::action]";

/// One described call, about to be checked.
#[derive(Debug)]
pub struct ActionCall {
    action: Action,
    arguments: Value,
    name: String,
}

impl ActionCall {
    /// Asks `/check` in the current run; `Err` unless the verdict approves the call. With
    /// the SDK disabled the call is let through unchecked (see [`unchecked`](Self::unchecked)).
    pub async fn check(self) -> Result<ApprovedCall, Error> {
        let verdict = current::check_action(&self.action).await;
        self.decide(verdict)
    }

    /// [`check`](Self::check) for sync fns: blocks until the verdict.
    pub fn check_blocking(self) -> Result<ApprovedCall, Error> {
        let verdict = current::check_action_blocking(&self.action);
        self.decide(verdict)
    }

    /// The call runs on an approving verdict, or unchecked when the SDK is disabled. Else
    /// the fn returns the error, and the refusal is logged in the words every guard uses.
    fn decide(self, verdict: Result<Verdict, Error>) -> Result<ApprovedCall, Error> {
        let refused = match verdict {
            Ok(verdict) => match verdict.require_safe() {
                Ok(verdict) => return Ok(self.approved(verdict)),
                Err(blocked) => blocked,
            },
            Err(Error::Disabled) => return Ok(self.unchecked()),
            Err(error) => error,
        };
        let why = match &refused {
            Error::Blocked { reasoning, .. } => NotRun::Blocked(reasoning),
            error => NotRun::Unchecked(error),
        };
        // The caller gets the typed error; the text is for the log.
        refusal(GUARD, &self.name, why);
        Err(refused)
    }

    fn approved(self, verdict: Verdict) -> ApprovedCall {
        ApprovedCall {
            name: self.name,
            arguments: self.arguments,
            action_check_id: verdict.action_check_id,
        }
    }

    /// The SDK is disabled (`FABRAIX_DISABLED=1`, `ClientBuilder::disabled(true)`): the user
    /// turned checking off, so the call runs without a verdict, and the first such call of
    /// the process says so. Only a disabled SDK does this: every other reason for having no
    /// verdict (no run, a failed registration, an unreachable API) refuses the call.
    fn unchecked(self) -> ApprovedCall {
        warn_unchecked(GUARD, &self.name);
        // Its `tool` event is let go, as every event of a disabled SDK is (and counted).
        ApprovedCall {
            name: self.name,
            arguments: self.arguments,
            action_check_id: String::new(),
        }
    }
}

/// A call Fabraix approved (or that a disabled SDK let through); records the call as a
/// `tool` event once it has run.
#[derive(Debug)]
pub struct ApprovedCall {
    name: String,
    arguments: Value,
    action_check_id: String,
}

impl ApprovedCall {
    /// Logs the `tool` event: the action, its arguments, the check's id, and whether the
    /// call succeeded. Logging never changes the call's result.
    pub fn finish<R: ActionReturn>(self, result: &R) {
        let record = json!({
            "action": self.name,
            "arguments": self.arguments,
            "action_check_id": self.action_check_id,
            "succeeded": result.succeeded(),
        });
        let logged =
            Event::json(EventType::Tool, &record, tool_event_schema()).and_then(current::log_event);
        if let Err(error) = logged {
            tracing::debug!(target: "fabraix", %error, "tool event not logged");
        }
    }
}

fn tool_event_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "action": { "type": "string" },
            "arguments": { "type": "object" },
            "action_check_id": { "type": "string" },
            "succeeded": { "type": "boolean" }
        },
        "required": ["action", "arguments", "action_check_id", "succeeded"]
    })
}

/// `Err(error.into())` in the fn's return type.
pub fn refuse<R: ActionReturn>(error: Error) -> R {
    R::from_error(error)
}

/// Calls `f` once: the body of a sync action fn, as an `FnOnce` so it may return borrows of
/// what it captured.
#[inline]
pub fn call_once<R>(f: impl FnOnce() -> R) -> R {
    f()
}
