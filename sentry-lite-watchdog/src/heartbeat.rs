//! Per-thread heartbeats: when the thread's current poll began.
//!
//! Each thread that polls a watched future (or, with `--cfg tokio_unstable`, any
//! task of an instrumented runtime) owns a [`Beat`]: two relaxed stores per
//! outermost poll (start time in, zero out) and the trace ids of the request being
//! polled. The watchdog thread reads them; nothing waits on anything.

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// One thread's heartbeat.
#[derive(Debug)]
pub(crate) struct Beat {
    /// Kernel thread id (what signals and `/proc` use).
    pub(crate) tid: i32,
    /// The thread's name when it registered.
    pub(crate) name: Option<String>,
    /// The runtime it works for, when known.
    pub(crate) runtime: Mutex<Option<Cow<'static, str>>>,
    /// Nanoseconds since [`epoch`] (plus one, so never zero) when the running
    /// outermost poll began; 0 between polls.
    pub(crate) busy_since: AtomicU64,
    /// The request (trace and span) being polled, zeros when unknown.
    pub(crate) trace_hi: AtomicU64,
    pub(crate) trace_lo: AtomicU64,
    pub(crate) span: AtomicU64,
}

/// Every live thread's heartbeat.
static BEATS: Mutex<Vec<Weak<Beat>>> = Mutex::new(Vec::new());

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Now as a heartbeat timestamp (never 0).
pub(crate) fn now() -> u64 {
    epoch().elapsed().as_nanos() as u64 + 1
}

/// The time between two heartbeat timestamps.
pub(crate) fn between(earlier: u64, later: u64) -> Duration {
    Duration::from_nanos(later.saturating_sub(earlier))
}

struct Local {
    beat: Arc<Beat>,
    /// Nesting of watched polls on this thread: only the outermost counts.
    depth: Cell<u32>,
    /// Whether the runtime's name is set.
    named: Cell<bool>,
}

thread_local! {
    static LOCAL: Local = Local::new();
}

impl Local {
    fn new() -> Self {
        let beat = Arc::new(Beat {
            tid: crate::report::current_tid(),
            name: std::thread::current().name().map(str::to_owned),
            runtime: Mutex::new(None),
            busy_since: AtomicU64::new(0),
            trace_hi: AtomicU64::new(0),
            trace_lo: AtomicU64::new(0),
            span: AtomicU64::new(0),
        });
        let mut beats = BEATS.lock();
        beats.retain(|b| b.strong_count() > 0);
        beats.push(Arc::downgrade(&beat));
        Self { beat, depth: Cell::new(0), named: Cell::new(false) }
    }
}

/// The live heartbeats.
pub(crate) fn beats() -> Vec<Arc<Beat>> {
    BEATS.lock().iter().filter_map(Weak::upgrade).collect()
}

/// Names the runtime the calling thread works for.
pub(crate) fn set_runtime(name: Cow<'static, str>) {
    let _ = LOCAL.try_with(|l| {
        *l.beat.runtime.lock() = Some(name);
        l.named.set(true);
    });
}

/// Names the runtime the calling thread works for unless it is named already.
// `&Cow`: cloning a borrowed `'static` name allocates nothing, `to_owned` would.
#[allow(clippy::ptr_arg)]
pub(crate) fn set_runtime_once(name: &Cow<'static, str>) {
    let _ = LOCAL.try_with(|l| {
        if !l.named.get() {
            *l.beat.runtime.lock() = Some(name.clone());
            l.named.set(true);
        }
    });
}

/// The request a poll works for: trace id and span id.
pub(crate) type RequestIds = (u128, u64);

/// Marks the start of a poll on this thread; `true` if it is the outermost, which
/// must then be ended with [`poll_end`].
#[inline]
pub(crate) fn poll_start(request: Option<RequestIds>) -> bool {
    LOCAL
        .try_with(|l| {
            let depth = l.depth.get();
            l.depth.set(depth + 1);
            // An inner watched future knows the request better than a task hook.
            if depth == 0 || request.is_some() {
                let (trace, span) = request.unwrap_or((0, 0));
                l.beat.trace_hi.store((trace >> 64) as u64, Ordering::Relaxed);
                l.beat.trace_lo.store(trace as u64, Ordering::Relaxed);
                l.beat.span.store(span, Ordering::Relaxed);
            }
            if depth == 0 {
                l.beat.busy_since.store(now(), Ordering::Relaxed);
            }
            true
        })
        .unwrap_or(false)
}

/// Marks the end of a poll started with [`poll_start`] returning `true`.
#[inline]
pub(crate) fn poll_end() {
    let _ = LOCAL.try_with(|l| {
        let depth = l.depth.get().saturating_sub(1);
        l.depth.set(depth);
        if depth == 0 {
            l.beat.busy_since.store(0, Ordering::Relaxed);
        }
    });
}

/// Ends a poll when dropped, also while unwinding from a panic.
pub(crate) struct PollGuard(bool);

impl PollGuard {
    #[inline]
    pub(crate) fn start(request: Option<RequestIds>) -> Self {
        Self(poll_start(request))
    }
}

impl Drop for PollGuard {
    #[inline]
    fn drop(&mut self) {
        if self.0 {
            poll_end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_outermost_poll_counts() {
        let beat = LOCAL.with(|l| l.beat.clone());
        assert_eq!(beat.busy_since.load(Ordering::Relaxed), 0);
        {
            let _outer = PollGuard::start(Some((7, 9)));
            let since = beat.busy_since.load(Ordering::Relaxed);
            assert_ne!(since, 0);
            {
                let _inner = PollGuard::start(None);
                assert_eq!(beat.busy_since.load(Ordering::Relaxed), since, "inner poll keeps the start");
                assert_eq!(beat.span.load(Ordering::Relaxed), 9, "an inner poll without a request keeps it");
            }
            assert_eq!(beat.busy_since.load(Ordering::Relaxed), since);
        }
        assert_eq!(beat.busy_since.load(Ordering::Relaxed), 0);
        assert!(beats().iter().any(|b| Arc::ptr_eq(b, &beat)));
    }

    #[test]
    fn a_finished_thread_leaves_the_registry() {
        let beat = std::thread::spawn(|| LOCAL.with(|l| Arc::downgrade(&l.beat))).join().unwrap();
        assert!(beat.upgrade().is_none());
        assert!(beats().iter().all(|b| !std::ptr::eq(Arc::as_ptr(b), beat.as_ptr())));
    }
}
