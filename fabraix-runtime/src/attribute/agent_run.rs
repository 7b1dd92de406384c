//! What the `#[fabraix::agent]` expansion calls: register, enter the run, flush on exit.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use crate::client::{Client, global_client};
use crate::context::{RunContext, Slot, SyncScope, Traced};
use crate::model::{AgentId, Error, IntoAgentId, Trace, TraceId};

/// One call of an agent fn: its run (or the lack of one) and where to send its events.
#[derive(Debug)]
pub struct AgentRun {
    ctx: RunContext,
    /// For the run's span.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    agent_id: Option<AgentId>,
    /// The client that registered the run, whose queue is flushed when the run ends.
    client: Option<Client>,
}

/// A run that could not start: why, and the `client = …` it was to go through, so that a
/// body run anyway (`on_failure = "continue"`) still counts its let-go events there.
#[derive(Debug)]
pub struct Unstarted {
    error: Error,
    client: Option<Client>,
}

impl Unstarted {
    fn new(error: Error, client: Option<&Client>) -> Self {
        Self {
            error,
            client: client.cloned(),
        }
    }
}

impl From<Unstarted> for Error {
    fn from(unstarted: Unstarted) -> Self {
        unstarted.error
    }
}

impl AgentRun {
    /// Registers a run through `client` (the global client when `None`).
    ///
    /// A disabled SDK is not a failure: the run is untraced and no warning is given.
    pub async fn start(
        client: Option<&Client>,
        agent_id: Result<AgentId, Error>,
        system_prompt: String,
    ) -> Result<Self, Unstarted> {
        let (resolved, explicit) = resolve(client).map_err(|e| Unstarted::new(e, client))?;
        let agent_id = agent_id.map_err(|e| Unstarted::new(e, client))?;
        let outcome = resolved.register_agent_run(agent_id, &system_prompt).await;
        Self::from_registration(outcome, agent_id, resolved, explicit)
    }

    /// [`start`](Self::start) for synchronous fns: blocks until registered.
    pub fn start_blocking(
        client: Option<&Client>,
        agent_id: Result<AgentId, Error>,
        system_prompt: String,
    ) -> Result<Self, Unstarted> {
        let (resolved, explicit) = resolve(client).map_err(|e| Unstarted::new(e, client))?;
        let agent_id = agent_id.map_err(|e| Unstarted::new(e, client))?;
        let outcome = resolved.register_agent_run_blocking(agent_id, &system_prompt);
        Self::from_registration(outcome, agent_id, resolved, explicit)
    }

    /// A turn of a conversation: continues the conversation's run through `client` (the
    /// global client when `None`), or registers one.
    pub async fn start_turn(
        client: Option<&Client>,
        agent_id: Result<AgentId, Error>,
        system_prompt: String,
        conversation: ConversationName,
    ) -> Result<Self, Unstarted> {
        let (resolved, explicit) = resolve(client).map_err(|e| Unstarted::new(e, client))?;
        let agent_id = agent_id.map_err(|e| Unstarted::new(e, client))?;
        let outcome = resolved
            .conversation_turn(agent_id, &conversation.0, &system_prompt)
            .await;
        Self::from_registration(outcome, agent_id, resolved, explicit)
    }

    /// [`start_turn`](Self::start_turn) for synchronous fns: blocks until the run is known.
    pub fn start_turn_blocking(
        client: Option<&Client>,
        agent_id: Result<AgentId, Error>,
        system_prompt: String,
        conversation: ConversationName,
    ) -> Result<Self, Unstarted> {
        let (resolved, explicit) = resolve(client).map_err(|e| Unstarted::new(e, client))?;
        let agent_id = agent_id.map_err(|e| Unstarted::new(e, client))?;
        let outcome =
            resolved.conversation_turn_blocking(agent_id, &conversation.0, &system_prompt);
        Self::from_registration(outcome, agent_id, resolved, explicit)
    }

    fn from_registration(
        outcome: Result<Trace, Error>,
        agent_id: AgentId,
        client: &Client,
        explicit: bool,
    ) -> Result<Self, Unstarted> {
        // Only an explicit client rides in the context; the global one is found again.
        let carried = explicit.then(|| client.clone());
        match outcome {
            Ok(trace) => Ok(Self {
                ctx: RunContext::new(Slot::Traced(trace), carried),
                agent_id: Some(agent_id),
                client: Some(client.clone()),
            }),
            Err(Error::Disabled) => Ok(Self::untraced(Error::Disabled, Some(agent_id), carried)),
            Err(error) => Err(Unstarted {
                error,
                client: carried,
            }),
        }
    }

    fn untraced(cause: Error, agent_id: Option<AgentId>, client: Option<Client>) -> Self {
        Self {
            ctx: RunContext::new(Slot::Untraced(Arc::new(cause)), client),
            agent_id,
            client: None,
        }
    }

    /// The client and trace whose events to flush when the run ends.
    fn flush_target(&self) -> Option<(Client, TraceId)> {
        let trace = self.ctx.slot.trace()?;
        Some((self.client.clone()?, trace.trace_id()))
    }

    /// `on_failure = "continue"`: a failed registration becomes an untraced run, which
    /// keeps the error (its checks answer [`Error::Unregistered`]), and one warning.
    pub fn or_continue(outcome: Result<Self, Unstarted>) -> Self {
        outcome.unwrap_or_else(|Unstarted { error, client }| {
            tracing::warn!(
                target: "fabraix",
                %error,
                "fabraix agent run not registered; the agent runs without a trace"
            );
            Self::untraced(error, None, client)
        })
    }

    /// `on_failure = "panic"`: a failed registration panics with the error's message.
    pub fn or_panic(outcome: Result<Self, Unstarted>) -> Self {
        match outcome {
            Ok(run) => run,
            Err(Unstarted { error, .. }) => panic!("fabraix agent run not registered: {error}"),
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
            flush_target: self.flush_target(),
            inner: Traced::new(self.ctx, body),
            output: None,
            flushing: None,
        }
    }

    /// Enters the run for the body of a sync agent fn, until the guard drops.
    pub fn enter(self) -> RunGuard {
        let span = self.span();
        RunGuard {
            flush_target: self.flush_target(),
            _entered: span.entered(),
            _scope: SyncScope::enter(self.ctx),
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

/// The client to register through, and whether the fn named it (`client = …`).
fn resolve(client: Option<&Client>) -> Result<(&Client, bool), Error> {
    match client {
        Some(client) => Ok((client, true)),
        None => Ok((global_client()?, false)),
    }
}

type Flushing = Pin<Box<dyn Future<Output = bool> + Send + Sync>>;

pin_project_lite::pin_project! {
    /// The body of an async agent fn, running inside its run; when the body is done, the
    /// run's queued events are flushed before the output is returned.
    #[must_use = "futures do nothing unless polled"]
    pub struct RunFuture<F: Future> {
        #[pin]
        inner: Traced<F>,
        span: RunSpan,
        flush_target: Option<(Client, TraceId)>,
        output: Option<F::Output>,
        flushing: Option<Flushing>,
    }
}

impl<F: Future> Future for RunFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        if this.output.is_none() {
            let output = std::task::ready!(this.inner.poll(cx));
            match this.flush_target.take() {
                Some((client, trace_id)) if client.worth_flushing(client.flush_timeout()) => {
                    *this.flushing = Some(Box::pin(async move {
                        report_flush(trace_id, client.flush_trace(trace_id).await)
                    }));
                    *this.output = Some(output);
                }
                _ => return Poll::Ready(output),
            }
        }
        if let Some(flushing) = this.flushing.as_mut() {
            std::task::ready!(flushing.as_mut().poll(cx));
            *this.flushing = None;
        }
        match this.output.take() {
            Some(output) => Poll::Ready(output),
            // Only reachable by polling after completion, which futures need not support.
            None => Poll::Pending,
        }
    }
}

/// Keeps a sync agent fn's run current until the body ends, then flushes its events.
#[derive(Debug)]
pub struct RunGuard {
    flush_target: Option<(Client, TraceId)>,
    // Dropped in declaration order: the run's context goes before its span closes.
    _scope: SyncScope,
    _entered: EnteredRunSpan,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if let Some((client, trace_id)) = self.flush_target.take()
            && client.worth_flushing(client.flush_timeout())
        {
            report_flush(trace_id, client.flush_trace_blocking(trace_id));
        }
    }
}

fn report_flush(trace_id: TraceId, flushed: bool) -> bool {
    if !flushed {
        tracing::warn!(
            target: "fabraix",
            %trace_id,
            "fabraix events of this run were still queued when the agent fn returned (flush timed out); they stay queued"
        );
    }
    flushed
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
    fn from_error(error: impl Into<Error>) -> Self;
}

impl<T, E: From<Error>> ErrorReturn for Result<T, E> {
    fn from_error(error: impl Into<Error>) -> Self {
        Err(E::from(error.into()))
    }
}

/// The agent id of `#[fabraix::agent(id = …)]`.
pub fn agent_id(id: impl IntoAgentId) -> Result<AgentId, Error> {
    id.into_agent_id()
}

/// A conversation id: anything that reads as a string.
#[diagnostic::on_unimplemented(
    message = "`conversation` names a conversation with a string (`&str`, `String`, anything `AsRef<str>`), not `{Self}`",
    label = "write an expression that reads as a string, e.g. `&request.conversation_id`"
)]
pub trait ConversationId {
    /// The id.
    fn conversation_id(&self) -> &str;
}

impl<T: AsRef<str> + ?Sized> ConversationId for T {
    fn conversation_id(&self) -> &str {
        self.as_ref()
    }
}

/// The conversation of `#[fabraix::agent(conversation = …)]`, evaluated on entry, owned.
#[derive(Debug)]
pub struct ConversationName(String);

/// The conversation of `#[fabraix::agent(conversation = …)]`.
pub fn conversation(id: impl ConversationId) -> ConversationName {
    ConversationName(id.conversation_id().to_owned())
}

/// The system prompt of `#[fabraix::agent(system_prompt = …)]`.
pub fn system_prompt(prompt: impl Into<String>) -> String {
    prompt.into()
}
