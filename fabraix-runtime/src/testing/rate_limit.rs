//! The MockServer's rate limit: sliding windows over the requests it accepted, answered
//! with 429, the documented error body and `Retry-After`, as the API answers a key over
//! its limit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::model::RateLimit;

/// The requests of the key the server accepts, against its limit.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    limit: RateLimit,
    /// When accepted requests arrived, oldest first, as far back as the longest window.
    accepted: VecDeque<Instant>,
    /// How many requests were answered 429.
    pub refused: u64,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Admits a request arriving at `now`, or answers how long until one would be: never
    /// more than `requests` accepted in any `per` of each window.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        let mut wait = Duration::ZERO;
        for window in self.limit.windows() {
            let requests = window.requests as usize;
            let start = now.checked_sub(window.per);
            let in_window = match start {
                Some(start) => self.accepted.len() - self.accepted.partition_point(|t| *t <= start),
                None => self.accepted.len(),
            };
            if in_window >= requests {
                let oldest = self.accepted[self.accepted.len() - requests];
                // Past what the clock can count (windows are at most a day): as long as
                // the window.
                let frees = oldest
                    .checked_add(window.per)
                    .map_or(window.per, |at| at.saturating_duration_since(now));
                wait = wait.max(frees);
            }
        }
        if !wait.is_zero() {
            self.refused += 1;
            return Err(wait);
        }
        self.accepted.push_back(now);
        let longest = self.limit.windows().iter().map(|w| w.per).max();
        let keep = self.limit.windows().iter().map(|w| w.requests).max();
        if let (Some(longest), Some(keep)) = (longest, keep) {
            while self.accepted.len() > keep as usize
                || now
                    .checked_sub(longest)
                    .is_some_and(|h| self.accepted.front().is_some_and(|t| *t <= h))
            {
                self.accepted.pop_front();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_allowed_in_any_window_and_says_when_to_come_back() {
        let mut limiter = Limiter::new("3/s,5/10s".parse().unwrap());
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.admit(start).is_ok());
        }
        let wait = limiter.admit(start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        let later = start + Duration::from_secs(1);
        assert!(limiter.admit(later).is_ok());
        assert!(limiter.admit(later).is_ok());
        // The 10 s window is full now: 5 accepted.
        assert_eq!(limiter.admit(later).unwrap_err(), Duration::from_secs(9));
        assert_eq!(limiter.refused, 2);
        assert!(Limiter::new(RateLimit::off()).admit(start).is_ok());
    }
}
