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

use crate::hub::{lookup, Access, EVER_ENABLED};
use crate::ids::SpanId;

use super::Span;

thread_local! {
    /// Entered spans, innermost last, each with the integration key it was pushed
    /// under (`NO_KEY` for the core's own guards and futures).
    static ENTERED: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
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
    lookup(Access::Read, |hub| hub.read_scope(|s| s.span.clone()))
}

/// For integrations that start spans (the `tracing` layer): `None` when no
/// enabled client is bound where this thread would capture, else the current
/// span if any. One hub lookup answers both.
#[doc(hidden)]
pub fn current_span_if_active() -> Option<Option<Span>> {
    if !EVER_ENABLED.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    lookup(Access::Read, |hub| {
        if !hub.is_active() {
            return None;
        }
        Some(entered_span().or_else(|| hub.read_scope(|s| s.span.clone())))
    })
}

/// An integration's own name for an entry: `(its instance, its id of the span)`.
type EntryKey = (u64, u64);
const NO_KEY: EntryKey = (0, 0);

/// One entered span. The key comes first: exits compare it without touching the span.
struct Entry {
    key: EntryKey,
    span: Span,
}

/// The innermost entered span of this thread.
pub(crate) fn entered_span() -> Option<Span> {
    ENTERED.try_with(|stack| stack.try_borrow().ok().and_then(|s| s.last().map(|e| e.span.clone()))).ok().flatten()
}

/// Pushes `span` on this thread's entered stack: it becomes current until
/// [`pop_entered_span`] with its id. Allocation-free once the stack has grown.
/// Meant for integrations with enter/exit callbacks (the `tracing` layer).
pub fn push_entered_span(span: Span) {
    let _ = ENTERED.try_with(|stack| {
        if let Ok(mut s) = stack.try_borrow_mut() {
            s.push(Entry { key: NO_KEY, span });
        }
    });
}

/// Removes the innermost entry of the span with this id from the entered stack
/// (tolerates out-of-order exits).
pub fn pop_entered_span(id: SpanId) {
    pop(|e| e.span.span_id() == id);
}

impl Span {
    /// [`push_entered_span`] under an integration's key `(owner, id)`, so that
    /// [`Span::exit_keyed`] can leave it without looking the span up again: the
    /// `tracing` layer's exit then touches none of the registry's locks (a
    /// poisoned one would panic, and exits run while unwinding).
    #[doc(hidden)]
    pub fn enter_keyed(&self, owner: u64, id: u64) {
        push_clone(self, (owner, id));
    }

    /// Removes the innermost entry pushed by [`Span::enter_keyed`] under `(owner, id)`.
    ///
    /// The innermost entry is dropped in place, under the stack's borrow: the
    /// integration still holds the span (a `tracing` span cannot close while
    /// entered), so this drop only decrements a count and never finishes it.
    #[doc(hidden)]
    pub fn exit_keyed(owner: u64, id: u64) {
        let key = (owner, id);
        let removed = ENTERED
            .try_with(|stack| {
                let mut s = stack.try_borrow_mut().ok()?;
                let len = s.len();
                if len > 0 && s[len - 1].key == key {
                    s.truncate(len - 1);
                    return None;
                }
                pop_inner(&mut s, |e| e.key == key)
            })
            .ok()
            .flatten();
        drop(removed);
    }
}

/// Pushes a clone of `span`, made straight into the stack's slot (no moves of it).
fn push_clone(span: &Span, key: EntryKey) {
    let _ = ENTERED.try_with(|stack| {
        if let Ok(mut s) = stack.try_borrow_mut() {
            s.push(Entry { key, span: span.clone() });
        }
    });
}

/// Removes the innermost entry matching `is` (tolerates out-of-order exits).
fn pop(is: impl Fn(&Entry) -> bool) {
    let removed = ENTERED
        .try_with(|stack| {
            let mut s = stack.try_borrow_mut().ok()?;
            if s.last().is_some_and(&is) {
                return s.pop();
            }
            pop_inner(&mut s, is)
        })
        .ok()
        .flatten();
    // Dropping may finish the span, which must not happen while the stack is borrowed.
    drop(removed);
}

/// The out-of-order exit: kept out of line so that the common exit stays small.
#[cold]
#[inline(never)]
fn pop_inner(s: &mut Vec<Entry>, is: impl Fn(&Entry) -> bool) -> Option<Entry> {
    let pos = s.iter().rposition(is)?;
    Some(s.remove(pos))
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
    push_clone(span, NO_KEY);
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
