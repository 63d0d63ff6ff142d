//! Per-request state: the request's hub and its `http.server` segment span.
//!
//! It lives in the response future and then in the response body, never in the
//! service, so a request leaves nothing behind once its response is sent.

use std::sync::Arc;

use axum::extract::MatchedPath;
use sentry_lite_core::protocol::SpanStatus;
use sentry_lite_core::Hub;
use sentry_lite_core::Span;

/// Finishes the segment span (in the request's hub) when dropped.
#[derive(Debug)]
pub(crate) struct SpanGuard {
    hub: Arc<Hub>,
    span: Option<Span>,
}

impl SpanGuard {
    pub(crate) fn new(hub: Arc<Hub>, span: Span) -> Self {
        Self { hub, span: Some(span) }
    }

    pub(crate) fn span(&self) -> Option<&Span> {
        self.span.as_ref()
    }

    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Finishes the span now; later calls do nothing.
    pub(crate) fn finish(&mut self) {
        if let Some(span) = self.span.take() {
            // The segment applies the scopes of the hub it was started in: no need
            // to bind that hub here.
            span.finish();
        }
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The state of a request whose response has not been produced yet. Dropped
/// before [`RequestState::into_guard`] means the request was cancelled (client
/// gone, or an outer timeout).
#[derive(Debug)]
pub(crate) struct RequestState {
    guard: Option<SpanGuard>,
    method: http::Method,
    route_known: bool,
}

impl RequestState {
    pub(crate) fn new(guard: SpanGuard, method: http::Method, route_known: bool) -> Self {
        Self { guard: Some(guard), method, route_known }
    }

    pub(crate) fn hub(&self) -> Option<&Arc<Hub>> {
        self.guard.as_ref().map(SpanGuard::hub)
    }

    fn span(&self) -> Option<&Span> {
        self.guard.as_ref().and_then(SpanGuard::span)
    }

    /// Records the response on the span; the guard then goes with the body.
    pub(crate) fn on_response<B>(mut self, response: &http::Response<B>) -> Option<SpanGuard> {
        if !self.route_known {
            if let Some(route) = response.extensions().get::<MatchedPath>() {
                self.name_after_route(route.as_str());
            }
        }
        self.record_status(response.status().as_u16());
        self.guard.take()
    }

    /// The inner service failed without a response.
    pub(crate) fn on_error(mut self) {
        if let Some(span) = self.span() {
            span.set_status(SpanStatus::InternalError);
        }
        self.guard.take();
    }

    /// The handler panicked; a 500 is sent.
    pub(crate) fn on_panic(&mut self) -> Option<SpanGuard> {
        self.record_status(500);
        self.guard.take()
    }

    fn record_status(&self, status: u16) {
        if let Some(span) = self.span() {
            span.set_attribute("http.response.status_code", i64::from(status));
            if status >= 500 {
                span.set_status(SpanStatus::from_http_status(status));
            }
        }
    }

    fn name_after_route(&mut self, route: &str) {
        let name = crate::service::span_name(self.method.as_str(), route);
        if let Some(guard) = &self.guard {
            if let Some(span) = guard.span() {
                span.set_name(name.clone());
                span.set_source("route");
                span.set_attribute("http.route", route);
            }
            guard.hub().configure_scope(|s| s.set_transaction(Some(&name)));
        }
        self.route_known = true;
    }
}

impl Drop for RequestState {
    fn drop(&mut self) {
        // Still holding the guard: the future was dropped before a response.
        if let Some(span) = self.span() {
            span.set_status(SpanStatus::Cancelled);
            span.set_attribute("http.request.cancelled", true);
        }
    }
}
