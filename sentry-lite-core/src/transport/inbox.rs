//! The inbox transport: every envelope becomes a file in a directory.
//!
//! The examples use it when `SENTRY_DSN` is unset, so they run anywhere and show
//! exactly what would have been sent.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{SendOutcome, Transport, TransportFactory};
use crate::protocol::{Envelope, ItemType};
use crate::{ClientOptions, Dsn};

/// Writes each envelope to `<dir>/<time>-<seq>.envelope` and prints one line per item.
#[derive(Debug)]
pub struct InboxTransport {
    dir: PathBuf,
    print: bool,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl InboxTransport {
    /// An inbox in `dir` (created when missing); `print` echoes a line per item to stderr.
    pub fn new(dir: impl Into<PathBuf>, print: bool) -> Self {
        Self { dir: dir.into(), print }
    }

    /// The default inbox directory: `$SENTRY_LITE_INBOX`, else `./sentry-inbox`.
    pub fn default_dir() -> PathBuf {
        std::env::var_os("SENTRY_LITE_INBOX").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("sentry-inbox"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write(&self, body: &[u8]) -> std::io::Result<PathBuf> {
        fs::create_dir_all(&self.dir)?;
        let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let name = format!("{millis:013}-{:06}-{}.envelope", SEQ.fetch_add(1, Ordering::Relaxed), std::process::id());
        let path = self.dir.join(name);
        let tmp = path.with_extension("tmp");
        // Writing past the file size limit would raise SIGXFSZ.
        if super::spool::file_size_limit().is_some_and(|limit| body.len() as u64 > limit) {
            return Err(std::io::Error::other("the envelope is larger than the process's file size limit"));
        }
        // Private: envelopes carry user data.
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(body)?;
        drop(f);
        fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

fn describe(envelope: &Envelope) -> Vec<String> {
    envelope
        .items
        .iter()
        .map(|item| {
            let json = item.payload_json();
            let detail = match item.ty() {
                ItemType::Event | ItemType::Transaction => json
                    .as_ref()
                    .and_then(|v| {
                        let ex = v.pointer("/exception/values").and_then(|x| x.as_array()).and_then(|a| a.last());
                        match ex {
                            Some(e) => Some(format!("{}: {}", e["type"].as_str()?, e["value"].as_str().unwrap_or(""))),
                            None => v
                                .pointer("/logentry/message")
                                .or_else(|| v.get("transaction"))
                                .and_then(|m| m.as_str())
                                .map(str::to_owned),
                        }
                    })
                    .unwrap_or_default(),
                _ => format!("{} item(s)", item.quantity()),
            };
            let id = json.as_ref().and_then(|v| v.get("event_id")).and_then(|v| v.as_str()).unwrap_or("-");
            format!("{} {} {}", item.ty().as_str(), id, detail)
        })
        .collect()
}

impl Transport for InboxTransport {
    fn send(&mut self, envelope: &Envelope, body: &[u8]) -> SendOutcome {
        match self.write(body) {
            Ok(path) => {
                if self.print {
                    for line in describe(envelope) {
                        eprintln!("[sentry-lite inbox] {line} -> {}", path.display());
                    }
                }
                SendOutcome::sent()
            }
            Err(e) => SendOutcome::NetworkError(format!("inbox write failed: {e}")),
        }
    }
}

impl TransportFactory for InboxTransport {
    fn create(&self, _: &ClientOptions, _: Option<&Dsn>) -> Result<Box<dyn Transport>, String> {
        Ok(Box::new(InboxTransport::new(self.dir.clone(), self.print)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_files_that_parse_back() {
        let dir = std::env::temp_dir().join(format!("sl-inbox-{}", crate::ids::random_u64()));
        let mut t = InboxTransport::new(&dir, false);
        let env = Envelope::from_event(&crate::protocol::Event::new()).unwrap();
        assert_eq!(t.send(&env, &env.to_vec()), SendOutcome::sent());
        let file = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        assert!(Envelope::from_slice(&fs::read(&file).unwrap()).is_ok());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "private");
        fs::remove_dir_all(dir).ok();
    }
}
