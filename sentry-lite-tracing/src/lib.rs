//! `tracing` integration for sentry-lite: a `tracing-subscriber` layer.
//!
//! ```text
//! tracing::info!/warn!  ──► breadcrumb on the current unit of work
//! tracing::error!       ──► Sentry event (message, fields as extra, `error` field
//!                           → exception chain + stack trace); the span → status error
//! any event (opt-in)    ──► structured log, batched ≤ 100 per envelope every 5 s
//! tracing spans         ──► streamed Sentry spans, parents from tracing's span tree;
//!                           entering one makes it the SDK's current span
//! ```
//!
//! Span conventions: the field `sentry.name` (or `otel.name`) renames a span,
//! the field `sentry.op` sets its `sentry.op` (default [`DEFAULT_SPAN_OP`]); other
//! fields become typed attributes and `Span::record` updates them.
//!
//! Logs are sent when `ClientOptions::enable_logs` is set (or
//! [`SentryLayer::enable_logs`]); each carries the trace and span ids of the span it
//! was emitted in, the message as `sentry.message.template` with the fields as
//! `sentry.message.parameter.<field name>` (and as attributes by name), and the default
//! attributes (`sentry.environment`, `sentry.release`, `sentry.sdk.*`, `server.address`).
//!
//! # Example
//! ```
//! use tracing_subscriber::prelude::*;
//!
//! let _guard = sentry_lite_core::init(sentry_lite_core::ClientOptions::from_env()).unwrap();
//! tracing_subscriber::registry().with(sentry_lite_tracing::layer()).init();
//!
//! #[tracing::instrument(fields(sentry.op = "db.query"))]
//! fn load(id: u64) {
//!     tracing::info!(id, "loading");
//! }
//! load(7);
//! ```

mod fields;
mod filter;
mod layer;
mod logs;
mod span_fields;

pub use filter::{default_event_filter, EventFilter};
pub use layer::{layer, SentryLayer, DEFAULT_SPAN_OP, SPAN_ORIGIN};
pub use logs::LogFlusher;
