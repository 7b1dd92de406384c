//! Rust SDK for [Fabraix](https://fabraix.com), the security platform for AI agents.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use fabraix_runtime::{
    Action, AgentId, Client, ClientBuilder, DEFAULT_BASE_URL, Error, Event, EventReceipt,
    EventStats, EventType, Trace, TraceFutureExt, TraceId, Traced, Verdict, check_action,
    check_action_blocking, current_trace, event_stats, flush, flush_blocking, init, log_event,
    scope, spawn, spawn_blocking, sync_scope,
};

pub use fabraix_macros::{action, agent};

#[cfg(feature = "testing")]
pub use fabraix_runtime::testing;

#[doc(hidden)]
pub mod __private {
    pub use fabraix_runtime::__private::*;
}
