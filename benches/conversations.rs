//! Conversations: the memory a client holds for 100,000 live conversations, next to the
//! map a careful user would write by hand (`Mutex<HashMap<String, (Trace, Instant)>>`,
//! unbounded, ids in clear), and the cost of a turn that continues its run (no network).
//! Figures: BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench conversations --all-features
//! ```
//!
//! Memory is measured with a counting allocator: the live bytes while the client (or the
//! map) holds the conversations, minus the live bytes once it is dropped. The MockServer
//! runs in this process too, but it is neither built nor dropped between the two readings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fabraix::Trace;
use fabraix::testing::MockServer;

const CONVERSATIONS: usize = 100_000;
const AGENT: &str = "bench-chat";
const PROMPT: &str = "You are a benchmark.";

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System.dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is `System.realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// A conversation id as services have them: an email address (34 bytes here).
fn id(n: usize) -> String {
    format!("customer-{n:06}@shop.example.com")
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(run());
}

async fn run() {
    let server = MockServer::builder()
        .keep_runs(1_000)
        .start()
        .await
        .expect("a server");

    // The SDK: every conversation registered through one client, then held by it.
    let client = server
        .client_builder()
        .conversation_capacity(CONVERSATIONS)
        .build()
        .expect("a client");
    let started = Instant::now();
    let mut traces = Vec::with_capacity(CONVERSATIONS);
    let tasks: Vec<_> = (0..32)
        .map(|worker| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for n in (worker..CONVERSATIONS).step_by(32) {
                    let trace = client
                        .conversation(id(n))
                        .try_run(AGENT, PROMPT, async { fabraix::current_trace() })
                        .await
                        .expect("registered")
                        .expect("a run");
                    mine.push(trace);
                }
                mine
            })
        })
        .collect();
    for task in tasks {
        traces.extend(task.await.expect("joined"));
    }
    let registered = started.elapsed();

    // A continuing turn: the store's lookup, on the caller's thread, no network.
    let turns = 100_000;
    let started = Instant::now();
    for n in 0..turns {
        let trace = client
            .conversation(id(n % CONVERSATIONS))
            .run(AGENT, PROMPT, async { fabraix::current_trace() })
            .await;
        black_box(trace);
    }
    let per_turn = started.elapsed() / turns as u32;
    let check = client
        .conversation(id(7))
        .run(AGENT, PROMPT, async { fabraix::current_trace() })
        .await;
    assert!(
        check.is_some_and(|run| traces.contains(&run)),
        "the turn continued a run"
    );

    let holding = live();
    drop(client);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sdk_bytes = holding.saturating_sub(live());

    // By hand: the map a user keeps, with the same ids and runs.
    let by_hand: Mutex<HashMap<String, (Trace, Instant)>> = Mutex::new(HashMap::new());
    let before = live();
    {
        let mut map = by_hand.lock().expect("a lock");
        for (n, trace) in traces.iter().enumerate() {
            map.insert(id(n), (*trace, Instant::now()));
        }
    }
    let hand_bytes = live() - before;
    drop(by_hand);

    println!(
        "conversations/registered  {CONVERSATIONS} first turns (one registration each): {:.1} s",
        registered.as_secs_f64()
    );
    println!(
        "conversations/turn        a continuing turn (`Conversation::run`, empty body): {per_turn:?}"
    );
    println!(
        "conversations/memory      {CONVERSATIONS} live conversations: the client holds {:.1} MiB ({} bytes each); a HashMap<String, (Trace, Instant)> by hand {:.1} MiB ({} bytes each); ratio {:.2}x",
        sdk_bytes as f64 / (1024.0 * 1024.0),
        sdk_bytes / CONVERSATIONS,
        hand_bytes as f64 / (1024.0 * 1024.0),
        hand_bytes / CONVERSATIONS,
        sdk_bytes as f64 / hand_bytes as f64,
    );
}
