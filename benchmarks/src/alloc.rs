//! A counting global allocator: a thin wrapper around [`System`] that tracks
//! current and peak live heap bytes, plus RSS read from `/proc/self/statm`.
//!
//! Counting is off by default so that the timing cases pay only one relaxed
//! atomic load per allocation; the memory cases switch it on around the
//! measured region with [`start`] / [`stop`].

// `GlobalAlloc` is an `unsafe trait`: implementing it (and forwarding to
// `System`) cannot be done without `unsafe`. This module is the only place in
// the benchmarks crate where unsafe code is allowed; it adds no logic beyond
// counters, and every call is forwarded unchanged to the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};

/// The allocator type installed as `#[global_allocator]` in `main.rs`.
pub(crate) struct CountingAlloc;

static ENABLED: AtomicBool = AtomicBool::new(false);
static CURRENT: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

#[inline]
fn on_alloc(size: usize) {
    if ENABLED.load(Relaxed) {
        let now = CURRENT.fetch_add(size as i64, Relaxed) + size as i64;
        PEAK.fetch_max(now, Relaxed);
    }
}

#[inline]
fn on_dealloc(size: usize) {
    if ENABLED.load(Relaxed) {
        CURRENT.fetch_sub(size as i64, Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the only extra work is updating atomics, which never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        on_dealloc(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            on_dealloc(layout.size());
            on_alloc(new_size);
        }
        p
    }
}

/// Reset the counters to zero and start counting. Bytes freed while counting
/// that were allocated before `start` make `current` go negative; that is
/// intended (it is a delta relative to `start`).
pub(crate) fn start() {
    CURRENT.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    ENABLED.store(true, Relaxed);
}

/// Stop counting (counters keep their last values).
pub(crate) fn stop() {
    ENABLED.store(false, Relaxed);
}

/// Net live bytes allocated since [`start`].
pub(crate) fn current() -> i64 {
    CURRENT.load(Relaxed)
}

/// Peak of [`current`] since [`start`].
pub(crate) fn peak() -> i64 {
    PEAK.load(Relaxed)
}

/// Resident set size in bytes from `/proc/self/statm` (0 if unavailable).
pub(crate) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}
