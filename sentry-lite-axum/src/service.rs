//! The tower [`Service`] that runs each request in its own hub and segment span.

use std::sync::Arc;
use std::task::{Context, Poll};

use sentry_lite_core::{FutureExt as _, Hub};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::request::{Incoming, RawRequest};
use crate::state::{RequestState, SpanGuard};

/// The service built by [`SentryLayer`](crate::SentryLayer).
///
/// Holds only the inner service: all per-request state lives in the returned
/// [`ResponseFuture`] and the response's [`SentryBody`](crate::SentryBody).
#[derive(Debug, Clone)]
pub struct SentryService<S> {
    inner: S,
}

impl<S> SentryService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Consumes the wrapper, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for SentryService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<crate::SentryBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        // A fork of the caller's hub (a bound one, or its task's own): never of
        // what the runtime worker thread running the connection accumulated.
        let hub = Hub::new_unit();
        let inner = &mut self.inner;
        // One binding of the request's hub for both: the root span is started in
        // it, and synchronous work in the inner `call` sees it. The request and
        // the future go through slots, not through the closures' captures and
        // return values: each of those would be another copy of them.
        let mut req = Some(req);
        let mut future = None;
        let mut state = None;
        let caught = Hub::run(hub.clone(), || {
            if let Some(r) = &req {
                state = start_request(&hub, r);
            }
            crate::panic::catch(|| {
                if let Some(r) = req.take() {
                    future = Some(inner.call(r));
                }
            })
        });
        match (caught, future) {
            (Ok(()), Some(future)) => ResponseFuture::new(future.bind_hub(hub), state),
            (Err(payload), _) => {
                crate::panic::report(&hub, &*payload);
                ResponseFuture::panicked(state)
            }
            // Not reached: `call` ran unless it panicked.
            (Ok(()), None) => ResponseFuture::panicked(state),
        }
    }
}

/// Sets the request's scope up and starts its segment span (`hub` must be the
/// current hub); `None` while the SDK is disabled (the request still runs in its
/// own hub).
fn start_request<B>(hub: &Arc<Hub>, req: &http::Request<B>) -> Option<RequestState> {
    let send_default_pii = hub.with_client(|c| c.is_enabled().then(|| c.options().send_default_pii))??;
    let incoming = Incoming::read(req, send_default_pii);
    // Copied now (the request moves into the handler), turned into the event's
    // `request` interface only if an event is captured.
    let (raw, trace_headers) = RawRequest::read(req, send_default_pii, incoming.client_ip.clone());
    let method = req.method();
    let (target, source) = match incoming.route {
        Some(route) => (route, "route"),
        None => (incoming.path, "url"),
    };
    let name = span_name(method.as_str(), target);

    // Without trace headers the root span starts a new trace by itself; a context
    // is only needed to continue one, or to shadow one the parent scopes carry
    // (each request is its own trace).
    let incoming_trace = trace_headers.iter().any(Option::is_some);
    let propagation = incoming_trace
        .then(|| sentry_lite_core::continue_trace(trace_headers.iter().flatten().map(|(k, v)| (*k, v.as_ref()))));
    let inherited = hub.configure_isolation_scope(|scope| {
        if let Some(ip) = &incoming.client_ip {
            let mut user = scope.user().cloned().unwrap_or_default();
            if user.ip_address.is_none() {
                user.ip_address = Some(ip.clone());
                scope.set_user(Some(user));
            }
        }
        scope.propagation().is_some()
    });
    hub.configure_scope(|scope| {
        match propagation {
            Some(p) => scope.set_propagation(p),
            None if inherited || scope.propagation().is_some() => {
                scope.set_propagation(sentry_lite_core::PropagationContext::new_random())
            }
            None => {}
        }
        scope.set_request_with(move || raw.build());
        scope.set_transaction(Some(&name));
    });

    // Origin given as a static string: no lookup, no lock.
    let span = sentry_lite_core::start_root_span_with(name, "http.server", "auto.http.axum", Vec::new());
    span.set_source(source);
    span.set_attribute("http.request.method", method.as_str());
    span.set_attribute("url.path", incoming.path);
    if let Some(route) = incoming.route {
        span.set_attribute("http.route", route);
    }
    if let Some(ip) = &incoming.client_ip {
        span.set_attribute("client.address", ip.as_str());
    }
    hub.configure_scope(|scope| scope.set_span(Some(span.clone())));
    let route_known = incoming.route.is_some();
    Some(RequestState::new(SpanGuard::new(hub.clone(), span), method.clone(), route_known))
}

/// `{METHOD} {target}`, the segment span's and the transaction's name.
pub(crate) fn span_name(method: &str, target: &str) -> String {
    let mut name = String::with_capacity(method.len() + 1 + target.len());
    name.push_str(method);
    name.push(' ');
    name.push_str(target);
    name
}
