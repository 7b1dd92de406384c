//! [`Action`] and [`Verdict`]: asking `POST /check` before the agent acts.

use chrono::{DateTime, Utc};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde::Serialize;
use serde_json::{Value, json};

use super::error::Error;
use super::event::to_json;

/// An action the agent is about to take, described as a function call: its name, what it
/// does, the JSON Schema of its parameters, and the arguments of this call.
///
/// ```
/// use fabraix::Action;
/// use serde_json::json;
///
/// let transfer = Action::new("transfer_funds")
///     .description("Move money between two accounts.")
///     .parameters(json!({
///         "type": "object",
///         "properties": { "to": { "type": "string" }, "amount_cents": { "type": "integer" } },
///         "required": ["to", "amount_cents"],
///     }))
///     .arguments(&json!({ "to": "acct-9", "amount_cents": 1250 }));
/// assert_eq!(transfer.name(), "transfer_funds");
/// ```
#[derive(Debug, Clone)]
pub struct Action {
    name: String,
    description: Option<String>,
    parameters: Value,
    /// The arguments as JSON text, or why they could not be encoded (reported by the check,
    /// which then fails closed).
    arguments: Result<String, Error>,
}

impl Action {
    /// An action with no description, no parameters (`{"type":"object","properties":{}}`)
    /// and no arguments (`{}`).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: None,
            parameters: json!({ "type": "object", "properties": {} }),
            arguments: Ok("{}".to_owned()),
        }
    }

    /// What the action does, in words.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// The JSON Schema of the action's parameters (an object schema).
    pub fn parameters(mut self, schema: Value) -> Self {
        self.parameters = schema;
        self
    }

    /// The arguments of this call. If they cannot be serialized (a NaN or infinite number
    /// included: JSON has none), the check fails with [`Error::Encode`] rather than asking
    /// about something else.
    pub fn arguments(mut self, arguments: &impl Serialize) -> Self {
        self.arguments = to_json("an action's arguments", arguments);
        self
    }

    /// An action whose parameter schema is derived from the arguments' type with `schemars`.
    /// Arguments that cannot be serialized (a NaN or infinite number included) are an
    /// [`Error::Encode`].
    pub fn typed<A: Serialize + JsonSchema>(
        name: impl Into<String>,
        description: impl Into<String>,
        arguments: &A,
    ) -> Result<Self, Error> {
        let mut generator = parameters_generator();
        let mut parameters = generator.subschema_for::<A>().to_value();
        attach_definitions(&mut parameters, &mut generator);
        Ok(Self {
            name: name.into(),
            description: Some(description.into()),
            parameters,
            arguments: Ok(to_json("an action's arguments", arguments)?),
        })
    }

    /// The action's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments as JSON text (`content` on the wire).
    pub(crate) fn content(&self) -> Result<&str, Error> {
        self.arguments.as_deref().map_err(Clone::clone)
    }

    /// The function-form schema sent as `schema`:
    /// `{"type":"function","name":…,"description":…,"parameters":…}`.
    pub(crate) fn function_schema(&self) -> Result<String, Error> {
        if self.name.trim().is_empty() {
            return Err(Error::Encode {
                what: "an action",
                message: "the action's name is empty".into(),
            });
        }
        if !self.parameters.is_object() {
            return Err(Error::Encode {
                what: "an action",
                message: "the parameters schema must be a JSON object".into(),
            });
        }
        let mut schema = serde_json::Map::new();
        schema.insert("type".into(), Value::from("function"));
        schema.insert("name".into(), Value::from(self.name.as_str()));
        if let Some(description) = &self.description {
            schema.insert("description".into(), Value::from(description.as_str()));
        }
        schema.insert("parameters".into(), self.parameters.clone());
        to_json("an action's schema", &schema)
    }
}

/// A schema generator for an action's `parameters`: subschemas inlined, so the schema
/// stands alone; what cannot be inlined (recursive types) is referenced under
/// `/parameters/$defs`, where [`attach_definitions`] puts it.
pub(crate) fn parameters_generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
            s.definitions_path = "/parameters/$defs".into();
        })
        .into_generator()
}

/// Moves the generator's definitions into `parameters["$defs"]`, if there are any.
pub(crate) fn attach_definitions(parameters: &mut Value, generator: &mut SchemaGenerator) {
    let definitions = generator.take_definitions(true);
    if let (false, Some(object)) = (definitions.is_empty(), parameters.as_object_mut()) {
        object.insert("$defs".into(), Value::Object(definitions));
    }
}

/// Fabraix's answer to a check.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Verdict {
    /// `true`: approved; `false`: blocked.
    pub is_safe: bool,
    /// Why, in words.
    pub reasoning: String,
    /// The check's id.
    pub action_check_id: String,
    /// When the server decided.
    pub timestamp: DateTime<Utc>,
}

impl Verdict {
    /// The verdict if it approves the action, else [`Error::Blocked`] with its reasoning.
    ///
    /// ```no_run
    /// # async fn demo(action: fabraix::Action) -> Result<(), fabraix::Error> {
    /// fabraix::check_action(&action).await?.require_safe()?;
    /// // ... take the action
    /// # Ok(()) }
    /// ```
    pub fn require_safe(self) -> Result<Self, Error> {
        if self.is_safe {
            Ok(self)
        } else {
            Err(Error::Blocked {
                reasoning: self.reasoning,
                action_check_id: self.action_check_id,
            })
        }
    }
}
