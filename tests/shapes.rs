//! `#[fabraix::agent]` on every fn shape, against a `MockServer` over loopback HTTP.
//!
//! Each test checks that the body sees the trace the server issued for that call, and that
//! no trace is current before or after it. The fns name their client explicitly
//! (`client = …`); `tests/global_client.rs` covers the global client.

use std::fmt::Display;
use std::future::Future;
use std::num::ParseIntError;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, mpsc};
use std::time::Duration;

use fabraix::testing::{Endpoint, MockServer};
use fabraix::{
    AgentId, Client, Event, EventType, IntoAgentId, Trace, TraceFutureExt, current_trace,
};
use tokio::task::yield_now;

/// The server behind [`CLIENT`], shared by the fns that name the static client. Tests that
/// count requests start a server of their own and pass its client in.
static SERVER: LazyLock<MockServer> =
    LazyLock::new(|| MockServer::start_blocking().expect("the mock server starts"));
static CLIENT: LazyLock<Client> = LazyLock::new(|| SERVER.client());

async fn start_server() -> MockServer {
    MockServer::start().await.expect("the mock server starts")
}

/// Asserts that `seen` is a trace `server` issued, for a registration of the agent `agent`
/// with `prompt`, and returns it.
#[track_caller]
fn issued(server: &MockServer, seen: Option<Trace>, agent: &str, prompt: &str) -> Trace {
    let trace = seen.expect("the body sees a trace");
    assert!(
        server.issued_traces().contains(&trace.trace_id()),
        "{trace} is not a trace the server issued"
    );
    let agent_id = agent.into_agent_id().expect("a valid agent id");
    assert_eq!(trace.agent_id(), agent_id, "the trace's agent");
    let registered = server
        .requests_to(Endpoint::RegisterAgentRun)
        .iter()
        .any(|r| r.body["agent_id"] == agent_id.to_string() && r.body["system_prompt"] == prompt);
    assert!(
        registered,
        "the server got no registration of `{agent}` with the prompt {prompt:?}"
    );
    trace
}

fn registrations(server: &MockServer) -> usize {
    server.requests_to(Endpoint::RegisterAgentRun).len()
}

#[track_caller]
fn assert_outside() {
    assert_eq!(
        current_trace(),
        None,
        "a trace is current outside every run"
    );
}

// ---------------------------------------------------------------------------------------
// Free fns, with a client passed in and with a static client.

#[fabraix::agent(
    id = "shapes-free-async",
    system_prompt = "You are a free async fn.",
    client = client
)]
async fn free_async(client: &Client, x: u32) -> (u32, Option<Trace>) {
    yield_now().await;
    (x * 2, current_trace())
}

#[fabraix::agent(
    id = "shapes-free-sync",
    system_prompt = "You are a free sync fn.",
    client = client
)]
fn free_sync(client: &Client, x: u32) -> (u32, Option<Trace>) {
    (x + 1, current_trace())
}

#[fabraix::agent(
    id = "shapes-static-async",
    system_prompt = "You use the static client.",
    client = &CLIENT
)]
async fn static_client_async() -> Option<Trace> {
    yield_now().await;
    current_trace()
}

#[fabraix::agent(
    id = "shapes-static-sync",
    system_prompt = "You use the static client and block.",
    client = &CLIENT
)]
fn static_client_sync() -> Option<Trace> {
    current_trace()
}

#[tokio::test]
async fn free_async_fn() {
    let server = start_server().await;
    let client = server.client();
    assert_outside();
    let (doubled, seen) = free_async(&client, 21).await;
    assert_outside();
    assert_eq!(doubled, 42);
    issued(
        &server,
        seen,
        "shapes-free-async",
        "You are a free async fn.",
    );
    assert_eq!(registrations(&server), 1);
}

#[tokio::test]
async fn free_sync_fn() {
    let server = start_server().await;
    let client = server.client();
    assert_outside();
    let (next, seen) = free_sync(&client, 41);
    assert_outside();
    assert_eq!(next, 42);
    issued(&server, seen, "shapes-free-sync", "You are a free sync fn.");
    assert_eq!(registrations(&server), 1);
}

#[tokio::test]
async fn static_client() {
    assert_outside();
    let first = static_client_async().await;
    let second = static_client_async().await;
    let blocking = static_client_sync();
    assert_outside();
    let first = issued(
        &SERVER,
        first,
        "shapes-static-async",
        "You use the static client.",
    );
    let second = issued(
        &SERVER,
        second,
        "shapes-static-async",
        "You use the static client.",
    );
    assert_ne!(first, second, "each call is a run of its own");
    issued(
        &SERVER,
        blocking,
        "shapes-static-sync",
        "You use the static client and block.",
    );
}

// ---------------------------------------------------------------------------------------
// Methods: `self`, `&self`, `&mut self`, async and sync; `id`, `system_prompt` and `client`
// computed from `self`; data borrowed from `self` or an argument returned.

struct Assistant {
    name: String,
    client: Client,
    calls: u32,
    seen: Mutex<Vec<Option<Trace>>>,
}

impl Assistant {
    fn new(name: &str, client: Client) -> Self {
        Self {
            name: name.into(),
            client,
            calls: 0,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Notes the trace current in a body that cannot return it.
    fn record(&self) {
        self.seen.lock().unwrap().push(current_trace());
    }

    fn last_seen(&self) -> Option<Trace> {
        *self.seen.lock().unwrap().last().expect("the body ran")
    }

    #[fabraix::agent(
        id = format!("assistant-{}", self.name),
        system_prompt = format!("You help {}", self.name),
        client = &self.client
    )]
    async fn into_reply(self, question: &str) -> (String, Option<Trace>) {
        yield_now().await;
        (format!("{} answers {question}", self.name), current_trace())
    }

    #[fabraix::agent(
        id = self.name.as_str(),
        system_prompt = format!("You help {}", self.name),
        client = &self.client
    )]
    async fn reply(&self, question: &str) -> (String, Option<Trace>) {
        yield_now().await;
        (format!("{} answers {question}", self.name), current_trace())
    }

    #[fabraix::agent(
        id = "assistant-counter",
        system_prompt = format!("You count for {}", self.name),
        client = &self.client
    )]
    async fn count(&mut self) -> (u32, Option<Trace>) {
        self.calls += 1;
        yield_now().await;
        (self.calls, current_trace())
    }

    #[fabraix::agent(
        id = format!("assistant-{}", self.name),
        system_prompt = format!("You help {}", self.name),
        client = &self.client
    )]
    fn into_reply_sync(self) -> (String, Option<Trace>) {
        (self.name, current_trace())
    }

    #[fabraix::agent(
        id = self.name.as_str(),
        system_prompt = format!("You help {}", self.name),
        client = &self.client
    )]
    fn reply_sync(&self) -> Option<Trace> {
        current_trace()
    }

    #[fabraix::agent(
        id = "assistant-counter",
        system_prompt = format!("You count for {}", self.name),
        client = &self.client
    )]
    fn count_sync(&mut self) -> (u32, Option<Trace>) {
        self.calls += 1;
        (self.calls, current_trace())
    }

    #[fabraix::agent(
        id = "assistant-name",
        system_prompt = "You say your name.",
        client = &self.client
    )]
    // The explicit lifetime is the shape under test.
    #[allow(clippy::needless_lifetimes)]
    fn name<'a>(&'a self) -> &'a str {
        self.record();
        &self.name
    }

    #[fabraix::agent(
        id = "assistant-name",
        system_prompt = "You say your name.",
        client = &self.client
    )]
    fn name_elided(&self) -> &str {
        self.record();
        self.name.as_str()
    }

    #[fabraix::agent(
        id = "assistant-name",
        system_prompt = "You say your name.",
        client = &self.client
    )]
    async fn name_async(&self) -> &str {
        yield_now().await;
        self.record();
        &self.name
    }

    #[fabraix::agent(
        id = "assistant-first-word",
        system_prompt = "You read the first word.",
        client = &self.client
    )]
    fn first_word<'t>(&self, text: &'t str) -> &'t str {
        self.record();
        text.split_whitespace().next().unwrap_or_default()
    }
}

#[tokio::test]
async fn async_methods() {
    let server = start_server().await;
    let mut assistant = Assistant::new("ada", server.client());
    assert_outside();

    let (answer, seen) = assistant.reply("why?").await;
    assert_eq!(answer, "ada answers why?");
    let by_ref = issued(&server, seen, "ada", "You help ada");

    let (calls, seen) = assistant.count().await;
    assert_eq!(calls, 1);
    let by_mut = issued(&server, seen, "assistant-counter", "You count for ada");

    let (answer, seen) = assistant.into_reply("how?").await;
    assert_eq!(answer, "ada answers how?");
    let by_value = issued(&server, seen, "assistant-ada", "You help ada");

    assert_outside();
    assert_eq!(registrations(&server), 3);
    assert_ne!(by_ref, by_mut);
    assert_ne!(by_mut, by_value);
}

#[test]
fn sync_methods() {
    let server = MockServer::start_blocking().expect("the mock server starts");
    let mut assistant = Assistant::new("grace", server.client());
    assert_outside();

    let by_ref = issued(&server, assistant.reply_sync(), "grace", "You help grace");
    let (calls, seen) = assistant.count_sync();
    assert_eq!((calls, assistant.calls), (1, 1));
    let by_mut = issued(&server, seen, "assistant-counter", "You count for grace");
    let (name, seen) = assistant.into_reply_sync();
    assert_eq!(name, "grace");
    let by_value = issued(&server, seen, "assistant-grace", "You help grace");

    assert_outside();
    assert_eq!(registrations(&server), 3);
    assert_ne!(by_ref, by_mut);
    assert_ne!(by_mut, by_value);
}

#[tokio::test]
async fn methods_returning_borrowed_data() {
    let server = start_server().await;
    let assistant = Assistant::new("linus", server.client());
    assert_outside();

    let name: &str = assistant.name();
    assert_eq!(name, "linus");
    let explicit = issued(
        &server,
        assistant.last_seen(),
        "assistant-name",
        "You say your name.",
    );

    assert_eq!(assistant.name_elided(), "linus");
    let elided = issued(
        &server,
        assistant.last_seen(),
        "assistant-name",
        "You say your name.",
    );

    assert_eq!(assistant.name_async().await, "linus");
    let in_async = issued(
        &server,
        assistant.last_seen(),
        "assistant-name",
        "You say your name.",
    );

    let text = String::from("hello borrowed world");
    let word = assistant.first_word(&text);
    assert_eq!(word, "hello");
    issued(
        &server,
        assistant.last_seen(),
        "assistant-first-word",
        "You read the first word.",
    );

    assert_outside();
    assert_eq!(registrations(&server), 4);
    assert_ne!(explicit, elided);
    assert_ne!(elided, in_async);
}

// ---------------------------------------------------------------------------------------
// Other receivers (`self: Arc<Self>`, `self: Box<Self>`), patterns and `mut` arguments.

struct Shared {
    client: Client,
}

impl Shared {
    #[fabraix::agent(id = "shapes-arc-self", system_prompt = "You are shared.", client = &self.client)]
    async fn by_arc(self: Arc<Self>) -> Option<Trace> {
        yield_now().await;
        current_trace()
    }

    #[fabraix::agent(id = "shapes-box-self", system_prompt = "You are boxed.", client = &self.client)]
    // The boxed receiver is the shape under test.
    #[allow(clippy::boxed_local)]
    fn by_box(self: Box<Self>) -> Option<Trace> {
        current_trace()
    }
}

#[fabraix::agent(id = "shapes-patterns", system_prompt = "You add pairs.", client = client)]
async fn add_pair(client: &Client, (a, b): (u32, u32), mut total: u32) -> (u32, Option<Trace>) {
    total += a + b;
    yield_now().await;
    (total, current_trace())
}

#[tokio::test]
async fn receivers_and_patterns() {
    let server = start_server().await;
    assert_outside();
    let by_arc = Arc::new(Shared {
        client: server.client(),
    })
    .by_arc()
    .await;
    let by_box = Box::new(Shared {
        client: server.client(),
    })
    .by_box();
    let (total, pair) = add_pair(&server.client(), (2, 3), 10).await;
    assert_outside();
    assert_eq!(total, 15);
    issued(&server, by_arc, "shapes-arc-self", "You are shared.");
    issued(&server, by_box, "shapes-box-self", "You are boxed.");
    issued(&server, pair, "shapes-patterns", "You add pairs.");
}

// ---------------------------------------------------------------------------------------
// Generics, where clauses, lifetimes, const generics.

#[fabraix::agent(
    id = "shapes-generic",
    system_prompt = format!("You describe a {}", std::any::type_name::<T>()),
    client = client
)]
async fn describe<T, U>(client: &Client, value: T, extra: U) -> (String, Option<Trace>)
where
    T: Display + Send,
    U: Into<u64> + Send,
{
    yield_now().await;
    (format!("{value}+{}", extra.into()), current_trace())
}

#[fabraix::agent(
    id = "shapes-largest",
    system_prompt = "You find the largest item.",
    client = client
)]
fn largest<'a, T>(client: &Client, items: &'a [T]) -> (Option<&'a T>, Option<Trace>)
where
    T: PartialOrd,
{
    let mut best: Option<&'a T> = None;
    for item in items {
        if best.is_none_or(|b| item > b) {
            best = Some(item);
        }
    }
    (best, current_trace())
}

#[fabraix::agent(
    id = "shapes-sum",
    system_prompt = format!("You add {N} numbers"),
    client = client
)]
fn sum<const N: usize>(client: &Client, values: [u32; N]) -> (u32, Option<Trace>) {
    (values.iter().sum(), current_trace())
}

#[tokio::test]
async fn generic_fns() {
    let server = start_server().await;
    let client = server.client();
    assert_outside();

    let (text, seen) = describe(&client, "seven", 8u8).await;
    assert_eq!(text, "seven+8");
    issued(&server, seen, "shapes-generic", "You describe a &str");

    let items = [3, 9, 4];
    let (best, seen) = largest(&client, &items);
    assert_eq!(best, Some(&9));
    issued(
        &server,
        seen,
        "shapes-largest",
        "You find the largest item.",
    );

    let (total, seen) = sum(&client, [1, 2, 3, 4]);
    assert_eq!(total, 10);
    issued(&server, seen, "shapes-sum", "You add 4 numbers");

    assert_outside();
    assert_eq!(registrations(&server), 3);
}

// ---------------------------------------------------------------------------------------
// `impl Trait` arguments and returns.

#[fabraix::agent(
    id = "shapes-impl-arg",
    system_prompt = "You total what you are given.",
    client = client
)]
async fn total(
    client: &Client,
    values: impl IntoIterator<Item = u32> + Send,
) -> (u32, Option<Trace>) {
    let values: Vec<u32> = values.into_iter().collect();
    yield_now().await;
    (values.iter().sum(), current_trace())
}

#[fabraix::agent(
    id = "shapes-impl-iterator",
    system_prompt = "You count up.",
    client = client
)]
fn count_up(client: &Client, n: u32) -> impl Iterator<Item = (u32, Option<Trace>)> {
    // The iterator is lazy and runs after the fn returned: it carries the trace it was made in.
    let trace = current_trace();
    (0..n).map(move |i| (i, trace))
}

#[fabraix::agent(
    id = "shapes-impl-future",
    system_prompt = "You answer later.",
    client = client
)]
fn later(client: &Client, x: u32) -> impl Future<Output = (u32, Option<Trace>)> + Send + 'static {
    async move {
        yield_now().await;
        fabraix::log_event(Event::text(EventType::User, "later")).expect("inside a run");
        (x + 1, current_trace())
    }
}

/// An async fn: every call's future has the same type, so a fn may return either of two.
async fn probe(tag: u32) -> (u32, Option<Trace>) {
    yield_now().await;
    (tag, current_trace())
}

#[fabraix::agent(
    id = "shapes-impl-future-return",
    system_prompt = "You pick a future.",
    client = client
)]
fn pick(client: &Client, fast: bool) -> impl Future<Output = (u32, Option<Trace>)> {
    if fast {
        return probe(1);
    }
    probe(2)
}

#[fabraix::agent(
    id = "shapes-boxed-future",
    system_prompt = "You return a boxed future.",
    client = client
)]
fn boxed<'a>(
    client: &'a Client,
    word: &'a str,
) -> Pin<Box<dyn Future<Output = (String, Option<Trace>)> + Send + 'a>> {
    Box::pin(async move {
        yield_now().await;
        (word.to_uppercase(), current_trace())
    })
}

type BoxedFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `.boxed()`, as `futures::FutureExt` spells it.
trait Boxed<'a>: Future + Send + Sized + 'a {
    fn boxed(self) -> BoxedFuture<'a, Self::Output> {
        Box::pin(self)
    }
}

impl<'a, F: Future + Send + 'a> Boxed<'a> for F {}

#[fabraix::agent(
    id = "shapes-boxed-method",
    system_prompt = "You box with a method.",
    client = client
)]
fn boxed_by_method<'a>(client: &Client, word: &'a str) -> BoxedFuture<'a, (usize, Option<Trace>)> {
    let len = word.len();
    async move {
        yield_now().await;
        (len, current_trace())
    }
    .boxed()
}

#[tokio::test]
async fn impl_trait_argument() {
    let server = start_server().await;
    let client = server.client();
    assert_outside();
    let (sum, seen) = total(&client, vec![1, 2, 3]).await;
    assert_outside();
    assert_eq!(sum, 6);
    issued(
        &server,
        seen,
        "shapes-impl-arg",
        "You total what you are given.",
    );
}

#[tokio::test]
async fn impl_iterator_return() {
    let server = start_server().await;
    let client = server.client();
    assert_outside();
    let items: Vec<_> = count_up(&client, 3).collect();
    assert_outside();
    assert_eq!(items.len(), 3);
    let trace = issued(&server, items[0].1, "shapes-impl-iterator", "You count up.");
    assert!(items.iter().all(|(_, seen)| *seen == Some(trace)));
}

#[tokio::test]
async fn impl_future_return_runs_the_future_in_the_run() {
    let server = start_server().await;
    let client = server.client();
    assert_outside();
    let future = later(&client, 41);
    // Like an async fn's, the returned future registers the run when first polled.
    assert_eq!(
        registrations(&server),
        0,
        "nothing is sent before the future runs"
    );
    drop(client);
    let (answer, seen) = tokio::spawn(future).await.expect("the task ends");
    assert_outside();
    assert_eq!(answer, 42);
    let trace = issued(&server, seen, "shapes-impl-future", "You answer later.");
    assert_event_sent(&server, trace);
    assert_eq!(registrations(&server), 1);
}

#[tokio::test]
async fn impl_future_return_with_early_return() {
    let server = start_server().await;
    let client = server.client();
    assert_outside();
    let (fast, seen_fast) = pick(&client, true).await;
    let (slow, seen_slow) = pick(&client, false).await;
    assert_outside();
    assert_eq!((fast, slow), (1, 2));
    let fast = issued(
        &server,
        seen_fast,
        "shapes-impl-future-return",
        "You pick a future.",
    );
    let slow = issued(
        &server,
        seen_slow,
        "shapes-impl-future-return",
        "You pick a future.",
    );
    assert_ne!(fast, slow);
}

#[tokio::test]
async fn boxed_future_return() {
    let server = start_server().await;
    let client = server.client();
    assert_outside();
    let word = String::from("loud");
    let (upper, seen) = boxed(&client, &word).await;
    assert_outside();
    assert_eq!(upper, "LOUD");
    issued(
        &server,
        seen,
        "shapes-boxed-future",
        "You return a boxed future.",
    );
    let future = boxed_by_method(&client, &word);
    assert_eq!(
        registrations(&server),
        1,
        "nothing is sent before the future runs"
    );
    let (len, seen) = future.await;
    assert_outside();
    assert_eq!(len, 4);
    issued(
        &server,
        seen,
        "shapes-boxed-method",
        "You box with a method.",
    );
}

// ---------------------------------------------------------------------------------------
// `unsafe fn`, visibilities, `extern "C"`.

#[fabraix::agent(
    id = "shapes-unsafe",
    system_prompt = "You read raw pointers.",
    client = client
)]
unsafe fn read_raw(client: &Client, ptr: *const u32) -> (u32, Option<Trace>) {
    // SAFETY: the caller passes a pointer to a live `u32`.
    (unsafe { *ptr }, current_trace())
}

#[fabraix::agent(
    id = "shapes-unsafe-async",
    system_prompt = "You read raw pointers later.",
    client = client
)]
async unsafe fn read_raw_async(client: &Client, ptr: *const u32) -> (u32, Option<Trace>) {
    // SAFETY: the caller passes a pointer to a `u32` that outlives the future.
    let value = unsafe { *ptr };
    (value, current_trace())
}

#[fabraix::agent(
    id = "shapes-extern-c",
    system_prompt = "You have a C ABI.",
    client = &CLIENT
)]
extern "C" fn with_c_abi(x: u32) -> u32 {
    assert!(current_trace().is_some(), "the body runs in the run");
    x * 3
}

#[tokio::test]
async fn unsafe_fns() {
    let server = start_server().await;
    let client = server.client();
    let value = 7u32;
    assert_outside();
    // SAFETY: `value` lives until the end of the test.
    let (read, seen) = unsafe { read_raw(&client, &value) };
    assert_eq!(read, 7);
    issued(&server, seen, "shapes-unsafe", "You read raw pointers.");
    // SAFETY: as above.
    let (read, seen) = unsafe { read_raw_async(&client, &value) }.await;
    assert_eq!(read, 7);
    issued(
        &server,
        seen,
        "shapes-unsafe-async",
        "You read raw pointers later.",
    );
    assert_outside();
}

#[test]
fn extern_c_fn() {
    assert_eq!(with_c_abi(5), 15);
    assert_outside();
}

mod visibility {
    use super::*;

    pub(crate) mod inner {
        use super::*;

        #[fabraix::agent(id = "shapes-pub-crate", system_prompt = "You are pub(crate).", client = client)]
        pub(crate) fn crate_visible(client: &Client) -> Option<Trace> {
            current_trace()
        }

        #[fabraix::agent(id = "shapes-pub-super", system_prompt = "You are pub(super).", client = client)]
        pub(super) async fn parent_visible(client: &Client) -> Option<Trace> {
            current_trace()
        }

        #[fabraix::agent(id = "shapes-pub-in", system_prompt = "You are pub(in path).", client = client)]
        pub(in crate::visibility) fn path_visible(client: &Client) -> Option<Trace> {
            current_trace()
        }

        #[fabraix::agent(id = "shapes-pub", system_prompt = "You are pub.", client = client)]
        pub fn public(client: &Client) -> Option<Trace> {
            current_trace()
        }

        #[fabraix::agent(id = "shapes-private", system_prompt = "You are private.", client = client)]
        fn private(client: &Client) -> Option<Trace> {
            current_trace()
        }

        pub(crate) fn call_private(client: &Client) -> Option<Trace> {
            private(client)
        }
    }

    #[tokio::test]
    async fn every_visibility() {
        let server = start_server().await;
        let client = server.client();
        assert_outside();
        let runs = [
            (
                inner::crate_visible(&client),
                "shapes-pub-crate",
                "You are pub(crate).",
            ),
            (
                inner::parent_visible(&client).await,
                "shapes-pub-super",
                "You are pub(super).",
            ),
            (
                inner::path_visible(&client),
                "shapes-pub-in",
                "You are pub(in path).",
            ),
            (inner::public(&client), "shapes-pub", "You are pub."),
            (
                inner::call_private(&client),
                "shapes-private",
                "You are private.",
            ),
        ];
        assert_outside();
        for (seen, agent, prompt) in runs {
            issued(&server, seen, agent, prompt);
        }
        assert_eq!(registrations(&server), 5);
    }
}

// ---------------------------------------------------------------------------------------
// Recursion: each level is a run of its own, and its caller's run is current again after.

#[fabraix::agent(id = "shapes-recursive", system_prompt = "You recurse.", client = client)]
fn countdown(client: &Client, n: u32) -> Vec<Trace> {
    let own = current_trace().expect("the body runs in its run");
    let mut traces = if n == 0 {
        Vec::new()
    } else {
        countdown(client, n - 1)
    };
    assert_eq!(
        current_trace(),
        Some(own),
        "the caller's run is current again"
    );
    traces.push(own);
    traces
}

#[fabraix::agent(
    id = "shapes-recursive-async",
    system_prompt = "You recurse asynchronously.",
    client = client
)]
async fn countdown_async(client: &Client, n: u32) -> Vec<Trace> {
    let own = current_trace().expect("the body runs in its run");
    let mut traces = if n == 0 {
        Vec::new()
    } else {
        Box::pin(countdown_async(client, n - 1)).await
    };
    assert_eq!(
        current_trace(),
        Some(own),
        "the caller's run is current again"
    );
    traces.push(own);
    traces
}

#[tokio::test]
async fn recursion() {
    let server = start_server().await;
    let client = server.client();
    assert_outside();
    let sync = countdown(&client, 3);
    let asynchronous = countdown_async(&client, 3).await;
    assert_outside();
    assert_eq!((sync.len(), asynchronous.len()), (4, 4));
    for trace in &sync {
        issued(&server, Some(*trace), "shapes-recursive", "You recurse.");
    }
    for trace in &asynchronous {
        issued(
            &server,
            Some(*trace),
            "shapes-recursive-async",
            "You recurse asynchronously.",
        );
    }
    let mut all: Vec<_> = sync
        .iter()
        .chain(&asynchronous)
        .map(Trace::trace_id)
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 8, "every level has a trace of its own");
    assert_eq!(registrations(&server), 8);
}

// ---------------------------------------------------------------------------------------
// Attributes on the fn are kept: `#[cfg]` (else `conditional` is defined twice),
// `#[track_caller]` (else the location is inside the fn), lint levels, docs, `#[must_use]`
// (tests/ui/must-use-kept.rs).

/// Never compiled: `#[cfg]` below the attribute still removes the fn.
#[fabraix::agent(id = "shapes-cfg", system_prompt = "You are configured out.", client = &CLIENT)]
#[cfg(not(test))]
fn conditional() -> u32 {
    1
}

/// Compiled.
#[fabraix::agent(id = "shapes-cfg", system_prompt = "You are configured in.", client = &CLIENT)]
#[cfg(test)]
#[must_use]
#[inline]
fn conditional() -> u32 {
    2
}

#[fabraix::agent(
    id = "shapes-track-caller",
    system_prompt = "You know who called.",
    client = client
)]
#[track_caller]
fn caller_line(client: &Client) -> (u32, Option<Trace>) {
    (std::panic::Location::caller().line(), current_trace())
}

#[tokio::test]
async fn attributes_are_kept() {
    let server = start_server().await;
    let client = server.client();
    assert_eq!(conditional(), 2);
    let (line, seen) = caller_line(&client);
    assert_eq!(line, line!() - 1, "`#[track_caller]` still applies");
    issued(&server, seen, "shapes-track-caller", "You know who called.");
}

// ---------------------------------------------------------------------------------------
// A trait's default methods.

trait Greeter {
    fn client(&self) -> &Client;
    fn greeting_name(&self) -> String;

    #[fabraix::agent(
        id = "shapes-greeter",
        system_prompt = format!("You greet as {}", self.greeting_name()),
        client = self.client()
    )]
    fn greet(&self) -> Option<Trace> {
        current_trace()
    }

    #[fabraix::agent(
        id = "shapes-greeter-async",
        system_prompt = format!("You greet later as {}", self.greeting_name()),
        client = self.client()
    )]
    async fn greet_async(&self) -> Option<Trace> {
        yield_now().await;
        current_trace()
    }
}

struct Host(Client);

impl Greeter for Host {
    fn client(&self) -> &Client {
        &self.0
    }

    fn greeting_name(&self) -> String {
        "host".into()
    }
}

#[tokio::test]
async fn trait_default_methods() {
    let server = start_server().await;
    let host = Host(server.client());
    assert_outside();
    let sync = host.greet();
    let asynchronous = host.greet_async().await;
    assert_outside();
    issued(&server, sync, "shapes-greeter", "You greet as host");
    issued(
        &server,
        asynchronous,
        "shapes-greeter-async",
        "You greet later as host",
    );
}

// ---------------------------------------------------------------------------------------
// `return`, `?` and panics in the body behave as without the attribute.

#[derive(Debug, PartialEq)]
enum ParseError {
    Empty,
    NotANumber,
    Fabraix(String),
}

impl From<ParseIntError> for ParseError {
    fn from(_: ParseIntError) -> Self {
        ParseError::NotANumber
    }
}

impl From<fabraix::Error> for ParseError {
    fn from(error: fabraix::Error) -> Self {
        ParseError::Fabraix(error.to_string())
    }
}

#[fabraix::agent(id = "shapes-parse", system_prompt = "You parse numbers.", client = client)]
fn parse_sync(client: &Client, text: &str, seen: &mut Option<Trace>) -> Result<u32, ParseError> {
    *seen = current_trace();
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    let n: u32 = text.trim().parse()?;
    if n == 0 {
        return Ok(100);
    }
    Ok(n)
}

#[fabraix::agent(
    id = "shapes-parse-async",
    system_prompt = "You parse numbers later.",
    client = client,
    on_failure = "error"
)]
async fn parse_async(
    client: &Client,
    text: &str,
    seen: &mut Option<Trace>,
) -> Result<u32, ParseError> {
    yield_now().await;
    *seen = current_trace();
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    let n: u32 = text.trim().parse()?;
    if n == 0 {
        return Ok(100);
    }
    Ok(n)
}

#[tokio::test]
async fn return_and_question_mark() {
    let server = start_server().await;
    let client = server.client();
    let cases = [
        ("", Err(ParseError::Empty)),
        ("x", Err(ParseError::NotANumber)),
        ("0", Ok(100)),
        (" 7 ", Ok(7)),
    ];
    for (text, expected) in cases {
        let mut seen = None;
        assert_eq!(
            parse_sync(&client, text, &mut seen),
            expected,
            "sync {text:?}"
        );
        issued(&server, seen, "shapes-parse", "You parse numbers.");
        let mut seen = None;
        assert_eq!(
            parse_async(&client, text, &mut seen).await,
            expected,
            "async {text:?}"
        );
        issued(
            &server,
            seen,
            "shapes-parse-async",
            "You parse numbers later.",
        );
        assert_outside();
    }
    assert_eq!(registrations(&server), 8);
}

#[fabraix::agent(id = "shapes-panic", system_prompt = "You panic.", client = client)]
fn panics_sync(client: &Client, seen: &Mutex<Option<Trace>>) -> u32 {
    *seen.lock().unwrap() = current_trace();
    panic!("the sync body panicked")
}

#[fabraix::agent(id = "shapes-panic-async", system_prompt = "You panic later.", client = client)]
async fn panics_async(client: &Client, seen: &Mutex<Option<Trace>>) -> u32 {
    yield_now().await;
    *seen.lock().unwrap() = current_trace();
    panic!("the async body panicked")
}

#[test]
fn panic_in_a_sync_body_propagates() {
    let server = MockServer::start_blocking().expect("the mock server starts");
    let client = server.client();
    let seen = Mutex::new(None);
    let caught = panic::catch_unwind(AssertUnwindSafe(|| panics_sync(&client, &seen)));
    let payload = caught.expect_err("the panic reaches the caller");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the sync body panicked")
    );
    assert_outside();
    issued(&server, *seen.lock().unwrap(), "shapes-panic", "You panic.");
}

#[tokio::test]
async fn panic_in_an_async_body_propagates() {
    let server = start_server().await;
    let client = server.client();
    let seen = Arc::new(Mutex::new(None));
    let task = {
        let seen = seen.clone();
        tokio::spawn(async move { panics_async(&client, &seen).await })
    };
    let error = task.await.expect_err("the panic ends the task");
    let payload = error.into_panic();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the async body panicked")
    );
    // A current-thread runtime: the task panicked on this very thread.
    assert_outside();
    issued(
        &server,
        *seen.lock().unwrap(),
        "shapes-panic-async",
        "You panic later.",
    );
}

#[fabraix::agent(id = "shapes-cancelled", system_prompt = "You are cancelled.", client = client)]
async fn never_done(client: &Client, entered: tokio::sync::oneshot::Sender<Option<Trace>>) {
    let _ = entered.send(current_trace());
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn a_cancelled_run_leaves_no_trace_behind() {
    let server = start_server().await;
    let client = server.client();
    let (entered, inside) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move { never_done(&client, entered).await });
    let seen = inside.await.expect("the body starts");
    task.abort();
    let error = task.await.expect_err("the task is cancelled");
    assert!(error.is_cancelled());
    // A current-thread runtime: the task was polled, and dropped, on this very thread.
    assert_outside();
    issued(&server, seen, "shapes-cancelled", "You are cancelled.");
}

// ---------------------------------------------------------------------------------------
// `id` and `system_prompt` as expressions: arguments, a const, `include_str!`, a UUID, ids.

const SHARED_PROMPT: &str = "You are built from a const.";
const AGENT_UUID: &str = "6f1c2b7e-3d4a-4c5b-9e8f-0a1b2c3d4e5f";

#[fabraix::agent(id = format!("tenant-{tenant}"), system_prompt = format!("You serve tenant {tenant}."), client = client)]
fn per_tenant(client: &Client, tenant: u32) -> Option<Trace> {
    current_trace()
}

#[fabraix::agent(id = "shapes-const", system_prompt = SHARED_PROMPT, client = client)]
fn from_const(client: &Client) -> Option<Trace> {
    current_trace()
}

#[fabraix::agent(id = "shapes-include", system_prompt = include_str!("shapes_prompt.txt"), client = client)]
async fn from_file(client: &Client) -> Option<Trace> {
    current_trace()
}

#[fabraix::agent(id = "6f1c2b7e-3d4a-4c5b-9e8f-0a1b2c3d4e5f", system_prompt = "You have a UUID.", client = client)]
fn with_uuid(client: &Client) -> Option<Trace> {
    current_trace()
}

#[fabraix::agent(id = agent, system_prompt = String::from("You have an AgentId."), client = client)]
fn with_agent_id(client: &Client, agent: AgentId) -> Option<Trace> {
    current_trace()
}

#[tokio::test]
async fn id_and_prompt_expressions() {
    let server = start_server().await;
    let client = server.client();
    issued(
        &server,
        per_tenant(&client, 7),
        "tenant-7",
        "You serve tenant 7.",
    );
    issued(
        &server,
        per_tenant(&client, 8),
        "tenant-8",
        "You serve tenant 8.",
    );
    issued(&server, from_const(&client), "shapes-const", SHARED_PROMPT);
    issued(
        &server,
        from_file(&client).await,
        "shapes-include",
        include_str!("shapes_prompt.txt"),
    );
    let trace = issued(&server, with_uuid(&client), AGENT_UUID, "You have a UUID.");
    assert_eq!(
        trace.agent_id().to_string(),
        AGENT_UUID,
        "a UUID id is used as is"
    );
    let agent = AgentId::from_name("built-elsewhere").expect("a valid name");
    let trace = issued(
        &server,
        with_agent_id(&client, agent),
        "built-elsewhere",
        "You have an AgentId.",
    );
    assert_eq!(trace.agent_id(), agent);
    assert_outside();
    assert_eq!(registrations(&server), 6);
}

// ---------------------------------------------------------------------------------------
// Nested runs.

#[fabraix::agent(id = "shapes-outer", system_prompt = "You call other agents.", client = client)]
async fn outer(client: &Client) -> [Option<Trace>; 5] {
    let before = current_trace();
    let (_, inner_async) = free_async(client, 1).await;
    let between = current_trace();
    let (_, inner_sync) = free_sync(client, 1);
    let after = current_trace();
    [before, inner_async, between, inner_sync, after]
}

#[fabraix::agent(id = "shapes-outer-sync", system_prompt = "You call other agents and block.", client = client)]
fn outer_sync(client: &Client) -> [Option<Trace>; 3] {
    let before = current_trace();
    let (_, inner) = free_sync(client, 1);
    [before, inner, current_trace()]
}

#[tokio::test]
async fn nested_runs() {
    let server = start_server().await;
    let client = server.client();
    assert_outside();
    let [before, inner_async, between, inner_sync, after] = outer(&client).await;
    assert_outside();
    let outer = issued(&server, before, "shapes-outer", "You call other agents.");
    assert_eq!([between, after], [Some(outer), Some(outer)]);
    let inner_async = issued(
        &server,
        inner_async,
        "shapes-free-async",
        "You are a free async fn.",
    );
    let inner_sync = issued(
        &server,
        inner_sync,
        "shapes-free-sync",
        "You are a free sync fn.",
    );
    assert_ne!(inner_async, outer);
    assert_ne!(inner_sync, outer);
    assert_ne!(inner_async, inner_sync);

    let [before, inner, after] = outer_sync(&client);
    assert_outside();
    let outer = issued(
        &server,
        before,
        "shapes-outer-sync",
        "You call other agents and block.",
    );
    assert_eq!(after, Some(outer));
    assert_ne!(
        issued(
            &server,
            inner,
            "shapes-free-sync",
            "You are a free sync fn."
        ),
        outer
    );
    assert_eq!(registrations(&server), 5);
}

// ---------------------------------------------------------------------------------------
// Many concurrent runs on a multi-thread runtime.

#[fabraix::agent(
    id = "shapes-concurrent",
    system_prompt = "You run alongside many others.",
    client = client
)]
async fn hop(client: &Client) -> Vec<Option<Trace>> {
    let mut seen = vec![current_trace()];
    for _ in 0..8 {
        yield_now().await;
        seen.push(current_trace());
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_runs_each_see_their_own_trace() {
    const RUNS: usize = 256;
    let server = start_server().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..RUNS {
        let client = server.client();
        tasks.spawn(async move {
            assert_outside();
            let seen = hop(&client).await;
            assert_outside();
            seen
        });
    }
    let mut traces = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let seen = joined.expect("the task ends");
        let first = seen[0].expect("the body sees a trace");
        assert!(
            seen.iter().all(|t| *t == Some(first)),
            "a run saw another's trace across `.await`: {seen:?}"
        );
        traces.push(first.trace_id());
    }
    let issued_traces = server.issued_traces();
    assert!(traces.iter().all(|t| issued_traces.contains(t)));
    traces.sort();
    traces.dedup();
    assert_eq!(traces.len(), RUNS, "every run has a trace of its own");
    assert_eq!(registrations(&server), RUNS);
}

// ---------------------------------------------------------------------------------------
// A sync agent fn blocks on its registration wherever it is called.

#[fabraix::agent(id = "shapes-blocking", system_prompt = "You block on registration.", client = client)]
fn blocking(client: &Client) -> Option<Trace> {
    // Flushed before the fn returns: the tests below find it on the server right after.
    fabraix::log_event(Event::text(EventType::User, "blocking")).expect("inside a run");
    current_trace()
}

/// Asserts the server already holds the one event the run `trace` logged.
#[track_caller]
fn assert_event_sent(server: &MockServer, trace: Trace) {
    let sent = server
        .requests_to(Endpoint::Event)
        .iter()
        .filter(|r| r.body["trace_id"] == trace.trace_id().to_string())
        .count();
    assert_eq!(sent, 1, "the run's event is sent before the fn returns");
}

#[test]
fn sync_fn_on_a_plain_thread() {
    let server = MockServer::start_blocking().expect("the mock server starts");
    let client = server.client();
    let seen = std::thread::spawn(move || {
        assert_outside();
        let seen = blocking(&client);
        assert_outside();
        seen
    })
    .join()
    .expect("the thread ends");
    let trace = issued(
        &server,
        seen,
        "shapes-blocking",
        "You block on registration.",
    );
    assert_event_sent(&server, trace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_fn_on_a_multi_thread_worker() {
    let server = start_server().await;
    let client = server.client();
    let seen = tokio::spawn(async move {
        let seen = blocking(&client);
        assert_outside();
        seen
    })
    .await
    .expect("the task ends");
    let trace = issued(
        &server,
        seen,
        "shapes-blocking",
        "You block on registration.",
    );
    assert_event_sent(&server, trace);
}

#[test]
fn sync_fn_inside_a_current_thread_runtime() {
    let server = MockServer::start_blocking().expect("the mock server starts");
    let client = server.client();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let seen = runtime.block_on(async {
            let direct = blocking(&client);
            let client = client.clone();
            let in_task = tokio::spawn(async move { blocking(&client) })
                .await
                .expect("the task ends");
            assert_outside();
            (direct, in_task)
        });
        let _ = tx.send(seen);
    });
    // A deadlock would leave the channel empty: wait generously, then fail.
    let (direct, in_task) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a sync agent fn inside a current-thread runtime finishes");
    let direct = issued(
        &server,
        direct,
        "shapes-blocking",
        "You block on registration.",
    );
    let in_task = issued(
        &server,
        in_task,
        "shapes-blocking",
        "You block on registration.",
    );
    assert_event_sent(&server, direct);
    assert_event_sent(&server, in_task);
    assert_ne!(direct, in_task);
}

// ---------------------------------------------------------------------------------------
// `#[tokio::test]` and `#[tokio::main]`, above and below the attribute.

#[tokio::test]
#[fabraix::agent(
    id = "shapes-tokio-test-above",
    system_prompt = "You are a test below tokio::test.",
    client = &CLIENT
)]
async fn tokio_test_above_the_agent() {
    let trace = issued(
        &SERVER,
        current_trace(),
        "shapes-tokio-test-above",
        "You are a test below tokio::test.",
    );
    yield_now().await;
    assert_eq!(current_trace(), Some(trace));
}

#[fabraix::agent(
    id = "shapes-tokio-test-below",
    system_prompt = "You are a test above tokio::test.",
    client = &CLIENT
)]
#[tokio::test]
async fn tokio_test_below_the_agent() {
    let trace = issued(
        &SERVER,
        current_trace(),
        "shapes-tokio-test-below",
        "You are a test above tokio::test.",
    );
    yield_now().await;
    assert_eq!(current_trace(), Some(trace));
}

#[tokio::main(flavor = "current_thread")]
#[fabraix::agent(
    id = "shapes-tokio-main-above",
    system_prompt = "You are a main below tokio::main.",
    client = &CLIENT
)]
async fn main_above() -> Option<Trace> {
    yield_now().await;
    current_trace()
}

#[fabraix::agent(
    id = "shapes-tokio-main-below",
    system_prompt = "You are a main above tokio::main.",
    client = &CLIENT
)]
#[tokio::main]
async fn main_below() -> Option<Trace> {
    yield_now().await;
    current_trace()
}

#[test]
fn tokio_main_above_and_below_the_agent() {
    assert_outside();
    let above = main_above();
    assert_outside();
    let below = main_below();
    assert_outside();
    issued(
        &SERVER,
        above,
        "shapes-tokio-main-above",
        "You are a main below tokio::main.",
    );
    issued(
        &SERVER,
        below,
        "shapes-tokio-main-below",
        "You are a main above tokio::main.",
    );
}

// ---------------------------------------------------------------------------------------
// `on_failure`: "continue", "error", "panic", against a port where nothing listens.

/// A client for a loopback port with no listener: every registration fails at once.
fn unreachable_client() -> Client {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("an address").port()
    };
    Client::builder()
        .api_key("fabraix-test-key")
        .base_url(format!("http://127.0.0.1:{port}/v1"))
        .max_retries(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a valid client")
}

/// The error registering a run through `client` gives, to compare messages with.
async fn registration_error(client: &Client) -> fabraix::Error {
    let agent = AgentId::from_name("shapes-probe").expect("a valid name");
    client
        .register_agent_run(agent, "You probe.")
        .await
        .expect_err("nothing listens")
}

#[fabraix::agent(id = "shapes-default", system_prompt = "You carry on by default.", client = client)]
async fn carry_on_by_default(client: &Client, ran: &AtomicBool) -> Option<Trace> {
    ran.store(true, Ordering::SeqCst);
    current_trace()
}

#[fabraix::agent(
    id = "shapes-continue",
    system_prompt = "You carry on.",
    client = client,
    on_failure = "continue"
)]
async fn carry_on(client: &Client, ran: &AtomicBool) -> Option<Trace> {
    ran.store(true, Ordering::SeqCst);
    current_trace()
}

#[fabraix::agent(
    id = "shapes-continue-sync",
    system_prompt = "You carry on and block.",
    client = client,
    on_failure = "continue"
)]
fn carry_on_sync(client: &Client, ran: &AtomicBool) -> Option<Trace> {
    ran.store(true, Ordering::SeqCst);
    current_trace()
}

#[fabraix::agent(
    id = "shapes-error",
    system_prompt = "You stop on failure.",
    client = client,
    on_failure = "error"
)]
async fn strict(client: &Client, ran: &AtomicBool) -> Result<u32, ParseError> {
    ran.store(true, Ordering::SeqCst);
    Ok(1)
}

#[fabraix::agent(
    id = "shapes-error-sync",
    system_prompt = "You stop on failure and block.",
    client = client,
    on_failure = "error"
)]
fn strict_sync(client: &Client, ran: &AtomicBool) -> Result<u32, fabraix::Error> {
    ran.store(true, Ordering::SeqCst);
    Ok(1)
}

#[fabraix::agent(
    id = "shapes-panic-on-failure",
    system_prompt = "You panic on failure.",
    client = client,
    on_failure = "panic"
)]
async fn loud(client: &Client, ran: &AtomicBool) -> u32 {
    ran.store(true, Ordering::SeqCst);
    1
}

#[fabraix::agent(
    id = "shapes-panic-on-failure-sync",
    system_prompt = "You panic on failure and block.",
    client = client,
    on_failure = "panic"
)]
fn loud_sync(client: &Client, ran: &AtomicBool) -> u32 {
    ran.store(true, Ordering::SeqCst);
    1
}

#[fabraix::agent(
    id = "shapes-error-future",
    system_prompt = "You stop on failure, later.",
    client = client,
    on_failure = "error"
)]
fn strict_later(
    client: &Client,
    ran: Arc<AtomicBool>,
) -> impl Future<Output = Result<u32, fabraix::Error>> {
    async move {
        ran.store(true, Ordering::SeqCst);
        Ok(1)
    }
}

#[tokio::test]
async fn on_failure_continue_runs_the_body_without_a_trace() {
    let client = unreachable_client();
    for (name, seen, ran) in [
        {
            let ran = AtomicBool::new(false);
            ("default", carry_on_by_default(&client, &ran).await, ran)
        },
        {
            let ran = AtomicBool::new(false);
            ("async", carry_on(&client, &ran).await, ran)
        },
        {
            let ran = AtomicBool::new(false);
            ("sync", carry_on_sync(&client, &ran), ran)
        },
    ] {
        assert!(ran.load(Ordering::SeqCst), "{name}: the body runs");
        assert_eq!(seen, None, "{name}: the body runs without a trace");
        assert_outside();
    }
}

#[tokio::test]
async fn on_failure_error_returns_the_error_without_running_the_body() {
    let client = unreachable_client();
    let expected = registration_error(&client).await.to_string();

    let ran = AtomicBool::new(false);
    let error = strict(&client, &ran).await.expect_err("registration fails");
    assert!(!ran.load(Ordering::SeqCst), "the body does not run");
    assert_eq!(error, ParseError::Fabraix(expected.clone()));

    let ran = AtomicBool::new(false);
    let error = strict_sync(&client, &ran).expect_err("registration fails");
    assert!(!ran.load(Ordering::SeqCst), "the body does not run");
    assert_eq!(error.to_string(), expected);

    let ran = Arc::new(AtomicBool::new(false));
    let error = strict_later(&client, ran.clone())
        .await
        .expect_err("registration fails");
    assert!(
        !ran.load(Ordering::SeqCst),
        "the returned future's body does not run"
    );
    assert_eq!(error.to_string(), expected);
    assert_outside();
}

#[tokio::test]
async fn on_failure_panic_panics_with_the_error() {
    let client = unreachable_client();
    let expected = registration_error(&client).await.to_string();

    let ran = Arc::new(AtomicBool::new(false));
    let task = {
        let (client, ran) = (client.clone(), ran.clone());
        tokio::spawn(async move { loud(&client, &ran).await })
    };
    let payload = task.await.expect_err("the task panics").into_panic();
    let message = payload
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(
        message.contains(&expected),
        "{message:?} names {expected:?}"
    );
    assert!(!ran.load(Ordering::SeqCst), "the body does not run");

    let ran = AtomicBool::new(false);
    let payload = panic::catch_unwind(AssertUnwindSafe(|| loud_sync(&client, &ran)))
        .expect_err("the call panics");
    let message = payload
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(
        message.contains(&expected),
        "{message:?} names {expected:?}"
    );
    assert!(!ran.load(Ordering::SeqCst), "the body does not run");
    assert_outside();
}

// ---------------------------------------------------------------------------------------
// Carrying the run into other tasks and threads.

struct HandOff {
    own: Option<Trace>,
    spawned: Option<Trace>,
    spawned_blocking: Option<Trace>,
    in_current_trace: Option<Trace>,
    bare_spawn: Option<Trace>,
    thread: Option<Trace>,
}

#[fabraix::agent(id = "shapes-hand-off", system_prompt = "You hand work to tasks.", client = client)]
// The bare `tokio::spawn` below is on purpose: it shows what the spawn warning is about.
#[allow(deprecated)]
async fn hand_off(client: &Client) -> HandOff {
    let own = current_trace();
    let spawned = fabraix::spawn(async {
        yield_now().await;
        current_trace()
    })
    .await
    .expect("the task ends");
    let spawned_blocking = fabraix::spawn_blocking(current_trace)
        .await
        .expect("the task ends");
    let in_current_trace = tokio::spawn(async { current_trace() }.in_current_trace())
        .await
        .expect("the task ends");
    let bare_spawn = tokio::spawn(async { current_trace() })
        .await
        .expect("the task ends");
    let trace = own.expect("inside a run");
    let thread = std::thread::spawn(move || fabraix::sync_scope(trace, current_trace))
        .join()
        .expect("the thread ends");
    HandOff {
        own,
        spawned,
        spawned_blocking,
        in_current_trace,
        bare_spawn,
        thread,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawns_carry_the_run() {
    let server = start_server().await;
    let client = server.client();
    let hand_off = hand_off(&client).await;
    let own = issued(
        &server,
        hand_off.own,
        "shapes-hand-off",
        "You hand work to tasks.",
    );
    assert_eq!(hand_off.spawned, Some(own), "fabraix::spawn");
    assert_eq!(
        hand_off.spawned_blocking,
        Some(own),
        "fabraix::spawn_blocking"
    );
    assert_eq!(hand_off.in_current_trace, Some(own), "in_current_trace");
    assert_eq!(
        hand_off.bare_spawn, None,
        "a bare tokio::spawn does not carry the run"
    );
    assert_eq!(hand_off.thread, Some(own), "sync_scope on another thread");

    // Outside the run, a trace can still be carried by hand.
    assert_outside();
    let scoped = tokio::spawn(fabraix::scope(own, async { current_trace() }))
        .await
        .expect("the task ends");
    assert_eq!(scoped, Some(own), "scope in a task");
    assert_eq!(
        fabraix::scope(own, async { current_trace() }).await,
        Some(own)
    );
    assert_outside();
}

// Regression: the attribute made an async fn's future `!Sync` (the end-of-run flush was
// boxed as `dyn Future + Send`), breaking callers that need `Sync` futures.
#[test]
fn an_agent_fns_future_is_send_and_sync_when_its_body_is() {
    fn send_and_sync<T: Send + Sync>(_: &T) {}

    #[fabraix::agent(id = "sync-future", system_prompt = "p", on_failure = "continue")]
    async fn agent(n: u32) -> u32 {
        n + 1
    }

    let future = agent(1);
    send_and_sync(&future);
    drop(future);
}

// Regression: a sync fn returning a boxed future built any other way than a
// `Box::pin(async ..)` tail registered at the call and ran the future with no trace.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[fabraix::agent(id = "shapes-boxed-any", system_prompt = "You return a boxed future.", client = client)]
fn boxed_any_way(
    client: &Client,
    early: bool,
) -> Pin<Box<dyn Future<Output = Option<Trace>> + Send>> {
    if early {
        return Box::pin(async { current_trace() });
    }
    let made = async {
        yield_now().await;
        current_trace()
    };
    Box::pin(made)
}

#[fabraix::agent(id = "shapes-box-future-alias", system_prompt = "You return a BoxFuture.", client = client)]
fn box_future_alias<'a>(
    client: &'a Client,
    label: &'a str,
) -> BoxFuture<'a, (String, Option<Trace>)> {
    let future = async move { (label.to_owned(), current_trace()) };
    Box::pin(future)
}

#[tokio::test]
async fn boxed_futures_made_any_way_run_in_the_run() {
    let server = start_server().await;
    let client = server.client();
    for early in [false, true] {
        let future = boxed_any_way(&client, early);
        assert_eq!(
            registrations(&server),
            if early { 1 } else { 0 },
            "registers when polled"
        );
        let seen = future.await;
        issued(
            &server,
            seen,
            "shapes-boxed-any",
            "You return a boxed future.",
        );
        assert_outside();
    }
    let (label, seen) = box_future_alias(&client, "alias").await;
    assert_eq!(label, "alias");
    issued(
        &server,
        seen,
        "shapes-box-future-alias",
        "You return a BoxFuture.",
    );
    assert_outside();
}
