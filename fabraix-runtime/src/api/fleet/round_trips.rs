//! [`RoundTrips`]: how long Redis took to answer, over a bounded recent sample.

use std::time::Duration;

/// The sample's size: enough for a p99, small enough to sort on demand.
const KEPT: usize = 1024;

/// The latest [`KEPT`] round trips, overwritten oldest first.
#[derive(Debug, Default)]
pub(crate) struct RoundTrips {
    sample: Vec<Duration>,
    next: usize,
}

impl RoundTrips {
    pub fn record(&mut self, took: Duration) {
        if self.sample.len() < KEPT {
            self.sample.push(took);
        } else {
            self.sample[self.next] = took;
        }
        self.next = (self.next + 1) % KEPT;
    }

    /// The `q` quantile (0 to 1) of the sample, `None` before the first round trip.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let mut sorted = self.sample.clone();
        sorted.sort_unstable();
        let last = sorted.len().checked_sub(1)?;
        // Nearest rank: the smallest value at or above the quantile's share.
        let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).saturating_sub(1);
        sorted.get(rank.min(last)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_the_latest_sample() {
        let mut trips = RoundTrips::default();
        assert_eq!(trips.quantile(0.5), None);
        for ms in 1..=100 {
            trips.record(Duration::from_millis(ms));
        }
        assert_eq!(trips.quantile(0.5), Some(Duration::from_millis(50)));
        assert_eq!(trips.quantile(0.99), Some(Duration::from_millis(99)));
        assert_eq!(trips.quantile(1.0), Some(Duration::from_millis(100)));
        // Older trips leave: a full sample of 1 ms replaces them all.
        for _ in 0..KEPT {
            trips.record(Duration::from_millis(1));
        }
        assert_eq!(trips.quantile(0.99), Some(Duration::from_millis(1)));
        assert_eq!(trips.sample.len(), KEPT);
    }
}
