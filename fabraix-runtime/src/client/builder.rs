//! [`ClientBuilder`]: every setting, its default, and its environment variable.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use super::Client;
use super::conversations::Limits as ConversationLimits;
use crate::api::{DEFAULT_BASE_URL, Options, Settings, scrub};
use crate::model::{Error, RateLimit};

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
/// | [`rate_limit`](Self::rate_limit) | by base URL: `60/min,1000/h` for `dev.fabraix.com`, `600/min,10000/h` for `api.fabraix.com`, `off` elsewhere | `FABRAIX_RATE_LIMIT` |
/// | [`flush_timeout`](Self::flush_timeout) (agent fns, on return) | 5 s | |
/// | [`shutdown_timeout`](Self::shutdown_timeout) (the guard of [`init`](crate::init)) | 10 s | |
/// | `spool_dir` (feature `spool`) | none: events are kept in memory only | `FABRAIX_SPOOL_DIR` |
/// | `spool_write_behind`, `spool_max_bytes`, `spool_max_age` (feature `spool`) | 1 s, 256 MiB, 7 days | |
/// | [`conversation_idle`](Self::conversation_idle) | 30 min | |
/// | [`conversation_max_age`](Self::conversation_max_age) | 24 h | |
/// | [`conversation_capacity`](Self::conversation_capacity) | 100,000 conversations | |
/// | `redis_url` (feature `redis`: the key's budget and the conversations shared by every process) | none | `FABRAIX_REDIS_URL` |
/// | `redis_timeout` (feature `redis`, per call to Redis) | 100 ms | |
///
/// ```
/// use std::time::Duration;
///
/// let client = fabraix::Client::builder()
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
    options: Options,
    rate_limit: Option<RateLimit>,
    conversations: ConversationLimits,
    redis_url: Option<SecretString>,
    /// The first unreadable environment variable, reported by `build`.
    env_error: Option<String>,
    /// `FABRAIX_SPOOL_DIR` or `spool_dir`, and the spool's other settings.
    spool_dir: Option<std::path::PathBuf>,
    #[cfg(feature = "spool")]
    spool: crate::export::SpoolSettings,
    /// Keeps the key scrubbed from the moment it is given (a failed `build` may quote
    /// what holds it).
    remembered: Option<Arc<scrub::KeyGuard>>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            options: Options::default(),
            rate_limit: None,
            conversations: ConversationLimits::default(),
            redis_url: None,
            env_error: None,
            spool_dir: None,
            #[cfg(feature = "spool")]
            spool: crate::export::SpoolSettings::new(std::path::PathBuf::new()),
            remembered: None,
        }
    }
}

impl ClientBuilder {
    /// A builder with every default and nothing read from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder that starts from the environment: `FABRAIX_API_KEY`, `FABRAIX_BASE_URL`,
    /// `FABRAIX_TIMEOUT_MS`, `FABRAIX_MAX_RETRIES`, `FABRAIX_RATE_LIMIT`,
    /// `FABRAIX_SPOOL_DIR` (feature `spool`), `FABRAIX_REDIS_URL` (feature `redis`) and
    /// `FABRAIX_DISABLED`. An unreadable
    /// value is reported by [`build`](Self::build). Setters called afterwards win.
    pub fn from_env() -> Self {
        Self::default().with_env(|name| std::env::var(name).ok())
    }

    pub(crate) fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> Self {
        if let Some(key) = var("FABRAIX_API_KEY").filter(|k| !k.is_empty()) {
            self.remembered = Some(Arc::new(scrub::remember(&key)));
            self.api_key = Some(SecretString::from(key));
        }
        if let Some(url) = var("FABRAIX_BASE_URL").filter(|u| !u.trim().is_empty()) {
            self.base_url = url;
        }
        if let Some(ms) = var("FABRAIX_TIMEOUT_MS") {
            match ms.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => self.options.timeout = Duration::from_millis(ms),
                _ => self.note_env_error(format!(
                    "FABRAIX_TIMEOUT_MS must be a positive number of milliseconds, got `{ms}`"
                )),
            }
        }
        if let Some(n) = var("FABRAIX_MAX_RETRIES") {
            match n.trim().parse::<u32>() {
                Ok(n) => self.options.retry.max_retries = n,
                Err(_) => self.note_env_error(format!(
                    "FABRAIX_MAX_RETRIES must be a whole number, got `{n}`"
                )),
            }
        }
        if let Some(spec) = var("FABRAIX_RATE_LIMIT").filter(|s| !s.trim().is_empty()) {
            match spec.parse::<RateLimit>() {
                Ok(limit) => self.rate_limit = Some(limit),
                // The message alone: `build` makes it an `Error::Config`, whose Display
                // says "invalid fabraix configuration" once.
                Err(Error::Config(message)) => {
                    self.note_env_error(format!("FABRAIX_RATE_LIMIT: {message}"))
                }
                Err(e) => self.note_env_error(format!("FABRAIX_RATE_LIMIT: {e}")),
            }
        }
        if let Some(dir) = var("FABRAIX_SPOOL_DIR").filter(|d| !d.trim().is_empty()) {
            self.spool_dir = Some(dir.into());
        }
        if let Some(url) = var("FABRAIX_REDIS_URL").filter(|u| !u.trim().is_empty()) {
            self.redis_url = Some(SecretString::from(url));
        }
        if let Some(flag) = var("FABRAIX_DISABLED") {
            match flag.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => self.options.disabled = true,
                "" | "0" | "false" | "no" | "off" => self.options.disabled = false,
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
        let key = key.into();
        self.remembered = Some(Arc::new(scrub::remember(&key)));
        self.api_key = Some(SecretString::from(key));
        self
    }

    /// The API's base URL, e.g. `https://api.fabraix.com/v1`. It must be `https://` unless
    /// its host is loopback (`127.0.0.1`, `::1`, `localhost`), and its path must end in the
    /// API's version segment (`/v1`, `/v2`, …; a trailing `/` is fine), under which the
    /// endpoints are: `https://api.fabraix.com` alone is an [`Error::Config`] from
    /// [`build`](Self::build), not a 404 at the first call.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// How long one attempt may take, from sending to the end of the response.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// How long opening a connection may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// How long one call may take in all, attempts and waits between them included.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.options.deadline = deadline;
        self
    }

    /// How many times a failed request is retried (429, 500, 502, 503, 504, connection
    /// errors, timeouts); 0 disables retries.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.options.retry.max_retries = retries;
        self
    }

    /// The backoff between retries: a random wait in `[0, min(cap, base * 2^n)]` before
    /// retry `n` (full jitter).
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.options.retry.base = base;
        self.options.retry.cap = cap;
        self
    }

    /// The longest `Retry-After` honoured; longer asks are cut to this.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.options.retry.max_retry_after = max;
        self
    }

    /// How many events may wait to be sent; past this, `log_event` returns
    /// [`Error::QueueFull`] and the event is counted as dropped.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.options.queue_capacity = capacity;
        self
    }

    /// How many requests may be in flight at once: this many event requests from the
    /// exporter, and this many other calls (registrations, checks, direct events). Calls
    /// past it wait their turn (within their deadline), so a burst of thousands of agent
    /// runs shares a few connections instead of opening one each.
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.options.max_in_flight = requests;
        self
    }

    /// How long a `#[fabraix::agent]` fn waits, when it ends, for its run's events to be sent.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.options.flush_timeout = timeout;
        self
    }

    /// The key's rate limit, which every request of this client (registrations, checks,
    /// events) keeps to: `"60/min,1000/h".parse()?`, [`RateLimit::per`], or
    /// [`RateLimit::off`]. By default, the documented limits of a development key for
    /// `dev.fabraix.com`, of a production key for `api.fabraix.com`, and none known
    /// elsewhere. Whatever it is, a 429 pauses the key's requests and slows them down.
    ///
    /// The limit is per key, not per process: replicas of one service sharing a key should
    /// each be given their share (`FABRAIX_RATE_LIMIT=20/min,330/h` for three replicas of a
    /// development key).
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// How long the guard returned by [`init`](crate::init) waits, when it is dropped, for
    /// queued events to be sent.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.options.shutdown_timeout = timeout;
        self
    }

    /// Turns the SDK off: no request is ever sent, registrations return
    /// [`Error::Disabled`], agent fns run with no trace, their events are let go (counted in
    /// [`EventStats::untraced`](crate::EventStats::untraced)), `check_action` answers
    /// [`Error::Disabled`], and `#[fabraix::action]` tools run unchecked (with one `tracing`
    /// warning per process). Only this switch does that: a missing key, a bad URL or a
    /// failed registration still refuse guarded tools.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.options.disabled = disabled;
        self
    }

    /// Keeps events in a crash-safe spool in `dir` (created if missing), behind the
    /// in-memory queue: written to disk at most [`spool_write_behind`](Self::spool_write_behind)
    /// after they were logged; past the queue's capacity they go to disk instead of being
    /// refused; and what a process leaves there is sent by the next client on the same
    /// folder and key. Several processes may share one folder. Also `FABRAIX_SPOOL_DIR`.
    /// See the README's Reliability section.
    #[cfg(feature = "spool")]
    #[cfg_attr(docsrs, doc(cfg(feature = "spool")))]
    pub fn spool_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// How late an event still queued is written to the spool, at most (default 1 s): the
    /// events a SIGKILL or a power loss can lose are those logged within it.
    #[cfg(feature = "spool")]
    #[cfg_attr(docsrs, doc(cfg(feature = "spool")))]
    pub fn spool_write_behind(mut self, interval: Duration) -> Self {
        self.spool.write_behind = interval;
        self
    }

    /// The spool's size cap, in bytes of stored events (default 256 MiB): past it, the
    /// oldest events are dropped, counted in
    /// [`EventStats::spool_dropped`](crate::EventStats::spool_dropped) and warned about.
    #[cfg(feature = "spool")]
    #[cfg_attr(docsrs, doc(cfg(feature = "spool")))]
    pub fn spool_max_bytes(mut self, bytes: u64) -> Self {
        self.spool.max_bytes = bytes;
        self
    }

    /// The spool's age cap (default 7 days): events logged longer ago are dropped, counted
    /// and warned about.
    #[cfg(feature = "spool")]
    #[cfg_attr(docsrs, doc(cfg(feature = "spool")))]
    pub fn spool_max_age(mut self, age: Duration) -> Self {
        self.spool.max_age = age;
        self
    }

    /// How long a conversation may go without a turn and keep its run: its next turn
    /// after that registers a new run. Default 30 minutes. See
    /// [`Conversation`](crate::Conversation).
    pub fn conversation_idle(mut self, idle: Duration) -> Self {
        self.conversations.idle = idle;
        self
    }

    /// How old a conversation's run may grow: the first turn after that registers a new
    /// run, however busy the conversation. Default 24 hours.
    pub fn conversation_max_age(mut self, age: Duration) -> Self {
        self.conversations.max_age = age;
        self
    }

    /// How many conversations this client keeps in this process (about 200 bytes each);
    /// past it, the least recently used is forgotten and its next turn registers a new
    /// run. Default 100,000.
    pub fn conversation_capacity(mut self, conversations: usize) -> Self {
        self.conversations.capacity = conversations;
        self
    }

    /// Shares the key's rate budget with every process that uses the same key and the
    /// same Redis: `redis://[[user]:password@]host[:port][/db]` (no TLS). Connecting
    /// happens in the background and never delays `build` or an agent; while Redis is
    /// unreachable or slower than [`redis_timeout`](Self::redis_timeout), each process
    /// keeps to its own budget. A password in the URL is kept like the API key.
    ///
    /// The [conversations](crate::Conversation) are kept there too: a turn served by any
    /// of the processes continues the conversation's run. While Redis does not answer,
    /// each process continues the runs it knows, with one warning.
    #[cfg(feature = "redis")]
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(SecretString::from(url.into()));
        self
    }

    /// How long one call to Redis may take before the request keeps to this process's
    /// own budget instead (default 100 ms).
    #[cfg(feature = "redis")]
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        self.options.redis_timeout = timeout;
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        if let Some(message) = self.env_error {
            return Err(Error::Config(message));
        }
        self.conversations.check()?;
        let settings = Settings::new(self.api_key, &self.base_url, self.options, self.rate_limit)?
            .with_redis(self.redis_url)?;
        #[cfg(feature = "spool")]
        {
            let spool = match self.spool_dir {
                Some(dir) if !settings.options.disabled => {
                    if self.spool.max_bytes == 0 || self.spool.max_age.is_zero() {
                        return Err(Error::Config(
                            "`spool_max_bytes` and `spool_max_age` must be more than zero".into(),
                        ));
                    }
                    Some(crate::export::SpoolSettings { dir, ..self.spool })
                }
                _ => None,
            };
            Client::from_settings(settings, spool, self.conversations)
        }
        #[cfg(not(feature = "spool"))]
        {
            if self.spool_dir.is_some() && !settings.options.disabled {
                tracing::warn!(
                    target: "fabraix",
                    "FABRAIX_SPOOL_DIR is set, but fabraix was built without its `spool` feature: events are kept in memory only"
                );
            }
            Client::from_settings(settings, self.conversations)
        }
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &crate::api::shown_url(&self.base_url))
            .field("timeout", &self.options.timeout)
            .field("max_retries", &self.options.retry.max_retries)
            .field("disabled", &self.options.disabled)
            .finish_non_exhaustive()
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
        let settings = client.settings();
        assert_eq!(settings.base_url.as_str(), "http://127.0.0.1:9/v1");
        assert_eq!(settings.options.timeout, Duration::from_millis(1500));
        assert_eq!(settings.options.retry.max_retries, 7);
        assert_eq!(settings.key(), "sk-env");
        assert!(!settings.options.disabled);
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
    fn the_redis_url_comes_from_the_environment_and_stays_secret() {
        let url = "redis://:Env-Redis-Pass@127.0.0.1:6390/2";
        let built = ClientBuilder::new()
            .with_env(env(&[
                ("FABRAIX_API_KEY", "sk-env-redis"),
                ("FABRAIX_REDIS_URL", url),
            ]))
            .build();
        if cfg!(feature = "redis") {
            let client = built.unwrap();
            let redis = client.settings().redis.as_ref().unwrap();
            assert_eq!(redis.shown, "redis://[redacted]@127.0.0.1:6390/2");
            assert_eq!(
                client.settings().options.redis_timeout,
                Duration::from_millis(100)
            );
            assert!(!format!("{client:?}").contains("Env-Redis-Pass"));
        } else {
            let error = built.unwrap_err();
            assert!(error.to_string().contains("`redis` feature"), "{error}");
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn the_redis_setters_win_over_the_environment() {
        let client = ClientBuilder::new()
            .with_env(env(&[
                ("FABRAIX_API_KEY", "sk-env-redis"),
                ("FABRAIX_REDIS_URL", "redis://elsewhere:6379/0"),
            ]))
            .redis_url("redis://127.0.0.1:6391/1")
            .redis_timeout(Duration::from_millis(250))
            .build()
            .unwrap();
        let settings = client.settings();
        assert_eq!(
            settings.redis.as_ref().map(|r| r.shown.as_str()),
            Some("redis://127.0.0.1:6391/1")
        );
        assert_eq!(settings.options.redis_timeout, Duration::from_millis(250));
    }

    #[test]
    fn a_bad_rate_limit_is_one_config_error_naming_it() {
        for value in [
            "1/18446744073709551615s",
            "1/5124095576030431h",
            "1/5000000000000000h",
            "2000000/s",
            "60 per minute",
        ] {
            let err = ClientBuilder::new()
                .with_env(env(&[
                    ("FABRAIX_API_KEY", "sk-rate-limit-env"),
                    ("FABRAIX_RATE_LIMIT", value),
                ]))
                .build()
                .unwrap_err();
            let shown = err.to_string();
            assert!(matches!(err, Error::Config(_)), "{value}: {shown}");
            assert_eq!(
                shown.matches("invalid fabraix configuration").count(),
                1,
                "{shown}"
            );
            assert!(shown.contains("FABRAIX_RATE_LIMIT"), "{shown}");
            assert!(shown.contains(&format!("`{value}`")), "{shown}");
        }
    }

    #[test]
    fn disabled_needs_no_key() {
        let client = ClientBuilder::new()
            .with_env(env(&[("FABRAIX_DISABLED", "1")]))
            .build()
            .unwrap();
        assert!(client.settings().options.disabled);
    }
}
