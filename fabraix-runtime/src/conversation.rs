//! [`Conversation`]: one agent run per conversation, continued turn after turn.

use std::fmt;
use std::future::Future;

use crate::attribute::{AgentRun, conversation as name};
use crate::client::{Client, global_client};
use crate::model::{Error, IntoAgentId};

/// A conversation with a user, whose turns share one agent run: what
/// `#[fabraix::agent(conversation = …)]` does, without the attribute.
///
/// Fabraix judges each event in the light of its run's earlier ones, so a chat service
/// that gets one request per user message should put all the messages of a conversation
/// in one run: a prompt injection spread over several turns is then visible. A turn
/// continues the conversation's run while it is live, and registers one otherwise:
///
/// - the first turn registers the run (with the system prompt it is given); turns that
///   arrive while it registers wait for it (within the client's
///   [`deadline`](crate::ClientBuilder::deadline)) and continue it, so concurrent first
///   turns register one run;
/// - a conversation with no turn for [`conversation_idle`](crate::ClientBuilder::conversation_idle)
///   (30 minutes by default), or whose run is older than
///   [`conversation_max_age`](crate::ClientBuilder::conversation_max_age) (24 hours),
///   starts a new run at its next turn;
/// - [`end`](Self::end) ends it (the user reset the chat, the agent's context was
///   cleared): the next turn starts a new run.
///
/// A run belongs to one agent: the same conversation id served by two agents is two
/// conversations. Each turn's body runs inside the run as an agent fn's does: its span,
/// its events flushed when it ends (bounded by the flush timeout), and, with the SDK
/// disabled, no trace and no warning. If the run cannot be registered, [`run`](Self::run)
/// runs the body without a trace (with one warning; checks inside refuse with
/// [`Error::Unregistered`]) and [`try_run`](Self::try_run) returns the error instead; every
/// turn that waited for that registration does the same, and the next turn tries again.
///
/// Conversations live in the client, in this process: a bounded store (the
/// [`conversation_capacity`](crate::ClientBuilder::conversation_capacity) least recently
/// used, 100,000 by default; idle ones expire), keyed by a keyed hash of the agent and
/// the conversation id, never the id itself. Turns of one conversation served by another
/// process (another replica) get that process's run, unless the processes share a Redis:
/// with the `redis` feature and `FABRAIX_REDIS_URL` (or
/// `ClientBuilder::redis_url`) set, the runs are kept in Redis, and every process with
/// the same API key continues the same run (concurrent first turns in several processes
/// register it once). When Redis does not answer, turns go on from this process's store,
/// with one warning.
///
/// ```no_run
/// # async fn demo() -> Result<(), fabraix::Error> {
/// const PROMPT: &str = "You are a support assistant.";
/// let client = fabraix::Client::from_env()?;
///
/// // One request per user message: each is a turn of the same conversation.
/// let mut runs = Vec::new();
/// for message in ["Where is my order?", "And a refund?"] {
///     let run = client
///         .conversation("conversation-42")
///         .run("support-bot", PROMPT, async move {
///             // ... log the message, call the model, answer ...
///             fabraix::current_trace()
///         })
///         .await;
///     runs.push(run);
/// }
/// assert_eq!(runs[0], runs[1]); // one run for the whole conversation
///
/// // The user starts over: the next turn registers a new run.
/// client.conversation("conversation-42").end("support-bot").await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Conversation {
    id: String,
    client: Option<Client>,
}

/// The conversation `id` (anything that reads as a string: a request's field, a user's
/// session id), served through the global client. See [`Conversation`].
pub fn conversation(id: impl AsRef<str>) -> Conversation {
    Conversation {
        id: id.as_ref().to_owned(),
        client: None,
    }
}

impl Client {
    /// The conversation `id`, served through this client. See [`Conversation`].
    pub fn conversation(&self, id: impl AsRef<str>) -> Conversation {
        Conversation {
            id: id.as_ref().to_owned(),
            client: Some(self.clone()),
        }
    }
}

impl Conversation {
    /// Runs one turn of the conversation: `body` runs inside the conversation's run of
    /// `agent_id` (registered with `system_prompt` if the turn starts one). When the run
    /// cannot be registered, the body runs without a trace and one `tracing` warning is
    /// emitted, as `#[fabraix::agent]`'s `on_failure = "continue"` does.
    pub async fn run<F: Future>(
        &self,
        agent_id: impl IntoAgentId,
        system_prompt: impl Into<String>,
        body: F,
    ) -> F::Output {
        let run = AgentRun::or_continue(self.start(agent_id, system_prompt).await);
        run.scope(body).await
    }

    /// [`run`](Self::run), but when the run cannot be registered the body does not run
    /// and the error is returned, as `on_failure = "error"` does.
    pub async fn try_run<F: Future>(
        &self,
        agent_id: impl IntoAgentId,
        system_prompt: impl Into<String>,
        body: F,
    ) -> Result<F::Output, Error> {
        let run = self.start(agent_id, system_prompt).await?;
        Ok(run.scope(body).await)
    }

    /// [`run`](Self::run) for synchronous code: blocks this thread until the run is
    /// known, then calls `body` inside it.
    pub fn run_blocking<R>(
        &self,
        agent_id: impl IntoAgentId,
        system_prompt: impl Into<String>,
        body: impl FnOnce() -> R,
    ) -> R {
        let run = AgentRun::or_continue(self.start_blocking(agent_id, system_prompt));
        let _run = run.enter();
        body()
    }

    /// [`try_run`](Self::try_run) for synchronous code.
    pub fn try_run_blocking<R>(
        &self,
        agent_id: impl IntoAgentId,
        system_prompt: impl Into<String>,
        body: impl FnOnce() -> R,
    ) -> Result<R, Error> {
        let run = self.start_blocking(agent_id, system_prompt)?;
        let _run = run.enter();
        Ok(body())
    }

    /// Ends the conversation of `agent_id`: its next turn registers a new run. Turns in
    /// progress keep the run they have. Answers whether the conversation had a run (or a
    /// first turn registering one). Async because a store shared between processes
    /// answers over the network.
    pub async fn end(&self, agent_id: impl IntoAgentId) -> bool {
        let Ok(agent) = agent_id.into_agent_id() else {
            return false;
        };
        match self.client() {
            Ok(client) => client.end_conversation_async(agent, &self.id).await,
            Err(_) => false,
        }
    }

    /// [`end`](Self::end) for synchronous code.
    pub fn end_blocking(&self, agent_id: impl IntoAgentId) -> bool {
        let Ok(agent) = agent_id.into_agent_id() else {
            return false;
        };
        match self.client() {
            Ok(client) => client.end_conversation(agent, &self.id),
            Err(_) => false,
        }
    }

    fn client(&self) -> Result<&Client, Error> {
        match &self.client {
            Some(client) => Ok(client),
            None => global_client(),
        }
    }

    async fn start(
        &self,
        agent_id: impl IntoAgentId,
        system_prompt: impl Into<String>,
    ) -> Result<AgentRun, crate::attribute::Unstarted> {
        AgentRun::start_turn(
            self.client.as_ref(),
            agent_id.into_agent_id(),
            system_prompt.into(),
            name(self.id.as_str()),
        )
        .await
    }

    fn start_blocking(
        &self,
        agent_id: impl IntoAgentId,
        system_prompt: impl Into<String>,
    ) -> Result<AgentRun, crate::attribute::Unstarted> {
        AgentRun::start_turn_blocking(
            self.client.as_ref(),
            agent_id.into_agent_id(),
            system_prompt.into(),
            name(self.id.as_str()),
        )
    }
}

impl fmt::Debug for Conversation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The id may identify a person: it is not shown.
        f.debug_struct("Conversation").finish_non_exhaustive()
    }
}
