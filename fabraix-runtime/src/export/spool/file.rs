//! One spool file: an SQLite database in WAL mode, held under an exclusive lock for as
//! long as its writer lives.
//!
//! - **The lock.** The connection runs in `locking_mode=EXCLUSIVE` and takes its lock at
//!   once (`BEGIN EXCLUSIVE`); it keeps it until it is closed, and the operating system
//!   lets it go when the process dies, however it dies. Another connection, in this
//!   process or another, gets `SQLITE_BUSY` and leaves the file alone. SQLite's own lock
//!   (`fcntl` on Unix, `LockFileEx` on Windows) is the advisory lock: no second lock file,
//!   no extra crate. Nothing else in the SDK opens a spool file, which matters on Unix,
//!   where closing any descriptor of a file drops the process's `fcntl` locks on it
//!   (SQLite guards its own descriptors against that).
//! - **Durability.** WAL with `synchronous=NORMAL`: a commit is in the operating system's
//!   hands when it returns, so it survives the process being killed; batches of new
//!   events are committed with `synchronous=FULL` (one fsync each), so that a power loss
//!   loses at most the last write-behind interval. Deletions are not synced: after a power
//!   loss an event may be sent again (at least once).
//! - **What it holds.** `meta` (the format and the API key's fingerprint, never the key)
//!   and `events` (see `record.rs`), indexed by trace and by age.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use super::super::Logged;
use super::record::{self, Damage, Encoded};
use crate::model::TraceId;

/// The spool format this code writes and reads.
const FORMAT: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    trace BLOB NOT NULL,
    logged_at REAL NOT NULL,
    len INTEGER NOT NULL,
    checksum INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_trace ON events (trace, id);
CREATE INDEX IF NOT EXISTS events_by_age ON events (logged_at);
";

/// An open spool file, locked by this process.
pub(crate) struct SpoolFile {
    conn: Connection,
    path: PathBuf,
    /// Records in the file.
    pub rows: u64,
    /// The sum of their bodies' lengths.
    pub bytes: u64,
}

/// What opening another writer's file found.
pub(crate) enum TakeOver {
    /// Locked by us now.
    Taken(SpoolFile),
    /// Its writer is alive (the lock is held).
    Busy,
    /// Another API key's (or a format this code does not know): left alone.
    NotOurs,
    /// Not a spool this code can read: to be set aside.
    Damaged(String),
}

/// One stored record as read back: its id, and the event or why it cannot be trusted.
pub(crate) type Read = (i64, Result<Logged, Damage>);

/// A record removed by a cap: its id, trace and length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Removed {
    pub id: i64,
    pub trace: Option<TraceId>,
}

impl SpoolFile {
    /// Creates a new file at `path` (which must not exist) for the key `fingerprint`.
    pub fn create(path: &Path, fingerprint: &str) -> rusqlite::Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        let file = Self::lock(conn, path)?;
        file.conn.execute_batch(SCHEMA)?;
        file.conn.execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES ('format', ?1), ('key_fingerprint', ?2)",
            params![FORMAT, fingerprint],
        )?;
        file.conn.execute_batch("COMMIT")?;
        Ok(file)
    }

    /// Opens another writer's file at `path`, if its writer is gone and it is `fingerprint`'s.
    pub fn take_over(path: &Path, fingerprint: &str) -> TakeOver {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match Connection::open_with_flags(path, flags) {
            Ok(conn) => conn,
            Err(error) => return classify(error),
        };
        let mut file = match Self::lock(conn, path) {
            Ok(file) => file,
            Err(error) => return classify(error),
        };
        match file.check(fingerprint) {
            Ok(true) => {}
            Ok(false) => return TakeOver::NotOurs,
            Err(error) => return classify(error),
        }
        if let Err(error) = file.conn.execute_batch("COMMIT") {
            return classify(error);
        }
        TakeOver::Taken(file)
    }

    /// Sets the pragmas and takes the lock; leaves a transaction open.
    fn lock(conn: Connection, path: &Path) -> rusqlite::Result<Self> {
        // No waiting: a lock held means a live writer, whom we leave alone.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        // Exclusive before anything is read, so that WAL runs without shared memory and
        // the lock, once taken, is held until the connection closes.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The write-ahead log is truncated back to this after each checkpoint.
        conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
        conn.execute_batch("BEGIN EXCLUSIVE")?;
        Ok(Self {
            conn,
            path: path.to_owned(),
            rows: 0,
            bytes: 0,
        })
    }

    /// Whether the file is a spool of this format for `fingerprint`; counts its records.
    fn check(&mut self, fingerprint: &str) -> rusqlite::Result<bool> {
        let meta = |name: &str| {
            self.conn
                .query_row("SELECT value FROM meta WHERE name = ?1", [name], |row| {
                    row.get::<_, String>(0)
                })
                .optional()
        };
        if meta("format")?.as_deref() != Some(FORMAT)
            || meta("key_fingerprint")?.as_deref() != Some(fingerprint)
        {
            return Ok(false);
        }
        let (rows, bytes) = self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(len), 0) FROM events",
            [],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
        )?;
        self.rows = rows.max(0) as u64;
        self.bytes = bytes.max(0) as u64;
        Ok(true)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a transaction; `durable` commits it with an fsync.
    pub fn begin(&mut self, durable: bool) -> rusqlite::Result<()> {
        let level = if durable { "FULL" } else { "NORMAL" };
        self.conn.pragma_update(None, "synchronous", level)?;
        self.conn.execute_batch("BEGIN IMMEDIATE")
    }

    pub fn commit(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("COMMIT")
    }

    /// Undoes the open transaction, if any (after a failed statement).
    pub fn roll_back(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Stores `record` as row `id`.
    pub fn insert(&mut self, id: i64, record: &Encoded) -> rusqlite::Result<()> {
        let mut statement = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO events (id, trace, logged_at, len, checksum, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        statement.execute(params![
            id,
            &record.trace[..],
            record.logged_at,
            record.len,
            record.checksum,
            &record.body
        ])?;
        self.rows += 1;
        self.bytes += record.len.max(0) as u64;
        Ok(())
    }

    /// Deletes row `id`, if it is there.
    pub fn delete(&mut self, id: i64) -> rusqlite::Result<()> {
        let mut statement = self
            .conn
            .prepare_cached("DELETE FROM events WHERE id = ?1 RETURNING len")?;
        let removed: Option<i64> = statement.query_row([id], |row| row.get(0)).optional()?;
        if let Some(len) = removed {
            self.rows = self.rows.saturating_sub(1);
            self.bytes = self.bytes.saturating_sub(len.max(0) as u64);
        }
        Ok(())
    }

    /// The number of records of each trace. Rows whose trace id is not one are counted
    /// under `None`.
    pub fn index(&self) -> rusqlite::Result<Vec<(Option<TraceId>, u64)>> {
        let mut statement = self
            .conn
            .prepare("SELECT trace, COUNT(*) FROM events GROUP BY trace")?;
        let rows = statement.query_map([], |row| {
            let trace: Vec<u8> = row.get(0).unwrap_or_default();
            let count: i64 = row.get(1)?;
            Ok((trace_id(&trace), count.max(0) as u64))
        })?;
        rows.collect()
    }

    /// Up to `max` records of `trace` after row `after`, in order.
    pub fn load(&self, trace: TraceId, after: i64, max: usize) -> rusqlite::Result<Vec<Read>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, trace, len, checksum, body FROM events
             WHERE trace = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = statement.query_map(
            params![&trace.as_uuid().as_bytes()[..], after, max as i64],
            |row| {
                let id: i64 = row.get(0)?;
                let trace: Vec<u8> = row.get(1)?;
                let len: i64 = row.get(2)?;
                let checksum: i64 = row.get(3)?;
                let body: Vec<u8> = row.get(4)?;
                Ok((id, record::decode(&trace, len, checksum, &body)))
            },
        )?;
        rows.collect()
    }

    /// Deletes every record whose trace column is not a trace id; answers how many.
    pub fn delete_unindexable(&mut self) -> rusqlite::Result<u64> {
        let removed = self.remove(
            "DELETE FROM events WHERE length(trace) != 16 RETURNING id, trace, len",
            [],
        )?;
        Ok(removed.len() as u64)
    }

    /// When the oldest record was logged (Unix seconds).
    pub fn oldest(&self) -> rusqlite::Result<Option<f64>> {
        self.conn
            .query_row("SELECT MIN(logged_at) FROM events", [], |row| row.get(0))
    }

    /// Removes the oldest records until at least `bytes` are freed (or none is left).
    pub fn remove_oldest(&mut self, bytes: u64) -> rusqlite::Result<Vec<Removed>> {
        let mut oldest: Vec<(i64, Vec<u8>, i64)> = Vec::new();
        {
            let mut statement = self
                .conn
                .prepare("SELECT id, trace, len FROM events ORDER BY logged_at, id")?;
            let mut rows = statement.query([])?;
            let mut freed = 0u64;
            while freed < bytes {
                let Some(row) = rows.next()? else { break };
                let len: i64 = row.get(2).unwrap_or(0);
                freed += len.max(0) as u64;
                oldest.push((row.get(0)?, row.get(1).unwrap_or_default(), len));
            }
        }
        let mut statement = self
            .conn
            .prepare_cached("DELETE FROM events WHERE id = ?1")?;
        let mut removed = Vec::with_capacity(oldest.len());
        for (id, trace, len) in oldest {
            statement.execute([id])?;
            self.rows = self.rows.saturating_sub(1);
            self.bytes = self.bytes.saturating_sub(len.max(0) as u64);
            removed.push(Removed {
                id,
                trace: trace_id(&trace),
            });
        }
        Ok(removed)
    }

    /// Removes the records logged before `cutoff` (Unix seconds).
    pub fn remove_older_than(&mut self, cutoff: f64) -> rusqlite::Result<Vec<Removed>> {
        self.remove(
            "DELETE FROM events WHERE logged_at < ?1 RETURNING id, trace, len",
            [cutoff],
        )
    }

    fn remove(&mut self, sql: &str, args: impl rusqlite::Params) -> rusqlite::Result<Vec<Removed>> {
        let mut statement = self.conn.prepare(sql)?;
        let rows = statement.query_map(args, |row| {
            let id: i64 = row.get(0)?;
            let trace: Vec<u8> = row.get(1).unwrap_or_default();
            let len: i64 = row.get(2).unwrap_or(0);
            Ok((id, trace, len))
        })?;
        let mut removed = Vec::new();
        for row in rows {
            let (id, trace, len) = row?;
            self.rows = self.rows.saturating_sub(1);
            self.bytes = self.bytes.saturating_sub(len.max(0) as u64);
            removed.push(Removed {
                id,
                trace: trace_id(&trace),
            });
        }
        Ok(removed)
    }

    /// Closes the file, and deletes it when it holds nothing. Answers whether it was deleted.
    pub fn close(self) -> bool {
        let empty = self.rows == 0;
        let path = self.path.clone();
        drop(self.conn);
        if empty {
            // Whoever takes an empty file over after our lock is gone deletes it too.
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(sidecar(&path, "-wal"));
            let _ = std::fs::remove_file(sidecar(&path, "-shm"));
        }
        empty
    }
}

fn trace_id(bytes: &[u8]) -> Option<TraceId> {
    let bytes = <[u8; 16]>::try_from(bytes).ok()?;
    Some(TraceId::from_uuid(uuid::Uuid::from_bytes(bytes)))
}

/// `path` with `suffix` appended to its file name (SQLite's `-wal` and `-shm` files).
pub(crate) fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn classify(error: rusqlite::Error) -> TakeOver {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => TakeOver::Busy,
        // Gone meanwhile (taken over and emptied by another process), or unreadable to us
        // for a reason setting it aside would not cure.
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
            TakeOver::NotOurs
        }
        _ => TakeOver::Damaged(error.to_string()),
    }
}

/// Whether an error means the file itself is damaged (rather than, say, the disk full).
pub(crate) fn is_damage(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}
