//! Shared set-up for the example binaries.

pub mod quickstart;

use sentry_lite_core::{ClientOptions, InboxTransport};

/// Options from the environment; without `SENTRY_DSN`, envelopes go to the embedded
/// inbox directory (`$SENTRY_LITE_INBOX` or `./sentry-inbox`) and one line per item
/// is printed.
pub fn options_from_env() -> ClientOptions {
    let options = ClientOptions::from_env();
    if options.dsn.is_some() {
        eprintln!("[sentry-lite] sending to the DSN from SENTRY_DSN");
        return options;
    }
    let dir = InboxTransport::default_dir();
    let shown = std::fs::create_dir_all(&dir).ok().and_then(|_| dir.canonicalize().ok()).unwrap_or_else(|| dir.clone());
    eprintln!("[sentry-lite] SENTRY_DSN is unset: writing envelopes to {}", shown.display());
    options.with_transport(InboxTransport::new(dir, true))
}
