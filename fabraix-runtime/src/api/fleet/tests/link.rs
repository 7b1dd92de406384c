//! The link: Redis lost, frozen, down at the start, and back.

use std::time::{Duration, Instant};

use super::{RedisServer, link, logged, until_shared};
use crate::api::fleet::keys::Fingerprint;
use crate::api::fleet::{Pacing, Shared, SharedBudget};
use crate::api::lane::Lane;
use crate::model::RateLimit;

const TIMEOUT: Duration = Duration::from_millis(100);

fn budget_on(link: &super::Link) -> SharedBudget {
    SharedBudget::new(
        link.clone(),
        &Fingerprint::of("sk-link"),
        &RateLimit::per(100, Duration::from_secs(1)),
        Pacing::cubic(Duration::from_secs(10)),
    )
}

/// The lines logged about the Redis on `port` that contain `what`.
fn lines(port: u16, what: &str) -> usize {
    let needle = format!("127.0.0.1:{port}/");
    logged()
        .lines()
        .filter(|line| line.contains(&needle) && line.contains(what))
        .count()
}

const LOST: &str = "redis unavailable";
const BACK: &str = "shared again";

async fn until_logged(port: u16, what: &str) {
    let started = Instant::now();
    while lines(port, what) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no `{what}` logged:\n{}",
            logged()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn redis_killed_is_unavailable_at_once_with_one_warning_and_shared_again_when_back() {
    let Some(mut server) = RedisServer::start(
        "fleet::redis_killed_is_unavailable_at_once_with_one_warning_and_shared_again_when_back",
    ) else {
        return;
    };
    logged();
    let port = server.port();
    let link = link(&server, TIMEOUT);
    until_shared(&link).await;
    let budget = budget_on(&link);
    assert_eq!(
        budget.acquire(Lane::Agent).await,
        Shared::Granted { probe: false }
    );
    assert_eq!(lines(port, LOST), 0);

    server.kill();
    let asked = Instant::now();
    assert_eq!(budget.acquire(Lane::Agent).await, Shared::Unavailable);
    // A dropped connection fails at once; nothing waits past the timeout.
    assert!(
        asked.elapsed() < TIMEOUT + Duration::from_millis(50),
        "{:?}",
        asked.elapsed()
    );
    assert!(!budget.is_shared());
    for lane in [Lane::Agent, Lane::Events, Lane::Agent] {
        let asked = Instant::now();
        assert_eq!(budget.acquire(lane).await, Shared::Unavailable);
        assert!(
            asked.elapsed() < Duration::from_millis(20),
            "{:?}",
            asked.elapsed()
        );
        budget
            .report_throttled(lane, Duration::from_secs(1), false)
            .await;
    }
    until_logged(port, LOST).await;
    let stats = budget.stats();
    assert!(stats.fallbacks >= 7, "{stats:?}");
    assert!(!stats.shared);

    server.restart();
    until_shared(&link).await;
    until_logged(port, BACK).await;
    assert_eq!(lines(port, LOST), 1, "one warning per loss:\n{}", logged());
    assert_eq!(lines(port, BACK), 1);
    // A fresh Redis: the script is loaded again, and the budget is whole.
    assert_eq!(
        budget.acquire(Lane::Agent).await,
        Shared::Granted { probe: false }
    );
    let stats = budget.stats();
    assert_eq!(stats.reconnects, 1, "{stats:?}");
    assert!(stats.shared);
    assert!(stats.round_trip_p50.is_some() && stats.round_trip_p99 >= stats.round_trip_p50);
}

#[tokio::test]
async fn redis_frozen_is_unavailable_after_the_timeout_and_shared_again_when_it_answers() {
    let Some(server) = RedisServer::start(
        "fleet::redis_frozen_is_unavailable_after_the_timeout_and_shared_again_when_it_answers",
    ) else {
        return;
    };
    logged();
    let port = server.port();
    let link = link(&server, TIMEOUT);
    until_shared(&link).await;
    let budget = budget_on(&link);
    assert_eq!(
        budget.acquire(Lane::Events).await,
        Shared::Granted { probe: false }
    );

    server.freeze();
    let asked = Instant::now();
    assert_eq!(budget.acquire(Lane::Agent).await, Shared::Unavailable);
    let took = asked.elapsed();
    assert!(took >= TIMEOUT, "{took:?}");
    assert!(took < TIMEOUT + Duration::from_millis(400), "{took:?}");
    // From then on, no call waits for it.
    let asked = Instant::now();
    assert_eq!(budget.acquire(Lane::Agent).await, Shared::Unavailable);
    assert!(
        asked.elapsed() < Duration::from_millis(20),
        "{:?}",
        asked.elapsed()
    );
    until_logged(port, LOST).await;

    server.thaw();
    until_shared(&link).await;
    assert_eq!(
        budget.acquire(Lane::Agent).await,
        Shared::Granted { probe: false }
    );
    assert_eq!(lines(port, LOST), 1, "{}", logged());
    assert_eq!(lines(port, BACK), 1, "{}", logged());
}

#[tokio::test]
async fn redis_down_at_the_start_never_blocks_and_is_shared_once_it_answers() {
    let Some(mut server) = RedisServer::start(
        "fleet::redis_down_at_the_start_never_blocks_and_is_shared_once_it_answers",
    ) else {
        return;
    };
    logged();
    let port = server.port();
    server.kill();
    let started = Instant::now();
    let link = link(&server, TIMEOUT);
    let budget = budget_on(&link);
    assert_eq!(budget.acquire(Lane::Agent).await, Shared::Unavailable);
    assert!(
        started.elapsed() < Duration::from_millis(20),
        "{:?}",
        started.elapsed()
    );
    until_logged(port, LOST).await;
    // Attempts go on in the background without another warning.
    let reconnecting = Instant::now();
    while reconnecting.elapsed() < Duration::from_millis(500) {
        assert_eq!(budget.acquire(Lane::Events).await, Shared::Unavailable);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(lines(port, LOST), 1, "{}", logged());

    server.restart();
    until_shared(&link).await;
    assert_eq!(
        budget.acquire(Lane::Agent).await,
        Shared::Granted { probe: false }
    );
    assert_eq!(lines(port, BACK), 1, "{}", logged());
}

#[tokio::test]
async fn a_password_in_the_url_appears_in_no_log_line() {
    let Some(mut server) =
        RedisServer::start("fleet::a_password_in_the_url_appears_in_no_log_line")
    else {
        return;
    };
    logged();
    let port = server.port();
    server.kill();
    // The settings keep the URL secret and remember its password for scrubbing.
    let settings = crate::api::Settings::new(
        Some("sk-password-test".to_owned().into()),
        "http://127.0.0.1:9/v1",
        crate::api::Options::default(),
        None,
    )
    .and_then(|s| {
        s.with_redis(Some(
            format!("redis://:Hunter2-Redis-Password@127.0.0.1:{port}/0").into(),
        ))
    })
    .expect("settings");
    let budget = SharedBudget::from_settings(&settings)
        .expect("a budget")
        .expect("shared");
    assert_eq!(budget.acquire(Lane::Agent).await, Shared::Unavailable);
    until_logged(port, LOST).await;
    assert!(format!("{settings:?}").contains(&format!("redis://[redacted]@127.0.0.1:{port}/0")));
    for shown in [logged(), format!("{settings:?}"), format!("{budget:?}")] {
        assert!(!shown.contains("Hunter2"), "{shown}");
    }
}

#[tokio::test]
async fn the_connection_closes_with_the_last_clone_of_the_link() {
    let Some(server) =
        RedisServer::start("fleet::the_connection_closes_with_the_last_clone_of_the_link")
    else {
        return;
    };
    let mut admin = super::admin(&server).await;
    let clients = |list: String| list.lines().count();
    let link = link(&server, TIMEOUT);
    until_shared(&link).await;
    let budget = budget_on(&link);
    assert_eq!(
        budget.acquire(Lane::Agent).await,
        Shared::Granted { probe: false }
    );
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .expect("CLIENT LIST");
    assert_eq!(clients(list), 2, "the link's connection and this one");
    drop((link, budget));
    let started = Instant::now();
    loop {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut admin)
            .await
            .expect("CLIENT LIST");
        if clients(list) == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the link's connection is still open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn a_budget_built_outside_any_runtime_connects_in_the_background() {
    let Some(server) =
        RedisServer::start("fleet::a_budget_built_outside_any_runtime_connects_in_the_background")
    else {
        return;
    };
    let settings = crate::api::Settings::new(
        Some("sk-no-runtime".to_owned().into()),
        "http://127.0.0.1:9/v1",
        crate::api::Options::default(),
        None,
    )
    .and_then(|s| s.with_redis(Some(server.url().into())))
    .expect("settings");
    let budget = SharedBudget::from_settings(&settings)
        .expect("a budget")
        .expect("shared");
    let started = Instant::now();
    while !budget.is_shared() {
        assert!(started.elapsed() < Duration::from_secs(15), "never shared");
        std::thread::sleep(Duration::from_millis(5));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let answer = runtime.block_on(budget.acquire(Lane::Events));
    assert_eq!(answer, Shared::Granted { probe: false });
}
