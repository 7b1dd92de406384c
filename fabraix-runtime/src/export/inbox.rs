//! The mailbox from the producers to the driver: a vector behind a mutex, with a parked
//! flag beside it.
//!
//! - A producer locks, pushes, and unlocks: two uncontended atomic operations, no
//!   allocation once the vectors have grown to the size of a burst. It wakes the driver
//!   only when the driver sleeps with nothing in flight (the flag, read under the same
//!   lock, so no wake-up can be lost). While sends are in flight, the driver wakes for
//!   their outcomes anyway and takes what arrived then, so a producer logging in a burst
//!   never pays for waking a thread (the approach of OpenTelemetry's batch processor).
//! - The driver takes everything at once by swapping its empty vector with the full one,
//!   so the two vectors change hands and keep their capacity: one lock per batch, not
//!   per message.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use super::Message;

/// A vector that grew past this (a burst) is shrunk back once bursts are over.
const KEEP_CAPACITY: usize = 1024;

#[derive(Default)]
struct Mailbox {
    messages: Vec<Message>,
    /// Set by the driver when it sleeps with nothing in flight; cleared by the ring.
    parked: bool,
    /// The producers' side is gone.
    closed: bool,
    /// The driver has stopped: nothing sent now would be taken.
    stopped: bool,
}

#[derive(Default)]
struct Shared {
    mailbox: Mutex<Mailbox>,
    bell: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Mailbox> {
        // Nothing panics under this lock but an allocation failure; the mailbox stays
        // sound either way.
        self.mailbox.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The producers' side.
pub(super) struct Sender {
    shared: Arc<Shared>,
}

/// The driver's side.
pub(super) struct Receiver {
    shared: Arc<Shared>,
    /// How many messages the last take found.
    last_batch: usize,
}

pub(super) fn channel() -> (Sender, Receiver) {
    let shared = Arc::new(Shared::default());
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver {
            shared,
            last_batch: 0,
        },
    )
}

impl Sender {
    /// Sends `message`, waking the driver if it is parked, or in any case when `urgent`
    /// (a flush must be filed at once: its caller waits, and the sends in flight may be
    /// slow). Answers the message back when the driver has stopped.
    pub fn send(&self, message: Message, urgent: bool) -> Result<(), Message> {
        let mut mailbox = self.shared.lock();
        if mailbox.stopped {
            return Err(message);
        }
        mailbox.messages.push(message);
        let ring = std::mem::take(&mut mailbox.parked) || urgent;
        drop(mailbox);
        if ring {
            // A permit is kept when the driver is not waiting yet, so no ring is lost.
            self.shared.bell.notify_one();
        }
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.bell.notify_one();
    }
}

/// What [`Receiver::take`] found besides the messages.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Status {
    Open,
    /// The producers are gone: no message will come after these.
    Closed,
}

impl Receiver {
    /// Moves every waiting message into `into`, in the order they were sent. `into` should
    /// be the vector of the last take, emptied: the two vectors change hands, and keep
    /// their capacity, unless bursts are over.
    pub fn take(&mut self, into: &mut Vec<Message>) -> Status {
        into.clear();
        if into.capacity() > KEEP_CAPACITY && self.last_batch < KEEP_CAPACITY / 4 {
            into.shrink_to(KEEP_CAPACITY);
        }
        let closed = {
            let mut mailbox = self.shared.lock();
            std::mem::swap(&mut mailbox.messages, into);
            mailbox.closed
        };
        self.last_batch = into.len();
        match closed {
            true => Status::Closed,
            false => Status::Open,
        }
    }

    /// Marks the driver parked and answers whether it may sleep: false when a message
    /// arrived meanwhile (or the producers left), which it must take first.
    pub fn park(&mut self) -> bool {
        let mut mailbox = self.shared.lock();
        let idle = mailbox.messages.is_empty() && !mailbox.closed;
        mailbox.parked = idle;
        idle
    }

    /// A future that completes at the next ring (or at once for a ring already made since
    /// the last one was heard). Kept across the driver's loop, it stays registered, so
    /// waiting for it costs nothing per turn.
    pub fn bell(&self) -> Bell {
        Bell {
            shared: self.shared.clone(),
        }
    }

    /// Wakes up without a ring: no longer parked.
    pub fn unpark(&self) {
        self.shared.lock().parked = false;
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut mailbox = self.shared.lock();
        mailbox.stopped = true;
        // Flush markers left here are dropped, so their waiters stop waiting.
        mailbox.messages.clear();
    }
}

/// The driver's ear (see [`Receiver::bell`]).
pub(super) struct Bell {
    shared: Arc<Shared>,
}

impl Bell {
    pub fn rung(&self) -> Notified<'_> {
        self.shared.bell.notified()
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

    /// A flush marker whose receiving end tells which one it was.
    fn numbered(number: u8) -> (Message, oneshot::Receiver<()>) {
        let (done, waiting) = oneshot::channel();
        let trace = Some(crate::model::TraceId::from_uuid(uuid::Uuid::from_bytes(
            [number; 16],
        )));
        (Message::Flush { trace, done }, waiting)
    }

    fn take_all(rx: &mut Receiver) -> (usize, Status) {
        let mut mail = Vec::new();
        let status = rx.take(&mut mail);
        (mail.len(), status)
    }

    /// Whether a ring is waiting for the driver.
    fn rung(rx: &Receiver) -> bool {
        let bell = rx.bell();
        let rung = bell.rung();
        tokio::pin!(rung);
        rung.as_mut().enable()
    }

    #[test]
    fn a_take_answers_every_message_in_order_and_the_vectors_change_hands() {
        let (tx, mut rx) = channel();
        let mut mail = Vec::with_capacity(64);
        for number in 0..3 {
            tx.send(numbered(number).0, false)
                .map_err(drop)
                .expect("sent");
        }
        assert_eq!(rx.take(&mut mail), Status::Open);
        let traces: Vec<_> = mail
            .iter()
            .map(|m| match m {
                Message::Flush { trace, .. } => trace.map(|t| t.as_uuid().as_bytes()[0]),
                Message::Event(_) | Message::Sync { .. } | Message::CloseSpool { .. } => None,
            })
            .collect();
        assert_eq!(traces, [Some(0), Some(1), Some(2)]);
        // The driver's vector went to the producers: the next push needs no allocation.
        assert!(rx.shared.lock().messages.capacity() >= 64);
        mail.clear();
        assert_eq!(rx.take(&mut mail), Status::Open);
        assert!(mail.is_empty());
    }

    #[test]
    fn a_burst_s_capacity_is_given_back_once_bursts_are_over() {
        let (tx, mut rx) = channel();
        let mut mail = Vec::new();
        for _ in 0..4 * KEEP_CAPACITY {
            tx.send(message(), false).map_err(drop).expect("sent");
        }
        rx.take(&mut mail);
        assert_eq!(mail.len(), 4 * KEEP_CAPACITY);
        // Still bursting: the big vector goes back to the producers as it is.
        for _ in 0..4 * KEEP_CAPACITY {
            tx.send(message(), false).map_err(drop).expect("sent");
        }
        rx.take(&mut mail);
        assert!(rx.shared.lock().messages.capacity() >= 4 * KEEP_CAPACITY);
        // A quiet take after a quiet one: the big vectors shrink.
        tx.send(message(), false).map_err(drop).expect("sent");
        rx.take(&mut mail);
        rx.take(&mut mail);
        rx.take(&mut mail);
        assert!(mail.capacity() <= KEEP_CAPACITY, "{}", mail.capacity());
        assert!(rx.shared.lock().messages.capacity() <= KEEP_CAPACITY);
    }

    #[test]
    fn a_driver_with_mail_waiting_does_not_park() {
        let (tx, mut rx) = channel();
        tx.send(message(), false).map_err(drop).expect("sent");
        assert!(!rx.park(), "a message is waiting");
        assert!(!rx.shared.lock().parked);
        assert_eq!(take_all(&mut rx), (1, Status::Open));
        assert!(rx.park(), "nothing waiting");
    }

    #[test]
    fn a_producer_rings_only_a_parked_driver() {
        let (tx, mut rx) = channel();
        // Not parked: the message waits for the driver's next look, no permit is stored.
        tx.send(message(), false).map_err(drop).expect("sent");
        assert!(!rung(&rx), "not rung while not parked");
        assert_eq!(take_all(&mut rx), (1, Status::Open));
        // Parked: the next message rings (once), and is there when the driver wakes.
        assert!(rx.park());
        tx.send(message(), false).map_err(drop).expect("sent");
        tx.send(message(), false).map_err(drop).expect("sent");
        assert!(!rx.shared.lock().parked);
        assert!(rung(&rx), "rung while parked");
        assert!(!rung(&rx), "rung once");
        assert_eq!(take_all(&mut rx), (2, Status::Open));
    }

    #[test]
    fn an_urgent_message_rings_a_busy_driver() {
        let (tx, mut rx) = channel();
        tx.send(message(), true).map_err(drop).expect("sent");
        assert!(rung(&rx), "an urgent message always rings");
        assert_eq!(take_all(&mut rx), (1, Status::Open));
    }

    #[test]
    fn a_stopped_driver_answers_the_message_back_and_lets_go_of_what_waited() {
        let (tx, rx) = channel();
        let (waiting, mut done) = numbered(1);
        tx.send(waiting, false).map_err(drop).expect("sent");
        drop(rx);
        assert!(
            matches!(done.try_recv(), Err(oneshot::error::TryRecvError::Closed)),
            "a flush left in the mailbox is let go, so its caller stops waiting"
        );
        assert!(tx.send(message(), false).is_err());
    }

    #[tokio::test]
    async fn the_last_producer_leaving_wakes_a_parked_driver_to_a_closed_mailbox() {
        let (tx, mut rx) = channel();
        assert!(rx.park());
        let bell = rx.bell();
        let dropper = std::thread::spawn(move || drop(tx));
        tokio::time::timeout(Duration::from_secs(30), bell.rung())
            .await
            .expect("woken");
        dropper.join().expect("dropped");
        assert_eq!(take_all(&mut rx), (0, Status::Closed));
        assert!(!rx.park(), "a closed mailbox is never slept on");
    }

    /// Producers on other threads, a driver that parks whenever it finds nothing: every
    /// message is taken, none waits for a ring that never comes. (The time bound only
    /// turns a lost wake-up into a failure instead of a hang.)
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
        // The mailbox stays open throughout (`tx` lives until the end), so the last
        // messages are found only through a ring, never through the close.
        let bell = rx.bell();
        let taken = runtime.block_on(async {
            let mut taken = 0;
            let mut rung = std::pin::pin!(bell.rung());
            loop {
                let (now, _) = take_all(&mut rx);
                taken += now;
                if taken == PRODUCERS * EACH {
                    return taken;
                }
                if rx.park() {
                    tokio::time::timeout(Duration::from_secs(30), rung.as_mut())
                        .await
                        .expect("a lost wake-up: the driver slept with mail waiting");
                    rung.set(bell.rung());
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
