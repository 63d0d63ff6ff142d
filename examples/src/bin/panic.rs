//! Panics reported as fatal events: one on a worker thread, then one on the main thread.
//!
//! Run it with `cargo run -p sentry-lite-examples --bin panic` (envelopes go to the
//! inbox directory without `SENTRY_DSN`). Build it with
//! `cargo build --profile release-abort -p sentry-lite-examples --bin panic` to see
//! that both events are delivered even under `panic = "abort"`: the hook flushes
//! before the process dies.

use sentry_lite_core as sentry;
use sentry_lite_panic::PanicIntegration;

fn main() {
    let options = sentry_lite_examples::options_from_env()
        .with_release(concat!("panic-example@", env!("CARGO_PKG_VERSION")))
        .with_integration(PanicIntegration::new());
    let _guard = match sentry::init(options) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    sentry::configure_scope(|scope| scope.set_tag("example", "panic"));
    sentry::add_breadcrumb("about to panic");

    // Reported with the thread's name, then the thread unwinds (or, under
    // `panic = "abort"`, the process ends here, after the event was sent).
    let worker = std::thread::Builder::new()
        .name("worker".into())
        .spawn(|| panic!("worker exploded"))
        .expect("spawn worker thread");
    let _ = worker.join();

    panic!("main exploded");
}
