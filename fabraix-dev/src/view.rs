//! The recorded requests as the page and scripts read them: runs, newest first, each with
//! its timeline of registration, events and checks, and the requests that belong to no run.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fabraix::TraceId;
use fabraix::testing::RecordedRequest;
use serde_json::{Map, Value, json};

/// How much of a request body the list of requests outside any run shows.
const BODY_EXCERPT: usize = 4_000;

/// How much of a system prompt a run's summary shows.
const PROMPT_EXCERPT: usize = 160;

/// Turns the server's monotonic arrival times into wall-clock times (milliseconds since
/// the Unix epoch, what a browser's `Date` takes).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: Instant,
    started_unix: Duration,
}

impl Clock {
    pub fn start() -> Self {
        Self {
            started: Instant::now(),
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        }
    }

    pub fn unix_ms(&self, at: Instant) -> f64 {
        let unix = match at.checked_duration_since(self.started) {
            Some(after) => self.started_unix.saturating_add(after),
            None => self
                .started_unix
                .saturating_sub(self.started.duration_since(at)),
        };
        (unix.as_micros() / 1_000) as f64
    }
}

/// Which endpoint a request went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Register,
    Event,
    Check,
    Other,
}

impl Kind {
    fn of(request: &RecordedRequest) -> Self {
        match request.path.as_str() {
            "/v1/register-agent-run" => Kind::Register,
            "/v1/event" => Kind::Event,
            "/v1/check" => Kind::Check,
            _ => Kind::Other,
        }
    }
}

/// What a run's list entry shows, gathered from its requests.
#[derive(Debug)]
struct Summary {
    trace: TraceId,
    agent_id: Option<Value>,
    system_prompt: Option<String>,
    registered_at: Option<Value>,
    first_seen: f64,
    last_seen: f64,
    events: usize,
    checks: usize,
    blocked: usize,
    rejected: usize,
    types: BTreeSet<String>,
}

impl Summary {
    fn new(trace: TraceId, at: f64) -> Self {
        Self {
            trace,
            agent_id: None,
            system_prompt: None,
            registered_at: None,
            first_seen: at,
            last_seen: at,
            events: 0,
            checks: 0,
            blocked: 0,
            rejected: 0,
            types: BTreeSet::new(),
        }
    }

    fn add(&mut self, request: &RecordedRequest, at: f64) {
        self.last_seen = at;
        if status(request).is_some_and(|s| !(200..300).contains(&s)) {
            self.rejected += 1;
        }
        match Kind::of(request) {
            Kind::Register => {
                self.agent_id = request.body.get("agent_id").cloned();
                self.system_prompt = request
                    .body
                    .get("system_prompt")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.registered_at = answer_field(request, "timestamp");
            }
            Kind::Event => {
                self.events += 1;
                if let Some(kind) = request.body.get("event_type").and_then(Value::as_str) {
                    self.types.insert(kind.to_owned());
                }
            }
            Kind::Check => {
                self.checks += 1;
                self.types.insert("action_check".into());
                if answer_field(request, "is_safe") == Some(Value::Bool(false)) {
                    self.blocked += 1;
                }
            }
            Kind::Other => {}
        }
    }

    fn to_json(&self, prompt_limit: Option<usize>) -> Map<String, Value> {
        let prompt = self
            .system_prompt
            .as_deref()
            .map(|prompt| match prompt_limit {
                Some(limit) => excerpt(prompt.lines().next().unwrap_or(""), limit),
                None => prompt.to_owned(),
            });
        let json = json!({
            "trace_id": self.trace.to_string(),
            "agent_id": self.agent_id,
            "system_prompt": prompt,
            "registered_at": self.registered_at,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "events": self.events,
            "checks": self.checks,
            "blocked": self.blocked,
            "rejected": self.rejected,
            "types": self.types,
        });
        match json {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

/// Every run with a request still recorded, newest first, as list entries.
pub fn runs(requests: &[RecordedRequest], clock: &Clock) -> Vec<Value> {
    let mut order = Vec::new();
    let mut summaries: HashMap<TraceId, Summary> = HashMap::new();
    for request in requests {
        let Some(trace) = request.trace else { continue };
        let at = clock.unix_ms(request.received_at);
        summaries
            .entry(trace)
            .or_insert_with(|| {
                order.push(trace);
                Summary::new(trace, at)
            })
            .add(request, at);
    }
    order
        .iter()
        .rev()
        .filter_map(|trace| summaries.get(trace))
        .map(|summary| Value::Object(summary.to_json(Some(PROMPT_EXCERPT))))
        .collect()
}

/// One run with its timeline (its requests in arrival order), or `None` when no request of
/// it is recorded.
pub fn run(requests: &[RecordedRequest], trace: TraceId, clock: &Clock) -> Option<Value> {
    let mut summary: Option<Summary> = None;
    let mut timeline = Vec::new();
    for request in requests.iter().filter(|r| r.trace == Some(trace)) {
        let at = clock.unix_ms(request.received_at);
        summary
            .get_or_insert_with(|| Summary::new(trace, at))
            .add(request, at);
        timeline.push(item(request, at));
    }
    let mut json = summary?.to_json(None);
    json.insert("timeline".into(), Value::Array(timeline));
    Some(Value::Object(json))
}

/// The requests that belong to no run (a wrong key, an unknown trace id, a malformed body),
/// newest first.
pub fn unattached(requests: &[RecordedRequest], clock: &Clock) -> Vec<Value> {
    requests
        .iter()
        .rev()
        .filter(|r| r.trace.is_none())
        .map(|request| {
            json!({
                "sequence": request.sequence,
                "received_at": clock.unix_ms(request.received_at),
                "method": request.method,
                "path": request.path,
                "authenticated": request.authenticated,
                "status": status(request),
                "error": error(request),
                "body": excerpt(&request.raw_body, BODY_EXCERPT),
            })
        })
        .collect()
}

/// One entry of a run's timeline.
fn item(request: &RecordedRequest, at: f64) -> Value {
    let body = &request.body;
    let mut item = json!({
        "sequence": request.sequence,
        "received_at": at,
        "status": status(request),
        "error": error(request),
    });
    let fields = match Kind::of(request) {
        Kind::Register => json!({
            "kind": "register",
            "type": "register",
            "agent_id": body.get("agent_id"),
            "system_prompt": body.get("system_prompt"),
            "registered_at": answer_field(request, "timestamp"),
        }),
        Kind::Event => {
            let mut fields = json!({
                "kind": "event",
                "type": body.get("event_type"),
                "timestamp": body.get("timestamp"),
                "event_id": answer_field(request, "event_id"),
            });
            put_document(&mut fields, "content", body.get("content"));
            fields
        }
        Kind::Check => {
            let schema = body
                .get("schema")
                .and_then(Value::as_str)
                .and_then(|text| serde_json::from_str::<Value>(text).ok());
            let schema = schema.as_ref();
            let verdict = (status(request) == Some(200)).then(|| {
                json!({
                    "is_safe": answer_field(request, "is_safe"),
                    "reasoning": answer_field(request, "reasoning"),
                    "action_check_id": answer_field(request, "action_check_id"),
                })
            });
            let mut fields = json!({
                "kind": "check",
                "type": "action_check",
                "timestamp": body.get("timestamp"),
                "action": schema.and_then(|s| s.get("name")),
                "description": schema.and_then(|s| s.get("description")),
                "verdict": verdict,
            });
            put_document(&mut fields, "arguments", body.get("content"));
            fields
        }
        Kind::Other => json!({ "kind": "other", "type": "other", "path": request.path }),
    };
    if let (Value::Object(item), Value::Object(fields)) = (&mut item, fields) {
        item.extend(fields);
    }
    item
}

/// A field that holds a JSON document as a string: under `name`, the text exactly as sent
/// (keys in the agent's order, numbers as written), or the JSON of whatever was sent in
/// its place; under `name_json`, whether it is a JSON document.
fn put_document(fields: &mut Value, name: &str, sent: Option<&Value>) {
    let Value::Object(fields) = fields else {
        return;
    };
    let (text, is_json) = match sent {
        Some(Value::String(text)) => (text.clone(), serde_json::from_str::<Value>(text).is_ok()),
        Some(other) => (other.to_string(), false),
        None => return,
    };
    fields.insert(name.into(), Value::String(text));
    fields.insert(format!("{name}_json"), Value::Bool(is_json));
}

fn status(request: &RecordedRequest) -> Option<u16> {
    request.response.as_ref().map(|response| response.status)
}

/// A field of a successful answer's body.
fn answer_field(request: &RecordedRequest, field: &str) -> Option<Value> {
    let response = request.response.as_ref()?;
    if !(200..300).contains(&response.status) {
        return None;
    }
    response.body.get(field).cloned()
}

/// What an error answer said: the documented error body's code and message, or the start
/// of a body of another shape.
fn error(request: &RecordedRequest) -> Option<Value> {
    let response = request.response.as_ref()?;
    if (200..300).contains(&response.status) {
        return None;
    }
    let documented = response.body.get("error");
    Some(json!({
        "code": documented.and_then(|e| e.get("code")),
        "message": match documented.and_then(|e| e.get("message")) {
            Some(message) => message.clone(),
            None => Value::String(excerpt(&response.raw_body, BODY_EXCERPT)),
        },
    }))
}

/// At most `limit` characters of `text`, with `…` when cut.
fn excerpt(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_on_characters() {
        assert_eq!(excerpt("héllo", 2), "hé…");
        assert_eq!(excerpt("héllo", 5), "héllo");
        assert_eq!(excerpt("", 0), "");
    }

    #[test]
    fn the_clock_maps_instants_around_its_start() {
        let clock = Clock::start();
        let now = clock.unix_ms(clock.started);
        let later = clock.unix_ms(clock.started + Duration::from_millis(1_500));
        assert_eq!(later - now, 1_500.0);
        if let Some(earlier) = clock.started.checked_sub(Duration::from_millis(250)) {
            assert_eq!(now - clock.unix_ms(earlier), 250.0);
        }
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as f64;
        assert!((wall - now).abs() < 60_000.0, "{wall} vs {now}");
    }
}
