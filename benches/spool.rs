//! What the spool (feature `spool`) costs and delivers, against a loopback MockServer:
//! `log_event` with and without a spool (median and p99, measured alternately in one
//! run), how fast events are written to disk (while the key is throttled, and past the
//! queue's capacity), and how fast a later process replays a backlog next to how fast the
//! exporter sends fresh events. Figures: BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench spool --features spool
//! ```
//!
//! The backlog is left by this binary run again as a child process, so that its file is
//! released by a real process exit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fabraix::testing::MockServer;
use fabraix::{AgentId, Client, ClientBuilder, Event, EventType};

const CHILD: &str = "FABRAIX_SPOOL_BENCH_CHILD";
const BACKLOG: usize = 20_000;

fn main() {
    if let Ok(folder) = std::env::var(CHILD) {
        return leave_backlog(Path::new(&folder));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        log_event_cost().await;
        disk_writes().await;
        replay().await;
    });
}

fn folder(name: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("fabraix-spool-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).expect("a folder");
    path
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `fabraix::log_event` inside a run, each call timed on its own, in alternating rounds:
/// without a spool, with one (events delivered as they come: none is due for the disk),
/// and with one while the key is throttled (every event is written, and past the
/// capacity goes to disk only), the exporters working meanwhile.
async fn log_event_cost() {
    const ROUNDS: usize = 15;
    const CALLS: usize = 2_000;
    let server = MockServer::start().await.expect("a server");
    let (dir, throttled_dir) = (folder("log-event"), folder("log-event-throttled"));
    let plain = server.client();
    let spooled = server
        .client_builder()
        .spool_dir(&dir)
        .build()
        .expect("a client");
    let throttled = server
        .client_builder()
        .rate_limit("1/h".parse().expect("a limit"))
        .spool_dir(&throttled_dir)
        .build()
        .expect("a client");
    let clients = [&plain, &spooled, &throttled];
    let mut samples: [Vec<u64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut traces = Vec::new();
    for client in clients {
        traces.push(
            client
                .register_agent_run(AgentId::from_name("bench").expect("a name"), "p")
                .await
                .expect("registered"),
        );
    }
    for round in 0..ROUNDS * 3 {
        let which = round % 3;
        let times = fabraix::scope(traces[which], async {
            let mut times = Vec::with_capacity(CALLS);
            for _ in 0..CALLS {
                let event = Event::text(EventType::Tool, "looked the order up");
                let start = Instant::now();
                let logged = fabraix::log_event(event);
                times.push(start.elapsed().as_nanos() as u64);
                logged.expect("queued");
            }
            times
        })
        .await;
        // Warm-up rounds (the first of each) are not counted.
        if round >= 3 {
            samples[which].extend(times);
        }
        if which < 2 {
            assert!(clients[which].flush(Duration::from_secs(120)).await);
        } else {
            // Nothing leaves: give the spool's thread the time a flush gives the others.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut figures = Vec::new();
    let names = ["without a spool", "with a spool", "spool, throttled"];
    for (name, mut times) in names.into_iter().zip(samples) {
        times.sort_unstable();
        let (median, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        println!(
            "log_event/{name:<16} {} calls: median {median} ns, p99 {p99} ns",
            times.len()
        );
        figures.push((median, p99));
    }
    for (which, name) in [(1, "with a spool"), (2, "spool, throttled")] {
        println!(
            "log_event/ratio            {name} / without: median {:.2}x, p99 {:.2}x",
            figures[which].0 as f64 / figures[0].0 as f64,
            figures[which].1 as f64 / figures[0].1 as f64
        );
    }
    for (client, name) in [(&spooled, "with a spool"), (&throttled, "spool, throttled")] {
        let stats = client.stats().events;
        println!(
            "log_event/disk             {name}: {} of {} events written to disk, {} past the capacity to disk only",
            stats.spooled, stats.queued, stats.spilled
        );
    }
    drop((spooled, throttled));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&throttled_dir);
}

/// Events written per second while the key is throttled (nothing leaves): all of them
/// held in memory and written behind, then with a queue of 1,000 (the rest go to disk
/// only, as they arrive).
async fn disk_writes() {
    const EVENTS: usize = 50_000;
    let server = MockServer::start().await.expect("a server");
    for (name, capacity) in [("written behind", EVENTS * 2), ("past the capacity", 1_000)] {
        let dir = folder("writes");
        let client = server
            .client_builder()
            .rate_limit("1/h".parse().expect("a limit"))
            .queue_capacity(capacity)
            .spool_dir(&dir)
            .spool_write_behind(Duration::from_millis(100))
            .build()
            .expect("a client");
        let trace = client
            .register_agent_run(AgentId::from_name("bench").expect("a name"), "p")
            .await
            .expect("registered");
        let start = Instant::now();
        let mut refused = 0;
        for n in 0..EVENTS {
            // A burst faster than the disk past the capacity is refused: wait, as a
            // producer of a sustained stream would, and count it.
            while let Err(error) = client.queue_event(
                trace.trace_id(),
                Event::text(EventType::Tool, format!("event {n}")),
            ) {
                assert!(matches!(error, fabraix::Error::QueueFull), "{error}");
                refused += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let logged = start.elapsed();
        while client.stats().events.spooled < EVENTS as u64 {
            assert!(start.elapsed() < Duration::from_secs(300), "written");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let written = start.elapsed();
        let bytes: u64 = std::fs::read_dir(&dir)
            .expect("the folder")
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        println!(
            "disk/{name:<18} {EVENTS} events logged in {:.0} ms ({refused} refusals waited out), all on disk after {:.0} ms: {:.0} events/s; folder {:.1} MiB",
            logged.as_secs_f64() * 1e3,
            written.as_secs_f64() * 1e3,
            EVENTS as f64 / written.as_secs_f64(),
            bytes as f64 / (1024.0 * 1024.0)
        );
        drop(client);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A process leaves `BACKLOG` events on disk (throttled) and exits; a new client on the
/// folder sends them. Next to it: the same number of fresh events through a plain client.
async fn replay() {
    let server = MockServer::start().await.expect("a server");
    let dir = folder("replay");
    let status = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .env(CHILD, &dir)
        .env("FABRAIX_BASE_URL", server.url())
        .env("FABRAIX_API_KEY", server.api_key())
        .status()
        .expect("the child");
    assert!(status.success());
    server.clear_requests();

    let start = Instant::now();
    let client = server
        .client_builder()
        .max_in_flight(64)
        .spool_dir(&dir)
        .build()
        .expect("a client");
    assert!(client.flush(Duration::from_secs(600)).await);
    let replayed = start.elapsed();
    let stats = client.stats().events;
    assert_eq!(stats.recovered, stats.sent);
    assert!(stats.recovered + 10 >= BACKLOG as u64, "{stats:?}");
    let backlog = stats.recovered as usize;
    drop(client);

    server.clear_requests();
    let fresh = server
        .client_builder()
        .max_in_flight(64)
        .queue_capacity(BACKLOG)
        .build()
        .expect("a client");
    let traces = register(&fresh, 100).await;
    let start = Instant::now();
    for n in 0..BACKLOG {
        fresh
            .queue_event(
                traces[n % traces.len()],
                Event::text(EventType::Tool, format!("event {n}")),
            )
            .expect("queued");
    }
    assert!(fresh.flush(Duration::from_secs(600)).await);
    let sent = start.elapsed();
    let (replay_rate, fresh_rate) = (
        backlog as f64 / replayed.as_secs_f64(),
        BACKLOG as f64 / sent.as_secs_f64(),
    );
    println!(
        "replay/backlog             {backlog} events over 100 runs left by a process: sent by the next in {:.2} s, {replay_rate:.0} events/s",
        replayed.as_secs_f64()
    );
    println!(
        "replay/fresh               the same number queued and sent by a client without a spool: {:.2} s, {fresh_rate:.0} events/s",
        sent.as_secs_f64()
    );
    println!(
        "replay/ratio               replay / fresh = {:.2}x",
        replay_rate / fresh_rate
    );
    let _ = std::fs::remove_dir_all(&dir);
}

async fn register(client: &Client, runs: usize) -> Vec<fabraix::TraceId> {
    let mut traces = Vec::new();
    for _ in 0..runs {
        let trace = client
            .register_agent_run(AgentId::from_name("bench").expect("a name"), "p")
            .await
            .expect("registered");
        traces.push(trace.trace_id());
    }
    traces
}

/// The child: a throttled client logs `BACKLOG` events over 100 runs and exits.
fn leave_backlog(dir: &Path) {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let client = ClientBuilder::from_env()
        // Room for the registrations only: events keep to what leaves a fifth free.
        .rate_limit("105/h".parse().expect("a limit"))
        .queue_capacity(BACKLOG)
        .shutdown_timeout(Duration::from_millis(100))
        .spool_dir(dir)
        .build()
        .expect("a client");
    let guard = fabraix::init(client.clone()).expect("the global client");
    let traces = rt.block_on(register(&client, 100));
    for n in 0..BACKLOG {
        client
            .queue_event(
                traces[n % traces.len()],
                Event::text(EventType::Tool, format!("event {n}")),
            )
            .expect("queued");
    }
    drop(guard);
}
