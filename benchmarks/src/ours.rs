//! The sentry-lite ("ours") side of every workload.
//!
//! Each function returns `None` until sentry-lite-core's API exists; the
//! harness then prints `ours: n/a` for that case. To fill one in, return the
//! same shape the peers use (see `peer_sentry.rs` for a template):
//!
//! ```ignore
//! pub(crate) fn capture_message() -> Option<BatchFn> {
//!     let client = /* sentry-lite client with a no-op / counting transport */;
//!     Some(Box::new(move |iters| {
//!         // untimed setup here (bind client/hub, …)
//!         time_loop(iters, |_| sentry_lite_core::capture_message("hello from the benchmark", Level::Info))
//!     }))
//! }
//! ```
//!
//! Rules so the comparison stays fair:
//! * a `BatchFn` runs the workload exactly `iters` times and returns only the
//!   time of the measured part (use `harness::time_loop` / `time_chunked`);
//!   one-time setup (client, transport, subscriber) happens outside the
//!   closure, per-batch setup (binding a hub, `dispatcher::with_default`)
//!   inside it but before the timer starts;
//! * use a transport that drops (or counts) envelopes in the caller thread,
//!   like `peer_sentry::NoopTransport`, with a dummy DSN so the client is
//!   enabled; same options as the peer (sample rate 1.0 unless stated,
//!   `attach_stacktrace` as stated, default integrations on);
//! * the tracing cases must run the shared bodies from `baseline.rs`
//!   (`one_span`, `child_spans`, `one_event`, `events_in_span`) under
//!   `tracing::dispatcher::with_default(&dispatch, …)` with a
//!   `tracing_subscriber::registry().with(<sentry-lite-tracing layer>)`;
//! * the error cases capture `peer_sentry::error_chain()` (3-level source chain).

use std::any::Any;
use std::time::Duration;

use crate::harness::BatchFn;
use crate::MemFn;

/// `capture_message("hello from the benchmark", Info)` per iteration.
pub(crate) fn capture_message() -> Option<BatchFn> {
    None // filled in when sentry-lite-core lands
}

/// `capture_error(&peer_sentry::error_chain())` per iteration; `stacktrace`
/// = the `attach_stacktrace` option.
pub(crate) fn capture_error(stacktrace: bool) -> Option<BatchFn> {
    let _ = stacktrace;
    None // filled in when sentry-lite-core lands
}

/// `configure_scope(|s| s.set_tag("shard", i & 7))` per iteration.
pub(crate) fn set_tag() -> Option<BatchFn> {
    None // filled in when sentry-lite-core lands
}

/// `add_breadcrumb(category "http", message "GET /users/42", Info)` per iteration.
pub(crate) fn add_breadcrumb() -> Option<BatchFn> {
    None // filled in when sentry-lite-core lands
}

/// Root span (transaction) start + finish per iteration; `sampled` selects
/// traces_sample_rate 1.0 or 0.0.
pub(crate) fn span_root(sampled: bool) -> Option<BatchFn> {
    let _ = sampled;
    None // filled in when sentry-lite-core lands
}

/// Child span start + finish per iteration, under a root recycled (untimed)
/// every 100 children (`harness::time_chunked(iters, 100, …)`).
pub(crate) fn span_child(sampled: bool) -> Option<BatchFn> {
    let _ = sampled;
    None // filled in when sentry-lite-core lands
}

/// One iteration = start root, `n` children start + finish, finish root
/// (the harness divides by n + 1 to report per-span cost).
pub(crate) fn trace_n(n: u64) -> Option<BatchFn> {
    let _ = n;
    None // filled in when sentry-lite-core lands
}

/// `baseline::one_span` per iteration under registry + sentry-lite-tracing.
pub(crate) fn tracing_span() -> Option<BatchFn> {
    None // filled in when sentry-lite-core lands
}

/// `baseline::child_spans(iters)` under registry + sentry-lite-tracing.
pub(crate) fn tracing_child_span() -> Option<BatchFn> {
    None // filled in when sentry-lite-core lands
}

/// `baseline::one_event` per iteration (→ breadcrumb) under registry + sentry-lite-tracing.
pub(crate) fn tracing_event() -> Option<BatchFn> {
    None // filled in when sentry-lite-core lands
}

/// `baseline::events_in_span(iters)` under registry + sentry-lite-tracing.
pub(crate) fn tracing_event_in_span() -> Option<BatchFn> {
    None // filled in when sentry-lite-core lands
}

/// Wrap `base` (the hello-world router) in sentry-lite-axum's layers with
/// transactions at `traces_sample_rate`. The second element keeps alive
/// whatever must outlive the server (client guard, transport handle, …).
pub(crate) fn axum_app(base: axum::Router, traces_sample_rate: f32) -> Option<(axum::Router, Box<dyn Any + Send>)> {
    let _ = (base, traces_sample_rate);
    None // filled in when sentry-lite-core lands
}

/// Memory case: `f(n, checkpoint)` starts one root, starts+finishes `n`
/// children, calls `checkpoint()` (the harness samples live heap bytes and
/// RSS there), then finishes the root.
pub(crate) fn memory_trace() -> Option<MemFn> {
    None // filled in when sentry-lite-core lands
}

/// Wire size of one trace with `n` children as sent: `(raw_bytes, gzip_bytes)`
/// of the serialized envelope(s) (use `crate::gzip_len` for the gzip size if
/// the transport does not compress itself).
pub(crate) fn wire_bytes(n: u64) -> Option<(u64, u64)> {
    let _ = n;
    None // filled in when sentry-lite-core lands
}

/// Result of the end-to-end throughput case.
#[derive(Clone, Debug, Default)]
pub(crate) struct Throughput {
    /// Spans produced by the application side during the run.
    pub(crate) spans_sent: u64,
    /// Spans the loopback receiver actually got (decoded).
    pub(crate) spans_received: u64,
    /// Bytes the receiver got on the wire.
    pub(crate) wire_bytes: u64,
    /// Wall time from first span to the last envelope received.
    pub(crate) elapsed: Duration,
}

/// End-to-end: produce spans as fast as possible for `duration` through the
/// real HTTP transport into an in-process receiver on 127.0.0.1:0, then flush.
pub(crate) fn loopback_throughput(duration: Duration) -> Option<Throughput> {
    let _ = duration;
    None // filled in when sentry-lite-core lands
}
