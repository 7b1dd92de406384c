//! One key, many processes: the key's rate budget shared through Redis (feature `redis`,
//! `FABRAIX_REDIS_URL`).
//!
//! Every process with the same API key and the same Redis keeps to one budget: the key's
//! windows, the agent calls' fifth of each window, the pauses and probes of each lane
//! after a 429, and the pace of an unknown limit. Each acquisition is one call of one Lua
//! script on Redis's clock, so it is atomic and processes with skewed clocks agree; no
//! lease strands budget in an idle replica. Redis is optional at every call: when it is
//! slow, gone or refusing, the caller hears [`Shared::Unavailable`] within the link's
//! timeout and keeps to its in-process budget.
//!
//! The same [`Link`] carries the client's conversations (`client::conversations`), under
//! the same prefix.
//!
//! - `keys.rs`: the data model (key layout, what each key holds, when it expires), the
//!   key's fingerprint, keyed hashes of ids;
//! - `budget.lua`: the lane rules, in one script;
//! - `shared_budget.rs`: [`SharedBudget`], the calls of the script;
//! - `link.rs`: [`Link`], the connection, its timeout, fallback and reconnection;
//! - `round_trips.rs`: Redis's round-trip times over a bounded sample.
//!
//! # What Redis holds
//!
//! Keys under `fabraix:{<fingerprint>}:` (a SHA-256 of the API key, never the key), all in
//! one Cluster slot per key, each expiring: a window after its span, a pause when it ends,
//! probes after the probe TTL, the pace after a minute without a 429, the send-rate
//! counters 15 s after the last grant. Memory is bounded by the windows: a window keeps
//! one sorted-set member per grant in its span, at most its count. Measured with
//! `MEMORY USAGE` on Redis 7.0 (the tests in `tests/stored.rs` measure it again): an hour
//! window holding 10,000 grants costs 1.29 MB (129 bytes a grant: a sorted set past 128
//! members is a skip list); windows of up to 128 grants are packed, a few bytes a grant;
//! the pauses, probes, pace and counters of a key take under 1 KB together (784 bytes
//! with all of them set).
//!
//! # Connection
//!
//! `redis://[[user]:password@]host[:port][/db]` only: no TLS (`rediss://`) and no Unix
//! sockets, and a single Redis (or a Cluster's proxy), not a Cluster's nodes directly.
//! A password in the URL is a secret: shown as `[redacted]` everywhere, scrubbed from
//! every message.

mod keys;
mod link;
mod round_trips;
mod shared_budget;

#[cfg(feature = "__bench")]
mod bench;
#[cfg(test)]
mod tests;

#[cfg(feature = "__bench")]
pub use bench::FleetBench;
pub(crate) use keys::Fingerprint;
pub(crate) use link::Link;
pub(crate) use shared_budget::{BUDGET_SCRIPT, Pacing, Shared, SharedBudget, WaitReason};
