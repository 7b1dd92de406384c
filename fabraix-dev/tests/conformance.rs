//! The API `fabraix-dev` serves passes the same conformance cases as the MockServer, and
//! answers each of them as the MockServer does.

mod cases;
mod common;

use cases::{BLOCKED_ACTION, BLOCKED_REASONING};
use common::DevServer;
use fabraix::testing::MockServer;

#[tokio::test]
async fn the_mock_server_passes() {
    let server = MockServer::start().await.unwrap();
    server.block_action(BLOCKED_ACTION, BLOCKED_REASONING);
    let answers = cases::run(&server.url(), server.api_key()).await;
    assert_eq!(answers.len(), cases::cases().len());
}

#[tokio::test]
async fn fabraix_dev_passes_and_answers_as_the_mock_server_does() {
    let block = format!("{BLOCKED_ACTION}={BLOCKED_REASONING}");
    let dev = DevServer::start(&["--block", &block, "--api-key", "conformance-key"]);
    let from_dev = cases::run(&dev.base_url, &dev.api_key).await;

    let server = MockServer::builder()
        .api_key("conformance-key")
        .start()
        .await
        .unwrap();
    server.block_action(BLOCKED_ACTION, BLOCKED_REASONING);
    let from_mock = cases::run(&server.url(), server.api_key()).await;

    assert_eq!(from_dev.len(), from_mock.len());
    for ((name, dev), (_, mock)) in from_dev.iter().zip(&from_mock) {
        assert_eq!(cases::comparable(dev), cases::comparable(mock), "{name}");
    }
}

/// Four registrations under `3/h`: the statuses, bodies and whether `Retry-After` came.
async fn past_the_limit(base_url: &str, api_key: &str) -> Vec<(u16, serde_json::Value, bool)> {
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for _ in 0..4 {
        let response = http
            .post(format!("{base_url}/register-agent-run"))
            .header("x-api-key", api_key)
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "agent_id": "6f1c2b1e-8a40-5c1b-9a57-2d1f3e4b5c6d",
                    "timestamp": "2024-01-15T14:30:45.123Z",
                    "system_prompt": "p",
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let body: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap();
        let body = if status == 200 {
            serde_json::json!("ok")
        } else {
            body
        };
        answers.push((status, body, retry_after));
    }
    answers
}

#[tokio::test]
async fn both_refuse_past_the_same_rate_limit_alike() {
    let dev = DevServer::start(&["--rate-limit", "3/h"]);
    let from_dev = past_the_limit(&dev.base_url, &dev.api_key).await;

    let limit: fabraix::RateLimit = "3/h".parse().unwrap();
    let server = MockServer::builder()
        .rate_limit(limit)
        .start()
        .await
        .unwrap();
    let from_mock = past_the_limit(&server.url(), server.api_key()).await;

    assert_eq!(from_dev, from_mock);
    let statuses: Vec<u16> = from_dev.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(from_dev[3].1["error"]["code"], "RATE_LIMIT_EXCEEDED");
    assert!(from_dev[3].2, "429 comes with Retry-After");
}
