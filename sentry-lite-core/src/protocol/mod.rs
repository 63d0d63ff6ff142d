//! Wire types of the Sentry protocol, one family per file.
//!
//! These are plain data: building and serializing them never panics, and every
//! optional field is skipped when empty so payloads stay small.

mod breadcrumb;
mod client_report;
mod context;
mod dsc;
mod envelope;
mod event;
mod exception;
pub(crate) mod json;
mod level;
mod log;
pub(crate) mod raw_frames;
mod span;
mod time;

pub use crate::ids::{EventId, SpanId, TraceId};

pub use breadcrumb::{Breadcrumb, Breadcrumbs};
pub use client_report::{ClientReport, DiscardReason, DiscardedEvents};
pub use context::{Context, Contexts, TraceContext};
pub use dsc::DynamicSamplingContext;
pub use envelope::{DataCategory, Envelope, EnvelopeHeaders, EnvelopeParseError, Item, ItemType};
pub use event::{Event, Request, SdkInfo, SdkPackage, TransactionInfo, User, SDK_NAME, SDK_VERSION};
pub use exception::{Exception, Frame, LockReason, Mechanism, Stacktrace, Thread, Threads, Values};
pub use level::Level;
pub use log::{LogItem, LogLevel};
pub use span::{Attribute, AttributeValue, SpanStatus, SpanV2};
pub use time::{epoch_seconds, Timestamp};
