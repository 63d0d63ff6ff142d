//! Tracing: spans, head sampling, trace propagation and the span buffer.
//!
//! ```text
//! start_span ─► current span? ─ yes ─► child (shares the segment handle)
//!                   │ no
//!                   └─► new segment: continue the scope's PropagationContext
//!                       (continue_trace) or a new trace; head sampling
//! span.finish() ─► SpanRecord ─► stream: SpanBuffer (by trace id) ─► worker: span v2 envelope
//!                              └► static: segment collector ─► worker: transaction event
//! ```
//!
//! * `span`: the [`Span`] handle, recording and non-recording.
//! * [`sampling`](SamplingContext): `traces_sample_rate`, `traces_sampler`, `sample_rand`.
//! * `context`: which span is current (entered stack, then the hub's scope).
//! * `future`: [`trace`] and [`SpanFutureExt::in_span`].
//! * `continuation`: [`continue_trace`] and [`PropagationContext`].
//! * [`propagation`]: header formats.
//! * `buffer` / `stage` / `record` / `static_mode`: what happens after `finish`.
//! * `clock`: span timestamps, counter ticks on the caller turned into wall-clock
//!   time on the worker.
//!
//! Scope data on segments: tags become attributes under their own key; `user.id`,
//! `user.email`, `user.name` and `user.ip_address` are added only with
//! `send_default_pii`. Common attributes (release, environment, SDK, segment,
//! op, origin, thread, server, OS) are added on the worker when serializing.
//!
//! # Glossary
//!
//! * **segment**: the local root span of a unit of work (`is_segment: true`); it
//!   carries its scopes' tags and user, and names the trace's transaction.
//! * **child**: any other span; its data lives in a slot of its segment
//!   (`child`), not in an allocation of its own.
//! * **record** (`SpanRecord`): a finished span, waiting for the worker.
//! * **refs** (`Refs`): the segments and threads a batch's records point into by index.
//! * **stage**: where a segment's finished children are written under the
//!   segment's lock, in room the buffer **lends** it (a **loan**).
//! * **span buffer** (`buffer`): groups records by trace and decides when they
//!   leave; it hands batches to its **sink** (the client) and never serializes.
//! * **batch job** / **group job**: one trace's records / several complete
//!   traces, each becoming one span v2 envelope on the worker.
//! * **refused**: dropped (and counted) at the door because the spans in flight
//!   to a worker that fell behind fill the buffer's bound.
//! * **stream** / **static**: the trace lifecycle: span v2 batches, or one
//!   transaction event per segment (`static_mode`).
//! * **DSC**: the trace's dynamic sampling context; **frozen** once propagated,
//!   so every service reports the same.
//! * **propagation context**: the trace a scope continues when no span is active.
//! * **anchor** (`clock`): the (wall clock, counter) pair that turns span ticks
//!   into timestamps on the worker.

pub(crate) mod buffer;
mod child;
pub(crate) mod clock;
mod context;
mod continuation;
mod future;
mod name;
pub mod propagation;
mod record;
mod sampling;
pub(crate) mod span;
mod span_json;
mod stage;
mod static_mode;
#[cfg(test)]
mod tests;

pub use context::{current_span, current_span_if_active, enter_span, pop_entered_span, push_entered_span, EnteredSpan};
pub use continuation::{continue_trace, PropagationContext};
pub use future::{trace, AsyncWork, InSpan, SpanFutureExt, SyncWork, Traced, TracedFuture};
pub use name::IntoSpanName;
#[doc(hidden)]
pub use name::SpanName;
pub use record::AttributeKey;
pub use sampling::SamplingContext;
pub use span::Span;

pub(crate) use context::entered_span;

use std::sync::Arc;

use crate::hub::{Hub, EVER_ENABLED};
use crate::protocol::AttributeValue;

/// Starts a span: a child of the current span, else a new segment (see
/// [`start_root_span`]).
///
/// # Examples
/// ```
/// let span = sentry_lite_core::start_span("load config", "file.read");
/// span.set_attribute("file.path", "/etc/app.toml");
/// span.finish();
/// ```
pub fn start_span(name: impl IntoSpanName, op: &str) -> Span {
    match current_span() {
        Some(parent) => parent.start_child(name, op),
        None => Span::new_root(name.into_span_name(), op, None, Vec::new()),
    }
}

/// Starts a new segment (local root span), whatever span is current. It continues
/// the scope's propagation context (set from [`continue_trace`]) if there is one,
/// else starts a new trace, and makes the head sampling decision.
///
/// # Examples
/// ```
/// let root = sentry_lite_core::start_root_span("GET /users/{id}", "http.server");
/// assert_eq!(root.parent_span_id(), None);
/// root.finish();
/// ```
pub fn start_root_span(name: impl IntoSpanName, op: &str) -> Span {
    Span::new_root(name.into_span_name(), op, None, Vec::new())
}

/// [`start_root_span`] with initial attributes, which `traces_sampler` sees.
pub fn start_root_span_with_attributes(
    name: impl IntoSpanName,
    op: &str,
    attributes: Vec<(AttributeKey, AttributeValue)>,
) -> Span {
    Span::new_root(name.into_span_name(), op, None, attributes)
}

/// A root span with its origin and attributes set at once: for integrations.
#[doc(hidden)]
pub fn start_root_span_with(
    name: impl IntoSpanName,
    op: &str,
    origin: &'static str,
    attributes: Vec<(AttributeKey, AttributeValue)>,
) -> Span {
    Span::new_root(name.into_span_name(), op, Some(origin), attributes)
}

/// Propagation headers for an outgoing request, whatever its URL: from the current
/// span, else from the scope's propagation context (tracing without performance;
/// one is created in the isolation scope if needed). `sentry-trace` always;
/// `baggage` when the SDK is enabled with a DSN; `traceparent` only with
/// [`ClientOptions::propagate_traceparent`](crate::ClientOptions::propagate_traceparent).
/// HTTP client integrations call [`trace_headers_for`] instead, which honours the
/// propagation targets.
///
/// # Examples
/// ```
/// let headers = sentry_lite_core::trace_headers();
/// assert_eq!(headers[0].0, "sentry-trace");
/// ```
pub fn trace_headers() -> Vec<(&'static str, String)> {
    headers_if(|_| true)
}

/// The propagation headers for an outgoing request to `url`, the one decision every
/// HTTP client integration makes: nothing when `url` is not one of
/// [`ClientOptions::trace_propagation_targets`](crate::ClientOptions::trace_propagation_targets),
/// else `sentry-trace`, `baggage` (when the SDK is enabled with a DSN) and
/// `traceparent` (with `propagate_traceparent`), from the current span or the
/// scope's propagation context. Other vendors' `baggage` members already on the
/// request are the caller's to keep; incoming ones are never forwarded.
///
/// # Examples
/// ```
/// use sentry_lite_core::{ClientOptions, TestTransport, TracePropagationTargets};
/// let options = ClientOptions::new()
///     .with_dsn("https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/1")
///     .with_trace_propagation_targets(TracePropagationTargets::matching(["internal.example"]))
///     .with_transport(TestTransport::new());
/// let _guard = sentry_lite_core::init(options);
/// assert!(sentry_lite_core::trace_headers_for("https://api.stripe.com/v1").is_empty());
/// let headers = sentry_lite_core::trace_headers_for("https://users.internal.example/7");
/// assert_eq!(headers.iter().map(|h| h.0).collect::<Vec<_>>(), ["sentry-trace", "baggage"]);
/// ```
pub fn trace_headers_for(url: &str) -> Vec<(&'static str, String)> {
    headers_if(|o| o.trace_propagation_targets.matches(url))
}

fn headers_if(target: impl FnOnce(&crate::ClientOptions) -> bool) -> Vec<(&'static str, String)> {
    if let Some(span) = current_span() {
        return span.headers_if(target);
    }
    if !EVER_ENABLED.load(std::sync::atomic::Ordering::Relaxed) {
        let ctx = PropagationContext::new_random();
        return span::headers(ctx.trace_id, ctx.span_id, None, None);
    }
    Hub::with_current(|hub| {
        let client = hub.client().filter(|c| c.is_enabled());
        if client.as_ref().is_some_and(|c| !target(c.options())) {
            return Vec::new();
        }
        let ctx = hub.read_scope(|s| s.propagation.clone()).unwrap_or_else(|| {
            hub.configure_isolation_scope(|s| {
                s.propagation.get_or_insert_with(|| Arc::new(PropagationContext::new_random())).clone()
            })
        });
        match client {
            Some(client) => {
                let dsc = ctx.dsc_for(Some(client.inner()));
                let traceparent = client.options().propagate_traceparent;
                span::headers(ctx.trace_id, ctx.span_id, ctx.sampled, Some((&dsc, traceparent)))
            }
            None => span::headers(ctx.trace_id, ctx.span_id, ctx.sampled, None),
        }
    })
}
