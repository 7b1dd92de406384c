//! What a [`FabraixHook`](crate::FabraixHook) is set up with, and its defaults.

use std::time::Duration;

use fabraix::{AgentId, Client, IntoAgentId};

/// The agent id of runs the hook registers, when neither
/// [`FabraixHook::agent_id`](crate::FabraixHook::agent_id) nor the rig agent's name gives one.
pub const DEFAULT_AGENT_ID: &str = "rig-agent";

/// How long a rig run's end waits, by default, for the events of a run the hook
/// registered to be sent.
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What happens to a tool call when Fabraix gives no verdict on it (the API is
/// unreachable or answers garbage, no run could be registered). Either way the call does
/// not run: checks fail closed.
///
/// A disabled SDK (`FABRAIX_DISABLED=1`) is not one of these: checking is off, and the
/// call runs, unchecked, whatever this policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NoVerdict {
    /// The call is skipped, and the model reads why as the tool's result; the run goes
    /// on (the default).
    #[default]
    Skip,
    /// The rig run is cancelled with the reason.
    Stop,
}

/// The client the hook's own runs go through.
#[derive(Debug, Clone)]
pub(crate) enum ClientChoice {
    Global,
    Given(Client),
}

/// The hook's configuration.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) client: ClientChoice,
    pub(crate) agent_id: Option<Result<AgentId, fabraix::Error>>,
    pub(crate) system_prompt: Option<String>,
    pub(crate) when_unchecked: NoVerdict,
    pub(crate) flush_timeout: Duration,
}

impl Settings {
    pub(crate) fn client(&self) -> Result<Client, fabraix::Error> {
        match &self.client {
            ClientChoice::Global => fabraix::global_client().cloned(),
            ClientChoice::Given(client) => Ok(client.clone()),
        }
    }

    pub(crate) fn agent_id(&self, agent_name: Option<&str>) -> Result<AgentId, fabraix::Error> {
        match &self.agent_id {
            Some(id) => id.clone(),
            None => agent_name
                .unwrap_or(DEFAULT_AGENT_ID)
                .into_agent_id()
                .or_else(|_| AgentId::from_name(DEFAULT_AGENT_ID)),
        }
    }

    pub(crate) fn system_prompt<'a>(&'a self, preamble: Option<&'a str>) -> &'a str {
        self.system_prompt.as_deref().or(preamble).unwrap_or("")
    }
}
