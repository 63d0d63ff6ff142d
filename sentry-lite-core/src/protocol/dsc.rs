use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::TraceId;

/// The dynamic sampling context: sent as `baggage` (with `sentry-` prefixes) and
/// as the envelope `trace` header. Every value is a string on the wire, because
/// Relay fails to parse a DSC whose `sample_rate` is a JSON number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DynamicSamplingContext {
    /// Trace id.
    pub trace_id: TraceId,
    /// Public key of the DSN that started the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Sample rate of the head decision, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<String>,
    /// The trace's random value in `[0, 1)`, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rand: Option<String>,
    /// `"true"` / `"false"`; absent while the decision is deferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<String>,
    /// Release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Organization id (from the DSN host on sentry.io).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// Segment name, only when it is a good-quality (non-URL) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// Keys this SDK does not know, kept for forwarding.
    #[serde(flatten, default)]
    pub other: BTreeMap<String, String>,
}
