//! What an error answer becomes: `Error::Api` from the documented body or from anything
//! else a server or gateway sends, `Error::Decode` for a bad success, and which errors are
//! worth retrying.

use std::sync::Arc;
use std::time::Duration;

use fabraix::testing::{Fault, MockServer};
use fabraix::{AgentId, Client, Error};

const PROMPT: &str = "You are a test agent.";

fn agent() -> AgentId {
    AgentId::from_name("errors-agent").unwrap()
}

/// A client of `server` that never retries, so one fault makes one error.
fn no_retries(server: &MockServer) -> Client {
    server.client_builder().max_retries(0).build().unwrap()
}

async fn register(client: &Client) -> Result<fabraix::Trace, Error> {
    client.register_agent_run(agent(), PROMPT).await
}

#[tokio::test]
async fn documented_error_body_becomes_api_error() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(
        1,
        Fault::status(400).body(
            r#"{"error":{"message":"Invalid agent_id format","type":"validation_error","code":"INVALID_AGENT_ID"}}"#,
        ),
    );
    let err = register(&server.client()).await.unwrap_err();
    match &err {
        Error::Api {
            status,
            kind,
            code,
            message,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(kind.as_deref(), Some("validation_error"));
            assert_eq!(code.as_deref(), Some("INVALID_AGENT_ID"));
            assert_eq!(message, "Invalid agent_id format");
        }
        other => panic!("expected Error::Api, got {other:?}"),
    }
    assert_eq!(err.status(), Some(400));
    let shown = err.to_string();
    assert!(shown.contains("400"), "{shown}");
    assert!(shown.contains("Invalid agent_id format"), "{shown}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn error_body_with_missing_fields_keeps_what_is_there() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(
        1,
        Fault::status(403).body(r#"{"error":{"message":"Forbidden for this key"}}"#),
    );
    let err = register(&server.client()).await.unwrap_err();
    match err {
        Error::Api {
            status: 403,
            kind: None,
            code: None,
            message,
        } => assert_eq!(message, "Forbidden for this key"),
        other => panic!("expected Error::Api 403, got {other:?}"),
    }
}

#[tokio::test]
async fn gateway_html_becomes_a_clean_api_error() {
    let server = MockServer::start().await.unwrap();
    let page = format!(
        "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n{}\n</body>\n</html>\n",
        "<!-- padding -->".repeat(200)
    );
    server.fail_next(1, Fault::status(502).body(page).content_type("text/html"));
    let err = register(&no_retries(&server)).await.unwrap_err();
    match &err {
        Error::Api {
            status,
            kind,
            code,
            message,
        } => {
            assert_eq!(*status, 502);
            assert_eq!(*kind, None);
            assert_eq!(*code, None);
            assert!(!message.is_empty());
            assert!(
                message.contains("502 Bad Gateway") || message.contains("bad gateway"),
                "{message}"
            );
        }
        other => panic!("expected Error::Api, got {other:?}"),
    }
    // Short and on one line, whatever the page's size.
    let shown = err.to_string();
    assert!(!shown.contains('\n'), "{shown:?}");
    assert!(
        shown.chars().count() < 400,
        "{} chars: {shown}",
        shown.len()
    );
}

#[tokio::test]
async fn json_body_of_another_shape_becomes_api_error_without_kind() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(
        1,
        Fault::status(500).body(r#"{"detail":"upstream exploded"}"#),
    );
    let err = register(&no_retries(&server)).await.unwrap_err();
    match err {
        Error::Api {
            status: 500,
            kind: None,
            code: None,
            message,
        } => assert!(!message.is_empty()),
        other => panic!("expected Error::Api 500, got {other:?}"),
    }
}

#[tokio::test]
async fn empty_error_body_says_the_status_reason() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(1, Fault::status(503).body("").content_type("text/plain"));
    let err = register(&no_retries(&server)).await.unwrap_err();
    match err {
        Error::Api {
            status: 503,
            kind: None,
            code: None,
            message,
        } => assert!(
            message.to_ascii_lowercase().contains("service unavailable"),
            "{message}"
        ),
        other => panic!("expected Error::Api 503, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_success_body_is_a_decode_error() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(1, Fault::malformed_body());
    let err = register(&server.client()).await.unwrap_err();
    match &err {
        Error::Decode {
            endpoint, snippet, ..
        } => {
            assert_eq!(*endpoint, "/register-agent-run");
            assert!(snippet.contains("trace_id"), "{snippet}");
        }
        other => panic!("expected Error::Decode, got {other:?}"),
    }
    assert!(!err.is_retryable());
    // A bad answer to a request that reached the server is not sent again.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn non_uuid_trace_id_is_a_decode_error() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(
        1,
        Fault::status(200).body(r#"{"trace_id":"nope","timestamp":"2024-01-15T14:30:45.123Z"}"#),
    );
    let err = register(&server.client()).await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn oversized_success_body_is_a_decode_error() {
    let server = MockServer::start().await.unwrap();
    let huge = format!(
        r#"{{"trace_id":"0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10","timestamp":"2024-01-15T14:30:45.123Z","pad":"{}"}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    server.fail_next(1, Fault::status(200).body(huge));
    let err = register(&server.client()).await.unwrap_err();
    match &err {
        Error::Decode { snippet, .. } => assert!(snippet.len() < 1024),
        other => panic!("expected Error::Decode, got {other:?}"),
    }
    assert!(err.to_string().len() < 1024);
}

#[tokio::test]
async fn success_without_the_documented_fields_is_a_decode_error() {
    let server = MockServer::start().await.unwrap();
    for body in [
        "{}",
        r#"{"trace_id":"0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10"}"#,
        r#"{"trace_id":"0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10","timestamp":"yesterday"}"#,
        "[]",
        "",
    ] {
        server.fail_next(1, Fault::status(200).body(body));
        let err = register(&server.client()).await.unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{body:?}: {err:?}");
    }
}

#[tokio::test]
async fn rate_limit_after_the_retries_is_rate_limited() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(2, Fault::status(429).retry_after("0"));
    let client = server.client_builder().max_retries(1).build().unwrap();
    let err = register(&client).await.unwrap_err();
    match err {
        Error::RateLimited { retry_after } => assert_eq!(retry_after, Some(Duration::ZERO)),
        ref other => panic!("expected Error::RateLimited, got {other:?}"),
    }
    assert_eq!(err.status(), Some(429));
    assert!(err.is_retryable());
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn retryable_statuses_give_retryable_errors() {
    let server = MockServer::start().await.unwrap();
    let client = no_retries(&server);
    for status in [429, 500, 502, 503, 504] {
        server.fail_next(1, Fault::status(status));
        let err = register(&client).await.unwrap_err();
        assert_eq!(err.status(), Some(status), "{err:?}");
        assert!(err.is_retryable(), "{status}: {err:?}");
    }
    for status in [400, 401, 403, 404, 405, 409, 422] {
        server.fail_next(1, Fault::status(status));
        let err = register(&client).await.unwrap_err();
        assert!(
            matches!(err, Error::Api { status: s, .. } if s == status),
            "{err:?}"
        );
        assert!(!err.is_retryable(), "{status}: {err:?}");
    }
}

#[tokio::test]
async fn transport_and_timeout_errors_are_retryable() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(1, Fault::drop_connection());
    let err = register(&no_retries(&server)).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.status(), None);

    server.fail_next(1, Fault::delay(Duration::from_secs(5)));
    let client = server
        .client_builder()
        .max_retries(0)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = register(&client).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[test]
fn errors_that_no_retry_can_fix_are_not_retryable() {
    let config = Client::builder()
        .base_url("http://api.fabraix.com/v1")
        .api_key("k")
        .build()
        .unwrap_err();
    let invalid = AgentId::from_name(" ").unwrap_err();
    for err in [
        config,
        invalid,
        Error::Disabled,
        Error::NoTrace,
        Error::Unregistered {
            cause: Arc::new(Error::Api {
                status: 401,
                kind: None,
                code: None,
                message: "invalid api key".into(),
            }),
        },
        Error::QueueFull,
        Error::AlreadyInitialized,
        Error::Blocked {
            reasoning: "transfers above the limit need approval".into(),
            action_check_id: "chk_1".into(),
        },
        Error::Decode {
            endpoint: "/register-agent-run",
            message: "expected value".into(),
            snippet: String::new(),
        },
    ] {
        assert!(!err.is_retryable(), "{err:?}");
        assert_eq!(err.status(), None, "{err:?}");
    }
    let transport = Error::Transport {
        message: "connection reset".into(),
        source: Some(Arc::new(std::io::Error::other("reset"))),
    };
    assert!(transport.is_retryable());
}

#[test]
fn error_messages_are_lowercase() {
    let errors = [
        Error::Disabled,
        Error::NoTrace,
        Error::Unregistered {
            cause: Arc::new(Error::Timeout {
                after: Duration::from_millis(200),
            }),
        },
        Error::QueueFull,
        Error::AlreadyInitialized,
        Error::RateLimited { retry_after: None },
        Error::Timeout {
            after: Duration::from_millis(200),
        },
        AgentId::from_name("").unwrap_err(),
        Client::builder().build().unwrap_err(),
    ];
    for err in errors {
        let shown = err.to_string();
        let first = shown.chars().next().unwrap();
        assert!(!first.is_uppercase(), "{shown}");
        assert!(!shown.ends_with('.'), "{shown}");
    }
}

#[test]
fn errors_are_send_sync_clone_and_std_errors() {
    fn check<E: std::error::Error + Send + Sync + Clone + 'static>() {}
    check::<Error>();
}
