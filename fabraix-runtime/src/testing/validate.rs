//! What the MockServer accepts: the request bodies exactly as the API reference documents
//! them (`openapi.json`, beside this file).

use serde_json::{Map, Value};
use uuid::Uuid;

/// A documented error answer: `{"error": {"message", "type", "code"}}` with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub status: u16,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            kind: "validation_error",
            code,
            message: message.into(),
        }
    }

    pub fn body(&self) -> Value {
        serde_json::json!({
            "error": { "message": self.message, "type": self.kind, "code": self.code }
        })
    }
}

/// The event types `POST /event` takes.
pub(crate) const EVENT_TYPES: [&str; 8] = [
    "user",
    "model_input",
    "model_output",
    "tool",
    "environment",
    "memory",
    "system",
    "error",
];

/// Parses a body as a JSON object holding exactly `fields`.
pub(crate) fn object_with_exactly<'a>(
    body: &'a Value,
    fields: &[&str],
) -> Result<&'a Map<String, Value>, Rejection> {
    let object = body.as_object().ok_or_else(|| {
        Rejection::invalid("INVALID_REQUEST", "Request body must be a JSON object")
    })?;
    if let Some(unknown) = object.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(Rejection::invalid(
            "UNKNOWN_FIELD",
            format!("Unknown field: {unknown}"),
        ));
    }
    if let Some(missing) = fields.iter().find(|f| !object.contains_key(**f)) {
        return Err(Rejection::invalid(
            "MISSING_FIELD",
            format!("Missing required field: {missing}"),
        ));
    }
    Ok(object)
}

/// A canonical, hyphenated UUID string (what the API's examples show).
pub(crate) fn uuid_field(
    object: &Map<String, Value>,
    field: &str,
    code: &'static str,
) -> Result<Uuid, Rejection> {
    object
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| s.len() == 36)
        .and_then(|s| Uuid::try_parse(s).ok())
        .ok_or_else(|| Rejection::invalid(code, format!("Invalid {field} format")))
}

/// `YYYY-MM-DDTHH:mm:ss.sssZ`, exactly, and a real date.
pub(crate) fn is_register_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 24
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'.',
            23 => *b == b'Z',
            _ => b.is_ascii_digit(),
        });
    shape && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

/// Unix seconds as a JSON number (not a string), finite and after 2001.
pub(crate) fn unix_seconds_field(object: &Map<String, Value>) -> Result<f64, Rejection> {
    object
        .get("timestamp")
        .filter(|v| v.is_number())
        .and_then(Value::as_f64)
        .filter(|s| s.is_finite() && *s > 1.0e9)
        .ok_or_else(|| {
            Rejection::invalid(
                "INVALID_TIMESTAMP",
                "timestamp must be a number of Unix seconds, e.g. 1678886405.123",
            )
        })
}

/// A string field that holds a JSON document.
pub(crate) fn json_string_field(
    object: &Map<String, Value>,
    field: &str,
    code: &'static str,
) -> Result<Value, Rejection> {
    object
        .get(field)
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .ok_or_else(|| {
            Rejection::invalid(
                code,
                format!("{field} must be a string holding a JSON document"),
            )
        })
}

/// The function form of an action schema: `{"type": "function", "name", "parameters"}`;
/// answers the action's name.
pub(crate) fn function_schema_name(schema: &Value) -> Result<String, Rejection> {
    let bad = |why: &str| Rejection::invalid("INVALID_SCHEMA", format!("Invalid schema: {why}"));
    let object = schema.as_object().ok_or_else(|| bad("not an object"))?;
    if object.get("type").and_then(Value::as_str) != Some("function") {
        return Err(bad("type must be \"function\""));
    }
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| bad("name must be a non-empty string"))?;
    if !object.get("parameters").is_some_and(Value::is_object) {
        return Err(bad("parameters must be an object schema"));
    }
    if object.get("description").is_some_and(|d| !d.is_string()) {
        return Err(bad("description must be a string"));
    }
    Ok(name.to_owned())
}

/// A JSON Schema document: an object or a boolean.
pub(crate) fn is_schema(value: &Value) -> bool {
    value.is_object() || value.is_boolean()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_timestamps() {
        assert!(is_register_timestamp("2024-01-15T14:30:45.123Z"));
        for bad in [
            "2024-01-15T14:30:45Z",
            "2024-01-15T14:30:45.123+00:00",
            "2024-01-15T14:30:45.1234Z",
            "2024-13-15T14:30:45.123Z",
            "2024-01-15 14:30:45.123Z",
            "1705329045.123",
        ] {
            assert!(!is_register_timestamp(bad), "{bad}");
        }
    }
}
