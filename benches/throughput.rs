//! Throughput and scale, against a loopback MockServer: events delivered per second by the
//! exporter (one request per event) next to sequential awaited POSTs, and 10,000
//! concurrent agent runs (wall time, peak memory). Figures: BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench throughput --all-features
//! ```
//!
//! For the memory figure the server runs in a child process (this binary, re-executed),
//! so the peak resident set measured is the agent's alone.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fabraix::testing::MockServer;
use fabraix::{AgentId, Client, Event, EventType};

const CHILD: &str = "FABRAIX_BENCH_SERVER";

fn main() {
    if std::env::var_os(CHILD).is_some() {
        return serve_until_stdin_closes();
    }
    // `cargo bench` passes `--bench`; any other argument picks one part.
    let part: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match part.as_deref() {
        Some("events") => rt.block_on(events_per_second()),
        Some("runs") => rt.block_on(concurrent_runs(10_000)),
        _ => {
            // Each part in a process of its own, so that one's memory is not the other's peak.
            for part in ["events", "runs"] {
                let status = Command::new(std::env::current_exe().expect("this binary"))
                    .arg(part)
                    .status()
                    .expect("a part");
                assert!(status.success(), "{part} failed");
            }
        }
    }
}

async fn events_per_second() {
    const EVENTS: usize = 20_000;
    const TRACES: usize = 100;
    const ONE_RUN_EVENTS: usize = 1_000;
    const ONE_RUN_ROUNDS: usize = 7;
    let server = MockServer::start().await.expect("a server");
    let client = server
        .client_builder()
        .queue_capacity(EVENTS * 2)
        .max_in_flight(64)
        .build()
        .expect("a client");
    let mut traces = Vec::new();
    for _ in 0..TRACES {
        traces.push(
            client
                .register_agent_run(AgentId::from_name("throughput").expect("a name"), "p")
                .await
                .expect("registered"),
        );
    }
    // Warm the connection pool.
    for trace in &traces {
        client
            .queue_event(trace.trace_id(), Event::text(EventType::System, "warm"))
            .expect("queued");
    }
    assert!(client.flush(Duration::from_secs(60)).await);
    server.clear_requests();

    let start = Instant::now();
    for i in 0..EVENTS {
        let trace = &traces[i % TRACES];
        client
            .queue_event(trace.trace_id(), Event::text(EventType::ModelOutput, "ok"))
            .expect("queued");
    }
    let queued = start.elapsed();
    assert!(client.flush(Duration::from_secs(300)).await, "flushed");
    let exporter = start.elapsed();
    let delivered = server.requests().len();
    assert_eq!(delivered, EVENTS);
    let exporter_rate = EVENTS as f64 / exporter.as_secs_f64();

    // One trace: its events go one at a time, in order. Each round is short and the
    // machine noisy, so the figure is the median of several rounds.
    let one = &traces[0];
    let mut one_trace_rates = Vec::new();
    for _ in 0..ONE_RUN_ROUNDS {
        server.clear_requests();
        let start = Instant::now();
        for _ in 0..ONE_RUN_EVENTS {
            client
                .queue_event(one.trace_id(), Event::text(EventType::ModelOutput, "ok"))
                .expect("queued");
        }
        assert!(client.flush(Duration::from_secs(300)).await);
        one_trace_rates.push(ONE_RUN_EVENTS as f64 / start.elapsed().as_secs_f64());
    }
    one_trace_rates.sort_by(f64::total_cmp);
    let one_trace_rate = one_trace_rates[ONE_RUN_ROUNDS / 2];

    // The baseline: the same events as sequential awaited POSTs.
    server.clear_requests();
    let sequential = 2_000;
    let start = Instant::now();
    for i in 0..sequential {
        let trace = &traces[i % TRACES];
        client
            .send_event(trace.trace_id(), &Event::text(EventType::ModelOutput, "ok"))
            .await
            .expect("sent");
    }
    let sequential_rate = sequential as f64 / start.elapsed().as_secs_f64();

    println!(
        "events/exporter     {EVENTS} events over {TRACES} runs: {exporter_rate:.0} events/s delivered (queueing took {:.1} ms, {:.0} ns/event)",
        queued.as_secs_f64() * 1e3,
        queued.as_nanos() as f64 / EVENTS as f64
    );
    println!(
        "events/one-run      {ONE_RUN_EVENTS} events of one run (sent in order, one at a time), median of {ONE_RUN_ROUNDS} rounds: {one_trace_rate:.0} events/s (rounds {:.0}-{:.0})",
        one_trace_rates[0],
        one_trace_rates[ONE_RUN_ROUNDS - 1]
    );
    println!(
        "events/sequential   {sequential} awaited Client::send_event calls: {sequential_rate:.0} events/s"
    );
    println!(
        "events/ratio        exporter / sequential = {:.1}x",
        exporter_rate / sequential_rate
    );

    // Idle: everything delivered, the exporter parked, the client alive. Neither the SDK's
    // thread nor the process should use any CPU (the kernel counts it in 10 ms ticks).
    let (sdk, process) = (cpu_ticks(Some("fabraix-io")), cpu_ticks(None));
    tokio::time::sleep(Duration::from_secs(10)).await;
    println!(
        "idle                10 s with a live client and nothing to send: {} CPU ticks on the SDK's thread, {} in the whole process",
        cpu_ticks(Some("fabraix-io")) - sdk,
        cpu_ticks(None) - process,
    );
    drop(client);
}

/// User and system CPU time, in clock ticks, of the thread named `thread` (or of the
/// whole process), from `/proc`.
fn cpu_ticks(thread: Option<&str>) -> u64 {
    let stat = |path: std::path::PathBuf| -> u64 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // Fields after the command name (which may hold spaces) closed by `)`.
        let fields: Vec<&str> = text
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| {
            fields
                .get(n)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after `)`.
        field(11) + field(12)
    };
    match thread {
        None => stat("/proc/self/stat".into()),
        Some(name) => std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|comm| comm.trim() == name)
            })
            .map(|task| stat(task.path().join("stat")))
            .sum(),
    }
}

async fn concurrent_runs(runs: usize) {
    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server process");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = lines.next().expect("a url line").expect("a url");
    let key = lines.next().expect("a key line").expect("a key");

    let client = Client::builder()
        .api_key(key)
        .base_url(url)
        .queue_capacity(runs * 4)
        .build()
        .expect("a client");
    let before = peak_rss_kib();

    #[fabraix::agent(id = "scale", system_prompt = "You are one of many.", client = &client)]
    async fn run(client: Client, n: usize) -> bool {
        let _ = &client;
        let mine = fabraix::current_trace();
        fabraix::log_event(Event::text(EventType::User, "hello")).expect("queued");
        tokio::task::yield_now().await;
        fabraix::log_event(Event::text(EventType::ModelOutput, "hi")).expect("queued");
        let _ = n;
        mine.is_some() && fabraix::current_trace() == mine
    }

    let start = Instant::now();
    let handles: Vec<_> = (0..runs)
        .map(|n| tokio::spawn(run(client.clone(), n)))
        .collect();
    let mut ok = 0;
    for handle in handles {
        ok += usize::from(handle.await.expect("joined"));
    }
    let wall = start.elapsed();
    let after = peak_rss_kib();
    assert_eq!(ok, runs);
    println!(
        "runs/concurrent     {runs} concurrent agent runs (register + 2 events + flush each): {:.2} s wall, {:.0} runs/s",
        wall.as_secs_f64(),
        runs as f64 / wall.as_secs_f64()
    );
    println!(
        "runs/memory         peak RSS {:.1} MiB (before the runs: {:.1} MiB)",
        after as f64 / 1024.0,
        before as f64 / 1024.0
    );
    drop(child.stdin.take());
    let _ = child.wait();
}

fn peak_rss_kib() -> u64 {
    let mut status = String::new();
    let _ =
        std::fs::File::open("/proc/self/status").and_then(|mut f| f.read_to_string(&mut status));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn serve_until_stdin_closes() {
    let server = MockServer::start_blocking().expect("a server");
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", server.url());
    let _ = writeln!(out, "{}", server.api_key());
    let _ = out.flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
