//! # sentry-lite-core
//!
//! A Sentry SDK core built for async Rust services: task-local scopes, streamed
//! spans and a hot path that only snapshots and enqueues.
//!
//! ```text
//! app thread / task                          worker thread (one per client)
//! capture_error / capture_message ──┐
//!   current Hub (task-local → thread → main)
//!   Arc snapshot of the three scopes │  bounded queue, try_send
//!   unresolved backtrace ────────────┴──────────────► symbolicate, apply scopes,
//! span.finish() ──► span buffer (by trace) ─────────► processors, before_send,
//!                                                     serialize, rate limits, gzip,
//!                                                     HTTP, client reports
//! ```
//!
//! Capture functions never block, never panic and never return errors; what is
//! dropped is counted and reported to Sentry in client reports.
//!
//! # Example
//! ```
//! use sentry_lite_core::{ClientOptions, Level};
//!
//! // Reads SENTRY_DSN; without it the SDK is disabled and every call is a no-op.
//! let _guard = sentry_lite_core::init(ClientOptions::from_env()).expect("valid DSN");
//! sentry_lite_core::configure_scope(|scope| scope.set_tag("component", "billing"));
//! sentry_lite_core::add_breadcrumb("loaded config");
//! if let Err(err) = std::fs::read("/definitely/missing") {
//!     sentry_lite_core::capture_error(&err);
//! }
//! sentry_lite_core::capture_message("done", Level::Info);
//! ```

mod api;
mod client;
mod contexts;
mod dsn;
mod error_chain;
mod hub;
pub(crate) mod ids;
mod integration;
mod limits;
mod options;
mod pipeline;
pub mod protocol;
mod scope;
mod stacktrace;
// The one module allowed `unsafe` (see its docs): in-process stack unwinding.
#[cfg(feature = "test")]
#[path = "test_support.rs"]
pub mod test;
pub mod trace;
pub mod transport;
#[allow(unsafe_code)]
mod unwind;

pub use api::{
    add_breadcrumb, add_breadcrumb_with, capture_envelope, capture_error, capture_error_dyn, capture_event,
    capture_event_with_backtrace, capture_message, configure_scope, flush, init, is_enabled, last_event_id, set_user,
    with_scope, InitError, InitGuard,
};
pub use client::{Client, FlushHook, SDK_NAME, SDK_VERSION};
pub use dsn::{Dsn, DsnParseError};
pub use error_chain::exceptions_from_error;
pub use hub::{configure_global_scope, spawn, spawn_thread, FutureExt, Hub, HubFuture};
pub use ids::{EventId, ParseIdError, SpanId, TraceId};
pub use integration::Integration;
pub use options::{
    BeforeBreadcrumb, BeforeSend, BeforeSendSpan, ClientOptions, SpanPattern, TraceLifecycle, TracesSampler,
};
pub use pipeline::is_sensitive_header;
pub use protocol::{Breadcrumb, Event, Level, User};
pub use scope::{EventProcessor, Scope};
pub use stacktrace::{InAppRules, RawBacktrace};
pub use trace::propagation::TracePropagationTargets;
pub use trace::{
    continue_trace, current_span, current_span_if_active, enter_span, pop_entered_span, push_entered_span,
    start_root_span, start_root_span_with, start_root_span_with_attributes, start_span, trace, trace_headers,
    trace_headers_for, AttributeKey, EnteredSpan, PropagationContext, SamplingContext, Span, SpanFutureExt, Traced,
};
pub use transport::{InboxTransport, NoopTransport, SendOutcome, TestTransport, Transport, TransportFactory};
