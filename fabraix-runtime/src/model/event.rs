//! [`Event`]: what an agent did, as `POST /event` takes it.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use once_cell::sync::Lazy;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::Error;
use super::finite::has_non_finite;

/// The kinds of event the API takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventType {
    /// What the user said or asked.
    User,
    /// What the agent sent to the model.
    ModelInput,
    /// What the model answered.
    ModelOutput,
    /// A tool call and its result.
    Tool,
    /// What the agent observed of its environment.
    Environment,
    /// A read or write of the agent's memory.
    Memory,
    /// A system message or lifecycle event.
    System,
    /// An error the agent met.
    Error,
}

impl EventType {
    /// Every event type, in the API's order.
    pub const ALL: [EventType; 8] = [
        EventType::User,
        EventType::ModelInput,
        EventType::ModelOutput,
        EventType::Tool,
        EventType::Environment,
        EventType::Memory,
        EventType::System,
        EventType::Error,
    ];

    /// The wire name, e.g. `model_output`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::User => "user",
            EventType::ModelInput => "model_input",
            EventType::ModelOutput => "model_output",
            EventType::Tool => "tool",
            EventType::Environment => "environment",
            EventType::Memory => "memory",
            EventType::System => "system",
            EventType::Error => "error",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::Encode {
                what: "an event type",
                message: format!("unknown event type `{s}`"),
            })
    }
}

/// One event of a run: its type, its data (`content`, a JSON document) and the JSON Schema
/// the data conforms to.
///
/// ```
/// use fabraix::{Event, EventType};
///
/// let said = Event::text(EventType::User, "Where is my order?");
/// assert_eq!(said.content(), r#"{"text":"Where is my order?"}"#);
///
/// #[derive(serde::Serialize, schemars::JsonSchema)]
/// struct Lookup { order_id: u64 }
/// let looked = Event::typed(EventType::Tool, &Lookup { order_id: 42 }).unwrap();
/// assert_eq!(looked.content(), r#"{"order_id":42}"#);
/// assert!(looked.schema().contains("order_id"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    kind: EventType,
    content: String,
    schema: Arc<str>,
}

static TEXT_SCHEMA: Lazy<Arc<str>> = Lazy::new(|| {
    Arc::from(r#"{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}"#)
});

/// Schemas derived by `schemars`, by type, so each type is described once.
static TYPED_SCHEMAS: Lazy<RwLock<HashMap<TypeId, Arc<str>>>> = Lazy::new(Default::default);

impl Event {
    /// A text event: content `{"text": "…"}` with its schema.
    pub fn text(kind: EventType, text: impl AsRef<str>) -> Self {
        #[derive(Serialize)]
        struct Text<'a> {
            text: &'a str,
        }
        Self {
            kind,
            // A struct of one `&str` always serializes.
            content: serde_json::to_string(&Text {
                text: text.as_ref(),
            })
            .unwrap_or_default(),
            schema: TEXT_SCHEMA.clone(),
        }
    }

    /// An event with any serializable data and the JSON Schema it conforms to.
    ///
    /// Fails with [`Error::Encode`] when the data cannot be serialized (a NaN or infinite
    /// number included: JSON has none) or the schema is not a JSON Schema (an object or a
    /// boolean).
    ///
    /// ```
    /// use fabraix::{Error, Event, EventType};
    ///
    /// let reading = serde_json::json!({ "type": "object" });
    /// let broken = Event::json(EventType::Environment, &[1.0, f64::NAN], reading);
    /// assert!(matches!(broken, Err(Error::Encode { .. })));
    /// ```
    pub fn json(
        kind: EventType,
        data: &impl Serialize,
        schema: serde_json::Value,
    ) -> Result<Self, Error> {
        if !(schema.is_object() || schema.is_boolean()) {
            return Err(Error::Encode {
                what: "an event schema",
                message: "a JSON Schema is an object or a boolean".into(),
            });
        }
        Ok(Self {
            kind,
            content: to_json("an event's content", data)?,
            schema: Arc::from(schema.to_string()),
        })
    }

    /// An event whose schema is derived from the data's type with `schemars`
    /// (`#[derive(Serialize, JsonSchema)]`). Fails as [`Event::json`] does.
    pub fn typed<T: Serialize + JsonSchema>(kind: EventType, data: &T) -> Result<Self, Error> {
        Ok(Self {
            kind,
            content: to_json("an event's content", data)?,
            schema: schema_of::<T>()?,
        })
    }

    /// The event's type.
    pub fn kind(&self) -> EventType {
        self.kind
    }

    /// The event's data, a JSON document.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// The JSON Schema of the data.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub(crate) fn into_parts(self) -> (EventType, String, Arc<str>) {
        (self.kind, self.content, self.schema)
    }
}

/// `data` as JSON text. A NaN or infinite number is an [`Error::Encode`]: JSON has no such
/// numbers, and `serde_json` would quietly write `null` in their place.
pub(crate) fn to_json(
    what: &'static str,
    data: &(impl Serialize + ?Sized),
) -> Result<String, Error> {
    let text = serde_json::to_string(data).map_err(|e| Error::Encode {
        what,
        message: e.to_string(),
    })?;
    // Only a text with a `null` in it can hide one; most never pay for the second walk.
    if text.contains("null") && has_non_finite(data) {
        return Err(not_finite(what));
    }
    Ok(text)
}

/// The error for a value with a NaN or infinite number in it.
fn not_finite(what: &'static str) -> Error {
    Error::Encode {
        what,
        message: NOT_FINITE.into(),
    }
}

/// Why a NaN or an infinity cannot be sent.
pub(crate) const NOT_FINITE: &str =
    "a number is NaN or infinite, which JSON cannot represent (it would be sent as null)";

/// The JSON Schema of `T` as text, derived once per type. Keyed by the type's `TypeId`
/// (through `typeid`, which also covers types that borrow): type names can collide, and a
/// hand-written `schema_id` can too.
fn schema_of<T: JsonSchema + ?Sized>() -> Result<Arc<str>, Error> {
    let id = typeid::of::<T>();
    if let Some(schema) = TYPED_SCHEMAS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
    {
        return Ok(schema.clone());
    }
    let schema: Arc<str> = Arc::from(to_json("a schema", &schemars::schema_for!(T))?);
    TYPED_SCHEMAS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, schema.clone());
    Ok(schema)
}

/// What the API answered to one event sent with [`Client::send_event`](crate::Client::send_event).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventReceipt {
    /// The id the server gave the event.
    pub event_id: Uuid,
    /// When the server recorded it.
    pub timestamp: DateTime<Utc>,
}
