//! Installing the hook, and the guards that keep it from recursing or double reporting.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, Ordering};

use sentry_lite_core::protocol::EventId;
use sentry_lite_core::protocol::SpanStatus;
use sentry_lite_core::{Hub, RawBacktrace};

use crate::event::{event_from_parts, panic_message, PanicLocation};

/// Name of the SDK's background worker thread: a panic there (e.g. in `before_send`)
/// is caught by the worker, and flushing from it would wait on itself.
const WORKER_THREAD_NAME: &str = "sentry-lite-worker";

static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Wait for delivery after every panic, not only those that end the process.
static FLUSH_ON_EVERY_PANIC: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Set while this thread runs our hook: a panic inside the SDK during the report
    /// is not reported again.
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
    /// Depth of `with_hook_suppressed` sections on this thread.
    static SUPPRESSED: Cell<u32> = const { Cell::new(0) };
    /// What the hook kept of the last panic it left to a suppressed section on this
    /// thread: by the time the section's caller has caught it, the stack is gone.
    static LEFT_TO_CALLER: RefCell<Option<LeftPanic>> = const { RefCell::new(None) };
}

/// The stack and location of a panic the hook did not report itself.
struct LeftPanic {
    /// The payload's text, to tell this panic from a stale one.
    message: String,
    location: Option<PanicLocation>,
    backtrace: RawBacktrace,
}

/// Installs the panic hook. Idempotent: only the first call in the process installs
/// it; it reports the panic, then calls the hook that was installed before it.
///
/// Hooks installed *after* this one replace it unless they chain to it themselves.
///
/// # Examples
/// ```
/// sentry_lite_panic::install();
/// sentry_lite_panic::install(); // no-op
/// assert!(sentry_lite_panic::is_installed());
/// ```
pub fn install() {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        panic_hook(info);
        previous(info);
    }));
}

/// Whether [`install`] has run in this process.
pub fn is_installed() -> bool {
    INSTALLED.load(Ordering::SeqCst)
}

/// Runs `f` with the hook suppressed on the current thread: a panic raised inside `f`
/// on this thread is not reported by the hook (the previous hook still runs).
///
/// For code that catches panics and reports them itself, such as the axum layer,
/// which polls handler futures inside `catch_unwind`: wrap each poll so a handler panic
/// is reported once, by the layer, with the request's context. Nests; the suppression
/// ends when `f` returns or unwinds.
///
/// # Examples
/// ```
/// let caught = sentry_lite_panic::with_hook_suppressed(|| {
///     assert!(sentry_lite_panic::is_hook_suppressed());
///     std::panic::catch_unwind(|| panic!("reported by the caller instead"))
/// });
/// assert!(caught.is_err());
/// assert!(!sentry_lite_panic::is_hook_suppressed());
/// ```
pub fn with_hook_suppressed<R>(f: impl FnOnce() -> R) -> R {
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = SUPPRESSED.try_with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    let _ = SUPPRESSED.try_with(|c| c.set(c.get().saturating_add(1)));
    let _restore = Restore;
    f()
}

/// Whether the current thread is inside [`with_hook_suppressed`].
pub fn is_hook_suppressed() -> bool {
    SUPPRESSED.try_with(|c| c.get() > 0).unwrap_or(false)
}

/// Resets `IN_HOOK` even if reporting unwinds.
struct HookGuard;

impl HookGuard {
    fn enter() -> Option<Self> {
        match IN_HOOK.try_with(|c| c.replace(true)) {
            Ok(false) => Some(HookGuard),
            // Already reporting on this thread, or thread-locals are being torn down.
            _ => None,
        }
    }
}

impl Drop for HookGuard {
    fn drop(&mut self) {
        let _ = IN_HOOK.try_with(|c| c.set(false));
    }
}

/// Captures, in the current hub, a panic that the caller caught itself inside
/// [`with_hook_suppressed`] on this thread: the same fatal event the hook would have
/// sent, with the stack trace and location the hook kept when it left the panic alone.
/// Without the hook installed, or for a payload that is not the thread's last
/// suppressed panic, the event has no stack trace.
///
/// Call it on the thread that caught the panic, after `catch_unwind` returned.
///
/// # Examples
/// ```
/// sentry_lite_panic::install();
/// let payload = std::panic::catch_unwind(|| sentry_lite_panic::with_hook_suppressed(|| panic!("boom"))).unwrap_err();
/// // No client is bound here, so nothing is sent and the id is nil.
/// assert!(sentry_lite_panic::capture_caught_panic(&*payload).is_nil());
/// ```
pub fn capture_caught_panic(payload: &(dyn Any + Send)) -> EventId {
    let message = panic_message(payload);
    let left = LEFT_TO_CALLER.try_with(|slot| slot.borrow_mut().take()).ok().flatten().filter(|l| l.message == message);
    let (location, backtrace) = match left {
        Some(l) => (l.location, Some(l.backtrace)),
        None => (None, None),
    };
    let event = event_from_parts(message, location);
    sentry_lite_core::capture_event_with_backtrace(event, backtrace)
}

/// Keeps the stack and location of a panic that a suppressed section's caller will
/// report through [`capture_caught_panic`].
fn leave_to_caller(info: &PanicHookInfo<'_>) {
    if !sentry_lite_core::is_enabled() {
        return;
    }
    let left = LeftPanic {
        message: panic_message(info.payload()).to_owned(),
        location: info.location().map(PanicLocation::from),
        backtrace: RawBacktrace::capture(),
    };
    let _ = LEFT_TO_CALLER.try_with(|slot| *slot.borrow_mut() = Some(left));
}

#[inline(never)]
fn panic_hook(info: &PanicHookInfo<'_>) {
    if std::thread::current().name() == Some(WORKER_THREAD_NAME) {
        return;
    }
    let Some(_guard) = HookGuard::enter() else { return };
    if is_hook_suppressed() {
        leave_to_caller(info);
        return;
    }
    let Some(client) = Hub::with_current(|hub| hub.client()).filter(|c| c.is_enabled()) else { return };

    let backtrace = RawBacktrace::capture();
    let event = crate::event::event_from_hook_info(info);
    mark_active_span_failed();
    let id = sentry_lite_core::capture_event_with_backtrace(event, Some(backtrace));
    if id.is_nil() {
        return;
    }
    if FLUSH_ON_EVERY_PANIC.load(Ordering::Relaxed) || panic_ends_the_process() {
        // Deliver before the process dies.
        client.flush(client.options().shutdown_timeout);
    }
}

/// Whether this panic ends the process, so that waiting for delivery is worth
/// stalling the panicking thread: always under `panic = "abort"`; with unwinding,
/// a panic on the main thread, unless it runs inside a Tokio task (Tokio catches
/// task panics, also on a current-thread runtime driven from `main`). Panics on
/// other threads end only their thread: the event is queued and the hook returns,
/// so a runtime's worker is not held for up to `shutdown_timeout`.
fn panic_ends_the_process() -> bool {
    if cfg!(panic = "abort") {
        return true;
    }
    if tokio::task::try_id().is_some() {
        return false;
    }
    std::thread::current().name() == Some("main")
}

/// Makes the hook wait for delivery (up to `shutdown_timeout`) after every panic,
/// not only after those it knows end the process. For applications whose own
/// panic hook, installed before this one, exits or aborts.
pub(crate) fn set_flush_on_every_panic(on: bool) {
    FLUSH_ON_EVERY_PANIC.store(on, Ordering::Relaxed);
}

/// Sets the active span's status, and its segment's, to `internal_error`.
fn mark_active_span_failed() {
    if let Some(span) = sentry_lite_core::current_span() {
        span.set_status(SpanStatus::InternalError);
        span.set_segment_status(SpanStatus::InternalError);
    }
}
