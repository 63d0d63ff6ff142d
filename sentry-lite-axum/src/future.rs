//! The response future: polls the handler in the request's hub, catches panics.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use sentry_lite_core::HubFuture;

use crate::body::SentryBody;
use crate::state::RequestState;

pin_project_lite::pin_project! {
    /// Response future of [`SentryService`](crate::SentryService).
    ///
    /// Holds the request's hub and segment span; dropping it before the response
    /// is ready records the request as cancelled.
    pub struct ResponseFuture<F> {
        // Declared first so the handler's own spans end before the segment.
        #[pin]
        inner: Option<HubFuture<F>>,
        state: Option<RequestState>,
        // `call` itself panicked: answer 500 at the first poll.
        call_panicked: bool,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: HubFuture<F>, state: Option<RequestState>) -> Self {
        Self { inner: Some(inner), state, call_panicked: false }
    }

    pub(crate) fn panicked(state: Option<RequestState>) -> Self {
        Self { inner: None, state, call_panicked: true }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").field("done", &self.inner.is_none()).finish_non_exhaustive()
    }
}

fn internal_error<B>(state: Option<RequestState>) -> http::Response<SentryBody<B>> {
    let guard = state.and_then(|mut s| s.on_panic());
    let mut response = http::Response::new(SentryBody::empty(guard));
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<SentryBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(inner) = this.inner.as_mut().as_pin_mut() else {
            if std::mem::take(this.call_panicked) {
                return Poll::Ready(Ok(internal_error(this.state.take())));
            }
            panic!("ResponseFuture polled after completion");
        };
        match crate::panic::catch(|| inner.poll(cx)) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => {
                this.inner.set(None);
                let state = this.state.take();
                Poll::Ready(match result {
                    Ok(response) => {
                        let guard = state.and_then(|s| s.on_response(&response));
                        Ok(response.map(|body| SentryBody::new(body, guard)))
                    }
                    Err(e) => {
                        if let Some(s) = state {
                            s.on_error();
                        }
                        Err(e)
                    }
                })
            }
            Err(payload) => {
                // Dropping a future that panicked may panic again; contain that too.
                let _ = crate::panic::catch(|| this.inner.set(None));
                if let Some(hub) = this.state.as_ref().and_then(RequestState::hub) {
                    crate::panic::report(hub, &*payload);
                }
                Poll::Ready(Ok(internal_error(this.state.take())))
            }
        }
    }
}
