//! `tracing` integration for sentry-lite.
//!
//! Coming: a tracing-subscriber layer that turns events into breadcrumbs, events and
//! logs, and spans into streamed Sentry spans.
