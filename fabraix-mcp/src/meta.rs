//! The trace a request carries in its `_meta`: W3C `traceparent` and `baggage`, exactly as
//! [`fabraix::propagation`] writes them into HTTP headers.

use fabraix::{Trace, propagation};
use rmcp::model::{CallToolRequestParams, RequestMetaObject};

/// The trace in a request's `_meta`, as [`inject_trace`] writes it. A `_meta` without
/// one, or with anything malformed (values that are not strings, a `traceparent` of
/// another version or with zero ids, baggage without a valid `fabraix.agent_id`), has
/// none: never a panic, never an error.
///
/// ```
/// use rmcp::model::RequestMetaObject;
///
/// let meta: RequestMetaObject =
///     serde_json::from_value(serde_json::json!({ "traceparent": 42, "baggage": "?" })).unwrap();
/// assert_eq!(fabraix_mcp::extract_trace(&meta), None);
/// ```
pub fn extract_trace(meta: &RequestMetaObject) -> Option<Trace> {
    propagation::extract(&meta.0.0)
}

/// Writes `trace` into the call's `_meta` (`traceparent` and `baggage`), keeping what
/// `_meta` already holds (other baggage members included), so that a guarded server runs
/// the tool in this run.
///
/// The keys are those of MCP's trace-context convention, which rmcp reads with
/// [`RequestParamsMeta::traceparent`](rmcp::model::RequestParamsMeta::traceparent) and
/// [`baggage`](rmcp::model::RequestParamsMeta::baggage).
pub fn inject_trace(params: &mut CallToolRequestParams, trace: &Trace) {
    let meta = params.meta.get_or_insert_with(RequestMetaObject::new);
    propagation::inject(trace, &mut meta.0.0);
}

/// Writes the current run's trace ([`fabraix::current_trace`]) into the call's `_meta`,
/// as [`inject_trace`] does, and returns it; outside any run, leaves the call as it is and
/// returns `None`.
pub fn inject_current_trace(params: &mut CallToolRequestParams) -> Option<Trace> {
    let trace = fabraix::current_trace()?;
    inject_trace(params, &trace);
    Some(trace)
}
