//! The `tracing` workloads themselves, plus the "registry alone" baseline.
//!
//! The same functions are run under every subscriber (plain registry,
//! registry + sentry-tracing, registry + tracing-opentelemetry, and later
//! registry + sentry-lite-tracing), so the only difference is the layer.

use std::time::Duration;

use crate::harness::{time_chunked, time_loop, Contender};

/// Contender name of the plain-registry baseline.
pub(crate) const NAME: &str = "registry";

/// create + enter + exit + close of one `info_span!` (a root span when no
/// parent is entered).
#[inline]
pub(crate) fn one_span(i: u64) {
    let span = tracing::info_span!("handle_request", request.id = i);
    let _g = span.enter();
}

/// `tracing::info!` with one field and a formatted message.
#[inline]
pub(crate) fn one_event(i: u64) {
    tracing::info!(user.id = i, "cache miss for user {}", 42);
}

/// Child spans under a parent span recycled every 100 children (untimed).
pub(crate) fn child_spans(iters: u64) -> Duration {
    time_chunked(iters, 100, || tracing::info_span!("parent").entered(), |_, i| one_span(i), drop)
}

/// Events inside an entered span (recycled every 100 events, untimed).
pub(crate) fn events_in_span(iters: u64) -> Duration {
    time_chunked(iters, 100, || tracing::info_span!("parent").entered(), |_, i| one_event(i), drop)
}

fn registry(body: fn(u64) -> Duration) -> Contender {
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry());
    Contender::new(NAME, Box::new(move |iters| tracing::dispatcher::with_default(&dispatch, || body(iters))))
}

pub(crate) fn span() -> Contender {
    registry(|iters| time_loop(iters, one_span))
}
pub(crate) fn child_span() -> Contender {
    registry(child_spans)
}
pub(crate) fn event() -> Contender {
    registry(|iters| time_loop(iters, one_event))
}
pub(crate) fn event_in_span() -> Contender {
    registry(events_in_span)
}
