//! The exporter's task on the SDK's thread: files what arrives, starts the sends the queue
//! asks for, hands back their outcomes, and sleeps in between. It never polls: it wakes
//! for a message, a finished send, or the end of a wait the queue named.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::queue::{Job, Next, Queue};
use super::{Counters, Message};
use crate::api::{Api, Failure, receipt};
use crate::model::Error;
use crate::model::wire;

pub(super) async fn drive(
    api: Arc<Api>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    counters: Arc<Counters>,
) {
    let options = *api.options();
    let mut queue = Queue::new(options.retry, options.max_in_flight, counters);
    let mut sending: JoinSet<Result<(), Failure>> = JoinSet::new();
    let mut jobs: HashMap<tokio::task::Id, Job> = HashMap::new();
    let mut open = true;
    loop {
        let wake_at = loop {
            match queue.next(Instant::now()) {
                Next::Send(job) => {
                    let api = api.clone();
                    let body = job.body.clone();
                    let handle = sending.spawn(async move { send(&api, body).await });
                    jobs.insert(handle.id(), job);
                }
                Next::WaitUntil(at) => break Some(at),
                Next::Idle => break None,
            }
        };
        if !open && queue.is_drained() {
            return;
        }
        tokio::select! {
            message = rx.recv(), if open => match message {
                Some(message) => {
                    file(&mut queue, message);
                    // Take everything that is already there before sending anything.
                    while let Ok(message) = rx.try_recv() {
                        file(&mut queue, message);
                    }
                }
                None => {
                    open = false;
                    queue.orphan();
                }
            },
            Some(finished) = sending.join_next_with_id(), if !sending.is_empty() => {
                let (id, outcome) = match finished {
                    Ok((id, outcome)) => (id, outcome),
                    // A send that panicked: the event counts as failed, its trace goes on.
                    Err(e) => (
                        e.id(),
                        Err(Failure::from(Error::Runtime("an event send failed".into()))),
                    ),
                };
                if let Some(job) = jobs.remove(&id) {
                    queue.complete(&job, outcome, Instant::now());
                }
            }
            _ = sleep_until(wake_at), if wake_at.is_some() => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

fn file(queue: &mut Queue, message: Message) {
    match message {
        Message::Event(logged) => {
            match wire::event_body(
                logged.kind.as_str(),
                logged.trace_id,
                logged.timestamp,
                &logged.content,
                &logged.schema,
            ) {
                Ok(body) => queue.push(logged.trace_id, body),
                Err(error) => queue.reject(&error),
            }
        }
        Message::Flush { trace, done } => queue.flush(trace, done),
    }
}

async fn send(api: &Api, body: bytes::Bytes) -> Result<(), Failure> {
    let answer = api.send_event_once(body).await?;
    receipt(&answer).map(drop).map_err(Failure::from)
}
