//! [`Link`]: the connection to Redis, which no caller ever waits for.
//!
//! A background task on the SDK's own runtime connects (a `ConnectionManager`, multiplexed)
//! and reconnects with backoff; callers only ever find the link shared or not. While it is
//! shared, a call gets the per-call timeout and no more; past it, on any error, and while
//! not shared, the caller hears "unavailable" at once and falls back to its own
//! in-process budget. A loss is warned of once (target `fabraix`); the link says so again
//! (info) when Redis answers again. Nothing polls: the task sleeps on a backoff or until
//! a call reports a loss.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, RedisError, Script, ScriptInvocation};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;

use super::round_trips::RoundTrips;
use crate::api::io_thread;
use crate::api::retry::RetryPolicy;
use crate::api::scrub;
use crate::model::Error;

/// How long opening a connection may take, in the background.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The wait between attempts to reach Redis again: full jitter from 100 ms, doubling up
/// to 5 s; it starts over once a call has been answered since the last reconnection.
const RECONNECT: RetryPolicy = RetryPolicy {
    max_retries: u32::MAX,
    base: Duration::from_millis(100),
    cap: Duration::from_secs(5),
    max_retry_after: Duration::ZERO,
};
/// No attempt follows the last sooner than this.
const MIN_RECONNECT: Duration = Duration::from_millis(20);

/// The link's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LinkStats {
    /// Whether calls go to Redis right now.
    pub shared: bool,
    /// Round trips of answered calls, over the latest 1,024: median and 99th percentile.
    pub round_trip_p50: Option<Duration>,
    pub round_trip_p99: Option<Duration>,
    /// Calls answered "unavailable" (not connected, an error, or past the timeout).
    pub fallbacks: u64,
    /// Times the link was shared again after a loss.
    pub reconnects: u64,
}

/// A connection to one Redis, cheap to clone; the background task ends with the last clone.
#[derive(Clone)]
pub(crate) struct Link {
    inner: Arc<Inner>,
}

struct Inner {
    /// Set once by the background task, on the SDK's runtime (where its driver runs).
    connection: OnceLock<ConnectionManager>,
    timeout: Duration,
    /// The URL without credentials, for log lines.
    shown: String,
    shared: AtomicBool,
    /// A loss was warned of and Redis has not answered since.
    warned: AtomicBool,
    /// A call was answered since the last (re)connection.
    served: AtomicBool,
    /// Wakes the background task: a loss to repair, or the link dropped.
    wake: Arc<Notify>,
    /// The first attempt to reach Redis has ended, either way.
    tried: AtomicBool,
    /// Wakes the callers of [`Link::first_attempt`].
    tried_once: Notify,
    fallbacks: AtomicU64,
    reconnects: AtomicU64,
    round_trips: Mutex<RoundTrips>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

impl Link {
    /// Starts connecting to `url` in the background and returns at once, unconnected.
    /// Each call will get `timeout`; the scripts in `preload` are loaded on every
    /// (re)connection, so that a call after it needs one round trip.
    pub fn start(
        url: &SecretString,
        shown: String,
        timeout: Duration,
        preload: Vec<&'static Script>,
    ) -> Result<Self, Error> {
        let client = redis::Client::open(url.expose_secret()).map_err(|e| {
            Error::Config(format!(
                "the redis url `{shown}` is not one the redis client takes: {}",
                scrub::scrub(&e.to_string())
            ))
        })?;
        let wake = Arc::new(Notify::new());
        let inner = Arc::new(Inner {
            connection: OnceLock::new(),
            timeout,
            shown,
            shared: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            served: AtomicBool::new(false),
            wake: wake.clone(),
            tried: AtomicBool::new(false),
            tried_once: Notify::new(),
            fallbacks: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            round_trips: Mutex::new(RoundTrips::default()),
        });
        let config = ConnectionManagerConfig::new()
            // The task below paces the attempts; one attempt per ask.
            .set_number_of_retries(0)
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(timeout));
        let task = maintain(Arc::downgrade(&inner), wake, client, config, preload);
        io_thread::handle()?.spawn(task);
        Ok(Self { inner })
    }

    /// Runs `call` within the timeout: its answer, or `None` ("unavailable") at once when
    /// the link is not shared, on any error, or past the timeout.
    pub async fn run<T: FromRedisValue>(&self, call: &ScriptInvocation<'_>) -> Option<T> {
        let inner = &self.inner;
        let connection = match inner.connection.get() {
            Some(connection) if inner.shared.load(Ordering::Acquire) => connection,
            _ => return inner.fell_back(),
        };
        let mut connection = connection.clone();
        let started = Instant::now();
        match tokio::time::timeout(inner.timeout, call.invoke_async::<T>(&mut connection)).await {
            Ok(Ok(answer)) => {
                let took = started.elapsed();
                inner
                    .round_trips
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(took);
                inner.served.store(true, Ordering::Relaxed);
                Some(answer)
            }
            Ok(Err(e)) => {
                inner.lost(&describe(&e));
                inner.fell_back()
            }
            Err(_) => {
                inner.lost(&format!("no answer within {:?}", inner.timeout));
                inner.fell_back()
            }
        }
    }

    /// Waits, at most `within`, for the end of the first attempt to reach Redis (made in
    /// the background from [`start`](Self::start)); answers whether calls go to Redis. For
    /// callers whose first call should not fall back only because the process just started.
    pub async fn first_attempt(&self, within: Duration) -> bool {
        let inner = &self.inner;
        let tried = inner.tried_once.notified();
        tokio::pin!(tried);
        // Registered before the check, so an attempt ending between the two is not missed.
        tried.as_mut().enable();
        if !inner.tried.load(Ordering::Acquire) {
            let _ = tokio::time::timeout(within, tried).await;
        }
        self.is_shared()
    }

    /// Whether calls go to Redis right now.
    pub fn is_shared(&self) -> bool {
        self.inner.shared.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> LinkStats {
        let inner = &self.inner;
        let trips = inner.round_trips.lock().unwrap_or_else(|e| e.into_inner());
        LinkStats {
            shared: self.is_shared(),
            round_trip_p50: trips.quantile(0.5),
            round_trip_p99: trips.quantile(0.99),
            fallbacks: inner.fallbacks.load(Ordering::Relaxed),
            reconnects: inner.reconnects.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("redis", &self.inner.shown)
            .field("shared", &self.is_shared())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn fell_back<T>(&self) -> Option<T> {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// A call failed: stop sharing, say so once, and have the task reconnect.
    fn lost(&self, why: &str) {
        if self.shared.swap(false, Ordering::AcqRel) {
            self.warn_once(why);
            self.wake.notify_one();
        }
    }

    fn warn_once(&self, why: &str) {
        if !self.warned.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                target: "fabraix",
                redis = %self.shown,
                error = why,
                "redis unavailable: this process keeps to its own rate budget until redis answers again"
            );
        }
    }

    fn now_shared(&self) {
        self.served.store(false, Ordering::Relaxed);
        self.shared.store(true, Ordering::Release);
        if self.warned.swap(false, Ordering::AcqRel) {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                target: "fabraix",
                redis = %self.shown,
                "redis answers again: the key's rate budget is shared again"
            );
        } else {
            tracing::debug!(target: "fabraix", redis = %self.shown, "the key's rate budget is shared through redis");
        }
    }
}

/// The background task: connect, then sleep until a call reports a loss, then reconnect
/// with backoff; ends once the link is dropped.
async fn maintain(
    link: Weak<Inner>,
    wake: Arc<Notify>,
    client: redis::Client,
    config: ConnectionManagerConfig,
    preload: Vec<&'static Script>,
) {
    let manager = match ConnectionManager::new_lazy_with_config(client, config) {
        Ok(manager) => manager,
        Err(e) => {
            if let Some(inner) = link.upgrade() {
                inner.warn_once(&describe(&e));
                inner.tried.store(true, Ordering::Release);
                inner.tried_once.notify_waiters();
            }
            return;
        }
    };
    match link.upgrade() {
        Some(inner) => {
            let _ = inner.connection.set(manager.clone());
        }
        None => return,
    }
    let mut attempt = 0u32;
    loop {
        // Bounded even when the network swallows packets.
        let checked = tokio::time::timeout(2 * CONNECT_TIMEOUT, check(&manager, &preload)).await;
        let Some(inner) = link.upgrade() else { return };
        match &checked {
            Ok(Ok(())) => inner.now_shared(),
            Ok(Err(e)) => inner.warn_once(&describe(e)),
            Err(_) => inner.warn_once(&format!("no connection within {:?}", 2 * CONNECT_TIMEOUT)),
        }
        if !inner.tried.swap(true, Ordering::AcqRel) {
            inner.tried_once.notify_waiters();
        }
        match checked {
            Ok(Ok(())) => {
                drop(inner);
                wake.notified().await;
                let Some(inner) = link.upgrade() else { return };
                if inner.served.load(Ordering::Relaxed) {
                    attempt = 0;
                }
            }
            Ok(Err(_)) | Err(_) => drop(inner),
        }
        let pause = RECONNECT.delay(attempt, None).max(MIN_RECONNECT);
        attempt = attempt.saturating_add(1);
        // Woken early only when the link is dropped (no loss is reported while unshared).
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = wake.notified() => {}
        }
        if link.strong_count() == 0 {
            return;
        }
    }
}

/// Whether Redis answers: the scripts loaded (or a PING when there are none).
async fn check(manager: &ConnectionManager, preload: &[&'static Script]) -> Result<(), RedisError> {
    let mut connection = manager.clone();
    // A connection attempt that failed earlier answers its old error once and starts a
    // new attempt: ask again to hear the new one.
    let mut last = None;
    for _ in 0..2 {
        let outcome = if preload.is_empty() {
            redis::cmd("PING").query_async::<()>(&mut connection).await
        } else {
            load(&mut connection, preload).await
        };
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) if e.is_io_error() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| RedisError::from((redis::ErrorKind::Io, "no answer"))))
}

async fn load(
    connection: &mut ConnectionManager,
    scripts: &[&'static Script],
) -> Result<(), RedisError> {
    for script in scripts {
        script.load_async(connection).await?;
    }
    Ok(())
}

/// An error as log lines show it: scrubbed of every secret this process knows.
fn describe(error: &RedisError) -> String {
    scrub::scrub(&error.to_string())
}
