//! Catching a handler panic and reporting it exactly once.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use sentry_lite_core::Hub;

/// Runs `f`, catching a panic. The global panic hook of `sentry-lite-panic` leaves
/// panics inside alone (it still chains to the previous hook, which prints them):
/// the layer reports them itself, in the request's hub.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Box<dyn Any + Send>> {
    catch_unwind(AssertUnwindSafe(|| sentry_lite_panic::with_hook_suppressed(f)))
}

/// Reports a caught handler panic in the request's hub, so it carries the request,
/// its breadcrumbs and tags, and the segment span's trace, plus the stack trace and
/// location the panic hook kept for it (on this thread, where it was caught).
pub(crate) fn report(hub: &Arc<Hub>, payload: &(dyn Any + Send)) {
    if !hub.is_active() {
        return;
    }
    Hub::run(hub.clone(), || sentry_lite_panic::capture_caught_panic(payload));
}
