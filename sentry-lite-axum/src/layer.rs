//! The tower [`Layer`] that wraps services in [`SentryService`].

use tower_layer::Layer;

use crate::service::SentryService;

/// Gives every request its own Sentry scope, continues the caller's trace and
/// records an `http.server` segment span; catches handler panics and turns them
/// into `500` responses after reporting them once.
///
/// The layer holds no per-request state: everything a request needs lives in its
/// response future and response body, so nothing grows with traffic.
///
/// Works with [`axum::Router::layer`], [`axum::Router::route_layer`] and
/// `tower::ServiceBuilder`, in any order relative to other layers.
///
/// # Examples
/// ```
/// use axum::{routing::get, Router};
/// use sentry_lite_axum::SentryLayer;
///
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "hello" }))
///     .layer(SentryLayer::new());
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SentryLayer {}

impl SentryLayer {
    /// A layer with the default behaviour.
    #[must_use]
    pub fn new() -> Self {
        Self {}
    }
}

impl<S> Layer<S> for SentryLayer {
    type Service = SentryService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SentryService::new(inner)
    }
}
