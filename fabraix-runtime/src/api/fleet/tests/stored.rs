//! What the budget leaves in Redis: every key expires, none holds the API key, memory
//! stays bounded by the windows.

use std::time::Duration;

use super::{RedisServer, admin, budget, until_granted};
use crate::api::fleet::keys::Fingerprint;
use crate::api::fleet::{Shared, WaitReason};
use crate::api::lane::Lane;
use crate::model::RateLimit;

type Admin = redis::aio::MultiplexedConnection;

async fn all_keys(admin: &mut Admin) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(admin)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// Every string a key holds: its value, its hash's fields and values, its set's members.
async fn contents(admin: &mut Admin, key: &str) -> Vec<String> {
    let kind: String = redis::cmd("TYPE")
        .arg(key)
        .query_async(admin)
        .await
        .expect("TYPE");
    let mut command = match kind.as_str() {
        "string" => redis::cmd("GET"),
        "hash" => redis::cmd("HGETALL"),
        "zset" => {
            let mut c = redis::cmd("ZRANGE");
            c.arg(key).arg(0).arg(-1).arg("WITHSCORES");
            return c.query_async(admin).await.expect("ZRANGE");
        }
        other => panic!("{key}: unexpected type {other}"),
    };
    if kind == "string" {
        let value: String = command.arg(key).query_async(admin).await.expect("GET");
        return vec![value];
    }
    command.arg(key).query_async(admin).await.expect("HGETALL")
}

#[tokio::test]
async fn every_key_expires_and_none_holds_the_api_key() {
    let Some(server) = RedisServer::start("fleet::every_key_expires_and_none_holds_the_api_key")
    else {
        return;
    };
    let api_key = "sk-Stored-SECRET-Key-0123456789";
    let limit = RateLimit::per(5, Duration::from_secs(10)).and(100, Duration::from_secs(3600));
    let budget = budget(&server, api_key, &limit, Duration::from_secs(10)).await;
    // Every kind of entry: window grants, rate counters, pauses, probes, a pace.
    for lane in [Lane::Agent, Lane::Events, Lane::Agent] {
        assert!(matches!(budget.acquire(lane).await, Shared::Granted { .. }));
    }
    budget
        .report_throttled(Lane::Events, Duration::from_millis(1), false)
        .await;
    let (probe, _) = until_granted(&budget, Lane::Events).await;
    assert!(probe);
    budget
        .report_throttled(Lane::Events, Duration::from_secs(20), true)
        .await;
    let (probe, _) = until_granted(&budget, Lane::Agent).await;
    assert!(probe, "the agent lane probes");

    let mut admin = admin(&server).await;
    let keys = all_keys(&mut admin).await;
    let prefix = format!("fabraix:{{{}}}:budget:", Fingerprint::of(api_key).as_str());
    for wanted in [
        "window:10000",
        "window:3600000",
        "sent",
        "pace",
        "pause:events",
        "probe:events",
        "probe:agent",
        "probing:agent",
    ] {
        assert!(
            keys.contains(&format!("{prefix}{wanted}")),
            "{wanted} missing from {keys:?}"
        );
    }
    let lowercase = api_key.to_lowercase();
    let mut besides_windows = 0;
    for key in &keys {
        if !key.contains(":window:") {
            let bytes: u64 = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .query_async(&mut admin)
                .await
                .expect("MEMORY USAGE");
            besides_windows += bytes;
        }
        assert!(key.starts_with(&prefix), "{key}");
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut admin)
            .await
            .expect("PTTL");
        assert!(ttl > 0, "{key} never expires ({ttl})");
        let mut texts = contents(&mut admin, key).await;
        texts.push(key.clone());
        for text in texts {
            let text = text.to_lowercase();
            assert!(!text.contains(&lowercase), "{key} holds the api key");
        }
    }
    println!("pauses, probes, pace and counters: {besides_windows} bytes");
    assert!(besides_windows < 1024, "{besides_windows} bytes");
}

#[tokio::test]
async fn an_hour_window_of_ten_thousand_costs_under_a_megabyte_and_a_half() {
    let Some(server) = RedisServer::start(
        "fleet::an_hour_window_of_ten_thousand_costs_under_a_megabyte_and_a_half",
    ) else {
        return;
    };
    let api_key = "sk-memory";
    let limit = RateLimit::per(10_000, Duration::from_secs(3600));
    let budget = budget(&server, api_key, &limit, Duration::from_secs(10)).await;
    let mut granted = 0;
    // Concurrent, as a fleet would ask: 16 in flight on one connection.
    while granted < 10_000 {
        let batch = (10_000 - granted).min(16);
        let answers =
            futures_util::future::join_all((0..batch).map(|_| budget.acquire(Lane::Agent))).await;
        for answer in answers {
            assert_eq!(answer, Shared::Granted { probe: false });
            granted += 1;
        }
    }
    assert!(matches!(
        budget.acquire(Lane::Agent).await,
        Shared::Wait {
            why: WaitReason::Window,
            ..
        }
    ));
    let mut admin = admin(&server).await;
    let window = Fingerprint::of(api_key).key("budget:window:3600000");
    let members: u64 = redis::cmd("ZCARD")
        .arg(&window)
        .query_async(&mut admin)
        .await
        .expect("ZCARD");
    assert_eq!(members, 10_000);
    let mut total = 0u64;
    for key in all_keys(&mut admin).await {
        let bytes: u64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut admin)
            .await
            .expect("MEMORY USAGE");
        println!("{key}: {bytes} bytes");
        total += bytes;
    }
    println!("an hour window of 10,000 grants: {total} bytes in all");
    assert!(total < 1_500_000, "{total} bytes");
}
