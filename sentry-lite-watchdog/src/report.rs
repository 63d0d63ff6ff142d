//! Events with other threads' stacks: built on the watchdog's thread, symbolicated
//! on the client's worker like every event (an event processor there resolves the
//! unresolved stacks), sent through the hub the watchdog was started in.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use sentry_lite_core::protocol::{Context, Exception, LockReason, Mechanism, Stacktrace, Thread, Values};
use sentry_lite_core::{Event, EventId, Hub, InAppRules, RawBacktrace};

/// One thread of a report.
#[derive(Debug, Default)]
pub(crate) struct ThreadReport {
    pub(crate) tid: i32,
    pub(crate) name: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) stack: Option<RawBacktrace>,
    pub(crate) crashed: bool,
    pub(crate) current: bool,
    pub(crate) held_locks: Option<BTreeMap<String, LockReason>>,
}

/// Where a stack goes in the event.
#[derive(Clone, Copy)]
enum Target {
    Thread(usize),
    Exception,
}

/// Sends `event` with `threads`. With `exception`, that exception is added and
/// takes the stack of the (first) crashed thread, as Sentry expects of the thread
/// an exception happened on; every other stack stays on its thread.
pub(crate) fn send(
    hub: &Arc<Hub>,
    mut event: Event,
    exception: Option<Exception>,
    threads: Vec<ThreadReport>,
) -> EventId {
    let pid = std::process::id() as i32;
    let mut stacks = Vec::new();
    let mut values = Vec::with_capacity(threads.len());
    let mut exception = exception;
    for (i, t) in threads.into_iter().enumerate() {
        if let Some(stack) = t.stack.filter(|s| !s.is_empty()) {
            let on_exception = t.crashed && exception.as_ref().is_some_and(|e| e.stacktrace.is_none());
            if on_exception {
                if let Some(e) = exception.as_mut() {
                    e.thread_id = Some(t.tid as u64);
                    // A placeholder until the worker resolves it.
                    e.stacktrace = Some(Stacktrace::default());
                }
                stacks.push((Target::Exception, stack));
            } else {
                stacks.push((Target::Thread(i), stack));
            }
        }
        values.push(Thread {
            id: t.tid as u64,
            name: t.name,
            crashed: Some(t.crashed),
            current: Some(t.current),
            main: Some(t.tid == pid),
            state: t.state,
            held_locks: t.held_locks,
            ..Thread::default()
        });
    }
    event.threads = Some(Values { values });
    if let Some(mut e) = exception {
        if e.stacktrace.as_ref().is_some_and(|s| s.frames.is_empty()) {
            e.stacktrace = None; // filled by the processor, if it resolves anything
        }
        event.exception = Some(Values { values: vec![e] });
    }
    let client = hub.client();
    let pending = Mutex::new(Some(stacks));
    Hub::run(hub.clone(), || {
        hub.with_scope(
            |scope| {
                scope.add_event_processor(move |mut event| {
                    let stacks = pending.lock().take().unwrap_or_default();
                    let Some(client) = client.as_ref() else { return Some(event) };
                    let options = client.options();
                    let rules = InAppRules { include: &options.in_app_include, exclude: &options.in_app_exclude };
                    for (target, stack) in stacks {
                        let resolved = stack.resolve(&rules);
                        match target {
                            Target::Thread(i) => {
                                if let Some(t) = event.threads.as_mut().and_then(|t| t.values.get_mut(i)) {
                                    t.stacktrace = resolved;
                                }
                            }
                            Target::Exception => {
                                if let Some(e) = event.exception.as_mut().and_then(|e| e.values.first_mut()) {
                                    e.stacktrace = resolved;
                                }
                            }
                        }
                    }
                    Some(event)
                });
            },
            || sentry_lite_core::capture_event(event),
        )
    })
}

/// An exception made up by the watchdog (no error value exists for a stall).
pub(crate) fn exception(ty: &'static str, value: String, handled: bool) -> Exception {
    Exception {
        ty: ty.into(),
        value: Some(value),
        mechanism: Some(Mechanism {
            ty: "watchdog".into(),
            handled: Some(handled),
            synthetic: Some(true),
            ..Mechanism::default()
        }),
        ..Exception::default()
    }
}

/// The `watchdog` context of a report.
pub(crate) fn context(pairs: Vec<(&str, serde_json::Value)>) -> Context {
    Context::other(pairs)
}

/// A thread's name from `/proc` (what `ps` shows), when it can be read.
pub(crate) fn proc_name(tid: i32) -> Option<String> {
    let name = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
    let name = name.trim_end_matches('\n');
    (!name.is_empty()).then(|| name.to_owned())
}

/// A thread's scheduler state from `/proc`, in the words of Sentry's thread states.
pub(crate) fn proc_state(tid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // `pid (comm) S ...`: the name may contain anything, so read after the last ')'.
    let state = stat.get(stat.rfind(')')? + 1..)?.trim_start().chars().next()?;
    Some(
        match state {
            'R' => "RUNNABLE",
            'S' | 'D' | 'I' => "WAITING",
            'T' | 't' => "STOPPED",
            'Z' | 'X' | 'x' => "TERMINATED",
            _ => return None,
        }
        .to_owned(),
    )
}

/// The process's threads (kernel ids), sorted.
pub(crate) fn process_threads() -> Vec<i32> {
    let mut tids: Vec<i32> = std::fs::read_dir("/proc/self/task")
        .map(|dir| dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    tids.sort_unstable();
    tids
}

/// The calling thread's kernel id (0 where there is none to signal).
pub(crate) fn current_tid() -> i32 {
    #[cfg(target_os = "linux")]
    {
        crate::signal::gettid()
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// Another thread's stack, or `None` when it cannot be taken safely.
pub(crate) fn stack_of(tid: i32) -> Option<RawBacktrace> {
    #[cfg(target_os = "linux")]
    {
        crate::signal::stop_and_copy(tid).map(|s| s.backtrace())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = tid;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_threads_name_and_state() {
        let tid = std::thread::Builder::new()
            .name("probe".into())
            .spawn(|| {
                let tid = crate::signal::gettid();
                (tid, proc_name(tid), proc_state(tid))
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(tid.1.as_deref(), Some("probe"));
        assert_eq!(tid.2.as_deref(), Some("RUNNABLE"));
        assert!(process_threads().contains(&(std::process::id() as i32)));
    }
}
