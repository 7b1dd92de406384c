//! Where a call's events and checks go, fixed when the call is made.

use fabraix::{Action, Client, Event, RunContext, TraceId, Verdict};

/// The run a model call or a tool check belongs to.
///
/// Captured when the call is made, not when its answer arrives: async-openai parses a
/// streamed answer on a task of its own, and the caller may read or drop the stream on yet
/// another one, where no run is current.
#[derive(Clone, Debug)]
pub(crate) enum Recorder {
    /// The agent run that was current where the call was made.
    Run(RunContext),
    /// A trace given explicitly, through a given client (work outside agent fns).
    Trace { client: Client, trace_id: TraceId },
    /// No run was current and none was given: nothing is logged, checks fail closed.
    Nowhere,
}

impl Recorder {
    /// The current run, if any.
    pub(crate) fn current() -> Self {
        match fabraix::current_run() {
            Some(run) => Recorder::Run(run),
            None => Recorder::Nowhere,
        }
    }

    /// Queues `event`; never waits on the network, so it is safe in `Drop`. A failure is
    /// reported through `tracing` and never reaches the model call.
    pub(crate) fn log(&self, event: Event) {
        let kind = event.kind();
        let queued = match self {
            Recorder::Run(run) => run.clone().sync_scope(|| fabraix::log_event(event)),
            Recorder::Trace { client, trace_id } => client.queue_event(*trace_id, event),
            Recorder::Nowhere => {
                tracing::debug!(
                    event_type = %kind,
                    "fabraix-openai: no agent run is current and no trace was given; the event is not logged"
                );
                return;
            }
        };
        if let Err(error) = queued {
            tracing::warn!(event_type = %kind, %error, "fabraix-openai: an event could not be logged");
        }
    }

    /// Asks Fabraix about `action` in this run. Fails closed: without a run, an `Err`.
    pub(crate) async fn check(&self, action: &Action) -> Result<Verdict, fabraix::Error> {
        match self {
            Recorder::Run(run) => run.clone().scope(fabraix::check_action(action)).await,
            Recorder::Trace { client, trace_id } => client.check_action(*trace_id, action).await,
            Recorder::Nowhere => Err(fabraix::Error::NoTrace),
        }
    }
}
