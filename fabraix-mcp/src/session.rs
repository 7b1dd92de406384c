//! The run a guarded server registers for its session, for calls that bring none.

use fabraix::{AgentId, Client, Error, Trace};
use tokio::sync::OnceCell;

/// Registered at the first call that needs it, then reused for the whole session.
/// Concurrent first calls wait for one registration; a failed registration is not kept,
/// so the next call tries again.
#[derive(Debug, Default)]
pub(crate) struct SessionRun {
    trace: OnceCell<Trace>,
}

impl SessionRun {
    /// The session's run, registering it with `client` if this is the first call.
    pub(crate) async fn get_or_register(
        &self,
        client: &Client,
        registration: impl FnOnce() -> Result<(AgentId, String), Error>,
    ) -> Result<Trace, Error> {
        self.trace
            .get_or_try_init(|| async {
                let (agent_id, system_prompt) = registration()?;
                client.register_agent_run(agent_id, &system_prompt).await
            })
            .await
            .copied()
    }

    /// The session's run, if registered.
    pub(crate) fn get(&self) -> Option<Trace> {
        self.trace.get().copied()
    }
}
