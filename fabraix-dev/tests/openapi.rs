//! The API reference for other languages (`fabraix::testing::OPENAPI_JSON`, served at
//! `/openapi.json` and as a page at `/docs`) says what the MockServer does: every example
//! in it is accepted, and every body the MockServer refuses (the conformance cases) the
//! document's schemas call invalid, while every body it accepts they call valid.
//!
//! The schemas are checked by a small validator written here for the keywords the document
//! uses. It treats `contentMediaType: application/json` and `contentSchema` as assertions
//! (JSON Schema makes them annotations), since that is how the API reads `content` and
//! `schema`; and it refuses any keyword it does not know, so that the document cannot say
//! more than this test checks.

mod cases;
mod common;

use cases::{BLOCKED_ACTION, BLOCKED_REASONING, Body, Expect, Key};
use common::{DevServer, get_json};
use fabraix::testing::{MockServer, OPENAPI_JSON};
use serde_json::{Value, json};

/// The three endpoints, under the base URL.
const ENDPOINTS: [&str; 3] = ["/register-agent-run", "/event", "/check"];

/// The OpenAPI document, and a validator for its schemas.
struct Document(Value);

impl Document {
    fn load() -> Self {
        Self(serde_json::from_str(OPENAPI_JSON).expect("the document is JSON"))
    }

    /// What `reference` (`#/components/...`) points at.
    fn lookup(&self, reference: &str) -> &Value {
        let mut node = &self.0;
        for part in reference
            .strip_prefix("#/")
            .unwrap_or_else(|| panic!("not a local reference: {reference}"))
            .split('/')
        {
            node = node
                .get(part)
                .unwrap_or_else(|| panic!("{reference} does not resolve"));
        }
        node
    }

    fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(reference) => self.lookup(reference),
            None => node,
        }
    }

    fn operation(&self, path: &str) -> &Value {
        &self.0["paths"][path]["post"]
    }

    fn request_schema(&self, path: &str) -> &Value {
        &self.operation(path)["requestBody"]["content"]["application/json"]["schema"]
    }

    fn response(&self, path: &str, status: u16) -> &Value {
        self.resolve(&self.operation(path)["responses"][status.to_string()])
    }

    /// Why `value` does not meet `schema`; empty when it does.
    fn problems(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        self.check(schema, value, "body", &mut problems);
        problems
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        let Some(keywords) = schema.as_object() else {
            match schema {
                Value::Bool(true) => {}
                Value::Bool(false) => problems.push(format!("{at}: nothing is allowed")),
                other => panic!("{at}: a schema must be an object or a boolean: {other}"),
            }
            return;
        };
        for (keyword, argument) in keywords {
            match keyword.as_str() {
                "$ref" => {
                    let target = self.lookup(argument.as_str().expect("$ref is text"));
                    self.check(target, value, at, problems);
                }
                "type" => {
                    let kinds: Vec<&str> = match argument {
                        Value::String(kind) => vec![kind.as_str()],
                        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
                        other => panic!("{at}: `type` {other}"),
                    };
                    if !kinds.iter().any(|kind| is_of_type(value, kind)) {
                        problems.push(format!("{at}: {value} is not of type {kinds:?}"));
                    }
                }
                "enum" => {
                    let allowed = argument.as_array().expect("`enum` is an array");
                    if !allowed.contains(value) {
                        problems.push(format!("{at}: {value} is not one of {argument}"));
                    }
                }
                "const" => {
                    if value != argument {
                        problems.push(format!("{at}: {value} is not {argument}"));
                    }
                }
                "required" => {
                    if let Some(object) = value.as_object() {
                        for name in argument.as_array().expect("`required` is an array") {
                            let name = name.as_str().expect("a field name");
                            if !object.contains_key(name) {
                                problems.push(format!("{at}: `{name}` is missing"));
                            }
                        }
                    }
                }
                "properties" => {
                    if let Some(object) = value.as_object() {
                        let properties = argument.as_object().expect("`properties` is an object");
                        for (name, field) in properties {
                            if let Some(field_value) = object.get(name) {
                                self.check(field, field_value, &format!("{at}.{name}"), problems);
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    assert_eq!(argument, &json!(false), "{at}: only `false` is checked");
                    let known = keywords.get("properties").and_then(Value::as_object);
                    if let Some(object) = value.as_object() {
                        for name in object.keys() {
                            if !known.is_some_and(|known| known.contains_key(name)) {
                                problems.push(format!("{at}: `{name}` is not a field"));
                            }
                        }
                    }
                }
                "pattern" => {
                    if let Some(text) = value.as_str() {
                        let pattern = argument.as_str().expect("`pattern` is text");
                        let regex = regex::Regex::new(pattern).expect("a valid pattern");
                        if !regex.is_match(text) {
                            problems.push(format!("{at}: {text:?} does not match {pattern}"));
                        }
                    }
                }
                "exclusiveMinimum" => {
                    if let (Some(number), Some(minimum)) = (value.as_f64(), argument.as_f64())
                        && number <= minimum
                    {
                        problems.push(format!("{at}: {number} is not over {minimum}"));
                    }
                }
                "format" => {
                    if let Some(text) = value.as_str() {
                        let ok = match argument.as_str() {
                            Some("date-time") => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
                            Some("uuid") => is_hyphenated_uuid(text),
                            other => panic!("{at}: the format {other:?} is not checked here"),
                        };
                        if !ok {
                            problems.push(format!("{at}: {text:?} is not a {argument}"));
                        }
                    }
                }
                "contentMediaType" => {
                    assert_eq!(argument, "application/json", "{at}");
                    let Some(text) = value.as_str() else { continue };
                    match serde_json::from_str::<Value>(text) {
                        Ok(document) => {
                            if let Some(inner) = keywords.get("contentSchema") {
                                self.check(inner, &document, &format!("{at} (decoded)"), problems);
                            }
                        }
                        Err(error) => problems.push(format!("{at}: not a JSON document: {error}")),
                    }
                }
                // Checked with `contentMediaType`; annotations.
                "contentSchema" | "description" | "examples" | "title" => {}
                unknown => panic!("{at}: the keyword `{unknown}` is not checked by this test"),
            }
        }
    }
}

/// 8-4-4-4-12 hex digits.
fn is_hyphenated_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_of_type(value: &Value, kind: &str) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown type {other}"),
    }
}

/// Sends `body` to `path` under `base_url` with the key; answers the status and the body.
async fn post(base_url: &str, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base_url}{path}"))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn the_document_describes_the_three_endpoints_as_the_api_takes_them() {
    let document = Document::load();
    assert!(document.0["openapi"].as_str().unwrap().starts_with("3."));
    let paths: Vec<&String> = document.0["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths.len(), ENDPOINTS.len(), "{paths:?}");
    let key = document.lookup("#/components/securitySchemes/apiKey");
    assert_eq!(
        (&key["type"], &key["in"], &key["name"]),
        (&json!("apiKey"), &json!("header"), &json!("x-api-key"))
    );
    assert_eq!(document.0["security"], json!([{ "apiKey": [] }]));
    for path in ENDPOINTS {
        let item = document.0["paths"][path].as_object().unwrap();
        // POST only, JSON only: a GET, or a body of another type, is refused.
        assert_eq!(item.keys().collect::<Vec<_>>(), ["post"], "{path}");
        let content = document.operation(path)["requestBody"]["content"]
            .as_object()
            .unwrap();
        assert_eq!(content.keys().collect::<Vec<_>>(), ["application/json"]);
        let schema = document.resolve(document.request_schema(path));
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|name| name.as_str().unwrap())
            .collect();
        required.sort_unstable();
        let expected: &[&str] = match path {
            "/register-agent-run" => &["agent_id", "system_prompt", "timestamp"],
            _ => &["content", "event_type", "schema", "timestamp", "trace_id"],
        };
        assert_eq!(required, expected, "{path}");
        for status in [200, 400, 401, 403, 429, 500] {
            assert!(
                document.response(path, status).is_object(),
                "{path} documents no {status}"
            );
        }
        let limited = document.response(path, 429);
        assert!(limited["headers"]["Retry-After"].is_object(), "{path}");
    }
    for path in ["/event", "/check"] {
        assert!(
            document.response(path, 404).is_object(),
            "{path}: unknown traces"
        );
    }
    // The error body every error example and answer is held to.
    let error = document.lookup("#/components/schemas/Error");
    let example = json!({"error": {"message": "Invalid agent_id format",
        "type": "validation_error", "code": "INVALID_AGENT_ID"}});
    assert_eq!(document.problems(error, &example), Vec::<String>::new());
    assert!(
        !document
            .problems(error, &json!({"message": "flat"}))
            .is_empty()
    );
}

#[tokio::test]
async fn every_example_in_the_document_is_accepted_by_the_mock_server() {
    let document = Document::load();
    let server = MockServer::start().await.unwrap();
    let (base_url, key) = (server.url(), server.api_key().to_owned());
    let mut trace_id = None;
    let mut sent = 0;
    for path in ENDPOINTS {
        let operation = document.operation(path);
        let examples = operation["requestBody"]["content"]["application/json"]["examples"]
            .as_object()
            .unwrap_or_else(|| panic!("{path} has no request example"));
        for (name, example) in examples {
            let mut body = example["value"].clone();
            let problems = document.problems(document.request_schema(path), &body);
            assert_eq!(problems, Vec::<String>::new(), "{path} example {name}");
            // Events and checks name a run: the one this server registered for the first
            // example, in place of the document's made-up trace id.
            if body.get("trace_id").is_some() {
                body["trace_id"] = json!(trace_id.clone().expect("a run registered first"));
            }
            let (status, answer) = post(&base_url, &key, path, &body).await;
            assert_eq!(status, 200, "{path} example {name}: {answer}");
            let answered = &document.response(path, 200)["content"]["application/json"];
            let problems = document.problems(&answered["schema"], &answer);
            assert_eq!(
                problems,
                Vec::<String>::new(),
                "{path} answer to {name}: {answer}"
            );
            if path == "/register-agent-run" {
                trace_id = answer["trace_id"].as_str().map(str::to_owned);
            }
            sent += 1;
        }
        // The answers' examples meet the answers' schemas too.
        for (status, response) in operation["responses"].as_object().unwrap() {
            let content = &document.resolve(response)["content"]["application/json"];
            for (name, example) in content["examples"].as_object().into_iter().flatten() {
                let problems = document.problems(&content["schema"], &example["value"]);
                assert_eq!(problems, Vec::<String>::new(), "{path} {status} {name}");
            }
        }
    }
    assert_eq!(sent, 5, "every example was sent");
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn what_the_mock_server_refuses_the_document_calls_invalid() {
    let document = Document::load();
    let server = MockServer::start().await.unwrap();
    server.block_action(BLOCKED_ACTION, BLOCKED_REASONING);
    // Every case against the real server (it panics unless each gets its documented answer).
    let answers = cases::run(&server.url(), server.api_key()).await;
    let ctx = cases::Ctx {
        trace: "3f0c9d7e-1b2a-4c5d-8e9f-0a1b2c3d4e5f".into(),
        unknown: "0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10".into(),
    };
    let mut judged = 0;
    for case in cases::cases() {
        let documented = ENDPOINTS.contains(&case.path);
        // Before any body is read: the key, the method, the media type, the path. The first
        // test holds the document to those (x-api-key, POST only, JSON only, three paths).
        if case.key != Key::Right
            || case.method != "POST"
            || !case
                .content_type
                .is_some_and(|media| media.starts_with("application/json"))
            || !documented
        {
            assert!(
                !matches!(
                    case.expect,
                    Expect::Registered | Expect::Logged | Expect::Verdict { .. }
                ),
                "{}: a case the schemas cannot judge is accepted",
                case.name
            );
            continue;
        }
        let Body::Json(body) = case.body else {
            continue; // Not JSON at all, or too large: no schema takes it.
        };
        let body = body(&ctx);
        let (_, answer) = answers
            .iter()
            .find(|(name, _)| *name == case.name)
            .expect("every case was sent");
        let problems = document.problems(document.request_schema(case.path), &body);
        match answer.status {
            // Refused for what the body holds: the document must say why.
            400 => assert!(
                !problems.is_empty(),
                "{}: the MockServer refused {body} ({}), and the document calls it valid",
                case.name,
                answer.body
            ),
            // Accepted, or refused for a trace it never issued (a well-formed body).
            200 | 404 => assert_eq!(
                problems,
                Vec::<String>::new(),
                "{}: the MockServer took {body}",
                case.name
            ),
            other => panic!("{}: unexpected {other}", case.name),
        }
        // Every error answer has the documented body, with a status the document lists.
        if answer.status != 200 {
            let error = document.response(case.path, answer.status);
            let schema = &error["content"]["application/json"]["schema"];
            assert_eq!(
                document.problems(schema, &answer.body),
                Vec::<String>::new()
            );
        }
        judged += 1;
    }
    assert!(judged >= 30, "only {judged} cases judged");
}

#[tokio::test]
async fn fabraix_dev_serves_the_document_and_its_page_to_this_machine_only() {
    let dev = DevServer::start(&[]);
    let (status, served) = get_json(&dev.at("/openapi.json")).await;
    assert_eq!(status, 200);
    assert_eq!(served["servers"][0]["url"], dev.base_url.as_str());
    // The rest is the document as written.
    let mut written: Value = serde_json::from_str(OPENAPI_JSON).unwrap();
    written["servers"]
        .as_array_mut()
        .unwrap()
        .insert(0, served["servers"][0].clone());
    assert_eq!(served, written);
    // The three endpoints with their required fields.
    let served = Document(served);
    for path in ENDPOINTS {
        let schema = served.resolve(served.request_schema(path));
        let required = schema["required"].as_array().map(Vec::len);
        assert_eq!(
            required,
            Some(if path == "/register-agent-run" { 3 } else { 5 })
        );
    }

    let page = reqwest::get(dev.at("/docs")).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    let html = page.text().await.unwrap();
    for needle in [
        "<code>/register-agent-run</code>",
        "<code>/event</code>",
        "<code>/check</code>",
        "<code>trace_id</code>",
        "<code>is_safe</code>",
        &dev.base_url,
    ] {
        assert!(html.contains(needle), "the page lacks {needle}");
    }
    assert!(
        !html.contains("<script") && !html.contains(" src="),
        "self-contained"
    );

    // A page elsewhere, its name resolved to 127.0.0.1, gets nothing, and nothing it sends
    // reaches the API.
    let http = reqwest::Client::new();
    let elsewhere = format!("rebound.example:{}", dev.port);
    for (method, path) in [
        (reqwest::Method::GET, "/openapi.json"),
        (reqwest::Method::GET, "/docs"),
        (reqwest::Method::POST, "/v1/register-agent-run"),
    ] {
        let answer = http
            .request(method, dev.at(path))
            .header("host", &elsewhere)
            .header("x-api-key", &dev.api_key)
            .header("content-type", "application/json")
            .body(r#"{"agent_id":"9eeb2aa7-d2bb-5ad2-9dbc-9f7e7b14321b","timestamp":"2024-01-15T14:30:45.123Z","system_prompt":""}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 421, "{path}");
    }
    let (_, unattached) = get_json(&dev.at("/api/unattached")).await;
    assert_eq!(unattached["requests"], json!([]), "nothing was recorded");
    let (_, runs) = get_json(&dev.at("/api/runs")).await;
    assert_eq!(runs["runs"], json!([]));
}
