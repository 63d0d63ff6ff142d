//! Two concurrent tasks, each with its own scope, capture error chains; then a message.

use std::time::Duration;

use sentry_lite_core as sentry;

#[tokio::main]
async fn main() {
    let options =
        sentry_lite_examples::options_from_env().with_release(concat!("quickstart@", env!("CARGO_PKG_VERSION")));
    let guard = match sentry::init(options) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    sentry_lite_examples::quickstart::run().await;
    if !sentry::flush(Duration::from_secs(5)) {
        eprintln!("flush timed out");
    }
    drop(guard);
}
