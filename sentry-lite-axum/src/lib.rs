//! # sentry-lite-axum
//!
//! axum / tower middleware for sentry-lite. For every request, [`SentryLayer`]:
//!
//! - runs the request in **its own hub** (a fork of the caller's: the bound hub,
//!   else the calling task's own, else the main hub; never what a runtime worker
//!   thread accumulated), bound to the request's future, so breadcrumbs, tags and
//!   the user of concurrent requests and background tasks never mix;
//! - puts the **request** (method, URL, query, headers) on the scope, PII-filtered
//!   (see *Privacy* below); bodies are never read;
//! - **continues the caller's trace** (`sentry-trace` and `baggage`; a lone
//!   `traceparent` gives the trace id but never the sampling decision), subject to
//!   the org check and `strict_trace_continuation` of
//!   [`sentry_lite_core::continue_trace`];
//! - records an **`http.server` segment span** named `{METHOD} {route}` (axum's
//!   matched route, else the URL path) that ends when the response body has been
//!   sent, or is marked cancelled when the client goes away first;
//! - **catches handler panics**, reports each once (fatal, `mechanism: panic`,
//!   linked to the span; with `sentry_lite_panic`'s hook installed, with the
//!   panic's stack trace and location) and answers `500`, so the server keeps serving.
//!
//! ```text
//! SentryService::call ── fork hub ── scope: request, propagation, segment span
//!        │
//!        ▼
//! ResponseFuture::poll ── inner future polled with the hub bound, inside catch_unwind
//!        │ response (or 500 after a panic)
//!        ▼
//! SentryBody ── span finished at end of stream / on drop
//! ```
//!
//! With the `reqwest` feature (default), [`outgoing::traced_send`] sends a reqwest
//! request in an `http.client` child span with the trace headers attached when
//! its URL matches `ClientOptions::trace_propagation_targets` (default: every URL;
//! `traceparent` only with `propagate_traceparent`).
//!
//! # Privacy
//!
//! Without `send_default_pii` (the default), an event captured during a request
//! carries: the method; the URL without its query; the query string with the
//! values of secret-looking keys (`token`, `password`, `key`, `auth`, `session`,
//! `sig`, `code`, ...) replaced by `[Filtered]` (every value with
//! `ClientOptions::scrub_all_query_values`); and only the allowlisted harmless
//! headers (`Accept*`, `Cache-Control`, `Content-*`, `Host`, `User-Agent`,
//! conditional and range headers, fetch metadata, client hints,
//! `X-Forwarded-Proto` and the trace headers; see
//! [`sentry_lite_core::is_harmless_header`]). Never without it: cookies,
//! `Authorization` and every other credential header (`X-Auth`, `X-Access-Key`,
//! `X-Signature`, ...), `Referer`, identities from auth proxies, the client IP
//! from the socket or any proxy header (`X-Forwarded-For`, `X-Real-IP`,
//! `CF-Connecting-IP`, `True-Client-IP`, ...). The `http.server` span carries
//! the method, path and route, the status code and, only with
//! `send_default_pii`, `client.address`. Request bodies are never read.
//!
//! # Example
//! ```no_run
//! use axum::{routing::get, Router};
//! use sentry_lite_axum::SentryLayer;
//!
//! # async fn run() {
//! let _guard = sentry_lite_core::init(
//!     sentry_lite_core::ClientOptions::from_env().with_traces_sample_rate(1.0),
//! );
//! let app = Router::new()
//!     .route("/users/{id}", get(|| async { "user" }))
//!     .layer(SentryLayer::new());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

mod body;
mod future;
mod layer;
mod panic;
mod request;
mod service;
mod state;

#[cfg(feature = "reqwest")]
pub mod outgoing;

pub use body::SentryBody;
pub use future::ResponseFuture;
pub use layer::SentryLayer;
pub use service::SentryService;
