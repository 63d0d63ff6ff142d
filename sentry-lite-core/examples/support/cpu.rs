//! Shared by the profiling examples.

/// Time this thread spent on a CPU (Linux schedstat): unlike wall time, it does not
/// grow while other processes hold the cores.
pub(crate) fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}
