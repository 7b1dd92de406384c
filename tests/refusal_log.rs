//! A refused call of a `#[fabraix::action]` fn is logged in the words every guard uses.
//!
//! One test only: it installs the process's subscriber, so that every callsite reports to
//! it whatever thread meets it first.

mod capture;

use fabraix::Error;
use fabraix::testing::{Endpoint, Fault, MockServer};

// One voice: a refused call of a guarded fn is logged in the very words the integrations'
// guards give a model, naming the guard.
#[test]
fn a_refused_call_is_logged_in_the_words_every_guard_uses() {
    #[fabraix::action]
    async fn wire_money(to: String) -> Result<(), Error> {
        let _ = to;
        Ok(())
    }

    let captured = capture::Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let (blocked, unchecked) = {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = MockServer::start().await.unwrap();
            server.block_action("wire_money", "Wires need a second signature.");
            let client = server.client_builder().max_retries(0).build().unwrap();
            let trace = client
                .register_agent_run(fabraix::AgentId::from_name("payments").unwrap(), "p")
                .await
                .unwrap();
            let blocked = fabraix::scope(trace, wire_money("acct-9".into())).await;
            server.fail_next(1, Fault::status(401).on(Endpoint::Check));
            let unchecked = fabraix::scope(trace, wire_money("acct-9".into())).await;
            (blocked, unchecked)
        })
    };
    assert!(matches!(blocked, Err(Error::Blocked { .. })), "{blocked:?}");
    assert!(
        matches!(unchecked, Err(Error::Api { status: 401, .. })),
        "{unchecked:?}"
    );

    let logs = captured.text();
    let line = |text: &str| {
        logs.lines()
            .find(|line| line.contains(text))
            .unwrap_or_else(|| panic!("no line says {text:?}:\n{logs}"))
            .to_owned()
    };
    let blocked = line(
        "The call to `wire_money` did not run: Fabraix blocked it. Reason: Wires need a \
         second signature.",
    );
    assert!(blocked.contains(" DEBUG fabraix:"), "{blocked}");
    assert!(
        blocked.contains(r##"guard="#[fabraix::action]""##),
        "{blocked}"
    );
    let unchecked = line(
        "The call to `wire_money` did not run: Fabraix could not check it (fabraix api error \
         401: Unauthorized), and unchecked calls are refused.",
    );
    assert!(unchecked.contains(" WARN fabraix:"), "{unchecked}");
    assert!(unchecked.contains(r##"tool="wire_money""##), "{unchecked}");
}
