use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Attribute, SpanId, Timestamp, TraceId};

/// Severity of a structured log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    /// OpenTelemetry severity number.
    pub fn severity_number(&self) -> u8 {
        match self {
            LogLevel::Trace => 1,
            LogLevel::Debug => 5,
            LogLevel::Info => 9,
            LogLevel::Warn => 13,
            LogLevel::Error => 17,
            LogLevel::Fatal => 21,
        }
    }
}

/// One structured log in a `log` container item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogItem {
    /// When it was emitted.
    pub timestamp: Timestamp,
    /// Trace it belongs to.
    pub trace_id: TraceId,
    /// Span active when it was emitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<SpanId>,
    /// Severity.
    pub level: LogLevel,
    /// The formatted message.
    pub body: String,
    /// OpenTelemetry severity number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_number: Option<u8>,
    /// Typed attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, Attribute>,
}
