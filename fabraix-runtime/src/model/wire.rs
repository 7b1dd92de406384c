//! The API's request and response bodies, exactly as the API reference documents them
//! (`testing/openapi.json`).

use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::action::Verdict;
use super::error::Error;
use super::event::EventReceipt;
use super::ids::{AgentId, TraceId};
use super::trace::Trace;

/// The API's three endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    RegisterAgentRun,
    Event,
    Check,
}

impl Endpoint {
    /// The path under the base URL, e.g. `/event`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::RegisterAgentRun => "/register-agent-run",
            Endpoint::Event => "/event",
            Endpoint::Check => "/check",
        }
    }
}

/// The body of `POST /register-agent-run`, stamped `at`.
pub(crate) fn register_body(
    agent_id: AgentId,
    system_prompt: &str,
    at: DateTime<Utc>,
) -> Result<Bytes, Error> {
    encode(
        "the registration",
        &RegisterRequest {
            agent_id,
            timestamp: iso_millis(at),
            system_prompt,
        },
    )
}

/// The body of `POST /event` (any event type) or `POST /check` (`action_check`).
pub(crate) fn event_body(
    event_type: &str,
    trace_id: TraceId,
    timestamp: f64,
    content: &str,
    schema: &str,
) -> Result<Bytes, Error> {
    let what = if event_type == CHECK_EVENT_TYPE {
        "an action check"
    } else {
        "an event"
    };
    encode(
        what,
        &EventRequest {
            event_type,
            trace_id,
            timestamp,
            content,
            schema,
        },
    )
}

/// The `event_type` of every `/check` request.
pub(crate) const CHECK_EVENT_TYPE: &str = "action_check";

fn encode(what: &'static str, value: &impl Serialize) -> Result<Bytes, Error> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::Encode {
            what,
            message: e.to_string(),
        })
}

/// `POST /register-agent-run`: these three fields and nothing else.
#[derive(Debug, Serialize)]
struct RegisterRequest<'a> {
    pub agent_id: AgentId,
    /// `YYYY-MM-DDTHH:mm:ss.sssZ`, see [`iso_millis`].
    pub timestamp: String,
    pub system_prompt: &'a str,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RegisterResponse {
    pub trace_id: Uuid,
    pub timestamp: ServerTime,
}

/// `POST /event` and `POST /check` share this shape; `event_type` is `action_check` for a
/// check.
#[derive(Debug, Serialize)]
struct EventRequest<'a> {
    pub event_type: &'a str,
    pub trace_id: TraceId,
    /// Unix seconds with fraction, a JSON number.
    pub timestamp: f64,
    /// A JSON document, as a string.
    pub content: &'a str,
    /// A JSON Schema document, as a string.
    pub schema: &'a str,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventResponse {
    pub event_id: Uuid,
    pub timestamp: ServerTime,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CheckResponse {
    pub is_safe: bool,
    pub reasoning: String,
    pub action_check_id: ActionCheckId,
    pub timestamp: ServerTime,
}

/// `action_check_id` is documented as a string; a number is taken too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ActionCheckId {
    Text(String),
    Number(serde_json::Number),
}

impl ActionCheckId {
    pub fn into_string(self) -> String {
        match self {
            ActionCheckId::Text(s) => s,
            ActionCheckId::Number(n) => n.to_string(),
        }
    }
}

/// The documented error body: `{"error": {"message", "type", "code"}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

/// A server timestamp: register answers an ISO 8601 string, event and check a number of
/// Unix seconds. Either form is accepted wherever one appears.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ServerTime {
    Seconds(f64),
    Text(String),
}

impl RegisterResponse {
    pub fn into_trace(self, agent_id: AgentId) -> Result<Trace, Error> {
        let registered_at = self.timestamp.required("/register-agent-run")?;
        Ok(Trace::new(
            TraceId::from_uuid(self.trace_id),
            agent_id,
            registered_at,
        ))
    }
}

impl EventResponse {
    pub fn into_receipt(self) -> Result<EventReceipt, Error> {
        Ok(EventReceipt {
            event_id: self.event_id,
            timestamp: self.timestamp.required("/event")?,
        })
    }
}

impl CheckResponse {
    pub fn into_verdict(self) -> Result<Verdict, Error> {
        Ok(Verdict {
            timestamp: self.timestamp.required("/check")?,
            is_safe: self.is_safe,
            reasoning: self.reasoning,
            action_check_id: self.action_check_id.into_string(),
        })
    }
}

impl ServerTime {
    /// The time, or a decode error naming `endpoint`.
    fn required(&self, endpoint: &'static str) -> Result<DateTime<Utc>, Error> {
        self.to_utc().ok_or_else(|| Error::Decode {
            endpoint,
            message: "`timestamp` is not a time".into(),
            snippet: String::new(),
        })
    }

    pub fn to_utc(&self) -> Option<DateTime<Utc>> {
        match self {
            ServerTime::Seconds(secs) => from_unix_seconds(*secs),
            ServerTime::Text(text) => parse_iso(text),
        }
    }
}

/// The register timestamp form: UTC, milliseconds, `Z`, e.g. `2024-01-15T14:30:45.123Z`,
/// whatever the machine's time zone.
pub(crate) fn iso_millis(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The event and check timestamp form: Unix seconds with milliseconds, e.g.
/// `1678886405.123`.
pub(crate) fn unix_seconds(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

fn from_unix_seconds(secs: f64) -> Option<DateTime<Utc>> {
    if !secs.is_finite() {
        return None;
    }
    let millis = (secs * 1000.0).round();
    if millis.abs() > 8.0e15 {
        return None;
    }
    Utc.timestamp_millis_opt(millis as i64).single()
}

fn parse_iso(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    // An ISO 8601 time without an offset is taken as UTC.
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_millis_has_the_documented_shape() {
        let at = Utc.with_ymd_and_hms(2024, 1, 15, 14, 30, 45).unwrap()
            + chrono::Duration::milliseconds(123);
        assert_eq!(iso_millis(at), "2024-01-15T14:30:45.123Z");
        let whole = Utc.with_ymd_and_hms(2024, 1, 15, 14, 30, 45).unwrap();
        assert_eq!(iso_millis(whole), "2024-01-15T14:30:45.000Z");
    }

    #[test]
    fn unix_seconds_keeps_milliseconds() {
        let at = Utc.timestamp_millis_opt(1_678_886_405_123).unwrap();
        assert_eq!(
            serde_json::to_string(&unix_seconds(at)).unwrap(),
            "1678886405.123"
        );
    }

    #[test]
    fn server_times_in_both_forms() {
        let text = ServerTime::Text("2024-01-15T14:30:45.123Z".into());
        let secs = ServerTime::Seconds(1_705_329_045.123);
        assert_eq!(text.to_utc(), secs.to_utc());
        assert!(ServerTime::Text("yesterday".into()).to_utc().is_none());
        assert!(ServerTime::Seconds(f64::NAN).to_utc().is_none());
        assert!(ServerTime::Seconds(1e300).to_utc().is_none());
    }
}
