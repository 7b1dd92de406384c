//! [`Pending`]: a conversation's first turn registering its run, which the turns that
//! arrive meanwhile wait for.

use std::sync::Mutex;
use std::time::Instant;

use crate::model::{Error, Trace};

/// How a registration that other turns waited for ended.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// The run is registered: every waiting turn continues it.
    Registered(Trace),
    /// The registration failed: every waiting turn follows its own `on_failure` with this.
    Failed(Error),
    /// The registering turn went away before an answer (its future was dropped): a
    /// waiting turn registers in its place.
    Abandoned,
}

/// One registration in progress: its outcome once known, and the turns waiting for it.
#[derive(Debug)]
pub(crate) struct Pending {
    /// When the registration began; one older than the call deadline is presumed lost.
    pub(crate) since: Instant,
    outcome: Mutex<Option<Outcome>>,
    resolved: tokio::sync::Notify,
}

impl Pending {
    pub(crate) fn new(since: Instant) -> Self {
        Self {
            since,
            outcome: Mutex::new(None),
            resolved: tokio::sync::Notify::new(),
        }
    }

    /// Sets the outcome (the first one given stays) and wakes every waiting turn.
    pub(crate) fn resolve(&self, outcome: Outcome) {
        {
            let mut slot = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(outcome);
            }
        }
        self.resolved.notify_waiters();
    }

    pub(crate) fn outcome(&self) -> Option<Outcome> {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for the outcome. Woken by [`resolve`](Self::resolve), never by polling.
    pub(crate) async fn wait(&self) -> Outcome {
        loop {
            let resolved = self.resolved.notified();
            tokio::pin!(resolved);
            // Registered before the check, so a resolve between the two is not missed.
            resolved.as_mut().enable();
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            resolved.await;
        }
    }
}
