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

// Layers, each importing only those above it in this list:
// model -> api -> export -> client -> context -> attribute -> conversation; testing uses
// client and model.
mod api;
mod attribute;
mod client;
mod context;
mod conversation;
mod export;
mod model;

pub mod propagation;
#[cfg(feature = "testing")]
pub mod testing;

pub use api::DEFAULT_BASE_URL;
pub use client::{Client, ClientBuilder, FleetStats, InitGuard, Stats, global_client, init};
#[allow(deprecated)] // the old name, kept for those who use it
pub use context::event_stats;
pub use context::{
    RunContext, TraceFutureExt, Traced, check_action, check_action_blocking, current_run,
    current_trace, flush, flush_blocking, log_event, scope, spawn, spawn_blocking, stats,
    sync_scope,
};
pub use conversation::{Conversation, conversation};
pub use export::EventStats;
pub use model::{
    Action, AgentId, Error, Event, EventReceipt, EventType, IntoAgentId, RateLimit, RateWindow,
    Trace, TraceId, Verdict,
};

/// Used by the code `#[fabraix::agent]` and `#[fabraix::action]` generate. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::attribute::*;
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

/// The response decoders, for fuzzing and property tests. Not public API: compiled only
/// for `cargo fuzz` (`cfg(fuzzing)`) and with the undocumented `__fuzz` feature.
#[cfg(any(fuzzing, feature = "__fuzz"))]
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::api::fuzz::*;
}

/// One shared-budget acquisition, for the fleet bench. Not public API: compiled only with
/// the undocumented `__bench` feature.
#[cfg(feature = "__bench")]
#[doc(hidden)]
pub mod __bench {
    pub use crate::api::FleetBench;
}
