//! The code `#[fabraix::agent]` generates holds up next to names that shadow what it uses:
//! modules named `core`, `std` and `fabraix`, local `Option`, `Result`, `Some`, `None`, `Ok`,
//! `Err` and `String` types, and locals named like the expansion's own. It also works through
//! a re-export with `crate = "…"`.
#![allow(dead_code, non_camel_case_types, clippy::disallowed_names)]

// Shadows of the crates the expansion could have named by relative paths.
mod core {}
mod std {}
mod fabraix {}

// Shadows of prelude names.
struct Option;
struct Result;
struct String;
struct Some;
struct None;
struct Ok;
struct Err;
struct Box;
struct Future;

/// The facade, re-exported as a crate that wraps the SDK would.
mod sdk {
    pub use ::fabraix;
}

use ::fabraix::testing::MockServer;
use ::fabraix::{Client, Trace, current_trace};

#[::fabraix::agent(id = "hygiene-async", system_prompt = "You are hygienic.", client = client)]
async fn shadowed_async(client: &Client) -> ::core::option::Option<Trace> {
    // Locals named like the expansion's own do not clash with it.
    let __fabraix_run = 1;
    let __fabraix_guard = 2;
    let __fabraix_ret = 3;
    ::core::assert_eq!(__fabraix_run + __fabraix_guard + __fabraix_ret, 6);
    current_trace()
}

#[::fabraix::agent(id = "hygiene-sync", system_prompt = "You are hygienic.", client = client)]
fn shadowed_sync(client: &Client) -> ::core::option::Option<Trace> {
    let __fabraix_run = 1;
    let __fabraix_guard = 2;
    ::core::assert_eq!(__fabraix_run + __fabraix_guard, 3);
    current_trace()
}

#[::fabraix::agent(
    id = "hygiene-error",
    system_prompt = "You are hygienic and strict.",
    client = client,
    on_failure = "error"
)]
async fn shadowed_result(client: &Client) -> ::core::result::Result<Trace, ::fabraix::Error> {
    let __fabraix_error = "a local";
    ::core::assert_eq!(__fabraix_error, "a local");
    current_trace().ok_or(::fabraix::Error::NoTrace)
}

#[::fabraix::agent(
    id = "hygiene-future",
    system_prompt = "You are hygienic later.",
    client = client
)]
fn shadowed_future(
    client: &Client,
    early: bool,
) -> impl ::core::future::Future<Output = ::core::option::Option<Trace>> {
    let __fabraix_body = "a local";
    ::core::assert_eq!(__fabraix_body, "a local");
    if early {
        return probe();
    }
    probe()
}

async fn probe() -> ::core::option::Option<Trace> {
    current_trace()
}

#[::fabraix::agent(
    id = "hygiene-reexport",
    system_prompt = "You are reached through a re-export.",
    client = client,
    crate = "crate::sdk::fabraix"
)]
async fn through_reexport(client: &Client) -> ::core::option::Option<Trace> {
    current_trace()
}

#[::fabraix::agent(
    id = "hygiene-reexport-sync",
    system_prompt = "You are reached through a re-export and block.",
    client = client,
    crate = "crate::sdk::fabraix",
    on_failure = "panic"
)]
fn through_reexport_sync(client: &Client) -> ::core::option::Option<Trace> {
    current_trace()
}

#[::tokio::test]
async fn generated_paths_hold_next_to_shadows() {
    let server = MockServer::start().await.expect("the mock server starts");
    let client = server.client();
    let seen = [
        shadowed_async(&client).await,
        shadowed_sync(&client),
        ::core::option::Option::Some(shadowed_result(&client).await.expect("registered")),
        shadowed_future(&client, true).await,
        shadowed_future(&client, false).await,
        through_reexport(&client).await,
        through_reexport_sync(&client),
    ];
    let issued = server.issued_traces();
    ::core::assert_eq!(issued.len(), seen.len());
    for trace in seen {
        let trace = trace.expect("the body sees a trace");
        ::core::assert!(issued.contains(&trace.trace_id()));
    }
    ::core::assert_eq!(current_trace(), ::core::option::Option::None);
}
