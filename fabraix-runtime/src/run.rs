//! What the `#[fabraix::agent]` expansion calls: register, enter the run, flush on exit.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::client::Client;
use crate::context::{RunContext, Slot, SyncScope, Traced};
use crate::error::Error;
use crate::global::global_client;
use crate::ids::AgentId;
use crate::trace::Trace;

/// Anything `#[fabraix::agent(id = …)]` takes as an id: a name or UUID as text, or an id.
pub trait IntoAgentId {
    /// Reads the id as [`AgentId::parse`] does.
    fn into_agent_id(self) -> Result<AgentId, Error>;
}

impl IntoAgentId for &str {
    fn into_agent_id(self) -> Result<AgentId, Error> {
        AgentId::parse(self)
    }
}

impl IntoAgentId for String {
    fn into_agent_id(self) -> Result<AgentId, Error> {
        AgentId::parse(&self)
    }
}

impl IntoAgentId for &String {
    fn into_agent_id(self) -> Result<AgentId, Error> {
        AgentId::parse(self)
    }
}

impl IntoAgentId for AgentId {
    fn into_agent_id(self) -> Result<AgentId, Error> {
        Ok(self)
    }
}

impl IntoAgentId for &AgentId {
    fn into_agent_id(self) -> Result<AgentId, Error> {
        Ok(*self)
    }
}

impl IntoAgentId for uuid::Uuid {
    fn into_agent_id(self) -> Result<AgentId, Error> {
        Ok(AgentId::from_uuid(self))
    }
}

/// One call of an agent fn: its run (or the lack of one) and where to send its events.
#[derive(Debug)]
pub struct AgentRun {
    ctx: RunContext,
    agent_id: Option<AgentId>,
}

impl AgentRun {
    /// Registers a run through `client` (the global client when `None`).
    ///
    /// A disabled SDK is not a failure: the run is untraced and no warning is given.
    pub async fn start(
        client: Option<&Client>,
        agent_id: Result<AgentId, Error>,
        system_prompt: String,
    ) -> Result<Self, Error> {
        let (client, explicit) = resolve(client)?;
        let agent_id = agent_id?;
        let outcome = client.register_agent_run(agent_id, &system_prompt).await;
        Self::from_registration(outcome, agent_id, explicit.then(|| client.clone()))
    }

    /// [`start`](Self::start) for synchronous fns: blocks until registered.
    pub fn start_blocking(
        client: Option<&Client>,
        agent_id: Result<AgentId, Error>,
        system_prompt: String,
    ) -> Result<Self, Error> {
        let (client, explicit) = resolve(client)?;
        let agent_id = agent_id?;
        let outcome = client.register_agent_run_blocking(agent_id, &system_prompt);
        Self::from_registration(outcome, agent_id, explicit.then(|| client.clone()))
    }

    fn from_registration(
        outcome: Result<Trace, Error>,
        agent_id: AgentId,
        client: Option<Client>,
    ) -> Result<Self, Error> {
        match outcome {
            Ok(trace) => Ok(Self {
                ctx: RunContext::new(Slot::Traced(trace), client),
                agent_id: Some(agent_id),
            }),
            Err(Error::Disabled) => Ok(Self::untraced(Some(agent_id), client)),
            Err(e) => Err(e),
        }
    }

    fn untraced(agent_id: Option<AgentId>, client: Option<Client>) -> Self {
        Self {
            ctx: RunContext::new(Slot::Untraced, client),
            agent_id,
        }
    }

    /// `on_failure = "continue"`: a failed registration becomes an untraced run and one
    /// warning.
    pub fn or_continue(outcome: Result<Self, Error>) -> Self {
        outcome.unwrap_or_else(|error| {
            tracing::warn!(
                target: "fabraix",
                %error,
                "fabraix agent run not registered; the agent runs without a trace"
            );
            Self::untraced(None, None)
        })
    }

    /// `on_failure = "panic"`: a failed registration panics with the error's message.
    pub fn or_panic(outcome: Result<Self, Error>) -> Self {
        match outcome {
            Ok(run) => run,
            Err(error) => panic!("fabraix agent run not registered: {error}"),
        }
    }

    /// The run's trace, if it was registered.
    pub fn trace(&self) -> Option<Trace> {
        self.ctx.slot.trace()
    }

    /// Runs the body of an async agent fn inside the run.
    pub fn scope<F: Future>(self, body: F) -> RunFuture<F> {
        RunFuture {
            span: self.span(),
            inner: Traced::new(self.ctx, body),
        }
    }

    /// Enters the run for the body of a sync agent fn, until the guard drops.
    pub fn enter(self) -> RunGuard {
        let span = self.span();
        RunGuard {
            _entered: span.entered(),
            scope: SyncScope::enter(self.ctx),
        }
    }

    #[cfg(not(feature = "tracing"))]
    fn span(&self) -> RunSpan {
        RunSpan
    }

    #[cfg(feature = "tracing")]
    fn span(&self) -> RunSpan {
        let trace_id = self.ctx.slot.trace().map(|t| t.trace_id());
        tracing::info_span!(
            target: "fabraix",
            "fabraix.agent_run",
            agent_id = self.agent_id.map(tracing::field::display),
            trace_id = trace_id.map(tracing::field::display),
        )
    }
}

fn resolve(client: Option<&Client>) -> Result<(&Client, bool), Error> {
    match client {
        Some(client) => Ok((client, true)),
        None => Ok((global_client()?, false)),
    }
}

pin_project_lite::pin_project! {
    /// The body of an async agent fn, running inside its run.
    #[must_use = "futures do nothing unless polled"]
    pub struct RunFuture<F> {
        #[pin]
        inner: Traced<F>,
        span: RunSpan,
    }
}

impl<F: Future> Future for RunFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        this.inner.poll(cx)
    }
}

/// Keeps a sync agent fn's run current until the body ends.
#[derive(Debug)]
pub struct RunGuard {
    // Dropped in declaration order: the run's context goes before its span closes.
    scope: SyncScope,
    _entered: EnteredRunSpan,
}

/// The run's `tracing` span (feature `tracing`), entered around the body.
#[cfg(feature = "tracing")]
type RunSpan = tracing::Span;
#[cfg(feature = "tracing")]
type EnteredRunSpan = tracing::span::EnteredSpan;

/// Without the `tracing` feature, runs have no span.
#[cfg(not(feature = "tracing"))]
#[derive(Debug)]
struct RunSpan;
#[cfg(not(feature = "tracing"))]
type EnteredRunSpan = RunSpan;

#[cfg(not(feature = "tracing"))]
impl RunSpan {
    fn enter(&self) {}

    fn entered(self) -> Self {
        self
    }
}

/// `on_failure = "error"`: the fn returns `Err(error.into())`.
#[diagnostic::on_unimplemented(
    message = "`on_failure = \"error\"` needs the fn to return `Result<T, E>` with `E: From<fabraix::Error>`, not `{Self}`",
    label = "the run's error is returned from here"
)]
pub trait ErrorReturn {
    /// The return value carrying `error`.
    fn from_error(error: Error) -> Self;
}

impl<T, E: From<Error>> ErrorReturn for Result<T, E> {
    fn from_error(error: Error) -> Self {
        Err(E::from(error))
    }
}

/// The agent id of `#[fabraix::agent(id = …)]`.
pub fn agent_id(id: impl IntoAgentId) -> Result<AgentId, Error> {
    id.into_agent_id()
}

/// The system prompt of `#[fabraix::agent(system_prompt = …)]`.
pub fn system_prompt(prompt: impl Into<String>) -> String {
    prompt.into()
}
