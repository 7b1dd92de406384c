//! [`ClientBuilder`]: every setting, its default, and its environment variable.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use crate::client::Client;
use crate::error::Error;
use crate::retry::RetryPolicy;

/// The base URL when neither `FABRAIX_BASE_URL` nor [`ClientBuilder::base_url`] says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://dev.fabraix.com/v1";

/// Responses larger than this are refused rather than read.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The settings a [`Client`] runs with, after validation.
#[derive(Clone)]
pub(crate) struct Config {
    pub api_key: SecretString,
    pub base_url: Url,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub deadline: Duration,
    pub retry: RetryPolicy,
    pub queue_capacity: usize,
    pub max_in_flight: usize,
    pub flush_timeout: Duration,
    pub disabled: bool,
}

impl Config {
    /// The full URL of an endpoint such as `/register-agent-run`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.base_url.as_str().trim_end_matches('/'), path)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("api_key", &"[redacted]")
            .field(
                "base_url",
                &shown_url(self.base_url.as_str(), Some(self.api_key.expose_secret())),
            )
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("deadline", &self.deadline)
            .field("max_retries", &self.retry.max_retries)
            .field("queue_capacity", &self.queue_capacity)
            .field("flush_timeout", &self.flush_timeout)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`]. Every setting has a default; [`ClientBuilder::from_env`] starts from
/// the environment.
///
/// | setting | default | environment |
/// |---|---|---|
/// | [`api_key`](Self::api_key) | none (required unless disabled) | `FABRAIX_API_KEY` |
/// | [`base_url`](Self::base_url) | `https://dev.fabraix.com/v1` | `FABRAIX_BASE_URL` |
/// | [`timeout`](Self::timeout) (per attempt) | 10 s | `FABRAIX_TIMEOUT_MS` |
/// | [`max_retries`](Self::max_retries) | 3 | `FABRAIX_MAX_RETRIES` |
/// | [`disabled`](Self::disabled) | false | `FABRAIX_DISABLED=1` |
/// | [`connect_timeout`](Self::connect_timeout) | 5 s | |
/// | [`deadline`](Self::deadline) (per call, all attempts and waits) | 30 s | |
/// | [`backoff`](Self::backoff) (base, cap) | 100 ms, 5 s | |
/// | [`max_retry_after`](Self::max_retry_after) | 30 s | |
/// | [`queue_capacity`](Self::queue_capacity) | 4096 events | |
/// | [`max_in_flight`](Self::max_in_flight) | 32 event requests, and 32 other calls | |
/// | [`flush_timeout`](Self::flush_timeout) | 5 s | |
///
/// ```
/// use std::time::Duration;
///
/// let client = fabraix_runtime::Client::builder()
///     .api_key("sk-example")
///     .base_url("https://api.fabraix.com/v1")
///     .timeout(Duration::from_secs(5))
///     .max_retries(5)
///     .build()
///     .unwrap();
/// assert!(!format!("{client:?}").contains("sk-example"));
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ClientBuilder {
    api_key: Option<SecretString>,
    base_url: String,
    timeout: Duration,
    connect_timeout: Duration,
    deadline: Duration,
    retry: RetryPolicy,
    queue_capacity: usize,
    max_in_flight: usize,
    flush_timeout: Duration,
    disabled: bool,
    /// The first unreadable environment variable, reported by `build`.
    env_error: Option<String>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(30),
            retry: RetryPolicy {
                max_retries: 3,
                base: Duration::from_millis(100),
                cap: Duration::from_secs(5),
                max_retry_after: Duration::from_secs(30),
            },
            queue_capacity: 4096,
            max_in_flight: 32,
            flush_timeout: Duration::from_secs(5),
            disabled: false,
            env_error: None,
        }
    }
}

impl ClientBuilder {
    /// A builder with every default and nothing read from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder that starts from the environment: `FABRAIX_API_KEY`, `FABRAIX_BASE_URL`,
    /// `FABRAIX_TIMEOUT_MS`, `FABRAIX_MAX_RETRIES` and `FABRAIX_DISABLED`. An unreadable
    /// value is reported by [`build`](Self::build). Setters called afterwards win.
    pub fn from_env() -> Self {
        Self::default().with_env(|name| std::env::var(name).ok())
    }

    pub(crate) fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> Self {
        if let Some(key) = var("FABRAIX_API_KEY").filter(|k| !k.is_empty()) {
            self.api_key = Some(SecretString::from(key));
        }
        if let Some(url) = var("FABRAIX_BASE_URL").filter(|u| !u.trim().is_empty()) {
            self.base_url = url;
        }
        if let Some(ms) = var("FABRAIX_TIMEOUT_MS") {
            match ms.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => self.timeout = Duration::from_millis(ms),
                _ => self.note_env_error(format!(
                    "FABRAIX_TIMEOUT_MS must be a positive number of milliseconds, got `{ms}`"
                )),
            }
        }
        if let Some(n) = var("FABRAIX_MAX_RETRIES") {
            match n.trim().parse::<u32>() {
                Ok(n) => self.retry.max_retries = n,
                Err(_) => self.note_env_error(format!(
                    "FABRAIX_MAX_RETRIES must be a whole number, got `{n}`"
                )),
            }
        }
        if let Some(flag) = var("FABRAIX_DISABLED") {
            match flag.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => self.disabled = true,
                "" | "0" | "false" | "no" | "off" => self.disabled = false,
                _ => self.note_env_error(format!(
                    "FABRAIX_DISABLED must be 1 or 0 (or true/false), got `{flag}`"
                )),
            }
        }
        self
    }

    fn note_env_error(&mut self, message: String) {
        self.env_error.get_or_insert(message);
    }

    /// The API key, sent in the `x-api-key` header. It never appears in any `Debug`,
    /// `Display`, log line or error.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// The API's base URL, e.g. `https://api.fabraix.com/v1`. It must be `https://` unless
    /// its host is loopback (`127.0.0.1`, `::1`, `localhost`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// How long one attempt may take, from sending to the end of the response.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long opening a connection may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one call may take in all, attempts and waits between them included.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How many times a failed request is retried (429, 500, 502, 503, 504, connection
    /// errors, timeouts); 0 disables retries.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry.max_retries = retries;
        self
    }

    /// The backoff between retries: a random wait in `[0, min(cap, base * 2^n)]` before
    /// retry `n` (full jitter).
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.retry.base = base;
        self.retry.cap = cap;
        self
    }

    /// The longest `Retry-After` honoured; longer asks are cut to this.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.retry.max_retry_after = max;
        self
    }

    /// How many events may wait to be sent; past this, `log_event` returns
    /// [`Error::QueueFull`] and the event is counted as dropped.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// How many requests may be in flight at once: this many event requests from the
    /// exporter, and this many other calls (registrations, checks, direct events). Calls
    /// past it wait their turn (within their deadline), so a burst of thousands of agent
    /// runs shares a few connections instead of opening one each.
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests;
        self
    }

    /// How long a `#[fabraix::agent]` fn waits, when it ends, for its run's events to be sent.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }

    /// Turns the SDK off: no request is ever sent, registrations return
    /// [`Error::Disabled`], and agent fns run with no trace.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        if let Some(message) = self.env_error {
            return Err(Error::Config(message));
        }
        let key = self.api_key.as_ref().map(|k| k.expose_secret());
        let base_url = parse_base_url(&self.base_url, key)?;
        let api_key = match self.api_key {
            Some(key) => {
                check_api_key(key.expose_secret())?;
                key
            }
            None if self.disabled => SecretString::from(String::new()),
            None => {
                return Err(Error::Config(
                    "no api key: set FABRAIX_API_KEY or call `ClientBuilder::api_key`".into(),
                ));
            }
        };
        for (name, value) in [
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
            ("deadline", self.deadline),
        ] {
            if value.is_zero() {
                return Err(Error::Config(format!("`{name}` must be more than zero")));
            }
        }
        // Waits beyond an hour are a mistake, and would overflow clock arithmetic near
        // `Duration::MAX`.
        const LONGEST_WAIT: Duration = Duration::from_secs(3600);
        let mut retry = self.retry;
        retry.cap = retry.cap.min(LONGEST_WAIT);
        retry.max_retry_after = retry.max_retry_after.min(LONGEST_WAIT);
        if self.queue_capacity == 0 || self.max_in_flight == 0 {
            return Err(Error::Config(
                "`queue_capacity` and `max_in_flight` must be at least 1".into(),
            ));
        }
        Client::from_config(Config {
            api_key,
            base_url,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            deadline: self.deadline,
            retry,
            queue_capacity: self.queue_capacity,
            max_in_flight: self.max_in_flight,
            flush_timeout: self.flush_timeout,
            disabled: self.disabled,
        })
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field(
                "base_url",
                &shown_url(
                    &self.base_url,
                    self.api_key.as_ref().map(|k| k.expose_secret()),
                ),
            )
            .field("timeout", &self.timeout)
            .field("max_retries", &self.retry.max_retries)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

fn check_api_key(key: &str) -> Result<(), Error> {
    if key.trim().is_empty() {
        return Err(Error::Config("the api key is empty".into()));
    }
    // Never quote the key: only say what is wrong with it.
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::Config(
            "the api key has characters an http header cannot carry (spaces, control or non-ascii characters)".into(),
        ));
    }
    Ok(())
}

/// The base URL as errors and `Debug` show it: never the text as given, which may be a
/// mistyped key. Scheme, host, port and path of a URL, with the key scrubbed; the query
/// and fragment are left out.
fn shown_url(text: &str, key: Option<&str>) -> String {
    match Url::parse(text.trim()) {
        Ok(url) => {
            let origin = url.origin().ascii_serialization();
            let shown = if origin == "null" {
                format!("{}:", url.scheme())
            } else {
                format!("{origin}{}", url.path())
            };
            match key {
                Some(key) => crate::transport::scrub(key, &shown),
                None => shown,
            }
        }
        Err(_) => "[not a url]".to_owned(),
    }
}

fn parse_base_url(text: &str, key: Option<&str>) -> Result<Url, Error> {
    let url = Url::parse(text.trim())
        .map_err(|e| Error::Config(format!("the base url is not a url: {e}")))?;
    let shown = shown_url(text, key);
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(
            "the base url must not carry credentials; the api key goes in `api_key`".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "the base url `{shown}` must not have a query or fragment"
        )));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(Error::Config(format!(
            "the base url `{shown}` must use https:// (plain http:// is only allowed to a loopback host)"
        ))),
        other => Err(Error::Config(format!(
            "the base url `{shown}` has scheme `{other}`; expected https://"
        ))),
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        // Only `localhost` itself: the system resolver answers it from the hosts file,
        // while a name under `.localhost` may be sent to DNS and resolve anywhere.
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn environment_fills_every_setting() {
        let client = ClientBuilder::new()
            .with_env(env(&[
                ("FABRAIX_API_KEY", "sk-env"),
                ("FABRAIX_BASE_URL", "http://127.0.0.1:9/v1"),
                ("FABRAIX_TIMEOUT_MS", "1500"),
                ("FABRAIX_MAX_RETRIES", "7"),
            ]))
            .build()
            .unwrap();
        let config = client.config();
        assert_eq!(config.base_url.as_str(), "http://127.0.0.1:9/v1");
        assert_eq!(config.timeout, Duration::from_millis(1500));
        assert_eq!(config.retry.max_retries, 7);
        assert_eq!(config.api_key.expose_secret(), "sk-env");
        assert!(!config.disabled);
    }

    #[test]
    fn unreadable_environment_is_a_config_error() {
        for (name, value) in [
            ("FABRAIX_TIMEOUT_MS", "soon"),
            ("FABRAIX_TIMEOUT_MS", "0"),
            ("FABRAIX_MAX_RETRIES", "-1"),
            ("FABRAIX_DISABLED", "maybe"),
        ] {
            let err = ClientBuilder::new()
                .with_env(env(&[("FABRAIX_API_KEY", "k"), (name, value)]))
                .build()
                .unwrap_err();
            assert!(
                matches!(&err, Error::Config(m) if m.contains(name)),
                "{name}={value}: {err}"
            );
        }
    }

    #[test]
    fn disabled_needs_no_key() {
        let client = ClientBuilder::new()
            .with_env(env(&[("FABRAIX_DISABLED", "1")]))
            .build()
            .unwrap();
        assert!(client.config().disabled);
    }

    #[test]
    fn missing_or_bad_key_is_refused_without_echoing_it() {
        assert!(matches!(
            ClientBuilder::new().build(),
            Err(Error::Config(_))
        ));
        let err = ClientBuilder::new()
            .api_key("sk-with space")
            .build()
            .unwrap_err();
        assert!(!err.to_string().contains("sk-with"));
    }

    #[test]
    fn base_url_rules() {
        for ok in [
            "https://api.fabraix.com/v1",
            "http://127.0.0.1:8080/v1",
            "http://[::1]:8080/v1",
            "http://localhost:1/v1",
        ] {
            assert!(parse_base_url(ok, None).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.fabraix.com/v1",
            "http://10.0.0.1/v1",
            "ftp://127.0.0.1/v1",
            "https://user:pw@api.fabraix.com/v1",
            "https://api.fabraix.com/v1?x=1",
            "not a url",
        ] {
            assert!(
                matches!(parse_base_url(bad, None), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }
}
