//! When to try a request again, and how long to wait first.
//!
//! Hand-written rather than taken from `backon`: the policy needs the server's `Retry-After`
//! to replace the computed delay, a cap on that value, and one total deadline shared by the
//! waits and the attempts; that is a few lines here and an adapter around any crate.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

/// Exponential backoff with full jitter, `Retry-After` and a total deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The backoff before the first retry grows from this.
    pub base: Duration,
    /// No computed backoff exceeds this.
    pub cap: Duration,
    /// No `Retry-After` is honoured beyond this.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry): a uniformly random
    /// duration in `[0, min(cap, base * 2^retry)]` ("full jitter"). When the server asked
    /// for a wait, at least that (up to `max_retry_after`): never less than the backoff, so
    /// a `Retry-After: 0` or a date in the past cannot make retries spin.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .base
            .checked_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(self.cap)
            .min(self.cap);
        let backoff = ceiling.mul_f64(unit_random());
        match retry_after {
            Some(asked) => asked.min(self.max_retry_after).max(backoff),
            None => backoff,
        }
    }
}

/// Reads a `Retry-After` value: delay seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`), the latter relative to `now`. A date in the past is
/// a zero wait; anything else unreadable is `None`.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let date = SystemTime::from(date.with_timezone(&chrono::Utc));
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A number in `[0, 1)`, random enough to spread retries; no cryptographic use.
fn unit_random() -> f64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(0x9e37_79b9_7f4a_7c15);
            hasher.finish() | 1
        });
    }
    STATE.with(|state| {
        // xorshift64*
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(30),
        }
    }

    #[test]
    fn delays_stay_under_the_exponential_ceiling_and_the_cap() {
        let p = policy();
        for retry in 0..40 {
            let ceiling = Duration::from_millis(100)
                .saturating_mul(2u32.saturating_pow(retry))
                .min(p.cap);
            for _ in 0..200 {
                assert!(p.delay(retry, None) <= ceiling);
            }
        }
    }

    #[test]
    fn delays_are_jittered() {
        let p = policy();
        let samples: Vec<_> = (0..64).map(|_| p.delay(4, None)).collect();
        let distinct: std::collections::HashSet<_> = samples.iter().collect();
        assert!(distinct.len() > 32, "{samples:?}");
        let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
        assert!(mean > Duration::from_millis(400) && mean < Duration::from_millis(1200));
    }

    #[test]
    fn retry_after_replaces_the_backoff_up_to_its_cap() {
        let p = policy();
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(700))),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn a_zero_retry_after_still_backs_off() {
        // Regression: `Retry-After: 0` (or a past date) made the exporter retry in a loop.
        let p = policy();
        let waits: Vec<_> = (0..64).map(|_| p.delay(5, Some(Duration::ZERO))).collect();
        assert!(
            waits.iter().any(|w| *w > Duration::from_millis(100)),
            "{waits:?}"
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_400);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        // 2015-10-21T07:28:00Z is 1445412480.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(80))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-5", "1.5", "soon", "Wed, 99 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
