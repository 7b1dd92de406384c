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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    fn message() -> Message {
        let (done, _) = oneshot::channel();
        Message::Flush { trace: None, done }
    }

    fn take_all(rx: &mut Receiver) -> (usize, bool) {
        let mut taken = 0;
        loop {
            match rx.try_recv() {
                Received::Message(_) => taken += 1,
                Received::Empty => return (taken, false),
                Received::Closed => return (taken, true),
            }
        }
    }

    #[test]
    fn a_driver_with_mail_waiting_does_not_park() {
        let (tx, mut rx) = channel();
        tx.send(message(), false).map_err(drop).expect("sent");
        assert!(!rx.park(), "a message is waiting");
        assert!(!rx.bell.parked.load(Ordering::Relaxed));
        assert_eq!(take_all(&mut rx), (1, false));
        assert!(rx.park(), "nothing waiting");
    }

    #[test]
    fn a_producer_rings_only_a_parked_driver() {
        let (tx, mut rx) = channel();
        // Not parked: the message waits for the driver's next look, no permit is stored.
        tx.send(message(), false).map_err(drop).expect("sent");
        let bell = rx.bell.clone();
        let rung = bell.notify.notified();
        tokio::pin!(rung);
        assert!(!rung.as_mut().enable(), "not rung while not parked");
        assert_eq!(take_all(&mut rx), (1, false));
        // Parked: the next message rings, and is there when the driver wakes.
        assert!(rx.park());
        tx.send(message(), false).map_err(drop).expect("sent");
        assert!(rung.as_mut().enable(), "rung while parked");
        assert!(!rx.bell.parked.load(Ordering::Relaxed));
        assert_eq!(take_all(&mut rx), (1, false));
    }

    #[test]
    fn an_urgent_message_rings_a_busy_driver() {
        let (tx, mut rx) = channel();
        tx.send(message(), true).map_err(drop).expect("sent");
        let bell = rx.bell.clone();
        let rung = bell.notify.notified();
        tokio::pin!(rung);
        assert!(rung.as_mut().enable(), "an urgent message always rings");
        assert_eq!(take_all(&mut rx), (1, false));
    }

    #[tokio::test]
    async fn the_last_producer_leaving_wakes_a_parked_driver_to_a_closed_channel() {
        let (tx, mut rx) = channel();
        assert!(rx.park());
        let dropper = std::thread::spawn(move || drop(tx));
        tokio::time::timeout(Duration::from_secs(30), rx.rung())
            .await
            .expect("woken");
        dropper.join().expect("dropped");
        assert_eq!(take_all(&mut rx), (0, true));
        assert!(!rx.park(), "a closed channel is never slept on");
    }

    /// Producers on other threads, a driver that parks whenever it finds nothing: every
    /// message is taken, none waits for a ring that never comes. (The time bound only
    /// turns a lost wake-up into a failure instead of a hang. The narrowest race, mail
    /// arriving between the driver's last look and its parking, is pinned down by
    /// `a_driver_with_mail_waiting_does_not_park`.)
    #[test]
    fn no_wake_up_is_lost() {
        const PRODUCERS: usize = 2;
        const EACH: usize = 20_000;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let (tx, mut rx) = channel();
        let tx = Arc::new(tx);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        tx.send(message(), false).map_err(drop).expect("sent");
                        if (i + p) % 97 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        // The channel stays open throughout (`tx` lives until the end), so the last
        // messages are found only through a ring, never through the close.
        let taken = runtime.block_on(async {
            let mut taken = 0;
            loop {
                let (now, _) = take_all(&mut rx);
                taken += now;
                if taken == PRODUCERS * EACH {
                    return taken;
                }
                if rx.park() {
                    tokio::time::timeout(Duration::from_secs(30), rx.rung())
                        .await
                        .expect("a lost wake-up: the driver slept with mail waiting");
                }
            }
        });
        for producer in producers {
            producer.join().expect("a producer");
        }
        drop(tx);
        assert_eq!(taken, PRODUCERS * EACH);
    }
}
