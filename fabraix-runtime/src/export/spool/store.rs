//! The files one client holds: its own (created at its first write) and those it took
//! over from writers that are gone, and what it has read of each. Plain synchronous code,
//! run on the spool's thread (`writer.rs`), tested here against real files.
//!
//! The exporter's queue decides; this carries out its commands in order and answers with
//! what it found: records loaded, records dropped by the caps, traces taken over.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::super::Counters;
use super::file::{self, Removed, SpoolFile, TakeOver};
use super::folder;
use super::protocol::{Command, Dropped, Loaded, OWN, Record, Reply, Row};
use super::record;
use crate::model::TraceId;

/// The spool's settings.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub dir: PathBuf,
    pub fingerprint: String,
    pub max_bytes: u64,
    pub max_age: Duration,
}

pub(crate) struct Store {
    config: Config,
    counters: Arc<Counters>,
    /// The own file (`OWN`) and the files taken over.
    files: BTreeMap<u32, SpoolFile>,
    next_file: u32,
    /// The own file could not be created or written: writes stop.
    unwritable: bool,
    /// Per file and trace, the last row the queue has had (loaded, or written from memory).
    read_upto: HashMap<(u32, TraceId), i64>,
    /// Files with a transaction open in this group of commands.
    open: Vec<u32>,
    closed: bool,
}

impl Store {
    pub fn new(config: Config, counters: Arc<Counters>) -> Self {
        Self {
            config,
            counters,
            files: BTreeMap::new(),
            next_file: OWN + 1,
            unwritable: false,
            read_upto: HashMap::new(),
            open: Vec::new(),
            closed: false,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Searches the folder for the key's files whose writers are gone, and takes them over.
    pub fn scan(&mut self, out: &mut Vec<Reply>) {
        let paths = match folder::files_of(&self.config.dir, &self.config.fingerprint) {
            Ok(paths) => paths,
            Err(error) => {
                tracing::warn!(target: "fabraix", %error, dir = %self.config.dir.display(), "fabraix spool folder cannot be read");
                return;
            }
        };
        let mut traces: HashMap<TraceId, u64> = HashMap::new();
        for path in paths {
            if self.files.values().any(|f| f.path() == path) {
                continue;
            }
            let mut file = match SpoolFile::take_over(&path, &self.config.fingerprint) {
                TakeOver::Taken(file) => file,
                TakeOver::Busy | TakeOver::NotOurs => continue,
                TakeOver::Damaged(why) => {
                    self.set_aside_path(&path, &why);
                    continue;
                }
            };
            match index(&mut file) {
                Ok((found, unindexable)) => {
                    if unindexable > 0 {
                        self.counters.spool_damage(unindexable);
                        tracing::warn!(target: "fabraix", records = unindexable, file = %path.display(), "fabraix spool records without a trace id; skipped");
                    }
                    if file.rows == 0 {
                        file.close();
                        continue;
                    }
                    for (trace, n) in found {
                        *traces.entry(trace).or_default() += n;
                    }
                    let number = self.next_file;
                    self.next_file += 1;
                    self.files.insert(number, file);
                }
                Err((damaged, why)) => {
                    let path = file.path().to_owned();
                    drop(file);
                    self.counters.spool_damage(damaged);
                    self.set_aside_path(&path, &why);
                }
            }
        }
        if !traces.is_empty() {
            let events: u64 = traces.values().sum();
            tracing::info!(target: "fabraix", events, dir = %self.config.dir.display(), "fabraix spool: taking over events of an earlier process");
            out.push(Reply::TakenOver(traces.into_iter().collect()));
        }
    }

    fn set_aside_path(&mut self, path: &std::path::Path, why: &str) {
        self.counters.spool_set_aside();
        match folder::set_aside(path) {
            Ok(aside) => tracing::warn!(
                target: "fabraix",
                file = %path.display(),
                set_aside_as = %aside.display(),
                error = why,
                "fabraix spool file is unreadable; set aside, and a fresh one is used"
            ),
            Err(error) => tracing::warn!(
                target: "fabraix",
                file = %path.display(),
                error = why,
                rename_error = %error,
                "fabraix spool file is unreadable and could not be set aside; it is skipped"
            ),
        }
    }

    /// Carries out `commands` in order, in one transaction per file, and answers in `out`.
    pub fn apply(&mut self, commands: Vec<Command>, out: &mut Vec<Reply>) {
        let durable = commands.iter().any(|c| matches!(c, Command::Write(_)));
        for command in commands {
            match command {
                Command::Write(records) => self.write(records, durable, out),
                Command::Delete(rows) => self.delete(&rows),
                Command::Load(wanted) => {
                    let loaded = wanted
                        .into_iter()
                        .map(|(trace, max)| self.load(trace, max))
                        .collect();
                    out.push(Reply::Loaded(loaded));
                }
                Command::Sync(done) => {
                    self.commit();
                    let _ = done.send(());
                }
                Command::Close(done) => {
                    self.commit();
                    for (_, file) in std::mem::take(&mut self.files) {
                        file.close();
                    }
                    self.closed = true;
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
            }
        }
        self.commit();
        if durable {
            self.enforce_caps(out);
        }
    }

    fn begin(&mut self, number: u32, durable: bool) -> rusqlite::Result<()> {
        if self.open.contains(&number) {
            return Ok(());
        }
        if let Some(file) = self.files.get_mut(&number) {
            file.begin(durable)?;
            self.open.push(number);
        }
        Ok(())
    }

    fn write(&mut self, records: Vec<Record>, durable: bool, out: &mut Vec<Reply>) {
        let lost = |records: &[Record]| {
            records
                .iter()
                .filter(|r| !r.resident)
                .map(|r| r.logged.trace_id)
                .collect::<Vec<_>>()
        };
        if self.unwritable {
            out.push(Reply::Unwritable {
                lost: lost(&records),
            });
            return;
        }
        if !self.files.contains_key(&OWN) {
            let path = folder::new_file(&self.config.dir, &self.config.fingerprint);
            let created = std::fs::create_dir_all(&self.config.dir)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    SpoolFile::create(&path, &self.config.fingerprint).map_err(|e| e.to_string())
                });
            match created {
                Ok(file) => {
                    self.files.insert(OWN, file);
                }
                Err(error) => {
                    let _ = std::fs::remove_file(&path);
                    return self.give_up_writing(&error, lost(&records), out);
                }
            }
        }
        let written = self.begin(OWN, durable).and_then(|()| {
            if let Some(file) = self.files.get_mut(&OWN) {
                for record in &records {
                    file.insert(record.id, &record::encode(&record.logged))?;
                }
            }
            Ok(())
        });
        match written {
            Ok(()) => {
                self.counters.spooled(records.len() as u64);
                for record in records.iter().filter(|r| r.resident) {
                    let upto = self
                        .read_upto
                        .entry((OWN, record.logged.trace_id))
                        .or_default();
                    *upto = (*upto).max(record.id);
                }
            }
            Err(error) => self.give_up_writing(&error.to_string(), lost(&records), out),
        }
    }

    fn give_up_writing(&mut self, error: &str, lost: Vec<TraceId>, out: &mut Vec<Reply>) {
        self.unwritable = true;
        if let Some(file) = self.files.get_mut(&OWN) {
            file.roll_back();
        }
        self.open.retain(|n| *n != OWN);
        tracing::warn!(
            target: "fabraix",
            error,
            dir = %self.config.dir.display(),
            "fabraix spool cannot be written; events are kept in memory only from now on"
        );
        out.push(Reply::Unwritable { lost });
    }

    fn delete(&mut self, rows: &[Row]) {
        for row in rows {
            if self.begin(row.file, false).is_err() {
                continue;
            }
            if let Some(file) = self.files.get_mut(&row.file) {
                // A row that cannot be deleted is sent again by a later process: at least once.
                let _ = file.delete(row.id);
            }
        }
    }

    fn load(&mut self, trace: TraceId, max: usize) -> Loaded {
        let mut records = Vec::new();
        // Damaged records count toward `max`: what the queue counted on disk is accounted
        // for only once a read comes back short.
        let mut scanned = 0;
        // Files taken over are older than the own file, which is numbered 0: it goes last.
        let mut order: Vec<u32> = self.files.keys().copied().filter(|n| *n != OWN).collect();
        order.push(OWN);
        for number in order {
            if scanned >= max {
                break;
            }
            let Some(file) = self.files.get_mut(&number) else {
                continue;
            };
            let after = self
                .read_upto
                .get(&(number, trace))
                .copied()
                .unwrap_or(i64::MIN);
            let read = match file.load(trace, after, max - scanned) {
                Ok(read) => read,
                Err(error) => {
                    self.damaged_file(number, &error.to_string());
                    continue;
                }
            };
            let mut bad = Vec::new();
            scanned += read.len();
            for (id, event) in read {
                self.read_upto.insert((number, trace), id);
                match event {
                    Ok(logged) => records.push((Row { file: number, id }, logged)),
                    Err(damage) => {
                        tracing::warn!(target: "fabraix", ?damage, file = %file.path().display(), "fabraix spool record is damaged; skipped");
                        bad.push(Row { file: number, id });
                    }
                }
            }
            if !bad.is_empty() {
                // Counted by the queue, when a short read shows them missing.
                self.delete(&bad);
            }
        }
        let exhausted = scanned < max;
        Loaded {
            trace,
            records,
            exhausted,
        }
    }

    /// A file turned out unreadable while in use: it is closed and set aside; what it
    /// still held is counted lost when the queue next asks for it.
    fn damaged_file(&mut self, number: u32, why: &str) {
        self.open.retain(|n| *n != number);
        self.read_upto.retain(|(n, _), _| *n != number);
        if let Some(file) = self.files.remove(&number) {
            let path = file.path().to_owned();
            drop(file);
            self.set_aside_path(&path, why);
        }
    }

    fn commit(&mut self) {
        for number in std::mem::take(&mut self.open) {
            let Some(file) = self.files.get_mut(&number) else {
                continue;
            };
            if let Err(error) = file.commit() {
                file.roll_back();
                if file::is_damage(&error) {
                    self.damaged_file(number, &error.to_string());
                } else {
                    tracing::warn!(target: "fabraix", %error, "fabraix spool commit failed");
                }
            }
        }
        // Files taken over are done with once empty: delivered means deleted.
        let empty: Vec<u32> = self
            .files
            .iter()
            .filter(|(n, f)| **n != OWN && f.rows == 0)
            .map(|(n, _)| *n)
            .collect();
        for number in empty {
            self.read_upto.retain(|(n, _), _| *n != number);
            if let Some(file) = self.files.remove(&number) {
                file.close();
            }
        }
    }

    /// The age cap, then the size cap, oldest records first.
    pub fn enforce_caps(&mut self, out: &mut Vec<Reply>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let cutoff = now - self.config.max_age.as_secs_f64();
        let mut dropped = Vec::new();
        let numbers: Vec<u32> = self.files.keys().copied().collect();
        for number in numbers {
            let removed = self.in_transaction(number, |file| file.remove_older_than(cutoff));
            self.note_removed(number, removed, &mut dropped);
        }
        loop {
            let total: u64 = self.files.values().map(|f| f.bytes).sum();
            if total <= self.config.max_bytes {
                break;
            }
            // The file whose oldest record is the oldest.
            let oldest = self
                .files
                .iter()
                .filter_map(|(n, f)| Some((f.oldest().ok()??, *n)))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            let Some((_, number)) = oldest else {
                break;
            };
            let over = total - self.config.max_bytes;
            let removed = self.in_transaction(number, |file| file.remove_oldest(over));
            if removed.is_empty() {
                break;
            }
            self.note_removed(number, removed, &mut dropped);
        }
        self.commit();
        if !dropped.is_empty() {
            out.push(Reply::Dropped(dropped));
        }
    }

    fn in_transaction(
        &mut self,
        number: u32,
        work: impl FnOnce(&mut SpoolFile) -> rusqlite::Result<Vec<Removed>>,
    ) -> Vec<Removed> {
        if self.begin(number, false).is_err() {
            return Vec::new();
        }
        match self.files.get_mut(&number).map(work) {
            Some(Ok(removed)) => removed,
            Some(Err(error)) => {
                tracing::warn!(target: "fabraix", %error, "fabraix spool cap could not be applied");
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    fn note_removed(&self, number: u32, removed: Vec<Removed>, dropped: &mut Vec<Dropped>) {
        for Removed { id, trace } in removed {
            let Some(trace) = trace else { continue };
            let resident = self
                .read_upto
                .get(&(number, trace))
                .is_some_and(|upto| id <= *upto);
            dropped.push(Dropped {
                trace,
                row: Row { file: number, id },
                resident,
            });
        }
    }

    /// Commits and closes everything (the thread is ending).
    pub fn close(&mut self) {
        if !self.closed {
            self.apply(vec![Command::Close(None)], &mut Vec::new());
        }
    }
}

/// A file's records per trace, and how many rows without a trace id it deleted; or, when
/// it cannot be read, how many records it held and why.
type Index = Result<(Vec<(TraceId, u64)>, u64), (u64, String)>;

fn index(file: &mut SpoolFile) -> Index {
    let rows = file.rows;
    let lost = |e: rusqlite::Error| (rows, e.to_string());
    let mut found = Vec::new();
    let mut unindexable = 0;
    for (trace, n) in file.index().map_err(lost)? {
        match trace {
            Some(trace) => found.push((trace, n)),
            None => unindexable += n,
        }
    }
    if unindexable > 0 {
        file.begin(false).map_err(lost)?;
        unindexable = file.delete_unindexable().map_err(lost)?;
        file.commit().map_err(lost)?;
    }
    Ok((found, unindexable))
}
