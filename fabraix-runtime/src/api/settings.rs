//! [`Settings`]: what one client talks to and how, after validation.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use super::retry::RetryPolicy;
use super::scrub;
use crate::model::wire::Endpoint;
use crate::model::{Error, RateLimit};

/// The base URL when neither `FABRAIX_BASE_URL` nor `ClientBuilder::base_url` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://dev.fabraix.com/v1";

/// Why a base URL that holds an API key is refused: the http stack logs URLs (at debug
/// and trace level), and nothing can scrub its log lines.
pub(crate) const KEY_IN_URL: &str = "the base url holds an api key; the key goes in `api_key` (or FABRAIX_API_KEY), never in the url";

/// Responses larger than this are refused rather than read.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Waits beyond an hour are a mistake, and would overflow clock arithmetic near
/// `Duration::MAX`.
const LONGEST_WAIT: Duration = Duration::from_secs(3600);

/// The tunable settings, each with its default; `ClientBuilder` sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub deadline: Duration,
    pub retry: RetryPolicy,
    pub queue_capacity: usize,
    pub max_in_flight: usize,
    pub flush_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub disabled: bool,
    /// How long one call to Redis may take before the budget falls back to its own.
    pub redis_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
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
            shutdown_timeout: Duration::from_secs(10),
            disabled: false,
            redis_timeout: Duration::from_millis(100),
        }
    }
}

/// The settings a client runs with: valid by construction.
#[derive(Clone)]
pub(crate) struct Settings {
    pub api_key: SecretString,
    pub base_url: Url,
    pub options: Options,
    /// The key's limit: as given, else the documented one of the base URL's host.
    pub rate_limit: RateLimit,
    /// Where the key's budget is shared with other processes, if anywhere.
    pub redis: Option<RedisSettings>,
    /// The endpoints' URLs, parsed once.
    endpoints: [Url; 3],
    /// The generation of the remembered keys at which the URLs were last found to hold
    /// none (see [`scrub::generation`]): they are searched again only after a new key.
    clean_at: CleanAt,
    /// Keeps the key remembered by the scrubber for as long as a client holds these
    /// settings (and a while after).
    _remembered: Arc<scrub::KeyGuard>,
}

/// The Redis that shares the key's budget (feature `redis`).
#[derive(Clone)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) struct RedisSettings {
    /// The URL as given: it may hold a password.
    pub url: SecretString,
    /// The URL as logs and errors show it, credentials redacted.
    pub shown: String,
    /// Keeps the URL's password remembered by the scrubber while these settings live.
    _remembered: Arc<Vec<scrub::KeyGuard>>,
}

/// A generation of the remembered keys, `u64::MAX` for none yet.
#[derive(Debug)]
struct CleanAt(AtomicU64);

impl Clone for CleanAt {
    fn clone(&self) -> Self {
        Self(AtomicU64::new(self.0.load(Ordering::Relaxed)))
    }
}

/// The documented limits of a key, by the API's host: a development key for
/// `dev.fabraix.com`, a production key for `api.fabraix.com`, none known elsewhere (a
/// MockServer, a proxy), where the budget adapts to the 429s it meets.
pub(crate) fn default_rate_limit(base_url: &Url) -> RateLimit {
    match base_url.host_str() {
        Some("dev.fabraix.com") => RateLimit::development(),
        Some("api.fabraix.com") => RateLimit::production(),
        _ => RateLimit::off(),
    }
}

impl Settings {
    /// Checks everything: a key unless disabled, the base URL's rules, positive timeouts.
    pub fn new(
        api_key: Option<SecretString>,
        base_url: &str,
        mut options: Options,
        rate_limit: Option<RateLimit>,
    ) -> Result<Self, Error> {
        let remembered = Arc::new(scrub::remember(
            api_key.as_ref().map_or("", |key| key.expose_secret()),
        ));
        if scrub::holds_a_key(base_url.trim()) {
            return Err(Error::Config(KEY_IN_URL.into()));
        }
        let base_url = parse_base_url(base_url)?;
        let api_key = match api_key {
            Some(key) => {
                check_api_key(key.expose_secret())?;
                key
            }
            None if options.disabled => SecretString::from(String::new()),
            None => {
                return Err(Error::Config(
                    "no api key: set FABRAIX_API_KEY or call `ClientBuilder::api_key`".into(),
                ));
            }
        };
        for (name, value) in [
            ("timeout", options.timeout),
            ("connect_timeout", options.connect_timeout),
            ("deadline", options.deadline),
        ] {
            if value.is_zero() {
                return Err(Error::Config(format!("`{name}` must be more than zero")));
            }
        }
        options.retry.cap = options.retry.cap.min(LONGEST_WAIT);
        options.retry.max_retry_after = options.retry.max_retry_after.min(LONGEST_WAIT);
        if options.queue_capacity == 0 || options.max_in_flight == 0 {
            return Err(Error::Config(
                "`queue_capacity` and `max_in_flight` must be at least 1".into(),
            ));
        }
        if base_url.scheme() == "https" && !cfg!(any(feature = "rustls", feature = "native-tls")) {
            return Err(Error::Config(
                "an https:// base url needs the `rustls` or `native-tls` feature".into(),
            ));
        }
        let rate_limit = rate_limit.unwrap_or_else(|| default_rate_limit(&base_url));
        let endpoint = |e: Endpoint| {
            let text = format!("{}{}", base_url.as_str().trim_end_matches('/'), e.path());
            Url::parse(&text).map_err(|e| Error::Config(format!("an invalid endpoint url: {e}")))
        };
        let endpoints = [
            endpoint(Endpoint::RegisterAgentRun)?,
            endpoint(Endpoint::Event)?,
            endpoint(Endpoint::Check)?,
        ];
        Ok(Self {
            api_key,
            base_url,
            options,
            rate_limit,
            redis: None,
            endpoints,
            clean_at: CleanAt(AtomicU64::new(u64::MAX)),
            _remembered: remembered,
        })
    }

    /// These settings, sharing the key's budget through the Redis at `url` (none: each
    /// process keeps its own).
    pub fn with_redis(mut self, url: Option<SecretString>) -> Result<Self, Error> {
        let Some(url) = url else {
            return Ok(self);
        };
        if !cfg!(feature = "redis") {
            return Err(Error::Config(
                "FABRAIX_REDIS_URL is set, but fabraix was built without its `redis` feature, which shares the key's budget through redis: enable the feature or unset the variable".into(),
            ));
        }
        let (shown, remembered) = check_redis_url(url.expose_secret())?;
        if self.options.redis_timeout.is_zero() {
            return Err(Error::Config(
                "`redis_timeout` must be more than zero".into(),
            ));
        }
        self.options.redis_timeout = self.options.redis_timeout.min(LONGEST_WAIT);
        self.redis = Some(RedisSettings {
            url,
            shown,
            _remembered: Arc::new(remembered),
        });
        Ok(self)
    }

    /// The key, for the request header and for scrubbing.
    pub fn key(&self) -> &str {
        self.api_key.expose_secret()
    }

    /// The URL of `endpoint`, or a `Config` error when it holds a key known to this
    /// process (a key pasted into the base URL; HTTP libraries log URLs). Searched once per
    /// key remembered, not once per request.
    pub fn endpoint_url(&self, endpoint: Endpoint) -> Result<Url, Error> {
        let generation = scrub::generation();
        if self.clean_at.0.load(Ordering::Acquire) != generation {
            if self
                .endpoints
                .iter()
                .any(|url| scrub::holds_a_key(url.as_str()))
            {
                return Err(Error::Config(KEY_IN_URL.into()));
            }
            self.clean_at.0.store(generation, Ordering::Release);
        }
        let index = match endpoint {
            Endpoint::RegisterAgentRun => 0,
            Endpoint::Event => 1,
            Endpoint::Check => 2,
        };
        Ok(self.endpoints[index].clone())
    }

    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.base_url)
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        f.debug_struct("Settings")
            .field("api_key", &"[redacted]")
            .field("base_url", &shown_url(self.base_url.as_str()))
            .field("timeout", &o.timeout)
            .field("connect_timeout", &o.connect_timeout)
            .field("deadline", &o.deadline)
            .field("max_retries", &o.retry.max_retries)
            .field("queue_capacity", &o.queue_capacity)
            .field("flush_timeout", &o.flush_timeout)
            .field("disabled", &o.disabled)
            .field("rate_limit", &format_args!("{}", self.rate_limit))
            .field("redis", &self.redis.as_ref().map(|r| &r.shown))
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
/// mistyped key. Scheme, host, port and path of a URL, with keys scrubbed; the query
/// and fragment are left out.
pub(crate) fn shown_url(text: &str) -> String {
    match Url::parse(text.trim()) {
        Ok(url) => {
            let origin = url.origin().ascii_serialization();
            let shown = if origin == "null" {
                format!("{}:", url.scheme())
            } else {
                format!("{origin}{}", url.path())
            };
            if scrub::holds_a_key(&shown) {
                // Percent-encoded, a key escapes the scrub: show the path decoded instead.
                let decoded = percent_encoding::percent_decode_str(&shown).decode_utf8_lossy();
                return scrub::scrub(&decoded);
            }
            scrub::scrub(&shown)
        }
        Err(_) => "[not a url]".to_owned(),
    }
}

fn parse_base_url(text: &str) -> Result<Url, Error> {
    let url = Url::parse(text.trim())
        .map_err(|e| Error::Config(format!("the base url is not a url: {e}")))?;
    let shown = shown_url(text);
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
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(Error::Config(format!(
                "the base url `{shown}` must use https:// (plain http:// is only allowed to a loopback host)"
            )));
        }
        other => {
            return Err(Error::Config(format!(
                "the base url `{shown}` has scheme `{other}`; expected https://"
            )));
        }
    }
    if !ends_in_version(&url) {
        return Err(Error::Config(format!(
            "the base url `{shown}` must end in the api's version segment, e.g. `https://dev.fabraix.com/v1`: the endpoints (`/register-agent-run`, `/event`, `/check`) are under it"
        )));
    }
    Ok(url)
}

/// Whether the URL's path ends in a version segment: `/v1`, `/v2`, … (a trailing `/` is
/// allowed). Without it every call would be a 404 of the API's.
fn ends_in_version(url: &Url) -> bool {
    let last = url.path().trim_end_matches('/').rsplit('/').next();
    last.and_then(|segment| segment.strip_prefix('v'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks a Redis URL, `redis://[[user]:password@]host[:port][/db]`, and answers it as
/// logs show it. A password is remembered for scrubbing (while the guards answered live)
/// and never shown.
fn check_redis_url(text: &str) -> Result<(String, Vec<scrub::KeyGuard>), Error> {
    let url = Url::parse(text.trim()).map_err(|e| {
        Error::Config(format!(
            "the redis url is not a url ({e}); expected `redis://host:port/db`"
        ))
    })?;
    let mut remembered = Vec::new();
    if let Some(password) = url.password() {
        let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
        remembered.push(scrub::remember(&decoded));
        remembered.push(scrub::remember(password));
    }
    let credentials = if url.username().is_empty() && url.password().is_none() {
        ""
    } else {
        "[redacted]@"
    };
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let shown = scrub::scrub(&format!(
        "{}://{credentials}{host}{port}{}",
        url.scheme(),
        url.path()
    ));
    match url.scheme() {
        "redis" => {}
        "rediss" => {
            return Err(Error::Config(format!(
                "the redis url `{shown}` asks for tls, which the shared budget does not speak; use `redis://` (to a local tls proxy, if redis is remote)"
            )));
        }
        other => {
            return Err(Error::Config(format!(
                "the redis url `{shown}` has scheme `{other}`; expected `redis://host:port/db`"
            )));
        }
    }
    if host.is_empty() {
        return Err(Error::Config(format!(
            "the redis url `{shown}` names no host; expected `redis://host:port/db`"
        )));
    }
    let db = url.path().trim_start_matches('/');
    if !(db.is_empty() || (db.len() <= 5 && db.bytes().all(|b| b.is_ascii_digit()))) {
        return Err(Error::Config(format!(
            "the redis url `{shown}` ends in `/{db}`; expected a database number, e.g. `/0`"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "the redis url `{shown}` must not have a query or fragment"
        )));
    }
    Ok((shown, remembered))
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

    #[test]
    fn base_url_rules() {
        for ok in [
            "https://api.fabraix.com/v1",
            "http://127.0.0.1:8080/v1",
            "http://[::1]:8080/v1",
            "http://localhost:1/v1",
            "https://api.fabraix.com/v1/",
            "https://gateway.example/fabraix/v2",
            "https://gateway.example/fabraix/v10//",
        ] {
            assert!(parse_base_url(ok).is_ok(), "{ok}");
        }
        for unversioned in [
            "https://api.fabraix.com",
            "https://api.fabraix.com/",
            "https://api.fabraix.com/api",
            "https://api.fabraix.com/v1/check",
            "https://api.fabraix.com/v",
            "https://api.fabraix.com/V1",
            "https://api.fabraix.com/v1beta",
            "http://127.0.0.1:8080",
        ] {
            let error = parse_base_url(unversioned).unwrap_err();
            assert!(
                error.to_string().contains("version segment"),
                "{unversioned}: {error}"
            );
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
                matches!(parse_base_url(bad), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn missing_or_bad_key_is_refused_without_echoing_it() {
        let options = Options::default();
        assert!(matches!(
            Settings::new(None, DEFAULT_BASE_URL, options, None),
            Err(Error::Config(_))
        ));
        let err = Settings::new(
            Some(SecretString::from("sk-with space")),
            DEFAULT_BASE_URL,
            options,
            None,
        )
        .err()
        .map(|e| e.to_string());
        assert!(err.is_some_and(|e| !e.contains("sk-with")));
    }

    #[test]
    fn the_default_rate_limit_follows_the_host() {
        for (url, limit) in [
            (DEFAULT_BASE_URL, RateLimit::development()),
            ("https://api.fabraix.com/v1", RateLimit::production()),
            ("http://127.0.0.1:9/v1", RateLimit::off()),
            ("https://fabraix-proxy.internal/v1", RateLimit::off()),
        ] {
            assert_eq!(
                default_rate_limit(&parse_base_url(url).unwrap()),
                limit,
                "{url}"
            );
        }
    }

    fn with_redis(url: &str) -> Result<Settings, Error> {
        Settings::new(
            Some(SecretString::from("sk-redis-settings")),
            DEFAULT_BASE_URL,
            Options::default(),
            None,
        )?
        .with_redis(Some(SecretString::from(url.to_owned())))
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_urls_are_checked_and_shown_without_credentials() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            ("redis://redis.internal", "redis://redis.internal"),
            (
                "redis://redis.internal:7000/",
                "redis://redis.internal:7000/",
            ),
            ("redis://[::1]:6379/3", "redis://[::1]:6379/3"),
            (
                "redis://:Sw0rdfish-Pass@cache:6379/1",
                "redis://[redacted]@cache:6379/1",
            ),
            (
                "redis://app:Sw0rdfish-Pass@cache/1",
                "redis://[redacted]@cache/1",
            ),
        ] {
            let settings = with_redis(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(
                settings.redis.as_ref().map(|r| r.shown.as_str()),
                Some(shown)
            );
            let debug = format!("{settings:?}");
            assert!(
                debug.contains(shown) && !debug.contains("Sw0rdfish"),
                "{debug}"
            );
        }
        for (url, says) in [
            ("rediss://:Sw0rdfish-Pass@cache:6380/0", "tls"),
            ("http://cache:6379/0", "scheme `http`"),
            ("unix:///run/redis.sock", "scheme `unix`"),
            ("redis://cache:6379/zero", "database number"),
            ("redis://cache:6379/0?protocol=resp3", "query"),
            ("redis://:Sw0rdfish-Pass@", "not a url"),
            ("cache:6379", "scheme `cache`"),
            ("not a url", "not a url"),
        ] {
            let error = with_redis(url)
                .err()
                .unwrap_or_else(|| panic!("{url} accepted"));
            let text = error.to_string();
            assert!(matches!(error, Error::Config(_)), "{url}: {error:?}");
            assert!(text.contains(says), "{url}: {text}");
            assert!(!text.contains("Sw0rdfish"), "{text}");
            assert_eq!(
                text.matches("invalid fabraix configuration").count(),
                1,
                "{text}"
            );
        }
        let zero = Options {
            redis_timeout: Duration::ZERO,
            ..Options::default()
        };
        let error = Settings::new(
            Some(SecretString::from("k-zero")),
            DEFAULT_BASE_URL,
            zero,
            None,
        )
        .and_then(|s| s.with_redis(Some(SecretString::from("redis://cache".to_owned()))))
        .unwrap_err();
        assert!(error.to_string().contains("redis_timeout"), "{error}");
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn a_redis_url_without_the_redis_feature_names_the_feature() {
        let error = with_redis("redis://127.0.0.1:6379/0").unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::Config(_)));
        assert!(
            text.contains("`redis` feature") && text.contains("FABRAIX_REDIS_URL"),
            "{text}"
        );
        assert_eq!(
            text.matches("invalid fabraix configuration").count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn no_redis_url_shares_nothing() {
        let settings = Settings::new(
            Some(SecretString::from("sk-alone")),
            DEFAULT_BASE_URL,
            Options::default(),
            None,
        )
        .and_then(|s| s.with_redis(None))
        .unwrap();
        assert!(settings.redis.is_none());
    }

    #[test]
    fn disabled_needs_no_key() {
        let options = Options {
            disabled: true,
            ..Options::default()
        };
        assert!(Settings::new(None, DEFAULT_BASE_URL, options, None).is_ok());
    }
}
