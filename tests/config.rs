//! Client configuration: which base URLs are accepted, that the API key never shows, and
//! how agent ids are read.

use std::error::Error as _;
use std::time::Duration;

use fabraix::testing::{Fault, MockServer};
use fabraix::{AgentId, Client, DEFAULT_BASE_URL, Error, IntoAgentId};
use uuid::Uuid;

/// A key no output may contain; `SECRET` is what the assertions look for.
const KEY: &str = "sk-live-SECRET-4242";

fn assert_no_key(what: &str, text: &str) {
    assert!(
        !text.contains("SECRET") && !text.contains(KEY),
        "the api key leaked into {what}: {text}"
    );
}

/// Display, Debug and every source of an error, none of which may hold the key.
fn assert_error_has_no_key(err: &Error) {
    assert_no_key("an error's Display", &err.to_string());
    assert_no_key("an error's Debug", &format!("{err:?}"));
    assert_no_key("an error's pretty Debug", &format!("{err:#?}"));
    let mut source = err.source();
    while let Some(cause) = source {
        assert_no_key("an error's source", &cause.to_string());
        assert_no_key("an error source's Debug", &format!("{cause:?}"));
        source = cause.source();
    }
}

fn build(url: &str) -> Result<Client, Error> {
    Client::builder().api_key("sk-test").base_url(url).build()
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    for url in [
        "http://api.fabraix.com/v1",
        "http://dev.fabraix.com/v1",
        "http://10.0.0.1/v1",
        "http://192.168.1.20:8080/v1",
        "http://0.0.0.0:8080/v1",
        "http://localhost.example.com/v1",
        "http://127.0.0.1.example.com/v1",
        // Regression: names under `.localhost` were taken as loopback, yet the system
        // resolver may ask DNS for them, which could send the key in clear text anywhere.
        "http://api.localhost/v1",
        "http://evil.example.localhost:8080/v1",
    ] {
        let err = build(url).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{url}: {err:?}");
        assert!(err.to_string().contains("https://"), "{url}: {err}");
    }
}

#[test]
fn plain_http_to_loopback_is_allowed() {
    for url in [
        "http://127.0.0.1/v1",
        "http://127.0.0.1:8080/v1",
        "http://localhost/v1",
        "http://localhost:3000/v1",
        "http://LOCALHOST:3000/v1",
        "http://[::1]/v1",
        "http://[::1]:8080/v1",
    ] {
        let client = build(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            client.base_url().to_ascii_lowercase(),
            url.to_ascii_lowercase()
        );
    }
}

#[test]
fn https_is_always_allowed() {
    for url in [
        "https://api.fabraix.com/v1",
        "https://dev.fabraix.com/v1",
        "https://10.0.0.1/v1",
        "https://127.0.0.1:8443/v1",
        "https://fabraix.internal.example:9443/api/v1",
    ] {
        let client = build(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(client.base_url(), url);
    }
}

#[tokio::test]
async fn base_url_with_a_trailing_slash_reaches_the_same_endpoints() {
    let server = MockServer::start().await.unwrap();
    let client = server
        .client_builder()
        .base_url(format!("{}/", server.url()))
        .build()
        .unwrap();
    client
        .register_agent_run(AgentId::from_name("a").unwrap(), "p")
        .await
        .unwrap();
    assert_eq!(server.requests()[0].path, "/v1/register-agent-run");
}

#[test]
fn base_url_defaults_to_the_documented_endpoint() {
    assert_eq!(DEFAULT_BASE_URL, "https://dev.fabraix.com/v1");
    let client = Client::builder().api_key("sk-test").build().unwrap();
    assert_eq!(client.base_url(), DEFAULT_BASE_URL);
}

#[test]
fn unusable_base_urls_are_config_errors() {
    for url in [
        "ftp://127.0.0.1/v1",
        "not a url",
        "",
        "https://user:password@api.fabraix.com/v1",
        "https://api.fabraix.com/v1?key=x",
    ] {
        let err = build(url).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{url:?}: {err:?}");
    }
}

#[test]
fn a_base_url_without_a_version_segment_is_a_config_error() {
    // Reproduces: a base URL without `/v1` was accepted, and every call was then a 404.
    for url in [
        "https://api.fabraix.com",
        "https://api.fabraix.com/",
        "https://api.fabraix.com/api",
        "https://api.fabraix.com/v1/event",
        "https://api.fabraix.com/version1",
        "http://127.0.0.1:8080",
    ] {
        let err = build(url).unwrap_err();
        match &err {
            Error::Config(message) => {
                assert!(message.contains("version segment"), "{url}: {message}");
                assert!(message.contains("/v1"), "{url}: {message}");
            }
            other => panic!("{url}: expected a config error, got {other:?}"),
        }
    }
    for url in [
        "https://api.fabraix.com/v1/",
        "https://api.fabraix.com/v2",
        "https://gateway.example/fabraix/v1",
    ] {
        build(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

#[tokio::test]
async fn a_versioned_base_url_reaches_the_endpoints_under_it() {
    let server = MockServer::start().await.unwrap();
    // The MockServer serves `/v1`; a `/v2` base URL is accepted, and its calls go under it.
    let client = server
        .client_builder()
        .base_url(server.url().replace("/v1", "/v2"))
        .build()
        .unwrap();
    let err = client
        .register_agent_run(AgentId::from_name("a").unwrap(), "p")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err:?}");
    assert_eq!(server.requests()[0].path, "/v2/register-agent-run");
}

#[test]
fn a_base_url_holding_the_api_key_is_refused_without_quoting_it() {
    for url in [
        format!("https://api.fabraix.com/{KEY}/v1"),
        format!("https://{KEY}.fabraix.com/v1"),
        format!("https://api.fabraix.com/{}/v1", KEY.to_ascii_uppercase()),
        format!("https://api.fabraix.com/{}/v1", KEY.replace('-', "%2D")),
    ] {
        let builder = Client::builder().api_key(KEY).base_url(&url);
        assert_no_key("a builder's Debug", &format!("{builder:?}"));
        let err = builder.build().unwrap_err();
        match &err {
            Error::Config(message) => assert!(message.contains("holds an api key"), "{message}"),
            other => panic!("{url}: expected a config error, got {other:?}"),
        }
        assert_error_has_no_key(&err);
    }
}

#[test]
fn credentials_in_the_base_url_are_not_echoed() {
    let err = Client::builder()
        .api_key("sk-test")
        .base_url(format!("https://user:{KEY}@api.fabraix.com/v1"))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert_error_has_no_key(&err);
}

#[test]
fn missing_or_unsendable_keys_are_config_errors_that_do_not_quote_them() {
    let err = Client::builder().build().unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    for key in [
        "",
        "   ",
        "sk-live-SECRET 4242",
        "sk-live-SECRET-4242\n",
        "sk-live-SECRET-ünï",
    ] {
        let err = Client::builder().api_key(key).build().unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{key:?}: {err:?}");
        assert_error_has_no_key(&err);
    }
}

#[test]
fn zero_durations_are_config_errors() {
    let builder = || Client::builder().api_key("sk-test");
    for err in [
        builder().timeout(Duration::ZERO).build().unwrap_err(),
        builder()
            .connect_timeout(Duration::ZERO)
            .build()
            .unwrap_err(),
        builder().deadline(Duration::ZERO).build().unwrap_err(),
    ] {
        assert!(matches!(err, Error::Config(_)), "{err:?}");
    }
}

#[test]
fn debug_of_client_and_builder_hides_the_key() {
    let builder = Client::builder()
        .api_key(KEY)
        .base_url("https://api.fabraix.com/v1");
    for shown in [format!("{builder:?}"), format!("{builder:#?}")] {
        assert_no_key("the builder's Debug", &shown);
        assert!(shown.contains("api.fabraix.com"), "{shown}");
    }
    let client = builder.build().unwrap();
    for shown in [format!("{client:?}"), format!("{client:#?}")] {
        assert_no_key("the client's Debug", &shown);
        assert!(shown.contains("api.fabraix.com"), "{shown}");
    }
    assert_no_key("a clone's Debug", &format!("{:?}", client.clone()));
}

#[tokio::test]
async fn wrong_key_errors_quote_neither_key() {
    let server = MockServer::builder().api_key(KEY).start().await.unwrap();
    assert_no_key("the server's Debug", &format!("{server:?}"));
    let wrong = server
        .client_builder()
        .api_key("sk-live-WRONG-SECRET-9999")
        .build()
        .unwrap();
    assert_no_key("the client's Debug", &format!("{wrong:?}"));
    let err = wrong
        .register_agent_run(AgentId::from_name("a").unwrap(), "p")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 401, .. }), "{err:?}");
    assert_error_has_no_key(&err);
    let recorded = server.requests();
    assert_eq!(recorded[0].header("x-api-key"), Some("[redacted]"));
    assert_no_key("the recorded requests", &format!("{recorded:?}"));
}

#[tokio::test]
async fn errors_from_every_fault_never_quote_the_key() {
    let server = MockServer::builder().api_key(KEY).start().await.unwrap();
    let client = server
        .client_builder()
        .max_retries(0)
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    assert_no_key("the client's Debug", &format!("{client:?}"));
    // Servers that echo the key back in what they answer.
    let echo_json = format!(
        r#"{{"error":{{"message":"key {KEY} is not allowed here","type":"{KEY}","code":"{KEY}"}}}}"#
    );
    let echo_html = format!("<html><body>Bad gateway for key {KEY}</body></html>");
    let echo_success = format!(r#"{{"trace_id":"{KEY}","timestamp":"2024-01-15T14:30:45.123Z"}}"#);
    let faults = [
        Fault::status(400).body(echo_json.clone()),
        Fault::status(500).body(echo_json),
        Fault::status(502).body(echo_html).content_type("text/html"),
        Fault::status(200).body(echo_success),
        Fault::status(429).retry_after("1"),
        Fault::status(503),
        Fault::malformed_body(),
        Fault::drop_connection(),
        Fault::delay(Duration::from_secs(3)),
    ];
    for fault in faults {
        server.fail_next(1, fault.clone());
        let err = client
            .register_agent_run(AgentId::from_name("a").unwrap(), "p")
            .await
            .unwrap_err();
        println!("{fault:?} -> {err}");
        assert_error_has_no_key(&err);
    }
    // The right key still works, and was sent.
    let trace = client
        .register_agent_run(AgentId::from_name("a").unwrap(), "p")
        .await
        .unwrap();
    assert!(server.issued_traces().contains(&trace.trace_id()));
    assert!(server.requests().iter().all(|r| r.authenticated));
    assert_no_key("the recorded requests", &format!("{:?}", server.requests()));
}

#[test]
fn agent_id_from_name_is_stable_and_version_5() {
    let a = AgentId::from_name("cs-agent-prod-v1").unwrap();
    let b = AgentId::from_name("cs-agent-prod-v1").unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_string(), b.to_string());
    assert_eq!(a.as_uuid().get_version_num(), 5);
    assert_eq!(a.as_uuid().get_variant(), uuid::Variant::RFC4122);
    // The documented rule, computed independently of the SDK.
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://fabraix.com/agents");
    assert_eq!(AgentId::NAMESPACE, namespace);
    assert_eq!(*a.as_uuid(), Uuid::new_v5(&namespace, b"cs-agent-prod-v1"));
    assert_eq!(a.to_string(), "9eeb2aa7-d2bb-5ad2-9dbc-9f7e7b14321b");
}

#[test]
fn agent_id_from_name_distinguishes_names_exactly() {
    let ids: Vec<AgentId> = ["support-bot", "Support-bot", "support-bot ", "support bot"]
        .iter()
        .map(|n| AgentId::from_name(n).unwrap())
        .collect();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            assert_ne!(a, b);
        }
    }
}

#[test]
fn agent_id_from_name_rejects_blank_names() {
    for name in ["", " ", "\t\n", "   "] {
        let err = AgentId::from_name(name).unwrap_err();
        assert!(
            matches!(err, Error::InvalidAgentId { .. }),
            "{name:?}: {err:?}"
        );
    }
}

#[test]
fn agent_id_parse_passes_uuids_through() {
    let text = "0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10";
    let id = AgentId::parse(text).unwrap();
    assert_eq!(*id.as_uuid(), Uuid::parse_str(text).unwrap());
    assert_eq!(id.to_string(), text);
    // Any spelling of the same UUID is the same agent.
    for spelling in [
        "0B1C6F6E-0D0E-4A4E-9D1E-6A2C1F3B2A10",
        "0b1c6f6e0d0e4a4e9d1e6a2c1f3b2a10",
        "{0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10}",
        "urn:uuid:0b1c6f6e-0d0e-4a4e-9d1e-6a2c1f3b2a10",
    ] {
        assert_eq!(AgentId::parse(spelling).unwrap(), id, "{spelling}");
    }
    let v4 = Uuid::new_v4();
    assert_eq!(*AgentId::parse(&v4.to_string()).unwrap().as_uuid(), v4);
    assert_eq!(text.parse::<AgentId>().unwrap(), id);
}

#[test]
fn agent_id_parse_takes_uuids_only_and_names_go_through_from_name() {
    for name in [
        "cs-agent-prod-v1",
        "cs_agent_prod_v1",
        "support bot",
        "deadbeef",
        "a-b-c-d",
    ] {
        let refused = AgentId::parse(name).unwrap_err();
        assert!(
            refused.to_string().contains("use `AgentId::from_name`"),
            "{name}: {refused}"
        );
        // Where the SDK takes an agent id as text (`id = …`), a name is mapped.
        assert_eq!(
            name.into_agent_id().unwrap(),
            AgentId::from_name(name).unwrap(),
            "{name}"
        );
        assert!(name.parse::<AgentId>().is_err(), "{name}");
    }
}

#[test]
fn agent_id_parse_rejects_blank_and_uuid_lookalikes() {
    for text in [
        "",
        "  ",
        // One digit short.
        "550e8400-e29b-41d4-a716-44665544000",
        // One digit too many.
        "550e8400-e29b-41d4-a716-4466554400000",
        // 34 hex digits.
        "550e8400e29b41d4a716446655440000ff",
        // Braced but short.
        "{550e8400-e29b-41d4-a716-44665544}",
        // A dash out of place.
        "550e8400e-29b-41d4-a716-446655440000",
        // Underscores for dashes.
        "550e8400_e29b_41d4_a716_446655440000",
        "550e8400-e29b_41d4-a716_446655440000",
    ] {
        let err = AgentId::parse(text).unwrap_err();
        assert!(
            matches!(err, Error::InvalidAgentId { .. }),
            "{text:?}: {err:?}"
        );
        let err = text.into_agent_id().unwrap_err();
        assert!(
            matches!(err, Error::InvalidAgentId { .. }),
            "{text:?}: {err:?}"
        );
    }
}

#[test]
fn agent_id_parse_rejects_uuid_lookalikes_with_a_stray_letter() {
    // Reproduces: `IntoAgentId` documents that text looking like a UUID "but not one (a
    // digit short, a stray letter)" is an error, yet `looks_like_uuid` only considers text
    // made of hex digits and dashes, so a typo such as `o` for `0` silently becomes the
    // v5 id of that text: a different agent.
    for text in [
        "550e8400-e29b-41d4-a716-44665544000o",
        "550e8400-e29b-41d4-a716-4466554400g0",
        "550e84OO-e29b-41d4-a716-446655440000",
    ] {
        let err = text.into_agent_id();
        assert!(
            matches!(err, Err(Error::InvalidAgentId { .. })),
            "{text:?}: {err:?}"
        );
    }
}

#[test]
fn agent_id_serializes_as_a_plain_uuid_string() {
    let id = AgentId::from_name("cs-agent-prod-v1").unwrap();
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, "\"9eeb2aa7-d2bb-5ad2-9dbc-9f7e7b14321b\"");
    assert_eq!(serde_json::from_str::<AgentId>(&json).unwrap(), id);
}
