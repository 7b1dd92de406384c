//! One rig run's link to a Fabraix run, kept in the rig run's scratchpad.
//!
//! A rig run inside a `#[fabraix::agent]` fn belongs to that fn's run: the hook captures
//! it when the rig run starts (on the caller's task, where it is current) and keeps it, so
//! later callbacks find it whatever task polls them. Any other rig run gets a Fabraix run
//! of its own, registered by the hook at the rig run's first model request (where the
//! agent's preamble, the run's system prompt, is visible) and kept here for the rest of
//! the rig run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use fabraix::{Action, Client, Event, RunContext, Trace, Verdict};
use rig_agent::agent::HookContext;
use rig_core::completion::ToolDefinition;
use tokio::sync::OnceCell;

use crate::check::Unanswered;
use crate::disabled;
use crate::settings::Settings;
use crate::stream::StreamedTurn;

/// The Fabraix run a rig run reports to.
#[derive(Debug, Clone)]
pub(crate) enum Link {
    /// A run carried as a context: the run of the `#[fabraix::agent]` fn the rig run was
    /// started in, or, with the SDK disabled, a run without a trace. Its trace is `None`
    /// when that run could not be registered, or the SDK is disabled.
    Context(RunContext),
    /// A run the hook registered for this rig run.
    Own { client: Client, trace: Trace },
    /// No run: registering one failed. Events are let go; tool calls are refused.
    Unlinked { reason: String },
}

impl Link {
    /// Queues `event` for the run; never waits on the network. A failure to queue is
    /// reported as a warning and otherwise let go, as events are.
    pub(crate) fn log(&self, event: Event) {
        let queued = match self {
            Link::Context(run) => run.clone().sync_scope(|| fabraix::log_event(event)),
            Link::Own { client, trace } => client.queue_event(trace.trace_id(), event),
            Link::Unlinked { .. } => Ok(()),
        };
        if let Err(error) = queued {
            tracing::warn!(%error, "fabraix-rig: an event of the run could not be queued");
        }
    }

    /// Asks Fabraix whether the run may take `action`. `Err` says why no verdict could be
    /// had.
    pub(crate) async fn check(&self, action: &Action) -> Result<Verdict, Unanswered> {
        match self {
            // In a run without a trace this answers why: `Disabled`, or `Unregistered`
            // with the registration's error.
            Link::Context(run) => run
                .clone()
                .scope(fabraix::check_action(action))
                .await
                .map_err(Unanswered::from),
            Link::Own { client, trace } => client
                .check_action(trace.trace_id(), action)
                .await
                .map_err(Unanswered::from),
            Link::Unlinked { reason } => Err(Unanswered::Failed(reason.clone())),
        }
    }

    /// The client whose queue holds this run's events, and the run, for runs the hook
    /// registered.
    pub(crate) fn own_run(&self) -> Option<(&Client, &Trace)> {
        match self {
            Link::Own { client, trace } => Some((client, trace)),
            _ => None,
        }
    }
}

/// What the hook keeps for one rig run.
#[derive(Debug)]
pub(crate) struct RunState {
    /// Set once: captured at the start, or registered at the first model request.
    link: OnceCell<Link>,
    /// The tools the model was last offered, by name: their definitions are what a tool
    /// call is checked against.
    tools: Mutex<HashMap<String, ToolDefinition>>,
    /// The streamed answer in flight.
    streamed: Mutex<StreamedTurn>,
}

/// The scratchpad entry (scratchpad values are cloned out, so the state is shared).
#[derive(Debug, Clone)]
struct Slot(Arc<RunState>);

impl RunState {
    /// This rig run's state, made on first use. The run current at that moment (the
    /// rig run's start, on the caller's task) is the run it reports to, if there is one.
    pub(crate) fn of(ctx: &HookContext) -> Arc<RunState> {
        let scratchpad = ctx.scratchpad();
        if let Some(Slot(state)) = scratchpad.get::<Slot>() {
            return state;
        }
        let link = OnceCell::new();
        if let Some(run) = fabraix::current_run() {
            // A fresh cell takes the value.
            let _ = link.set(Link::Context(run));
        }
        let state = Arc::new(RunState {
            link,
            tools: Mutex::default(),
            streamed: Mutex::default(),
        });
        scratchpad.insert(Slot(Arc::clone(&state)));
        state
    }

    /// The run's link, once it is known.
    pub(crate) fn link(&self) -> Option<&Link> {
        self.link.get()
    }

    /// The run's link, registering a run of the hook's own first if there is none yet.
    /// `preamble` is the system instructions of the request about to be sent.
    pub(crate) async fn link_or_register(
        &self,
        settings: &Settings,
        ctx: &HookContext,
        preamble: Option<&str>,
    ) -> &Link {
        self.link
            .get_or_init(|| register(settings, ctx, preamble))
            .await
    }

    pub(crate) fn remember_tools(&self, tools: &[ToolDefinition]) {
        if tools.is_empty() {
            return;
        }
        let mut known = lock(&self.tools);
        for tool in tools {
            known.insert(tool.name.to_string(), tool.clone());
        }
    }

    pub(crate) fn tool(&self, name: &str) -> Option<ToolDefinition> {
        lock(&self.tools).get(name).cloned()
    }

    pub(crate) fn streamed(&self) -> MutexGuard<'_, StreamedTurn> {
        lock(&self.streamed)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registers a Fabraix run for a rig run outside any agent fn. A disabled client
/// registers none: the rig run gets a run without a trace, with no warning.
async fn register(settings: &Settings, ctx: &HookContext, preamble: Option<&str>) -> Link {
    let registered = async {
        let agent_id = settings.agent_id(ctx.agent_name())?;
        let client = settings.client()?;
        let system_prompt = settings.system_prompt(preamble);
        match client.register_agent_run(agent_id, system_prompt).await {
            Ok(trace) => Ok(Link::Own { client, trace }),
            Err(fabraix::Error::Disabled) => disabled::untraced_run(&client)
                .await
                .map(Link::Context)
                .ok_or(fabraix::Error::Disabled),
            Err(error) => Err(error),
        }
    };
    match registered.await {
        Ok(link) => link,
        Err(error) => {
            tracing::warn!(
                %error,
                "fabraix-rig: no Fabraix run could be registered for this rig run; its \
                 events are let go and its tool calls refused"
            );
            Link::Unlinked {
                reason: format!("no Fabraix run could be registered ({error})"),
            }
        }
    }
}
