//! What the MockServer remembers of each exchange, and how much of it it keeps.

use std::time::Instant;

use serde_json::Value;
use uuid::Uuid;

use super::{RecordedRequest, State};
use crate::api::scrub::scrub;
use crate::model::TraceId;

/// The answer a [`RecordedRequest`] got. Should it hold an API key this process knows
/// (an injected fault's body can echo the server's), the key is recorded as `[redacted]`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedResponse {
    /// The HTTP status, e.g. `200`.
    pub status: u16,
    /// The body parsed as JSON, or `Value::Null` when it is not JSON.
    pub body: Value,
    /// The body as text (lossy UTF-8).
    pub raw_body: String,
    /// When it was sent.
    pub answered_at: Instant,
}

impl RecordedResponse {
    pub(super) fn new(status: u16, body: &[u8]) -> Self {
        let raw_body = scrub(&String::from_utf8_lossy(body));
        Self {
            status,
            body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
            raw_body,
            answered_at: Instant::now(),
        }
    }
}

impl State {
    /// The trace a request body's `trace_id` names, when the server issued it.
    pub(super) fn named_trace(&self, body: &Value) -> Option<TraceId> {
        body.get("trace_id")
            .and_then(Value::as_str)
            .and_then(|text| Uuid::try_parse(text).ok())
            .filter(|id| self.traces.contains(id))
            .map(TraceId::from_uuid)
    }

    /// Records a request (its `sequence` is assigned here) and answers that sequence.
    pub(super) fn record(&mut self, mut request: RecordedRequest, keep: Option<usize>) -> u64 {
        let sequence = self.received;
        self.received += 1;
        request.sequence = sequence;
        if request.trace.is_none() {
            self.unattached += 1;
        }
        self.requests.push(request);
        self.trim_unattached(keep);
        self.changes += 1;
        sequence
    }

    /// Records the answer to the request `sequence` (if it is still kept). A registration
    /// that was issued a trace belongs to that trace from now on.
    pub(super) fn record_answer(&mut self, sequence: u64, response: RecordedResponse) {
        let Ok(index) = self
            .requests
            .binary_search_by_key(&sequence, |request| request.sequence)
        else {
            return;
        };
        let issued = match &self.requests[index].trace {
            Some(_) => None,
            None => self.named_trace(&response.body),
        };
        let request = &mut self.requests[index];
        if issued.is_some() && request.path.ends_with("/register-agent-run") {
            request.trace = issued;
            self.unattached = self.unattached.saturating_sub(1);
        }
        request.response = Some(response);
        self.changes += 1;
    }

    /// Remembers a newly issued trace; past `keep` runs, forgets the oldest with its
    /// requests.
    pub(super) fn issue(&mut self, trace: Uuid, keep: Option<usize>) {
        self.traces.insert(trace);
        self.issued.push_back(trace);
        let Some(keep) = keep else { return };
        while self.issued.len() > keep {
            let Some(old) = self.issued.pop_front() else {
                break;
            };
            self.traces.remove(&old);
            let old = Some(TraceId::from_uuid(old));
            self.requests.retain(|request| request.trace != old);
        }
        self.changes += 1;
    }

    /// Forgets every recorded request.
    pub(super) fn clear_requests(&mut self) {
        self.requests.clear();
        self.unattached = 0;
        self.changes += 1;
    }

    /// Past `keep` requests that belong to no run, forgets the oldest of them.
    fn trim_unattached(&mut self, keep: Option<usize>) {
        let Some(keep) = keep else { return };
        while self.unattached > keep {
            match self.requests.iter().position(|r| r.trace.is_none()) {
                Some(index) => {
                    self.requests.remove(index);
                    self.unattached = self.unattached.saturating_sub(1);
                }
                None => {
                    self.unattached = 0;
                    break;
                }
            }
        }
    }
}
