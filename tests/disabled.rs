//! `FABRAIX_DISABLED=1` (and `ClientBuilder::disabled(true)`) means the SDK is off: agent
//! fns run without a trace, their events are let go and counted, `check_action` answers
//! `Err(Disabled)`, and guarded tools run, unchecked, with one warning per process.
//!
//! One test only: it sets the process's environment, and the warning is once per process.

mod capture;

use std::sync::atomic::{AtomicUsize, Ordering};

use capture::Captured;
use fabraix::testing::MockServer;
use fabraix::{Action, Client, Error, Event, EventType};

const WARNING: &str = "fabraix is disabled: guarded tool calls run unchecked";

static TOOL_RAN: AtomicUsize = AtomicUsize::new(0);

/// Archive a document.
#[fabraix::action]
async fn archive(document: String) -> Result<String, Error> {
    TOOL_RAN.fetch_add(1, Ordering::SeqCst);
    Ok(format!("archived {document}"))
}

/// Shred a document.
#[fabraix::action]
fn shred(document: String) -> Result<String, Error> {
    TOOL_RAN.fetch_add(1, Ordering::SeqCst);
    Ok(format!("shredded {document}"))
}

/// What an agent fn saw of its run.
#[derive(Debug)]
struct Seen {
    traced: bool,
    logged: Result<(), Error>,
    checked: Result<fabraix::Verdict, Error>,
    tool: Result<String, Error>,
}

// The global client, built from the environment.
#[fabraix::agent(id = "off-async", system_prompt = "You run with fabraix off.")]
async fn global_async() -> Seen {
    Seen {
        traced: fabraix::current_trace().is_some(),
        logged: fabraix::log_event(Event::text(EventType::User, "hello")),
        checked: fabraix::check_action(&Action::new("archive")).await,
        tool: archive("minutes.txt".into()).await,
    }
}

#[fabraix::agent(id = "off-sync", system_prompt = "You run with fabraix off.")]
fn global_sync() -> Seen {
    Seen {
        traced: fabraix::current_trace().is_some(),
        logged: fabraix::log_event(Event::text(EventType::User, "hello")),
        checked: fabraix::check_action_blocking(&Action::new("shred")),
        tool: shred("draft.txt".into()),
    }
}

// A client disabled in code, named by the fn.
#[fabraix::agent(id = "off-explicit", system_prompt = "You run with fabraix off.", client = client)]
async fn explicit(client: &Client) -> Seen {
    Seen {
        traced: fabraix::current_trace().is_some(),
        logged: fabraix::log_event(Event::text(EventType::Tool, "looked it up")),
        checked: fabraix::check_action(&Action::new("archive")).await,
        tool: archive("ledger.txt".into()).await,
    }
}

fn assert_off(seen: &Seen, tool_output: &str) {
    assert!(!seen.traced, "{seen:?}");
    assert!(seen.logged.is_ok(), "{seen:?}");
    assert!(matches!(seen.checked, Err(Error::Disabled)), "{seen:?}");
    assert_eq!(seen.tool.as_deref().ok(), Some(tool_output), "{seen:?}");
}

#[test]
fn a_disabled_sdk_is_off_and_guarded_tools_run_unchecked() {
    // A server that would answer, to show that nothing reaches it.
    let server = MockServer::start_blocking().unwrap();
    // SAFETY: the only test of this binary, and nothing has started that reads the
    // environment: no client exists yet and no other thread of ours runs.
    unsafe {
        std::env::set_var("FABRAIX_DISABLED", "1");
        std::env::remove_var("FABRAIX_API_KEY");
        std::env::set_var("FABRAIX_BASE_URL", server.url());
    }
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // Through the global client, built from the environment: sync, then async.
    let sync = global_sync();
    assert_off(&sync, "shredded draft.txt");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let asynchronous = runtime.block_on(global_async());
    assert_off(&asynchronous, "archived minutes.txt");
    let global = fabraix::global_client().unwrap();
    assert!(global.is_disabled());

    // Through a client disabled in code (with a key and a server it would reach).
    let disabled = server.client_builder().disabled(true).build().unwrap();
    let seen = runtime.block_on(explicit(&disabled));
    assert_off(&seen, "archived ledger.txt");

    // Every guarded body ran.
    assert_eq!(TOOL_RAN.load(Ordering::SeqCst), 3);

    // Each run let go its event and its tool's `tool` event, counted on its client.
    let stats = global.stats().events;
    assert_eq!(stats.untraced, 4, "{stats:?}");
    assert_eq!((stats.queued, stats.sent, stats.in_queue), (0, 0, 0));
    let stats = disabled.stats().events;
    assert_eq!(stats.untraced, 2, "{stats:?}");
    assert_eq!(stats.queued, 0, "{stats:?}");

    // A disabled client lets an event go when asked directly, and counts it too.
    let trace_id = fabraix::TraceId::from_uuid(uuid::Uuid::new_v4());
    disabled
        .queue_event(trace_id, Event::text(EventType::System, "direct"))
        .unwrap();
    assert_eq!(disabled.stats().events.untraced, 3);
    assert!(matches!(
        runtime.block_on(disabled.check_action(trace_id, &Action::new("archive"))),
        Err(Error::Disabled)
    ));

    // Outside any run, a check still says there is none.
    assert!(matches!(
        fabraix::check_action_blocking(&Action::new("shred")),
        Err(Error::NoTrace)
    ));

    // Nothing was sent, and the warning came once, for all three tools.
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    let logs = captured.text();
    assert_eq!(logs.matches(WARNING).count(), 1, "{logs}");
    // One warning for the process, naming the guard of the first unchecked call.
    assert!(logs.contains(r##"guard="#[fabraix::action]""##), "{logs}");
    // A disabled SDK is not a failed registration: no warning of one.
    assert!(!logs.contains("not registered"), "{logs}");
}
