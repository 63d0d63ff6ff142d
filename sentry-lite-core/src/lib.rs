//! # sentry-lite-core
//!
//! A Sentry SDK core built for async Rust services: task-local scopes, streamed
//! spans and a hot path that only snapshots and enqueues.
//!
//! ```text
//! app thread / task                          worker thread (one per client)
//! capture_error / capture_message ──┐
//!   current Hub (task-local → task id → thread → main)
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
//!
//! # Trace propagation
//!
//! Incoming traces are continued with [`continue_trace`] (the axum layer does it
//! per request): `sentry-trace` and `baggage` decide; a W3C `traceparent` alone
//! gives the trace and parent span but never the sampling decision. Baggage
//! without a valid `sentry-public_key` is not a dynamic sampling context (this
//! service then heads the trace), values that do not parse are dropped, and other
//! vendors' baggage is never forwarded. A caller from another Sentry organization
//! (its `sentry-org_id` differs from [`ClientOptions::org_id`], else the DSN's) is
//! not continued; with [`ClientOptions::strict_trace_continuation`] a trace is
//! continued only when both org ids are known and equal (or both unknown).
//!
//! Outgoing requests get `sentry-trace` and `baggage` from [`trace_headers_for`]
//! (the reqwest helper calls it) when their URL matches
//! [`ClientOptions::trace_propagation_targets`] (default: every URL), plus
//! `traceparent` with [`ClientOptions::propagate_traceparent`] (off by default).
//! `baggage` carries the trace id, this DSN's public key, the sample rate and
//! random value, the decision, release, environment, org id and the route-style
//! name of the current segment (never a raw URL): limit the targets to your own
//! services when you call third parties.
//!
//! # Privacy
//!
//! With [`ClientOptions::send_default_pii`] off (the default), this is what
//! leaves the process about an HTTP request (whoever put it on the scope):
//!
//! * method, URL without its query, and the route;
//! * the query string, with the values of secret-looking keys (`token`,
//!   `password`, `key`, `auth`, `session`, `sig`, `code`, ... see
//!   [`is_secret_key`]) replaced by `[Filtered]`; every value with
//!   [`ClientOptions::scrub_all_query_values`];
//! * only the headers on an allowlist of harmless ones ([`is_harmless_header`]:
//!   `Accept*`, `Cache-Control`, `Content-Type`/`-Length`/`-Encoding`, `Host`,
//!   `User-Agent`, conditional and range headers, fetch metadata and client hints,
//!   `X-Forwarded-Proto`, the trace headers). No `Authorization`, `Cookie`,
//!   `Referer`, client-address headers (`X-Forwarded-For`, `CF-Connecting-IP`,
//!   `True-Client-IP`, ...), auth-proxy identities or vendor keys;
//! * no cookies, no body, no client IP (neither in the request nor as the user's
//!   `ip_address`, nor as `client.address` on spans), and no `user.*` attributes
//!   on spans.
//!
//! Events also carry what your code sets (tags, contexts, breadcrumbs, the user
//! you set), the server name (the host name), the OS and runtime, and stack
//! traces with function names and file paths. With `send_default_pii` on,
//! headers, cookies, the full query string and the client IP are sent as
//! received.

mod api;
mod client;
mod contexts;
mod deadline;
mod dsn;
mod error_chain;
mod hub;
pub(crate) mod ids;
mod integration;
mod limits;
mod options;
mod pipeline;
mod privacy;
pub mod protocol;
mod scope;
mod stacktrace;
mod task_hubs;
#[cfg(feature = "test")]
#[path = "test_support.rs"]
pub mod test;
pub mod trace;
pub mod transport;
// The one module allowed `unsafe` (see its docs): in-process stack unwinding.
#[allow(unsafe_code)]
mod unwind;
mod worker;

pub use api::{
    add_breadcrumb, add_breadcrumb_with, capture_envelope, capture_error, capture_error_dyn, capture_event,
    capture_event_with_backtrace, capture_message, configure_scope, flush, init, is_enabled, last_event_id, set_user,
    with_scope, InitError, InitGuard,
};
pub use client::{Client, FlushHook};
pub use dsn::{Dsn, DsnParseError};
pub use error_chain::exceptions_from_error;
pub use hub::{configure_global_scope, spawn, spawn_thread, FutureExt, Hub, HubFuture};
pub use ids::{EventId, ParseIdError, SpanId, TraceId};
pub use integration::Integration;
pub use options::{
    BeforeBreadcrumb, BeforeSend, BeforeSendSpan, ClientOptions, SpanPattern, TraceLifecycle, TracesSampler,
};
pub use pipeline::is_sensitive_header;
pub use privacy::{is_harmless_header, is_secret_key, scrub_query};
pub use protocol::{Breadcrumb, Event, Level, User, SDK_NAME, SDK_VERSION};
pub use scope::{EventProcessor, Scope};
pub use stacktrace::{InAppRules, RawBacktrace};
pub use trace::propagation::TracePropagationTargets;
pub use trace::{
    continue_trace, current_span, current_span_if_active, enter_span, pop_entered_span, push_entered_span,
    start_root_span, start_root_span_with, start_root_span_with_attributes, start_span, trace, trace_headers,
    trace_headers_for, AttributeKey, EnteredSpan, PropagationContext, SamplingContext, Span, SpanFutureExt, Traced,
};
pub use transport::{InboxTransport, NoopTransport, SendOutcome, TestTransport, Transport, TransportFactory};
