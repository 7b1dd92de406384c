//! Scrubbing with many clients in one process: a server's answer that echoes the key of
//! any of them (live, or dropped a moment ago) comes back redacted, however long it is.

use fabraix::testing::MockServer;
use fabraix::{Action, AgentId, Client};

const REDACTED: &str = "[redacted]";

/// `count` distinct keys, mixed case, unlike every other test's.
fn keys(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            format!(
                "sk-ManyKeys-{i:04}-{:08x}",
                (i as u32).wrapping_mul(0x9e37_79b9)
            )
        })
        .collect()
}

/// About 256 KiB of ordinary words holding `echoes` again and again, and the same text
/// with every echo redacted.
fn reasoning(echoes: &[String]) -> (String, String) {
    let words = "the transfer exceeds the daily limit and needs a second approval; ";
    let (mut text, mut expected) = (String::new(), String::new());
    let mut i = 0;
    while text.len() < 256 * 1024 {
        text.push_str(words);
        expected.push_str(words);
        if i % 32 == 0 {
            text.push_str(&echoes[(i / 32) % echoes.len()]);
            expected.push_str(REDACTED);
        }
        i += 1;
    }
    (text, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_verdict_echoing_the_keys_of_300_clients_comes_back_redacted() {
    let server = MockServer::start().await.expect("a server");
    let keys = keys(300);
    let clients: Vec<Client> = keys
        .iter()
        .map(|key| {
            server
                .client_builder()
                .api_key(key.clone())
                .build()
                .expect("a client")
        })
        .collect();
    // A client gone before the answer that quotes its key.
    let dropped = "sk-ManyKeys-Dropped-5f1d2c";
    drop(
        server
            .client_builder()
            .api_key(dropped)
            .build()
            .expect("a client"),
    );
    let echoes = vec![
        keys[0].clone(),
        keys[299].to_ascii_lowercase(),
        keys[150].to_ascii_uppercase(),
        dropped.to_owned(),
        // Less its first character, as a swallowed JSON escape leaves it.
        keys[42][1..].to_owned(),
    ];
    let (text, expected) = reasoning(&echoes);
    server.block_action("transfer_funds", text);

    let client = server.client();
    let trace = client
        .register_agent_run(AgentId::from_name("many-keys").expect("a name"), "p")
        .await
        .expect("registered");
    let verdict = client
        .check_action(trace.trace_id(), &Action::new("transfer_funds"))
        .await
        .expect("a verdict");
    assert!(!verdict.is_safe);
    assert_eq!(verdict.reasoning.len(), expected.len());
    assert!(verdict.reasoning == expected, "a key came back unredacted");
    assert!(!verdict.reasoning.to_ascii_lowercase().contains("manykeys"));
    drop(clients);
}
