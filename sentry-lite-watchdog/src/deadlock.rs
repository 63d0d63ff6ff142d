//! Deadlocks among parking_lot locks, found by parking_lot's own detector
//! (`deadlock` feature), reported as one fatal event per cycle.
//!
//! parking_lot wakes each deadlocked thread to take its own backtrace, then parks
//! it for good, so each stack is the thread's own at the lock it waits for. It
//! names threads by `std::thread::ThreadId` only; the kernel thread (for its name
//! and state) is found by comparing those stacks with the stacks of the process's
//! threads: the frames from the lock call outwards are the same return addresses.

use std::sync::Arc;

use sentry_lite_core::Hub;

/// Looks for deadlocks and reports each new cycle.
#[cfg(feature = "deadlock")]
pub(crate) fn check(hub: &Arc<Hub>) {
    for cycle in parking_lot::deadlock::check_deadlock() {
        let threads = cycle.iter().map(|t| Waiter::new(format!("{:?}", t.thread_id()), t.backtrace())).collect();
        report(hub, threads);
    }
}

/// Without the `deadlock` feature there is nothing to ask.
#[cfg(not(feature = "deadlock"))]
pub(crate) fn check(_hub: &Arc<Hub>) {}

/// One deadlocked thread as parking_lot describes it.
#[cfg_attr(not(feature = "deadlock"), allow(dead_code))]
struct Waiter {
    /// `ThreadId(n)`, std's id.
    std_id: String,
    /// Its backtrace's instruction pointers, innermost first.
    ips: Vec<usize>,
    /// Where it waits: the first frame outside the lock machinery.
    site: String,
    /// The kind of lock, from the lock's own frames.
    kind: &'static str,
}

#[cfg(feature = "deadlock")]
impl Waiter {
    fn new(std_id: String, backtrace: &backtrace::Backtrace) -> Self {
        let mut ips = Vec::new();
        let mut site = None;
        let mut kind = "lock";
        for frame in backtrace.frames() {
            ips.push(frame.ip() as usize);
            if site.is_some() {
                continue;
            }
            for symbol in frame.symbols() {
                let name = symbol.name().map(|n| format!("{n:#}")).unwrap_or_default();
                let bare = name.trim_start_matches('<');
                if bare.starts_with("lock_api::") && kind == "lock" {
                    kind = lock_kind(bare);
                }
                if !is_machinery(bare) {
                    let place = match (symbol.filename(), symbol.lineno()) {
                        (Some(file), Some(line)) => format!(" ({}:{line})", file.display()),
                        _ => String::new(),
                    };
                    site = Some(format!("{name}{place}"));
                    break;
                }
            }
        }
        while ips.last() == Some(&0) {
            ips.pop();
        }
        Self { std_id, ips, site: site.unwrap_or_else(|| "an unknown place".into()), kind }
    }
}

/// Frames of the unwinder, parking_lot and std that sit above the waiting call.
#[cfg_attr(not(feature = "deadlock"), allow(dead_code))]
fn is_machinery(name: &str) -> bool {
    name.is_empty()
        || ["backtrace::", "parking_lot_core::", "parking_lot::", "lock_api::", "core::", "std::"]
            .iter()
            .any(|p| name.starts_with(p))
}

#[cfg_attr(not(feature = "deadlock"), allow(dead_code))]
fn lock_kind(name: &str) -> &'static str {
    if name.contains("ReentrantMutex") {
        "ReentrantMutex"
    } else if name.contains("RwLock") || name.contains("rwlock") {
        "RwLock"
    } else if name.contains("Mutex") || name.contains("mutex") {
        "Mutex"
    } else {
        "lock"
    }
}

/// How many of the outermost entries `a` and `b` share.
fn common_suffix(a: &[usize], b: &[usize]) -> usize {
    a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count()
}

/// The kernel thread whose current stack shares the most outer frames (at least
/// two) with `ips`, among `stacks`; `None` when no single thread stands out.
fn best_match(ips: &[usize], stacks: &[(i32, Vec<usize>)]) -> Option<i32> {
    let mut scored: Vec<(usize, i32)> =
        stacks.iter().map(|(tid, stack)| (common_suffix(ips, stack), *tid)).filter(|(n, _)| *n >= 2).collect();
    scored.sort_unstable_by(|a, b| b.cmp(a));
    match scored.as_slice() {
        [(n, tid), (m, _), ..] if n > m => Some(*tid),
        [(_, tid)] => Some(*tid),
        _ => None,
    }
}

#[cfg_attr(not(feature = "deadlock"), allow(dead_code))]
fn report(hub: &Arc<Hub>, waiters: Vec<Waiter>) {
    use std::collections::BTreeMap;

    use sentry_lite_core::protocol::LockReason;
    use sentry_lite_core::{Event, Level, RawBacktrace};
    use serde_json::json;

    use crate::report::{self, ThreadReport};

    // The process's threads as they are now, to name the waiters.
    let me = report::current_tid();
    let stacks: Vec<(i32, Vec<usize>)> = report::process_threads()
        .into_iter()
        .filter(|&tid| tid != me)
        .filter_map(|tid| Some((tid, report::stack_of(tid)?.ips().to_vec())))
        .collect();
    let tids: Vec<Option<i32>> = waiters.iter().map(|w| best_match(&w.ips, &stacks)).collect();
    let names: Vec<String> = waiters
        .iter()
        .zip(&tids)
        .map(|(w, tid)| match tid {
            Some(tid) => match report::proc_name(*tid) {
                Some(name) => format!("'{name}' ({tid})"),
                None => format!("{tid}"),
            },
            None => w.std_id.clone(),
        })
        .collect();
    let n = waiters.len();
    let value = if n == 2 {
        format!(
            "thread {} waits at {} for a {} held by thread {}, which waits at {} for a {} held by thread {}",
            names[0], waiters[0].site, waiters[0].kind, names[1], waiters[1].site, waiters[1].kind, names[0]
        )
    } else {
        let each: Vec<String> = waiters
            .iter()
            .zip(&names)
            .map(|(w, name)| format!("{name} waits at {} for a {}", w.site, w.kind))
            .collect();
        format!("{n} threads wait for each other: {}", each.join("; "))
    };
    let threads: Vec<ThreadReport> = waiters
        .iter()
        .zip(&tids)
        .enumerate()
        .map(|(i, (w, tid))| {
            let mut locks = BTreeMap::new();
            // Who holds what is only certain in a cycle of two.
            let holder = (n == 2).then(|| tids[1 - i]).flatten();
            locks.insert(
                format!("waits at {}", w.site),
                LockReason {
                    ty: LockReason::BLOCKED,
                    address: Some(w.site.clone()),
                    class_name: Some(w.kind.to_owned()),
                    thread_id: holder.map(|t| t as u64),
                    ..LockReason::default()
                },
            );
            if n == 2 {
                let other = &waiters[1 - i];
                locks.insert(
                    format!("holds the lock waited for at {}", other.site),
                    LockReason {
                        ty: LockReason::LOCKED,
                        address: Some(other.site.clone()),
                        class_name: Some(other.kind.to_owned()),
                        thread_id: tid.map(|t| t as u64),
                        ..LockReason::default()
                    },
                );
            }
            ThreadReport {
                tid: tid.unwrap_or(0),
                name: tid.and_then(report::proc_name).or_else(|| Some(w.std_id.clone())),
                state: Some("BLOCKED".into()),
                stack: Some(RawBacktrace::from_ips(w.ips.clone())),
                crashed: true,
                held_locks: Some(locks),
                ..ThreadReport::default()
            }
        })
        .collect();
    let mut sites: Vec<&str> = waiters.iter().map(|w| w.site.as_str()).collect();
    sites.sort_unstable();
    let mut event = Event::new();
    event.level = Some(Level::Fatal);
    event.fingerprint = ["sentry-lite-watchdog", "deadlock"].into_iter().chain(sites).map(str::to_owned).collect();
    event.contexts.insert(
        "watchdog".into(),
        report::context(vec![
            ("kind", json!("deadlock")),
            ("threads", json!(names)),
            ("sites", json!(waiters.iter().map(|w| w.site.clone()).collect::<Vec<_>>())),
        ]),
    );
    // The stacks stay on their threads; the exception names the cycle.
    let mut threads = threads;
    let first_tid = threads.first().map(|t| t.tid as u64);
    for t in threads.iter_mut().skip(1) {
        t.crashed = false;
    }
    let mut exception = report::exception("Deadlock", value, false);
    exception.thread_id = first_tid;
    // A placeholder keeps `send` from moving the first thread's stack onto it.
    exception.stacktrace = Some(sentry_lite_core::protocol::Stacktrace::default());
    report::send(hub, event, Some(exception), threads);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_matched_by_their_outer_frames() {
        let parked = vec![1, 2, 50, 60, 70];
        let stacks = vec![(10, vec![9, 8, 7, 70]), (11, vec![5, 4, 50, 60, 70]), (12, vec![60, 70])];
        assert_eq!(best_match(&parked, &stacks), Some(11));
        // Two equally good candidates: no guess.
        let stacks = vec![(10, vec![9, 60, 70]), (11, vec![8, 60, 70])];
        assert_eq!(best_match(&parked, &stacks), None);
        assert_eq!(best_match(&parked, &[(10, vec![1, 2, 3])]), None);
    }

    #[test]
    fn lock_kinds_come_from_lock_api_frames() {
        assert_eq!(lock_kind("lock_api::mutex::Mutex<R,T>::lock"), "Mutex");
        assert_eq!(lock_kind("lock_api::rwlock::RwLock<R,T>::write"), "RwLock");
        assert_eq!(lock_kind("lock_api::remutex::ReentrantMutex<R,G,T>::lock"), "ReentrantMutex");
        assert!(is_machinery("parking_lot_core::parking_lot::park"));
        assert!(!is_machinery("my_app::transfer"));
    }
}
