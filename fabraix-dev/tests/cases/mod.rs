//! The Fabraix API's behaviour as requests and the answers they must get, written once and
//! run against any server that claims to speak it: the MockServer and `fabraix-dev`.
//!
//! Each case is one raw HTTP request (so that malformed ones can be sent) and either the
//! documented error (status and `code`) or the documented success shape.

use std::time::Duration;

use serde_json::{Value, json};

/// The action both servers are told to block, and why.
pub const BLOCKED_ACTION: &str = "delete_account";
pub const BLOCKED_REASONING: &str = "Deleting accounts needs a human.";

/// What a case can use: a trace the server under test issued, and one it never did.
pub struct Ctx {
    pub trace: String,
    pub unknown: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Right,
    Wrong,
    Missing,
}

pub enum Body {
    Json(fn(&Ctx) -> Value),
    Raw(fn(&Ctx) -> Vec<u8>),
}

#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// 200 with `trace_id` (a UUID) and `timestamp` (ISO 8601 text).
    Registered,
    /// 200 with `event_id` (a UUID) and `timestamp` (a number).
    Logged,
    /// 200 with a verdict: `is_safe`, `reasoning` (when given, exactly this), `action_check_id`,
    /// `timestamp`.
    Verdict {
        is_safe: bool,
        reasoning: Option<&'static str>,
    },
    /// The documented error body with this status and code.
    Error { status: u16, code: &'static str },
}

pub struct Case {
    pub name: &'static str,
    pub method: &'static str,
    /// Under the base URL, e.g. `/event`.
    pub path: &'static str,
    pub key: Key,
    pub content_type: Option<&'static str>,
    pub body: Body,
    pub expect: Expect,
}

/// The answer a server gave to one case.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

fn register_body() -> Value {
    json!({
        "agent_id": "6f1c2b1e-8a40-5c1b-9a57-2d1f3e4b5c6d",
        "timestamp": "2024-01-15T14:30:45.123Z",
        "system_prompt": "You are a support assistant.",
    })
}

fn event_body(ctx: &Ctx) -> Value {
    json!({
        "event_type": "user",
        "trace_id": ctx.trace,
        "timestamp": 1_678_886_405.123,
        "content": "{\"text\":\"Where is order 42?\"}",
        "schema": "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}}}",
    })
}

fn check_body(ctx: &Ctx, name: &str) -> Value {
    json!({
        "event_type": "action_check",
        "trace_id": ctx.trace,
        "timestamp": 1_678_886_405.123,
        "content": "{\"account_id\":4711}",
        "schema": json!({
            "type": "function",
            "name": name,
            "description": "Acts on an account.",
            "parameters": {"type": "object", "properties": {"account_id": {"type": "integer"}}},
        }).to_string(),
    })
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

fn without(mut body: Value, field: &str) -> Value {
    if let Some(object) = body.as_object_mut() {
        object.remove(field);
    }
    body
}

fn schema_with(ctx: &Ctx, schema: Value) -> Value {
    with(check_body(ctx, "x"), "schema", json!(schema.to_string()))
}

const fn ok(
    name: &'static str,
    path: &'static str,
    body: fn(&Ctx) -> Value,
    expect: Expect,
) -> Case {
    Case {
        name,
        method: "POST",
        path,
        key: Key::Right,
        content_type: Some("application/json"),
        body: Body::Json(body),
        expect,
    }
}

const fn invalid(
    name: &'static str,
    path: &'static str,
    body: fn(&Ctx) -> Value,
    status: u16,
    code: &'static str,
) -> Case {
    ok(name, path, body, Expect::Error { status, code })
}

const REG: &str = "/register-agent-run";
const EVENT: &str = "/event";
const CHECK: &str = "/check";

/// Every case, in the order they run.
pub fn cases() -> Vec<Case> {
    let mut cases = vec![
        // Registration.
        ok(
            "register: the documented request",
            REG,
            |_| register_body(),
            Expect::Registered,
        ),
        ok(
            "register: an empty system prompt",
            REG,
            |_| with(register_body(), "system_prompt", json!("")),
            Expect::Registered,
        ),
        invalid(
            "register: a body that is not an object",
            REG,
            |_| json!([]),
            400,
            "INVALID_REQUEST",
        ),
        invalid(
            "register: an unknown field",
            REG,
            |_| with(register_body(), "extra", json!(1)),
            400,
            "UNKNOWN_FIELD",
        ),
        invalid(
            "register: no agent_id",
            REG,
            |_| without(register_body(), "agent_id"),
            400,
            "MISSING_FIELD",
        ),
        invalid(
            "register: no system_prompt",
            REG,
            |_| without(register_body(), "system_prompt"),
            400,
            "MISSING_FIELD",
        ),
        invalid(
            "register: agent_id a name",
            REG,
            |_| with(register_body(), "agent_id", json!("cs-agent-prod-v1")),
            400,
            "INVALID_AGENT_ID",
        ),
        invalid(
            "register: agent_id without hyphens",
            REG,
            |_| {
                with(
                    register_body(),
                    "agent_id",
                    json!("6f1c2b1e8a405c1b9a572d1f3e4b5c6d"),
                )
            },
            400,
            "INVALID_AGENT_ID",
        ),
        invalid(
            "register: agent_id a number",
            REG,
            |_| with(register_body(), "agent_id", json!(7)),
            400,
            "INVALID_AGENT_ID",
        ),
        invalid(
            "register: timestamp without milliseconds",
            REG,
            |_| with(register_body(), "timestamp", json!("2024-01-15T14:30:45Z")),
            400,
            "INVALID_TIMESTAMP",
        ),
        invalid(
            "register: timestamp with an offset",
            REG,
            |_| {
                with(
                    register_body(),
                    "timestamp",
                    json!("2024-01-15T14:30:45.123+00:00"),
                )
            },
            400,
            "INVALID_TIMESTAMP",
        ),
        invalid(
            "register: timestamp month 13",
            REG,
            |_| {
                with(
                    register_body(),
                    "timestamp",
                    json!("2024-13-15T14:30:45.123Z"),
                )
            },
            400,
            "INVALID_TIMESTAMP",
        ),
        invalid(
            "register: timestamp February 30",
            REG,
            |_| {
                with(
                    register_body(),
                    "timestamp",
                    json!("2024-02-30T14:30:45.123Z"),
                )
            },
            400,
            "INVALID_TIMESTAMP",
        ),
        invalid(
            "register: timestamp a number",
            REG,
            |_| with(register_body(), "timestamp", json!(1_705_329_045.123)),
            400,
            "INVALID_TIMESTAMP",
        ),
        invalid(
            "register: system_prompt a number",
            REG,
            |_| with(register_body(), "system_prompt", json!(1)),
            400,
            "INVALID_SYSTEM_PROMPT",
        ),
        // Events.
        ok(
            "event: the documented request",
            EVENT,
            event_body,
            Expect::Logged,
        ),
        ok(
            "event: a boolean schema",
            EVENT,
            |c| with(event_body(c), "schema", json!("true")),
            Expect::Logged,
        ),
        invalid(
            "event: event_type action_check",
            EVENT,
            |c| with(event_body(c), "event_type", json!("action_check")),
            400,
            "INVALID_EVENT_TYPE",
        ),
        invalid(
            "event: an undocumented event_type",
            EVENT,
            |c| with(event_body(c), "event_type", json!("thought")),
            400,
            "INVALID_EVENT_TYPE",
        ),
        invalid(
            "event: trace_id not a UUID",
            EVENT,
            |c| with(event_body(c), "trace_id", json!("trace-1")),
            400,
            "INVALID_TRACE_ID",
        ),
        invalid(
            "event: a trace never issued",
            EVENT,
            |c| with(event_body(c), "trace_id", json!(c.unknown)),
            404,
            "TRACE_NOT_FOUND",
        ),
        invalid(
            "event: timestamp as text",
            EVENT,
            |c| with(event_body(c), "timestamp", json!("1678886405.123")),
            400,
            "INVALID_TIMESTAMP",
        ),
        invalid(
            "event: timestamp in 1970",
            EVENT,
            |c| with(event_body(c), "timestamp", json!(12)),
            400,
            "INVALID_TIMESTAMP",
        ),
        invalid(
            "event: content not JSON",
            EVENT,
            |c| with(event_body(c), "content", json!("not json")),
            400,
            "INVALID_CONTENT",
        ),
        invalid(
            "event: content an object, not a string",
            EVENT,
            |c| with(event_body(c), "content", json!({"text": "hi"})),
            400,
            "INVALID_CONTENT",
        ),
        invalid(
            "event: schema not JSON",
            EVENT,
            |c| with(event_body(c), "schema", json!("{")),
            400,
            "INVALID_SCHEMA",
        ),
        invalid(
            "event: schema a number",
            EVENT,
            |c| with(event_body(c), "schema", json!("3")),
            400,
            "INVALID_SCHEMA",
        ),
        invalid(
            "event: no content",
            EVENT,
            |c| without(event_body(c), "content"),
            400,
            "MISSING_FIELD",
        ),
        // Checks.
        ok(
            "check: an allowed action",
            CHECK,
            |c| check_body(c, "lookup_account"),
            Expect::Verdict {
                is_safe: true,
                reasoning: None,
            },
        ),
        ok(
            "check: the blocked action",
            CHECK,
            |c| check_body(c, BLOCKED_ACTION),
            Expect::Verdict {
                is_safe: false,
                reasoning: Some(BLOCKED_REASONING),
            },
        ),
        invalid(
            "check: event_type user",
            CHECK,
            |c| with(check_body(c, "x"), "event_type", json!("user")),
            400,
            "INVALID_EVENT_TYPE",
        ),
        invalid(
            "check: a trace never issued",
            CHECK,
            |c| with(check_body(c, "x"), "trace_id", json!(c.unknown)),
            404,
            "TRACE_NOT_FOUND",
        ),
        invalid(
            "check: schema not of type function",
            CHECK,
            |c| schema_with(c, json!({"type": "object", "name": "x", "parameters": {}})),
            400,
            "INVALID_SCHEMA",
        ),
        invalid(
            "check: schema with an empty name",
            CHECK,
            |c| {
                schema_with(
                    c,
                    json!({"type": "function", "name": " ", "parameters": {}}),
                )
            },
            400,
            "INVALID_SCHEMA",
        ),
        invalid(
            "check: schema without parameters",
            CHECK,
            |c| schema_with(c, json!({"type": "function", "name": "x"})),
            400,
            "INVALID_SCHEMA",
        ),
        invalid(
            "check: description a number",
            CHECK,
            |c| {
                schema_with(
                    c,
                    json!({"type": "function", "name": "x", "description": 1, "parameters": {}}),
                )
            },
            400,
            "INVALID_SCHEMA",
        ),
        invalid(
            "check: content not JSON",
            CHECK,
            |c| with(check_body(c, "x"), "content", json!("{")),
            400,
            "INVALID_CONTENT",
        ),
    ];
    // What comes before the body is read.
    cases.extend([
        Case {
            key: Key::Wrong,
            ..ok(
                "a wrong key",
                REG,
                |_| register_body(),
                Expect::Error {
                    status: 401,
                    code: "INVALID_API_KEY",
                },
            )
        },
        Case {
            key: Key::Missing,
            ..ok(
                "no key",
                EVENT,
                event_body,
                Expect::Error {
                    status: 401,
                    code: "INVALID_API_KEY",
                },
            )
        },
        Case {
            content_type: Some("text/plain"),
            ..ok(
                "a body sent as text/plain",
                REG,
                |_| register_body(),
                Expect::Error {
                    status: 400,
                    code: "INVALID_CONTENT_TYPE",
                },
            )
        },
        Case {
            content_type: Some("application/json; charset=utf-8"),
            ..ok(
                "application/json with a charset",
                REG,
                |_| register_body(),
                Expect::Registered,
            )
        },
        Case {
            method: "GET",
            ..ok(
                "GET on an endpoint",
                CHECK,
                |_| json!({}),
                Expect::Error {
                    status: 405,
                    code: "METHOD_NOT_ALLOWED",
                },
            )
        },
        ok(
            "an unknown endpoint",
            "/events",
            event_body,
            Expect::Error {
                status: 404,
                code: "NOT_FOUND",
            },
        ),
        Case {
            body: Body::Raw(|_| b"{\"agent_id\": ".to_vec()),
            ..ok(
                "a body that is not JSON",
                REG,
                |_| json!(null),
                Expect::Error {
                    status: 400,
                    code: "INVALID_REQUEST",
                },
            )
        },
        Case {
            body: Body::Raw(|_| vec![b' '; 8 * 1024 * 1024 + 1]),
            ..ok(
                "a body over 8 MiB",
                EVENT,
                |_| json!(null),
                Expect::Error {
                    status: 413,
                    code: "PAYLOAD_TOO_LARGE",
                },
            )
        },
    ]);
    cases
}

/// Sends one request; answers the status and the body parsed as JSON (`Null` if it is not).
async fn send(
    http: &reqwest::Client,
    base_url: &str,
    api_key: &str,
    case: &Case,
    ctx: &Ctx,
) -> Answer {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut request = http
        .request(method, format!("{base_url}{}", case.path))
        .timeout(Duration::from_secs(60));
    request = match case.key {
        Key::Right => request.header("x-api-key", api_key),
        Key::Wrong => request.header("x-api-key", format!("{api_key}-not")),
        Key::Missing => request,
    };
    if let Some(content_type) = case.content_type {
        request = request.header("content-type", content_type);
    }
    let bytes = match &case.body {
        Body::Json(body) => body(ctx).to_string().into_bytes(),
        Body::Raw(body) => body(ctx),
    };
    let response = request.body(bytes).send().await.unwrap_or_else(|e| {
        panic!("{}: no answer: {e}", case.name);
    });
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

fn is_uuid(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 36
            && s.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            })
    })
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

/// Why `answer` does not meet `expect`, if it does not.
fn mismatch(expect: Expect, answer: &Answer) -> Option<String> {
    let body = &answer.body;
    let ok = match expect {
        Expect::Registered => {
            answer.status == 200
                && keys(body) == ["timestamp", "trace_id"]
                && is_uuid(&body["trace_id"])
                && body["timestamp"]
                    .as_str()
                    .is_some_and(|t| t.len() >= 20 && t.as_bytes()[10] == b'T')
        }
        Expect::Logged => {
            answer.status == 200
                && keys(body) == ["event_id", "timestamp"]
                && is_uuid(&body["event_id"])
                && body["timestamp"].as_f64().is_some_and(|t| t > 1.0e9)
        }
        Expect::Verdict { is_safe, reasoning } => {
            answer.status == 200
                && keys(body) == ["action_check_id", "is_safe", "reasoning", "timestamp"]
                && body["is_safe"] == is_safe
                && body["reasoning"].as_str().is_some_and(|r| match reasoning {
                    Some(expected) => r == expected,
                    None => !r.is_empty(),
                })
                && body["action_check_id"]
                    .as_str()
                    .is_some_and(|id| !id.is_empty())
                && body["timestamp"].as_f64().is_some_and(|t| t > 1.0e9)
        }
        Expect::Error { status, code } => {
            answer.status == status
                && keys(body) == ["error"]
                && keys(&body["error"]) == ["code", "message", "type"]
                && body["error"]["code"] == code
                && body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
        }
    };
    (!ok).then(|| format!("expected {expect:?}, got {} {}", answer.status, answer.body))
}

/// Runs every case against the API at `base_url` (which must block [`BLOCKED_ACTION`]);
/// answers each case's name and answer, and panics listing every case that failed.
pub async fn run(base_url: &str, api_key: &str) -> Vec<(&'static str, Answer)> {
    let http = reqwest::Client::new();
    let setup = ok("setup", REG, |_| register_body(), Expect::Registered);
    let placeholder = Ctx {
        trace: String::new(),
        unknown: String::new(),
    };
    let registered = send(&http, base_url, api_key, &setup, &placeholder).await;
    assert_eq!(mismatch(Expect::Registered, &registered), None);
    let ctx = Ctx {
        trace: registered.body["trace_id"].as_str().unwrap().to_owned(),
        unknown: "3f0c9d7e-1b2a-4c5d-8e9f-0a1b2c3d4e5f".into(),
    };

    let mut answers = Vec::new();
    let mut failures = Vec::new();
    for case in cases() {
        let answer = send(&http, base_url, api_key, &case, &ctx).await;
        if let Some(why) = mismatch(case.expect, &answer) {
            failures.push(format!("{}: {why}", case.name));
        }
        answers.push((case.name, answer));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed against {base_url}:\n{}",
        failures.len(),
        answers.len(),
        failures.join("\n")
    );
    answers
}

/// The parts of two answers that must be equal between servers: the status, and the whole
/// body for errors (success bodies hold fresh ids and times).
#[allow(dead_code)] // conformance.rs uses it; openapi.rs, which shares this module, does not.
pub fn comparable(answer: &Answer) -> (u16, Value) {
    let body = if answer.status == 200 {
        json!(keys(&answer.body))
    } else {
        answer.body.clone()
    };
    (answer.status, body)
}
