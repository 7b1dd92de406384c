//! The spool's own thread (`fabraix-spool`): disk work never runs on the SDK's I/O thread.
//! It takes the queue's commands in batches (everything waiting at once, one transaction
//! per file), answers through a channel the exporter's driver listens to, and searches the
//! folder for files whose writers are gone every `scan_every`.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::super::Counters;
use super::protocol::{Command, Reply};
use super::store::{Config, Store};

/// The driver's ends of the spool's two channels.
pub(crate) struct Handle {
    pub commands: mpsc::Sender<Command>,
    pub replies: UnboundedReceiver<Reply>,
}

impl Handle {
    /// Hands `command` to the thread; a thread that is gone has nothing left to do.
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// The thread's next answer; `None` once it is gone.
    pub async fn recv(&mut self) -> Option<Reply> {
        self.replies.recv().await
    }
}

/// Starts the thread. Its first replies are the folder's first search, then `Opened`.
pub(crate) fn start(
    config: Config,
    counters: Arc<Counters>,
    scan_every: Duration,
) -> std::io::Result<Handle> {
    let (commands, inbox) = mpsc::channel();
    let (answer, replies) = unbounded_channel();
    std::thread::Builder::new()
        .name("fabraix-spool".into())
        .spawn(move || run(Store::new(config, counters), inbox, answer, scan_every))?;
    Ok(Handle { commands, replies })
}

fn run(
    mut store: Store,
    inbox: mpsc::Receiver<Command>,
    answer: UnboundedSender<Reply>,
    scan_every: Duration,
) {
    let mut out = Vec::new();
    store.scan(&mut out);
    store.enforce_caps(&mut out);
    out.push(Reply::Opened);
    let mut next_scan = Instant::now() + scan_every;
    loop {
        for reply in out.drain(..) {
            // The driver may be gone already; the Close that follows ends this loop.
            let _ = answer.send(reply);
        }
        if store.is_closed() {
            return;
        }
        match inbox.recv_timeout(next_scan.saturating_duration_since(Instant::now())) {
            Ok(first) => {
                let mut commands = vec![first];
                commands.extend(inbox.try_iter());
                store.apply(commands, &mut out);
            }
            Err(RecvTimeoutError::Timeout) => {
                store.scan(&mut out);
                store.enforce_caps(&mut out);
                next_scan = Instant::now() + scan_every;
            }
            Err(RecvTimeoutError::Disconnected) => {
                store.close();
                return;
            }
        }
    }
}
