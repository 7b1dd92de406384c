//! The key's budget across processes (feature `redis`): each request first takes a slot of
//! its process's [`Budget`](super::budget::Budget), then asks the fleet's shared budget
//! ([`SharedBudget`]) for one, and reports its outcome to both.
//!
//! The shared budget decides in Redis what the in-process budget decides in memory for one
//! process (see `fleet/budget.lua`): the key's windows with a fifth kept for agent calls, a
//! lane paused everywhere by a 429 anywhere, its probe, and a pace once a limit shows
//! itself. When it asks a request to wait, the request sleeps for the time given, plus
//! jitter (every process may be told the same time), and asks again: no polling in between.
//! A wait that cannot end before the call's deadline ends now, with
//! [`Error::RateLimited`]. When Redis does not answer within its timeout, the request
//! keeps to its in-process budget alone, and the link reconnects in the background.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use super::fleet::{Shared, SharedBudget, WaitReason};
use super::lane::Lane;
use crate::model::Error;

/// What a request waited for, fleet-wide, before it was granted a slot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admission {
    /// The request is its lane's probe: its outcome must be reported.
    pub probe: bool,
    /// How long it waited for the shared budget.
    pub waited: Duration,
}

/// A slot of the shared budget for one request of `lane`, waiting as long as the budget
/// says and `deadline` allows. Redis unavailable: granted (the in-process budget alone
/// applies).
pub(crate) async fn admit(
    shared: &SharedBudget,
    lane: Lane,
    deadline: Option<Instant>,
) -> Result<Admission, SharedRefusal> {
    let started = Instant::now();
    loop {
        match shared.acquire(lane).await {
            Shared::Granted { probe } => {
                return Ok(Admission {
                    probe,
                    waited: started.elapsed(),
                });
            }
            Shared::Unavailable => {
                return Ok(Admission {
                    probe: false,
                    waited: started.elapsed(),
                });
            }
            Shared::Wait { for_, why } => {
                let sleep = with_jitter(for_);
                if let Some(deadline) = deadline
                    && Instant::now() + sleep > deadline
                {
                    return Err(SharedRefusal {
                        retry_after: for_,
                        paused: why == WaitReason::Paused,
                        waited: started.elapsed(),
                    });
                }
                tokio::time::sleep(sleep).await;
            }
        }
    }
}

/// The shared budget could not grant a slot before the call's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SharedRefusal {
    /// How long until the budget would have granted one, as far as it said.
    pub retry_after: Duration,
    /// The lane is paused by a 429 (rather than a full window or a pace).
    pub paused: bool,
    /// How long the request waited before giving up.
    pub waited: Duration,
}

impl SharedRefusal {
    pub fn into_error(self) -> Error {
        Error::RateLimited {
            retry_after: Some(self.retry_after),
        }
    }
}

/// `wait` plus up to a tenth of it (at least a millisecond, at most a second) at random,
/// so that processes told the same time do not all ask again at once.
fn with_jitter(wait: Duration) -> Duration {
    let spread = (wait / 10).clamp(Duration::from_millis(1), Duration::from_secs(1));
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX).max(1);
    wait.saturating_add(Duration::from_nanos(random % nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_adds_at_most_a_tenth_and_at_least_nothing() {
        for wait in [
            Duration::ZERO,
            Duration::from_micros(1),
            Duration::from_millis(50),
            Duration::from_secs(30),
            Duration::MAX,
        ] {
            let spread = (wait / 10).clamp(Duration::from_millis(1), Duration::from_secs(1));
            for _ in 0..100 {
                let jittered = with_jitter(wait);
                assert!(jittered >= wait, "{wait:?} -> {jittered:?}");
                assert!(
                    jittered <= wait.saturating_add(spread),
                    "{wait:?} -> {jittered:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_spreads() {
        let wait = Duration::from_millis(100);
        let distinct: std::collections::HashSet<Duration> =
            (0..50).map(|_| with_jitter(wait)).collect();
        assert!(distinct.len() > 10, "{distinct:?}");
    }
}
