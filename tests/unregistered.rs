//! An agent run that could not be registered (`on_failure = "continue"`) keeps why: its
//! checks and guarded tools answer `Error::Unregistered` naming the cause, not `NoTrace`;
//! its events are let go and counted; outside any run, `NoTrace` still says so.

use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fabraix::testing::{Endpoint, Fault, MockServer};
use fabraix::{Action, Client, Error, Event, EventType};

static TOOL_RAN: AtomicUsize = AtomicUsize::new(0);

/// Close a support ticket.
#[fabraix::action]
async fn close_ticket(ticket: u64) -> Result<u64, Error> {
    TOOL_RAN.fetch_add(1, Ordering::SeqCst);
    Ok(ticket)
}

/// Reopen a support ticket.
#[fabraix::action]
fn reopen_ticket(ticket: u64) -> Result<u64, Error> {
    TOOL_RAN.fetch_add(1, Ordering::SeqCst);
    Ok(ticket)
}

/// A client whose key the server refuses: every registration is a 401.
async fn refused_client(server: &MockServer) -> Client {
    server
        .client_builder()
        .api_key("sk-not-the-servers-key")
        .build()
        .unwrap()
}

/// The error is `Unregistered` and its cause is the API's 401, in the variant, in the
/// message and as the source.
fn assert_names_the_401(error: &Error) {
    let Error::Unregistered { cause } = error else {
        panic!("expected Error::Unregistered, got {error:?}");
    };
    assert_eq!(cause.status(), Some(401), "{cause:?}");
    let shown = error.to_string();
    assert!(shown.contains("could not be registered"), "{shown}");
    assert!(shown.contains("fabraix api error 401"), "{shown}");
    let source = error.source().expect("the cause is the source");
    assert!(source.to_string().contains("401"), "{source}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn checks_inside_a_run_that_got_401_name_the_401() {
    let server = MockServer::start().await.unwrap();
    let client = refused_client(&server).await;

    #[fabraix::agent(id = "refused", system_prompt = "You are refused.", client = client)]
    async fn agent(client: &Client) -> (Result<fabraix::Verdict, Error>, Result<u64, Error>) {
        assert!(fabraix::current_trace().is_none());
        assert!(
            fabraix::current_run().is_some(),
            "inside a run, without a trace"
        );
        let checked = fabraix::check_action(&Action::new("close_ticket")).await;
        let tool = close_ticket(7).await;
        (checked, tool)
    }

    let before = TOOL_RAN.load(Ordering::SeqCst);
    let (checked, tool) = agent(&client).await;
    assert_names_the_401(&checked.unwrap_err());
    assert_names_the_401(&tool.unwrap_err());
    assert_eq!(
        TOOL_RAN.load(Ordering::SeqCst),
        before,
        "the guarded tool ran"
    );

    // One registration, refused; no check was ever sent.
    let registrations = server.requests_to(Endpoint::RegisterAgentRun);
    assert_eq!(registrations.len(), 1);
    assert!(!registrations[0].authenticated);
    assert!(server.requests_to(Endpoint::Check).is_empty());
}

#[test]
fn sync_checks_inside_a_run_that_got_401_name_the_401() {
    let server = MockServer::start_blocking().unwrap();
    let client = server
        .client_builder()
        .api_key("sk-not-the-servers-key")
        .build()
        .unwrap();

    #[fabraix::agent(id = "refused-sync", system_prompt = "You are refused.", client = client)]
    fn agent(client: &Client) -> (Result<fabraix::Verdict, Error>, Result<u64, Error>) {
        let checked = fabraix::check_action_blocking(&Action::new("reopen_ticket"));
        (checked, reopen_ticket(9))
    }

    let before = TOOL_RAN.load(Ordering::SeqCst);
    let (checked, tool) = agent(&client);
    assert_names_the_401(&checked.unwrap_err());
    assert_names_the_401(&tool.unwrap_err());
    assert_eq!(
        TOOL_RAN.load(Ordering::SeqCst),
        before,
        "the guarded tool ran"
    );
    assert!(server.requests_to(Endpoint::Check).is_empty());
}

#[tokio::test]
async fn a_run_that_timed_out_registering_names_the_timeout() {
    let server = MockServer::start().await.unwrap();
    server.fail_next(10, Fault::delay(Duration::from_secs(5)));
    let client = server
        .client_builder()
        .timeout(Duration::from_millis(100))
        .max_retries(0)
        .build()
        .unwrap();

    #[fabraix::agent(id = "slow", system_prompt = "You wait.", client = client)]
    async fn agent(client: &Client) -> Result<fabraix::Verdict, Error> {
        fabraix::check_action(&Action::new("close_ticket")).await
    }

    match agent(&client).await.unwrap_err() {
        Error::Unregistered { cause } => {
            assert!(matches!(*cause, Error::Timeout { .. }), "{cause:?}")
        }
        other => panic!("expected Error::Unregistered, got {other:?}"),
    }
}

#[tokio::test]
async fn events_of_a_run_that_got_401_are_counted_as_untraced() {
    let server = MockServer::start().await.unwrap();
    let client = refused_client(&server).await;

    #[fabraix::agent(id = "refused", system_prompt = "You are refused.", client = client)]
    async fn agent(client: &Client) -> Vec<Result<(), Error>> {
        (0..3)
            .map(|i| fabraix::log_event(Event::text(EventType::User, format!("message {i}"))))
            .collect()
    }

    let logged = agent(&client).await;
    assert!(logged.iter().all(Result::is_ok), "{logged:?}");
    let stats = client.stats().events;
    assert_eq!(stats.untraced, 3, "{stats:?}");
    assert_eq!(stats.queued, 0, "{stats:?}");
    assert!(server.requests_to(Endpoint::Event).is_empty());

    // The server's own client, in another run, counts none of them.
    assert_eq!(server.client().stats().events.untraced, 0);
}

#[tokio::test]
async fn outside_any_run_it_is_still_no_trace() {
    let before = TOOL_RAN.load(Ordering::SeqCst);
    let checked = fabraix::check_action(&Action::new("close_ticket")).await;
    assert!(matches!(checked, Err(Error::NoTrace)), "{checked:?}");
    assert!(matches!(close_ticket(1).await, Err(Error::NoTrace)));
    let logged = fabraix::log_event(Event::text(EventType::User, "hello"));
    assert!(matches!(logged, Err(Error::NoTrace)), "{logged:?}");
    assert_eq!(TOOL_RAN.load(Ordering::SeqCst), before);
}
