//! Running work inside a span: [`trace`] for closures and futures, and
//! [`SpanFutureExt::in_span`].
//!
//! A future run in a span gets its own forked hub (so its scope changes and the
//! tasks it spawns see the span) and pushes the span on the thread's entered stack
//! for the duration of each poll (so the innermost span wins over `tracing` spans
//! or sync spans entered around the poll). Concurrent futures under `join!` each
//! see their own span.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::hub::{FutureExt, Hub, HubFuture};

use super::context::{enter_span, pop_entered_span, push_entered_span};
use super::{start_span, Span};

/// Marker for [`Traced`] work that is a closure.
#[derive(Debug)]
pub enum SyncWork {}

/// Marker for [`Traced`] work that is a future.
#[derive(Debug)]
pub enum AsyncWork {}

/// Work [`trace`] can run in a span: a closure `FnOnce() -> R` (run at once) or a
/// future (returns a future to await).
pub trait Traced<M> {
    /// What [`trace`] returns.
    type Output;
    /// Runs the work with `span` current, finishing it when the work is done.
    fn run_in(self, span: Span) -> Self::Output;
}

impl<F: FnOnce() -> R, R> Traced<SyncWork> for F {
    type Output = R;

    fn run_in(self, span: Span) -> R {
        struct Finish(Span);
        impl Drop for Finish {
            fn drop(&mut self) {
                self.0.finish();
            }
        }
        let finish = Finish(span);
        let _entered = enter_span(&finish.0);
        self()
    }
}

impl<Fut: Future> Traced<AsyncWork> for Fut {
    type Output = TracedFuture<Fut>;

    fn run_in(self, span: Span) -> TracedFuture<Fut> {
        TracedFuture { finish: Some(span.clone()), inner: self.in_span(span) }
    }
}

/// Runs `work` (a closure or a future) in a new span named `name` with op `op`:
/// a child of the current span, else a new segment. The span is current while
/// the work runs and finishes when it is done (or dropped).
///
/// # Examples
/// ```
/// let n = sentry_lite_core::trace("compute", "function", || 6 * 7);
/// assert_eq!(n, 42);
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let body = sentry_lite_core::trace("GET /", "http.client", async { "ok" }).await;
/// assert_eq!(body, "ok");
/// # });
/// ```
pub fn trace<M, W: Traced<M>>(name: &str, op: &str, work: W) -> W::Output {
    work.run_in(start_span(name, op))
}

pin_project_lite::pin_project! {
    /// A future polled with a span current; see [`SpanFutureExt::in_span`].
    #[derive(Debug)]
    pub struct InSpan<F> {
        span: Span,
        #[pin]
        inner: HubFuture<F>,
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let id = this.span.span_id();
        push_entered_span(this.span.clone());
        struct Pop(crate::ids::SpanId);
        impl Drop for Pop {
            fn drop(&mut self) {
                pop_entered_span(self.0);
            }
        }
        let _pop = Pop(id);
        this.inner.poll(cx)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`trace`]: finishes its span when the work completes.
    #[derive(Debug)]
    pub struct TracedFuture<F> {
        finish: Option<Span>,
        #[pin]
        inner: InSpan<F>,
    }
}

impl<F: Future> Future for TracedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = this.inner.poll(cx);
        if out.is_ready() {
            if let Some(span) = this.finish.take() {
                span.finish();
            }
        }
        out
    }
}

/// Runs futures with a span current.
pub trait SpanFutureExt: Future + Sized {
    /// Polls this future with `span` as the current span, in a hub forked from the
    /// current one (whose scope holds the span, so spawned tasks inherit it).
    /// Does not finish the span.
    ///
    /// # Examples
    /// ```
    /// use sentry_lite_core::SpanFutureExt;
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let span = sentry_lite_core::start_root_span("job", "queue.process");
    /// let child = async { sentry_lite_core::start_span("step", "function") }.in_span(span.clone()).await;
    /// assert_eq!(child.parent_span_id(), Some(span.span_id()));
    /// # });
    /// ```
    fn in_span(self, span: Span) -> InSpan<Self> {
        let hub = Hub::with_current(|h| Arc::new(Hub::fork_current(h)));
        hub.configure_scope(|s| s.set_span(Some(span.clone())));
        if let Some(segment) = span.segment() {
            if segment.span_id == span.span_id() {
                segment.set_hub(&hub);
            }
        }
        InSpan { span, inner: self.bind_hub(hub) }
    }
}

impl<F: Future> SpanFutureExt for F {}
