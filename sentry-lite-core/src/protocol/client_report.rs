use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Why an item was dropped by the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DiscardReason {
    /// The send queue was full.
    QueueOverflow,
    /// A buffer (span, log) was full.
    BufferOverflow,
    /// A rate limit was in force.
    RatelimitBackoff,
    /// The network failed.
    NetworkError,
    /// Dropped by client-side sampling.
    SampleRate,
    /// Dropped by `before_send`.
    BeforeSend,
    /// Dropped by an event processor.
    EventProcessor,
    /// The server rejected it (4xx/5xx other than 429).
    SendError,
    /// The SDK failed internally (e.g. serialization).
    InternalSdkError,
    /// Filtered by `ignore_spans` and similar.
    Ignored,
    /// Invalid data.
    Invalid,
}

/// One counted drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscardedEvents {
    /// Why.
    pub reason: DiscardReason,
    /// Data category (`error`, `span`, ...).
    pub category: String,
    /// How many.
    pub quantity: u64,
}

/// The payload of a `client_report` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientReport {
    /// When it was written.
    pub timestamp: Timestamp,
    /// The counted drops.
    pub discarded_events: Vec<DiscardedEvents>,
}
