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
