//! Which span is current.
//!
//! Lookup order: the thread's *entered* stack (spans entered synchronously with
//! [`enter_span`], by the `tracing` layer, or for the duration of one poll of a
//! future run [`in_span`](super::SpanFutureExt::in_span)), else the active span of
//! the current hub's scope (task-local hub, thread hub, main hub). Because every
//! poll of a span-bound future pushes its span, the innermost span always wins,
//! whatever mix of futures, closures and `tracing` spans is running.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::hub::{Hub, EVER_ENABLED};
use crate::ids::SpanId;

use super::Span;

thread_local! {
    static ENTERED: RefCell<Vec<Span>> = const { RefCell::new(Vec::new()) };
}

/// The span currently running, if any.
///
/// # Examples
/// ```
/// let span = sentry_lite_core::start_span("work", "task");
/// let _entered = sentry_lite_core::enter_span(&span);
/// assert_eq!(sentry_lite_core::current_span().unwrap().span_id(), span.span_id());
/// ```
pub fn current_span() -> Option<Span> {
    if let Some(span) = entered_span() {
        return Some(span);
    }
    if !EVER_ENABLED.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    Hub::with_current(|hub| hub.read_scope(|s| s.span.clone()))
}

/// The innermost entered span of this thread.
pub(crate) fn entered_span() -> Option<Span> {
    ENTERED.try_with(|stack| stack.try_borrow().ok().and_then(|s| s.last().cloned())).ok().flatten()
}

/// Pushes `span` on this thread's entered stack: it becomes current until
/// [`pop_entered_span`] with its id. Allocation-free once the stack has grown.
/// Meant for integrations with enter/exit callbacks (the `tracing` layer).
pub fn push_entered_span(span: Span) {
    let _ = ENTERED.try_with(|stack| {
        if let Ok(mut s) = stack.try_borrow_mut() {
            s.push(span);
        }
    });
}

/// Removes the innermost entry of the span with this id from the entered stack
/// (tolerates out-of-order exits). The removed clone is dropped outside the borrow.
pub fn pop_entered_span(id: SpanId) {
    let removed = ENTERED
        .try_with(|stack| {
            let mut s = stack.try_borrow_mut().ok()?;
            if s.last().is_some_and(|top| top.span_id() == id) {
                return s.pop();
            }
            let pos = s.iter().rposition(|x| x.span_id() == id)?;
            Some(s.remove(pos))
        })
        .ok()
        .flatten();
    // Dropping may finish the span, which must not happen while the stack is borrowed.
    drop(removed);
}

/// Makes `span` current on this thread until the guard drops.
///
/// # Examples
/// ```
/// let span = sentry_lite_core::start_span("parse", "function");
/// {
///     let _guard = sentry_lite_core::enter_span(&span);
///     let child = sentry_lite_core::start_span("inner", "function");
///     assert_eq!(child.parent_span_id(), Some(span.span_id()));
/// }
/// span.finish();
/// ```
pub fn enter_span(span: &Span) -> EnteredSpan {
    push_entered_span(span.clone());
    EnteredSpan { id: span.span_id(), _not_send: PhantomData }
}

/// Guard of [`enter_span`]; leaves the span on drop. Not `Send`: it must drop on
/// the thread that entered.
#[derive(Debug)]
#[must_use = "the span is current only while the guard lives"]
pub struct EnteredSpan {
    id: SpanId,
    _not_send: PhantomData<*const ()>,
}

impl Drop for EnteredSpan {
    fn drop(&mut self) {
        pop_entered_span(self.id);
    }
}
