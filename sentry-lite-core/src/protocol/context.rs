use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{SpanId, SpanStatus, TraceId};

/// Contexts by key (`trace`, `os`, `runtime`, ...).
pub type Contexts = BTreeMap<String, Context>;

/// One context. `trace` is typed; the others are free-form objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Context {
    /// The trace context linking an event to a span.
    Trace(TraceContext),
    /// Any other context.
    Other(BTreeMap<String, Value>),
}

impl Context {
    /// A free-form context from key/value pairs.
    pub fn other<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Value>,
    {
        Context::Other(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

/// `contexts.trace`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceContext {
    /// Trace id.
    pub trace_id: TraceId,
    /// The span the event happened in.
    pub span_id: SpanId,
    /// Its parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<SpanId>,
    /// Span operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// Span status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SpanStatus>,
    /// Span origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Span data (static-mode transactions).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, Value>,
}
