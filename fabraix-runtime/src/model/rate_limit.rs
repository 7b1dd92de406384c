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
    /// No limit.
    pub const fn off() -> Self {
        Self {
            windows: Vec::new(),
        }
    }

    /// At most `requests` in any span of `per`. Zero requests, or a zero span, is no window.
    pub fn per(requests: u32, per: Duration) -> Self {
        Self::off().and(requests, per)
    }

    /// This limit and another window.
    pub fn and(mut self, requests: u32, per: Duration) -> Self {
        if requests > 0 && !per.is_zero() {
            self.windows.push(RateWindow { requests, per });
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
            let window = parse_window(part.trim()).ok_or_else(|| {
                Error::Config(format!(
                    "rate limit `{}` is not `N/[K]UNIT` (UNIT one of `s`, `min`, `h`; e.g. `60/min`, `30/6s`) or `off`",
                    part.trim()
                ))
            })?;
            limit.windows.push(window);
        }
        Ok(limit)
    }
}

/// `60/min`, `30/6s`, `1000/h`.
fn parse_window(text: &str) -> Option<RateWindow> {
    let (requests, span) = text.split_once('/')?;
    let requests: u32 = requests.trim().parse().ok().filter(|n| *n > 0)?;
    let span = span.trim();
    let digits = span.bytes().take_while(u8::is_ascii_digit).count();
    let (count, unit) = span.split_at(digits);
    let count: u64 = if count.is_empty() {
        1
    } else {
        count.parse().ok().filter(|k| *k > 0)?
    };
    let unit = match unit {
        "s" => 1,
        "min" => 60,
        "h" => 3600,
        _ => return None,
    };
    let per = Duration::from_secs(count.checked_mul(unit)?);
    Some(RateWindow { requests, per })
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
}
