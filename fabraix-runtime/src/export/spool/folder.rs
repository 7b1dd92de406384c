//! The spool folder: how files are named, found and set aside, and the key's fingerprint.
//!
//! Each client writes a file of its own, named
//! `fabraix-<fingerprint>-<created, ns since 1970, 20 digits>-<pid>-<n>.spool`: the
//! fingerprint lets a client find its own key's files without opening another key's, and
//! the creation time orders files oldest first. A file set aside gets
//! `.damaged-<unix seconds>` appended, so it is never read again and stays for a human.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::file::sidecar;

const PREFIX: &str = "fabraix-";
const EXTENSION: &str = ".spool";

/// What the spool stores in place of the API key: the first 16 bytes of
/// SHA-256(`"fabraix-spool-key-v1\0"` | key), in hex. Enough to tell keys apart, and no
/// way back to the key.
pub(crate) fn fingerprint(key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"fabraix-spool-key-v1\0")
        .chain_update(key.as_bytes())
        .finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// A new file name for a client of `fingerprint`, unique in this process and, through the
/// pid and the clock, across processes.
pub(crate) fn new_file(dir: &Path, fingerprint: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    dir.join(format!(
        "{PREFIX}{fingerprint}-{created:020}-{pid}-{n}{EXTENSION}"
    ))
}

/// The spool files of `fingerprint` in `dir`, oldest first. Another key's files, SQLite's
/// `-wal` and `-shm` files, and files set aside are not listed.
pub(crate) fn files_of(dir: &Path, fingerprint: &str) -> std::io::Result<Vec<PathBuf>> {
    let ours = format!("{PREFIX}{fingerprint}-");
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let rest = name.strip_prefix(&ours)?;
            rest.ends_with(EXTENSION)
                .then(|| (rest.to_owned(), entry.path()))
        })
        .collect();
    // The creation time comes first and is zero-padded: the names sort by age.
    found.sort();
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

/// Moves an unreadable file (and its `-wal` and `-shm` files) out of the way; answers the
/// new name.
pub(crate) fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let suffix = format!(".damaged-{stamp}");
    let aside = sidecar(path, &suffix);
    std::fs::rename(path, &aside)?;
    for extra in ["-wal", "-shm"] {
        let from = sidecar(path, extra);
        if from.exists() {
            let _ = std::fs::rename(&from, sidecar(&aside, extra));
        }
    }
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_stable_distinct_and_not_the_key() {
        let a = fingerprint("sk-one");
        assert_eq!(a, fingerprint("sk-one"));
        assert_ne!(a, fingerprint("sk-two"));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!a.contains("sk-one"));
    }

    #[test]
    fn files_are_listed_oldest_first_and_only_the_key_s_own() {
        let dir = super::super::tests::TempDir::new("folder");
        let ours = fingerprint("k1");
        let first = new_file(dir.path(), &ours);
        let second = new_file(dir.path(), &ours);
        let theirs = new_file(dir.path(), &fingerprint("k2"));
        for path in [&second, &first, &theirs] {
            std::fs::write(path, b"x").unwrap();
        }
        std::fs::write(sidecar(&first, "-wal"), b"x").unwrap();
        let aside = new_file(dir.path(), &ours);
        std::fs::write(&aside, b"x").unwrap();
        let aside = set_aside(&aside).unwrap();
        assert!(aside.to_string_lossy().contains(".damaged-"));
        assert_eq!(files_of(dir.path(), &ours).unwrap(), vec![first, second]);
    }
}
