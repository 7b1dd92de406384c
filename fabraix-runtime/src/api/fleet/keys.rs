//! What the SDK keeps in Redis, and under which names.
//!
//! # The data model
//!
//! Every key of one API key starts with `fabraix:{<fingerprint>}:`. The fingerprint is the
//! first 128 bits, in hex, of SHA-256 over a fixed domain tag and the API key: whoever
//! reads Redis learns which entries belong together, never the key. It sits in a
//! `{hash tag}`, so every entry of one API key lives in one Redis Cluster slot and one
//! script may touch them all.
//!
//! | key (after the prefix) | type | holds | expires |
//! |---|---|---|---|
//! | `budget:window:<span ms>` | sorted set | one member per grant in the window's span (member and score: the grant's time, µs on Redis's clock) | the span with its margin after the last grant |
//! | `budget:pause:<lane>` | string | when the lane's pause ends (µs) | when the pause ends |
//! | `budget:probe:<lane>` | string | `self` or `other`: the lane's next acquisition is a probe, after its own pause or the other lane's | the pause that set it plus the probe TTL, at least twice the probe TTL once a probe is out |
//! | `budget:probing:<lane>` | string | a probe of the lane is out | the probe TTL |
//! | `budget:pace` | hash | `wmax` (requests/s) and `t` (µs): the pace's CUBIC curve | 60 s after the last 429, or later: once the pace is twice `wmax` |
//! | `budget:sent` | hash | grants per second of Redis's clock, `last` (µs), for the fleet's send rate and the pace's spacing, and `agent_wait` (µs): until when events wait for a refused agent call | 15 s after the last grant |
//! | `conv:<conversation key>` | string | `<ms>\|<trace JSON>`: a conversation's run and when it was stored (Redis's clock); see `client::conversations` | `conversation_idle` after the conversation's last turn |
//! | `conv:<conversation key>:lock` | string | a random token: a first turn registering the run | the call deadline |
//!
//! `<lane>` is `agent` or `events`; `<conversation key>` is the conversation's
//! `ConversationKey` in hex (a keyed hash of the agent and the conversation id). The windows are keyed by their span, not their count:
//! processes configured alike share one set, and a process configured with another count
//! for the same span reads the same grants against its own count.
//!
//! Ids that may identify people (conversation ids) are stored only as keyed hashes: see
//! `client::conversations`'s `ConversationKey`.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::api::lane::Lane;
use crate::model::RateLimit;

/// The domain tag of the fingerprint.
const FINGERPRINT_TAG: &[u8] = b"fabraix/redis/key-fingerprint/v1";
/// Bytes of a digest kept in a name: 128 bits, plenty against collisions among keys.
const KEPT: usize = 16;

/// An API key as Redis sees it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Fingerprint(String);

impl Fingerprint {
    pub fn of(api_key: &str) -> Self {
        Self(hex(&tagged_digest(FINGERPRINT_TAG, api_key)[..KEPT]))
    }

    /// The 32 hex digits.
    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the entry `rest` of this API key.
    pub fn key(&self, rest: &str) -> String {
        format!("fabraix:{{{}}}:{rest}", self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.0)
    }
}

/// The names the budget script reads and writes, in the order of its `KEYS`.
#[derive(Debug, Clone)]
pub(crate) struct BudgetKeys {
    names: Vec<String>,
}

impl BudgetKeys {
    /// Keys before the windows' (see `budget.lua`).
    pub const FIXED: usize = 8;

    pub fn new(fingerprint: &Fingerprint, limit: &RateLimit) -> Self {
        let per_lane =
            |what: &str| Lane::ALL.map(|lane| format!("budget:{what}:{}", lane.as_str()));
        let mut names: Vec<String> = [per_lane("pause"), per_lane("probe"), per_lane("probing")]
            .into_iter()
            .flatten()
            .chain(["budget:pace".to_owned(), "budget:sent".to_owned()])
            .map(|rest| fingerprint.key(&rest))
            .collect();
        debug_assert_eq!(names.len(), Self::FIXED);
        names.extend(
            limit
                .windows()
                .iter()
                .map(|w| fingerprint.key(&format!("budget:window:{}", span_ms(w.per)))),
        );
        Self { names }
    }

    /// Every name, in the script's order.
    pub fn all(&self) -> &[String] {
        &self.names
    }
}

/// A window's span as the script and the key name carry it.
pub(crate) fn span_ms(span: std::time::Duration) -> u64 {
    u64::try_from(span.as_millis()).unwrap_or(u64::MAX)
}

fn tagged_digest(tag: &[u8], api_key: &str) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(tag);
    // The tag's end, so that no tag and key can read as another tag and key.
    digest.update([0u8]);
    digest.update(api_key.as_bytes());
    digest.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_fingerprint_is_stable_hex_and_never_the_key() {
        let key = "sk-Fingerprint-Example-123";
        let fp = Fingerprint::of(key);
        assert_eq!(fp, Fingerprint::of(key));
        assert_eq!(fp.as_str().len(), 32);
        assert!(
            fp.as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(fp, Fingerprint::of("sk-Fingerprint-Example-124"));
        assert!(!fp.key("x").to_lowercase().contains(&key.to_lowercase()));
        // SHA-256 of the tag, a zero byte and the key, as documented.
        let mut expected = Sha256::new();
        expected.update(b"fabraix/redis/key-fingerprint/v1\0sk-Fingerprint-Example-123");
        assert_eq!(fp.as_str(), hex(&expected.finalize()[..16]));
    }

    #[test]
    fn every_budget_key_is_in_the_fingerprints_hash_tag() {
        let fp = Fingerprint::of("sk-tagged");
        let limit = RateLimit::per(10, Duration::from_secs(2)).and(100, Duration::from_secs(60));
        let keys = BudgetKeys::new(&fp, &limit);
        assert_eq!(keys.all().len(), BudgetKeys::FIXED + 2);
        let tag = format!("fabraix:{{{}}}:budget:", fp.as_str());
        for name in keys.all() {
            assert!(name.starts_with(&tag), "{name}");
            assert_eq!(name.matches('{').count(), 1, "{name}");
        }
        assert!(keys.all()[BudgetKeys::FIXED].ends_with(":window:2000"));
        assert!(keys.all()[0].ends_with(":pause:agent"));
        assert!(keys.all()[1].ends_with(":pause:events"));
    }
}
