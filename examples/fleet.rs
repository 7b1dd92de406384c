//! Replicas that share one key through Redis (feature `redis`): N copies of this program,
//! each a replica of an agent service carrying its share of 32 runs (a registration, five
//! events, two checks each), against one MockServer that enforces the key's limit of 20
//! requests a second. Each prints what it met; the summary says how many 429s the key got.
//!
//! ```text
//! cargo run --example fleet --features redis                    # 4 replicas, one Redis
//! cargo run --example fleet --features redis -- --replicas 8
//! cargo run --example fleet --features redis -- --busy          # one busy replica, three idle
//! cargo run --example fleet --features redis -- --replicas 1    # one process, the whole load
//! cargo run --example fleet --features redis -- --no-redis      # each replica on its own budget
//! ```
//!
//! The Redis is `FABRAIX_REDIS_URL` when set; otherwise this starts Debian's `redis-server`
//! (`apt-get install redis-server`) on a free loopback port, and stops it at the end.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fabraix::testing::MockServer;
use fabraix::{Action, Client, Event, EventType};

const LIMIT: &str = "20/s";
const RUNS: usize = 32;

#[fabraix::agent(id = "fleet-agent", system_prompt = "You look things up.", client = client)]
async fn one_run(client: &Client) -> (bool, u64, Duration) {
    let registered = fabraix::current_trace().is_some();
    for n in 0..5 {
        let _ = fabraix::log_event(Event::text(EventType::Tool, n.to_string()));
    }
    let (mut failed, mut worst) = (0, Duration::ZERO);
    for _ in 0..2 {
        let started = Instant::now();
        if fabraix::check_action(&Action::new("lookup")).await.is_err() {
            failed += 1;
        }
        worst = worst.max(started.elapsed());
    }
    (registered, failed, worst)
}

/// One replica: its runs one after the other, then one line of what it met.
async fn replica(runs: usize) -> Result<(), fabraix::Error> {
    let client = Client::from_env()?;
    let shared_by = Instant::now() + Duration::from_secs(5);
    while std::env::var_os("FABRAIX_REDIS_URL").is_some()
        && !client.stats().fleet.shared
        && Instant::now() < shared_by
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let (mut unregistered, mut failed, mut worst) = (0, 0, Duration::ZERO);
    for _ in 0..runs {
        let (registered, checks_failed, worst_check) = one_run(&client).await;
        unregistered += u64::from(!registered);
        failed += checks_failed;
        worst = worst.max(worst_check);
    }
    client.flush(Duration::from_secs(120)).await;
    let stats = client.stats();
    println!(
        "{runs:>4} runs in {:>6.1} s, {:>3} 429s met, worst check {:>6.0} ms, {failed} checks failed, {unregistered} runs unregistered, budget shared: {} ({} fallbacks)",
        started.elapsed().as_secs_f64(),
        stats.rate_limited,
        worst.as_secs_f64() * 1000.0,
        stats.fleet.shared,
        stats.fleet.fallbacks,
    );
    Ok(())
}

/// Debian's `redis-server` on a free loopback port, nothing written to disk.
fn start_redis() -> Option<(Child, String)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((child, format!("redis://127.0.0.1:{port}/0")))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Ok(runs) = std::env::var("FLEET_EXAMPLE_RUNS") {
        let runtime = tokio::runtime::Runtime::new()?;
        return Ok(runtime.block_on(replica(runs.parse()?))?);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let replicas: usize = match args.iter().position(|a| a == "--replicas") {
        Some(at) => args.get(at + 1).ok_or("--replicas N")?.parse()?,
        None => 4,
    };
    let shares: Vec<usize> = if flag("--busy") {
        (0..replicas.max(2))
            .map(|i| if i == 0 { RUNS } else { 0 })
            .collect()
    } else {
        (0..replicas.max(1))
            .map(|i| RUNS / replicas.max(1) + usize::from(i < RUNS % replicas.max(1)))
            .collect()
    };

    let mut redis_child = None;
    let redis_url = if flag("--no-redis") {
        None
    } else if let Ok(url) = std::env::var("FABRAIX_REDIS_URL") {
        Some(url)
    } else {
        let (child, url) = start_redis().ok_or(
            "no FABRAIX_REDIS_URL, and `redis-server` did not start (apt-get install redis-server)",
        )?;
        redis_child = Some(child);
        Some(url)
    };
    let server = MockServer::builder()
        .rate_limit(LIMIT.parse()?)
        .start_blocking()?;
    println!(
        "{} replicas, {RUNS} runs, the key limited to {LIMIT} by a MockServer at {}; budget: {}",
        shares.len(),
        server.url(),
        match &redis_url {
            Some(_) => "shared through Redis",
            None => "each replica its own",
        }
    );

    let started = Instant::now();
    let children: Vec<(usize, Child)> = shares
        .iter()
        .enumerate()
        .map(|(i, runs)| {
            let mut command = Command::new(std::env::current_exe()?);
            command
                .env("FLEET_EXAMPLE_RUNS", runs.to_string())
                .env("FABRAIX_BASE_URL", server.url())
                .env("FABRAIX_API_KEY", server.api_key())
                .env("FABRAIX_RATE_LIMIT", LIMIT)
                .env_remove("FABRAIX_DISABLED")
                .stdout(Stdio::piped());
            match &redis_url {
                Some(url) => command.env("FABRAIX_REDIS_URL", url),
                None => command.env_remove("FABRAIX_REDIS_URL"),
            };
            Ok((i, command.spawn()?))
        })
        .collect::<Result<_, std::io::Error>>()?;
    for (i, mut child) in children {
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("replica {i}: {line}");
            }
        }
        child.wait()?;
    }
    println!(
        "all done in {:.1} s: {} requests accepted, {} refused with 429",
        started.elapsed().as_secs_f64(),
        server.with_requests(|requests| {
            requests
                .iter()
                .filter(|r| r.response.as_ref().is_some_and(|r| r.status == 200))
                .count()
        }),
        server.rate_limited()
    );
    if let Some(mut child) = redis_child {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(())
}
