//! The runtime of the [`fabraix`](https://docs.rs/fabraix) SDK: the Fabraix API client,
//! the trace context, the event pipeline and the test server.
//!
//! Depend on `fabraix`, which re-exports what is public here and adds the
//! `#[fabraix::agent]` and `#[fabraix::action]` attributes.
//!
//! # The API this crate speaks
//!
//! Every request is a `POST` with `x-api-key` and `Content-Type: application/json`, to the
//! base URL (default [`DEFAULT_BASE_URL`]):
//!
//! | endpoint | request | answer |
//! |---|---|---|
//! | `/register-agent-run` | `agent_id` (UUID), `timestamp` (`YYYY-MM-DDTHH:mm:ss.sssZ`, UTC), `system_prompt` | `trace_id`, `timestamp` |
//! | `/event` | `event_type`, `trace_id`, `timestamp` (Unix seconds, a number), `content` and `schema` (JSON documents as strings) | `event_id`, `timestamp` |
//! | `/check` | the same, with `event_type: "action_check"` and a function-form `schema` | `is_safe`, `reasoning`, `action_check_id`, `timestamp` |
//!
//! Errors come as `{"error": {"message", "type", "code"}}` with 400, 401, 403, 404, 429 or
//! 500 (and 502, 503, 504 from gateways); they become [`Error::Api`] or
//! [`Error::RateLimited`].
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod action;
mod client;
mod config;
mod context;
mod current;
mod error;
mod event;
mod exporter;
mod global;
mod guard;
mod ids;
mod io;
mod retry;
mod run;
mod trace;
mod transport;
mod wire;

pub mod propagation;
#[cfg(feature = "testing")]
pub mod testing;

pub use action::{Action, Verdict};
pub use client::Client;
pub use config::{ClientBuilder, DEFAULT_BASE_URL};
pub use context::{
    RunContext, TraceFutureExt, Traced, current_run, current_trace, scope, spawn, spawn_blocking,
    sync_scope,
};
pub use current::{
    check_action, check_action_blocking, event_stats, flush, flush_blocking, log_event,
};
pub use error::Error;
pub use event::{Event, EventReceipt, EventType};
pub use exporter::EventStats;
pub use global::{global_client, init};
pub use ids::{AgentId, IntoAgentId, TraceId};
pub use trace::Trace;

/// Used by the code `#[fabraix::agent]` and `#[fabraix::action]` generate. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::guard::{
        ActionArgs, ActionArgument, ActionCall, ActionReturn, ApprovedCall, call_once, refuse,
    };
    pub use crate::run::{AgentRun, ErrorReturn, RunFuture, RunGuard, agent_id, system_prompt};
    pub use crate::{Client, Error, IntoAgentId, global_client};
    pub use core::convert::{From, Into};
    pub use core::option::Option::{self, None, Some};
    pub use core::result::Result::{self, Err, Ok};
    pub use std::boxed::Box;
    pub use std::string::String;

    /// Markers the expansion uses at a bare spawn in an agent body, so the compiler warns
    /// there that the trace does not follow.
    #[allow(non_upper_case_globals)]
    pub mod lint {
        /// Marks a bare `tokio::spawn`.
        #[deprecated(
            note = "the current fabraix trace does not follow into `tokio::spawn`; use `fabraix::spawn(fut)` or `tokio::spawn(fut.in_current_trace())`"
        )]
        pub const tokio_spawn: () = ();
        /// Marks a bare `tokio::task::spawn_blocking`.
        #[deprecated(
            note = "the current fabraix trace does not follow into `tokio::task::spawn_blocking`; use `fabraix::spawn_blocking(f)`"
        )]
        pub const tokio_spawn_blocking: () = ();
        /// Marks a bare `std::thread::spawn`.
        #[deprecated(
            note = "the current fabraix trace does not follow into `std::thread::spawn`; capture `let run = fabraix::current_run();` and run the thread's work in `run.sync_scope(..)`"
        )]
        pub const thread_spawn: () = ();
    }
}

/// The response decoders, for fuzzing and property tests. Not public API.
#[doc(hidden)]
pub mod __fuzz {
    use std::time::{Duration, SystemTime};

    use crate::transport::{api_error, decode};
    use crate::wire::{CheckResponse, EventResponse, RegisterResponse};
    use crate::{AgentId, Error, EventReceipt, Trace, Verdict};

    /// The key the decoders scrub from what they quote.
    pub const KEY: &str = "fuzz-secret-key";

    /// A `/register-agent-run` success body, as the client reads it.
    pub fn register(body: &[u8]) -> Result<Trace, Error> {
        decode::<RegisterResponse>(KEY, "/register-agent-run", body)?
            .into_trace(AgentId::from_uuid(uuid::Uuid::nil()))
    }

    /// An `/event` success body.
    pub fn event(body: &[u8]) -> Result<EventReceipt, Error> {
        decode::<EventResponse>(KEY, "/event", body)?.into_receipt()
    }

    /// A `/check` success body.
    pub fn check(body: &[u8]) -> Result<Verdict, Error> {
        decode::<CheckResponse>(KEY, "/check", body)?.into_verdict()
    }

    /// An error status and its body.
    pub fn error(status: u16, body: &[u8]) -> Error {
        api_error(KEY, status, body)
    }

    /// A `Retry-After` value, read at `now`.
    pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
        crate::retry::parse_retry_after(value, now)
    }
}
