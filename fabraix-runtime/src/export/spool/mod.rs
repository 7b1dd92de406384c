//! The spool (feature `spool`): events kept on disk behind the in-memory queue, so that
//! they outlive the process. Modelled on the OpenTelemetry Collector's persistent queue
//! and Vector's disk buffer.
//!
//! - **Write-behind.** The queue (`queue.rs`) hands the events it files to this module's
//!   thread in batches, at most one write-behind interval (1 s by default) after they were
//!   logged; an event delivered before then never touches the disk. Past the queue's
//!   capacity, events go to disk only and are read back, in order, when there is room.
//!   `log_event`'s path is unchanged: no disk work runs on the caller's thread or on the
//!   SDK's I/O thread.
//! - **Delivered means deleted.** An event the API acknowledged (or refused for good) is
//!   deleted. Delivery is at least once: the API has no idempotency key, so the requests
//!   in flight when a process dies (and the deletions not yet committed, a few
//!   milliseconds' worth) are sent again by the next.
//! - **One file per client, taken over when its writer is gone.** `folder.rs` names the
//!   files; `file.rs` holds SQLite's exclusive lock for the writer's lifetime. A client
//!   searches the folder for its key's files when it starts and every 10 s, takes over
//!   those whose lock is free, and sends their events in order per trace, under its rate
//!   budget, alongside its own. Another key's files are never opened: the spool stores a
//!   fingerprint of the key (SHA-256), never the key.
//! - **Bounds.** A size cap (256 MiB of records by default) and an age cap (7 days):
//!   the oldest records go first, counted and warned about.
//! - **Damage.** A record knows its length and checksum (`record.rs`); one that does not
//!   match is skipped, deleted and counted. A file SQLite cannot read is renamed
//!   `*.damaged-<time>` with a warning, and a fresh file is used: never a panic, never a
//!   blocked agent. A spool that cannot be written at all (a read-only folder, a full disk)
//!   leaves the queue in memory, as without the feature.
//!
//! Why SQLite (through `rusqlite`, compiled in) rather than `redb`: in WAL mode a commit
//! survives the process being killed without an fsync, so each delivery's deletion can be
//! committed at once for microseconds, while batches of new events are fsynced once per
//! write-behind interval; redb's commits survive a crash only when fsynced. SQLite's own
//! exclusive lock, held until the connection closes and released by the operating system
//! when the process dies, is the advisory lock between processes, with no extra crate (the
//! standard library's `File::try_lock` needs Rust 1.89, past the crates' 1.88). And a
//! damaged or foreign file is reported as such (`SQLITE_NOTADB`, `SQLITE_CORRUPT`) rather
//! than misread. The cost: SQLite's C source compiles once per build directory.

#[cfg(feature = "spool")]
mod file;
#[cfg(feature = "spool")]
mod folder;
mod protocol;
#[cfg(feature = "spool")]
mod record;
#[cfg(feature = "spool")]
mod store;
#[cfg(feature = "spool")]
mod writer;

#[cfg(all(test, feature = "spool"))]
mod tests;

pub(crate) use protocol::{Command, Dropped, Loaded, OWN, Record, Reply, Row};
#[cfg(feature = "spool")]
pub(crate) use writer::Handle;

/// Without the feature there is no spool, and so no handle to one.
#[cfg(not(feature = "spool"))]
pub(crate) enum Handle {}

#[cfg(not(feature = "spool"))]
impl Handle {
    pub fn send(&self, _: Command) {
        match *self {}
    }

    pub async fn recv(&mut self) -> Option<Reply> {
        match *self {}
    }
}

/// Events past the queue's capacity may be on their way to disk, in memory, up to this
/// many; past it `log_event` answers `QueueFull` (a burst faster than the disk).
pub(crate) const IN_TRANSIT: usize = 16_384;

/// A batch is written once it holds this many events, whatever its age.
pub(crate) const BATCH: usize = 4096;

/// Events read back from disk per trace and request.
pub(crate) const LOAD: usize = 256;

#[cfg(feature = "spool")]
/// How often the folder is searched for files whose writers are gone.
pub(crate) const SCAN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The spool's settings, from `ClientBuilder`.
#[cfg(feature = "spool")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpoolSettings {
    pub dir: std::path::PathBuf,
    pub write_behind: std::time::Duration,
    pub max_bytes: u64,
    pub max_age: std::time::Duration,
}

#[cfg(feature = "spool")]
impl SpoolSettings {
    pub const DEFAULT_WRITE_BEHIND: std::time::Duration = std::time::Duration::from_secs(1);
    pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
    pub const DEFAULT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

    pub fn new(dir: std::path::PathBuf) -> Self {
        Self {
            dir,
            write_behind: Self::DEFAULT_WRITE_BEHIND,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_age: Self::DEFAULT_MAX_AGE,
        }
    }
}

/// Starts the spool's thread for a client of `key`; `None` (with a warning) when no thread
/// can be had, and the client keeps to memory.
#[cfg(feature = "spool")]
pub(crate) fn start(
    settings: &SpoolSettings,
    key: &str,
    counters: std::sync::Arc<super::Counters>,
) -> Option<Handle> {
    let config = store::Config {
        dir: settings.dir.clone(),
        fingerprint: folder::fingerprint(key),
        max_bytes: settings.max_bytes,
        max_age: settings.max_age,
    };
    match writer::start(config, counters, SCAN_EVERY) {
        Ok(handle) => Some(handle),
        Err(error) => {
            tracing::warn!(target: "fabraix", %error, "fabraix spool thread could not start; events are kept in memory only");
            None
        }
    }
}
