//! What the SDK talks about: ids, runs, events, actions, verdicts, errors, and the API's
//! wire format. Plain data and pure functions; no I/O. Every other layer builds on this one.

mod action;
mod error;
mod event;
mod finite;
mod ids;
mod rate_limit;
mod trace;
pub(crate) mod wire;

pub use action::{Action, Verdict};
pub use error::Error;
pub use event::{Event, EventReceipt, EventType};
pub use ids::{AgentId, IntoAgentId, TraceId};
pub use rate_limit::{RateLimit, RateWindow};
pub use trace::Trace;

pub(crate) use action::{attach_definitions, parameters_generator};
pub(crate) use event::NOT_FINITE;
pub(crate) use finite::has_non_finite;
pub(crate) use trace::ClientId;
