//! [`SharedStore`]: conversations kept in Redis (feature `redis`), so that every process
//! with the same API key and the same Redis continues the same runs.
//!
//! Two keys per conversation, both under `fabraix:{<fingerprint>}:conv:` (the budget's
//! hash tag: one Cluster slot per API key), both expiring:
//!
//! | key (after the prefix) | holds | expires |
//! |---|---|---|
//! | `conv:<ConversationKey hex>` | `<registration ms>\|<Trace JSON>`: the run, and when it was stored (Redis's clock) | `conversation_idle` after the last turn |
//! | `conv:<ConversationKey hex>:lock` | a random token: a first turn is registering the run | the call deadline |
//!
//! Each step is one Lua script, atomic on Redis:
//!
//! - `begin`: a live value (younger than `conversation_max_age`) is the run, and its TTL
//!   starts again; else `SET lock NX PX`: the turn that sets it registers; a turn that
//!   finds it set polls (25–50 ms steps, jittered) until the value appears or the lock is
//!   gone (released, or expired with its registering process), then begins again;
//! - `complete`: the run is stored, and the lock deleted, only while the lock is still
//!   this turn's (a conversation ended meanwhile stays ended);
//! - `release`: a failed or cancelled registration deletes its lock, so a waiting turn
//!   registers at once instead of at the lock's expiry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use redis::Script;

use super::key::ConversationKey;
use crate::api::{Fingerprint, Link, io_thread};
use crate::model::Trace;

/// A turn finding a registration in progress looks again after 25 ms and up to 25 ms more.
const POLL_STEP: Duration = Duration::from_millis(25);
/// The most a turn waits for a process that just started to reach Redis.
const FIRST_CONNECTION: Duration = Duration::from_secs(2);

/// KEYS: value, lock. ARGV: idle ms, max age ms, lock ms, token.
/// Answers `{0, trace}`, `{1, ""}` (the lock is the caller's) or `{2, lock's PTTL}`.
static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local value = redis.call('GET', KEYS[1])
if value then
  local bar = string.find(value, '|', 1, true)
  local since = bar and tonumber(string.sub(value, 1, bar - 1))
  if since and now - since < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    return {0, string.sub(value, bar + 1)}
  end
  redis.call('DEL', KEYS[1])
end
if redis.call('SET', KEYS[2], ARGV[4], 'NX', 'PX', ARGV[3]) then
  return {1, ''}
end
return {2, tostring(redis.call('PTTL', KEYS[2]))}
",
    )
});

/// KEYS: value, lock. ARGV: token, trace JSON, idle ms. Answers 1 when stored.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('SET', KEYS[1], tostring(now) .. '|' .. ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1
",
    )
});

/// KEYS: lock. ARGV: token. Answers 1 when the lock was the caller's.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// KEYS: value, lock. Answers how many were there.
static END: LazyLock<Script> =
    LazyLock::new(|| Script::new("return redis.call('DEL', KEYS[1], KEYS[2])"));

/// The conversations of one API key in one Redis; cheap to clone.
#[derive(Clone)]
pub(crate) struct SharedStore {
    inner: Arc<Inner>,
}

struct Inner {
    link: Link,
    /// `fabraix:{<fingerprint>}:conv:`.
    prefix: String,
    idle_ms: String,
    max_age_ms: String,
    lock_ms: String,
    /// A fallback to this process's store was warned of, and Redis has not answered since.
    warned: AtomicBool,
}

/// What Redis says to a turn.
#[derive(Debug)]
pub(crate) enum SharedBegin {
    /// Continue this live run.
    Continue(Trace),
    /// Register the run, then store it through the claim.
    Register(SharedClaim),
    /// Redis did not answer: this process's store answers instead.
    Unavailable,
    /// Another process's registration outlasted the wait.
    TimedOut,
}

impl SharedStore {
    /// The store of `fingerprint`'s conversations through `link`: runs idle for `idle` or
    /// older than `max_age` are replaced; a first turn's lock lasts `lock` (the call
    /// deadline, which bounds its registration).
    pub(crate) fn new(
        link: Link,
        fingerprint: &Fingerprint,
        idle: Duration,
        max_age: Duration,
        lock: Duration,
    ) -> Self {
        let ms = |d: Duration| {
            d.as_millis()
                .clamp(1, u128::from(u64::MAX >> 1))
                .to_string()
        };
        Self {
            inner: Arc::new(Inner {
                link,
                prefix: fingerprint.key("conv:"),
                idle_ms: ms(idle),
                max_age_ms: ms(max_age),
                lock_ms: ms(lock),
                warned: AtomicBool::new(false),
            }),
        }
    }

    fn value_key(&self, key: ConversationKey) -> String {
        format!("{}{}", self.inner.prefix, key.to_hex())
    }

    fn lock_key(&self, key: ConversationKey) -> String {
        format!("{}{}:lock", self.inner.prefix, key.to_hex())
    }

    /// A turn of `key` begins: its run, the duty to register it, or "unavailable". Waits
    /// for another process's registration at most `left`. Run it on the SDK's runtime.
    pub(crate) async fn begin(self, key: ConversationKey, left: Duration) -> SharedBegin {
        let started = Instant::now();
        let link = &self.inner.link;
        if !link.is_shared() {
            // A process that just started has not reached Redis yet: its first turns
            // would otherwise all fall back.
            link.first_attempt(left.min(FIRST_CONNECTION)).await;
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        let (value, lock) = (self.value_key(key), self.lock_key(key));
        loop {
            let mut call = BEGIN.prepare_invoke();
            call.key(&value)
                .key(&lock)
                .arg(&self.inner.idle_ms)
                .arg(&self.inner.max_age_ms)
                .arg(&self.inner.lock_ms)
                .arg(&token);
            let Some((code, body)) = link.run::<(i64, String)>(&call).await else {
                return SharedBegin::Unavailable;
            };
            self.answered();
            match code {
                0 => match serde_json::from_str::<Trace>(&body) {
                    Ok(trace) => return SharedBegin::Continue(trace),
                    Err(_) => {
                        // Not a value this SDK wrote: forget it, and begin again.
                        tracing::debug!(target: "fabraix", "an unreadable conversation in redis was replaced");
                        self.end(key).await;
                        continue;
                    }
                },
                1 => {
                    return SharedBegin::Register(SharedClaim {
                        store: self.clone(),
                        key,
                        token,
                        done: false,
                    });
                }
                _ => {}
            }
            let waited = started.elapsed();
            let Some(remaining) = left.checked_sub(waited).filter(|r| !r.is_zero()) else {
                return SharedBegin::TimedOut;
            };
            let step = POLL_STEP + POLL_STEP.mul_f64(jitter());
            tokio::time::sleep(step.min(remaining)).await;
        }
    }

    /// Forgets the conversation `key` in Redis: `Some(whether it had a run or a
    /// registration)`, or `None` when Redis did not answer. Run it on the SDK's runtime.
    pub(crate) async fn end(&self, key: ConversationKey) -> Option<bool> {
        let mut call = END.prepare_invoke();
        call.key(self.value_key(key)).key(self.lock_key(key));
        let deleted = self.inner.link.run::<i64>(&call).await?;
        self.answered();
        Some(deleted > 0)
    }

    /// Redis answered: a later fallback is warned of again.
    fn answered(&self) {
        self.inner.warned.store(false, Ordering::Relaxed);
    }

    /// A turn is answered by this process's store: said once until Redis answers again.
    pub(crate) fn warn_fallback(&self) {
        if !self.inner.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "fabraix",
                "redis unavailable: conversations continue from this process's memory; a conversation served by another process meanwhile may get a second run"
            );
        }
    }
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("link", &self.inner.link)
            .finish_non_exhaustive()
    }
}

/// A first turn's lock in Redis: [`complete`](Self::complete) stores the run; dropped
/// without it, the lock is released in the background.
pub(crate) struct SharedClaim {
    store: SharedStore,
    key: ConversationKey,
    token: String,
    done: bool,
}

impl SharedClaim {
    /// The registration ended: a run is stored as the conversation's (while the lock is
    /// still this turn's), a failure releases the lock. Answers whether Redis stored the
    /// run. Run it on the SDK's runtime.
    pub(crate) async fn complete(mut self, registered: Option<Trace>) -> bool {
        self.done = true;
        let store = &self.store;
        let (value, lock) = (store.value_key(self.key), store.lock_key(self.key));
        let Some(json) = registered.and_then(|trace| serde_json::to_string(&trace).ok()) else {
            release(store.inner.link.clone(), lock, self.token.clone()).await;
            return false;
        };
        let mut call = COMPLETE.prepare_invoke();
        call.key(&value)
            .key(&lock)
            .arg(&self.token)
            .arg(json)
            .arg(&store.inner.idle_ms);
        store.inner.link.run::<i64>(&call).await == Some(1)
    }
}

impl Drop for SharedClaim {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let link = self.store.inner.link.clone();
        let lock = self.store.lock_key(self.key);
        let token = std::mem::take(&mut self.token);
        if let Ok(handle) = io_thread::handle() {
            handle.spawn(async move {
                release(link, lock, token).await;
            });
        }
    }
}

impl std::fmt::Debug for SharedClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedClaim")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Deletes `lock` if it still holds `token`; answers whether it did.
async fn release(link: Link, lock: String, token: String) -> bool {
    let mut call = RELEASE.prepare_invoke();
    call.key(lock).arg(token);
    link.run::<i64>(&call).await == Some(1)
}

/// A number in `[0, 1)`, different in every process and call (each `RandomState` is
/// keyed anew): enough to spread polls; no cryptographic use.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}
