//! What one acquisition of the shared budget costs against a local `redis-server`: the
//! caller's wait from asking to the answer, p50 and p99, for a grant, for an answer to
//! wait (a full window), and with 16 acquisitions in flight on the one connection.
//! Skipped, with a line, without `redis-server`. Figures: BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench fleet --all-features
//! ```

#[path = "../tests/redis_server/mod.rs"]
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fabraix::__bench::FleetBench;
use fabraix::RateLimit;

const SAMPLES: usize = 5_000;

fn main() {
    let Some(server) = redis_server::RedisServer::start("bench fleet") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        // Room for every sample: each acquisition is a grant.
        let roomy = RateLimit::per(1_000_000, Duration::from_secs(3600));
        let budget = connect(&server.url(), "sk-bench-granted", &roomy).await;
        warm_up(&budget).await;
        let granted = sequential(&budget, Some(true)).await;
        report("granted (one window, 1,000,000/h)", &granted);
        let (p50, p99) = budget.round_trips();
        println!("  redis round trip as the link saw it: p50 {p50:?}, p99 {p99:?}");

        // A production key's two windows, the minute's full: each answer is a wait.
        let budget = connect(&server.url(), "sk-bench-full", &RateLimit::production()).await;
        while budget.acquire(false).await == Some(true) {}
        let waits = sequential(&budget, Some(false)).await;
        report("told to wait (600/min full, 10000/h)", &waits);

        let budget = connect(&server.url(), "sk-bench-concurrent", &roomy).await;
        let concurrent = in_flight(Arc::new(budget), 16).await;
        report("granted, 16 in flight", &concurrent);
    });
}

async fn connect(url: &str, key: &str, limit: &RateLimit) -> FleetBench {
    let budget = FleetBench::connect(url, key, limit).expect("a budget");
    let started = Instant::now();
    while !budget.is_shared() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis not reached"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    budget
}

async fn warm_up(budget: &FleetBench) {
    for _ in 0..200 {
        budget.acquire(false).await.expect("shared");
    }
}

/// `SAMPLES` acquisitions one after the other, alternating the lanes; each answer must
/// be `expect`.
async fn sequential(budget: &FleetBench, expect: Option<bool>) -> Vec<Duration> {
    let mut took = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let asked = Instant::now();
        let answer = budget.acquire(i % 2 == 1).await;
        took.push(asked.elapsed());
        assert_eq!(answer, expect, "acquisition {i}");
    }
    took
}

/// `SAMPLES` acquisitions, `width` at a time, each a task of its own (as agents are), all
/// on the link's one connection.
async fn in_flight(budget: Arc<FleetBench>, width: usize) -> Vec<Duration> {
    let mut took = Vec::with_capacity(SAMPLES);
    while took.len() < SAMPLES {
        let mut batch = tokio::task::JoinSet::new();
        for i in 0..width {
            let budget = budget.clone();
            batch.spawn(async move {
                let asked = Instant::now();
                let answer = budget.acquire(i % 2 == 1).await;
                assert_eq!(answer, Some(true));
                asked.elapsed()
            });
        }
        took.extend(batch.join_all().await);
    }
    took
}

fn report(label: &str, samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).saturating_sub(1)];
    println!(
        "one acquisition, {label}: p50 {:?}, p99 {:?} ({} samples)",
        at(0.5),
        at(0.99),
        sorted.len()
    );
}
