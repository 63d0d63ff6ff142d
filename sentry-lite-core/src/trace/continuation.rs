//! Continuing incoming traces and the trace of a scope without a span.

use crate::hub::Hub;
use crate::ids::{SpanId, TraceId};
use crate::protocol::{DynamicSamplingContext, TraceContext};

use super::propagation::baggage::parse_org_id;
use super::propagation::{format_sample_rand, parse_sample_rand, parse_sample_rate, Baggage, SentryTrace, TraceParent};
use super::sampling::{derive_sample_rand, new_sample_rand};

/// The trace of a scope: what [`continue_trace`] read from incoming headers, or a
/// fresh trace with a deferred decision. Root spans started in the scope continue
/// it; events captured without a span are linked to it; [`crate::trace_headers`]
/// propagates it when no span is current.
#[derive(Debug, Clone)]
pub struct PropagationContext {
    pub(crate) trace_id: TraceId,
    /// Our own (virtual) span id, sent downstream when there is no span.
    pub(crate) span_id: SpanId,
    /// The upstream span.
    pub(crate) parent_span_id: Option<SpanId>,
    /// The upstream decision; `None`: deferred.
    pub(crate) sampled: Option<bool>,
    pub(crate) sample_rand: f64,
    pub(crate) sample_rate: Option<f64>,
    /// The incoming DSC, frozen.
    pub(crate) dsc: Option<DynamicSamplingContext>,
}

impl PropagationContext {
    /// A new random trace with a deferred sampling decision.
    pub fn new_random() -> Self {
        Self {
            trace_id: TraceId::new(),
            span_id: SpanId::new(),
            parent_span_id: None,
            sampled: None,
            sample_rand: new_sample_rand(),
            sample_rate: None,
            dsc: None,
        }
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The upstream span, when continuing a trace.
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.parent_span_id
    }

    /// The upstream sampling decision (`None`: deferred or a new trace).
    pub fn sampled(&self) -> Option<bool> {
        self.sampled
    }

    /// The trace's `sample_rand`.
    pub fn sample_rand(&self) -> f64 {
        self.sample_rand
    }

    /// The incoming (frozen) DSC, if any.
    pub fn dsc(&self) -> Option<&DynamicSamplingContext> {
        self.dsc.as_ref()
    }

    pub(crate) fn trace_context(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            ..TraceContext::default()
        }
    }

    pub(crate) fn state(&self) -> super::span::TraceState {
        super::span::TraceState {
            trace_id: self.trace_id,
            sampled: self.sampled,
            sample_rand: self.sample_rand,
            sample_rate: self.sample_rate,
            continued: None,
        }
    }

    /// The DSC to send with this context: the incoming one, else ours.
    pub(crate) fn dsc_for(&self, client: Option<&crate::pipeline::JobContext>) -> DynamicSamplingContext {
        match &self.dsc {
            Some(dsc) => DynamicSamplingContext { trace_id: self.trace_id, ..dsc.clone() },
            None => self.state().dsc(client, None),
        }
    }
}

/// Reads incoming `sentry-trace`, `baggage` and W3C `traceparent` headers (names
/// compared case-insensitively) and returns the context that continues their
/// trace: same trace id, the upstream span as parent, the upstream sampling
/// decision and the incoming DSC, frozen.
///
/// * `sentry-trace` and `baggage` decide. A `traceparent` is read only without a
///   `sentry-trace`, for its trace and parent span ids: its sampled flag is another
///   tracer's and never decides here (the decision stays deferred).
/// * `baggage` without a valid `sentry-public_key` is not a DSC: this service then
///   heads the trace (builds its DSC from its own options). Known keys whose values
///   do not parse are dropped. Other vendors' members are never forwarded.
/// * Organizations: when the incoming `sentry-org_id` and this SDK's org id (the
///   `org_id` option, else the DSN's `o123.` host prefix) are both known and differ,
///   a new trace starts. With [`ClientOptions::strict_trace_continuation`] a trace
///   is continued only when both are known and equal (or both are unknown), so a
///   caller outside your organization cannot set your sampling decision, public
///   key or trace id.
///
/// Without a valid trace header a new trace starts.
///
/// [`ClientOptions::strict_trace_continuation`]: crate::ClientOptions::strict_trace_continuation
///
/// Make it the scope's context so root spans and events continue it:
///
/// # Examples
/// ```
/// let headers = [("Sentry-Trace", "0123456789abcdef0123456789abcdef-0123456789abcdef-1")];
/// let ctx = sentry_lite_core::continue_trace(headers);
/// assert_eq!(ctx.sampled(), Some(true));
/// sentry_lite_core::configure_scope(|s| s.set_propagation(ctx));
/// ```
pub fn continue_trace<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> PropagationContext {
    let mut sentry_trace = None;
    let mut traceparent = None;
    let mut baggage = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("sentry-trace") {
            sentry_trace = sentry_trace.or_else(|| SentryTrace::parse(value));
        } else if name.eq_ignore_ascii_case("traceparent") {
            traceparent = traceparent.or_else(|| TraceParent::parse(value));
        } else if name.eq_ignore_ascii_case("baggage") && baggage.is_none() {
            baggage = Some(Baggage::parse(value));
        }
    }
    let upstream = sentry_trace
        .or_else(|| traceparent.map(|t| SentryTrace { trace_id: t.trace_id, span_id: t.span_id, sampled: None }));
    let Some(upstream) = upstream else { return PropagationContext::new_random() };
    let baggage = baggage.unwrap_or_default();
    let values = baggage.sentry_values();
    let (ours, strict) = Hub::with_current_client(|c| (c.inner().org_id(), c.options().strict_trace_continuation))
        .unwrap_or((None, false));
    let theirs = values.get("org_id").and_then(|v| parse_org_id(v));
    let same_org = match (ours, theirs) {
        (Some(a), Some(b)) => a == b,
        (None, None) => true,
        _ => !strict,
    };
    if !same_org {
        return PropagationContext::new_random();
    }
    // A sentry-trace_id for another trace means the baggage is not about this trace.
    let same_trace = values.get("trace_id").is_none_or(|t| t.parse::<TraceId>().ok() == Some(upstream.trace_id));
    let dsc = if same_trace { baggage.to_dsc(upstream.trace_id) } else { None };
    let sample_rate = dsc.as_ref().and_then(|d| d.sample_rate.as_deref()).and_then(parse_sample_rate);
    let sampled =
        upstream.sampled.or_else(|| dsc.as_ref().and_then(|d| d.sampled.as_deref()).and_then(|s| s.parse().ok()));
    let incoming_rand = dsc.as_ref().and_then(|d| d.sample_rand.as_deref()).and_then(parse_sample_rand);
    // An incoming rand that contradicts the incoming decision is not used.
    let consistent = |r: f64| match (sampled, sample_rate) {
        (Some(s), Some(rate)) => (r < rate) == s,
        _ => true,
    };
    let sample_rand =
        incoming_rand.filter(|r| consistent(*r)).unwrap_or_else(|| derive_sample_rand(sampled, sample_rate));
    let mut dsc = dsc;
    if let Some(d) = &mut dsc {
        // The one change to a frozen DSC: the trace's sample_rand, when upstream had
        // none or one contradicting its decision.
        if incoming_rand.is_none_or(|r| !consistent(r)) {
            d.sample_rand = Some(format_sample_rand(sample_rand));
        }
    }
    PropagationContext {
        trace_id: upstream.trace_id,
        span_id: SpanId::new(),
        parent_span_id: Some(upstream.span_id),
        sampled,
        sample_rand,
        sample_rate,
        dsc,
    }
}
