//! What marks a poll for the watchdog: a future wrapper, a tower layer that wraps
//! every request's future, and runtime hooks.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::heartbeat::{self, PollGuard, RequestIds};

pin_project! {
    /// A future whose every poll the watchdog times (see [`WatchExt::watched`]).
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Watched<F> {
        #[pin]
        inner: F,
        // The request's trace and span, read at the first poll (inside the
        // request's hub); `Some(None)` when there is none.
        request: Option<Option<RequestIds>>,
    }
}

impl<F> Watched<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> Self {
        Self { inner, request: None }
    }
}

impl<F: Future> Future for Watched<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let request = *this.request.get_or_insert_with(|| {
            sentry_lite_core::current_span_if_active()
                .flatten()
                .map(|span| (span.trace_id().as_int(), span.span_id().as_int()))
        });
        let _guard = PollGuard::start(request);
        this.inner.poll(cx)
    }
}

/// Marks futures for the watchdog: a poll of a [`Watched`] future that does not
/// return within the threshold is reported as a stall, with the polling thread's
/// stack.
///
/// # Examples
/// ```
/// use sentry_lite_watchdog::WatchExt;
///
/// # async fn serve() {}
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(serve().watched());
/// ```
pub trait WatchExt: Future + Sized {
    /// Times every poll of this future (the outermost of nested watched futures).
    fn watched(self) -> Watched<Self> {
        Watched::new(self)
    }
}

impl<F: Future> WatchExt for F {}

/// A tower layer that watches every request's future: a handler that blocks its
/// worker thread is reported.
///
/// # Examples
/// ```
/// use axum::{routing::get, Router};
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "ok" }))
///     .layer(sentry_lite_watchdog::WatchdogLayer::new());
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct WatchdogLayer;

impl WatchdogLayer {
    /// The layer.
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for WatchdogLayer {
    type Service = WatchdogService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WatchdogService { inner }
    }
}

/// The service of [`WatchdogLayer`].
#[derive(Debug, Clone)]
pub struct WatchdogService<S> {
    inner: S,
}

impl<S: Service<R>, R> Service<R> for WatchdogService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = Watched<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        Watched::new(self.inner.call(request))
    }
}

/// Adds the watchdog's hooks to a tokio runtime builder: its threads report
/// `name` as their runtime, and with `--cfg tokio_unstable` every task poll is
/// timed (no [`Watched`] wrapper needed).
///
/// # Examples
/// ```
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// sentry_lite_watchdog::instrument_runtime(&mut builder, "api");
/// let runtime = builder.enable_all().build().unwrap();
/// # drop(runtime);
/// ```
pub fn instrument_runtime(builder: &mut tokio::runtime::Builder, name: impl Into<Cow<'static, str>>) {
    let name: Cow<'static, str> = name.into();
    let for_threads = name.clone();
    builder.on_thread_start(move || heartbeat::set_runtime(for_threads.clone()));
    // `block_on` of a current-thread runtime runs on the caller's thread, which
    // never starts through the builder: name it when it first parks.
    builder.on_thread_park(move || heartbeat::set_runtime_once(&name));
    #[cfg(tokio_unstable)]
    {
        builder.on_before_task_poll(|_| {
            heartbeat::poll_start(None);
        });
        builder.on_after_task_poll(|_| heartbeat::poll_end());
    }
}
