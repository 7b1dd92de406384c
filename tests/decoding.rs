//! Property tests of every response decoder (`fabraix::__fuzz`): arbitrary bytes, and
//! valid bodies mutated (fields removed, retyped, cut short, huge numbers, unicode).
//! Nothing panics; the result is a value or a typed error; valid bodies decode to the
//! values they carry; and no error ever quotes the API key, even when a server echoes it.
//!
//! Each property runs `CASES` cases and says so on stderr (`--nocapture`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use fabraix::__fuzz::{self, KEY};
use fabraix::Error;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use uuid::Uuid;

/// Cases per property.
const CASES: u32 = 2_000;

/// Runs `test` on `CASES` values of `strategy`, fails on the first counterexample (shrunk),
/// and reports how many cases ran.
fn check<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let ran = AtomicU32::new(0);
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&strategy, |value| {
        ran.fetch_add(1, Ordering::Relaxed);
        test(value)
    });
    if let Err(failure) = outcome {
        panic!("{name}: {failure}");
    }
    let ran = ran.load(Ordering::Relaxed);
    eprintln!("{name}: {ran} cases");
    assert!(ran >= CASES, "{name}: only {ran} cases ran");
}

// ---------------------------------------------------------------------------------------
// Values and bodies.

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

/// A UUID in each textual form the decoders take.
fn uuid_text() -> impl Strategy<Value = (Uuid, String)> {
    (uuid(), 0..5u8).prop_map(|(id, form)| {
        let text = match form {
            0 => id.hyphenated().to_string(),
            1 => id.hyphenated().to_string().to_uppercase(),
            2 => id.simple().to_string(),
            3 => id.braced().to_string(),
            _ => id.urn().to_string(),
        };
        (id, text)
    })
}

/// A time between 1971 and 9998, to the millisecond.
fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (31_536_000_000i64..253_370_764_800_000).prop_map(|ms| Utc.timestamp_millis_opt(ms).unwrap())
}

/// A server timestamp in each form the decoders take, and the time it names.
fn server_time() -> impl Strategy<Value = (DateTime<Utc>, Value)> {
    (time(), 0..4u8, -1439i32..1440).prop_map(|(at, form, offset_minutes)| {
        let value = match form {
            0 => json!(at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
            1 => {
                let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap();
                json!(at.with_timezone(&offset).to_rfc3339())
            }
            // An ISO time without an offset is UTC.
            2 => json!(at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()),
            _ => json!(at.timestamp_millis() as f64 / 1000.0),
        };
        (at, value)
    })
}

/// Text of any kind: unicode, controls, quotes, and sometimes the API key inside.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        1 => (any::<String>(), any::<usize>()).prop_map(|(s, at)| with_key(&s, at)),
        1 => Just(String::new()),
    ]
}

/// `s` with the key inserted at a char boundary chosen by `at`.
fn with_key(s: &str, at: usize) -> String {
    let boundaries: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
    let at = boundaries[at % boundaries.len()];
    format!("{}{KEY}{}", &s[..at], &s[at..])
}

/// Bytes with the key inserted at `at`.
fn bytes_with_key(bytes: &[u8], at: usize) -> Vec<u8> {
    let at = at % (bytes.len() + 1);
    [&bytes[..at], KEY.as_bytes(), &bytes[at..]].concat()
}

/// Values of every JSON type, including extremes.
fn odd_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!(f64::MAX)),
        Just(json!(f64::MIN_POSITIVE)),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::from),
            vec((text(), inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// Number literals no JSON library can take whole.
fn odd_number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e400".to_owned()),
        Just("-1e400".to_owned()),
        Just("1e-400".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("-9223372036854775809".to_owned()),
        Just("179769313486231570000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000.0".to_owned()),
        "[0-9]{20,400}",
        "-?[0-9]{1,30}\\.[0-9]{1,30}[eE][+-]?[0-9]{1,6}",
        Just("NaN".to_owned()),
        Just("Infinity".to_owned()),
        Just("-0".to_owned()),
    ]
}

/// A change to a valid body.
#[derive(Debug, Clone)]
enum Mutation {
    /// Remove the field at this index.
    Remove(usize),
    /// Give the field at this index another value.
    Retype(usize, Value),
    /// Give the field at this index a number literal written out as is.
    RawNumber(usize, String),
    /// Cut the body short, keeping this many bytes (modulo its length).
    Truncate(usize),
    /// Insert text at this byte.
    Insert(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), odd_value()).prop_map(|(i, v)| Mutation::Retype(i, v)),
        (any::<usize>(), odd_number_text()).prop_map(|(i, n)| Mutation::RawNumber(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), text()).prop_map(|(i, t)| Mutation::Insert(i, t)),
    ]
}

/// What a mutation did, for the assertions that follow from it.
#[derive(Debug, PartialEq)]
enum Mutated {
    /// A field the decoder requires is gone.
    RemovedField(String),
    /// The body no longer ends where it did: it cannot be whole JSON.
    CutShort,
    Other,
}

fn apply(body: &Value, mutation: &Mutation) -> (Vec<u8>, Mutated) {
    let mut object = body.as_object().unwrap().clone();
    let field = |i: usize| object.keys().nth(i % object.len()).unwrap().clone();
    match mutation {
        Mutation::Remove(i) => {
            let name = field(*i);
            object.remove(&name);
            (
                serde_json::to_vec(&object).unwrap(),
                Mutated::RemovedField(name),
            )
        }
        Mutation::Retype(i, value) => {
            let name = field(*i);
            object.insert(name, value.clone());
            (serde_json::to_vec(&object).unwrap(), Mutated::Other)
        }
        Mutation::RawNumber(i, number) => {
            let name = field(*i);
            object.insert(name, json!("\u{1}raw\u{1}"));
            let text = serde_json::to_string(&object)
                .unwrap()
                .replace("\"\\u0001raw\\u0001\"", number);
            (text.into_bytes(), Mutated::Other)
        }
        Mutation::Truncate(keep) => {
            let mut bytes = serde_json::to_vec(&object).unwrap();
            bytes.truncate(keep % bytes.len());
            (bytes, Mutated::CutShort)
        }
        Mutation::Insert(at, text) => {
            let mut bytes = serde_json::to_vec(&object).unwrap();
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, text.bytes());
            (bytes, Mutated::Other)
        }
    }
}

fn register_body() -> impl Strategy<Value = (Uuid, DateTime<Utc>, Value)> {
    (
        uuid_text(),
        server_time(),
        proptest::option::of(odd_value()),
    )
        .prop_map(|((id, id_text), (at, timestamp), extra)| {
            let mut body = json!({ "trace_id": id_text, "timestamp": timestamp });
            if let Some(extra) = extra {
                body["extra_field"] = extra;
            }
            (id, at, body)
        })
}

fn event_body() -> impl Strategy<Value = (Uuid, DateTime<Utc>, Value)> {
    (
        uuid_text(),
        server_time(),
        proptest::option::of(odd_value()),
    )
        .prop_map(|((id, id_text), (at, timestamp), extra)| {
            let mut body = json!({ "event_id": id_text, "timestamp": timestamp });
            if let Some(extra) = extra {
                body["extra_field"] = extra;
            }
            (id, at, body)
        })
}

#[derive(Debug, Clone)]
struct CheckBody {
    is_safe: bool,
    reasoning: String,
    action_check_id: String,
    at: DateTime<Utc>,
    body: Value,
}

fn check_body() -> impl Strategy<Value = CheckBody> {
    (
        any::<bool>(),
        text(),
        prop_oneof![
            text().prop_map(|id| (id.clone(), json!(id))),
            any::<u64>().prop_map(|n| (n.to_string(), json!(n))),
            any::<i64>().prop_map(|n| (n.to_string(), json!(n))),
        ],
        server_time(),
    )
        .prop_map(
            |(is_safe, reasoning, (id, id_value), (at, timestamp))| CheckBody {
                is_safe,
                body: json!({
                    "is_safe": is_safe,
                    "reasoning": reasoning,
                    "action_check_id": id_value,
                    "timestamp": timestamp,
                }),
                reasoning,
                action_check_id: id,
                at,
            },
        )
}

// ---------------------------------------------------------------------------------------
// What every error must satisfy.

/// The key nowhere in what an error shows.
fn assert_no_key(error: &Error) -> Result<(), TestCaseError> {
    let shown = format!("{error}\n{error:?}\n{error:#?}");
    prop_assert!(!shown.contains(KEY), "the key in {}", shown);
    Ok(())
}

/// No part of the key long enough to matter (8 characters) in what an error shows: for
/// bodies that hold the key whole and nothing like it besides.
fn assert_no_part_of_key(error: &Error) -> Result<(), TestCaseError> {
    let shown = format!("{error}\n{error:?}\n{error:#?}");
    for window in KEY.as_bytes().windows(8) {
        let part = std::str::from_utf8(window).unwrap();
        prop_assert!(!shown.contains(part), "`{}` of the key in {}", part, shown);
    }
    Ok(())
}

/// A success body's decoder answers a value or `Error::Decode` naming its endpoint.
fn assert_decode_error(endpoint: &str, error: &Error) -> Result<(), TestCaseError> {
    match error {
        Error::Decode {
            endpoint: named, ..
        } => prop_assert_eq!(*named, endpoint),
        other => prop_assert!(false, "not a decode error: {other:?}"),
    }
    assert_no_key(error)
}

fn decode_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Err(e) = __fuzz::register(bytes) {
        assert_decode_error("/register-agent-run", &e)?;
    }
    if let Err(e) = __fuzz::event(bytes) {
        assert_decode_error("/event", &e)?;
    }
    if let Err(e) = __fuzz::check(bytes) {
        assert_decode_error("/check", &e)?;
    }
    Ok(())
}

fn assert_api_error(status: u16, error: &Error) -> Result<(), TestCaseError> {
    match error {
        // A 429 is read as the rate limit it is, whatever its body.
        Error::RateLimited { .. } => prop_assert_eq!(status, 429),
        Error::Api {
            status: s, message, ..
        } => {
            prop_assert_eq!(*s, status);
            prop_assert!(!message.trim().is_empty(), "a blank message");
        }
        other => prop_assert!(false, "not an api error: {other:?}"),
    }
    assert_no_key(error)
}

// ---------------------------------------------------------------------------------------
// Properties.

#[test]
fn arbitrary_bytes_decode_or_fail_typed() {
    let bytes = prop_oneof![
        vec(any::<u8>(), 0..600),
        (vec(any::<u8>(), 0..600), any::<usize>()).prop_map(|(b, at)| bytes_with_key(&b, at)),
        "[{}\\[\\]\":,0-9a-z_\\-. eE+]{0,300}".prop_map(String::into_bytes),
    ];
    check("arbitrary bytes, every decoder", bytes, |bytes| {
        decode_all(&bytes)?;
        for status in [100, 302, 400, 404, 429, 500, 502, 599] {
            assert_api_error(status, &__fuzz::error(status, &bytes))?;
        }
        Ok(())
    });
}

#[test]
fn valid_register_bodies_decode_to_their_values() {
    check(
        "valid register bodies",
        register_body(),
        |(id, at, body)| {
            let bytes = serde_json::to_vec(&body).unwrap();
            let trace =
                __fuzz::register(&bytes).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(*trace.trace_id().as_uuid(), id);
            prop_assert_eq!(trace.registered_at(), at);
            Ok(())
        },
    );
}

#[test]
fn valid_event_bodies_decode_to_their_values() {
    check("valid event bodies", event_body(), |(id, at, body)| {
        let bytes = serde_json::to_vec(&body).unwrap();
        let receipt = __fuzz::event(&bytes).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(receipt.event_id, id);
        prop_assert_eq!(receipt.timestamp, at);
        Ok(())
    });
}

#[test]
fn valid_check_bodies_decode_to_their_values() {
    check("valid check bodies", check_body(), |expected| {
        let bytes = serde_json::to_vec(&expected.body).unwrap();
        let verdict = __fuzz::check(&bytes).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(verdict.is_safe, expected.is_safe);
        // The verdict's words come back as sent, less any key they quote.
        let without_key = |text: &str| text.replace(KEY, "[redacted]");
        prop_assert_eq!(&verdict.reasoning, &without_key(&expected.reasoning));
        prop_assert_eq!(
            &verdict.action_check_id,
            &without_key(&expected.action_check_id)
        );
        prop_assert_eq!(verdict.timestamp, expected.at);
        Ok(())
    });
}

/// Every field of these bodies is required.
fn assert_mutated(
    endpoint: &str,
    outcome: Result<(), Error>,
    mutated: &Mutated,
) -> Result<(), TestCaseError> {
    match outcome {
        Ok(()) => {
            prop_assert!(
                !matches!(mutated, Mutated::CutShort),
                "a body cut short decoded"
            );
            if let Mutated::RemovedField(name) = mutated {
                prop_assert!(name == "extra_field", "decoded without `{name}`");
            }
            Ok(())
        }
        Err(error) => assert_decode_error(endpoint, &error),
    }
}

#[test]
fn mutated_register_bodies_decode_or_fail_typed() {
    let cases = (register_body(), mutation());
    check(
        "mutated register bodies",
        cases,
        |((_, _, body), mutation)| {
            let (bytes, mutated) = apply(&body, &mutation);
            let outcome = __fuzz::register(&bytes).map(drop);
            assert_mutated("/register-agent-run", outcome, &mutated)?;
            decode_all(&bytes)
        },
    );
}

#[test]
fn mutated_event_bodies_decode_or_fail_typed() {
    let cases = (event_body(), mutation());
    check("mutated event bodies", cases, |((_, _, body), mutation)| {
        let (bytes, mutated) = apply(&body, &mutation);
        let outcome = __fuzz::event(&bytes).map(drop);
        assert_mutated("/event", outcome, &mutated)?;
        decode_all(&bytes)
    });
}

#[test]
fn mutated_check_bodies_decode_or_fail_typed() {
    let cases = (check_body(), mutation());
    check("mutated check bodies", cases, |(expected, mutation)| {
        let (bytes, mutated) = apply(&expected.body, &mutation);
        let outcome = __fuzz::check(&bytes).map(drop);
        assert_mutated("/check", outcome, &mutated)?;
        decode_all(&bytes)
    });
}

/// An error answer: the documented body with any fields, or anything else a server or
/// gateway sends.
#[derive(Debug, Clone)]
enum ErrorAnswer {
    Documented {
        message: Option<String>,
        kind: Option<String>,
        code: Option<String>,
    },
    Other(Vec<u8>),
}

impl ErrorAnswer {
    fn bytes(&self) -> Vec<u8> {
        match self {
            ErrorAnswer::Documented {
                message,
                kind,
                code,
            } => {
                let mut error = serde_json::Map::new();
                for (name, value) in [("message", message), ("type", kind), ("code", code)] {
                    if let Some(value) = value {
                        error.insert(name.into(), json!(value));
                    }
                }
                serde_json::to_vec(&json!({ "error": error })).unwrap()
            }
            ErrorAnswer::Other(bytes) => bytes.clone(),
        }
    }
}

fn error_answer() -> impl Strategy<Value = ErrorAnswer> {
    let html = (text(), text()).prop_map(|(title, body)| {
        format!("<html><head><title>{title}</title></head><body>\r\n{body}\r\n</body></html>")
            .into_bytes()
    });
    prop_oneof![
        3 => (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
        )
            .prop_map(|(message, kind, code)| ErrorAnswer::Documented { message, kind, code }),
        1 => vec(any::<u8>(), 0..600).prop_map(ErrorAnswer::Other),
        1 => (vec(any::<u8>(), 0..600), any::<usize>())
            .prop_map(|(b, at)| ErrorAnswer::Other(bytes_with_key(&b, at))),
        1 => html.prop_map(ErrorAnswer::Other),
        1 => (odd_value(), mutation()).prop_map(|(value, mutation)| {
            let body = json!({ "error": { "message": value, "type": "t", "code": "c" } });
            ErrorAnswer::Other(apply(&body, &mutation).0)
        }),
    ]
}

#[test]
fn error_answers_of_any_status_become_api_errors() {
    let cases = (100u16..600, error_answer());
    check(
        "error bodies, statuses 100..600",
        cases,
        |(status, answer)| {
            let error = __fuzz::error(status, &answer.bytes());
            assert_api_error(status, &error)?;
            // The documented fields are kept (with the key removed); a blank message gives
            // way to the status's reason.
            if let (
                ErrorAnswer::Documented {
                    message,
                    kind,
                    code,
                },
                Error::Api {
                    kind: got_kind,
                    code: got_code,
                    message: got_message,
                    ..
                },
            ) = (&answer, &error)
            {
                let scrubbed =
                    |s: &Option<String>| s.as_ref().map(|s| s.replace(KEY, "[redacted]"));
                prop_assert_eq!(got_kind, &scrubbed(kind));
                prop_assert_eq!(got_code, &scrubbed(code));
                if let Some(message) = scrubbed(message).filter(|m| !m.trim().is_empty()) {
                    prop_assert_eq!(got_message, &message);
                }
            }
            Ok(())
        },
    );
}

#[test]
fn the_key_echoed_anywhere_in_a_body_is_never_quoted() {
    // The key at every position of bodies long and short, including across the point
    // where an error's snippet of the body is cut, and after a `\` whose JSON escape
    // swallows the key's first letter.
    let cases = (
        "[ -~]{0,400}",
        any::<usize>(),
        prop_oneof![Just(200u16), Just(400), Just(401), Just(502), 100u16..600],
    );
    check("the key echoed in a body", cases, |(body, at, status)| {
        let bytes = bytes_with_key(body.as_bytes(), at);
        let errors = [
            __fuzz::register(&bytes).err(),
            __fuzz::event(&bytes).err(),
            __fuzz::check(&bytes).err(),
            Some(__fuzz::error(status, &bytes)),
        ];
        // And as a string where the body's JSON expects something else.
        let text = String::from_utf8(bytes).unwrap();
        let retyped = [
            __fuzz::register(
                &serde_json::to_vec(
                    &json!({ "trace_id": text, "timestamp": "2024-01-15T14:30:45.123Z" }),
                )
                .unwrap(),
            )
            .err(),
            __fuzz::event(
                &serde_json::to_vec(&json!({ "event_id": 1, "timestamp": text })).unwrap(),
            )
            .err(),
            __fuzz::check(
                &serde_json::to_vec(&json!({
                    "is_safe": text, "reasoning": 1, "action_check_id": [], "timestamp": 0
                }))
                .unwrap(),
            )
            .err(),
        ];
        let errors: Vec<Error> = errors.into_iter().chain(retyped).flatten().collect();
        prop_assert!(errors.len() >= 4, "too few errors to check: {:?}", errors);
        for error in &errors {
            assert_no_part_of_key(error)?;
        }
        Ok(())
    });
}

#[test]
fn retry_after_any_text_is_read_or_refused() {
    let cases = (
        prop_oneof![
            any::<String>(),
            "[0-9 ]{0,40}",
            "[A-Za-z]{3}, [0-9]{1,2} [A-Za-z]{3} -?[0-9]{1,6} [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2} [A-Z+0-9-]{1,5}",
        ],
        0u64..1 << 40,
    );
    check("Retry-After, any text", cases, |(value, now)| {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(now);
        let parsed = __fuzz::retry_after(&value, now);
        let trimmed = value.trim();
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            let expected = trimmed.parse().unwrap_or(u64::MAX);
            prop_assert_eq!(parsed, Some(Duration::from_secs(expected)));
        }
        Ok(())
    });
}

#[test]
fn retry_after_seconds_and_dates_mean_what_they_say() {
    let cases = (
        any::<u64>(),
        "[ \t]{0,3}",
        0..1i64 << 38,
        0..253_402_300_799i64,
        0..1_000_000_000u32,
    );
    check(
        "Retry-After, seconds and dates",
        cases,
        |(seconds, pad, date, now, nanos)| {
            let now = SystemTime::UNIX_EPOCH + Duration::new(now as u64, nanos);
            let text = format!("{pad}{seconds}{pad}");
            prop_assert_eq!(
                __fuzz::retry_after(&text, now),
                Some(Duration::from_secs(seconds))
            );
            // An HTTP date between 1970 and 9999: the wait until then, or none if past.
            let date = date.min(253_402_300_799);
            let at = Utc.timestamp_opt(date, 0).unwrap();
            let text = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            let expected = SystemTime::from(at)
                .duration_since(now)
                .unwrap_or(Duration::ZERO);
            prop_assert_eq!(__fuzz::retry_after(&text, now), Some(expected), "{}", text);
            Ok(())
        },
    );
}

// Regression: a body that echoed the key across the point where the error's snippet is cut
// (160 characters in) left the key's first characters in `Error::Decode` and `Error::Api`.
#[test]
fn the_key_across_the_snippet_cut_leaves_nothing_behind() {
    for before in 140..170 {
        let body = format!("{}{KEY} and more text after it", "x".repeat(before));
        let errors = [
            __fuzz::register(body.as_bytes()).unwrap_err(),
            __fuzz::error(502, body.as_bytes()),
        ];
        for error in &errors {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(&KEY[..8]), "{before}: {shown}");
            assert!(
                shown.contains('…'),
                "{before}: the snippet was not cut: {shown}"
            );
        }
    }
}

#[test]
fn a_json_escape_before_the_key_does_not_leak_the_rest_of_it() {
    // Regression: `\f` in `"\fuzz-secret-key"` is a JSON escape, so the decoded message
    // read "<form feed>uzz-secret-key": the key less its first letter, which the scrub of
    // the whole key did not match.
    let body = format!(
        r#"{{"error":{{"message":"\{}","type":"x","code":"y"}}}}"#,
        __fuzz::KEY
    );
    let error = __fuzz::error(400, body.as_bytes());
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(&__fuzz::KEY[1..]), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
}
