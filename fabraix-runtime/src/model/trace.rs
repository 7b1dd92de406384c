//! [`Trace`]: one registered agent run.

use std::fmt;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};

use super::ids::{AgentId, TraceId};

/// Which [`Client`](crate::Client) registered a run, so that carrying a [`Trace`] anywhere
/// (a thread, another runtime) keeps its events and checks on that client. `0`: none in
/// particular (the global client serves).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct ClientId(pub u64);

/// One registered agent run: what Fabraix answered to `POST /register-agent-run`.
///
/// Read the current one with [`current_trace`](crate::current_trace). `Display` shows the
/// trace id. A trace remembers the [`Client`](crate::Client) that registered it, so
/// [`scope`](crate::scope) and [`sync_scope`](crate::sync_scope) send the run's events
/// through that client wherever the trace is carried; equality and hashing look only at
/// the run (trace id, agent id, registration time).
///
/// # Stored
///
/// A trace is `Serialize` and `Deserialize`, for services that keep a run themselves (in a
/// session, a database row) and [`scope`](crate::scope) it again later. The shape is
/// stable:
///
/// ```json
/// {
///   "trace_id": "7f3c5a52-4d2e-4a8b-9c61-1f0e2d3c4b5a",
///   "agent_id": "0b8e2c1d-3f4a-5b6c-8d7e-9f0a1b2c3d4e",
///   "registered_at": "2024-01-15T14:30:45.123Z"
/// }
/// ```
///
/// `trace_id` and `agent_id` are hyphenated lowercase UUIDs; `registered_at` is RFC 3339
/// in UTC, with as many fractional digits as it has. Reading accepts any RFC 3339 offset
/// and ignores unknown fields. The client that registered the run is not part of it: a
/// trace read back sends through the client current where it is used (or
/// [`Client::bind`](crate::Client::bind) it to one).
///
/// ```
/// # use fabraix::{AgentId, Trace, TraceId};
/// let trace = Trace::new(
///     TraceId::from_uuid(uuid::Uuid::new_v4()),
///     AgentId::from_name("support-bot").unwrap(),
///     chrono::Utc::now(),
/// );
/// let stored = serde_json::to_string(&trace).unwrap();
/// assert_eq!(serde_json::from_str::<Trace>(&stored).unwrap(), trace);
/// ```
#[derive(Clone, Copy)]
pub struct Trace {
    trace_id: TraceId,
    agent_id: AgentId,
    registered_at: DateTime<Utc>,
    client: ClientId,
}

impl Trace {
    /// Builds a trace from its parts, e.g. to carry a run into another process. Its events
    /// go through the client current where it is used, else the global one.
    pub fn new(trace_id: TraceId, agent_id: AgentId, registered_at: DateTime<Utc>) -> Self {
        Self {
            trace_id,
            agent_id,
            registered_at,
            client: ClientId::default(),
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

    pub(crate) fn client_id(&self) -> ClientId {
        self.client
    }

    pub(crate) fn bound_to(mut self, client: ClientId) -> Self {
        self.client = client;
        self
    }
}

impl PartialEq for Trace {
    fn eq(&self, other: &Self) -> bool {
        self.trace_id == other.trace_id
            && self.agent_id == other.agent_id
            && self.registered_at == other.registered_at
    }
}

impl Eq for Trace {}

impl Hash for Trace {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.trace_id.hash(state);
        self.agent_id.hash(state);
        self.registered_at.hash(state);
    }
}

/// The stored shape of a [`Trace`]: the run, without the client.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    trace_id: TraceId,
    agent_id: AgentId,
    registered_at: DateTime<Utc>,
}

impl serde::Serialize for Trace {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Stored {
            trace_id: self.trace_id,
            agent_id: self.agent_id,
            registered_at: self.registered_at,
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Trace {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = Stored::deserialize(deserializer)?;
        Ok(Self::new(
            stored.trace_id,
            stored.agent_id,
            stored.registered_at,
        ))
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
