//! `tracing` → Sentry: `#[instrument]` spans across spawned tasks become one trace of
//! streamed spans, `info!` events become breadcrumbs and logs, and an `error!` with an
//! error chain becomes a Sentry event linked to the span it happened in.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use tracing::Instrument as _;
use tracing_subscriber::prelude::*;

#[derive(Debug)]
struct ChargeError {
    source: std::io::Error,
}

impl fmt::Display for ChargeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("could not charge the card")
    }
}

impl Error for ChargeError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

#[tracing::instrument(fields(sentry.op = "db.query"))]
async fn load_order(order_id: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(5)).await;
    tracing::info!(order_id, "order loaded");
    order_id * 100
}

#[tracing::instrument(fields(sentry.op = "http.client", amount = tracing::field::Empty))]
async fn charge(order_id: u64, cents: u64) -> Result<(), ChargeError> {
    tracing::Span::current().record("amount", cents);
    tokio::time::sleep(Duration::from_millis(3)).await;
    if order_id == 3 {
        return Err(ChargeError {
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "payment gateway timed out"),
        });
    }
    Ok(())
}

#[tracing::instrument(fields(sentry.op = "task"))]
async fn process(order_id: u64) {
    let cents = load_order(order_id).await;
    if let Err(err) = charge(order_id, cents).await {
        tracing::error!(error = &err as &(dyn Error + 'static), order_id, "payment failed");
    } else {
        tracing::info!(order_id, "payment done");
    }
}

#[tracing::instrument(fields(sentry.op = "queue.process"))]
async fn batch() {
    let tasks: Vec<_> = (1..=4).map(|id| tokio::spawn(process(id).in_current_span())).collect();
    for t in tasks {
        let _ = t.await;
    }
}

#[tokio::main]
async fn main() {
    let options = sentry_lite_examples::options_from_env()
        .with_release(concat!("tracing-demo@", env!("CARGO_PKG_VERSION")))
        .with_traces_sample_rate(1.0)
        .with_enable_logs(true);
    let guard = match sentry_lite_core::init(options) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let layer = sentry_lite_tracing::layer();
    let logs = layer.log_flusher();
    tracing_subscriber::registry().with(layer).init();

    batch().instrument(tracing::info_span!("tracing-demo", sentry.op = "demo")).await;

    logs.flush();
    if !sentry_lite_core::flush(Duration::from_secs(5)) {
        eprintln!("flush timed out");
    }
    drop(guard);
}
