//! [`SharedBudget`]: the key's rate budget as every process with the key and the Redis
//! sees it. Each acquisition and each outcome is one call of `budget.lua`, where the
//! lane rules live; this side only builds the call and reads the answer. Redis trouble is
//! never an error here: it is [`Shared::Unavailable`], and the caller keeps to its own
//! in-process budget for that request.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::keys::{BudgetKeys, Fingerprint, span_ms};
use super::link::{Link, LinkStats};
use crate::api::Settings;
use crate::api::lane::Lane;
use crate::model::{Error, RateLimit};

/// The script, hashed once; sent by its SHA-1 (`EVALSHA`), loaded again on `NOSCRIPT`.
pub(crate) static BUDGET_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("budget.lua")));

/// What the shared budget says to one acquisition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shared {
    /// Send now. A probe's outcome must be reported: [`SharedBudget::report_probe_ok`] or
    /// [`SharedBudget::report_throttled`] with `probe: true`; the lane's other requests
    /// wait for it (up to the probe TTL).
    Granted { probe: bool },
    /// Ask again after this long (add jitter: every process may be told the same time).
    Wait { for_: Duration, why: WaitReason },
    /// Redis did not answer in time, or is not connected: use the in-process budget.
    Unavailable,
}

/// Why an acquisition waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitReason {
    /// The lane is paused by a 429, fleet-wide; the wait is what is left of the pause.
    Paused,
    /// The lane's probe is out; the wait is a short re-check.
    Probing,
    /// A window is full for the lane; the wait is until its oldest counted grant leaves.
    Window,
    /// The pace after repeated 429s spaces grants; the wait is until the next is due.
    Pace,
}

/// The pace's and probes' parameters, sent with every call so that one place in Rust
/// holds them for the in-process budget and the shared one alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pacing {
    /// How long a probe's answer is awaited before the lane probes again (the request
    /// timeout).
    pub probe_ttl: Duration,
    /// CUBIC's multiplicative decrease: the pace starts at `beta * wmax`.
    pub beta: f64,
    /// CUBIC's scale `C`, in requests/s per s³.
    pub scale: f64,
    /// The lowest pace, requests/s.
    pub min_rate: f64,
}

impl Pacing {
    /// The AWS SDKs' adaptive retry constants (beta 0.7, C 0.4), a pace of at least one
    /// request every ten seconds, and `probe_ttl`.
    pub fn cubic(probe_ttl: Duration) -> Self {
        Self {
            probe_ttl,
            beta: 0.7,
            scale: 0.4,
            min_rate: 0.1,
        }
    }
}

/// One API key's budget in one Redis.
#[derive(Debug, Clone)]
pub(crate) struct SharedBudget {
    link: Link,
    keys: BudgetKeys,
    /// ARGV 3 to 6: probe TTL (ms), beta, C, lowest pace.
    pacing: [String; 4],
    /// ARGV 7..: span (ms) and requests of every window.
    windows: Vec<String>,
}

impl SharedBudget {
    /// The shared budget `settings` ask for (`None` without a Redis URL, or when the SDK
    /// is disabled), connecting in the background: probes are awaited for the request
    /// timeout.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, Error> {
        let options = &settings.options;
        let Some(redis) = settings.redis.as_ref().filter(|_| !options.disabled) else {
            return Ok(None);
        };
        let link = Link::start(
            &redis.url,
            redis.shown.clone(),
            options.redis_timeout,
            vec![&*BUDGET_SCRIPT],
        )?;
        let fingerprint = Fingerprint::of(settings.key());
        let pacing = Pacing::cubic(options.timeout);
        Ok(Some(Self::new(
            link,
            &fingerprint,
            &settings.rate_limit,
            pacing,
        )))
    }

    pub fn new(link: Link, fingerprint: &Fingerprint, limit: &RateLimit, pacing: Pacing) -> Self {
        let windows = limit
            .windows()
            .iter()
            .flat_map(|w| [span_ms(w.per).to_string(), w.requests.to_string()])
            .collect();
        let probe_ttl_ms = pacing.probe_ttl.as_millis().clamp(1, u128::from(u32::MAX));
        Self {
            link,
            keys: BudgetKeys::new(fingerprint, limit),
            pacing: [
                probe_ttl_ms.to_string(),
                pacing.beta.to_string(),
                pacing.scale.to_string(),
                pacing.min_rate.to_string(),
            ],
            windows,
        }
    }

    /// A slot for one request of `lane`, fleet-wide, or how long to wait for one.
    pub async fn acquire(&self, lane: Lane) -> Shared {
        let mut call = self.call("acquire", lane);
        call.arg(&self.windows[..]);
        let Some((code, value)) = self.link.run::<(i64, i64)>(&call).await else {
            return Shared::Unavailable;
        };
        let why = match code {
            0 => return Shared::Granted { probe: value == 1 },
            1 => WaitReason::Paused,
            2 => WaitReason::Probing,
            3 => WaitReason::Window,
            4 => WaitReason::Pace,
            _ => return Shared::Unavailable,
        };
        let micros = u64::try_from(value).unwrap_or(0).max(1);
        Shared::Wait {
            for_: Duration::from_micros(micros),
            why,
        }
    }

    /// A request of `lane` met a 429 asking for `wait`: the lane pauses fleet-wide for
    /// that long, the other lane probes (unless paused), and a 429 met by the probe after
    /// the lane's own pause (`probe`) sets the shared pace. Unreported when Redis is
    /// unavailable (counted).
    pub async fn report_throttled(&self, lane: Lane, wait: Duration, probe: bool) {
        let wait_ms = wait.as_millis().clamp(1, u128::from(u32::MAX));
        let mut call = self.call("throttled", lane);
        call.arg(wait_ms.to_string())
            .arg(if probe { "1" } else { "0" });
        let _ = self.link.run::<(i64, i64)>(&call).await;
    }

    /// The probe of `lane` was answered without a 429: the lane's other requests go.
    pub async fn report_probe_ok(&self, lane: Lane) {
        let call = self.call("probe_ok", lane);
        let _ = self.link.run::<(i64, i64)>(&call).await;
    }

    /// The connection to Redis, which other shared state of the key uses too.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// Whether acquisitions go to Redis right now.
    pub fn is_shared(&self) -> bool {
        self.link.is_shared()
    }

    pub fn stats(&self) -> LinkStats {
        self.link.stats()
    }

    fn call(&self, mode: &str, lane: Lane) -> redis::ScriptInvocation<'static> {
        let mut call = BUDGET_SCRIPT.prepare_invoke();
        call.key(self.keys.all())
            .arg(mode)
            .arg(lane.as_str())
            .arg(&self.pacing[..]);
        call
    }
}
