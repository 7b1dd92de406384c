//! [`Stats`]: what a client has done, and how its key's rate limit went.

use std::time::Duration;

pub use crate::api::FleetStats;
use crate::export::EventStats;
use crate::model::RateLimit;

/// What a client has done so far: its events, and how its key's rate limit went.
/// [`Client::stats`](crate::Client::stats), or [`fabraix::stats`](crate::stats) for the
/// current run's client.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// The event queue's counters.
    pub events: EventStats,
    /// How many 429 answers came back, from every endpoint.
    pub rate_limited: u64,
    /// How long requests waited for the rate budget, summed over requests.
    pub waited_for_budget: Duration,
    /// The pace the budget keeps to, in requests per second: set when a lane meets a 429
    /// again after its own pause (a limit, not a one-off), and climbing back from there;
    /// `None` while there is none.
    pub pace: Option<f64>,
    /// The limit the client keeps to.
    pub rate_limit: RateLimit,
    /// Requests sent alone to learn whether a lane of the key is limited: after its own
    /// pause, or after the other lane met a 429.
    pub probes: u64,
    /// Agent calls that failed at once with [`Error::RateLimited`](crate::Error::RateLimited)
    /// because their lane's pause outlasted their deadline.
    pub failed_fast: u64,
    /// The key's budget across processes (feature `redis`, `FABRAIX_REDIS_URL`).
    pub fleet: FleetStats,
}
