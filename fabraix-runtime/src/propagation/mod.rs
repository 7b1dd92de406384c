//! One run across processes: the current trace carried over HTTP (or any other carrier) as
//! W3C Trace Context, so a tool server, a retrieval service or a worker on another machine
//! logs its events and checks its actions in the caller's run.
//!
//! # The wire format
//!
//! Two headers (or, in MCP, two keys of a request's `_meta`), a contract any language can
//! follow:
//!
//! ```text
//! traceparent: 00-<trace id>-<parent id>-01
//! baggage: <other members>,fabraix.agent_id=<agent UUID>,fabraix.registered_at=<RFC 3339 UTC, ms>
//! ```
//!
//! - `<trace id>` is the Fabraix trace id, a UUID, as 32 lowercase hex digits without
//!   dashes. A W3C trace id is 128 bits, as is a UUID, so an OpenTelemetry backend sees
//!   the Fabraix trace id as its own trace id. `<parent id>` is 16 hex digits, random for
//!   each hop and never all zeros; the flags are `01` (sampled).
//! - `fabraix.agent_id` is the run's agent as a hyphenated UUID; `fabraix.registered_at`
//!   when the run was registered, e.g. `2024-01-15T14:30:45.123Z`: it travels to the
//!   millisecond, as the API states it.
//! - [`inject`] merges the two members into the baggage already there: the other members
//!   stay, in their order (those breaking the baggage grammar are dropped, and the last
//!   ones if the whole would pass the W3C limits of [`MAX_BAGGAGE_BYTES`] and
//!   [`MAX_BAGGAGE_MEMBERS`], which would cost the receiver the trace).
//! - [`extract`] finds a trace only when there is exactly one `traceparent`, of version
//!   `00`, in lowercase hex, with non-zero ids, and the baggage (all its headers together)
//!   keeps to the W3C grammar and limits and holds each Fabraix member exactly once, well
//!   formed. Anything else (garbage, other versions, oversized or malformed baggage, text
//!   that is not UTF-8) is no trace: never a panic, never an error.
//!
//! ```
//! use fabraix::propagation::{self, TRACEPARENT};
//! # use fabraix::{AgentId, Trace, TraceId};
//! # let trace = Trace::new(
//! #     "4bf92f35-77b3-4da6-a3ce-929d0e0e4736".parse::<TraceId>().unwrap(),
//! #     AgentId::from_name("cs-agent-prod-v1").unwrap(),
//! #     "2024-01-15T14:30:45.123Z".parse().unwrap(),
//! # );
//!
//! let mut headers = http::HeaderMap::new();
//! headers.insert("baggage", "tenant=acme".parse().unwrap());
//! propagation::inject(&trace, &mut headers);
//!
//! let traceparent = headers[TRACEPARENT].to_str().unwrap();
//! assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
//! assert_eq!(
//!     headers["baggage"],
//!     "tenant=acme,\
//!      fabraix.agent_id=9eeb2aa7-d2bb-5ad2-9dbc-9f7e7b14321b,\
//!      fabraix.registered_at=2024-01-15T14:30:45.123Z"
//! );
//! assert_eq!(propagation::extract(&headers), Some(trace));
//! ```
//!
//! # Clients and servers
//!
//! On the way out, [`inject_current`] writes the current run into a carrier, and
//! [`current_headers`] gives it as headers for a `reqwest` request
//! (`.headers(propagation::current_headers())`); with the `tower` feature,
//! [`PropagateLayer`] does it for every request a tower client sends.
//!
//! On the way in, [`TraceLayer`] (feature `tower`) makes the caller's run current for a
//! server's handler (axum, tonic, hyper), so `current_trace`, `log_event` and
//! `check_action` there act for the caller's run, through the server's own client (the
//! global one unless given another). A server never registers a run for an inbound
//! trace. Without a trace, the handler runs untraced (or in its own
//! `#[fabraix::agent]` run, if it has one). Elsewhere, [`extract`] then
//! [`scope`](crate::scope) does the same by hand.
//!
//! # Trust
//!
//! An inbound trace is a claim by the caller, not a proof: anyone who can reach the
//! server can send headers naming a trace id. Fabraix accepts events and checks only for
//! traces registered with the same organisation's key, so a forged id cannot write into
//! another organisation's runs; within one organisation, a caller that can reach the
//! service can attach its events to any run it knows the id of. When that matters, accept
//! traces only from callers you trust with [`TraceLayer::trust`] (a predicate on the
//! request: a verified client certificate, an internal network, an authenticated
//! identity); from anyone else the handler runs untraced.

mod baggage;
mod carrier;
#[cfg(feature = "tower")]
mod propagate_layer;
#[cfg(feature = "tower")]
mod trace_layer;
mod traceparent;

pub use baggage::{MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS};
pub use carrier::{Extractor, Injector};
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use propagate_layer::{Propagate, PropagateLayer};
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use trace_layer::{TraceFuture, TraceLayer, TraceService, Trust, TrustAll};

use crate::context::current_trace;
use crate::model::Trace;

/// The W3C Trace Context header (and `_meta` key) holding the trace id.
pub const TRACEPARENT: &str = "traceparent";

/// The W3C Baggage header (and `_meta` key) holding the run's agent id and registration
/// time.
pub const BAGGAGE: &str = "baggage";

/// Writes `trace` into `carrier`: a `traceparent` with a fresh parent id, and the Fabraix
/// members merged into the carrier's `baggage` (see the [module docs](self) for the
/// format).
///
/// A trace whose id is the nil UUID cannot be a W3C trace id: nothing is written for it.
///
/// ```
/// # use fabraix::{AgentId, Trace, TraceId, propagation};
/// # let trace = Trace::new(TraceId::from_uuid(uuid::Uuid::new_v4()),
/// #     AgentId::from_name("a").unwrap(), chrono::Utc::now());
/// let mut meta = serde_json::Map::new(); // e.g. an MCP request's `_meta`
/// propagation::inject(&trace, &mut meta);
/// assert_eq!(propagation::extract(&meta).map(|t| t.trace_id()), Some(trace.trace_id()));
/// ```
pub fn inject(trace: &Trace, carrier: &mut (impl Injector + ?Sized)) {
    let Some(traceparent) = traceparent::encode(trace.trace_id()) else {
        return;
    };
    let members = baggage::Members {
        agent_id: trace.agent_id(),
        registered_at: trace.registered_at(),
    };
    let existing = carrier.get_all(BAGGAGE).unwrap_or_default();
    let baggage = baggage::merge(&existing, &members);
    carrier.set(TRACEPARENT, traceparent);
    carrier.set(BAGGAGE, baggage);
}

/// Writes the current run's trace into `carrier`, as [`inject`] does, and returns it;
/// outside any run (or in a run that could not be registered) writes nothing and returns
/// `None`.
pub fn inject_current(carrier: &mut (impl Injector + ?Sized)) -> Option<Trace> {
    let trace = current_trace()?;
    inject(&trace, carrier);
    Some(trace)
}

/// The current run's trace as HTTP headers, empty outside any run: for clients that take
/// a header map, such as `reqwest` (`request.headers(propagation::current_headers())`).
///
/// ```
/// let headers = fabraix::propagation::current_headers();
/// assert!(headers.is_empty()); // no run here
/// ```
pub fn current_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    inject_current(&mut headers);
    headers
}

/// Reads a trace from `carrier`; `None` when there is none, or when anything about it is
/// malformed (see the [module docs](self)). Never panics.
///
/// The trace is the caller's claim: see [Trust](self#trust).
pub fn extract(carrier: &(impl Extractor + ?Sized)) -> Option<Trace> {
    let parents = carrier.get_all(TRACEPARENT)?;
    let [traceparent] = parents.as_slice() else {
        return None;
    };
    let trace_id = traceparent::decode(traceparent)?;
    let members = baggage::decode(&carrier.get_all(BAGGAGE)?)?;
    Some(Trace::new(
        trace_id,
        members.agent_id,
        members.registered_at,
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use chrono::{TimeZone, Utc};
    use http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::model::{AgentId, TraceId};

    fn trace() -> Trace {
        Trace::new(
            TraceId::from_uuid(uuid::Uuid::new_v4()),
            AgentId::from_uuid(uuid::Uuid::new_v4()),
            Utc.timestamp_millis_opt(1_705_329_045_123).unwrap(),
        )
    }

    #[test]
    fn round_trips_through_every_carrier() {
        let trace = trace();
        let mut headers = HeaderMap::new();
        inject(&trace, &mut headers);
        assert_eq!(extract(&headers), Some(trace));
        let mut meta = serde_json::Map::new();
        inject(&trace, &mut meta);
        assert_eq!(extract(&meta), Some(trace));
        let mut hash = HashMap::new();
        inject(&trace, &mut hash);
        assert_eq!(extract(&hash), Some(trace));
        let mut tree = BTreeMap::new();
        inject(&trace, &mut tree);
        assert_eq!(extract(&tree), Some(trace));
        let dynamic: &mut dyn Injector = &mut tree;
        inject(&trace, dynamic);
        assert_eq!(extract(dynamic), Some(trace));
    }

    #[test]
    fn reinjecting_replaces_the_previous_trace() {
        let (first, second) = (trace(), trace());
        let mut headers = HeaderMap::new();
        headers.append(BAGGAGE, HeaderValue::from_static("a=1"));
        headers.append(BAGGAGE, HeaderValue::from_static("b=2"));
        inject(&first, &mut headers);
        inject(&second, &mut headers);
        assert_eq!(headers.get_all(BAGGAGE).iter().count(), 1);
        assert!(headers[BAGGAGE].to_str().unwrap().starts_with("a=1,b=2,"));
        assert_eq!(extract(&headers), Some(second));
    }

    #[test]
    fn a_repeated_traceparent_is_no_trace() {
        let trace = trace();
        let mut headers = HeaderMap::new();
        inject(&trace, &mut headers);
        let again = headers[TRACEPARENT].clone();
        headers.append(TRACEPARENT, again);
        assert_eq!(extract(&headers), None);
    }

    #[test]
    fn the_nil_trace_id_writes_nothing() {
        let nil = Trace::new(
            TraceId::from_uuid(uuid::Uuid::nil()),
            AgentId::from_uuid(uuid::Uuid::new_v4()),
            Utc::now(),
        );
        let mut headers = HeaderMap::new();
        inject(&nil, &mut headers);
        assert!(headers.is_empty());
    }

    #[test]
    fn inject_current_writes_only_inside_a_run() {
        let mut headers = HeaderMap::new();
        assert_eq!(inject_current(&mut headers), None);
        assert!(headers.is_empty());
        let trace = trace();
        let written = crate::sync_scope(trace, || inject_current(&mut headers));
        assert_eq!(written, Some(trace));
        assert_eq!(extract(&headers), Some(trace));
        let headers = crate::sync_scope(trace, current_headers);
        assert_eq!(extract(&headers), Some(trace));
    }
}
