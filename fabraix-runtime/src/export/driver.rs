//! The exporter's task on the SDK's thread: files what arrives, runs the sends the queue
//! asks for, hands back their outcomes, and sleeps in between. It never polls: it wakes
//! for a finished send, the end of a wait the queue named, or (only when it sleeps with
//! nothing in flight) a producer's ring; see `inbox.rs`. With a spool it also hands the
//! queue's commands to the spool's thread and the thread's answers to the queue.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::Counters;
use super::inbox::{Receiver, Status};
use super::queue::{Body, Job, Next, Queue};
use super::spool::{self, Reply};
use crate::api::{Api, Failure, receipt};

type Sending = Pin<Box<dyn Future<Output = (Job, Result<(), Failure>)> + Send>>;

pub(super) async fn drive(
    api: Arc<Api>,
    mut inbox: Receiver,
    counters: Arc<Counters>,
    spool: Option<(spool::Handle, Duration)>,
) {
    let options = *api.options();
    let mut queue = Queue::new(options.retry, options.max_in_flight, counters.clone());
    // With a spool, mail must be filed within half the write-behind interval even while
    // sends wait (for a throttled key's budget, say) and no producer rings: then the
    // driver looks every half interval.
    let mut look_every = None;
    let mut spool = spool.map(|(link, write_behind)| {
        queue = std::mem::replace(
            &mut queue,
            Queue::new(options.retry, options.max_in_flight, counters.clone()),
        )
        .with_spool(options.queue_capacity, write_behind);
        look_every = Some(write_behind / 2);
        link
    });
    let mut commands = Vec::new();
    // The sends run inside this task: no task spawned per event.
    let mut sending: FuturesUnordered<Sending> = FuturesUnordered::new();
    // The mail of one take; its capacity goes back to the producers at the next.
    let mut mail = Vec::new();
    let bell = inbox.bell();
    let mut rung = pin!(bell.rung());
    let mut open = true;
    loop {
        // Take everything that is already there before sending anything.
        if open {
            if inbox.take(&mut mail) == Status::Closed {
                open = false;
                queue.orphan();
            }
            for message in mail.drain(..) {
                if let super::Message::CloseSpool { done } = message {
                    // The process is exiting: a send still waiting for the rate budget
                    // must not reach the API once its event is the next process's. Only
                    // the requests on the wire right now can arrive twice.
                    sending.clear();
                    queue.cancel_sends();
                    queue.close_spool(Some(done));
                } else {
                    file(&mut queue, message);
                }
            }
        }
        let wake_at = loop {
            match queue.next(Instant::now()) {
                Next::Send(job) => {
                    let api = api.clone();
                    sending.push(Box::pin(async move {
                        let outcome = send(&api, job.body.clone()).await;
                        (job, outcome)
                    }));
                }
                Next::WaitUntil(at) => break Some(at),
                Next::Idle => break None,
            }
        };
        if !open && queue.is_drained() {
            queue.close_spool(None);
        }
        queue.commands(&mut commands);
        for command in commands.drain(..) {
            if let Some(link) = &spool {
                link.send(command);
            }
        }
        if !open && queue.is_drained() {
            return;
        }
        if sending.is_empty() {
            // Nothing in flight: only a producer (or the end of a wait) can bring work.
            if open && !inbox.park() {
                continue;
            }
            tokio::select! {
                _ = rung.as_mut(), if open => rung.set(bell.rung()),
                _ = sleep_until(wake_at), if wake_at.is_some() => inbox.unpark(),
                reply = answer(&mut spool), if spool.is_some() => {
                    inbox.unpark();
                    take(&mut queue, &mut spool, &counters, reply);
                }
            }
        } else {
            // Sends in flight: their outcomes wake this task, and what producers queued
            // meanwhile is taken then, without waking anyone.
            tokio::select! {
                Some((job, outcome)) = sending.next() => {
                    queue.complete(&job, outcome, Instant::now());
                    // Take the other outcomes that are ready too.
                    while let Some(Some((job, outcome))) =
                        futures_util::FutureExt::now_or_never(sending.next())
                    {
                        queue.complete(&job, outcome, Instant::now());
                    }
                }
                _ = rung.as_mut(), if open => rung.set(bell.rung()),
                _ = sleep_until(wake_at), if wake_at.is_some() => {}
                reply = answer(&mut spool), if spool.is_some() => {
                    take(&mut queue, &mut spool, &counters, reply);
                }
                _ = sleep_for(look_every), if spool.is_some() => {}
            }
        }
    }
}

/// The spool's next answer (never, without a spool).
async fn answer(spool: &mut Option<spool::Handle>) -> Option<Reply> {
    match spool {
        Some(link) => link.recv().await,
        None => std::future::pending().await,
    }
}

/// Gives the queue the spool's answer, and whatever else is ready of them.
fn take(
    queue: &mut Queue,
    spool: &mut Option<spool::Handle>,
    counters: &Counters,
    reply: Option<Reply>,
) {
    let Some(reply) = reply else {
        // The spool's thread is gone: the queue goes on in memory.
        *spool = None;
        if queue.spool_reply(Reply::Opened) {
            // Not closed by the queue: the thread ended on its own.
            tracing::warn!(target: "fabraix", "fabraix spool stopped; events are kept in memory only");
            queue.spool_reply(Reply::Unwritable { lost: Vec::new() });
        }
        counters.spool_opened();
        return;
    };
    if matches!(reply, Reply::Opened) {
        counters.spool_opened();
    }
    queue.spool_reply(reply);
}

async fn sleep_for(wait: Option<Duration>) {
    match wait {
        Some(wait) => tokio::time::sleep(wait).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

fn file(queue: &mut Queue, message: super::Message) {
    match message {
        super::Message::Event(logged) => {
            queue.push(logged.trace_id, Body::Logged(Arc::new(logged)))
        }
        super::Message::Flush { trace, done } => queue.flush(trace, done),
        super::Message::Sync { done } => queue.sync(done),
        super::Message::CloseSpool { done } => queue.close_spool(Some(done)),
    }
}

async fn send(api: &Api, body: bytes::Bytes) -> Result<(), Failure> {
    let answer = api.send_event_once(body).await?;
    receipt(&answer).map(drop).map_err(Failure::from)
}
