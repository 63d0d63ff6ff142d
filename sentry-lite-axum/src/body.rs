//! The response body wrapper: the segment span ends when the body is done.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::{Body, Frame, SizeHint};

use crate::state::SpanGuard;

pin_project_lite::pin_project! {
    /// A response body that finishes the request's `http.server` span when it has
    /// been sent completely, or when it is dropped (client gone, server shut down).
    ///
    /// After a caught handler panic it is an empty body.
    pub struct SentryBody<B> {
        #[pin]
        inner: Option<B>,
        guard: Option<SpanGuard>,
    }
}

impl<B> SentryBody<B> {
    pub(crate) fn new(inner: B, guard: Option<SpanGuard>) -> Self {
        Self { inner: Some(inner), guard }
    }

    pub(crate) fn empty(guard: Option<SpanGuard>) -> Self {
        Self { inner: None, guard }
    }
}

impl<B> fmt::Debug for SentryBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentryBody").field("empty", &self.inner.is_none()).field("open", &self.guard.is_some()).finish()
    }
}

impl<B: Body> Body for SentryBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            if let Some(mut g) = this.guard.take() {
                g.finish();
            }
            return Poll::Ready(None);
        };
        let frame = ready!(inner.poll_frame(cx));
        match &frame {
            None => {
                if let Some(mut g) = this.guard.take() {
                    g.finish();
                }
            }
            Some(Err(_)) => {
                if let Some(mut g) = this.guard.take() {
                    if let Some(span) = g.span() {
                        span.set_status(sentry_lite_core::protocol::SpanStatus::InternalError);
                        span.set_attribute("http.response.body_error", true);
                    }
                    g.finish();
                }
            }
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
