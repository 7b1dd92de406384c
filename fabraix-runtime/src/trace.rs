//! [`Trace`]: one registered agent run.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::ids::{AgentId, TraceId};

/// One registered agent run: what Fabraix answered to `POST /register-agent-run`.
///
/// Read the current one with [`current_trace`](crate::current_trace). `Display` shows the
/// trace id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Trace {
    trace_id: TraceId,
    agent_id: AgentId,
    registered_at: DateTime<Utc>,
}

impl Trace {
    /// Builds a trace from its parts, e.g. to carry a run into another process.
    pub fn new(trace_id: TraceId, agent_id: AgentId, registered_at: DateTime<Utc>) -> Self {
        Self {
            trace_id,
            agent_id,
            registered_at,
        }
    }

    /// The run's id, issued by the server.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The agent the run belongs to.
    pub fn agent_id(&self) -> AgentId {
        self.agent_id
    }

    /// When the server registered the run (the server's clock).
    pub fn registered_at(&self) -> DateTime<Utc> {
        self.registered_at
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.trace_id, f)
    }
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace")
            .field("trace_id", &format_args!("{}", self.trace_id))
            .field("agent_id", &format_args!("{}", self.agent_id))
            .field("registered_at", &self.registered_at)
            .finish()
    }
}
