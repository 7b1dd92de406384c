//! The spool's files against real disk: the lock, takeover, reading back in order,
//! damage, the caps, and another key's files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::super::{Counters, Logged};
use super::file::{SpoolFile, TakeOver};
use super::folder;
use super::protocol::{Command, OWN, Record, Reply, Row};
use super::store::{Config, Store};
use crate::model::{EventType, TraceId};

/// A folder of its own under the system's temporary folder, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "fabraix-spool-unit-{name}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a temporary folder");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const KEY: &str = "sk-unit-test-key-0123456789";

fn trace(n: u128) -> TraceId {
    TraceId::from_uuid(uuid::Uuid::from_u128(n))
}

fn logged(t: TraceId, text: &str, at: f64) -> Arc<Logged> {
    Arc::new(Logged {
        trace_id: t,
        kind: EventType::Tool,
        timestamp: at,
        content: format!(r#"{{"text":"{text}"}}"#),
        schema: Arc::from(r#"{"type":"object"}"#),
    })
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs_f64()
}

fn store(dir: &Path, max_bytes: u64, max_age: Duration) -> (Store, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let config = Config {
        dir: dir.to_owned(),
        fingerprint: folder::fingerprint(KEY),
        max_bytes,
        max_age,
    };
    (Store::new(config, counters.clone()), counters)
}

fn roomy(dir: &Path) -> (Store, Arc<Counters>) {
    store(dir, u64::MAX, Duration::from_secs(3600))
}

fn write(store: &mut Store, records: Vec<(i64, Arc<Logged>, bool)>) -> Vec<Reply> {
    let mut out = Vec::new();
    let records = records
        .into_iter()
        .map(|(id, logged, resident)| Record {
            id,
            logged,
            resident,
        })
        .collect();
    store.apply(vec![Command::Write(records)], &mut out);
    out
}

fn load(store: &mut Store, t: TraceId, max: usize) -> (Vec<(Row, String)>, bool) {
    let mut out = Vec::new();
    store.apply(vec![Command::Load(vec![(t, max)])], &mut out);
    match out.pop() {
        Some(Reply::Loaded(mut loaded)) => {
            let loaded = loaded.pop().expect("one trace");
            let texts = loaded
                .records
                .into_iter()
                .map(|(row, l)| (row, l.content))
                .collect();
            (texts, loaded.exhausted)
        }
        other => panic!("expected Loaded, got {other:?}"),
    }
}

fn taken_over(out: &[Reply]) -> Vec<(TraceId, u64)> {
    let mut all: Vec<_> = out
        .iter()
        .filter_map(|r| match r {
            Reply::TakenOver(traces) => Some(traces.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    all.sort();
    all
}

fn spool_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the folder")
        .map(|e| e.expect("an entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn a_live_writer_s_file_is_never_taken_over_and_a_gone_one_s_is() {
    let dir = TempDir::new("lock");
    let fingerprint = folder::fingerprint(KEY);
    let path = folder::new_file(dir.path(), &fingerprint);
    let live = SpoolFile::create(&path, &fingerprint).expect("created");
    // Another connection, as another process would open it: the lock is held.
    assert!(matches!(
        SpoolFile::take_over(&path, &fingerprint),
        TakeOver::Busy
    ));
    drop(live);
    match SpoolFile::take_over(&path, &fingerprint) {
        TakeOver::Taken(file) => {
            assert!(matches!(
                SpoolFile::take_over(&path, &fingerprint),
                TakeOver::Busy
            ));
            drop(file);
        }
        _ => panic!("a file whose writer is gone is taken over"),
    }
    // Another key's file is left alone, even when free.
    assert!(matches!(
        SpoolFile::take_over(&path, &folder::fingerprint("another key")),
        TakeOver::NotOurs
    ));
}

#[test]
fn what_one_writer_left_the_next_reads_back_in_order_per_trace() {
    let dir = TempDir::new("takeover");
    let (a, b) = (trace(1), trace(2));
    {
        let (mut first, counters) = roomy(dir.path());
        let mut records = Vec::new();
        for n in 0..5 {
            records.push((2 * n + 1, logged(a, &format!("a{n}"), now()), false));
            records.push((2 * n + 2, logged(b, &format!("b{n}"), now()), true));
        }
        assert!(write(&mut first, records).is_empty());
        assert_eq!(counters.stats().spooled, 10);
        // The writer goes without closing (as a killed process would).
        std::mem::forget(first);
    }
    // A forgotten connection still holds the lock in this process: the file is busy.
    let (mut busy, _) = roomy(dir.path());
    let mut out = Vec::new();
    busy.scan(&mut out);
    assert!(taken_over(&out).is_empty());
    drop(busy);

    let dir2 = TempDir::new("takeover-closed");
    {
        let (mut first, _) = roomy(dir2.path());
        let mut records = Vec::new();
        for n in 0..5 {
            records.push((2 * n + 1, logged(a, &format!("a{n}"), now()), false));
            records.push((2 * n + 2, logged(b, &format!("b{n}"), now()), true));
        }
        write(&mut first, records);
        first.close();
    }
    let (mut next, _) = roomy(dir2.path());
    let mut out = Vec::new();
    next.scan(&mut out);
    assert_eq!(taken_over(&out), vec![(a, 5), (b, 5)]);
    let (first_three, exhausted) = load(&mut next, a, 3);
    assert!(!exhausted);
    let (rest, exhausted) = load(&mut next, a, 3);
    assert!(exhausted, "only two were left");
    let texts: Vec<String> = first_three
        .iter()
        .chain(&rest)
        .map(|(_, t)| t.clone())
        .collect();
    let expected: Vec<String> = (0..5).map(|n| format!(r#"{{"text":"a{n}"}}"#)).collect();
    assert_eq!(texts, expected);
    // Delivered means deleted: once every row is gone, the file is too.
    let rows: Vec<Row> = first_three
        .iter()
        .chain(&rest)
        .map(|(row, _)| *row)
        .collect();
    let (b_rows, _) = load(&mut next, b, 10);
    let mut out = Vec::new();
    next.apply(
        vec![
            Command::Delete(rows),
            Command::Delete(b_rows.iter().map(|(row, _)| *row).collect()),
        ],
        &mut out,
    );
    assert!(
        spool_files(dir2.path()).is_empty(),
        "{:?}",
        spool_files(dir2.path())
    );
}

#[test]
fn an_own_file_is_created_at_the_first_write_and_deleted_when_left_empty() {
    let dir = TempDir::new("own");
    let (mut store, _) = roomy(dir.path());
    let mut out = Vec::new();
    store.scan(&mut out);
    assert!(
        spool_files(dir.path()).is_empty(),
        "nothing written, no file"
    );
    write(&mut store, vec![(1, logged(trace(1), "x", now()), true)]);
    let files = spool_files(dir.path());
    // The file and, while it is open, its write-ahead log.
    assert_eq!(
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "spool"))
            .count(),
        1,
        "{files:?}"
    );
    store.apply(
        vec![
            Command::Delete(vec![Row { file: OWN, id: 1 }]),
            Command::Close(None),
        ],
        &mut out,
    );
    assert!(spool_files(dir.path()).is_empty());
}

#[test]
fn garbage_and_truncated_files_are_set_aside_and_a_fresh_file_is_used() {
    let dir = TempDir::new("garbage");
    let fingerprint = folder::fingerprint(KEY);
    let garbage = folder::new_file(dir.path(), &fingerprint);
    std::fs::write(&garbage, b"this is not a database, just bytes".repeat(200)).expect("written");
    // A real spool, cut short.
    let truncated = {
        let (mut writer, _) = roomy(dir.path());
        let big = "y".repeat(3000);
        let records = (1..=40)
            .map(|id| (id, logged(trace(5), &big, now()), false))
            .collect();
        write(&mut writer, records);
        writer.close();
        let path = spool_files(dir.path())
            .into_iter()
            .find(|p| *p != garbage)
            .expect("the written file");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() / 3]).expect("cut");
        path
    };
    let (mut next, counters) = roomy(dir.path());
    let mut out = Vec::new();
    next.scan(&mut out);
    // What could be read of the cut file (if anything) is offered; the rest is set aside.
    for (t, _) in taken_over(&out) {
        let (_, _) = load(&mut next, t, 100);
    }
    assert!(!garbage.exists(), "the garbage is set aside");
    let stats = counters.stats();
    assert!(stats.spool_set_aside >= 1, "{stats:?}");
    let names: Vec<String> = spool_files(dir.path())
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(names.iter().any(|n| n.contains(".damaged-")), "{names:?}");
    // The new client writes and reads its own events.
    let t = trace(9);
    assert!(write(&mut next, vec![(1, logged(t, "mine", now()), false)]).is_empty());
    let (mine, _) = load(&mut next, t, 10);
    assert_eq!(mine.len(), 1);
    let _ = truncated;
}

#[test]
fn a_damaged_record_is_skipped_and_the_next_read_shows_it_missing() {
    let dir = TempDir::new("record");
    let t = trace(3);
    let path = {
        let (mut writer, _) = roomy(dir.path());
        let records = (1..=3)
            .map(|id| (id, logged(t, &format!("e{id}"), now()), false))
            .collect();
        write(&mut writer, records);
        writer.close();
        spool_files(dir.path()).pop().expect("a file")
    };
    {
        // Flip a byte of the second record's body behind the spool's back.
        let conn = rusqlite::Connection::open(&path).expect("opened");
        conn.execute(
            "UPDATE events SET body = CAST(replace(CAST(body AS TEXT), 'e2', 'e9') AS BLOB) WHERE id = 2",
            [],
        )
        .expect("updated");
    }
    let (mut next, _) = roomy(dir.path());
    let mut out = Vec::new();
    next.scan(&mut out);
    assert_eq!(taken_over(&out), vec![(t, 3)]);
    let (read, exhausted) = load(&mut next, t, 3);
    let texts: Vec<&str> = read.iter().map(|(_, text)| text.as_str()).collect();
    assert_eq!(texts, [r#"{"text":"e1"}"#, r#"{"text":"e3"}"#]);
    assert!(!exhausted, "three rows were read, one of them bad");
    let (read, exhausted) = load(&mut next, t, 1);
    assert!(read.is_empty() && exhausted);
}

#[test]
fn the_size_cap_drops_the_oldest_first_and_says_which_were_in_memory() {
    let dir = TempDir::new("size");
    let (mut store, _) = store(dir.path(), 10_000, Duration::from_secs(3600));
    let t = trace(4);
    let text = "z".repeat(900);
    let mut dropped = Vec::new();
    for id in 1..=30 {
        // The first ten were in memory when written; the rest went to disk only.
        let out = write(
            &mut store,
            vec![(id, logged(t, &text, now() + id as f64), id <= 10)],
        );
        for reply in out {
            if let Reply::Dropped(rows) = reply {
                dropped.extend(rows);
            }
        }
    }
    let ids: Vec<i64> = dropped.iter().map(|d| d.row.id).collect();
    assert!(!ids.is_empty());
    assert_eq!(
        ids,
        (1..=ids.len() as i64).collect::<Vec<_>>(),
        "oldest first"
    );
    assert!(dropped.iter().all(|d| d.resident == (d.row.id <= 10)));
    let (left, _) = load(&mut store, t, 100);
    assert_eq!(
        left.first().map(|(row, _)| row.id),
        Some(ids.len() as i64 + 1)
    );
    let bytes: usize = left.iter().map(|(_, text)| text.len()).sum();
    assert!(bytes <= 10_000, "{bytes}");
}

#[test]
fn the_age_cap_drops_what_was_logged_too_long_ago() {
    let dir = TempDir::new("age");
    let (mut store, _) = store(dir.path(), u64::MAX, Duration::from_secs(60));
    let t = trace(6);
    let out = write(
        &mut store,
        vec![
            (1, logged(t, "old", now() - 3600.0), false),
            (2, logged(t, "new", now()), false),
        ],
    );
    let dropped: Vec<i64> = out
        .iter()
        .filter_map(|r| match r {
            Reply::Dropped(rows) => Some(rows.iter().map(|d| d.row.id).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(dropped, [1]);
    let (left, _) = load(&mut store, t, 10);
    assert_eq!(left.len(), 1);
}

#[test]
fn another_key_s_files_are_never_opened() {
    let dir = TempDir::new("keys");
    let other = folder::fingerprint("sk-another-key");
    let path = folder::new_file(dir.path(), &other);
    let file = SpoolFile::create(&path, &other).expect("created");
    drop(file);
    let (mut mine, _) = roomy(dir.path());
    let mut out = Vec::new();
    mine.scan(&mut out);
    assert!(taken_over(&out).is_empty());
    assert!(path.exists());
    // Free, yet still locked by nobody: had it been opened and left, it would be taken
    // over by the right key now.
    match SpoolFile::take_over(&path, &other) {
        TakeOver::Taken(_) => {}
        _ => panic!("the other key's file is intact and free"),
    }
}
