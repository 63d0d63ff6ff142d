//! Shared by the profiling examples.

use std::sync::Arc;

use sentry_lite_core::{Client, ClientOptions, NoopTransport};

/// A client that builds everything and sends nothing; `mode` "unsampled" turns
/// tracing off, anything else samples every request.
pub(crate) fn profiling_client(mode: &str) -> Arc<Client> {
    let options = ClientOptions::new()
        .with_transport(NoopTransport)
        .with_traces_sample_rate(if mode == "unsampled" { 0.0 } else { 1.0 })
        .with_queue_capacity(1_000_000);
    let dsn = "https://public@127.0.0.1:9/1".parse().expect("dsn");
    Arc::new(Client::new(options, Some(dsn)))
}
