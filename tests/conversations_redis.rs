//! Conversations in Redis (feature `redis`, `FABRAIX_REDIS_URL`): the turns of one
//! conversation served by several processes share one run.
//!
//! The processes are this test binary run again as children (`child_program` below,
//! ignored in ordinary runs), all against one `MockServer` in the parent and one real
//! `redis-server`. Every test counts the registrations the server received.

mod redis_server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{ClientBuilder, Event, EventType};
use redis_server::RedisServer;

/// A key with a shape nothing in Redis could hold by chance.
const KEY: &str = "sk-conv-redis-SECRET-4d7e1a9c3b2f5068-do-not-store";
const AGENT: &str = "conversations-redis-support";
const CHILD: &str = "CONV_REDIS_TEST_CHILD";
/// What the SDK warns when Redis stops answering a turn.
const FALLBACK_WARNING: &str = "conversations continue from this process's memory";
/// The most any step here waits for a child.
const WAIT: Duration = Duration::from_secs(60);

async fn server() -> MockServer {
    MockServer::builder().api_key(KEY).start().await.unwrap()
}

fn registrations(server: &MockServer) -> usize {
    server.requests_to(Endpoint::RegisterAgentRun).len()
}

/// The trace ids of the events the server received, in order.
fn event_traces(server: &MockServer) -> Vec<String> {
    server
        .requests_to(Endpoint::Event)
        .iter()
        .map(|r| r.body["trace_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A child running turns of `conversation`, one per line `turn <message>` on its stdin;
/// it answers each with `trace=<id>` on its stdout, and prints the SDK's warnings there.
struct Turns {
    process: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// Every line the child printed so far.
    seen: Vec<String>,
}

impl Turns {
    fn start(server: &MockServer, redis: &RedisServer, conversation: &str) -> Self {
        Self::start_with_deadline(server, redis, conversation, Duration::from_secs(30))
    }

    /// A child whose calls (and so its first turns' locks in Redis) last `deadline`.
    fn start_with_deadline(
        server: &MockServer,
        redis: &RedisServer,
        conversation: &str,
        deadline: Duration,
    ) -> Self {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_program", "--ignored", "--nocapture"])
            .env(CHILD, "turns")
            .env(
                "CONV_REDIS_TEST_DEADLINE_MS",
                deadline.as_millis().to_string(),
            )
            .env("CONV_REDIS_TEST_CONVERSATION", conversation)
            .env("FABRAIX_BASE_URL", server.url())
            .env("FABRAIX_API_KEY", server.api_key())
            .env("FABRAIX_REDIS_URL", redis.url())
            .env_remove("FABRAIX_DISABLED")
            .env_remove("FABRAIX_SPOOL_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = process.stdin.take().unwrap();
        let stdout = process.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut turns = Self {
            process,
            stdin,
            lines,
            seen: Vec::new(),
        };
        turns.expect("ready");
        turns
    }

    /// Waits for a line starting with `prefix`; answers the rest of it.
    fn expect(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(_) => panic!("no `{prefix}` line from the child: {:#?}", self.seen),
            }
        }
    }

    /// Sends a command without waiting for its answer.
    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// One turn: the trace id its events carried.
    fn turn(&mut self, message: &str) -> String {
        self.send(&format!("turn {message}"));
        self.expect("trace=")
    }

    /// Kills the child at once (SIGKILL on Unix): whatever it was doing is left undone.
    fn kill(mut self) {
        self.process.kill().unwrap();
        self.process.wait().unwrap();
    }

    /// Ends the child; answers every line it printed.
    fn finish(mut self) -> Vec<String> {
        self.send("exit");
        self.expect("bye");
        let status = self.process.wait().unwrap();
        assert!(status.success(), "{:#?}", self.seen);
        self.seen
    }
}

fn warnings(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|l| l.contains(FALLBACK_WARNING))
        .count()
}

// Must show: 3 turns of one conversation in 3 processes are one registration, one run;
// and Redis holds neither the key nor the conversation id, every entry expiring.
#[tokio::test(flavor = "multi_thread")]
async fn three_turns_in_three_processes_are_one_run_and_redis_holds_no_secret() {
    let Some(redis) = RedisServer::start("conversations_redis::three_processes") else {
        return;
    };
    let server = server().await;
    let conversation = "alice@example.com-conversation-7731";
    let mut runs = Vec::new();
    for n in 0..3 {
        let mut process = Turns::start(&server, &redis, conversation);
        runs.push(process.turn(&format!("message {n}")));
        let lines = process.finish();
        assert_eq!(warnings(&lines), 0, "{lines:#?}");
    }
    assert_eq!(registrations(&server), 1, "{runs:?}");
    assert!(runs.iter().all(|run| *run == runs[0]), "{runs:?}");
    let events = event_traces(&server);
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|trace| *trace == runs[0]), "{events:?}");

    // What Redis holds.
    let mut redis_client = Resp::connect(redis.port());
    let keys = redis_client.strings(&["KEYS", "*"]);
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(key.starts_with("fabraix:{"), "{key}");
        let ttl = redis_client.integer(&["PTTL", key]);
        assert!(ttl > 0, "{key} expires: {ttl}");
        let value = match redis_client.bulk(&["TYPE", key]).as_str() {
            "string" => redis_client.bulk(&["GET", key]),
            other => format!("{other}: {:?}", redis_client.raw(&["DUMP", key])),
        };
        for secret in [KEY, conversation, "alice"] {
            for form in [secret.to_owned(), secret.to_ascii_uppercase()] {
                assert!(!key.contains(&form), "{key} holds {secret}");
                assert!(!value.contains(&form), "{key}'s value holds {secret}");
            }
        }
    }
    let value_key = keys
        .iter()
        .find(|k| k.contains(":conv:") && !k.ends_with(":lock"))
        .expect("the conversation's entry");
    // It expires after the idle time (30 minutes by default), from the last turn.
    let ttl = redis_client.integer(&["PTTL", value_key]);
    assert!(ttl <= 30 * 60 * 1000, "{ttl}");
    assert!(
        redis_client.bulk(&["GET", value_key]).contains(&runs[0]),
        "the entry holds the run"
    );
}

// Must show: two processes' concurrent first turns of one conversation register once.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_first_turns_in_two_processes_register_once() {
    let Some(redis) = RedisServer::start("conversations_redis::concurrent") else {
        return;
    };
    let server = server().await;
    // The first registration is slow, so the other turn arrives while it is in flight.
    server.fail_next(
        1,
        Fault::delay(Duration::from_millis(500)).on(Endpoint::RegisterAgentRun),
    );
    let conversation = "bob-concurrent-5512";
    let mut first = Turns::start(&server, &redis, conversation);
    let mut second = Turns::start(&server, &redis, conversation);
    // Both are connected and waiting: the two turns go at once.
    first.send("turn hello from one");
    second.send("turn hello from two");
    let runs = [first.expect("trace="), second.expect("trace=")];
    for process in [first, second] {
        let lines = process.finish();
        assert_eq!(warnings(&lines), 0, "{lines:#?}");
    }
    assert_eq!(registrations(&server), 1, "{runs:?}");
    assert_eq!(runs[0], runs[1]);
    let events = event_traces(&server);
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|trace| *trace == runs[0]), "{events:?}");
}

// Must show: Redis gone mid-conversation: the next turns run and succeed (continuing the
// run this process knows), with one warning.
#[tokio::test(flavor = "multi_thread")]
async fn a_conversation_goes_on_when_redis_goes_away() {
    let Some(mut redis) = RedisServer::start("conversations_redis::redis_down") else {
        return;
    };
    let server = server().await;
    let conversation = "carol-outage-0042";
    let mut process = Turns::start(&server, &redis, conversation);
    let before = process.turn("before");
    redis.kill();
    let during = process.turn("during");
    let after = process.turn("after");
    let lines = process.finish();
    assert_eq!(warnings(&lines), 1, "{lines:#?}");
    assert_eq!(registrations(&server), 1);
    assert_eq!((&during, &after), (&before, &before));
    let events = event_traces(&server);
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|trace| *trace == before), "{events:?}");
}

// A process that dies while registering leaves a lock that expires with its deadline:
// the next process's turn waits for that, then registers the run itself.
#[tokio::test(flavor = "multi_thread")]
async fn a_process_dying_mid_registration_holds_the_conversation_up_only_until_its_lock_expires() {
    let Some(redis) = RedisServer::start("conversations_redis::dead_registrar") else {
        return;
    };
    let server = server().await;
    // The first registration is never answered in time.
    server.fail_next(
        1,
        Fault::delay(Duration::from_secs(120)).on(Endpoint::RegisterAgentRun),
    );
    let conversation = "dave-dies-9001";
    let mut dying =
        Turns::start_with_deadline(&server, &redis, conversation, Duration::from_secs(2));
    dying.send("turn hello");
    let deadline = Instant::now() + WAIT;
    while registrations(&server) == 0 {
        assert!(Instant::now() < deadline, "the first turn never registered");
        std::thread::sleep(Duration::from_millis(10));
    }
    dying.kill();

    let mut next = Turns::start(&server, &redis, conversation);
    let run = next.turn("anyone there?");
    let again = next.turn("still here");
    let lines = next.finish();
    assert_eq!(warnings(&lines), 0, "{lines:#?}");
    assert_eq!(run, again);
    assert_eq!(
        registrations(&server),
        2,
        "the dead one's, then the next one's"
    );
    assert!(event_traces(&server).iter().all(|trace| *trace == run));
}

// A run older than `conversation_max_age` is replaced at the next turn, judged by the
// registration time Redis holds.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_past_its_max_age_in_redis_is_replaced() {
    const MAX_AGE: Duration = Duration::from_millis(300);
    let Some(redis) = RedisServer::start("conversations_redis::max_age") else {
        return;
    };
    let server = server().await;
    let client = server
        .client_builder()
        .redis_url(redis.url())
        .conversation_max_age(MAX_AGE)
        .build()
        .unwrap();
    let conversation = client.conversation("erin-aging");
    let turn = || async {
        conversation
            .try_run(AGENT, "You are a support assistant.", async {
                fabraix::current_trace().expect("inside the run")
            })
            .await
            .unwrap()
    };
    let first = turn().await;
    let started = Instant::now();
    let mut turns = 1;
    let replaced = loop {
        let run = turn().await;
        turns += 1;
        if run != first {
            break run;
        }
        assert!(
            started.elapsed() < WAIT,
            "never replaced after {turns} turns"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(turn().await, replaced);
    assert_eq!(registrations(&server), 2);
}

/// The smallest RESP client: commands as arrays of bulk strings, answers read back.
struct Resp {
    stream: BufReader<TcpStream>,
}

#[derive(Debug)]
enum Reply {
    Simple(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Resp {
    fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Self {
            stream: BufReader::new(stream),
        }
    }

    fn raw(&mut self, command: &[&str]) -> Reply {
        let mut out = format!("*{}\r\n", command.len()).into_bytes();
        for part in command {
            out.extend(format!("${}\r\n{part}\r\n", part.len()).bytes());
        }
        self.stream.get_mut().write_all(&out).unwrap();
        self.read()
    }

    fn read(&mut self) -> Reply {
        let mut line = String::new();
        self.stream.read_line(&mut line).unwrap();
        let line = line.trim_end();
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Simple(rest.to_owned()),
            "-" => panic!("redis error: {rest}"),
            ":" => Reply::Integer(rest.parse().unwrap()),
            "$" => {
                let len: i64 = rest.parse().unwrap();
                if len < 0 {
                    return Reply::Bulk(None);
                }
                let mut bytes = vec![0; usize::try_from(len).unwrap() + 2];
                self.stream.read_exact(&mut bytes).unwrap();
                bytes.truncate(bytes.len() - 2);
                Reply::Bulk(Some(bytes))
            }
            "*" => {
                let len: i64 = rest.parse().unwrap();
                Reply::Array((0..len.max(0)).map(|_| self.read()).collect())
            }
            other => panic!("unknown reply {other}{rest}"),
        }
    }

    fn bulk(&mut self, command: &[&str]) -> String {
        match self.raw(command) {
            Reply::Bulk(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Reply::Simple(text) => text,
            other => panic!("{command:?}: {other:?}"),
        }
    }

    fn integer(&mut self, command: &[&str]) -> i64 {
        match self.raw(command) {
            Reply::Integer(n) => n,
            other => panic!("{command:?}: {other:?}"),
        }
    }

    fn strings(&mut self, command: &[&str]) -> Vec<String> {
        match self.raw(command) {
            Reply::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Reply::Bulk(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                    other => panic!("{command:?}: {other:?}"),
                })
                .collect(),
            other => panic!("{command:?}: {other:?}"),
        }
    }
}

/// Where a child prints: its stdout, line by line, for the parent to read.
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[test]
#[ignore = "the program the conversation tests run as a child process"]
fn child_program() {
    let Ok(_role) = std::env::var(CHILD) else {
        return;
    };
    // The SDK's warnings, on stdout where the parent reads them.
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stdout)
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let conversation = std::env::var("CONV_REDIS_TEST_CONVERSATION").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline: u64 = std::env::var("CONV_REDIS_TEST_DEADLINE_MS")
        .unwrap()
        .parse()
        .unwrap();
    let client = ClientBuilder::from_env()
        .deadline(Duration::from_millis(deadline))
        .build()
        .unwrap();
    print_line("ready");
    for line in std::io::stdin().lines() {
        let line = line.unwrap();
        if line == "exit" {
            break;
        }
        let Some(message) = line.strip_prefix("turn ") else {
            continue;
        };
        let trace = runtime.block_on(async {
            client
                .conversation(&conversation)
                .try_run(AGENT, "You are a support assistant.", async {
                    let trace = fabraix::current_trace().expect("inside the run");
                    fabraix::log_event(Event::text(EventType::User, message)).unwrap();
                    trace
                })
                .await
                .unwrap()
        });
        assert!(runtime.block_on(client.flush(WAIT)));
        print_line(&format!("trace={}", trace.trace_id()));
    }
    print_line("bye");
}
