//! Tracing: spans, head sampling, trace propagation and the span buffer.

pub mod propagation;

use std::fmt;
use std::sync::Arc;

use crate::ids::{SpanId, TraceId};
use crate::protocol::{DynamicSamplingContext, TraceContext};

/// What a traces sampler sees when a trace starts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SamplingContext<'a> {
    /// Name of the root span.
    pub name: &'a str,
    /// Op of the root span.
    pub op: Option<&'a str>,
    /// The upstream decision when continuing a trace.
    pub parent_sampled: Option<bool>,
}

/// The trace of a scope without an active span: ids to propagate and link events to.
#[derive(Debug, Clone)]
pub struct PropagationContext {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent_span_id: Option<SpanId>,
    pub(crate) dsc: Option<DynamicSamplingContext>,
}

impl PropagationContext {
    pub(crate) fn trace_context(&self) -> TraceContext {
        TraceContext { trace_id: self.trace_id, span_id: self.span_id, parent_span_id: self.parent_span_id, ..TraceContext::default() }
    }
}

/// A span handle (being built).
#[derive(Clone)]
pub struct Span {
    inner: Arc<()>,
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Span")
    }
}

impl Span {
    pub(crate) fn trace_context(&self) -> TraceContext {
        let _ = &self.inner;
        TraceContext::default()
    }

    pub(crate) fn dsc(&self) -> Option<DynamicSamplingContext> {
        None
    }
}

impl PropagationContext {
    /// A new random trace with a deferred sampling decision.
    pub(crate) fn new_random() -> Self {
        Self { trace_id: TraceId::new(), span_id: SpanId::new(), parent_span_id: None, dsc: None }
    }
}

impl Span {
    pub(crate) fn segment_name(&self) -> Option<String> {
        None
    }
}
