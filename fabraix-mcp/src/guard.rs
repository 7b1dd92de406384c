//! [`Guard`]: how a server is guarded (the client, the agent id, the system prompt), kept
//! apart from any one server so that it can guard one session after another. Servers are
//! wrapped in `guarded.rs`, which builds on this module.

use std::fmt;
use std::sync::Arc;

use fabraix::{AgentId, Client, Error, IntoAgentId};
use rmcp::model::ServerConfig;
use rmcp::service::{RequestContext, RoleServer};

/// The settings of a guarded server, applied to a server by [`wrap`](Guard::wrap).
///
/// rmcp serves one handler value per MCP session (`serve` takes it by value; the
/// streamable HTTP service calls its factory once per session), and a [`Guarded`](crate::Guarded) server
/// registers at most one run of its own. Keep a `Guard` and wrap a new server for each
/// session:
///
/// ```
/// # #[derive(Clone)] struct Notes;
/// # impl rmcp::ServerHandler for Notes {}
/// # fn demo(client: fabraix::Client) -> Result<(), fabraix::Error> {
/// let guard = fabraix_mcp::Guard::new()
///     .client(client)
///     .agent_id("notes-server")?
///     .system_prompt("A tool server that reads and deletes a user's notes.");
/// let for_each_session = move || guard.wrap(Notes);
/// let _first = for_each_session();
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Guard {
    client: Option<Client>,
    agent_id: Option<AgentId>,
    system_prompt: Option<String>,
    trust: Option<TrustPredicate>,
}

type TrustPredicate = Arc<dyn Fn(&RequestContext<RoleServer>) -> bool + Send + Sync>;

impl Guard {
    /// The default settings: see [`guard`](crate::guard).
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks, registrations and `tool` events go through `client` instead of the global
    /// client.
    ///
    /// The tool bodies' own [`fabraix::log_event`] and [`fabraix::check_action`] go
    /// through the client current where the server runs, else the global one.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The agent the server's own runs belong to: a name (mapped to a stable UUID by
    /// [`AgentId::from_name`]) or a UUID. Default: the server's name.
    ///
    /// An empty name is an [`Error::InvalidAgentId`].
    pub fn agent_id(mut self, id: impl IntoAgentId) -> Result<Self, Error> {
        self.agent_id = Some(id.into_agent_id()?);
        Ok(self)
    }

    /// The system prompt of the server's own runs. Default: the server's name and version,
    /// and its instructions if it has any.
    pub fn system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = Some(prompt.into());
        self
    }

    /// Accepts the trace in a request's `_meta` only when `trusted` says so; other requests
    /// run in the server's own run for the session, as if they carried none. By default
    /// every caller's trace is accepted.
    ///
    /// A trace in `_meta` is the caller's claim: Fabraix accepts checks and events only for
    /// runs of the organisation whose key the server uses, but within it a caller can name
    /// any run it knows the id of. `trusted` sees the whole request context: the client's
    /// `initialize` info through `context.peer`, and, over streamable HTTP, the HTTP
    /// request's parts in `context.extensions` (headers, an authenticated identity).
    ///
    /// ```
    /// # #[derive(Clone)] struct Notes;
    /// # impl rmcp::ServerHandler for Notes {}
    /// // The name a client gives itself is only a claim too: where the transport
    /// // authenticates callers, decide on that identity instead.
    /// let guard = fabraix_mcp::Guard::new()
    ///     .trust(|context| context.client_info().is_some_and(|client| client.name == "our-agent"));
    /// let _guarded = guard.wrap(Notes);
    /// ```
    pub fn trust(
        mut self,
        trusted: impl Fn(&RequestContext<RoleServer>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.trust = Some(Arc::new(trusted));
        self
    }

    /// The client to use: the one given, else the global one.
    pub(crate) fn resolve_client(&self) -> Result<Client, Error> {
        match &self.client {
            Some(client) => Ok(client.clone()),
            None => fabraix::global_client().cloned(),
        }
    }

    /// Whether the trace a request carries may be used.
    pub(crate) fn trusts(&self, context: &RequestContext<RoleServer>) -> bool {
        self.trust.as_ref().is_none_or(|trusted| trusted(context))
    }

    /// The agent id and system prompt of a run registered for `server`'s session.
    pub(crate) fn registration(&self, server: &ServerConfig) -> Result<(AgentId, String), Error> {
        let info = &server.server_info;
        let agent_id = match self.agent_id {
            Some(id) => id,
            None => AgentId::from_name(&info.name)?,
        };
        let system_prompt = match &self.system_prompt {
            Some(prompt) => prompt.clone(),
            None => default_system_prompt(server),
        };
        Ok((agent_id, system_prompt))
    }
}

fn default_system_prompt(server: &ServerConfig) -> String {
    let info = &server.server_info;
    let mut prompt = format!("MCP server {} {}.", info.name, info.version);
    if let Some(instructions) = server.instructions.as_deref().map(str::trim)
        && !instructions.is_empty()
    {
        prompt.push(' ');
        prompt.push_str(instructions);
    }
    prompt
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("client", &self.client)
            .field("agent_id", &self.agent_id)
            .field("has_system_prompt", &self.system_prompt.is_some())
            .field("trusts_every_caller", &self.trust.is_none())
            .finish()
    }
}
