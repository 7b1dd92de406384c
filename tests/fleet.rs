//! Replicas share one key (feature `redis`): several processes with the same key and the
//! same Redis keep to one budget, the key's.
//!
//! The replicas are this test binary run again as children (`child_program` below, ignored
//! in ordinary runs), against one MockServer enforcing the key's limit and a real
//! `redis-server` started on loopback (skipped, and said so, without one; failing under
//! CI). Each replica carries its share of the runs, each run a registration, five events
//! and two checks, and prints one line with what it saw.

#[path = "redis_server/mod.rs"]
mod redis_server;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fabraix::testing::{Endpoint, MockServer, RecordedRequest};
use fabraix::{Action, Client, ClientBuilder, Event, EventType};
use redis_server::RedisServer;
use serde_json::Value;

const CHILD: &str = "FLEET_TEST_CHILD";
/// The key's limit, as the server enforces it and every replica is told.
const LIMIT: &str = "20/s";
const EVENTS_PER_RUN: usize = 5;
const CHECKS_PER_RUN: usize = 2;
const WAIT: Duration = Duration::from_secs(180);

/// A key whose every form is easy to look for in what Redis holds.
const KEY: &str = "sk-fleet-SECRET-4c1d9e7a2b5f3086-never-in-redis";
const OTHER_KEY: &str = "sk-fleet-OTHER-93b2a6c4d8e1f705-never-in-redis";

/// What one replica saw, from its last line.
#[derive(Debug)]
struct Replica {
    runs: usize,
    unregistered: u64,
    checks_failed: u64,
    worst_check: Duration,
    rate_limited: u64,
    fallbacks: u64,
    shared_at_end: bool,
}

/// A fleet of replicas, started together once every one shares the budget (or, when Redis
/// is down from the start, at once).
struct Fleet {
    children: Vec<Child>,
    lines: mpsc::Receiver<(usize, String)>,
    go: PathBuf,
}

impl Fleet {
    fn start(server: &MockServer, redis: &str, runs: &[usize], expect_shared: bool) -> Self {
        let go = std::env::temp_dir().join(format!(
            "fabraix-fleet-go-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let (sender, lines) = mpsc::channel();
        let mut children = Vec::new();
        for (replica, &runs) in runs.iter().enumerate() {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child_program", "--ignored", "--nocapture"])
                .env(CHILD, "1")
                .env("FLEET_TEST_REPLICA", replica.to_string())
                .env("FLEET_TEST_RUNS", runs.to_string())
                .env("FLEET_TEST_GO", &go)
                .env(
                    "FLEET_TEST_EXPECT_SHARED",
                    if expect_shared { "1" } else { "0" },
                )
                .env("FABRAIX_BASE_URL", server.url())
                .env("FABRAIX_API_KEY", server.api_key())
                .env("FABRAIX_RATE_LIMIT", LIMIT)
                .env("FABRAIX_REDIS_URL", redis)
                .env_remove("FABRAIX_DISABLED")
                .env_remove("FABRAIX_SPOOL_DIR")
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(line) = line.strip_prefix("FLEET ") {
                        let _ = sender.send((replica, line.to_owned()));
                    }
                }
            });
            children.push(child);
        }
        let mut fleet = Self {
            children,
            lines,
            go,
        };
        fleet.wait_for_all("ready");
        std::fs::write(&fleet.go, b"go").unwrap();
        fleet
    }

    fn wait_for_all(&mut self, what: &str) {
        let mut seen = vec![false; self.children.len()];
        let deadline = Instant::now() + WAIT;
        while seen.iter().any(|s| !s) {
            let left = deadline.saturating_duration_since(Instant::now());
            let (replica, line) = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("not every replica said {what}: {seen:?}"));
            if line == what {
                seen[replica] = true;
            }
        }
    }

    /// Waits for every replica to exit, and reads their last lines.
    fn finish(mut self) -> Vec<Replica> {
        let mut results: Vec<Option<Replica>> = (0..self.children.len()).map(|_| None).collect();
        let deadline = Instant::now() + WAIT;
        while results.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok((replica, line)) = self.lines.recv_timeout(left) else {
                break;
            };
            if let Some(json) = line.strip_prefix("done ") {
                let v: Value = serde_json::from_str(json).unwrap();
                let n = |k: &str| v[k].as_u64().unwrap();
                results[replica] = Some(Replica {
                    runs: n("runs") as usize,
                    unregistered: n("unregistered"),
                    checks_failed: n("checks_failed"),
                    worst_check: Duration::from_millis(n("worst_check_ms")),
                    rate_limited: n("rate_limited"),
                    fallbacks: n("fallbacks"),
                    shared_at_end: v["shared"].as_bool().unwrap(),
                });
            }
        }
        for child in &mut self.children {
            let status = child.wait().unwrap();
            assert!(status.success(), "a replica exited {status}");
        }
        let _ = std::fs::remove_file(&self.go);
        results
            .into_iter()
            .map(|r| r.expect("every replica reports"))
            .collect()
    }
}

fn accepted(request: &RecordedRequest) -> bool {
    request.response.as_ref().is_some_and(|r| r.status == 200)
}

fn limited_server(key: &str) -> MockServer {
    MockServer::builder()
        .api_key(key)
        .rate_limit(LIMIT.parse().unwrap())
        .start_blocking()
        .unwrap()
}

/// Every run was registered once, and its events arrived once each, in order.
fn assert_every_event_once_in_order(server: &MockServer, runs: usize) {
    let traces = server.issued_traces();
    assert_eq!(traces.len(), runs, "one registration per run");
    let mut per_trace: HashMap<String, Vec<u64>> = HashMap::new();
    for request in server.requests_to(Endpoint::Event) {
        if !accepted(&request) {
            continue;
        }
        let content: Value =
            serde_json::from_str(request.body["content"].as_str().unwrap()).unwrap();
        let n = content["text"].as_str().unwrap().parse().unwrap();
        per_trace
            .entry(request.body["trace_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(n);
    }
    let expected: Vec<u64> = (0..EVENTS_PER_RUN as u64).collect();
    for trace in traces {
        assert_eq!(
            per_trace.get(&trace.to_string()),
            Some(&expected),
            "the events of {trace}"
        );
    }
}

fn even_load(test: &str, replicas: usize) {
    let Some(redis) = RedisServer::start(test) else {
        return;
    };
    let server = limited_server(KEY);
    let runs = vec![32 / replicas; replicas];
    let fleet = Fleet::start(&server, &redis.url(), &runs, true);
    let results = fleet.finish();

    let total: usize = results.iter().map(|r| r.runs).sum();
    assert_eq!(total, 32);
    for replica in &results {
        assert_eq!(replica.checks_failed, 0, "{results:?}");
        assert_eq!(replica.unregistered, 0, "{results:?}");
        assert!(replica.shared_at_end, "{results:?}");
        assert_eq!(replica.fallbacks, 0, "{results:?}");
    }
    assert!(
        server.rate_limited() <= 2,
        "{} 429s: {results:?}",
        server.rate_limited()
    );
    assert_every_event_once_in_order(&server, 32);
    let worst = results.iter().map(|r| r.worst_check).max().unwrap();
    let met: u64 = results.iter().map(|r| r.rate_limited).sum();
    assert_eq!(met, server.rate_limited(), "{results:?}");
    eprintln!("{replicas} replicas: {met} 429s, worst check {worst:?}",);
}

#[test]
fn four_replicas_keep_to_one_budget() {
    even_load("fleet::four_replicas_keep_to_one_budget", 4);
}

#[test]
fn eight_replicas_keep_to_one_budget() {
    even_load("fleet::eight_replicas_keep_to_one_budget", 8);
}

#[test]
fn a_busy_replica_beside_idle_ones_uses_the_whole_key() {
    let Some(redis) = RedisServer::start("fleet::a_busy_replica_beside_idle_ones") else {
        return;
    };
    let server = limited_server(KEY);
    let fleet = Fleet::start(&server, &redis.url(), &[24, 0, 0, 0], true);
    let results = fleet.finish();
    assert_eq!(results[0].runs, 24);
    assert_eq!(results[0].checks_failed, 0, "{results:?}");
    assert!(server.rate_limited() <= 2, "{}", server.rate_limited());
    assert_every_event_once_in_order(&server, 24);
}

#[test]
fn redis_killed_mid_run_loses_nothing() {
    let Some(mut redis) = RedisServer::start("fleet::redis_killed_mid_run") else {
        return;
    };
    let server = limited_server(KEY);
    let fleet = Fleet::start(&server, &redis.url(), &[8, 8, 8, 8], true);
    // A quarter of the way in, Redis goes away for good.
    let quarter = 32 * (1 + EVENTS_PER_RUN + CHECKS_PER_RUN) / 4;
    let reached = server.wait_for_blocking(WAIT, |requests| {
        requests.iter().filter(|r| accepted(r)).count() >= quarter
    });
    assert!(reached);
    redis.kill();
    let results = fleet.finish();

    for replica in &results {
        assert_eq!(replica.checks_failed, 0, "{results:?}");
        assert_eq!(replica.unregistered, 0, "{results:?}");
        assert!(!replica.shared_at_end, "{results:?}");
    }
    assert!(results.iter().any(|r| r.fallbacks > 0), "{results:?}");
    assert_every_event_once_in_order(&server, 32);
    let accepted_requests = server.with_requests(|r| r.iter().filter(|r| accepted(r)).count());
    let refused = server.rate_limited() as usize;
    assert!(
        refused * 4 < accepted_requests,
        "{refused} 429s for {accepted_requests} accepted"
    );
}

#[test]
fn redis_restarted_is_shared_again() {
    let Some(mut redis) = RedisServer::start("fleet::redis_restarted") else {
        return;
    };
    let server = limited_server(KEY);
    let client = ClientBuilder::new()
        .api_key(KEY)
        .base_url(server.url())
        .rate_limit(LIMIT.parse().unwrap())
        .redis_url(redis.url())
        .build()
        .unwrap();
    assert!(wait_until(|| client.stats().fleet.shared), "never shared");
    redis.restart();
    // Every request goes on while Redis is away, and the budget is shared again once it is
    // back: the link reconnects in the background.
    let deadline = Instant::now() + WAIT;
    while client.stats().fleet.reconnects == 0 && Instant::now() < deadline {
        client
            .check_action_blocking(
                client
                    .register_agent_run_blocking(fabraix::AgentId::from_name("fleet").unwrap(), "p")
                    .unwrap()
                    .trace_id(),
                &Action::new("lookup"),
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = client.stats().fleet;
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(wait_until(|| client.stats().fleet.shared), "{stats:?}");
}

#[test]
fn two_keys_on_one_redis_keep_their_budgets_apart_and_redis_never_holds_a_key() {
    let Some(redis) = RedisServer::start("fleet::two_keys_on_one_redis") else {
        return;
    };
    let first = limited_server(KEY);
    let second = limited_server(OTHER_KEY);
    let a = Fleet::start(&first, &redis.url(), &[8, 8], true);
    let b = Fleet::start(&second, &redis.url(), &[8, 8], true);
    let (a, b) = (a.finish(), b.finish());
    for replica in a.iter().chain(&b) {
        assert_eq!(replica.checks_failed, 0, "{a:?} {b:?}");
    }
    assert!(first.rate_limited() <= 2);
    assert!(second.rate_limited() <= 2);
    assert_every_event_once_in_order(&first, 16);
    assert_every_event_once_in_order(&second, 16);

    // Each key has its own keys in Redis, under its own fingerprint; neither key is there
    // in any form, and everything expires.
    let keys = redis_command(redis.port(), &["KEYS", "*"]);
    let names: Vec<&str> = keys.lines().filter(|l| l.starts_with("fabraix:")).collect();
    assert!(!names.is_empty(), "{keys}");
    let tags: std::collections::HashSet<&str> = names
        .iter()
        .filter_map(|name| name.split(['{', '}']).nth(1))
        .collect();
    assert_eq!(tags.len(), 2, "{names:?}");
    for name in &names {
        let ttl = redis_command(redis.port(), &["PTTL", name]);
        let ttl: i64 = ttl.trim().parse().unwrap();
        assert!(ttl > 0, "{name} does not expire ({ttl})");
        let dump = redis_command(redis.port(), &["DUMP", name]);
        for key in [KEY, OTHER_KEY] {
            for form in [key, &key[3..], &key[..key.len() - 3]] {
                assert!(!name.contains(form), "{name}");
                assert!(!dump.contains(form), "{name} holds the key");
            }
        }
    }
}

fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// One command to the Redis on `port`, its answer as text: a bulk string's bytes (lossy),
/// an array's elements one per line, an integer's digits.
fn redis_command(port: u16, args: &[&str]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        request.extend(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    stream.write_all(&request).unwrap();
    let mut reader = BufReader::new(stream);
    read_reply(&mut reader)
}

fn read_reply(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let (kind, rest) = line.split_at(1);
    let rest = rest.trim_end();
    match kind {
        "+" | ":" => rest.to_owned(),
        "-" => panic!("redis: {rest}"),
        "$" => {
            let len: i64 = rest.parse().unwrap();
            if len < 0 {
                return String::new();
            }
            let mut bytes = vec![0; len as usize + 2];
            reader.read_exact(&mut bytes).unwrap();
            bytes.truncate(len as usize);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        "*" => {
            let n: i64 = rest.parse().unwrap();
            (0..n.max(0))
                .map(|_| read_reply(reader))
                .collect::<Vec<_>>()
                .join("\n")
        }
        other => panic!("unexpected reply {other}{rest}"),
    }
}

#[fabraix::agent(id = "fleet-agent", system_prompt = "You look things up.", client = client)]
async fn one_run(client: &Client) -> (bool, u64, Duration) {
    let registered = fabraix::current_trace().is_some();
    for n in 0..EVENTS_PER_RUN {
        fabraix::log_event(Event::text(EventType::Tool, n.to_string())).unwrap();
    }
    let mut failed = 0;
    let mut worst = Duration::ZERO;
    for _ in 0..CHECKS_PER_RUN {
        let started = Instant::now();
        if fabraix::check_action(&Action::new("lookup")).await.is_err() {
            failed += 1;
        }
        worst = worst.max(started.elapsed());
    }
    (registered, failed, worst)
}

/// One replica: waits until it shares the budget (when expected), says "ready", waits for
/// the word to go, carries its runs one after the other, flushes, and reports.
#[test]
#[ignore = "the program the fleet tests run as replicas"]
fn child_program() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap();
    let runs: usize = var("FLEET_TEST_RUNS").parse().unwrap();
    let go = PathBuf::from(var("FLEET_TEST_GO"));
    let expect_shared = var("FLEET_TEST_EXPECT_SHARED") == "1";
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = Client::from_env().unwrap();
        if expect_shared {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !client.stats().fleet.shared {
                assert!(Instant::now() < deadline, "never shared");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        println!("FLEET ready");
        let deadline = Instant::now() + WAIT;
        while !go.exists() {
            assert!(Instant::now() < deadline, "never told to go");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (mut unregistered, mut checks_failed, mut worst) = (0u64, 0u64, Duration::ZERO);
        for _ in 0..runs {
            let (registered, failed, worst_check) = one_run(&client).await;
            unregistered += u64::from(!registered);
            checks_failed += failed;
            worst = worst.max(worst_check);
        }
        assert!(client.flush(WAIT).await, "{:?}", client.stats());
        let stats = client.stats();
        let report = serde_json::json!({
            "runs": runs,
            "unregistered": unregistered,
            "checks_failed": checks_failed,
            "worst_check_ms": worst.as_millis() as u64,
            "rate_limited": stats.rate_limited,
            "fallbacks": stats.fleet.fallbacks,
            "shared": stats.fleet.shared,
        });
        println!("FLEET done {report}");
    });
}
