//! Unresolved unwinding of the current thread's stack: the return addresses only,
//! symbolicated later on the worker.
//!
//! On x86_64 Linux a fast path walks the stack with framehop over the loaded
//! modules' in-memory `.eh_frame` tables. Each return address's rule is learned
//! from framehop once and kept in a compact per-thread cache (`rules`), so a
//! repeated capture costs ~100 instructions per frame instead of libgcc's ~1,600.
//! Anything it cannot vouch for (another platform, a stack outside the thread's
//! bounds, code outside every known module, an unreadable slot, re-entrancy) falls
//! back to `backtrace::trace`, which gives the same addresses more slowly.
//!
//! This is the only module of the crate allowed `unsafe`: reading the stack, the
//! loader's program headers and the modules' unwind tables in place needs raw
//! memory reads and FFI (`dl_iterate_phdr`, `pthread_getattr_np`), plus inline asm
//! to read the starting registers. Each block states why it cannot fault.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod fast;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod modules;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod rules;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod stopped;
#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod tests;

/// Appends the return addresses of the caller's stack to `out`, innermost first,
/// at most `max` of them. The first is the return address into this function's
/// caller.
#[inline(never)]
pub(crate) fn trace(out: &mut Vec<usize>, max: usize) {
    let start = out.len();
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    if fast::enabled() && fast::trace(out, max) {
        return;
    }
    out.truncate(start);
    trace_slow(out, max);
}

/// `backtrace::trace` (libgcc's unwinder): the reference, and the fallback.
#[inline(never)]
pub(crate) fn trace_slow(out: &mut Vec<usize>, max: usize) {
    let start = out.len();
    backtrace::trace(|frame| {
        out.push(frame.ip() as usize);
        out.len() - start < max
    });
}

/// Appends `ip`, then the return addresses of a thread stopped at `ip`, `sp` and
/// `bp`, whose stack words `read` returns (`None` for a word it cannot give).
/// Innermost first, at most `max`. Only `ip` on platforms without the fast path.
pub(crate) fn trace_stopped(
    regs: (u64, u64, u64),
    read: &mut dyn FnMut(u64) -> Option<u64>,
    out: &mut Vec<usize>,
    max: usize,
) {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    stopped::trace(regs, read, out, max);
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = read;
        if max > 0 && regs.0 != 0 {
            out.push(regs.0 as usize);
        }
    }
}
