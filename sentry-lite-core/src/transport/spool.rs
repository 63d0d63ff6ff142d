//! The offline spool: envelopes that could not be delivered wait on disk and are
//! re-sent once the server answers again, or on the next start.
//!
//! Files are written to a temporary name, fsynced and renamed, so a crash never
//! leaves a half-written envelope under a final name. Names start with a
//! zero-padded timestamp and sequence number, so sorting them gives the order.
//! Files are created `0600`: envelopes carry user data.
//!
//! Several processes may share one directory. Before sending an entry a process
//! claims it by renaming it to a name carrying its process id; a rename succeeds
//! for one process only, so no entry is sent by two. Claims left by a process
//! that died are given back when a spool is opened.
//!
//! An entry that is not a regular file, is larger than the spool's byte bound,
//! or cannot be removed after it was delivered is skipped for the rest of the
//! process's life: it never blocks the entries behind it and is never re-sent in
//! a loop.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const SUFFIX: &str = ".envelope";
const CLAIM: &str = ".claim";
const TMP: &str = ".tmp";
static SEQ: AtomicU64 = AtomicU64::new(0);

/// A bounded directory of undelivered envelopes.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    max_files: usize,
    /// Entries waiting (as of the last listing, plus what this process stored since).
    bytes: u64,
    files: usize,
    /// `<pid>-<random>`: names this spool's claims, so that two spools of one
    /// process on one directory never mistake each other's claims.
    owner: String,
    /// Entries this process will not touch again (see the module docs).
    skipped: HashSet<PathBuf>,
}

/// A spooled entry claimed for sending.
#[derive(Debug)]
pub(crate) struct Claimed {
    /// Where the entry waits in the spool (its name in the listing).
    pub(crate) origin: PathBuf,
    /// Where it is now: the claim's name, or `origin` when the directory is read-only.
    held: PathBuf,
}

/// What [`Spool::take`] found.
#[derive(Debug)]
pub(crate) enum Taken {
    /// The entry's bytes, claimed by this spool.
    Entry(Claimed, Vec<u8>),
    /// Another process claimed or removed it first.
    Gone,
    /// Not an envelope this spool can send (not a regular file, too large,
    /// unreadable): removed if possible, else skipped from now on.
    Skipped,
}

impl Spool {
    /// Opens (creating if needed, `0700`) the spool directory, gives back claims
    /// of dead processes and measures what waits there.
    pub(crate) fn open(dir: &Path, max_bytes: u64, max_files: usize) -> std::io::Result<Self> {
        if !dir.exists() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        let owner = format!("{}-{:08x}", std::process::id(), crate::ids::random_u64() as u32);
        let mut spool =
            Self { dir: dir.to_owned(), max_bytes, max_files, bytes: 0, files: 0, owner, skipped: HashSet::new() };
        for entry in fs::read_dir(dir)?.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if let Some(base) = name.strip_suffix(CLAIM) {
                // `<entry>.envelope.<pid>-<random>.claim`
                let Some((entry_name, owner)) = base.rsplit_once('.') else { continue };
                if !process_alive(owner) {
                    let _ = fs::rename(&path, dir.join(entry_name));
                }
            } else if let Some(entry_name) = name.strip_suffix(TMP) {
                // A crash between write and rename; another process may be writing it now.
                if !process_alive(pid_of_entry(entry_name)) {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        spool.list();
        Ok(spool)
    }

    /// Entries waiting, oldest first (regular files or not; skipped ones left out).
    /// Also re-measures the spool, which other processes may have changed.
    pub(crate) fn list(&mut self) -> Vec<PathBuf> {
        let Ok(dir) = fs::read_dir(&self.dir) else { return Vec::new() };
        let mut entries: Vec<(PathBuf, u64)> = dir
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(SUFFIX)))
            .map(|e| (e.path(), e.metadata().map_or(0, |m| m.len())))
            .filter(|(p, _)| !self.skipped.contains(p))
            .collect();
        entries.sort();
        self.files = entries.len();
        self.bytes = entries.iter().map(|(_, len)| len).sum();
        entries.into_iter().map(|(p, _)| p).collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.files == 0
    }

    /// Stores one serialized envelope; `false` when the spool is full, the body
    /// is larger than the process may write (`RLIMIT_FSIZE`), or the disk failed.
    pub(crate) fn store(&mut self, body: &[u8]) -> bool {
        let len = body.len() as u64;
        if self.files >= self.max_files || self.bytes.saturating_add(len) > self.max_bytes {
            // Other processes may have drained it meanwhile.
            self.list();
            if self.files >= self.max_files || self.bytes.saturating_add(len) > self.max_bytes {
                return false;
            }
        }
        // Writing past the file size limit raises SIGXFSZ, which kills the process
        // unless the application handles it: never try.
        if file_size_limit().is_some_and(|limit| len > limit) {
            return false;
        }
        let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
        let name = format!("{micros:020}-{:010}-{}{SUFFIX}", SEQ.fetch_add(1, Ordering::Relaxed), std::process::id());
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}{TMP}"));
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
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

    /// Claims an entry and reads it.
    pub(crate) fn take(&mut self, origin: &Path) -> Taken {
        let Some(name) = origin.file_name().and_then(|n| n.to_str()) else { return Taken::Gone };
        let claim = self.dir.join(format!("{name}.{}{CLAIM}", self.owner));
        let held = match fs::symlink_metadata(origin) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Taken::Gone,
            Ok(meta) if !meta.is_file() || meta.len() > self.max_bytes => {
                self.skip(origin);
                return Taken::Skipped;
            }
            _ => match fs::rename(origin, &claim) {
                Ok(()) => claim,
                Err(e) if e.kind() == ErrorKind::NotFound => return Taken::Gone,
                // A read-only directory: nobody can claim, so send it in place and
                // remember that it was sent.
                Err(_) => origin.to_owned(),
            },
        };
        let claimed = Claimed { origin: origin.to_owned(), held };
        // Bounded read: the file may have grown since it was measured.
        let mut body = Vec::new();
        let read =
            File::open(&claimed.held).and_then(|f| f.take(self.max_bytes.saturating_add(1)).read_to_end(&mut body));
        if read.is_err() || body.len() as u64 > self.max_bytes {
            self.discard(claimed);
            return Taken::Skipped;
        }
        Taken::Entry(claimed, body)
    }

    /// Puts a claimed entry back, to be sent later.
    pub(crate) fn release(&mut self, claimed: Claimed) {
        if claimed.held != claimed.origin && fs::rename(&claimed.held, &claimed.origin).is_err() {
            // It stays claimed until this process exits; the next start gives it back.
            self.skipped.insert(claimed.origin);
        }
    }

    /// Removes a claimed entry (delivered, or given up on). `false` when it could
    /// not be removed: it is then skipped for the rest of the process's life.
    pub(crate) fn discard(&mut self, claimed: Claimed) -> bool {
        let len = fs::metadata(&claimed.held).map_or(0, |m| m.len());
        if fs::remove_file(&claimed.held).is_ok() {
            self.files = self.files.saturating_sub(1);
            self.bytes = self.bytes.saturating_sub(len);
            return true;
        }
        if claimed.held != claimed.origin {
            let _ = fs::rename(&claimed.held, &claimed.origin);
        }
        self.skip(&claimed.origin);
        false
    }

    fn skip(&mut self, origin: &Path) {
        if self.skipped.insert(origin.to_owned()) {
            self.files = self.files.saturating_sub(1);
        }
    }
}

/// The pid in an entry name `<time>-<seq>-<pid>.envelope`.
fn pid_of_entry(name: &str) -> &str {
    name.strip_suffix(SUFFIX).and_then(|n| n.rsplit_once('-')).map_or("", |(_, pid)| pid)
}

/// Whether the process named by `<pid>` or `<pid>-<anything>` runs (Linux `/proc`;
/// elsewhere, conservatively, yes).
fn process_alive(owner: &str) -> bool {
    let pid = owner.split('-').next().unwrap_or("");
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new("/proc").join(pid).exists()
}

/// The soft `RLIMIT_FSIZE` in bytes, when one is set (read from
/// `/proc/self/limits`, so that no signal disposition or `unsafe` call is needed).
pub(crate) fn file_size_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max file size"))?;
    line["Max file size".len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("sl-spool-{}", crate::ids::random_u64()))
    }

    fn read_all(spool: &mut Spool) -> Vec<Vec<u8>> {
        let mut bodies = Vec::new();
        for path in spool.list() {
            if let Taken::Entry(claimed, body) = spool.take(&path) {
                bodies.push(body);
                spool.release(claimed);
            }
        }
        bodies
    }

    #[test]
    fn keeps_order_bounds_and_survives_reopen() {
        let dir = temp_dir();
        let mut spool = Spool::open(&dir, 1_000, 3).unwrap();
        assert!(spool.store(b"one"));
        assert!(spool.store(b"two"));
        assert!(spool.store(b"three"));
        assert!(!spool.store(b"four"), "file bound");
        let mut reopened = Spool::open(&dir, 1_000, 3).unwrap();
        assert_eq!(read_all(&mut reopened), [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
        let first = reopened.list()[0].clone();
        let Taken::Entry(claimed, _) = reopened.take(&first) else { panic!("not taken") };
        assert!(reopened.discard(claimed));
        assert_eq!(reopened.list().len(), 2);
        let mut small = Spool::open(&temp_dir(), 4, 100).unwrap();
        assert!(!small.store(b"12345"), "byte bound");
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn files_and_directory_are_private() {
        let dir = temp_dir();
        let mut spool = Spool::open(&dir, 1_000, 3).unwrap();
        assert!(spool.store(b"secret"));
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let file = spool.list().remove(0);
        assert_eq!(fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o600);
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn an_entry_is_claimed_by_one_spool_only() {
        let dir = temp_dir();
        let mut a = Spool::open(&dir, 1_000, 10).unwrap();
        let mut b = Spool::open(&dir, 1_000, 10).unwrap();
        assert!(a.store(b"x"));
        let path = b.list().remove(0);
        let Taken::Entry(claimed, body) = a.take(&path) else { panic!("a could not claim") };
        assert_eq!(body, b"x");
        assert!(matches!(b.take(&path), Taken::Gone), "b took a claimed entry");
        a.release(claimed);
        assert!(matches!(b.take(&path), Taken::Entry(..)), "released entries can be claimed again");
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn claims_of_dead_processes_are_given_back_on_open() {
        let dir = temp_dir();
        let mut spool = Spool::open(&dir, 1_000, 10).unwrap();
        assert!(spool.store(b"x"));
        let path = spool.list().remove(0);
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        // pid 0 never names a user process.
        fs::rename(&path, dir.join(format!("{name}.0-deadbeef{CLAIM}"))).unwrap();
        let mut reopened = Spool::open(&dir, 1_000, 10).unwrap();
        assert_eq!(read_all(&mut reopened), [b"x".to_vec()]);
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn odd_and_huge_entries_are_skipped_once() {
        let dir = temp_dir();
        let mut spool = Spool::open(&dir, 100, 10).unwrap();
        fs::create_dir(dir.join(format!("00000000000000000000-0000000000-1{SUFFIX}"))).unwrap();
        fs::write(dir.join(format!("00000000000000000001-0000000000-1{SUFFIX}")), vec![b'x'; 101]).unwrap();
        assert!(spool.store(b"fine"));
        let listed = spool.list();
        assert_eq!(listed.len(), 3);
        assert!(matches!(spool.take(&listed[0]), Taken::Skipped), "a directory");
        assert!(matches!(spool.take(&listed[1]), Taken::Skipped), "over the byte bound");
        assert!(matches!(spool.take(&listed[2]), Taken::Entry(..)));
        assert!(spool.list().is_empty(), "skipped entries are not listed again: {:?}", spool.list());
        fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_file_size_limit_is_read() {
        // The test process normally runs without a limit.
        let limits = fs::read_to_string("/proc/self/limits").unwrap();
        let unlimited = limits.lines().any(|l| l.starts_with("Max file size") && l.contains("unlimited"));
        assert_eq!(file_size_limit().is_none(), unlimited, "{limits}");
    }
}
