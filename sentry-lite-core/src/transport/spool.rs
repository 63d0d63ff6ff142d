//! The offline spool: envelopes that could not be delivered wait on disk, in
//! order, and are re-sent once the server answers again or on the next start.
//!
//! Files are written to a temporary name, fsynced and renamed, so a crash never
//! leaves a half-written envelope under a final name. Names start with a
//! zero-padded timestamp and sequence number, so sorting them gives the order.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const SUFFIX: &str = ".envelope";
static SEQ: AtomicU64 = AtomicU64::new(0);

/// A bounded directory of undelivered envelopes.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    max_files: usize,
    bytes: u64,
    files: usize,
}

impl Spool {
    /// Opens (creating if needed) the spool directory and measures what is already there.
    pub(crate) fn open(dir: &Path, max_bytes: u64, max_files: usize) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut spool = Self { dir: dir.to_owned(), max_bytes, max_files, bytes: 0, files: 0 };
        for path in spool.list()? {
            spool.files += 1;
            spool.bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        }
        // Leftovers of a crash between write and rename.
        for entry in fs::read_dir(dir)?.flatten() {
            if entry.path().extension().is_some_and(|e| e == "tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(spool)
    }

    /// Spooled envelopes, oldest first.
    pub(crate) fn list(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut paths: Vec<PathBuf> = fs::read_dir(&self.dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(SUFFIX)))
            .collect();
        paths.sort();
        Ok(paths)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.files == 0
    }

    /// Stores one serialized envelope; `false` when the spool is full or the disk failed.
    pub(crate) fn store(&mut self, body: &[u8]) -> bool {
        let len = body.len() as u64;
        if self.files >= self.max_files || self.bytes + len > self.max_bytes {
            return false;
        }
        let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
        let name = format!("{micros:020}-{:010}-{}{SUFFIX}", SEQ.fetch_add(1, Ordering::Relaxed), std::process::id());
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(body)?;
            f.sync_data()?;
            fs::rename(&tmp, &path)?;
            // Make the rename itself durable.
            File::open(&self.dir)?.sync_all()
        })();
        match written {
            Ok(()) => {
                self.files += 1;
                self.bytes += len;
                true
            }
            Err(_) => {
                let _ = fs::remove_file(&tmp);
                false
            }
        }
    }

    /// Reads a spooled envelope.
    pub(crate) fn read(&self, path: &Path) -> Option<Vec<u8>> {
        fs::read(path).ok()
    }

    /// Removes a spooled envelope once delivered (or found unreadable).
    pub(crate) fn remove(&mut self, path: &Path) {
        let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if fs::remove_file(path).is_ok() {
            self.files = self.files.saturating_sub(1);
            self.bytes = self.bytes.saturating_sub(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("sl-spool-{}", crate::ids::random_u64()))
    }

    #[test]
    fn keeps_order_bounds_and_survives_reopen() {
        let dir = temp_dir();
        let mut spool = Spool::open(&dir, 1_000, 3).unwrap();
        assert!(spool.store(b"one"));
        assert!(spool.store(b"two"));
        assert!(spool.store(b"three"));
        assert!(!spool.store(b"four"), "file bound");
        let reopened = Spool::open(&dir, 1_000, 3).unwrap();
        let bodies: Vec<Vec<u8>> = reopened.list().unwrap().iter().map(|p| reopened.read(p).unwrap()).collect();
        assert_eq!(bodies, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
        let mut spool = reopened;
        let first = spool.list().unwrap()[0].clone();
        spool.remove(&first);
        assert_eq!(spool.list().unwrap().len(), 2);
        let mut small = Spool::open(&temp_dir(), 4, 100).unwrap();
        assert!(!small.store(b"12345"), "byte bound");
        fs::remove_dir_all(dir).ok();
    }
}
