//! [`RateLimit`]: how many requests one API key may make, as sliding windows.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::error::Error;

/// The requests one API key may make: any number of sliding windows ("never more than
/// `requests` in any span of `per`"), or none (`off`).
///
/// Written as Fabraix documents its limits, comma-separated `N/[K]UNIT` windows with UNIT
/// one of `s`, `min`, `h`, or `off`:
///
/// ```
/// use std::time::Duration;
/// use fabraix::RateLimit;
///
/// let dev: RateLimit = "60/min,1000/h".parse().unwrap();
/// assert_eq!(dev, RateLimit::development());
/// assert_eq!(dev.to_string(), "60/min,1000/h");
///
/// let burst: RateLimit = "30/6s".parse().unwrap();
/// assert_eq!(burst, RateLimit::per(30, Duration::from_secs(6)));
/// assert!("off".parse::<RateLimit>().unwrap().is_off());
/// assert!("60 per minute".parse::<RateLimit>().is_err());
/// ```
///
/// A window spans at most a day ([`RateLimit::MAX_PER`]) and allows at most 1,000,000
/// requests ([`RateLimit::MAX_REQUESTS`]): `"1/25h"` and `"2000000/s"` are configuration
/// errors, and [`per`](Self::per) and [`and`](Self::and) bring larger values down to these.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RateLimit {
    windows: Vec<RateWindow>,
}

/// One sliding window of a [`RateLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RateWindow {
    /// At most this many requests…
    pub requests: u32,
    /// …in any span this long.
    pub per: Duration,
}

impl RateLimit {
    /// The longest window: a day. A longer one would only make the budget remember sends
    /// for longer (and its clock arithmetic approach `Duration::MAX`).
    pub const MAX_PER: Duration = Duration::from_secs(24 * 3600);

    /// The most requests a window may allow.
    pub const MAX_REQUESTS: u32 = 1_000_000;

    /// No limit.
    pub const fn off() -> Self {
        Self {
            windows: Vec::new(),
        }
    }

    /// At most `requests` in any span of `per`. Zero requests, or a zero span, is no window;
    /// more than [`MAX_REQUESTS`](Self::MAX_REQUESTS) requests count as that many, and a span
    /// longer than [`MAX_PER`](Self::MAX_PER) as a day.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fabraix::RateLimit;
    ///
    /// let year = RateLimit::per(u32::MAX, Duration::MAX);
    /// assert_eq!(year, RateLimit::per(1_000_000, Duration::from_secs(86_400)));
    /// assert!(RateLimit::per(0, Duration::from_secs(1)).is_off());
    /// ```
    pub fn per(requests: u32, per: Duration) -> Self {
        Self::off().and(requests, per)
    }

    /// This limit and another window, read as [`per`](Self::per) reads it.
    pub fn and(mut self, requests: u32, per: Duration) -> Self {
        if requests > 0 && !per.is_zero() {
            self.windows.push(RateWindow {
                requests: requests.min(Self::MAX_REQUESTS),
                per: per.min(Self::MAX_PER),
            });
        }
        self
    }

    /// A development key's limits: 60 requests a minute and 1,000 an hour.
    pub fn development() -> Self {
        Self::per(60, Duration::from_secs(60)).and(1000, Duration::from_secs(3600))
    }

    /// A production key's limits: 600 requests a minute and 10,000 an hour.
    pub fn production() -> Self {
        Self::per(600, Duration::from_secs(60)).and(10_000, Duration::from_secs(3600))
    }

    /// The windows, in the order given.
    pub fn windows(&self) -> &[RateWindow] {
        &self.windows
    }

    /// Whether there is no window at all.
    pub fn is_off(&self) -> bool {
        self.windows.is_empty()
    }
}

impl FromStr for RateLimit {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::off());
        }
        let mut limit = Self::off();
        for part in text.split(',') {
            let part = part.trim();
            let window = parse_window(part).map_err(|why| {
                Error::Config(match why {
                    Invalid::Form => format!(
                        "rate limit `{part}` is not `N/[K]UNIT` (UNIT one of `s`, `min`, `h`; e.g. `60/min`, `30/6s`) or `off`"
                    ),
                    Invalid::TooManyRequests => format!(
                        "rate limit `{part}` allows more than {} requests in a window",
                        RateLimit::MAX_REQUESTS
                    ),
                    Invalid::TooLong => {
                        format!("rate limit `{part}` has a window longer than a day (24h)")
                    }
                })
            })?;
            limit.windows.push(window);
        }
        Ok(limit)
    }
}

/// Why a window's text is refused.
enum Invalid {
    /// Not `N/[K]UNIT`, or a zero.
    Form,
    /// More than [`RateLimit::MAX_REQUESTS`].
    TooManyRequests,
    /// Longer than [`RateLimit::MAX_PER`].
    TooLong,
}

/// `60/min`, `30/6s`, `1000/h`.
fn parse_window(text: &str) -> Result<RateWindow, Invalid> {
    let (requests, span) = text.split_once('/').ok_or(Invalid::Form)?;
    let requests = requests.trim();
    let requests = requests.strip_prefix('+').unwrap_or(requests);
    if requests.is_empty() || !requests.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid::Form);
    }
    // All digits: a number too large for a u32 is too many requests.
    let requests = requests.parse::<u32>().unwrap_or(u32::MAX);
    if requests == 0 {
        return Err(Invalid::Form);
    }
    let span = span.trim();
    let digits = span.bytes().take_while(u8::is_ascii_digit).count();
    let (count, unit) = span.split_at(digits);
    let count: u64 = if count.is_empty() {
        1
    } else {
        // All digits: a number too large for a u64 is too long a window.
        count.parse().unwrap_or(u64::MAX)
    };
    let unit: u64 = match unit {
        "s" => 1,
        "min" => 60,
        "h" => 3600,
        _ => return Err(Invalid::Form),
    };
    if count == 0 {
        return Err(Invalid::Form);
    }
    let per = count
        .checked_mul(unit)
        .map(Duration::from_secs)
        .filter(|per| *per <= RateLimit::MAX_PER)
        .ok_or(Invalid::TooLong)?;
    if requests > RateLimit::MAX_REQUESTS {
        return Err(Invalid::TooManyRequests);
    }
    Ok(RateWindow { requests, per })
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.windows.is_empty() {
            return f.write_str("off");
        }
        for (i, window) in self.windows.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{window}")?;
        }
        Ok(())
    }
}

impl fmt::Display for RateWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.per.as_secs();
        let (count, unit) = if secs.is_multiple_of(3600) {
            (secs / 3600, "h")
        } else if secs.is_multiple_of(60) {
            (secs / 60, "min")
        } else {
            (secs, "s")
        };
        if count == 1 {
            write!(f, "{}/{unit}", self.requests)
        } else {
            write!(f, "{}/{count}{unit}", self.requests)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_form_parses_and_prints_back() {
        for (text, windows) in [
            ("60/min,1000/h", vec![(60, 60), (1000, 3600)]),
            ("10/s", vec![(10, 1)]),
            ("30/6s", vec![(30, 6)]),
            (" 5 / 2min , 7/1h ", vec![(5, 120), (7, 3600)]),
        ] {
            let limit: RateLimit = text.parse().unwrap();
            let got: Vec<_> = limit
                .windows()
                .iter()
                .map(|w| (w.requests, w.per.as_secs()))
                .collect();
            assert_eq!(got, windows, "{text}");
            assert_eq!(limit.to_string().parse::<RateLimit>().unwrap(), limit);
        }
        assert_eq!("OFF".parse::<RateLimit>().unwrap(), RateLimit::off());
        assert_eq!(RateLimit::off().to_string(), "off");
    }

    #[test]
    fn anything_else_is_a_config_error_naming_the_bad_part() {
        for bad in [
            "",
            "60",
            "60/",
            "/min",
            "0/min",
            "60/0s",
            "60/m",
            "60/minute",
            "-1/s",
            "60/min,",
            "ten/s",
            "60/min;10/s",
            "99999999999/s",
            "1/99999999999999999h",
        ] {
            let err = bad.parse::<RateLimit>().unwrap_err();
            assert!(
                matches!(&err, Error::Config(m) if m.contains("rate limit")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn windows_beyond_a_day_or_a_million_requests_are_config_errors_naming_them() {
        for (bad, why) in [
            ("1/18446744073709551615s", "longer than a day"),
            ("1/5124095576030431h", "longer than a day"),
            ("1/5000000000000000h", "longer than a day"),
            ("1/99999999999999999999999h", "longer than a day"),
            ("1/86401s", "longer than a day"),
            ("1/25h", "longer than a day"),
            ("60/min,1/1441min", "longer than a day"),
            ("1000001/s", "more than 1000000 requests"),
            ("99999999999/s", "more than 1000000 requests"),
        ] {
            let err = bad.parse::<RateLimit>().unwrap_err();
            let token = bad.rsplit(',').next().unwrap_or(bad);
            assert!(
                matches!(&err, Error::Config(m) if m.contains(why) && m.contains(&format!("`{token}`"))),
                "{bad}: {err}"
            );
            // Display adds the prefix once, and the message none of its own.
            assert_eq!(
                err.to_string()
                    .matches("invalid fabraix configuration")
                    .count(),
                1,
                "{err}"
            );
        }
        for edge in ["1/24h", "1/1440min", "1/86400s", "1000000/s", "+5/s"] {
            assert!(edge.parse::<RateLimit>().is_ok(), "{edge}");
        }
    }

    #[test]
    fn extreme_constructor_values_are_brought_within_the_limits() {
        let limit = RateLimit::per(u32::MAX, Duration::MAX).and(1, Duration::from_secs(90_000));
        let windows: Vec<_> = limit
            .windows()
            .iter()
            .map(|w| (w.requests, w.per))
            .collect();
        assert_eq!(
            windows,
            [
                (RateLimit::MAX_REQUESTS, RateLimit::MAX_PER),
                (1, RateLimit::MAX_PER)
            ]
        );
        assert_eq!(limit.to_string(), "1000000/24h,1/24h");
        assert!(RateLimit::per(5, Duration::ZERO).is_off());
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_is_refused(text in "\\PC*") {
            check_parse(&text);
        }

        #[test]
        fn any_window_like_text_parses_or_is_refused(
            text in "[ +0-9]{0,25}/[ 0-9]{0,25}(s|min|h|m|)[ ,]{0,2}[0-9]{0,3}/?[0-9]{0,3}(s|min|h)?",
        ) {
            check_parse(&text);
        }

        #[test]
        fn any_constructed_limit_stays_within_the_limits(
            windows in proptest::collection::vec(
                (proptest::prelude::any::<u32>(), proptest::prelude::any::<u64>(), 0u32..1_000_000_000),
                0..4,
            ),
        ) {
            let mut limit = RateLimit::off();
            for (requests, secs, nanos) in windows {
                limit = limit.and(requests, Duration::new(secs, nanos));
            }
            for window in limit.windows() {
                proptest::prop_assert!(window.requests >= 1 && window.requests <= RateLimit::MAX_REQUESTS);
                proptest::prop_assert!(!window.per.is_zero() && window.per <= RateLimit::MAX_PER);
            }
            let _ = limit.to_string();
        }
    }

    /// Parses `text`: a limit within the bounds, which prints back to itself, or a config
    /// error; never a panic.
    fn check_parse(text: &str) {
        match text.parse::<RateLimit>() {
            Ok(limit) => {
                for window in limit.windows() {
                    assert!(window.requests >= 1 && window.requests <= RateLimit::MAX_REQUESTS);
                    assert!(
                        window.per >= Duration::from_secs(1) && window.per <= RateLimit::MAX_PER
                    );
                }
                assert_eq!(
                    limit.to_string().parse::<RateLimit>().ok(),
                    Some(limit),
                    "{text}"
                );
            }
            Err(err) => assert!(matches!(err, Error::Config(_)), "{text}: {err}"),
        }
    }
}
