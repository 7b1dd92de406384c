//! The channel from the producers to the driver, with a parked flag: a producer wakes the
//! driver only when it sleeps with nothing in flight. While sends are in flight, the driver
//! wakes for their outcomes anyway and takes what arrived then, so a producer logging in a
//! burst pays for a push and one atomic read, never for waking a thread (the approach of
//! OpenTelemetry's batch processor).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};

use tokio::sync::{Notify, mpsc};

use super::Message;

/// What the producers and the driver share beyond the channel.
#[derive(Default)]
struct Bell {
    /// Set by the driver just before it sleeps with nothing in flight.
    parked: AtomicBool,
    notify: Notify,
}

impl Bell {
    fn ring(&self) {
        self.parked.store(false, Ordering::Relaxed);
        // A permit is kept when the driver is not waiting yet, so no ring is lost.
        self.notify.notify_one();
    }
}

/// The producers' side.
pub(super) struct Sender {
    /// Taken only by `drop`.
    tx: Option<mpsc::UnboundedSender<Message>>,
    bell: Arc<Bell>,
}

/// The driver's side.
pub(super) struct Receiver {
    rx: mpsc::UnboundedReceiver<Message>,
    bell: Arc<Bell>,
}

/// What [`Receiver::try_recv`] found.
pub(super) enum Received {
    Message(Message),
    Empty,
    /// Every producer is gone and the channel is empty.
    Closed,
}

pub(super) fn channel() -> (Sender, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let bell = Arc::new(Bell::default());
    (
        Sender {
            tx: Some(tx),
            bell: bell.clone(),
        },
        Receiver { rx, bell },
    )
}

impl Sender {
    /// Sends `message`, waking the driver if it is parked, or in any case when `urgent`
    /// (a flush must be filed at once: its caller waits, and the sends in flight may be
    /// slow). Answers the message back when the driver has stopped.
    pub fn send(&self, message: Message, urgent: bool) -> Result<(), Message> {
        let Some(tx) = &self.tx else {
            return Err(message);
        };
        tx.send(message).map_err(|e| e.0)?;
        // Pairs with the fence in `park`: either the driver sees this message when it
        // looks again after parking, or this sees it parked.
        fence(Ordering::SeqCst);
        if urgent || self.bell.parked.load(Ordering::Relaxed) {
            self.bell.ring();
        }
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Close the channel first, then wake the driver so that it sees it closed.
        drop(self.tx.take());
        self.bell.ring();
    }
}

impl Receiver {
    pub fn try_recv(&mut self) -> Received {
        match self.rx.try_recv() {
            Ok(message) => Received::Message(message),
            Err(mpsc::error::TryRecvError::Empty) => Received::Empty,
            Err(mpsc::error::TryRecvError::Disconnected) => Received::Closed,
        }
    }

    /// Marks the driver parked and answers whether it may sleep: false when a message
    /// arrived meanwhile (or the channel closed), which it must take first.
    pub fn park(&mut self) -> bool {
        self.bell.parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.rx.is_empty() && !self.rx.is_closed() {
            return true;
        }
        self.bell.parked.store(false, Ordering::Relaxed);
        false
    }

    /// Sleeps until a producer rings (after [`park`](Self::park) answered true).
    pub async fn rung(&self) {
        self.bell.notify.notified().await;
        self.bell.parked.store(false, Ordering::Relaxed);
    }

    /// Wakes up without a ring: no longer parked.
    pub fn unpark(&self) {
        self.bell.parked.store(false, Ordering::Relaxed);
    }
}
