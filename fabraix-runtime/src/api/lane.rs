//! [`Lane`]: who is asking for the key's budget. Pauses, probes and shares of each window
//! are per lane, in one process and across a fleet alike.

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lane {
    /// A call an agent waits for: registration, check, direct event.
    Agent,
    /// A queued event, sent in the background.
    Events,
}

impl Lane {
    /// Both lanes.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub const ALL: [Lane; 2] = [Lane::Agent, Lane::Events];

    /// The other lane.
    pub fn other(self) -> Lane {
        match self {
            Lane::Agent => Lane::Events,
            Lane::Events => Lane::Agent,
        }
    }

    /// Its name, in logs and in keys kept outside the process.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Agent => "agent",
            Lane::Events => "events",
        }
    }
}
