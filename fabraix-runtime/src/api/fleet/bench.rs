//! [`FleetBench`]: one shared budget, as the fleet bench drives it. Not public API.

use std::time::Duration;

use secrecy::SecretString;

use super::{BUDGET_SCRIPT, Fingerprint, Link, Pacing, Shared, SharedBudget};
use crate::api::lane::Lane;
use crate::model::{Error, RateLimit};

/// A shared budget of one key on one Redis.
#[derive(Debug)]
pub struct FleetBench {
    budget: SharedBudget,
}

impl FleetBench {
    /// The budget of `api_key` under `limit` at the Redis at `redis_url`, with a 1 s call
    /// timeout (so that a busy machine measures slow calls instead of fallbacks);
    /// connects in the background.
    pub fn connect(redis_url: &str, api_key: &str, limit: &RateLimit) -> Result<Self, Error> {
        let url = SecretString::from(redis_url.to_owned());
        let link = Link::start(
            &url,
            "bench".into(),
            Duration::from_secs(1),
            vec![&*BUDGET_SCRIPT],
        )?;
        let pacing = Pacing::cubic(Duration::from_secs(10));
        Ok(Self {
            budget: SharedBudget::new(link, &Fingerprint::of(api_key), limit, pacing),
        })
    }

    /// Whether acquisitions go to Redis now.
    pub fn is_shared(&self) -> bool {
        self.budget.is_shared()
    }

    /// One acquisition for an agent call, or for a queued event: `Some(true)` granted,
    /// `Some(false)` told to wait, `None` Redis unavailable.
    pub async fn acquire(&self, event: bool) -> Option<bool> {
        let lane = if event { Lane::Events } else { Lane::Agent };
        match self.budget.acquire(lane).await {
            Shared::Granted { .. } => Some(true),
            Shared::Wait { .. } => Some(false),
            Shared::Unavailable => None,
        }
    }

    /// Redis's round trips as the link measured them: median and 99th percentile.
    pub fn round_trips(&self) -> (Option<Duration>, Option<Duration>) {
        let stats = self.budget.stats();
        (stats.round_trip_p50, stats.round_trip_p99)
    }
}
