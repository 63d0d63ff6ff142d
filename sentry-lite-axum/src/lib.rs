//! axum / tower integration for sentry-lite.
//!
//! Coming: a tower `Layer` giving every request its own isolation scope, an
//! `http.server` segment span continuing the caller's trace, and panic capture.
