//! The spool (feature `spool`): events that outlive the process.
//!
//! The processes that leave a backlog are this test binary run again as a child
//! (`child_program` below, ignored in ordinary runs), so that their exits, clean or by
//! SIGKILL, are real. The process that sends the rest is either a client built in this
//! process on the same folder, or the `fabraix-spool drain` command.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fabraix::testing::{Endpoint, MockServer, RecordedRequest};
use fabraix::{AgentId, Client, ClientBuilder, Event, EventType};

/// A key with a shape no other byte sequence in a spool file could have by chance.
const KEY: &str = "sk-spool-SECRET-7f3c9e1b5d2a4086-do-not-store";
const OTHER_KEY: &str = "sk-spool-OTHER-0a1b2c3d4e5f6789-do-not-store";
const CHILD: &str = "SPOOL_TEST_CHILD";
const WAIT: Duration = Duration::from_secs(120);

/// A folder of its own, removed at the end unless the test failed.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "fabraix-spool-test-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Every file in the folder, with its bytes.
    fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap_or_default();
                (path, bytes)
            })
            .collect()
    }

    /// The spool files proper (not SQLite's `-wal` and `-shm`, not the ones set aside).
    fn spools(&self) -> Vec<PathBuf> {
        self.files()
            .into_iter()
            .map(|(path, _)| path)
            .filter(|p| p.extension().is_some_and(|e| e == "spool"))
            .collect()
    }

    /// No file of the spool holds the key, in any form a file could hold it.
    fn assert_no_key(&self, key: &str) {
        let files = self.files();
        for (path, bytes) in &files {
            for form in [key.to_owned(), key.to_ascii_uppercase()] {
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_bytes()),
                    "{} holds the api key",
                    path.display()
                );
            }
        }
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// What a child does, passed through the environment.
#[derive(Clone)]
struct Job {
    role: &'static str,
    events: usize,
    rate_limit: &'static str,
    shutdown_ms: u64,
    name: &'static str,
}

impl Job {
    fn log(events: usize, rate_limit: &'static str) -> Self {
        Self {
            role: "log",
            events,
            rate_limit,
            shutdown_ms: 10_000,
            name: "spooled-agent",
        }
    }
}

fn child(server: &MockServer, folder: &Folder, job: &Job) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "child_program", "--ignored", "--nocapture"])
        .env(CHILD, job.role)
        .env("SPOOL_TEST_EVENTS", job.events.to_string())
        .env("SPOOL_TEST_SHUTDOWN_MS", job.shutdown_ms.to_string())
        .env("SPOOL_TEST_NAME", job.name)
        .env("FABRAIX_BASE_URL", server.url())
        .env("FABRAIX_API_KEY", server.api_key())
        .env("FABRAIX_RATE_LIMIT", job.rate_limit)
        .env("FABRAIX_SPOOL_DIR", folder.path())
        .env_remove("FABRAIX_DISABLED")
        .stdout(Stdio::piped());
    command
}

/// Runs a child to its exit.
fn run(server: &MockServer, folder: &Folder, job: &Job) {
    let output = child(server, folder, job).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// Starts a child and waits for its "logged" line (every event handed to `log_event`).
fn start(server: &MockServer, folder: &Folder, job: &Job) -> (Child, Instant) {
    let mut process = child(server, folder, job).spawn().unwrap();
    let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("logged") => break,
            Some(Ok(_)) => continue,
            _ => panic!("the child ended before logging"),
        }
    }
    let logged_at = Instant::now();
    // Whatever it prints later must find a reader.
    std::thread::spawn(move || lines.for_each(drop));
    (process, logged_at)
}

/// Runs `fabraix-spool drain` on `folder` against `server`.
fn drain(server: &MockServer, key: &str, folder: &Folder, rate_limit: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_fabraix-spool"))
        .args(["drain", "--timeout", "120", "--dir"])
        .arg(folder.path())
        .env("FABRAIX_BASE_URL", server.url())
        .env("FABRAIX_API_KEY", key)
        .env("FABRAIX_RATE_LIMIT", rate_limit)
        .env_remove("FABRAIX_SPOOL_DIR")
        .env_remove("FABRAIX_DISABLED")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The texts of the events the server accepted (200), in the order it received them.
fn delivered(server: &MockServer) -> Vec<String> {
    server
        .requests_to(Endpoint::Event)
        .iter()
        .filter(|r| r.response.as_ref().is_some_and(|a| a.status == 200))
        .map(text)
        .collect()
}

fn text(request: &RecordedRequest) -> String {
    let content: serde_json::Value =
        serde_json::from_str(request.body["content"].as_str().unwrap()).unwrap();
    content["text"].as_str().unwrap().to_owned()
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// How often each text arrived.
fn tally(texts: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for text in texts {
        *counts.entry(text.as_str()).or_default() += 1;
    }
    counts
}

async fn server(limit: Option<&str>) -> MockServer {
    let mut builder = MockServer::builder().api_key(KEY);
    if let Some(limit) = limit {
        builder = builder.rate_limit(limit.parse().unwrap());
    }
    builder.start().await.unwrap()
}

// Must show: 150 events under a 30-per-10 s limit, clean exit: all delivered by the next
// process, in order, none lost (the scenario that lost 61% without a spool).
#[tokio::test(flavor = "multi_thread")]
async fn a_clean_exit_with_a_throttled_backlog_loses_nothing() {
    let server = server(Some("30/10s")).await;
    let folder = Folder::new("clean-exit");
    run(&server, &folder, &Job::log(150, "30/10s"));
    let by_first = delivered(&server).len();
    assert!(by_first < 150, "the first process could not send them all");
    assert!(!folder.spools().is_empty(), "the rest is on disk");
    folder.assert_no_key(KEY);

    let report = drain(&server, KEY, &folder, "30/10s");
    let all = delivered(&server);
    assert_eq!(all, numbered("e", 150), "{report}");
    assert!(folder.spools().is_empty(), "delivered means deleted");
    folder.assert_no_key(KEY);
}

// Must show: SIGKILL 2 s after 600 events were logged: all delivered by the next.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_loses_nothing_logged_a_write_behind_interval_before() {
    let server = server(None).await;
    let folder = Folder::new("sigkill");
    let mut job = Job::log(600, "10/s");
    job.role = "log-and-hang";
    let (mut process, logged_at) = start(&server, &folder, &job);
    // Two write-behind intervals, so that everything logged is on disk.
    std::thread::sleep(Duration::from_secs(2).saturating_sub(logged_at.elapsed()));
    process.kill().unwrap(); // SIGKILL on Unix
    process.wait().unwrap();
    let by_first = delivered(&server);
    assert!(by_first.len() < 600, "the first process was throttled");
    folder.assert_no_key(KEY);

    let report = drain(&server, KEY, &folder, "off");
    let all = delivered(&server);
    let counts = tally(&all);
    for expected in numbered("e", 600) {
        assert!(
            counts.contains_key(expected.as_str()),
            "{expected} lost: {report}"
        );
    }
    // At least once: what was in flight at the kill may come twice, nothing else.
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.len() <= 2, "{twice:?}");
    // The next process sends in order.
    let next: Vec<usize> = all[by_first.len()..]
        .iter()
        .map(|t| t[1..].parse().unwrap())
        .collect();
    assert!(next.windows(2).all(|w| w[0] < w[1]), "{next:?}");
    assert!(folder.spools().is_empty());
}

// Must show: 1,000 events into a queue of 100: none refused, all delivered.
#[tokio::test(flavor = "multi_thread")]
async fn more_events_than_the_queue_holds_go_to_disk_not_away() {
    let server = server(None).await;
    let folder = Folder::new("overflow");
    let client = server
        .client_builder()
        .queue_capacity(100)
        .spool_dir(folder.path())
        .build()
        .unwrap();
    let trace = client
        .register_agent_run(AgentId::from_name("overflow").unwrap(), "p")
        .await
        .unwrap();
    for n in 0..1000 {
        client
            .queue_event(
                trace.trace_id(),
                Event::text(EventType::Tool, format!("e{n}")),
            )
            .expect("never refused");
    }
    assert!(client.flush(WAIT).await);
    assert_eq!(delivered(&server), numbered("e", 1000));
    let stats = client.stats().events;
    assert_eq!((stats.dropped, stats.sent, stats.in_queue), (0, 1000, 0));
    assert!(stats.spilled > 0, "{stats:?}");
}

// A client built on a spool with a backlog sends it from the start, in the background,
// alongside its own events; `flush` covers both.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_client_sends_the_backlog_alongside_its_own() {
    let server = server(None).await;
    let folder = Folder::new("alongside");
    let mut job = Job::log(40, "1/h");
    job.shutdown_ms = 300;
    run(&server, &folder, &job);
    assert_eq!(delivered(&server), Vec::<String>::new());

    let client = server
        .client_builder()
        .spool_dir(folder.path())
        .build()
        .unwrap();
    let trace = client
        .register_agent_run(AgentId::from_name("new").unwrap(), "p")
        .await
        .unwrap();
    for n in 0..10 {
        client
            .queue_event(
                trace.trace_id(),
                Event::text(EventType::Tool, format!("own{n}")),
            )
            .unwrap();
    }
    assert!(client.flush(WAIT).await);
    let all = delivered(&server);
    let old: Vec<String> = all.iter().filter(|t| t.starts_with('e')).cloned().collect();
    let own: Vec<String> = all
        .iter()
        .filter(|t| t.starts_with("own"))
        .cloned()
        .collect();
    assert_eq!(old, numbered("e", 40));
    assert_eq!(own, numbered("own", 10));
    let stats = client.stats().events;
    assert_eq!((stats.recovered, stats.sent, stats.in_queue), (40, 50, 0));
    assert!(
        folder.spools().len() <= 1,
        "only this client's own file is left"
    );
}

// Must show: a corrupt spool: the next process runs and delivers its own events.
#[tokio::test(flavor = "multi_thread")]
async fn a_garbage_or_truncated_spool_is_set_aside_and_the_next_client_runs() {
    for damage in ["garbage", "truncated"] {
        let server = server(None).await;
        let folder = Folder::new(damage);
        let mut job = Job::log(200, "1/h");
        job.shutdown_ms = 300;
        run(&server, &folder, &job);
        let spools = folder.spools();
        assert_eq!(spools.len(), 1, "{damage}");
        let bytes = std::fs::read(&spools[0]).unwrap();
        let damaged = match damage {
            "garbage" => b"\x00\xffnot a database at all".repeat(bytes.len() / 20 + 1),
            _ => bytes[..bytes.len() / 2].to_vec(),
        };
        std::fs::write(&spools[0], damaged).unwrap();

        let client = server
            .client_builder()
            .spool_dir(folder.path())
            .build()
            .unwrap();
        let trace = client
            .register_agent_run(AgentId::from_name("after-damage").unwrap(), "p")
            .await
            .unwrap();
        for n in 0..20 {
            client
                .queue_event(
                    trace.trace_id(),
                    Event::text(EventType::Tool, format!("own{n}")),
                )
                .unwrap();
        }
        assert!(client.flush(WAIT).await, "{damage}");
        let own: Vec<String> = delivered(&server)
            .into_iter()
            .filter(|t| t.starts_with("own"))
            .collect();
        assert_eq!(own, numbered("own", 20), "{damage}");
        let stats = client.stats().events;
        assert_eq!(stats.in_queue, 0, "{damage}: {stats:?}");
        let set_aside = folder
            .files()
            .iter()
            .any(|(p, _)| p.to_string_lossy().contains(".damaged-"));
        assert!(
            stats.recovered + stats.spool_damaged > 0 || set_aside,
            "{damage}: the damage was noticed: {stats:?}"
        );
        if damage == "garbage" {
            assert!(set_aside && stats.spool_set_aside == 1, "{stats:?}");
        }
        folder.assert_no_key(KEY);
    }
}

// Several processes, one folder: each writes its own file, and a live process's file is
// never taken over, so no event is sent twice.
#[tokio::test(flavor = "multi_thread")]
async fn two_live_processes_on_one_folder_never_send_one_event_twice() {
    let server = server(None).await;
    let folder = Folder::new("two-live");
    let mut a = Job::log(40, "8/s");
    a.role = "log-and-linger";
    a.name = "agent-a";
    let mut b = a.clone();
    b.name = "agent-b";
    let (first, _) = start(&server, &folder, &a);
    // The first one's file exists (written behind within a second) while it still sends.
    std::thread::sleep(Duration::from_millis(1500));
    let (second, _) = start(&server, &folder, &b);
    for mut process in [first, second] {
        assert!(process.wait().unwrap().success());
    }
    let all = delivered(&server);
    let counts = tally(&all);
    assert_eq!(all.len(), 80, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    assert!(folder.spools().is_empty());
}

// A file is taken over once its writer is gone, also by a process already running.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_running_client_takes_over_the_file_of_a_process_that_died() {
    let server = server(None).await;
    let folder = Folder::new("takeover-live");
    let client = server
        .client_builder()
        .spool_dir(folder.path())
        .build()
        .unwrap();
    let mut job = Job::log(30, "1/h");
    job.role = "log-and-hang";
    let (mut process, _) = start(&server, &folder, &job);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(client.stats().events.recovered, 0, "its writer is alive");
    process.kill().unwrap();
    process.wait().unwrap();
    // The folder is searched again every 10 s.
    let deadline = Instant::now() + Duration::from_secs(40);
    while delivered(&server).len() < 30 {
        assert!(Instant::now() < deadline, "{:?}", client.stats().events);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered(&server), numbered("e", 30));
    assert_eq!(client.stats().events.recovered, 30);
}

// Keys: a client sends only its own key's events; another key's spool is left alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_of_another_key_leaves_the_spool_alone() {
    let first = server(None).await;
    let folder = Folder::new("keys");
    let mut job = Job::log(25, "1/h");
    job.shutdown_ms = 300;
    run(&first, &folder, &job);

    let other = MockServer::builder()
        .api_key(OTHER_KEY)
        .start()
        .await
        .unwrap();
    let client = other
        .client_builder()
        .spool_dir(folder.path())
        .build()
        .unwrap();
    let trace = client
        .register_agent_run(AgentId::from_name("other").unwrap(), "p")
        .await
        .unwrap();
    client
        .queue_event(trace.trace_id(), Event::text(EventType::Tool, "other"))
        .unwrap();
    assert!(client.flush(WAIT).await);
    assert_eq!(delivered(&other), ["other"]);
    assert!(
        other
            .requests_to(Endpoint::Event)
            .iter()
            .all(|r| r.authenticated)
    );
    assert_eq!(client.stats().events.recovered, 0);
    folder.assert_no_key(KEY);
    folder.assert_no_key(OTHER_KEY);

    let report = drain(&first, KEY, &folder, "off");
    assert_eq!(delivered(&first), numbered("e", 25), "{report}");
}

// Bounds: past the size cap the oldest events are dropped, counted; past the age cap, too.
#[tokio::test(flavor = "multi_thread")]
async fn the_caps_drop_the_oldest_and_count_them() {
    let server = server(None).await;
    let folder = Folder::new("caps");
    let mut job = Job::log(200, "1/h");
    job.role = "log-capped";
    job.shutdown_ms = 1_500;
    let output = child(&server, &folder, &job).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let dropped: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("spool_dropped="))
        .and_then(|n| n.trim().parse().ok())
        .expect("the child's count");
    assert!(dropped > 0 && dropped < 200, "{stdout}");

    drain(&server, KEY, &folder, "off");
    let all = delivered(&server);
    // What is left is the newest: a suffix of what was logged, in order. (The oldest
    // event, waiting for the budget when the cap took it from disk, stayed in memory.)
    let logged = numbered("e", 200);
    let left = 200 - dropped;
    assert!(
        all.len() as u64 == left || all.len() as u64 + 1 == left,
        "{stdout}: {all:?}"
    );
    assert_eq!(all, logged[logged.len() - all.len()..]);

    // The age cap: everything left by a process is older than a millisecond.
    let folder = Folder::new("age");
    let mut job = Job::log(15, "1/h");
    job.shutdown_ms = 300;
    run(&server, &folder, &job);
    server.clear_requests();
    let client = server
        .client_builder()
        .spool_dir(folder.path())
        .spool_max_age(Duration::from_millis(1))
        .build()
        .unwrap();
    assert!(client.flush(WAIT).await);
    let stats = client.stats().events;
    assert_eq!(
        (stats.recovered, stats.spool_dropped, stats.in_queue),
        (15, 15, 0)
    );
    assert!(delivered(&server).is_empty());
}

// A cap of zero is a configuration error, not a spool that drops everything.
#[test]
fn spool_caps_of_zero_are_refused() {
    let folder = Folder::new("settings");
    for builder in [
        ClientBuilder::new().spool_max_bytes(0),
        ClientBuilder::new().spool_max_age(Duration::ZERO),
    ] {
        let error = builder
            .api_key("k")
            .base_url("http://127.0.0.1:9/v1")
            .spool_dir(folder.path())
            .build()
            .unwrap_err();
        assert!(
            matches!(&error, fabraix::Error::Config(m) if m.contains("spool_max")),
            "{error}"
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn log_events(job_events: usize, name: &str) -> Client {
    let client = fabraix::global_client().unwrap().clone();
    let trace = client
        .register_agent_run(AgentId::from_name(name).unwrap(), "You log and exit.")
        .await
        .unwrap();
    let prefix = if name == "agent-b" {
        "b"
    } else if name == "agent-a" {
        "a"
    } else {
        "e"
    };
    for n in 0..job_events {
        client
            .queue_event(
                trace.trace_id(),
                Event::text(EventType::Tool, format!("{prefix}{n}")),
            )
            .unwrap();
    }
    client
}

#[test]
#[ignore = "the program the spool tests run as a child process"]
fn child_program() {
    let Ok(role) = std::env::var(CHILD) else {
        return;
    };
    let events: usize = std::env::var("SPOOL_TEST_EVENTS").unwrap().parse().unwrap();
    let shutdown_ms: u64 = std::env::var("SPOOL_TEST_SHUTDOWN_MS")
        .unwrap()
        .parse()
        .unwrap();
    let name = std::env::var("SPOOL_TEST_NAME").unwrap();
    let mut builder =
        ClientBuilder::from_env().shutdown_timeout(Duration::from_millis(shutdown_ms));
    if role == "log-capped" {
        // Each event about 1 KiB on disk: about 60 fit.
        builder = builder.spool_max_bytes(60 * 1024);
    }
    let guard = fabraix::init(builder.build().unwrap()).unwrap();
    let client = if role == "log-capped" {
        let client = fabraix::global_client().unwrap().clone();
        let trace = client
            .register_agent_run_blocking(AgentId::from_name(&name).unwrap(), "p")
            .unwrap();
        let padding = "p".repeat(1000);
        for n in 0..events {
            client
                .queue_event(
                    trace.trace_id(),
                    Event::json(
                        EventType::Tool,
                        &serde_json::json!({ "text": format!("e{n}"), "padding": padding }),
                        serde_json::json!({ "type": "object" }),
                    )
                    .unwrap(),
                )
                .unwrap();
        }
        client
    } else {
        log_events(events, &name)
    };
    println!("logged");
    match role.as_str() {
        "log-and-hang" => loop {
            std::thread::sleep(Duration::from_secs(60));
        },
        "log-capped" => {
            // Past the write-behind interval, the batch is written and the cap applied.
            let deadline = Instant::now() + Duration::from_secs(30);
            while client.stats().events.spool_dropped == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(guard);
            println!("spool_dropped={}", client.stats().events.spool_dropped);
        }
        "log-and-linger" => {
            // Exits once its own events are all sent, with the guard's long timeout.
            let _ = guard.flush();
            drop(guard);
        }
        _ => drop(guard),
    }
}
