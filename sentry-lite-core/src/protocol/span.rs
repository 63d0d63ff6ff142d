use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{SpanId, Timestamp, TraceId};

/// Status of a span. Span v2 only knows `ok` and `error`; the detailed reason is
/// kept for `contexts.trace` and static-mode transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum SpanStatus {
    #[default]
    Ok,
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    InternalError,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

impl SpanStatus {
    /// Whether span v2 reports this as `ok`.
    pub fn is_ok(&self) -> bool {
        matches!(self, SpanStatus::Ok)
    }

    /// The status for an HTTP response code, per Sentry's mapping.
    pub fn from_http_status(code: u16) -> Self {
        match code {
            0..=399 => SpanStatus::Ok,
            401 => SpanStatus::Unauthenticated,
            403 => SpanStatus::PermissionDenied,
            404 => SpanStatus::NotFound,
            409 => SpanStatus::AlreadyExists,
            429 => SpanStatus::ResourceExhausted,
            499 => SpanStatus::Cancelled,
            400..=498 => SpanStatus::InvalidArgument,
            501 => SpanStatus::Unimplemented,
            503 => SpanStatus::Unavailable,
            504 => SpanStatus::DeadlineExceeded,
            _ => SpanStatus::InternalError,
        }
    }
}

/// A typed attribute value of span v2 and logs.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// A string.
    String(String),
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    I64(i64),
    /// A double.
    F64(f64),
    /// A homogeneous array of strings.
    StringArray(Vec<String>),
    /// A homogeneous array of booleans.
    BoolArray(Vec<bool>),
    /// A homogeneous array of integers.
    I64Array(Vec<i64>),
    /// A homogeneous array of doubles.
    F64Array(Vec<f64>),
}

macro_rules! attr_from {
    ($($t:ty => $v:ident $(as $cast:ty)?),* $(,)?) => {$(
        impl From<$t> for AttributeValue {
            fn from(v: $t) -> Self {
                AttributeValue::$v(v $(as $cast)?)
            }
        }
    )*};
}
attr_from!(String => String, bool => Bool, i64 => I64, i32 => I64 as i64, u32 => I64 as i64, u16 => I64 as i64, f64 => F64, f32 => F64 as f64,
    Vec<String> => StringArray, Vec<bool> => BoolArray, Vec<i64> => I64Array, Vec<f64> => F64Array);

impl From<&str> for AttributeValue {
    fn from(v: &str) -> Self {
        AttributeValue::String(v.to_owned())
    }
}

impl From<u64> for AttributeValue {
    /// Integers must fit i64 on the wire; larger ones are sent as strings.
    fn from(v: u64) -> Self {
        i64::try_from(v).map_or_else(|_| AttributeValue::String(v.to_string()), AttributeValue::I64)
    }
}

impl From<usize> for AttributeValue {
    fn from(v: usize) -> Self {
        AttributeValue::from(v as u64)
    }
}

impl From<&String> for AttributeValue {
    fn from(v: &String) -> Self {
        AttributeValue::String(v.clone())
    }
}

/// An attribute as written on the wire: `{"type": …, "value": …, "unit"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    /// `string`, `boolean`, `integer`, `double` or `array`.
    #[serde(rename = "type")]
    pub ty: String,
    /// The value.
    pub value: serde_json::Value,
    /// Optional unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

impl From<&AttributeValue> for Attribute {
    fn from(v: &AttributeValue) -> Self {
        use serde_json::{json, Value};
        // Non-finite doubles are not valid JSON; send them as strings rather than null.
        let f = |x: f64| if x.is_finite() { json!(x) } else { Value::String(x.to_string()) };
        let (ty, value) = match v {
            AttributeValue::String(s) => ("string", json!(s)),
            AttributeValue::Bool(b) => ("boolean", json!(b)),
            AttributeValue::I64(i) => ("integer", json!(i)),
            AttributeValue::F64(x) if x.is_finite() => ("double", json!(x)),
            AttributeValue::F64(x) => ("string", json!(x.to_string())),
            AttributeValue::StringArray(a) => ("array", json!(a)),
            AttributeValue::BoolArray(a) => ("array", json!(a)),
            AttributeValue::I64Array(a) => ("array", json!(a)),
            AttributeValue::F64Array(a) => ("array", Value::Array(a.iter().map(|x| f(*x)).collect())),
        };
        Attribute { ty: ty.into(), value, unit: None }
    }
}

/// A span as sent in a span v2 container item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanV2 {
    /// Trace id; must equal the envelope DSC's.
    pub trace_id: TraceId,
    /// Span id.
    pub span_id: SpanId,
    /// Parent span id, absent on trace roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<SpanId>,
    /// Low-cardinality name.
    pub name: String,
    /// `ok` or `error`.
    pub status: String,
    /// Whether this is the local root (segment).
    pub is_segment: bool,
    /// Start.
    pub start_timestamp: Timestamp,
    /// End.
    pub end_timestamp: Timestamp,
    /// Typed attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, Attribute>,
}
