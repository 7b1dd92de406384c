//! [`FabraixHook`]: the rig-agent hook, its settings, and what it does at each event.

use std::sync::Arc;
use std::time::Duration;

use fabraix::{Client, Event, EventType, IntoAgentId};
use rig_agent::agent::{
    AgentHook, DispatchAction, DispatchEvent, HookContext, ObservationAction, OutcomeAction,
    OutcomeEvent, RunSettled, RunStart, RunStartAction, SettledOutcome, StepEventKind, TextDelta,
    ToolCallDelta,
};
use rig_core::effect::EffectKind;

use crate::check;
use crate::record::{
    MODEL_INPUT_SCHEMA, MODEL_OUTPUT_SCHEMA, ModelInput, ModelOutput, RUN_FAILURE_SCHEMA,
    RunFailure, TOOL_SCHEMA, ToolRecord,
};
use crate::run::{Link, RunState};
use crate::settings::{ClientChoice, DEFAULT_FLUSH_TIMEOUT, NoVerdict, Settings};

/// A rig-agent hook that reports a rig agent's runs to Fabraix: each model request is
/// logged as a `model_input` event and each answer as a `model_output` event (streamed
/// answers whole, once the stream ends, tool calls included), each tool call is checked
/// with Fabraix before it runs, and each tool result is logged as a `tool` event.
///
/// ```no_run
/// use fabraix_rig::FabraixHook;
/// use rig_agent::AgentBuilder;
/// use rig_core::providers::openai::{OpenAIConfig, Route};
///
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let model = OpenAIConfig::from_env()?
///     .with_route(Route::Chat)
///     .client()
///     .completion("gpt-4o-mini");
/// let agent = AgentBuilder::new(model)
///     .name("notes-tidier")
///     .preamble("You tidy the user's notes.")
///     .add_hook(FabraixHook::global())
///     .build();
/// # let _ = agent; Ok(()) }
/// ```
///
/// # Which Fabraix run
///
/// A rig run started inside a `#[fabraix::agent]` fn (or any scope where
/// [`fabraix::current_run`] is set) reports to that run, through that run's client: the
/// hook captures it when the rig run starts. Any other rig run gets a run of its own,
/// registered at its first model request through the hook's client, with the agent id
/// from [`agent_id`](Self::agent_id) (else the rig agent's name, else
/// [`DEFAULT_AGENT_ID`](crate::DEFAULT_AGENT_ID)) and the system prompt from [`system_prompt`](Self::system_prompt)
/// (else the agent's preamble, as that request carries it). A rig run spawned onto
/// another task with a bare `tokio::spawn` does not inherit the current run; spawn it
/// with [`fabraix::spawn`] to keep it in the fn's run.
///
/// # Tool calls
///
/// Before a tool runs, Fabraix is asked about it: the action is the tool's name, the
/// description and JSON Schema of the tool's definition, and the arguments the model
/// sent. Safe: the tool runs. Unsafe: the call is skipped, and the model reads
/// Fabraix's reasoning as the tool's result. No verdict: the call does not run either
/// ([`NoVerdict`] says whether the run goes on); in a `#[fabraix::agent]` fn's run that
/// could not be registered, the reason the model reads names the registration's error.
/// The SDK disabled (`FABRAIX_DISABLED=1`, `ClientBuilder::disabled(true)`): checking is
/// off, the tool runs unchecked, and the first such call of the process logs a `tracing`
/// warning.
#[derive(Debug, Clone)]
pub struct FabraixHook {
    settings: Arc<Settings>,
}

impl Default for FabraixHook {
    /// [`FabraixHook::global`].
    fn default() -> Self {
        Self::global()
    }
}

impl FabraixHook {
    /// A hook whose runs go through `client` (runs of a `#[fabraix::agent]` fn keep going
    /// through that fn's client).
    pub fn new(client: Client) -> Self {
        Self::with_client(ClientChoice::Given(client))
    }

    /// A hook whose runs go through the global client: the one given to
    /// [`fabraix::init`], else one built from the environment (`FABRAIX_API_KEY`, ...)
    /// when the first run is registered.
    pub fn global() -> Self {
        Self::with_client(ClientChoice::Global)
    }

    fn with_client(client: ClientChoice) -> Self {
        Self {
            settings: Arc::new(Settings {
                client,
                agent_id: None,
                system_prompt: None,
                when_unchecked: NoVerdict::default(),
                flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            }),
        }
    }

    fn set(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(Arc::make_mut(&mut self.settings));
        self
    }

    /// The agent id of the runs the hook registers: a name (mapped to a stable UUID by
    /// [`AgentId::from_name`](fabraix::AgentId::from_name)), a UUID, or an
    /// [`AgentId`](fabraix::AgentId). An invalid id (an empty name) makes registration
    /// fail, so the run's tool calls are refused.
    pub fn agent_id(self, id: impl IntoAgentId) -> Self {
        let id = id.into_agent_id();
        self.set(|settings| settings.agent_id = Some(id))
    }

    /// The system prompt of the runs the hook registers, instead of the agent's preamble.
    pub fn system_prompt(self, prompt: impl Into<String>) -> Self {
        let prompt = prompt.into();
        self.set(|settings| settings.system_prompt = Some(prompt))
    }

    /// What happens to a tool call Fabraix gives no verdict on; see [`NoVerdict`].
    pub fn on_no_verdict(self, policy: NoVerdict) -> Self {
        self.set(|settings| settings.when_unchecked = policy)
    }

    /// How long the end of a rig run may wait for the events of a run the hook registered
    /// to be sent (default [`DEFAULT_FLUSH_TIMEOUT`]; zero: do not wait). It waits only
    /// while they can be sent in that time at the key's current pace, as an agent fn does
    /// (see `fabraix::Client::flush_run`). Runs of a `#[fabraix::agent]` fn are flushed
    /// when the fn returns instead.
    pub fn flush_timeout(self, timeout: Duration) -> Self {
        self.set(|settings| settings.flush_timeout = timeout)
    }

    /// Logs a model request, first registering the run if it has none yet.
    async fn model_request(
        &self,
        ctx: &HookContext,
        turn: usize,
        request: &rig_core::completion::CompletionRequest,
        stream: bool,
    ) {
        let state = RunState::of(ctx);
        let link = state
            .link_or_register(&self.settings, ctx, request.system_instructions())
            .await;
        state.remember_tools(&request.tools);
        // An answer still in the buffer never arrived whole (its stream broke off and rig
        // went on, or rig set the answer aside): it is logged as far as it got.
        log_broken_stream(&state, link, "the streamed answer never arrived whole");
        log_json(
            link,
            EventType::ModelInput,
            &ModelInput::new(turn, stream, request),
            &MODEL_INPUT_SCHEMA,
        );
    }

    /// Checks a tool call before it runs.
    async fn tool_call(
        &self,
        ctx: &HookContext,
        name: &str,
        raw_arguments: &str,
    ) -> DispatchAction {
        let state = RunState::of(ctx);
        let link = state.link_or_register(&self.settings, ctx, None).await;
        let definition = state.tool(name);
        let arguments = check::arguments(raw_arguments);
        let action = check::action(name, definition.as_ref(), &arguments);
        let verdict = link.check(&action).await;
        check::decide(name, verdict, self.settings.when_unchecked)
    }
}

impl AgentHook for FabraixHook {
    fn name(&self) -> Option<String> {
        Some("fabraix".to_owned())
    }

    async fn on_run_start(&self, ctx: &HookContext, _event: RunStart<'_>) -> RunStartAction {
        // Here, on the task that started the rig run, the current Fabraix run is found.
        RunState::of(ctx);
        RunStartAction::Continue
    }

    async fn on_dispatch(&self, ctx: &HookContext, event: DispatchEvent<'_>) -> DispatchAction {
        match event.kind {
            EffectKind::Completion { request, stream } => {
                self.model_request(ctx, event.turn, request, *stream).await;
                DispatchAction::proceed()
            }
            EffectKind::ToolCall { name, args } => self.tool_call(ctx, name, args).await,
            _ => DispatchAction::proceed(),
        }
    }

    async fn on_outcome(&self, ctx: &HookContext, event: OutcomeEvent<'_>) -> OutcomeAction {
        let state = RunState::of(ctx);
        let Some(link) = state.link() else {
            return OutcomeAction::proceed();
        };
        if let Some(response) = event.completion() {
            let stream = matches!(event.kind, EffectKind::Completion { stream: true, .. });
            // The whole answer is here: what was assembled of it is not needed.
            state.streamed().clear();
            log_json(
                link,
                EventType::ModelOutput,
                &ModelOutput::new(event.turn, stream, response),
                &MODEL_OUTPUT_SCHEMA,
            );
        } else if let (Some(name), Some(result)) = (event.tool_name(), event.tool_result()) {
            let record = ToolRecord {
                turn: event.turn,
                id: event.call_id.map(ToString::to_string),
                name: name.to_owned(),
                arguments: check::arguments(event.tool_args().unwrap_or("{}")),
                status: result.status_name(),
                output: result.output().render(),
            };
            log_json(link, EventType::Tool, &record, &TOOL_SCHEMA);
        }
        OutcomeAction::proceed()
    }

    async fn on_text_delta(&self, ctx: &HookContext, event: TextDelta<'_>) -> ObservationAction {
        RunState::of(ctx)
            .streamed()
            .push_text(ctx.turn(), event.delta);
        ObservationAction::Continue
    }

    async fn on_tool_call_delta(
        &self,
        ctx: &HookContext,
        event: ToolCallDelta<'_>,
    ) -> ObservationAction {
        RunState::of(ctx).streamed().push_tool_call(
            ctx.turn(),
            event.part.index(),
            event.tool_name,
            event.delta,
        );
        ObservationAction::Continue
    }

    async fn on_run_settled(&self, ctx: &HookContext, event: RunSettled<'_>) {
        let state = RunState::of(ctx);
        let Some(link) = state.link() else {
            return;
        };
        if let SettledOutcome::Error(error) = event.outcome {
            log_broken_stream(&state, link, error);
            log_json(
                link,
                EventType::Error,
                &RunFailure {
                    error: error.to_owned(),
                },
                &RUN_FAILURE_SCHEMA,
            );
        }
        if let Some((client, trace)) = link.own_run() {
            // As an agent fn does when it returns: wait only while the run's events can be
            // sent within the timeout at the key's pace; a throttled queue never holds the
            // agent, and sends them in the background.
            let timeout = self.settings.flush_timeout;
            if !timeout.is_zero() {
                client.flush_run(trace.trace_id(), timeout).await;
            }
        }
    }

    fn observes(&self, kind: StepEventKind) -> bool {
        matches!(
            kind,
            StepEventKind::RunStart
                | StepEventKind::RunSettled
                | StepEventKind::CompletionDispatch
                | StepEventKind::ToolDispatch
                | StepEventKind::TextDelta
                | StepEventKind::ToolCallDelta
        )
    }
}

/// Logs what had arrived of a streamed answer that never completed, if any.
fn log_broken_stream(state: &RunState, link: &Link, error: &str) {
    let (turn, parts) = {
        let mut streamed = state.streamed();
        if streamed.is_empty() {
            return;
        }
        streamed.take()
    };
    log_json(
        link,
        EventType::ModelOutput,
        &ModelOutput::partial(turn, parts, error.to_owned()),
        &MODEL_OUTPUT_SCHEMA,
    );
}

fn log_json(
    link: &Link,
    kind: EventType,
    content: &impl serde::Serialize,
    schema: &serde_json::Value,
) {
    match Event::json(kind, content, schema.clone()) {
        Ok(event) => link.log(event),
        Err(error) => {
            tracing::warn!(%error, event_type = %kind, "fabraix-rig: an event could not be encoded");
        }
    }
}
